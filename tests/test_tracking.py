"""The tracking service against a real MLflow server and a real embedded SQLite store."""

from __future__ import annotations

import dataclasses
import json
import math
import time
import uuid

import pytest
from mlflow.entities import Metric, Param, RunTag
from mlflow.tracking import MlflowClient

from tests.servers import free_port
from workbench import tracking
from workbench.config import Settings, ensure_store_dir, load_settings
from workbench.errors import BackendUnavailable, InvalidInput, NotFound
from workbench.records import to_json

T0 = 1_760_000_000_000


@dataclasses.dataclass
class Tracked:
    """Two experiments on the session server: ``main`` holds runs a, b, c; ``empty`` none."""

    client: MlflowClient
    fast: Settings  # with the server's SQLite file as store_uri
    mlflow_only: Settings  # MLflow's API only
    main: str  # experiment name
    main_id: str
    empty: str
    deleted: str
    runs: dict[str, str]  # a, b, c, gone -> run id


@pytest.fixture(scope="module")
def tracked(mlflow_server, tmp_path_factory) -> Tracked:
    client = MlflowClient(mlflow_server.uri)
    stem = f"tracking-{uuid.uuid4().hex[:8]}"
    main_id = client.create_experiment(f"{stem}-main", tags={"team": "vision"})
    client.create_experiment(f"{stem}-empty")
    client.delete_experiment(client.create_experiment(f"{stem}-deleted"))

    runs = {}
    # a: loss at steps 0, 1, 2; acc at 0 and 2; lineage tags; artifacts in folders
    runs["a"] = client.create_run(main_id, start_time=T0, run_name="alpha").info.run_id
    client.log_batch(
        runs["a"],
        metrics=[Metric("loss", v, T0 + s, s) for s, v in ((0, 0.9), (1, 0.5), (2, 0.3))]
        + [Metric("acc", 0.6, T0, 0), Metric("acc", 0.8, T0 + 2, 2)],
        params=[Param("lr", "0.1"), Param("model", "rf"), Param("depth", "3")],
        tags=[RunTag("workbench.git.commit", "abc123"), RunTag("workbench.data.data/train.csv", "md5-1")],
    )
    client.log_text(runs["a"], "hello", "notes.txt")
    client.log_text(runs["a"], "x" * 10, "plots/curve.txt")
    client.log_text(runs["a"], "deep", "plots/raw/points.txt")
    client.set_terminated(runs["a"], "FINISHED", end_time=T0 + 100)
    # b: loss at steps 1 and 3; acc logged twice at step 2 (the later one counts); f1 only here; NaN metric
    runs["b"] = client.create_run(main_id, start_time=T0 + 1000, run_name="beta").info.run_id
    client.log_batch(
        runs["b"],
        metrics=[
            Metric("loss", 0.7, T0 + 1, 1),
            Metric("loss", 0.2, T0 + 3, 3),
            Metric("acc", 0.1, T0 + 5, 2),
            Metric("acc", 0.9, T0 + 9, 2),
            Metric("f1", 0.5, T0, 0),
            Metric("odd", math.nan, T0, 0),
        ],
        params=[Param("lr", "0.01"), Param("model", "rf")],
    )
    # c: nothing logged, still running
    runs["c"] = client.create_run(main_id, start_time=T0 + 2000, run_name="gamma").info.run_id
    runs["gone"] = client.create_run(main_id, start_time=T0 + 3000).info.run_id
    client.delete_run(runs["gone"])

    fast = load_settings(
        tmp_path_factory.mktemp("tracking-workspace"), tracking_uri=mlflow_server.uri, store_uri=mlflow_server.db_uri
    )
    return Tracked(
        client,
        fast,
        dataclasses.replace(fast, store_uri=None),
        f"{stem}-main",
        main_id,
        f"{stem}-empty",
        f"{stem}-deleted",
        runs,
    )


@pytest.fixture(params=["fast", "mlflow_only"])
def any_settings(request, tracked) -> Settings:
    """Each test using this runs once on the fast path and once on MLflow's API alone."""
    return getattr(tracked, request.param)


