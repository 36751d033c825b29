"""Local deployments against a real MLflow server and real `mlflow models serve` processes.

The module shares two deployments to keep the number of model server starts
(about 7 s of CPU each) low, so the tests run in file order:

- ``main`` (restart policy on-failure) is started by a CLI process that exits
  at once; it is used, killed from outside, restarted, and finally loses its
  supervisor;
- ``zd`` (restart policy off) serves ``@live`` while the alias moves under a
  stream of requests, then has its model server killed, is restarted, and
  is stopped through the CLI.

Every process a workspace started is found by its command line or its
``WORKBENCH_DEPLOYMENT_STATE`` environment variable and killed at the end.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import psutil
import pytest
import requests
from click.testing import CliRunner
from mlflow import MlflowClient

from workbench import audit, deploy, jobs
from workbench._proxy import VERSION_HEADER
from workbench.config import load_settings
from workbench.deploy_cli import COMMANDS
from workbench.errors import Conflict, InvalidInput, NotFound, WorkbenchError

pytestmark = pytest.mark.slow

COLUMNS = ["a", "b"]
ROWS = [[0.0, 0.0], [1.0, 1.0], [0.0, 1.0], [1.0, 0.0]]
# v1 predicts column a, v2 predicts its opposite: every answer shows which version gave it
EXPECTED = {"1": [0, 1], "2": [1, 0]}
# in-process CLI calls read the workspace's workbench.toml, whatever other tests left in the environment
_NO_ENV_URIS = {"MLFLOW_TRACKING_URI": None, "MLFLOW_REGISTRY_URI": None}
PAYLOAD = {"dataframe_split": {"columns": COLUMNS, "data": ROWS[:2]}}


# --------------------------------------------------------------------------- fixtures and helpers


def register_two_versions(uri: str, name: str) -> None:
    """``name`` v1 (label = column a) and v2 (the opposite), each with an input example; @champion and @live on v1.

    Also used by bench/bench_deploy.py.
    """
    import mlflow
    import pandas as pd
    from sklearn.linear_model import LogisticRegression

    frame = pd.DataFrame(ROWS, columns=COLUMNS)
    mlflow.set_tracking_uri(uri)
    try:
        for labels in ([0, 1, 0, 1], [1, 0, 1, 0]):
            with mlflow.start_run():
                mlflow.sklearn.log_model(
                    LogisticRegression().fit(frame, labels),
                    name="model",
                    pip_requirements=["scikit-learn"],
                    input_example=frame.head(2),
                    registered_model_name=name,
                )
    finally:
        mlflow.set_tracking_uri(None)  # back to the default; also drops the MLFLOW_TRACKING_URI it set
    client = mlflow.MlflowClient(uri)
    for alias in ("champion", "live"):
        client.set_registered_model_alias(name, alias, "1")


@pytest.fixture(scope="module")
def models(mlflow_server):
    """A model with v1 and v2 (@champion and @live on v1), one with a signature but no input example,
    and one whose only version cannot load."""
    import mlflow
    import pandas as pd
    from mlflow.models import infer_signature
    from sklearn.linear_model import LogisticRegression

    name = f"dep-{uuid.uuid4().hex[:8]}"
    register_two_versions(mlflow_server.uri, name)
    frame = pd.DataFrame(ROWS, columns=COLUMNS)
    mlflow.set_tracking_uri(mlflow_server.uri)
    try:
        with mlflow.start_run():
            mlflow.sklearn.log_model(
                LogisticRegression().fit(frame, [0, 1, 0, 1]),
                name="model",
                pip_requirements=["scikit-learn"],
                signature=infer_signature(frame, [0, 1, 0, 1]),
                registered_model_name=f"{name}-signature",
            )
    finally:
        mlflow.set_tracking_uri(None)  # back to the default; also drops the MLFLOW_TRACKING_URI it set
    client = MlflowClient(mlflow_server.uri)

    broken = f"{name}-broken"
    run = client.create_run(client.create_experiment(f"exp-{broken}"))
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "model"
        folder.mkdir()
        (folder / "MLmodel").write_text(
            'flavors:\n  python_function:\n    loader_module: workbench_no_such_loader\n    python_version: "3.11"\n'
        )
        client.log_artifacts(run.info.run_id, str(folder), "model")
    client.create_registered_model(broken)
    client.create_model_version(broken, source=f"runs:/{run.info.run_id}/model", run_id=run.info.run_id)
    return {"name": name, "broken": broken, "signature": f"{name}-signature", "client": client}


def _workspace(root: Path, uri: str) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "workbench.toml").write_text(f'tracking_uri = "{uri}"\n')
    return root


@pytest.fixture(scope="module")
def ws(mlflow_server, tmp_path_factory):
    """The shared workspace (its workbench.toml names the MLflow server); every process it started dies at the end."""
    root = _workspace(tmp_path_factory.mktemp("deploy-ws"), mlflow_server.uri)
    yield root
    _stop_all(load_settings(root, tracking_uri=mlflow_server.uri))


@pytest.fixture(scope="module")
def settings(ws, mlflow_server):
    return load_settings(ws, tracking_uri=mlflow_server.uri)


@pytest.fixture
def fresh(mlflow_server, tmp_path):
    """Settings for a workspace of this test alone."""
    settings = load_settings(_workspace(tmp_path / "ws", mlflow_server.uri), tracking_uri=mlflow_server.uri)
    yield settings
    _stop_all(settings)


def _stop_all(settings) -> None:
    root = settings.workspace
    for record in deploy.list_deployments(settings):
        with contextlib.suppress(WorkbenchError):
            deploy.stop(settings, record.name)
    for proc in _processes_of(root):
        proc.kill()


def _processes_of(root: Path) -> list[psutil.Process]:
    """Live processes started for deployments of the workspace ``root``."""
    found = []
    for proc in psutil.process_iter(["cmdline", "status"]):
        if proc.pid == os.getpid() or proc.info["status"] == psutil.STATUS_ZOMBIE:
            continue
        try:
            if str(root) in " ".join(proc.info["cmdline"] or []) or proc.environ().get(
                "WORKBENCH_DEPLOYMENT_STATE", ""
            ).startswith(str(root)):
                found.append(proc)
        except psutil.Error:
            continue
    return found


def _alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _wait_for(condition, timeout: float, interval: float = 0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(interval)
    return condition()


def _port_is_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _cli(*args: str, workspace: Path) -> subprocess.CompletedProcess:
    """The deployment commands in a process of their own (like a terminal or CI job)."""
    env = {k: v for k, v in os.environ.items() if k not in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")}
    return subprocess.run(
        [sys.executable, "-m", "workbench.deploy_cli", *args, "--workspace", str(workspace)],
        capture_output=True,
        text=True,
        timeout=240,
        env=env,
    )


def _command(name: str):
    return next(c for c in COMMANDS if c.name == name)


# --------------------------------------------------------------------------- refused before anything starts


def test_bad_references_are_refused_before_anything_starts(models, fresh):
    name = models["name"]
    cases = [
        (f"no-such-model-{uuid.uuid4().hex[:6]}@champion", NotFound),
        (f"{name}/99", NotFound),
        (f"{name}@nobody", NotFound),
        (name, InvalidInput),  # neither alias nor version
        (f"{name}@bad alias", InvalidInput),
    ]
    for ref, error in cases:
        with pytest.raises(error) as info:
            deploy.deploy(fresh, ref, name="x")
        assert info.value.hint, ref
    with pytest.raises(InvalidInput):
        deploy.deploy(fresh, f"{name}@champion", restart_policy="sometimes")
    with pytest.raises(InvalidInput):
        deploy.deploy(fresh, f"{name}@champion", name="../escape")
    assert deploy.list_deployments(fresh) == []
    assert _processes_of(fresh.workspace) == []
    refused = audit.read(fresh, action="deploy")
    assert refused and all(e.outcome == "refused" for e in refused)


def test_deploy_resolves_a_server_registry_without_importing_mlflow(models, settings, ws, mlflow_server):
    """`workbench deploy` reads the version over MLflow's REST API (registry.version_status): no MLflow import."""
    name = models["name"]
    client = MlflowClient(tracking_uri=mlflow_server.uri)
    for alias in ("champion", "live"):
        expected = client.get_model_version_by_alias(name, alias).version
        assert deploy.resolve(settings, deploy.parse_model_ref(f"{name}@{alias}")) == str(expected)
    script = (
        "import sys\n"
        "from workbench import deploy\n"
        "from workbench.config import load_settings\n"
        f"settings = load_settings({str(ws)!r}, tracking_uri={mlflow_server.uri!r})\n"
        f"print(deploy.resolve(settings, deploy.parse_model_ref({name + '@champion'!r})), 'mlflow' in sys.modules)\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["1", "False"]


def test_a_target_without_its_plugin_is_a_clear_error(models, fresh):
    with pytest.raises(NotFound) as info:
        deploy.deploy(fresh, f"{models['name']}@champion", target="kserve")
    assert "plugin" in info.value.message and "kserve" in info.value.message
    assert "install" in info.value.hint.lower()
    assert deploy.list_deployments(fresh) == []


def test_a_taken_port_is_a_conflict_and_starts_nothing(models, fresh):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(Conflict) as info:
            deploy.deploy(fresh, f"{models['name']}@champion", name="clash", port=port)
    assert str(port) in info.value.message and "--port" in info.value.hint
    assert deploy.list_deployments(fresh) == []
    assert _processes_of(fresh.workspace) == []


def test_model_references_and_restart_policies():
    assert deploy.parse_model_ref("models:/iris@champion") == deploy.ModelRef("iris", alias="champion")
    assert deploy.parse_model_ref("iris/v3") == deploy.ModelRef("iris", version="3")
    assert deploy.default_name(deploy.parse_model_ref("my model/3")) == "my-model-v3"
    assert deploy.parse_restart_policy("on-failure:2") == ("on-failure", 2)
    assert deploy.parse_restart_policy("off") == ("off", 0)


def test_a_long_workspace_path_still_gets_a_private_control_socket(mlflow_server, tmp_path):
    deep = tmp_path.joinpath(*["a-rather-long-folder-name"] * 5)
    settings = load_settings(_workspace(deep, mlflow_server.uri), tracking_uri=mlflow_server.uri)
    files = deploy._files(settings, "name")
    assert len(str(files.socket)) <= 100 and files.socket.parent.name == f"workbench-{os.getuid()}"
    assert files.state.parent == deep / ".workbench" / "deployments"


def test_a_sample_from_the_signature_when_there_is_no_input_example(models, fresh):
    sample = deploy.sample_payload(fresh, models["signature"], "1")
    assert sample == {"dataframe_split": {"columns": COLUMNS, "data": [[0.0, 0.0]]}}
    with_example = deploy.sample_payload(fresh, models["name"], "1")
    assert with_example == PAYLOAD


def test_cli_errors_are_a_message_and_a_hint(models, fresh):
    result = CliRunner(env=_NO_ENV_URIS).invoke(
        _command("deploy"), [f"{models['name']}@nobody", "--workspace", str(fresh.workspace)], catch_exceptions=False
    )
    assert result.exit_code == 1
    assert "Error: " in result.stderr and "Hint: " in result.stderr
    assert "Traceback" not in result.output + result.stderr


# --------------------------------------------------------------------------- the main deployment


@pytest.fixture(scope="module")
def main(models, ws):
    """``main``: @champion, started by a CLI process that exits as soon as the endpoint is healthy."""
    done = _cli("deploy", f"{models['name']}@champion", "--name", "main", "--json", workspace=ws)
    assert done.returncode == 0, done.stderr + done.stdout
    return json.loads(done.stdout)


def test_deploy_outlives_the_process_that_started_it(main, ws, settings):
    assert main["state"] == "healthy" and main["version"] == "1"
    assert main["endpoint"] == f"http://127.0.0.1:{main['port']}"
    # the CLI process is gone; the endpoint still answers, through the proxy
    ping = requests.get(main["endpoint"] + "/ping", timeout=5)
    assert ping.status_code == 200 and ping.headers[VERSION_HEADER] == "1"
    assert _alive(main["supervisor_pid"]) and _alive(main["backend_pid"])
    # this process never started it: the record comes from the state files
    [found] = deploy.list_deployments(settings)
    assert (found.name, found.state, found.supervisor_pid) == ("main", "healthy", main["supervisor_pid"])
    [entry] = audit.read(settings, action="deploy", target="main")
    assert entry.outcome == "ok" and entry.after["version"] == "1"


def test_predict_with_a_sample_from_the_input_example(models, main, settings):
    result = deploy.predict(settings, "main")
    assert result.request == PAYLOAD  # the model's saved serving input example
    assert result.response == {"predictions": EXPECTED["1"]}
    assert result.version == "1" and result.status_code == 200
    explicit = deploy.predict(settings, "main", {"dataframe_split": {"columns": COLUMNS, "data": [[1.0, 0.0]]}})
    assert explicit.response == {"predictions": [1]}
    # a sample built from a signature is a valid request for a model with that schema
    from_signature = deploy.sample_payload(settings, models["signature"], "1")
    assert deploy.predict(settings, "main", from_signature).response == {"predictions": [0]}
    with pytest.raises(InvalidInput):
        deploy.predict(settings, "main", {"dataframe_split": {"columns": ["nope"], "data": [["text"]]}})


def test_predict_and_list_through_the_cli(main, ws, tmp_path, settings):
    body = tmp_path / "body.json"
    body.write_text(json.dumps({"dataframe_split": {"columns": COLUMNS, "data": [[0.0, 1.0]]}}))
    runner = CliRunner(env=_NO_ENV_URIS)
    result = runner.invoke(_command("predict"), ["main", "--json-input", str(body), "--json", "--workspace", str(ws)])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["response"] == {"predictions": [0]}
    listing = runner.invoke(_command("deployments"), ["--workspace", str(ws)])
    assert listing.exit_code == 0 and "main" in listing.output and "healthy" in listing.output


def test_logs_show_the_model_server_and_the_supervisor(main, ws, settings):
    text = deploy.logs(settings, "main", lines=200)
    assert "Uvicorn running on http://127.0.0.1:" in text
    assert "traffic now goes to v1" in text
    assert "POST /invocations" not in text  # no access log lines: the log does not grow per request
    assert len(deploy.logs(settings, "main", lines=3).split("\n")) == 3


def test_a_killed_model_server_is_detected_and_restarted(main, ws, settings):
    before = deploy.get(settings, "main")
    os.kill(before.backend_pid, signal.SIGKILL)
    killed = time.monotonic()
    noticed = _wait_for(lambda: deploy.get(settings, "main").state != "healthy", timeout=10, interval=0.05)
    detected_after = time.monotonic() - killed
    assert noticed, "the dead model server was never reported"
    assert detected_after < 5.0  # the bound; the supervisor checks every 0.5 s
    report = deploy.get(settings, "main")
    assert report.state == "restarting" and "exited" in report.last_error, (report, deploy.logs(settings, "main"))
    healthy = _wait_for(lambda: (r := deploy.get(settings, "main")).state == "healthy" and r, timeout=120)
    assert healthy, deploy.logs(settings, "main", 40)
    assert healthy.restarts == 1, (healthy, deploy.logs(settings, "main"))
    assert healthy.backend_pid != before.backend_pid
    assert healthy.endpoint == before.endpoint and healthy.version == "1"
    assert deploy.predict(settings, "main").response == {"predictions": EXPECTED["1"]}
    actions = [(e.action, e.outcome) for e in audit.read(settings, target="main")]
    assert ("deploy.failure", "failed") in actions and ("deploy.auto-restart", "ok") in actions


def test_a_vanished_supervisor_is_marked_dead_and_cleaned_up(main, ws, settings):
    # a process that did not start it finds it live
    listed = _cli("deployments", "--json", workspace=ws)
    assert listed.returncode == 0, listed.stderr
    [seen] = [d for d in json.loads(listed.stdout) if d["name"] == "main"]
    assert seen["state"] == "healthy"
    record = deploy.get(settings, "main")
    os.kill(record.supervisor_pid, signal.SIGKILL)
    assert _wait_for(lambda: not _alive(record.supervisor_pid), timeout=10)
    [dead] = [d for d in deploy.list_deployments(settings) if d.name == "main"]
    assert dead.state == "dead" and "gone" in dead.last_error
    # its model server went with it (parent-death signal, and the reader's clean-up)
    assert _wait_for(lambda: not _alive(record.backend_pid), timeout=20)
    assert _wait_for(lambda: _port_is_free(record.port), timeout=10)
    assert any(e.action == "deploy.lost" for e in audit.read(settings, target="main"))
    assert deploy.stop(settings, "main").state == "stopped"


# --------------------------------------------------------------------------- a model that cannot load


def test_a_model_that_fails_to_load_reports_its_log_and_leaves_nothing(models, fresh):
    with pytest.raises(deploy.DeploymentFailed) as info:
        deploy.deploy(fresh, f"{models['broken']}/1", name="broken")
    error = info.value
    assert "ModuleNotFoundError" in error.message and "workbench_no_such_loader" in error.log_tail
    assert "Nothing was left running" in error.hint and error.to_dict()["log_tail"] == error.log_tail
    record = deploy.get(fresh, "broken")
    assert record.state == "failed"
    assert not _alive(record.supervisor_pid)
    assert _processes_of(fresh.workspace) == []
    assert _port_is_free(record.port)
    assert "workbench_no_such_loader" in deploy.logs(fresh, "broken")
    [entry] = audit.read(fresh, action="deploy", target="broken")
    assert entry.outcome == "failed"


# --------------------------------------------------------------------------- zero downtime while the alias moves


@pytest.fixture(scope="module")
def zd(models, settings):
    """``zd``: @live with restart policy off, started in this process as a job (``wait=False``)."""
    starting = deploy.deploy(settings, f"{models['name']}@live", name="zd", restart_policy="off", wait=False)
    assert starting.state == "starting" and starting.job_id
    job = jobs.manager().wait(starting.job_id, timeout=240)
    assert job.state == "succeeded", job.error
    assert job.result["state"] == "healthy" and job.result["endpoint"] == starting.endpoint
    return deploy.get(settings, "zd")


def test_moving_the_alias_swaps_without_a_failed_request(models, zd, ws, settings):
    url = f"{zd.endpoint}/invocations"
    results: list[tuple[float, float, int | None, str | None, object]] = []
    stop = threading.Event()
    lock = threading.Lock()

    def send(session: requests.Session | None) -> None:
        post = session.post if session else requests.post  # keep-alive, and a new connection each time
        while not stop.is_set() and len(results) < 2000:
            sent = time.monotonic()
            try:
                response = post(url, json=PAYLOAD, timeout=30)
                row = (sent, time.monotonic(), response.status_code, response.headers.get(VERSION_HEADER))
                row += (response.json().get("predictions") if response.status_code == 200 else response.text,)
            except requests.RequestException as exc:
                row = (sent, time.monotonic(), None, None, repr(exc))
            with lock:
                results.append(row)
            time.sleep(0.01)

    threads = [threading.Thread(target=send, args=(s,)) for s in (requests.Session(), None)]
    for thread in threads:
        thread.start()
    try:
        assert _wait_for(lambda: len(results) >= 20, timeout=30)
        moving = time.monotonic()
        models["client"].set_registered_model_alias(models["name"], "live", "2")
        [swapped] = deploy.refresh_alias(settings, models["name"], "live")
        switched = time.monotonic()
        assert swapped.version == "2" and swapped.endpoint == zd.endpoint
        # keep sending until the new version has answered a while
        assert _wait_for(lambda: sum(1 for r in results if r[0] > switched) >= 50, timeout=60)
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=60)
    failed = [r for r in results if r[2] != 200]
    assert failed == [], failed[:5]
    during = [r for r in results if moving <= r[0] <= switched]
    assert len(during) >= 20, "the stream of requests did not cover the swap"
    for _, _, _, version, predictions in results:
        assert predictions == EXPECTED[version]
    assert {r[3] for r in results if r[1] < switched - 1} >= {"1"}
    assert {r[3] for r in results if r[0] > switched} == {"2"}
    # the old model server is stopped once its requests finished
    assert _wait_for(lambda: not _alive(zd.backend_pid), timeout=30)
    [entry] = audit.read(settings, action="deploy.swap", target="zd")
    assert (entry.before, entry.after, entry.outcome) == ("1", "2", "ok")


