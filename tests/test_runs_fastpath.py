"""The fast runs search must return exactly what MLflow returns, in MLflow's order.

Oracle tests: runs logged through a real ``mlflow server`` (the session
fixture), then random filters, orders, page sizes and views drawn by
hypothesis, walked page by page through Workbench's SQL path and through
``MlflowClient.search_runs``: same run ids, same pages, same page tokens.
A store built by ``bench/make_runs_store.py`` checks the same at a bigger
size against MLflow's ``SqlAlchemyStore`` directly.
"""

from __future__ import annotations

import dataclasses
import math
import random
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from mlflow.entities import Dataset, DatasetInput, Metric, Param, ViewType
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from bench.make_runs_store import StoreSpec, make_runs_store, sqlite_uri
from tests.servers import free_port
from workbench import tracking
from workbench.config import Settings, load_settings
from workbench.errors import InvalidInput
from workbench.records import to_dict

BASE_MS = 1_750_000_000_000
N_RUNS = 200
VIEWS = {"active": ViewType.ACTIVE_ONLY, "deleted": ViewType.DELETED_ONLY, "all": ViewType.ALL}


@dataclasses.dataclass
class Logged:
    """What the module fixture logged: two experiments of runs on the session server."""

    client: MlflowClient
    settings: Settings  # fast path: tracking_uri = the server, store_uri = its SQLite file
    mlflow_only: Settings  # the same without store_uri: MLflow's API only
    experiments: dict[str, str]  # name -> id
    run_ids: list[str]


@dataclasses.dataclass
class RunSpec:
    """Everything one logged run gets, drawn up front so logging can run in threads."""

    experiment_id: str
    start_time: int
    run_name: str | None
    tags: dict[str, str]
    metrics: list[Metric]
    params: list[Param]
    status: str | None  # None: left RUNNING, no end time
    end_time: int


