"""The Jupyter server extension against real backends (pytest-jupyter).

Coroutine tests run on pytest-jupyter's own event loop (no asyncio marker:
pytest-asyncio would run them on another loop than the server's).

The demo workspace is the server's root: a real git + DVC repository with a
local remote and a real MLflow store. Tests that change it put it back.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import re
import time
from pathlib import Path

import pytest
import tornado.httpclient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mlflow import MlflowClient
from traitlets.config import Config

from tests.servers import MlflowServer, SilentServer
from workbench import __version__, gpu
from workbench.server.routes import ROUTES, STREAMS, openapi

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def jp_server_config():
    return Config({"ServerApp": {"jpserver_extensions": {"workbench.server": True}}})


@pytest.fixture
def jp_root_dir(demo_workspace):
    return demo_workspace


@pytest.fixture(autouse=True)
def simulated_gpus(monkeypatch):
    monkeypatch.setenv("WORKBENCH_GPU_SOURCE", "simulated")
    monkeypatch.setenv("WORKBENCH_GPU_INTERVAL", "0.2")
    yield
    gpu.close_samplers()


async def call(jp_fetch, path, *, method="GET", body=None, params=None, **kwargs):
    """A request to the API; returns (status, JSON)."""
    response = await jp_fetch(
        "workbench",
        "api",
        *path.split("/"),
        method=method,
        body=None if body is None else json.dumps(body),
        params=params,
        raise_error=False,
        **kwargs,
    )
    return response.code, json.loads(response.body or b"null")


def tracking_uri(workspace: Path) -> str:
    return f"sqlite:///{workspace.resolve() / '.workbench' / 'mlflow.db'}"


# ---------------------------------------------------------------- the document


def test_every_route_is_described_in_the_committed_openapi_document():
    committed = json.loads((ROOT / "workbench" / "server" / "openapi.json").read_text())
    generated = openapi(__version__)
    assert committed == json.loads(json.dumps(generated)), (
        "run: python -m workbench.server.routes > workbench/server/openapi.json"
    )
    for route in ROUTES:
        described = committed["paths"][f"/{route.path}"]
        assert {e.method.lower() for e in route.endpoints} == set(described)
    assert all(f"/{path}" in committed["paths"] for path in STREAMS)


async def test_openapi_is_served(jp_fetch):
    status, document = await call(jp_fetch, "openapi.json")
    assert status == 200 and document["info"]["title"] == "Workbench API"


# ---------------------------------------------------------------- happy paths


async def test_workspace_data_and_experiment_routes(jp_fetch, demo_workspace):
    status, body = await call(jp_fetch, "status")
    assert status == 200 and not body["errors"]
    assert {e["name"]: e["runs"] for e in body["experiments"]}["wine-quality"] == 6

    status, body = await call(jp_fetch, "data/status")
    assert status == 200 and "data/wine.csv" in {e["path"] for e in body["entries"]}
    status, body = await call(jp_fetch, "data/revisions", params={"path": "data/wine.csv"})
    assert status == 200 and [r["message"] for r in body] == ["wine data v2", "wine data v1"]
    status, body = await call(jp_fetch, "data/diff", params={"rev_a": "HEAD~2", "rev_b": "HEAD"})
    assert status == 200 and "data/wine.csv" in {c["path"] for c in body["changes"] if c["change"] == "modified"}
    status, body = await call(jp_fetch, "data/pipeline")
    assert status == 200 and {s["name"] for s in body["stages"] if s["kind"] == "stage"} == {
        "prepare",
        "train",
        "evaluate",
    }
    assert {"stage": "train", "upstream": "prepare"} in body["edges"]
    status, body = await call(jp_fetch, "data/params-metrics")
    assert status == 200 and body["params"] and body["metrics"]

    status, experiments = await call(jp_fetch, "experiments")
    assert status == 200
    experiment_id = next(e["experiment_id"] for e in experiments if e["name"] == "wine-quality")
    status, page = await call(
        jp_fetch,
        "runs",
        params={"experiment": experiment_id, "order_by": "metrics.accuracy DESC", "max_results": "4"},
    )
    assert status == 200 and page["source"] == "sql" and len(page["runs"]) == 4 and page["next_page_token"]
    theirs = MlflowClient(tracking_uri(demo_workspace)).search_runs([experiment_id], order_by=["metrics.accuracy DESC"])
    status, rest = await call(
        jp_fetch,
        "runs",
        params={
            "experiment": experiment_id,
            "order_by": "metrics.accuracy DESC",
            "page_token": page["next_page_token"],
        },
    )
    assert [r["run_id"] for r in page["runs"] + rest["runs"]] == [r.info.run_id for r in theirs]

    run_id = page["runs"][0]["run_id"]
    status, run = await call(jp_fetch, f"runs/{run_id}")
    assert status == 200 and run["lineage"]["commit"]
    (logged,) = run["models"]  # the demo logs one model per run, MLflow 3 style
    assert logged["name"] == "model" and logged["uri"] == f"models:/{logged['model_id']}"
    assert "classification_report.json" in {a["path"] for a in run["artifacts"]}
    status, history = await call(jp_fetch, f"runs/{run_id}/metrics/val_accuracy")
    assert status == 200 and len(history) >= 40
    status, compared = await call(jp_fetch, "compare", params=[("run_ids", r["run_id"]) for r in page["runs"][:2]])
    assert status == 200 and "val_accuracy" in compared["metrics"]


async def test_settings_overrides_apply_per_server_and_bad_ones_change_nothing(jp_fetch, demo_workspace, tmp_path):
    status, body = await call(jp_fetch, "settings")
    assert status == 200 and body["overrides"] == {}
    assert Path(body["workspace"]) == demo_workspace.resolve() and body["sources"]["tracking_uri"] == "default"
    assert body["gpu_source"] == "simulated" and body["sources"]["gpu_source"] == "environment"

    other = tmp_path / "other"
    other.mkdir()
    try:
        # another tracking store and GPU source, as JupyterLab's settings editor would send them
        store = f"sqlite:///{other / 'mlflow.db'}"
        MlflowClient(store).create_experiment("elsewhere", artifact_location=(other / "artifacts").as_uri())
        chosen = {"tracking_uri": store, "gpu_source": "none"}
        status, body = await call(jp_fetch, "settings", method="PUT", body=chosen)
        assert status == 200, body
        assert body["tracking_uri"] == store and body["sources"]["tracking_uri"] == "argument"
        assert body["overrides"] == {"tracking_uri": store, "gpu_source": "none"}
        status, experiments = await call(jp_fetch, "experiments")
        assert status == 200 and "elsewhere" in {e["name"] for e in experiments}
        assert "wine-quality" not in {e["name"] for e in experiments}
        status, snapshot = await call(jp_fetch, "gpu")
        assert status == 200 and snapshot["source"] == "none"

        # bad values are refused with a hint and leave the overrides as they were
        for bad, code in (({"gpu_source": "quantum"}, 400), ({"workspace": str(tmp_path / "missing")}, 404)):
            status, body = await call(jp_fetch, "settings", method="PUT", body=bad)
            assert status == code and body["hint"], body
        status, body = await call(jp_fetch, "settings", method="PUT", body={"color": "red"})
        assert status == 400 and "Known" in body["hint"]
        status, body = await call(jp_fetch, "settings")
        assert body["overrides"] == {"tracking_uri": store, "gpu_source": "none"}
    finally:
        # an empty value clears an override: the workspace's own settings again
        status, body = await call(jp_fetch, "settings", method="PUT", body={"tracking_uri": "", "gpu_source": ""})
    assert status == 200 and body["overrides"] == {} and body["sources"]["tracking_uri"] == "default"
    status, experiments = await call(jp_fetch, "experiments")
    assert "wine-quality" in {e["name"] for e in experiments}
    entries = [json.loads(line) for line in (demo_workspace / ".workbench" / "audit.jsonl").read_text().splitlines()]
    changes = [e for e in entries if e["action"] == "settings"]
    assert [e["outcome"] for e in changes[-4:]] == ["ok", "refused", "refused", "ok"]
    assert changes[-1]["before"] == {"tracking_uri": store, "gpu_source": "none"} and changes[-1]["after"] == {}


async def test_registry_routes_promote_rollback_and_audit(jp_fetch, demo_workspace):
    client = MlflowClient(tracking_uri(demo_workspace))
    status, models = await call(jp_fetch, "models")
    assert status == 200 and models[0]["aliases"] == {"champion": "2"}
    status, detail = await call(jp_fetch, "models/wine-classifier")
    assert status == 200 and [v["version"] for v in detail["versions"]] == ["2", "1"]
    status, version = await call(jp_fetch, "models/wine-classifier/versions/@champion")
    assert status == 200 and version["version"] == "2" and version["lineage"]["commit"]
    status, comparison = await call(jp_fetch, "models/wine-classifier/promotion", params={"version": "1"})
    assert status == 200 and comparison["current"]["version"] == "2"

    status, move = await call(jp_fetch, "models/wine-classifier/promote", method="POST", body={"version": "1"})
    try:
        assert status == 200 and (move["before"], move["after"]) == ("2", "1")
        assert str(client.get_model_version_by_alias("wine-classifier", "champion").version) == "1"
        status, steps = await call(jp_fetch, "models/wine-classifier/aliases/champion/history")
        assert status == 200 and steps[-1] == {"v": "2", "by": "1"}
    finally:
        status, back = await call(jp_fetch, "models/wine-classifier/rollback", method="POST", body={})
    assert status == 200 and back["after"] == "2"
    assert str(client.get_model_version_by_alias("wine-classifier", "champion").version) == "2"

    status, entries = await call(jp_fetch, "audit", params={"action": "promote"})
    assert status == 200 and entries[-1]["after"] == "1"
    assert entries[-1]["actor"] not in ("", None, "root")  # the Jupyter identity, not the OS user


async def test_data_jobs_and_the_jobs_stream(jp_fetch, jp_ws_fetch):
    ws = await jp_ws_fetch("workbench", "api", "jobs", "stream")
    status, job = await call(jp_fetch, "data/push", method="POST", body={})
    assert status == 202 and job["kind"] == "dvc.push"
    seen = []
    while True:
        event = json.loads(await asyncio.wait_for(ws.read_message(), timeout=60))
        if event["job"]["id"] == job["id"]:
            seen.append(event["event"])
            if event["event"] == "finished":
                assert event["job"]["state"] == "succeeded"
                break
    ws.close()
    assert seen[0] == "created" and seen[-1] == "finished"
    status, listed = await call(jp_fetch, "jobs")
    assert status == 200 and job["id"] in {j["id"] for j in listed}
    status, one = await call(jp_fetch, f"jobs/{job['id']}")
    assert status == 200 and one["result"]["pushed"] == 0  # the demo pushed everything already
    status, cancelled = await call(jp_fetch, f"jobs/{job['id']}/cancel", method="POST", body={})
    assert status == 200 and cancelled["state"] == "succeeded"  # a finished job stays as it ended

    status, checkout = await call(jp_fetch, "data/checkout", method="POST", body={"targets": ["data/wine.csv"]})
    assert status == 202
    status, pull = await call(jp_fetch, "data/pull", method="POST", body={"targets": ["data/wine.csv"]})
    assert status == 202
    for job_id in (checkout["id"], pull["id"]):
        for _ in range(200):
            status, one = await call(jp_fetch, f"jobs/{job_id}")
            if one["state"] in ("succeeded", "failed"):
                break
            await asyncio.sleep(0.1)
        assert one["state"] == "succeeded", one


async def test_gpu_snapshot_history_and_stream(jp_fetch, jp_ws_fetch):
    status, sample = await call(jp_fetch, "gpu")
    assert status == 200 and sample["simulated"] is True and sample["gpus"]
    ws = await jp_ws_fetch("workbench", "api", "gpu", "stream", params={"interval": "0.4"})
    stamps = []
    for _ in range(3):
        message = json.loads(await asyncio.wait_for(ws.read_message(), timeout=10))
        assert message["source"] == "simulated"
        stamps.append(message["timestamp"])
    ws.close()
    # the client asked for 0.4 s: never faster, though the sampler runs at 0.2 s
    assert all(b - a >= 0.29 for a, b in itertools.pairwise(stamps))
    status, history = await call(jp_fetch, "gpu/history", params={"seconds": "60"})
    assert status == 200 and len(history) >= 3


async def test_gpu_stream_encodes_each_sample_once_for_all_clients(jp_fetch, jp_ws_fetch, monkeypatch):
    from workbench.server import handlers

    encoded = []
    real = handlers.to_dict

    def counting(value):
        encoded.append(getattr(value, "timestamp", None))
        return real(value)

    monkeypatch.setattr(handlers, "to_dict", counting)
    clients = [await jp_ws_fetch("workbench", "api", "gpu", "stream") for _ in range(3)]
    received = [[json.loads(await asyncio.wait_for(ws.read_message(), timeout=10)) for _ in range(4)] for ws in clients]
    for ws in clients:
        ws.close()
    stamps = {message["timestamp"] for messages in received for message in messages}
    # three clients, one encoding per sample (a sample may be encoded again after a newer one)
    assert len(encoded) <= len(stamps) + 2, (len(encoded), len(stamps))
    assert all(len(messages) == 4 for messages in received)


async def test_kernel_actions_through_the_server(jp_fetch):
    response = await jp_fetch("api", "kernels", method="POST", body=json.dumps({"name": "python3"}))
    kernel_id = json.loads(response.body)["id"]
    status, result = await call(jp_fetch, f"gpu/kernels/{kernel_id}/interrupt", method="POST", body={})
    assert status == 200 and result["kernel_id"] == kernel_id
    status, result = await call(jp_fetch, f"gpu/kernels/{kernel_id}/shutdown", method="POST", body={})
    assert status == 200
    status, error = await call(jp_fetch, f"gpu/kernels/{kernel_id}/shutdown", method="POST", body={})
    assert status == 404 and error["hint"]
    status, entries = await call(jp_fetch, "audit", params={"target": f"kernel:{kernel_id}"})
    assert [(e["action"], e["outcome"]) for e in entries] == [
        ("kernel.interrupt", "ok"),
        ("kernel.shutdown", "ok"),
        ("kernel.shutdown", "refused"),
    ]


# ---------------------------------------------------------------- authentication


def _concrete(path: str) -> str:
    return re.sub(r"\{\w+\}", "x", path)


async def test_every_route_refuses_unauthenticated_requests(jp_fetch, jp_ws_fetch):
    for route in ROUTES:
        for endpoint in route.endpoints:
            response = await jp_fetch(
                "workbench",
                "api",
                *_concrete(route.path).split("/"),
                method=endpoint.method,
                body="{}" if endpoint.method in ("POST", "PUT") else None,
                headers={"Authorization": "token wrong"},
                raise_error=False,
                follow_redirects=False,
            )
            assert response.code == 403, f"{endpoint.method} {route.path} answered {response.code}"
    for path in STREAMS:
        with pytest.raises(tornado.httpclient.HTTPClientError) as refused:
            await jp_ws_fetch("workbench", "api", *path.split("/"), headers={"Authorization": "token wrong"})
        assert refused.value.code == 403


async def test_state_changing_routes_need_the_xsrf_token(jp_fetch):
    # a browser session: the login cookie, without the token header
    login = await jp_fetch("api", "status")
    cookie = "; ".join(c.split(";")[0] for c in login.headers.get_list("Set-Cookie"))
    assert cookie
    for route in ROUTES:
        for endpoint in route.endpoints:
            if not endpoint.changes_state:
                continue
            response = await jp_fetch(
                "workbench",
                "api",
                *_concrete(route.path).split("/"),
                method=endpoint.method,
                body="{}" if endpoint.method in ("POST", "PUT") else None,
                headers={"Authorization": "", "Cookie": cookie},
                raise_error=False,
            )
            assert response.code == 403, f"{endpoint.method} {route.path} answered {response.code} without XSRF"
            assert "xsrf" in response.body.decode().lower()
    # the same cookie with a matching XSRF cookie and header gets through (to a 404: no such deployment)
    response = await jp_fetch(
        "workbench",
        "api",
        "deployments",
        "ghost",
        "restart",
        method="POST",
        body="{}",
        headers={"Authorization": "", "Cookie": f"{cookie}; _xsrf=abc123", "X-XSRFToken": "abc123"},
        raise_error=False,
    )
    assert response.code == 404, response.body


# ---------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("method", "path", "params", "body", "status"),
    [
        ("GET", "runs", {"filter_string": "metrics.accuracy >>> 1"}, None, 400),
        ("GET", "runs", {"max_results": "many"}, None, 400),
        ("GET", "runs", {"max_results": "100000"}, None, 400),
        ("GET", "runs", {"experiment": "no-such-experiment"}, None, 404),
        ("GET", "runs/0123456789abcdef0123456789abcdef", None, None, 404),
        ("GET", "models/no-such-model", None, None, 404),
        ("GET", "models/wine-classifier/versions/99", None, None, 404),
        ("GET", "data/diff", {"rev_a": "no-such-rev"}, None, 404),
        ("GET", "data/diff", None, None, 400),
        ("GET", "data/status", {"remote": "perhaps"}, None, 400),
        ("POST", "models/wine-classifier/promote", None, {"version": "2"}, 409),
        ("POST", "models/wine-classifier/promote", None, {"version": "1", "alias": "latest"}, 400),
        ("POST", "models/wine-classifier/promote", None, {"version": 1}, 400),
        ("POST", "models/wine-classifier/promote", None, {"version": "1", "colour": "red"}, 400),
        ("POST", "models/wine-classifier/promote", None, {}, 400),
        ("POST", "deployments", None, {"model": "no-such-model@champion"}, 404),
        ("GET", "deployments/ghost", None, None, 404),
        ("GET", "jobs/ghost", None, None, 404),
        ("GET", "no/such/route", None, None, 404),
    ],
)
async def test_bad_input_gets_a_json_error_with_a_hint(jp_fetch, method, path, params, body, status):
    code, error = await call(jp_fetch, path, method=method, params=params, body=body)
    assert code == status, error
    assert error["error"] and "hint" in error and "Traceback" not in json.dumps(error)


async def test_malformed_and_oversized_bodies(jp_fetch):
    response = await jp_fetch(
        "workbench", "api", "models", "wine-classifier", "promote", method="POST", body="{not json", raise_error=False
    )
    assert response.code == 400 and "not JSON" in json.loads(response.body)["error"]
    response = await jp_fetch(
        "workbench",
        "api",
        "deployments",
        method="POST",
        body=json.dumps({"model": "x" * (2 << 20)}),
        raise_error=False,
    )
    assert response.code == 413


async def test_paths_never_reach_outside_the_workspace(jp_fetch, demo_workspace, tmp_path):
    outside = tmp_path / "secret.csv"
    outside.write_text("secret\n")
    link = demo_workspace / "data" / "escape"
    link.symlink_to(tmp_path, target_is_directory=True)
    try:
        for path in ("../../etc/passwd", "/etc/passwd", str(outside), "data/escape/secret.csv", "data/../../x"):
            code, error = await call(jp_fetch, "data/revisions", params={"path": path})
            assert code == 400 and "outside the workspace" in error["error"], path
            code, error = await call(jp_fetch, "data/push", method="POST", body={"targets": [path]})
            assert code == 400, path
    finally:
        link.unlink()


# ---------------------------------------------------------------- a backend going away


@pytest.fixture
def remote_tracking(tmp_path, monkeypatch):
    server = MlflowServer(tmp_path / "mlflow").start()
    MlflowClient(server.uri).create_experiment("remote-experiment")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", server.uri)
    monkeypatch.delenv("WORKBENCH_STORE_URI", raising=False)
    yield server
    server.stop()


async def test_tracking_server_stopped_gives_503_and_recovers(jp_fetch, remote_tracking):
    code, experiments = await call(jp_fetch, "experiments")
    assert code == 200 and "remote-experiment" in {e["name"] for e in experiments}
    remote_tracking.stop()
    started = time.monotonic()
    code, error = await call(jp_fetch, "experiments")
    assert code == 503 and "MLFLOW_TRACKING_URI" in error["hint"]
    assert time.monotonic() - started < 5
    code, status = await call(jp_fetch, "status")
    assert code == 200 and "experiments" in status["errors"] and status["data"]  # data still shows
    remote_tracking.start()
    code, experiments = await call(jp_fetch, "experiments")
    assert code == 200 and "remote-experiment" in {e["name"] for e in experiments}


@pytest.fixture
def hanging_tracking(monkeypatch):
    """A 'tracking server' that accepts connections and never answers."""
    with SilentServer() as silent:
        monkeypatch.setenv("MLFLOW_TRACKING_URI", silent.uri)
        yield


async def test_a_slow_backend_never_freezes_the_gpu_stream(jp_fetch, jp_ws_fetch, hanging_tracking):
    ws = await jp_ws_fetch("workbench", "api", "gpu", "stream", params={"interval": "0.2"})
    await asyncio.wait_for(ws.read_message(), timeout=10)
    slow = asyncio.ensure_future(call(jp_fetch, "experiments"))
    await asyncio.sleep(0.1)
    gaps, last = [], time.monotonic()
    for _ in range(5):
        await asyncio.wait_for(ws.read_message(), timeout=10)
        now = time.monotonic()
        gaps.append(now - last)
        last = now
    assert not slow.done(), "the slow call should still be waiting for its backend"
    assert max(gaps) < 1.0, gaps  # samples every ~0.2 s while the slow call hangs
    code, _ = await slow
    assert code == 503
    ws.close()


# ---------------------------------------------------------------- fuzzing


def _get_routes():
    return [(r, e) for r in ROUTES for e in r.endpoints if e.method == "GET" and not e.in_server]


async def test_fuzzed_query_parameters_never_cause_a_5xx(jp_fetch):
    text = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=30)
    cases = []

    @settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    @given(
        choice=st.integers(min_value=0, max_value=len(_get_routes()) - 1),
        path_value=text.filter(lambda v: v not in ("", ".", "..") and "/" not in v),
        values=st.lists(text, min_size=3, max_size=3),
    )
    def draw(choice, path_value, values):
        cases.append((choice, path_value, values))

    draw()
    for choice, path_value, values in cases:
        route, endpoint = _get_routes()[choice]
        path = re.sub(r"\{\w+\}", path_value.replace("\\", "\\\\"), route.path)
        params = {p.name: v for p, v in zip([p for p in endpoint.params if p.where == "query"], values, strict=False)}
        response = await jp_fetch(
            "workbench", "api", *path.split("/"), params=params, raise_error=False, request_timeout=30
        )
        assert response.code < 500, (route.path, path_value, params, response.body[:300])
        json.loads(response.body)


# ---------------------------------------------------------------- deployments


async def _wait_for(jp_fetch, path, predicate, timeout=120):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        code, body = await call(jp_fetch, path)
        if code == 200 and predicate(body):
            return body
        await asyncio.sleep(0.5)
    raise AssertionError(f"{path} never reached the expected state: {body}")


async def test_deploy_predict_logs_restart_stop_through_the_api(jp_fetch):
    code, started = await call(
        jp_fetch, "deployments", method="POST", body={"model": "wine-classifier@champion", "name": "api-test"}
    )
    assert code == 202 and started["state"] == "starting" and started["job_id"]
    try:
        healthy = await _wait_for(jp_fetch, "deployments/api-test", lambda d: d["state"] == "healthy")
        assert healthy["version"] == "2" and healthy["endpoint"].startswith("http://127.0.0.1:")
        # the job ends just after the deployment reports healthy (it sees the state file next)
        job = await _wait_for(
            jp_fetch, f"jobs/{started['job_id']}", lambda j: j["state"] not in ("queued", "running"), timeout=30
        )
        assert job["state"] == "succeeded", job
        code, listed = await call(jp_fetch, "deployments")
        assert code == 200 and "api-test" in {d["name"] for d in listed}

        code, prediction = await call(jp_fetch, "deployments/api-test/predict", method="POST", body={})
        assert code == 200 and prediction["status_code"] == 200 and prediction["version"] == "2"
        assert len(prediction["response"]["predictions"]) == len(prediction["request"]["dataframe_split"]["data"])
        code, logs = await call(jp_fetch, "deployments/api-test/logs", params={"lines": "50"})
        assert code == 200 and logs

        # promoting the served alias swaps the deployment to the new version at the same address
        code, move = await call(jp_fetch, "models/wine-classifier/promote", method="POST", body={"version": "1"})
        try:
            assert code == 200 and [d["name"] for d in move["deployments"]] == ["api-test"]
            swapped = await _wait_for(jp_fetch, "deployments/api-test", lambda d: d["version"] == "1")
            assert swapped["endpoint"] == healthy["endpoint"]
        finally:
            code, back = await call(jp_fetch, "models/wine-classifier/rollback", method="POST", body={})
            assert code == 200 and back["after"] == "2"
        code, restarted = await call(jp_fetch, "deployments/api-test/restart", method="POST", body={})
        assert code == 200 and restarted["version"] == "2" and restarted["state"] == "healthy"
    finally:
        code, stopped = await call(jp_fetch, "deployments/api-test", method="DELETE")
    assert code == 200 and stopped["state"] == "stopped"
    code, entries = await call(jp_fetch, "audit", params={"target": "api-test"})
    assert {"deploy", "deploy.swap", "deploy.restart", "deploy.stop"} <= {e["action"] for e in entries}