def unreachable_settings(tmp_path) -> Settings:
    return load_settings(tmp_path, tracking_uri=f"http://127.0.0.1:{free_port()}")


# -- experiments -------------------------------------------------------------------


def test_list_experiments(tracked):
    listed = {e.name: e for e in tracking.list_experiments(tracked.fast)}
    main = listed[tracked.main]
    assert main.experiment_id == tracked.main_id
    assert main.lifecycle_stage == "active"
    assert main.tags["team"] == "vision"
    assert main.run_count == 3  # the deleted run is not counted
    assert listed[tracked.empty].run_count == 0
    assert main.creation_time and main.last_update_time
    assert tracked.deleted not in listed

    slow = {e.name: e for e in tracking.list_experiments(tracked.mlflow_only)}
    assert slow[tracked.main].run_count is None  # no SQL: not worth paging through every run
    assert slow[tracked.main].experiment_id == main.experiment_id

    deleted = {e.name: e for e in tracking.list_experiments(tracked.fast, view="deleted")}
    assert deleted[tracked.deleted].lifecycle_stage == "deleted"
    assert tracked.main not in deleted


def test_count_runs(tracked, any_settings):
    assert tracking.count_runs(any_settings, tracked.main) == 3
    assert tracking.count_runs(any_settings, [tracked.main, tracked.empty]) == 3
    assert tracking.count_runs(any_settings, tracked.main_id, view="deleted") == 1
    assert tracking.count_runs(any_settings, [tracked.main], view="all") == 4
    assert tracking.count_runs(any_settings) >= 3


def test_experiments_by_name_or_id(tracked, any_settings):
    by_name = tracking.search_runs(any_settings, tracked.main)
    by_id = tracking.search_runs(any_settings, [tracked.main_id])
    assert [r.run_id for r in by_name.runs] == [r.run_id for r in by_id.runs]
    assert [r.run_name for r in by_name.runs] == ["gamma", "beta", "alpha"]  # newest first
    assert by_name.source == ("sql" if any_settings.store_uri else "mlflow")
    everywhere = tracking.search_runs(any_settings, None, "attributes.run_name = 'alpha'", max_results=1000)
    assert tracked.runs["a"] in [r.run_id for r in everywhere.runs]


def test_unknown_experiments_are_not_found(tracked, any_settings):
    with pytest.raises(NotFound, match="no-such-experiment"):
        tracking.search_runs(any_settings, ["no-such-experiment"])
    with pytest.raises(NotFound, match="987654321"):
        tracking.search_runs(any_settings, [tracked.main, "987654321"])
    with pytest.raises(NotFound):
        tracking.count_runs(any_settings, "no-such-experiment")


# -- one run -------------------------------------------------------------------------


def test_get_run(tracked):
    detail = tracking.get_run(tracked.fast, tracked.runs["a"])
    assert detail.run_name == "alpha"
    assert detail.status == "FINISHED"
    assert (detail.start_time, detail.end_time) == (T0, T0 + 100)
    assert detail.params == {"depth": "3", "lr": "0.1", "model": "rf"}
    assert detail.metrics == {"acc": 0.8, "loss": 0.3}  # latest step
    assert detail.experiment_id == tracked.main_id
    artifacts = {a.path: a for a in detail.artifacts}
    assert set(artifacts) == {"notes.txt", "plots", "plots/curve.txt", "plots/raw"}  # one level into folders
    assert artifacts["notes.txt"].size == 5 and not artifacts["notes.txt"].is_dir
    assert artifacts["plots"].is_dir and artifacts["plots"].size is None
    assert artifacts["plots/curve.txt"].size == 10
    assert detail.artifacts_error is None
    assert detail.lineage is not None
    assert detail.lineage.commit == "abc123"
    assert detail.lineage.data == {"data/train.csv": "md5-1"}

    running = tracking.get_run(tracked.fast, tracked.runs["c"])
    assert running.status == "RUNNING" and running.end_time is None
    assert running.artifacts == [] and running.lineage is None
    assert detail.models == [] and running.models == []  # neither logged a model


