"""Experiments and runs: list, search, inspect, compare; which metric ranks runs, and its curves.

The service behind every experiments view (JupyterLab panels, dashboards,
magics, CLI). Reads only; writes go through MLflow's API elsewhere.

Runs searches take MLflow's own filter and ``order_by`` syntax and return
MLflow's results in MLflow's order with MLflow's page tokens, but when the
tracking store's SQL database is readable (``settings.store_uri``) they run on
the fast path in :mod:`workbench._runs_sql` (milliseconds where MLflow's own
search takes minutes when sorting 100,000 runs by a metric). Anything the fast
path does not cover (dataset filters, MySQL, an unreachable database) goes to
``MlflowClient``; :attr:`RunsPage.source` says which answered.

No read creates the embedded store: with nothing logged yet, the lists are
empty and lookups of a run raise ``NotFound``.
"""

from __future__ import annotations

import dataclasses
import logging
import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from workbench import _runs_sql
from workbench._mlflow import client, mlflow_errors
from workbench._runs_sql import Condition, RunsStore, SortKey, StoreUnreadable
from workbench.config import Settings, embedded_store_exists
from workbench.errors import InvalidInput, NotFound, WorkbenchError

if TYPE_CHECKING:
    from workbench.lineage import Lineage

log = logging.getLogger(__name__)

View = Literal["active", "deleted", "all"]
_STAGES: dict[str, tuple[str, ...]] = {"active": ("active",), "deleted": ("deleted",), "all": ("active", "deleted")}

MAX_RESULTS_LIMIT = 1000
MAX_COMPARED_RUNS = 50
# folders whose contents get_run lists (one level down); further folders are listed without contents
MAX_EXPANDED_ARTIFACT_FOLDERS = 20
SEARCH_HINT = (
    "Filter example: metrics.accuracy > 0.9 and params.model = 'rf' "
    "(also tags.x, attributes.status, LIKE/ILIKE '%x%', IS NULL, run_id IN ('a', 'b')); "
    "order_by example: metrics.accuracy DESC"
)


@dataclass
class Experiment:
    """An MLflow experiment; ``run_count`` counts its active runs (None when only MLflow's API is reachable)."""

    experiment_id: str
    name: str
    lifecycle_stage: str
    artifact_location: str
    tags: dict[str, str]
    creation_time: int | None  # ms since the epoch, as MLflow stores it
    last_update_time: int | None
    run_count: int | None


@dataclass
class RunSummary:
    """One run as a row of a runs table: info, params, latest metric values, tags.

    Times are ms since the epoch (``end_time`` is None while it runs); a NaN
    metric is ``float("nan")``.
    """

    run_id: str
    run_name: str
    experiment_id: str
    status: str
    start_time: int | None
    end_time: int | None
    user: str | None
    lifecycle_stage: str
    artifact_uri: str | None
    params: dict[str, str]
    metrics: dict[str, float]
    tags: dict[str, str]


@dataclass
class Artifact:
    """A file or folder in a run's artifacts (``size`` in bytes, None for folders)."""

    path: str
    is_dir: bool
    size: int | None


@dataclass
class LoggedModelInfo:
    """A model the run logged (MLflow 3's logged models): load it with ``mlflow.pyfunc.load_model(uri)``."""

    name: str
    model_id: str
    uri: str  # "models:/<model_id>"
    status: str | None = None


@dataclass
class RunDetail(RunSummary):
    """A run with its artifacts (top level and one level into folders) and its data/code lineage."""

    artifacts: list[Artifact] = field(default_factory=list)
    # why the artifacts could not be listed (the artifact store did not answer...), else None
    artifacts_error: str | None = None
    lineage: Lineage | None = None
    # the models this run logged, oldest first (empty: it logged none)
    models: list[LoggedModelInfo] = field(default_factory=list)


