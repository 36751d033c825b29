"""The workspace at a glance: what ``workbench status`` and overview pages show.

Each part (data, experiments, models) is read on its own; a part whose backend
fails carries that error and the others still show. Beside the status: the
runs of the last days, the best run of each experiment, and each model's
champion with the health of its deployments.

The services are imported on first use, so importing this module stays cheap.
"""

from __future__ import annotations

import datetime as _dt
import math
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from workbench.config import Settings
from workbench.errors import WorkbenchError

if TYPE_CHECKING:
    from workbench.deploy import Deployment
    from workbench.registry import ModelInfo


@dataclass
class ExperimentCount:
    experiment_id: str
    name: str
    runs: int


@dataclass
class WorkspaceStatus:
    workspace: Path
    git: bool
    dvc: bool
    tracking_uri: str
    settings_sources: dict[str, str]
    data: Any = None  # data.DataStatus
    experiments: list[ExperimentCount] = field(default_factory=list)
    models: list[Any] = field(default_factory=list)  # registry.ModelInfo
    errors: dict[str, dict[str, str]] = field(default_factory=dict)  # part -> error record


def workspace_status(settings: Settings) -> WorkspaceStatus:
    """Data status, experiments with run counts, models with aliases."""
    from workbench import data, registry, tracking

    status = WorkspaceStatus(
        workspace=settings.workspace,
        git=settings.git_root is not None,
        dvc=settings.dvc_root is not None,
        tracking_uri=settings.tracking_uri,
        settings_sources=dict(settings.sources),
    )
    try:
        status.data = data.status(settings)
    except WorkbenchError as exc:
        status.errors["data"] = exc.to_dict()
    try:
        status.experiments = [
            ExperimentCount(
                e.experiment_id,
                e.name,
                e.run_count if e.run_count is not None else tracking.count_runs(settings, [e.experiment_id]),
            )
            for e in tracking.list_experiments(settings)
        ]
    except WorkbenchError as exc:
        status.errors["experiments"] = exc.to_dict()
    try:
        status.models = registry.list_models(settings)
    except WorkbenchError as exc:
        status.errors["models"] = exc.to_dict()
    return status


# -- recent runs ----------------------------------------------------------------


@dataclass
class RecentRuns:
    """Runs started in the last ``days`` days: how many, per day (oldest first) and per status.

    ``capped`` is True when there were more than the counted ``total``.
    """

    days: int
    total: int
    capped: bool
    per_day: list[tuple[str, int]]
    by_status: dict[str, int]


def recent_runs(settings: Settings, days: int = 7, cap: int = 5000, now: _dt.datetime | None = None) -> RecentRuns:
    """Count the runs of every active experiment started in the last ``days`` days.

    Pages through the matching runs newest first, up to ``cap`` of them.
    """
    from workbench import tracking

    now = now or _dt.datetime.now()
    first_day = (now - _dt.timedelta(days=days - 1)).date()
    since_ms = int(_dt.datetime.combine(first_day, _dt.time()).timestamp() * 1000)
    per_day: Counter[str] = Counter()
    by_status: Counter[str] = Counter()
    counted, token = 0, None
    while counted < cap:
        page = tracking.search_runs(
            settings,
            filter_string=f"attributes.start_time >= {since_ms}",
            order_by="attributes.start_time DESC",
            max_results=min(1000, cap - counted),
            page_token=token,
        )
        for run in page.runs:
            day = _dt.datetime.fromtimestamp((run.start_time or 0) / 1000).date().isoformat()
            per_day[day] += 1
            by_status[run.status] += 1
        counted += len(page.runs)
        token = page.next_page_token
        if not token:
            break
    days_list = [(first_day + _dt.timedelta(days=i)).isoformat() for i in range(days)]
    return RecentRuns(
        days=days,
        total=counted,
        capped=token is not None,
        per_day=[(day, per_day.get(day, 0)) for day in days_list],
        by_status=dict(by_status.most_common()),
    )


# -- best runs ------------------------------------------------------------------


@dataclass
class BestRun:
    """The best run of one experiment by one metric (``run_id`` None when no run has that metric)."""

    experiment_id: str
    experiment: str
    runs: int | None
    metric: str | None
    lower_is_better: bool
    run_id: str | None = None
    run_name: str | None = None
    value: float | None = None
    start_time: int | None = None


def best_runs(settings: Settings, metric: str | None = None) -> list[BestRun]:
    """Per active experiment, its best run by ``metric`` (default: its :func:`~workbench.tracking.primary_metric`).

    Two fast searches per experiment: its newest run (to learn its metric
    names) and its top runs by the metric; a NaN value never wins.
    """
    from workbench import tracking

    found = []
    for experiment in tracking.list_experiments(settings):
        newest = tracking.search_runs(settings, [experiment.experiment_id], max_results=1).runs
        if not newest:
            continue
        key = metric if metric and metric in newest[0].metrics else tracking.primary_metric(newest[0].metrics)
        best = BestRun(
            experiment.experiment_id,
            experiment.name,
            experiment.run_count,
            key,
            bool(key and tracking.lower_is_better(key)),
        )
        if key is not None:
            top = tracking.search_runs(
                settings, [experiment.experiment_id], order_by=tracking.metric_order(key), max_results=5
            ).runs
            for run in top:
                value = run.metrics.get(key)
                if value is not None and not math.isnan(value):
                    best.run_id, best.run_name, best.value, best.start_time = (
                        run.run_id,
                        run.run_name,
                        value,
                        run.start_time,
                    )
                    break
        found.append(best)
    return found


# -- champions ------------------------------------------------------------------


@dataclass
class ModelHealth:
    """A registered model, the version its alias names, and the deployments that serve it."""

    model: ModelInfo
    alias: str
    version: str | None
    deployments: list[Deployment] = field(default_factory=list)
    deployments_error: dict[str, str] | None = None

    @property
    def healthy(self) -> int:
        """How many of its deployments answer right now."""
        return sum(1 for d in self.deployments if d.state == "healthy")


def champions(settings: Settings, alias: str = "champion") -> list[ModelHealth]:
    """Every registered model with the holder of ``alias`` and its deployments' health.

    It reads the registry and the deployments, so it lives here rather than in
    either (deploy already depends on the registry). A deployments read that
    fails leaves the models readable and says why.
    """
    from workbench import deploy, registry

    models = registry.list_models(settings)
    try:
        deployments, error = deploy.list_deployments(settings), None
    except WorkbenchError as exc:
        deployments, error = [], exc.to_dict()
    return [
        ModelHealth(
            model=model,
            alias=alias,
            version=model.aliases.get(alias),
            deployments=[d for d in deployments if d.model == model.name],
            deployments_error=error,
        )
        for model in models
    ]