def test_get_run_lists_the_models_it_logged_oldest_first(tracked):
    from mlflow import MlflowClient

    mlflow_client = MlflowClient(tracked.fast.tracking_uri)
    run_id = tracked.runs["b"]
    experiment_id = mlflow_client.get_run(run_id).info.experiment_id
    first = mlflow_client.create_logged_model(experiment_id, name="encoder", source_run_id=run_id)
    second = mlflow_client.create_logged_model(experiment_id, name="classifier", source_run_id=run_id)
    mlflow_client.create_logged_model(experiment_id, name="unrelated")  # no source run: not this run's

    detail = tracking.get_run(tracked.fast, run_id)
    assert [(m.name, m.model_id, m.uri) for m in detail.models] == [
        ("encoder", first.model_id, f"models:/{first.model_id}"),
        ("classifier", second.model_id, f"models:/{second.model_id}"),
    ]


def test_get_run_matches_search_rows(tracked, any_settings):
    """A runs-table row and the detail view show the same values, on either path."""
    page = tracking.search_runs(any_settings, tracked.main, max_results=10)
    for row in page.runs:
        detail = tracking.get_run(any_settings, row.run_id)
        for f in dataclasses.fields(tracking.RunSummary):
            assert json.dumps(getattr(detail, f.name)) == json.dumps(getattr(row, f.name)), f.name


def test_nan_metric_survives_to_json(tracked):
    detail = tracking.get_run(tracked.fast, tracked.runs["b"])
    assert math.isnan(detail.metrics["odd"])
    assert json.loads(to_json(detail))["metrics"]["odd"] == "nan"


def test_unknown_run_is_not_found(tracked):
    missing = uuid.uuid4().hex
    with pytest.raises(NotFound):
        tracking.get_run(tracked.fast, missing)
    with pytest.raises(NotFound):
        tracking.metric_history(tracked.fast, missing, "loss")
    with pytest.raises(InvalidInput):
        tracking.get_run(tracked.fast, "  ")


def test_metric_history(tracked):
    points = tracking.metric_history(tracked.fast, tracked.runs["a"], "loss")
    assert [(p.step, p.timestamp, p.value) for p in points] == [(0, T0, 0.9), (1, T0 + 1, 0.5), (2, T0 + 2, 0.3)]
    twice = tracking.metric_history(tracked.fast, tracked.runs["b"], "acc")
    assert [(p.step, p.value) for p in twice] == [(2, 0.1), (2, 0.9)]
    with pytest.raises(NotFound) as info:
        tracking.metric_history(tracked.fast, tracked.runs["a"], "accuracy")
    assert "acc, loss" in info.value.hint


# -- compare -------------------------------------------------------------------------


def test_compare_runs_aligns_histories_by_step(tracked, any_settings):
    a, b, c = tracked.runs["a"], tracked.runs["b"], tracked.runs["c"]
    comparison = tracking.compare_runs(any_settings, [a, b, c])
    assert [r.run_id for r in comparison.runs] == [a, b, c]
    assert comparison.params_differ == {
        "depth": {a: "3", b: None, c: None},
        "lr": {a: "0.1", b: "0.01", c: None},
        "model": {a: "rf", b: "rf", c: None},
    }
    loss = comparison.metrics["loss"]
    assert loss["steps"] == [0, 1, 2, 3]
    assert loss["values"] == {a: [0.9, 0.5, 0.3, None], b: [None, 0.7, None, 0.2], c: [None, None, None, None]}
    acc = comparison.metrics["acc"]
    assert acc["steps"] == [0, 2]
    assert acc["values"][b] == [None, 0.9]  # the later of two points at one step
    assert loss["lower_is_better"] and not acc["lower_is_better"]  # surfaces colour the best value by it
    assert comparison.metrics["f1"]["values"] == {a: [None], b: [0.5], c: [None]}
    assert math.isnan(comparison.metrics["odd"]["values"][b][0])


def test_compare_runs_same_on_both_paths(tracked):
    ids = [tracked.runs["a"], tracked.runs["b"]]
    fast = tracking.compare_runs(tracked.fast, ids)
    slow = tracking.compare_runs(tracked.mlflow_only, ids)
    assert to_json(fast) == to_json(slow)
    assert "model" not in fast.params_differ  # same value in both runs