@dataclass
class RunsPage:
    """One page of a runs search; pass ``next_page_token`` back for the next (None: last page).

    ``source`` is ``"sql"`` when the fast path answered, ``"mlflow"`` when MLflow's API did.
    """

    runs: list[RunSummary]
    next_page_token: str | None
    source: Literal["sql", "mlflow"]


@dataclass
class MetricPoint:
    """One logged value of a metric."""

    step: int
    timestamp: int
    value: float


@dataclass
class RunComparison:
    """Runs side by side.

    ``params_differ``: ``{param: {run_id: value or None}}`` for the params whose
    values are not the same in every run. ``metrics``: per metric key, the
    union of the logged ``steps`` (sorted) and, per run, the value at each of
    those steps (None where that run logged nothing at that step; the latest
    point when it logged several).
    """

    runs: list[RunSummary]
    params_differ: dict[str, dict[str, str | None]]
    metrics: dict[str, dict[str, Any]]


# -- experiments ---------------------------------------------------------------


def list_experiments(settings: Settings, *, view: View = "active") -> list[Experiment]:
    """The experiments (newest first) with their run counts, for the experiments list."""
    _stages(view)
    if not embedded_store_exists(settings):
        return []
    mlflow_client = client(settings)
    found = []
    token = None
    with mlflow_errors(settings.tracking_uri, "list experiments"):
        while True:
            page = mlflow_client.search_experiments(
                view_type=_view_type(view), max_results=1000, order_by=["creation_time DESC"], page_token=token
            )
            found += page
            token = page.token
            if not token:
                break
    counts = None
    store = _runs_sql.open_store(settings.store_uri)
    if store is not None:
        try:
            counts = store.run_counts(_STAGES["active"])
        except StoreUnreadable as exc:
            log.warning("Run counts unavailable, %s is unreadable: %s", settings.store_uri, exc)
    return [
        Experiment(
            experiment_id=str(e.experiment_id),
            name=e.name,
            lifecycle_stage=e.lifecycle_stage,
            artifact_location=e.artifact_location,
            tags=dict(e.tags),
            creation_time=e.creation_time,
            last_update_time=e.last_update_time,
            run_count=None if counts is None else counts.get(str(e.experiment_id), 0),
        )
        for e in found
    ]


# -- runs search ---------------------------------------------------------------


def search_runs(
    settings: Settings,
    experiments: str | list[str] | None = None,
    filter_string: str = "",
    order_by: str | list[str] | None = None,
    max_results: int = 50,
    page_token: str | None = None,
    *,
    view: View = "active",
) -> RunsPage:
    """One page of the runs matching an MLflow filter, in MLflow's order.

    ``experiments``: names or ids (None: every active experiment).
    ``filter_string`` and ``order_by`` use MLflow's search syntax
    (``metrics.accuracy > 0.9 and params.model = 'rf'``, ``metrics.accuracy DESC``);
    ``view`` picks active, deleted or all runs. Page tokens are MLflow's, so a
    token from either source works with the other.
    """
    if isinstance(max_results, bool) or not isinstance(max_results, int) or not 1 <= max_results <= MAX_RESULTS_LIMIT:
        raise InvalidInput(
            f"max_results must be between 1 and {MAX_RESULTS_LIMIT}, got {max_results!r}",
            "Page through larger results with next_page_token.",
        )
    stages = _stages(view)
    order_list = [order_by] if isinstance(order_by, str) else list(order_by or [])
    conditions, sort_keys = _parse_query(filter_string or "", order_list)
    offset = _parse_page_token(page_token)
    if not embedded_store_exists(settings):
        return RunsPage([], None, "sql" if settings.store_uri else "mlflow")

    store = _runs_sql.open_store(settings.store_uri)
    if store is not None and all(_runs_sql.supports(c.kind) for c in conditions):
        try:
            ids = _experiment_ids(settings, store, experiments)
            rows = store.search([int(i) for i in ids], stages, conditions, sort_keys, offset, max_results + 1)
        except StoreUnreadable as exc:
            log.warning("Fast runs search failed on %s, asking MLflow: %s", settings.store_uri, exc)
        else:
            more = len(rows) > max_results
            runs = [RunSummary(**row) for row in rows[:max_results]]
            return RunsPage(runs, _page_token(offset + max_results) if more else None, "sql")

    mlflow_client = client(settings)
    ids = _experiment_ids(settings, None, experiments)
    if not ids:
        return RunsPage([], None, "mlflow")
    with mlflow_errors(settings.tracking_uri, "search runs"):
        page = mlflow_client.search_runs(
            ids, filter_string or "", _view_type(view), max_results, order_list, page_token
        )
    token = page.token.decode() if isinstance(page.token, bytes) else page.token
    return RunsPage([_summary(run) for run in page], token or None, "mlflow")


