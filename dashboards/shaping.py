"""Data shaping the dashboards need that other surfaces will want too.

These functions only call public service functions and return plain
records. They live here until the services grow them; each says which
service it belongs in. Nothing here imports Panel, so they are usable (and
tested) without a browser.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import math
from collections import Counter
from dataclasses import dataclass, field

from workbench import data, deploy, registry, tracking
from workbench.config import Settings
from workbench.errors import WorkbenchError

# Metric names that usually rank runs, best first; the first present is the default.
PREFERRED_METRICS = ("accuracy", "val_accuracy", "f1", "auc", "r2", "val_loss", "loss", "rmse", "mae")
# A metric whose name holds one of these is better when lower.
_LOWER_IS_BETTER = ("loss", "error", "err", "rmse", "mse", "mae", "perplexity", "latency", "time")


def lower_is_better(metric: str) -> bool:
    """Whether smaller values of ``metric`` are better (losses and errors), judged by its name."""
    name = metric.lower()
    return any(word in name for word in _LOWER_IS_BETTER)


def primary_metric(keys: list[str] | set[str]) -> str | None:
    """The metric to rank runs by when nobody chose one: a familiar name, else the first alphabetically."""
    present = set(keys)
    for name in PREFERRED_METRICS:
        if name in present:
            return name
    return min(present) if present else None


def metric_order(metric: str, best_first: bool = True) -> str:
    """An MLflow ``order_by`` clause for ``metric`` (quoted, so any key works), best or worst first."""
    descending = (not lower_is_better(metric)) == best_first
    return f"metrics.`{metric}` {'DESC' if descending else 'ASC'}"


def warm_up(settings: Settings) -> None:
    """Make the first calls into MLflow and DVC one after another (they import their backends on first use).

    Errors are left for the pages to show; only the imports matter here.
    """
    for first_call in (
        lambda: tracking.search_runs(settings, max_results=1),
        lambda: registry.list_models(settings),
        lambda: data.status(settings),
    ):
        with contextlib.suppress(WorkbenchError):
            first_call()


# ----------------------------------------------------------------------------- recent runs (tracking)


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
    """Count the runs of every active experiment started in the last ``days`` days (belongs in tracking).

    Pages through the matching runs newest first, up to ``cap`` of them.
    """
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


# ----------------------------------------------------------------------------- best runs (tracking)


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
    """Per active experiment, its best run by ``metric`` (default: its :func:`primary_metric`) (belongs in tracking).

    Two fast searches per experiment: its newest run (to learn its metric
    names) and its top runs by the metric; a NaN value never wins.
    """
    found = []
    for experiment in tracking.list_experiments(settings):
        newest = tracking.search_runs(settings, [experiment.experiment_id], max_results=1).runs
        if not newest:
            continue
        key = metric if metric and metric in newest[0].metrics else primary_metric(newest[0].metrics)
        best = BestRun(
            experiment.experiment_id, experiment.name, experiment.run_count, key, bool(key and lower_is_better(key))
        )
        if key is not None:
            top = tracking.search_runs(
                settings, [experiment.experiment_id], order_by=metric_order(key), max_results=5
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


# ----------------------------------------------------------------------------- champions (registry + deploy)


@dataclass
class ModelHealth:
    """A registered model, the version its alias names, and the deployments that serve it."""

    model: registry.ModelInfo
    alias: str
    version: str | None
    deployments: list[deploy.Deployment] = field(default_factory=list)
    deployments_error: dict[str, str] | None = None

    @property
    def healthy(self) -> int:
        """How many of its deployments answer right now."""
        return sum(1 for d in self.deployments if d.state == "healthy")


def champions(settings: Settings, alias: str = "champion") -> list[ModelHealth]:
    """Every registered model with the holder of ``alias`` and its deployments' health (belongs in registry).

    A deployments read that fails leaves the models readable and says why.
    """
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


# ----------------------------------------------------------------------------- metric curves (tracking)


Series = tuple[list[int], list[float]]  # steps, values


def metric_curves(settings: Settings, runs: list[tracking.RunSummary]) -> dict[str, dict[str, Series]]:
    """Every metric history of the runs: ``{metric: {run_id: (steps, values)}}`` (belongs in tracking).

    Two or more runs go through :func:`workbench.tracking.compare_runs` (one
    query on the fast path, whatever the history length); a single run
    through :func:`workbench.tracking.metric_history`, one call per metric.
    """
    ids = list(dict.fromkeys(r.run_id for r in runs))
    if not ids:
        return {}
    if len(ids) == 1:
        curves: dict[str, dict[str, Series]] = {}
        for key in runs[0].metrics:
            points = tracking.metric_history(settings, ids[0], key)
            curves[key] = {ids[0]: ([p.step for p in points], [p.value for p in points])}
        return curves
    comparison = tracking.compare_runs(settings, ids)
    curves = {}
    for key, aligned in comparison.metrics.items():
        per_run = {}
        for run_id, values in aligned["values"].items():
            pairs = [(step, value) for step, value in zip(aligned["steps"], values, strict=True) if value is not None]
            if pairs:
                per_run[run_id] = ([p[0] for p in pairs], [p[1] for p in pairs])
        curves[key] = per_run
    return curves


def longest_metric(curves: dict[str, dict[str, Series]]) -> str | None:
    """The metric with the most points over all runs (ties: the :func:`primary_metric` of those)."""
    points = {key: sum(len(steps) for steps, _values in per_run.values()) for key, per_run in curves.items()}
    if not points:
        return None
    most = max(points.values())
    return primary_metric([key for key, n in points.items() if n == most])


# ----------------------------------------------------------------------------- pipeline layout (data)


def pipeline_layout(stages: list[str], edges: list[tuple[str, str]]) -> dict[str, tuple[float, float]]:
    """Positions for drawing a pipeline left to right (belongs in data, next to ``pipeline()``).

    ``edges`` are ``(stage, upstream)`` pairs as :class:`workbench.data.PipelineEdge`
    has them. A stage's column is the length of the longest chain of
    upstreams before it; stages of one column are spread vertically around 0.
    """
    upstreams: dict[str, set[str]] = {name: set() for name in stages}
    for stage, upstream in edges:
        upstreams.setdefault(stage, set()).add(upstream)
        upstreams.setdefault(upstream, set())
    column: dict[str, int] = {}

    def depth(name: str, seen: frozenset[str] = frozenset()) -> int:
        if name not in column:
            parents = [u for u in upstreams[name] if u not in seen]  # a cycle would be a DVC error; never loop
            column[name] = 1 + max((depth(u, seen | {name}) for u in parents), default=-1)
        return column[name]

    for name in upstreams:
        depth(name)
    by_column: dict[int, list[str]] = {}
    for name in sorted(upstreams):
        by_column.setdefault(column[name], []).append(name)
    positions = {}
    for x, names in by_column.items():
        for i, name in enumerate(names):
            positions[name] = (float(x), (len(names) - 1) / 2 - i)
    return positions