def test_compare_runs_needs_two_known_runs(tracked, any_settings):
    a = tracked.runs["a"]
    with pytest.raises(InvalidInput):
        tracking.compare_runs(any_settings, [a])
    with pytest.raises(InvalidInput):
        tracking.compare_runs(any_settings, [a, a])
    with pytest.raises(NotFound):
        tracking.compare_runs(any_settings, [a, uuid.uuid4().hex])


# -- bad input and unreachable backends ----------------------------------------------------


@pytest.mark.parametrize(
    ("filter_string", "order_by"),
    [
        ("metrics.acc >", None),
        ("metrics.acc > 'high'", None),  # metrics compare with numbers
        ("params.lr > '0.1'", None),  # params support =, !=, LIKE, ILIKE, IS NULL
        ("nonsense.key = 1", None),
        ("metrics.acc > 0.5 or metrics.acc < 0.1", None),
        ("", "metrics.acc sideways"),
        ("", ["metrics.acc", "metrics.acc DESC"]),
        ("", "datasets.name"),
    ],
)
def test_malformed_queries_are_invalid_input(tracked, any_settings, filter_string, order_by):
    with pytest.raises(InvalidInput) as info:
        tracking.search_runs(any_settings, tracked.main, filter_string, order_by)
    assert "metrics.accuracy > 0.9 and params.model = 'rf'" in info.value.hint


@pytest.mark.parametrize("max_results", [0, -1, 1001, 2.5, True])
def test_max_results_is_bounded(tracked, max_results):
    with pytest.raises(InvalidInput):
        tracking.search_runs(tracked.fast, tracked.main, max_results=max_results)


def test_bad_page_token(tracked):
    with pytest.raises(InvalidInput):
        tracking.search_runs(tracked.fast, tracked.main, page_token="not a token")
    with pytest.raises(InvalidInput):
        tracking.search_runs(tracked.fast, tracked.main, view="archived")


def test_pagination_walks_every_run_once(tracked, any_settings):
    seen, token = [], None
    while True:
        page = tracking.search_runs(
            any_settings, tracked.main, order_by="metrics.loss", max_results=2, page_token=token
        )
        seen += [r.run_name for r in page.runs]
        token = page.next_page_token
        if not token:
            break
    assert seen == ["beta", "alpha", "gamma"]  # 0.2, 0.3, no loss last


@pytest.mark.parametrize(
    "call",
    [
        lambda s: tracking.list_experiments(s),
        lambda s: tracking.search_runs(s, "anything"),
        lambda s: tracking.count_runs(s),
        lambda s: tracking.get_run(s, uuid.uuid4().hex),
        lambda s: tracking.metric_history(s, uuid.uuid4().hex, "loss"),
        lambda s: tracking.compare_runs(s, [uuid.uuid4().hex, uuid.uuid4().hex]),
    ],
)
def test_refused_connection_is_backend_unavailable_quickly(tmp_path, call):
    settings = unreachable_settings(tmp_path)
    started = time.monotonic()
    with pytest.raises(BackendUnavailable) as info:
        call(settings)
    assert time.monotonic() - started < 5
    assert settings.tracking_uri in info.value.message and info.value.hint


# -- the embedded store ---------------------------------------------------------------------


def test_reads_never_create_the_embedded_store(tmp_path):
    settings = load_settings(tmp_path)
    assert settings.uses_embedded_store and settings.store_uri == settings.tracking_uri
    assert tracking.list_experiments(settings) == []
    page = tracking.search_runs(settings, None, "metrics.acc > 0.5", "metrics.acc DESC")
    assert page.runs == [] and page.next_page_token is None
    assert tracking.count_runs(settings) == 0
    with pytest.raises(NotFound):
        tracking.get_run(settings, uuid.uuid4().hex)
    with pytest.raises(NotFound):
        tracking.metric_history(settings, uuid.uuid4().hex, "acc")
    with pytest.raises(NotFound):
        tracking.compare_runs(settings, [uuid.uuid4().hex, uuid.uuid4().hex])
    with pytest.raises(InvalidInput):  # input is still checked
        tracking.search_runs(settings, None, "metrics.acc >")
    assert list(tmp_path.iterdir()) == []