def count_runs(settings: Settings, experiments: str | list[str] | None = None, *, view: View = "active") -> int:
    """How many runs the experiments hold (None: every active experiment).

    One ``count(*)`` on the fast path; through MLflow's API alone it pages
    through every run, which is slow for big experiments.
    """
    stages = _stages(view)
    if not embedded_store_exists(settings):
        return 0
    store = _runs_sql.open_store(settings.store_uri)
    if store is not None:
        try:
            return store.count([int(i) for i in _experiment_ids(settings, store, experiments)], stages)
        except StoreUnreadable as exc:
            log.warning("Fast run count failed on %s, asking MLflow: %s", settings.store_uri, exc)
    mlflow_client = client(settings)
    ids = _experiment_ids(settings, None, experiments)
    total, token = 0, None
    with mlflow_errors(settings.tracking_uri, "count runs"):
        while ids:
            page = mlflow_client.search_runs(ids, "", _view_type(view), 1000, None, token)
            total += len(page)
            token = page.token
            if not token:
                break
    return total


# -- one run -----------------------------------------------------------------


def get_run(settings: Settings, run_id: str) -> RunDetail:
    """Everything about one run for its detail view: info, params, metrics, tags, artifacts, lineage."""
    from workbench.lineage import lineage_from_tags

    _require_run_id(run_id)
    mlflow_client = client(settings)
    with mlflow_errors(settings.tracking_uri, f"run {run_id}"):
        run = mlflow_client.get_run(run_id)
        logged = mlflow_client.search_logged_models(
            experiment_ids=[run.info.experiment_id], filter_string=f"source_run_id = '{run_id}'"
        )
    summary = _summary(run)
    artifacts, artifacts_error = _list_artifacts(settings, mlflow_client, run_id)
    models = [
        LoggedModelInfo(m.name, m.model_id, f"models:/{m.model_id}", str(m.status) if m.status is not None else None)
        for m in sorted(logged, key=lambda m: m.creation_timestamp or 0)
    ]
    return RunDetail(
        **{f.name: getattr(summary, f.name) for f in dataclasses.fields(RunSummary)},
        artifacts=artifacts,
        artifacts_error=artifacts_error,
        lineage=lineage_from_tags(summary.tags),
        models=models,
    )


def metric_history(settings: Settings, run_id: str, key: str) -> list[MetricPoint]:
    """Every logged value of one metric of one run, by step then time (for a metric chart)."""
    _require_run_id(run_id)
    mlflow_client = client(settings)
    with mlflow_errors(settings.tracking_uri, f"run {run_id}"):
        points = mlflow_client.get_metric_history(run_id, key)
        if not points:
            known = sorted(mlflow_client.get_run(run_id).data.metrics)  # NotFound for an unknown run
            raise NotFound(f"Run {run_id} has no metric {key!r}", f"Its metrics: {', '.join(known) or 'none'}.")
    history = [MetricPoint(p.step, p.timestamp, p.value) for p in points]
    return sorted(history, key=lambda p: (p.step, p.timestamp))