def test_a_killed_model_server_under_policy_off_is_reported_and_stays_down(zd, ws, settings):
    before = deploy.get(settings, "zd")
    os.kill(before.backend_pid, signal.SIGKILL)
    killed = time.monotonic()
    assert _wait_for(lambda: deploy.get(settings, "zd").state != "healthy", timeout=10, interval=0.05)
    assert time.monotonic() - killed < 5.0
    time.sleep(2)  # no restart may follow
    report = deploy.get(settings, "zd")
    assert report.state == "unhealthy" and report.restarts == 0 and report.backend_pid is None
    assert "exited with code" in report.last_error
    answer = requests.get(f"{before.endpoint}/ping", timeout=5)
    assert answer.status_code == 503  # the endpoint itself stays up and says so
    with pytest.raises(Conflict):
        deploy.predict(settings, "zd")
    # a restart brings it back on the same endpoint, with the alias resolved again
    again = deploy.restart(settings, "zd")
    assert (again.state, again.version, again.endpoint) == ("healthy", "2", before.endpoint)
    assert deploy.predict(settings, "zd").response == {"predictions": EXPECTED["2"]}


def test_undeploy_stops_everything(zd, ws, settings):
    record = deploy.get(settings, "zd")
    pids = [record.supervisor_pid, record.backend_pid]
    result = CliRunner(env=_NO_ENV_URIS).invoke(_command("undeploy"), ["zd", "--workspace", str(ws)])
    assert result.exit_code == 0, result.output
    assert deploy.get(settings, "zd").state == "stopped"
    assert not any(_alive(pid) for pid in pids)
    assert _port_is_free(record.port)
    assert not any(p.pid in pids for p in _processes_of(ws))
    assert [e.after["state"] for e in audit.read(settings, action="deploy.stop", target="zd")] == ["stopped"]
    forgotten = CliRunner(env=_NO_ENV_URIS).invoke(_command("undeploy"), ["zd", "--forget", "--workspace", str(ws)])
    assert forgotten.exit_code == 0
    with pytest.raises(NotFound):
        deploy.get(settings, "zd")