def test_embedded_store_uses_the_fast_path(tmp_path):
    settings = load_settings(tmp_path)
    ensure_store_dir(settings)
    client = MlflowClient(settings.tracking_uri)
    experiment_id = client.create_experiment("local", artifact_location=settings.artifact_location)
    for i, acc in enumerate([0.5, math.nan, 0.9]):
        run_id = client.create_run(experiment_id, start_time=T0 + i, run_name=f"r{i}").info.run_id
        client.log_batch(run_id, metrics=[Metric("acc", acc, T0, 0)], params=[Param("i", str(i))])

    page = tracking.search_runs(settings, "local", "metrics.acc >= 0.5", "metrics.acc DESC")
    assert page.source == "sql"
    assert [r.run_name for r in page.runs] == ["r2", "r0"]
    everything = tracking.search_runs(settings, "local", order_by="metrics.acc")
    assert [r.run_name for r in everything.runs] == ["r0", "r2", "r1"]  # NaN after values
    assert tracking.count_runs(settings, "local") == 3
    assert {e.name: e.run_count for e in tracking.list_experiments(settings)}["local"] == 3
    detail = tracking.get_run(settings, page.runs[0].run_id)
    assert detail.params == {"i": "2"} and detail.metrics == {"acc": 0.9}


# -- metrics: direction, default, curves ---------------------------------------


def test_metric_direction_and_default_metric():
    assert tracking.lower_is_better("val_loss") and tracking.lower_is_better("rmse")
    assert not tracking.lower_is_better("accuracy")
    assert tracking.primary_metric(["f1", "accuracy", "loss"]) == "accuracy"
    assert tracking.primary_metric(["zeta", "beta"]) == "beta"
    assert tracking.primary_metric([]) is None
    assert tracking.metric_order("accuracy") == "metrics.`accuracy` DESC"
    assert tracking.metric_order("val loss") == "metrics.`val loss` ASC"


def test_longest_metric_prefers_histories_over_single_values():
    curves = {
        "accuracy": {"a": ([0], [0.9]), "b": ([0], [0.8])},
        "val_accuracy": {"a": ([0, 1, 2], [0.1, 0.5, 0.9]), "b": ([0, 1, 2], [0.2, 0.4, 0.8])},
        "train_loss": {"a": ([0, 1, 2], [3, 2, 1]), "b": ([0, 1, 2], [3, 2, 1])},
    }
    assert tracking.longest_metric(curves) == "val_accuracy"  # a tie of histories: the familiar name
    assert tracking.longest_metric({}) is None


def test_metric_curves_agree_with_mlflow_on_the_demo_workspace(demo_workspace):
    settings = load_settings(demo_workspace)
    client = MlflowClient(tracking_uri=settings.tracking_uri, registry_uri=settings.registry_uri)
    experiment = client.get_experiment_by_name("wine-quality")
    runs = client.search_runs([experiment.experiment_id], order_by=["metrics.accuracy DESC"])

    two = tracking.metric_curves(settings, [_summary(runs[0]), _summary(runs[1])])
    history = client.get_metric_history(runs[0].info.run_id, "val_accuracy")
    steps, values = two["val_accuracy"][runs[0].info.run_id]
    assert steps == [p.step for p in history] and values == [p.value for p in history]
    one = tracking.metric_curves(settings, [_summary(runs[0])])
    assert one["val_accuracy"][runs[0].info.run_id] == (steps, values)


def _summary(run) -> tracking.RunSummary:
    return tracking.RunSummary(
        run.info.run_id,
        run.info.run_name,
        run.info.experiment_id,
        run.info.status,
        run.info.start_time,
        run.info.end_time,
        run.info.user_id,
        run.info.lifecycle_stage,
        run.info.artifact_uri,
        dict(run.data.params),
        dict(run.data.metrics),
        dict(run.data.tags),
    )