def compare_runs(settings: Settings, run_ids: list[str]) -> RunComparison:
    """Runs side by side: the params that differ and every metric's history aligned by step."""
    ids = list(dict.fromkeys(run_ids))
    if not 2 <= len(ids) <= MAX_COMPARED_RUNS:
        raise InvalidInput(
            f"Compare needs 2 to {MAX_COMPARED_RUNS} different runs, got {len(ids)}",
            f"Pick between 2 and {MAX_COMPARED_RUNS} runs.",
        )
    for run_id in ids:
        _require_run_id(run_id)
    if not embedded_store_exists(settings):
        raise NotFound("Nothing has been logged in this workspace yet", "Log a run (or run `workbench demo`).")
    runs, histories = _runs_and_histories(settings, ids)

    params_differ: dict[str, dict[str, str | None]] = {}
    for key in sorted({k for run in runs for k in run.params}):
        values = {run.run_id: run.params.get(key) for run in runs}
        if len(set(values.values())) > 1:
            params_differ[key] = values

    metrics: dict[str, dict[str, Any]] = {}
    for key in sorted({k for _, k in histories}):
        per_run = {run.run_id: _latest_per_step(histories.get((run.run_id, key), [])) for run in runs}
        steps = sorted({step for values in per_run.values() for step in values})
        metrics[key] = {
            "steps": steps,
            "lower_is_better": lower_is_better(key),
            "values": {run_id: [values.get(step) for step in steps] for run_id, values in per_run.items()},
        }
    return RunComparison(runs=runs, params_differ=params_differ, metrics=metrics)


# -- metrics: which is better, which to rank by, their curves ----------------

# Metric names that usually rank runs, best first; the first present is the default.
PREFERRED_METRICS = ("accuracy", "val_accuracy", "f1", "auc", "r2", "val_loss", "loss", "rmse", "mae")
# A metric whose name holds one of these is better when lower.
_LOWER_IS_BETTER = ("loss", "error", "err", "rmse", "mse", "mae", "perplexity", "latency", "time")

Series = tuple[list[int], list[float]]  # steps, values


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


def metric_curves(settings: Settings, runs: list[RunSummary]) -> dict[str, dict[str, Series]]:
    """Every metric history of the runs: ``{metric: {run_id: (steps, values)}}``.

    Two or more runs go through :func:`compare_runs` (one query on the fast
    path, whatever the history length); a single run through
    :func:`metric_history`, one call per metric.
    """
    ids = list(dict.fromkeys(r.run_id for r in runs))
    if not ids:
        return {}
    if len(ids) == 1:
        curves: dict[str, dict[str, Series]] = {}
        for key in runs[0].metrics:
            points = metric_history(settings, ids[0], key)
            curves[key] = {ids[0]: ([p.step for p in points], [p.value for p in points])}
        return curves
    comparison = compare_runs(settings, ids)
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


# -- helpers -------------------------------------------------------------------


def _stages(view: str) -> tuple[str, ...]:
    if view not in _STAGES:
        raise InvalidInput(f"Unknown view {view!r}", "Use 'active', 'deleted' or 'all'.")
    return _STAGES[view]


def _view_type(view: str) -> int:
    from mlflow.entities import ViewType

    return {"active": ViewType.ACTIVE_ONLY, "deleted": ViewType.DELETED_ONLY, "all": ViewType.ALL}[view]


def _require_run_id(run_id: str) -> None:
    if not isinstance(run_id, str) or not run_id.strip():
        raise InvalidInput(f"Not a run id: {run_id!r}", "Pass a run id as shown in the runs table.")