def _run_specs(experiment_ids: list[str]) -> list[RunSpec]:
    """N_RUNS varied runs: ties, NaN/inf/missing metrics, number-like params, mixed case."""
    rng = random.Random(7)
    specs = []
    for i in range(N_RUNS):
        start = BASE_MS + (i // 4) * 1000  # four runs share each start time
        tags = {"mlflow.user": rng.choice(["alice", "bob", "carol"]), "seed": str(i % 5)}
        if rng.random() < 0.75:
            tags["team"] = rng.choice(["vision", "Vision", "nlp", "NLP-core"])
        if rng.random() < 0.3:
            tags["priority"] = rng.choice(["high", "low", "10", "9"])
        metrics = [Metric("acc", round(rng.random(), 2), start + step, step) for step in range(rng.choice([1, 1, 3]))]
        if rng.random() < 0.85:
            metrics.append(Metric("loss", rng.choice([rng.random(), math.nan, math.nan, 0.0, -1.5]), start, 0))
        if rng.random() < 0.4:
            metrics.append(Metric("f1", rng.choice([0.5, 0.25, 1.0, math.inf, -math.inf]), start, 0))
        params = [
            Param(key, rng.choice(choices))
            for key, choices in (
                ("model", ["rf", "RF", "gbm", "mlp"]),
                ("lr", ["0.1", "0.01", "1e-3", "1"]),
                ("depth", ["9", "10", "100"]),
                ("note", ["a_b", "a%b", "aXb", "plain"]),
            )
            if rng.random() < 0.85
        ]
        specs.append(
            RunSpec(
                experiment_id=experiment_ids[1 if i % 3 == 0 else 0],
                start_time=start,
                run_name=None if i % 40 == 0 else f"{rng.choice(['trial', 'Trial', 'sweep', 'Baseline'])}-{i:03d}",
                tags=tags,
                metrics=metrics,
                params=params,
                status=rng.choice(["FINISHED", "FINISHED", "FAILED", "KILLED"]) if rng.random() < 0.85 else None,
                end_time=start + rng.randrange(1, 5) * 500,
            )
        )
    return specs


def _log_run(client: MlflowClient, spec: RunSpec) -> str:
    run_id = client.create_run(spec.experiment_id, spec.start_time, spec.tags, spec.run_name).info.run_id
    client.log_batch(run_id, metrics=spec.metrics, params=spec.params)
    if spec.status:
        client.set_terminated(run_id, spec.status, end_time=spec.end_time)
    return run_id


def _log_runs(client: MlflowClient, experiment_ids: list[str]) -> list[str]:
    """Log the runs through the server (4 at a time: each is 2-3 round trips), delete a few, add a dataset."""
    with ThreadPoolExecutor(4) as pool:
        run_ids = list(pool.map(lambda spec: _log_run(client, spec), _run_specs(experiment_ids)))
    for run_id in run_ids[5::25]:
        client.delete_run(run_id)
    dataset = Dataset(name="iris", digest="d1", source_type="local", source="/data/iris.csv")
    client.log_inputs(run_ids[1], datasets=[DatasetInput(dataset=dataset)])
    return run_ids


@pytest.fixture(scope="module")
def logged(mlflow_server, tmp_path_factory) -> Logged:
    client = MlflowClient(mlflow_server.uri)
    stem = f"fastpath-{uuid.uuid4().hex[:8]}"
    experiments = {f"{stem}-{suffix}": client.create_experiment(f"{stem}-{suffix}") for suffix in ("a", "b")}
    run_ids = _log_runs(client, list(experiments.values()))
    workspace = tmp_path_factory.mktemp("fastpath-workspace")
    fast = load_settings(workspace, tracking_uri=mlflow_server.uri, store_uri=mlflow_server.db_uri)
    return Logged(client, fast, dataclasses.replace(fast, store_uri=None), experiments, run_ids)


@pytest.fixture
def free_port_uri() -> str:
    return f"http://127.0.0.1:{free_port()}"


# -- drawing queries -----------------------------------------------------------


def _quoted(value: str, draw) -> str:
    return f'"{value}"' if draw(st.booleans()) and "'" not in value else f"'{value}'"


def _clause(draw, run_ids: list[str]) -> str:
    kind = draw(st.sampled_from(["metric", "param", "tag", "attribute", "attribute"]))
    if kind == "metric":
        key = draw(st.sampled_from(["acc", "loss", "f1", "absent"]))
        op = draw(st.sampled_from([">", ">=", "<", "<=", "=", "!="]))
        value = draw(st.sampled_from(["0", "0.5", "0.25", "1", "-1.5", "0.75", "1e308", "-1e308", "2"]))
        return f"metrics.{key} {op} {value}"
    if kind in ("param", "tag"):
        prefix, keys, values = {
            "param": ("params", ["model", "lr", "depth", "note", "absent"], ["rf", "RF", "0.1", "1e-3", "9", "10"]),
            "tag": ("tags", ["team", "priority", "seed", "absent"], ["vision", "Vision", "NLP-core", "high", "3"]),
        }[kind]
        key = draw(st.sampled_from(keys))
        op = draw(st.sampled_from(["=", "!=", "LIKE", "ILIKE", "like", "IS NULL", "IS NOT NULL"]))
        if "NULL" in op:
            return f"{prefix}.{key} {op}"
        if "LIKE" in op.upper():
            value = draw(st.sampled_from(["%", "r%", "R%", "%is%", "%1%", "a_b", "a%b", "%-%", "V%", "1%"]))
        else:
            value = draw(st.sampled_from([*values, "a_b", "a%b"]))
        return f"{prefix}.{key} {op} {_quoted(value, draw)}"
    attribute = draw(st.sampled_from(["status", "run_name", "user_id", "start_time", "end_time", "run_id", "uri"]))
    if attribute == "status":
        op = draw(st.sampled_from(["=", "!=", "LIKE", "ILIKE"]))
        value = draw(st.sampled_from(["FINISHED", "RUNNING", "FAILED", "KILLED", "fin%", "%ED"]))
        return f"attributes.status {op} '{value}'"
    if attribute == "run_name":
        spelled = draw(st.sampled_from(["attributes.run_name", "run_name", "`Run name`", "run.run_name"]))
        op = draw(st.sampled_from(["=", "!=", "LIKE", "ILIKE"]))
        value = draw(st.sampled_from(["trial-001", "Trial-002", "trial%", "TRIAL%", "%0%", "%-1__"]))
        return f"{spelled} {op} '{value}'"
    if attribute == "user_id":
        op = draw(st.sampled_from(["=", "!=", "LIKE"]))
        return f"attributes.user_id {op} '{draw(st.sampled_from(['alice', 'bob', '%o%']))}'"
    if attribute in ("start_time", "end_time"):
        spelled = "created" if attribute == "start_time" and draw(st.booleans()) else f"attributes.{attribute}"
        op = draw(st.sampled_from([">", ">=", "<", "<=", "=", "!="]))
        return f"{spelled} {op} {BASE_MS + draw(st.integers(0, N_RUNS // 4)) * 1000}"
    if attribute == "uri":
        return f"attributes.artifact_uri LIKE '%{draw(st.sampled_from(['artifacts', 'nothing', '0']))}%'"
    chosen = draw(st.lists(st.sampled_from(run_ids), min_size=1, max_size=4))
    op = draw(st.sampled_from(["IN", "NOT IN", "=", "!="]))
    if op in ("=", "!="):
        return f"attributes.run_id {op} '{chosen[0]}'"
    return f"attributes.run_id {op} ({', '.join(repr(c) for c in chosen)})"


# (canonical key, ways to spell it)
SORT_KEYS = [
    ("metrics.acc", ["metrics.acc", "metric.acc"]),
    ("metrics.loss", ["metrics.loss"]),
    ("metrics.f1", ["metrics.f1"]),
    ("metrics.absent", ["metrics.absent"]),
    ("params.lr", ["params.lr", "param.lr"]),
    ("params.depth", ["params.depth"]),
    ("params.model", ["params.model"]),
    ("tags.team", ["tags.team", "tag.team"]),
    ("tags.priority", ["tags.priority"]),
    ("start_time", ["attributes.start_time", "start_time", "created"]),
    ("end_time", ["attributes.end_time", "end_time"]),
    ("run_name", ["attributes.run_name", "run_name"]),
    ("status", ["attributes.status", "status"]),
    ("run_id", ["attributes.run_id"]),
    ("user_id", ["user_id"]),
]


@st.composite
def orders(draw) -> list[str]:
    keys = draw(st.lists(st.sampled_from(SORT_KEYS), max_size=2, unique_by=lambda k: k[0]))
    return [
        draw(st.sampled_from(spellings)) + draw(st.sampled_from(["", " ASC", " DESC", " desc"]))
        for _, spellings in keys
    ]


def walk_workbench(
    run_settings, experiments, filter_string, order_by, size, view
) -> list[tuple[list[str], str | None]]:
    pages, token = [], None
    while True:
        page = tracking.search_runs(run_settings, experiments, filter_string, order_by, size, token, view=view)
        expected_source = "sql" if run_settings.store_uri else "mlflow"
        assert page.source == expected_source, (filter_string, page.source)
        pages.append(([r.run_id for r in page.runs], page.next_page_token))
        token = page.next_page_token
        if not token:
            return pages


def walk_mlflow(client, experiment_ids, filter_string, order_by, size, view) -> list[tuple[list[str], str | None]]:
    pages, token = [], None
    while True:
        page = client.search_runs(experiment_ids, filter_string, VIEWS[view], size, order_by, token)
        pages.append(([r.info.run_id for r in page], page.token or None))
        token = page.token
        if not token:
            return pages


# -- oracle tests ----------------------------------------------------------------


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_fast_search_matches_mlflow(logged, data):
    clauses = [_clause(data.draw, logged.run_ids) for _ in range(data.draw(st.integers(0, 3)))]
    filter_string = data.draw(st.sampled_from([" and ", " AND "])).join(clauses)
    order_by = data.draw(orders())
    size = data.draw(st.sampled_from([25, 300]))
    view = data.draw(st.sampled_from(["active", "active", "all", "deleted"]))
    names = list(logged.experiments)
    chosen = data.draw(st.sampled_from([names, names[:1], names[1:]]))
    by_name = data.draw(st.booleans())
    experiment_ids = [logged.experiments[n] for n in chosen]

    try:
        expected = walk_mlflow(logged.client, experiment_ids, filter_string, order_by, size, view)
    except MlflowException:
        event("MLflow rejected the query")
        with pytest.raises(InvalidInput):
            walk_workbench(logged.settings, chosen, filter_string, order_by, size, view)
        return
    got = walk_workbench(logged.settings, chosen if by_name else experiment_ids, filter_string, order_by, size, view)
    assert got == expected, (filter_string, order_by, size, view)
    matched = sum(len(ids) for ids, _ in got)
    event("matched " + ("none" if not matched else "all" if matched >= N_RUNS - 10 else "some"))
    event(f"pages: {min(len(got), 3)}{'+' if len(got) > 3 else ''}")


def test_fixture_exercises_what_the_oracle_needs(logged):
    """The drawn queries only prove something if the data has ties, NaNs, gaps and deletions."""
    fast = logged.settings
    everything = tracking.search_runs(fast, list(logged.experiments), max_results=1000, view="all").runs
    assert len(everything) == N_RUNS
    assert len({r.start_time for r in everything}) < N_RUNS  # shared start times
    assert any(math.isnan(r.metrics.get("loss", 0.0)) for r in everything)
    assert any("loss" not in r.metrics for r in everything)
    assert any(r.metrics.get("f1") == 1.7976931348623157e308 for r in everything)  # +inf as MLflow stores it
    assert any(r.end_time is None for r in everything)
    assert sum(r.lifecycle_stage == "deleted" for r in everything) == len(logged.run_ids[5::25])
    # NaN sorts after every value and before missing, ascending and descending alike
    for order, descending in (("metrics.loss ASC", False), ("metrics.loss DESC", True)):
        runs = tracking.search_runs(fast, list(logged.experiments), order_by=order, max_results=1000).runs
        placements = [2 if "loss" not in r.metrics else 1 if math.isnan(r.metrics["loss"]) else 0 for r in runs]
        assert placements == sorted(placements) and set(placements) == {0, 1, 2}
        values = [r.metrics["loss"] for r, p in zip(runs, placements, strict=True) if p == 0]
        assert values == sorted(values, reverse=descending)


def test_pages_carry_the_same_runs_as_mlflow(logged):
    """Beyond ids: every field of a page equals what MLflow's API gives for the same runs."""
    for filter_string, order_by in [
        ("", ["metrics.acc DESC"]),
        ("params.model ILIKE 'rf' and metrics.loss != 0.5", ["tags.team", "start_time"]),
        ("attributes.status = 'RUNNING'", None),
    ]:
        fast = tracking.search_runs(logged.settings, list(logged.experiments), filter_string, order_by, 100)
        slow = tracking.search_runs(logged.mlflow_only, list(logged.experiments), filter_string, order_by, 100)
        assert (fast.source, slow.source) == ("sql", "mlflow")
        assert fast.runs, filter_string
        assert to_dict(fast.runs) == to_dict(slow.runs)
        assert fast.next_page_token == slow.next_page_token


EDGE_CASES = [
    ("metrics.loss != 0", None),  # NaN (stored as 0) matches "!="
    ("metrics.loss = 0", None),  # NaN is stored as 0 and must not match
    ("metrics.loss <= 0", ["metrics.loss"]),
    ("metrics.f1 > 1e307", None),  # +inf is stored as the largest float
    ("metrics.f1 < -1e307", ["metrics.f1 DESC"]),
    ("params.note LIKE 'a_b'", None),  # "_" is a wildcard: a_b, a%b, aXb
    ("params.model LIKE 'r%'", None),  # LIKE is case-sensitive, also on SQLite
    ("params.model ILIKE 'r%'", ["params.model DESC"]),
    ("tags.priority IS NULL and attributes.status != 'FINISHED'", ["end_time DESC"]),
    ("attributes.run_name LIKE 'Trial%'", ["attributes.run_name DESC"]),
    ("metrics.acc > 0.5 and params.lr = '0.1'", ["metrics.loss DESC"]),
    ("tags.team LIKE 'V%'", ["params.depth", "metrics.acc"]),
    ("", ["params.depth DESC"]),  # number-like params sort as text
    ("", ["metrics.f1 DESC", "tags.team"]),
    (f"created >= {BASE_MS + 20_000}", ["created"]),
]


@pytest.mark.parametrize(("filter_string", "order_by"), EDGE_CASES)
def test_edge_cases_match_mlflow_on_both_paths(logged, filter_string, order_by):
    ids = list(logged.experiments.values())
    expected = walk_mlflow(logged.client, ids, filter_string, order_by, 120, "active")
    assert any(page_ids for page_ids, _ in expected), "the data should make this case match some runs"
    assert walk_workbench(logged.settings, ids, filter_string, order_by, 120, "active") == expected
    assert walk_workbench(logged.mlflow_only, ids, filter_string, order_by, 120, "active") == expected


def test_page_tokens_interoperate(logged):
    ids = list(logged.experiments.values())
    order = ["metrics.acc DESC", "params.model"]
    first = tracking.search_runs(logged.settings, ids, "", order, 25)
    assert first.source == "sql" and first.next_page_token
    from_mlflow = logged.client.search_runs(ids, "", ViewType.ACTIVE_ONLY, 25, order, first.next_page_token)
    second = tracking.search_runs(logged.settings, ids, "", order, 25, first.next_page_token)
    assert [r.run_id for r in second.runs] == [r.info.run_id for r in from_mlflow]
    third = tracking.search_runs(logged.settings, ids, "", order, 25, from_mlflow.token)
    expected = logged.client.search_runs(ids, "", ViewType.ACTIVE_ONLY, 25, order, second.next_page_token)
    assert [r.run_id for r in third.runs] == [r.info.run_id for r in expected]


def test_dataset_filters_go_to_mlflow(logged):
    page = tracking.search_runs(logged.settings, list(logged.experiments), "datasets.name = 'iris'")
    assert page.source == "mlflow"
    assert [r.run_id for r in page.runs] == [logged.run_ids[1]]


def test_fast_path_reads_without_the_server(logged, free_port_uri):
    """The fast path needs only the database: a dead tracking URI does not stop it."""
    offline = dataclasses.replace(logged.settings, tracking_uri=free_port_uri)
    page = tracking.search_runs(offline, list(logged.experiments), "metrics.acc >= 0.5", "metrics.acc", 10)
    assert page.source == "sql" and len(page.runs) == 10
    assert tracking.count_runs(offline, list(logged.experiments)) == N_RUNS - len(logged.run_ids[5::25])


# -- a generated store against MLflow's own SqlAlchemyStore -----------------------


@pytest.fixture(scope="module")
def generated_store(tmp_path_factory):
    return make_runs_store(StoreSpec(runs=1000, metrics=4, params=3), tmp_path_factory.mktemp("runs-store"))


@pytest.mark.parametrize(
    ("filter_string", "order_by"),
    [
        ("metrics.m0 > 0.5", ["metrics.m1 DESC"]),
        ("", ["metrics.m2"]),
        ("params.p2 = '9' and tags.team ILIKE 'vision'", ["params.p1 DESC"]),
        ("attributes.run_name ILIKE 'trial%' and metrics.m3 != 0.25", ["tags.team", "metrics.m0 DESC"]),
        ("params.p0 IS NULL", ["start_time"]),
        ("attributes.status != 'FINISHED'", ["end_time DESC", "user_id"]),
    ],
)
def test_generated_store_matches_sqlalchemy_store(generated_store, tmp_path, filter_string, order_by):
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

    uri = sqlite_uri(generated_store)
    mlflow_store = SqlAlchemyStore(uri, str(tmp_path / "artifacts"))
    run_settings = load_settings(tmp_path, tracking_uri=uri)
    assert run_settings.store_uri == uri
    experiment_ids = [str(i) for i in (0, 1, 2)]
    token, offset = None, 0
    while True:
        expected = mlflow_store.search_runs(experiment_ids, filter_string, ViewType.ACTIVE_ONLY, 200, order_by, token)
        got = tracking.search_runs(run_settings, experiment_ids, filter_string, order_by, 200, token)
        assert got.source == "sql"
        assert [r.run_id for r in got.runs] == [r.info.run_id for r in expected], (filter_string, order_by, offset)
        token = expected.token.decode() if expected.token else None
        assert got.next_page_token == token
        offset += 200
        if not token:
            break