def _parse_query(filter_string: str, order_by: list[str]) -> tuple[list[Condition], list[SortKey]]:
    """Parse and validate a filter and an order_by with MLflow's parser, as MLflow's SQL store does."""
    from mlflow.exceptions import MlflowException
    from mlflow.utils.search_utils import SearchUtils

    try:
        conditions = []
        for clause in SearchUtils.parse_search_filter(filter_string):
            kind, comparator, value = clause["type"], clause["comparator"].upper(), clause["value"]
            key = SearchUtils.translate_key_alias(clause["key"])
            # each is_* check raises for a comparator its key type does not support
            if SearchUtils.is_string_attribute(kind, key, comparator) or SearchUtils.is_numeric_attribute(
                kind, key, comparator
            ):
                pass
            elif SearchUtils.is_metric(kind, comparator):
                value = float(value)
            elif not (
                SearchUtils.is_param(kind, comparator)
                or SearchUtils.is_tag(kind, comparator)
                or SearchUtils.is_dataset(kind, comparator)
            ):
                raise InvalidInput(f"Invalid search expression type {kind!r}", SEARCH_HINT)
            conditions.append(Condition(kind, key, comparator, value))

        sort_keys: list[SortKey] = []
        for clause in order_by:
            kind, key, ascending = SearchUtils.parse_order_by_for_search_runs(clause)
            key = SearchUtils.translate_key_alias(key)
            if kind not in ("attribute", "metric", "parameter", "tag"):
                raise InvalidInput(f"Cannot order runs by {kind} keys: {clause!r}", SEARCH_HINT)
            if any((s.kind, s.key) == (kind, key) for s in sort_keys):
                raise InvalidInput(f"order_by names {kind} {key!r} twice: {order_by}", SEARCH_HINT)
            sort_keys.append(SortKey(kind, key, ascending))
    except MlflowException as exc:
        raise InvalidInput(f"Invalid runs query: {exc.message}", SEARCH_HINT) from exc
    return conditions, sort_keys


def _parse_page_token(page_token: str | None) -> int:
    from mlflow.exceptions import MlflowException
    from mlflow.utils.search_utils import SearchUtils

    try:
        offset = SearchUtils.parse_start_offset_from_page_token(page_token)
    except MlflowException as exc:
        raise InvalidInput(f"Invalid page token: {exc.message}", "Pass a next_page_token from a search.") from exc
    if offset < 0:
        raise InvalidInput(f"Invalid page token (offset {offset})", "Pass a next_page_token from a search.")
    return offset


def _page_token(offset: int) -> str:
    from mlflow.utils.search_utils import SearchUtils

    return SearchUtils.create_page_token(offset).decode()


def _experiment_ids(settings: Settings, store: RunsStore | None, experiments: str | list[str] | None) -> list[str]:
    """Experiment ids for names or ids (ids win when a name looks like another experiment's id).

    None means every active experiment. Unknown references raise ``NotFound``.
    """
    if experiments is None:
        if store is not None:
            return [str(i) for i in store.active_experiment_ids()]
        mlflow_client = client(settings)
        ids, token = [], None
        with mlflow_errors(settings.tracking_uri, "list experiments"):
            while True:
                page = mlflow_client.search_experiments(max_results=1000, page_token=token)
                ids += [e.experiment_id for e in page]
                token = page.token
                if not token:
                    return ids
    refs = [experiments] if isinstance(experiments, str) else [str(e) for e in experiments]
    if store is not None:
        resolved = {ref: str(i) for ref, i in store.experiment_ids(refs).items()}
    else:
        resolved = _mlflow_experiment_ids(settings, refs)
    missing = [ref for ref in refs if ref not in resolved]
    if missing:
        known = store.experiment_names(10) if store is not None else []
        hint = f"Known experiments include: {', '.join(known)}." if known else "List them with list_experiments()."
        raise NotFound(f"No experiment named or numbered {', '.join(map(repr, missing))}", hint)
    return list(dict.fromkeys(resolved[ref] for ref in refs))


def _mlflow_experiment_ids(settings: Settings, refs: list[str]) -> dict[str, str]:
    from mlflow.exceptions import MlflowException

    mlflow_client = client(settings)
    resolved = {}
    for ref in refs:
        experiment = None
        if ref.isascii() and ref.isdigit():
            with mlflow_errors(settings.tracking_uri, f"experiment {ref}"):
                try:
                    experiment = mlflow_client.get_experiment(ref)
                except MlflowException as exc:
                    if exc.error_code != "RESOURCE_DOES_NOT_EXIST":
                        raise
        if experiment is None:
            with mlflow_errors(settings.tracking_uri, f"experiment {ref}"):
                experiment = mlflow_client.get_experiment_by_name(ref)
        if experiment is not None:
            resolved[ref] = str(experiment.experiment_id)
    return resolved


def _summary(run: Any) -> RunSummary:
    """A RunSummary from an MLflow ``Run`` entity."""
    info, data = run.info, run.data
    return RunSummary(
        run_id=info.run_id,
        run_name=info.run_name or "",
        experiment_id=str(info.experiment_id),
        status=info.status,
        start_time=info.start_time,
        end_time=info.end_time,
        user=info.user_id,
        lifecycle_stage=info.lifecycle_stage,
        artifact_uri=info.artifact_uri,
        params=dict(sorted(data.params.items())),
        metrics=dict(sorted(data.metrics.items())),
        tags=dict(sorted(data.tags.items())),
    )


def _list_artifacts(settings: Settings, mlflow_client: Any, run_id: str) -> tuple[list[Artifact], str | None]:
    """The run's top-level artifacts, each folder followed by its entries; an error message instead of raising."""
    listed: list[Artifact] = []
    expanded = 0
    try:
        with mlflow_errors(settings.tracking_uri, "list artifacts"):
            for entry in mlflow_client.list_artifacts(run_id):
                listed.append(Artifact(entry.path, entry.is_dir, None if entry.is_dir else entry.file_size))
                if entry.is_dir and expanded < MAX_EXPANDED_ARTIFACT_FOLDERS:
                    expanded += 1
                    listed += [
                        Artifact(inner.path, inner.is_dir, None if inner.is_dir else inner.file_size)
                        for inner in mlflow_client.list_artifacts(run_id, entry.path)
                    ]
    except WorkbenchError as exc:
        return listed, exc.message
    return listed, None


def _runs_and_histories(
    settings: Settings, run_ids: list[str]
) -> tuple[list[RunSummary], dict[tuple[str, str], list[tuple[int, int, float]]]]:
    """The runs and all their metric histories: two queries on the fast path, else one call per run and key."""
    store = _runs_sql.open_store(settings.store_uri)
    if store is not None:
        try:
            rows = store.runs(run_ids)
            found = {row["run_id"] for row in rows}
            missing = [run_id for run_id in run_ids if run_id not in found]
            if missing:
                raise NotFound(f"No run with id {', '.join(missing)}", "Check the run ids in the runs table.")
            return [RunSummary(**row) for row in rows], store.metric_histories(run_ids)
        except StoreUnreadable as exc:
            log.warning("Fast compare failed on %s, asking MLflow: %s", settings.store_uri, exc)
    mlflow_client = client(settings)
    runs = []
    histories: dict[tuple[str, str], list[tuple[int, int, float]]] = {}
    for run_id in run_ids:
        with mlflow_errors(settings.tracking_uri, f"run {run_id}"):
            run = _summary(mlflow_client.get_run(run_id))
            for key in run.metrics:
                points = mlflow_client.get_metric_history(run_id, key)
                histories[(run_id, key)] = sorted(
                    ((p.step, p.timestamp, p.value) for p in points), key=lambda point: point[:2]
                )
        runs.append(run)
    return runs, histories


def _latest_per_step(points: list[tuple[int, int, float]]) -> dict[int, float]:
    """Per step, the value logged last (the larger value when two share a timestamp; NaN lowest)."""
    best: dict[int, tuple[int, float, float]] = {}
    for step, timestamp, value in points:
        rank = (timestamp, -math.inf if math.isnan(value) else value)
        if step not in best or rank > best[step][:2]:
            best[step] = (*rank, value)
    return {step: entry[2] for step, entry in sorted(best.items())}
