"""Notebook magics: real notebooks on a real kernel against a real MLflow server and a git + DVC repository.

Each notebook runs in its own kernel (the venv's Python, through a kernelspec
made for the test), with ``MLFLOW_TRACKING_URI`` pointing at the session's
``mlflow server`` and the repository as its working folder. The terminal
view, completion and the tracked-run service are tested in-process.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
import time
import uuid
from pathlib import Path

import mlflow
import nbformat
import pytest
import yaml
from IPython.core.completer import provisionalcompleter
from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import AsyncKernelManager
from mlflow import MlflowClient
from nbclient import NotebookClient
from traitlets.config import Config

from workbench import magics, tracked_run
from workbench._magics_render import Line, RunList, Table, to_html, to_text
from workbench.config import load_settings
from workbench.errors import BackendUnavailable, Conflict
from workbench.gpu.sampler import close_samplers
from workbench.tracking import RunSummary

pytestmark = pytest.mark.slow

KERNEL = "workbench-test"
ANSI = re.compile(r"\x1b\[[0-9;]*m")
HOLOVIEWS_MIME = "application/vnd.holoviews_exec.v0+json"


# --------------------------------------------------------------------------- fixtures and helpers


def sh(cwd: Path, *cmd: str) -> str:
    return subprocess.run(cmd, cwd=cwd, check=True, capture_output=True, text=True).stdout.strip()


@pytest.fixture(autouse=True)
def _close_samplers():
    yield
    close_samplers()


@pytest.fixture
def repo(make_repo):
    """A git + DVC repository with one tracked data file and a params.yaml, all committed."""
    root = make_repo()
    (root / "data").mkdir()
    (root / "data" / "train.csv").write_text("x,y\n1,2\n3,4\n")
    (root / "params.yaml").write_text("lr: 0.1\n")
    sh(root, "dvc", "add", "-q", "data/train.csv")
    sh(root, "git", "add", "-A")
    sh(root, "git", "commit", "-q", "-m", "data")
    return root


@pytest.fixture(scope="module")
def kernel_dirs(tmp_path_factory) -> Path:
    """A kernelspec that runs this venv's Python, whatever ``python`` is on the PATH."""
    root = tmp_path_factory.mktemp("kernels")
    spec = root / KERNEL
    spec.mkdir()
    argv = [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    (spec / "kernel.json").write_text(json.dumps({"argv": argv, "display_name": KERNEL, "language": "python"}))
    return root


def kernel_env(tmp_path: Path, tracking_uri: str, **extra: str) -> dict[str, str]:
    ipython_dir = tmp_path / "ipython"
    ipython_dir.mkdir(exist_ok=True)
    return {
        **os.environ,
        "MLFLOW_TRACKING_URI": tracking_uri,
        "WORKBENCH_GPU_SOURCE": "simulated",
        "WORKBENCH_GPU_INTERVAL": "0.5",
        "IPYTHONDIR": str(ipython_dir),
        **extra,
    }


def run_notebook(cells: list[str | tuple[str, str]], cwd: Path, env: dict[str, str], kernel_dirs: Path):
    """Execute the cells on a fresh kernel; a ``(source, "raises")`` cell is expected to fail."""
    nb = nbformat.v4.new_notebook()
    for entry in cells:
        source, tags = (entry[0], ["raises-exception"]) if isinstance(entry, tuple) else (entry, [])
        nb.cells.append(nbformat.v4.new_code_cell(source, metadata={"tags": tags}))
    km = AsyncKernelManager(kernel_name=KERNEL, kernel_spec_manager=KernelSpecManager(kernel_dirs=[str(kernel_dirs)]))
    client = NotebookClient(nb, km=km, kernel_name=KERNEL, timeout=180, resources={"metadata": {"path": str(cwd)}})
    client.execute(env=env)
    return nb.cells


def text_of(cell) -> str:
    """Everything a cell printed or showed as text, tracebacks included (colours removed)."""
    parts = []
    for out in cell.outputs:
        if out.output_type == "stream":
            parts.append(out.text)  # a print may come in several stream messages
        elif out.output_type in ("display_data", "execute_result"):
            parts.append(out.data.get("text/plain", "") + "\n")
        elif out.output_type == "error":
            parts.append("\n".join(out.traceback) + "\n")
    return ANSI.sub("", "".join(parts))


def html_of(cell) -> str:
    return "\n".join(out.data.get("text/html", "") for out in cell.outputs if "data" in out)


def mimes_of(cell) -> set[str]:
    return {mime for out in cell.outputs if "data" in out for mime in out.data}


def errors_of(cell) -> list:
    return [out for out in cell.outputs if out.output_type == "error"]


def md5_of(root: Path, dvc_file: str) -> str:
    return yaml.safe_load((root / dvc_file).read_text())["outs"][0]["md5"]


def make_model(uri: str, versions: int = 3) -> str:
    """A registered model whose versions come from runs with an accuracy metric and a depth param."""
    client = MlflowClient(uri)
    name = f"magic-{uuid.uuid4().hex[:8]}"
    experiment = client.create_experiment(f"exp-{name}")
    client.create_registered_model(name)
    for i in range(1, versions + 1):
        run_id = client.create_run(experiment).info.run_id
        client.log_metric(run_id, "accuracy", 0.8 + i / 100)
        client.log_param(run_id, "depth", str(i))
        client.create_model_version(name, source=f"runs:/{run_id}/model", run_id=run_id)
    return name


def aliases(uri: str, name: str) -> dict[str, str]:
    return {a: str(v) for a, v in MlflowClient(uri).get_registered_model(name).aliases.items()}


# --------------------------------------------------------------------------- real notebooks


def test_track_records_lineage_and_runs_returns_records(repo, mlflow_server, kernel_dirs, tmp_path):
    experiment = f"nb-{uuid.uuid4().hex[:8]}"
    good_cell = 'import mlflow\nmlflow.log_metric("accuracy", 0.93)\nanswer = 6 * 7\nanswer'
    cells = run_notebook(
        [
            "%load_ext workbench",
            f"%%wb track --experiment {experiment} --run-name good\n{good_cell}",
            (f"%%wb track --experiment {experiment} --run-name bad\nraise ValueError('boom in the cell')", "raises"),
            "print('answer is', answer)",
            f'runs = %wb runs --experiment {experiment} --order-by "attributes.start_time ASC"',
            "runs",
            "import json\nprint(type(runs).__name__, json.dumps([[r.run_id, r.run_name, r.status] for r in runs]))",
            "%wb run {runs[0].run_id}",
            "%wb compare {runs[0].run_id} {runs[1].run_id}",
            "%wb status",
        ],
        repo,
        kernel_env(tmp_path, mlflow_server.uri),
        kernel_dirs,
    )
    (_load, good, bad, answer, assign, shown, listed, one_run, compare, status) = cells
    client = MlflowClient(mlflow_server.uri)

    # the tracked cell ran in the user's namespace, showed its value, and returned the run record
    assert "answer is 42" in text_of(answer)
    assert any(out.output_type == "display_data" and out.data["text/plain"] == "42" for out in good.outputs)
    assert "Tracked run good" in html_of(good) and "FINISHED" in html_of(good)

    # %wb runs returned records a later cell can use, in the order asked for
    kind, rows = text_of(listed).split(" ", 1)
    (good_id, good_name, good_status), (bad_id, bad_name, bad_status) = json.loads(rows)
    assert kind == "RunList" and not assign.outputs
    assert (good_name, good_status, bad_name, bad_status) == ("good", "FINISHED", "bad", "FAILED")
    assert "<table>" in html_of(shown) and good_id in html_of(shown) and bad_id in html_of(shown)

    # MLflow's own client agrees: lineage tags, duration, GPU use and the cell's code
    run = client.get_run(good_id)
    tags, metrics = run.data.tags, run.data.metrics
    assert run.info.status == "FINISHED"
    assert tags["workbench.git.commit"] == sh(repo, "git", "rev-parse", "HEAD")
    assert tags["workbench.git.dirty"] == "false"
    assert tags["workbench.data.data/train.csv"] == md5_of(repo, "data/train.csv.dvc")
    assert tags["workbench.params.sha256"] == hashlib.sha256((repo / "params.yaml").read_bytes()).hexdigest()
    assert metrics["accuracy"] == 0.93 and metrics["cell_duration_s"] > 0
    assert tags["workbench.gpu.source"] == "simulated" and tags["workbench.gpu.simulated"] == "true"
    assert metrics["gpu_samples"] >= 1 and 0 < metrics["gpu_utilization_mean"] <= metrics["gpu_utilization_max"]
    assert metrics["gpu_memory_used_max_bytes"] > 0
    assert Path(client.download_artifacts(good_id, "cell.py", str(tmp_path))).read_text().strip() == good_cell

    # an exception in the cell: the run is FAILED, the cell errors with the user's own traceback
    failed = client.get_run(bad_id)
    assert failed.info.status == "FAILED" and "cell_duration_s" in failed.data.metrics
    assert failed.data.tags["workbench.git.commit"] == tags["workbench.git.commit"]
    (error,) = errors_of(bad)
    assert error.ename == "ValueError" and "boom in the cell" in text_of(bad)
    assert f"MLflow run {bad_id} in experiment '{experiment}' marked FAILED" in text_of(bad)

    # the views render the same records
    assert "accuracy" in html_of(one_run) and tags["workbench.git.commit"] in html_of(one_run)
    assert HOLOVIEWS_MIME in mimes_of(compare) and "Metrics" in html_of(compare)
    assert experiment in html_of(status) and "data/train.csv" in html_of(status)


def test_promote_rollback_usage_and_live_views(repo, mlflow_server, kernel_dirs, tmp_path):
    name = make_model(mlflow_server.uri)
    MlflowClient(mlflow_server.uri).set_registered_model_alias(name, "champion", "1")
    cells = run_notebook(
        [
            "%load_ext workbench",
            "%wb models",
            f"%wb promote {name} 2 --yes",
            "print(type(_).__name__, _.before, _.after)",
            f"from mlflow import MlflowClient\nprint(dict(MlflowClient().get_registered_model('{name}').aliases))",
            (f"%wb promote {name} 3", "raises"),
            f"%wb rollback {name}",
            ("%wb runs --bogus", "raises"),
            (f"%wb promote {name}", "raises"),
            ("%wb nosuch", "raises"),
            ("%wb runs --max lots", "raises"),
            ("%wb deploy not-a-reference", "raises"),
            "%wb deployments",
            "%wb help",
            "%wb gpu --seconds 1 --source simulated",
            "import time\ntime.sleep(3)",
            "watch = %wb gpu --seconds 60 --source simulated",
            "before = watch.updates\ntime.sleep(2)\nprint('updated while busy:', watch.updates > before, watch.live)",
            "%wb gpu --stop",
            "print('live after stop:', watch.live)",
            "%wb dashboard registry",
            ("%wb dashboard nosuch", "raises"),
        ],
        repo,
        kernel_env(tmp_path, mlflow_server.uri),
        kernel_dirs,
    )
    (_load, models, promote, promoted, agree, unconfirmed, rollback, *rest) = cells
    (bogus, missing, unknown, bad_type, bad_ref, deployments, help_cell, *live) = rest
    (short_watch, _sleep, _watch, busy, stop, after_stop, dashboard, no_page) = live

    assert name in html_of(models)
    # promote --yes: the comparison, then the move; MLflow's own client agrees
    assert f"Promote {name} v2 to @champion (now: v1)" in html_of(promote)
    assert f"@champion of {name}: v1 -&gt; v2" in html_of(promote)
    assert "AliasMove 1 2" in text_of(promoted)
    assert "{'champion': '2'}" in text_of(agree)
    # without --yes the kernel cannot ask: it says so, changes nothing, shows no traceback
    assert "Pass --yes" in text_of(unconfirmed) and "Traceback" not in text_of(unconfirmed)
    assert f"Promote {name} v3 to @champion (now: v2)" in html_of(unconfirmed)
    assert f"@champion of {name}: v2 -&gt; v1" in html_of(rollback)
    assert aliases(mlflow_server.uri, name) == {"champion": "1"}

    # wrong arguments: that subcommand's usage, never a traceback
    for cell, usage, problem in [
        (bogus, "usage: %wb runs", "unrecognized arguments: --bogus"),
        (missing, "usage: %wb promote", "the following arguments are required: VERSION"),
        (unknown, "no subcommand 'nosuch'", "%wb help"),
        (bad_type, "usage: %wb runs", "invalid int value: 'lots'"),
        (bad_ref, "Error: Cannot read the model reference", "Hint: Write NAME@ALIAS"),
    ]:
        output = text_of(cell)
        assert usage in output and problem in output, output
        assert "Traceback" not in output and "File " not in output, output
        assert len(errors_of(cell)) == 1
    assert "No deployments yet." in html_of(deployments)
    assert "%%wb track [--experiment NAME] [--run-name N]" in text_of(help_cell)
    assert "%wb promote [--alias A] [--yes] [--override-gates] MODEL VERSION" in text_of(help_cell)

    # the live GPU view updated in place after its cell ended, while other cells ran, then stopped
    assert "SIMULATED READINGS" in html_of(short_watch) and "stopped after" in html_of(short_watch)
    assert "updated while busy: True True" in text_of(busy)
    assert "Stopped 1 live GPU view(s)." in text_of(stop) and "live after stop: False" in text_of(after_stop)
    assert HOLOVIEWS_MIME in mimes_of(dashboard)
    assert "The dashboard has no page 'nosuch'" in text_of(no_page) and "registry" in text_of(no_page)


def test_extension_loads_from_the_ipython_profile(kernel_dirs, tmp_path, mlflow_server):
    env = kernel_env(tmp_path, mlflow_server.uri)
    profile = Path(env["IPYTHONDIR"]) / "profile_default"
    profile.mkdir(parents=True)
    (profile / "ipython_config.py").write_text('c.InteractiveShellApp.extensions = ["workbench"]\n')
    (cell,) = run_notebook(["%wb help deploy"], tmp_path, env, kernel_dirs)
    assert "usage: %wb deploy" in text_of(cell) and "MODEL@ALIAS" in text_of(cell)


# --------------------------------------------------------------------------- a terminal IPython, in-process


@pytest.fixture
def shell(tmp_path, monkeypatch, mlflow_server):
    """A terminal IPython (text output only) with the extension loaded, in a workspace on the test server."""
    from IPython.terminal.interactiveshell import TerminalInteractiveShell

    config = Config()
    config.HistoryManager.hist_file = ":memory:"
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_server.uri)
    monkeypatch.setenv("WORKBENCH_GPU_SOURCE", "simulated")
    ip = TerminalInteractiveShell.instance(config=config)
    magics.load_ipython_extension(ip)
    yield ip
    magics.unload_ipython_extension(ip)


def offered(shell, line: str) -> list[str]:
    """What the shell offers to complete ``line`` at its end (the API Jupyter kernels use)."""
    with provisionalcompleter():
        return [c.text for c in shell.Completer.completions(line, len(line))]


def test_terminal_gets_text_and_can_confirm(shell, mlflow_server, capsys, monkeypatch):
    name = make_model(mlflow_server.uri, versions=2)
    shell.run_cell(f"%wb models {name}")
    out = capsys.readouterr().out
    assert name in out and "v2" in out and "<table" not in out
    shell.run_cell("%wb gpu --source simulated")
    assert "SIMULATED READINGS" in capsys.readouterr().out

    answers = iter(["n", "y"])
    monkeypatch.setattr("builtins.input", lambda prompt: next(answers))
    shell.run_cell(f"%wb promote {name} 2")
    out = capsys.readouterr().out
    assert "Promotion cancelled: nothing changed" in out and "Traceback" not in out
    assert aliases(mlflow_server.uri, name) == {}
    shell.run_cell(f"%wb promote {name} 2")
    assert f"@champion of {name}: nobody -> v2" in capsys.readouterr().out
    assert aliases(mlflow_server.uri, name) == {"champion": "2"}

    shell.run_cell("%wb run no-such-run")
    out = capsys.readouterr().out
    assert "Error: run no-such-run" in out and "Hint:" in out and "Traceback" not in out

    # a Workbench error raised by the cell itself is the cell's error: its traceback, and a FAILED run
    shell.run_cell("%%wb track -e terminal\nfrom workbench.errors import NotFound\nraise NotFound('from the cell')")
    out = ANSI.sub("", capsys.readouterr().out)
    assert "Traceback" in out and "NotFound: from the cell" in out and "marked FAILED" in out


def test_completion_of_subcommands_options_models_and_experiments(shell, mlflow_server):
    name = make_model(mlflow_server.uri, versions=1)
    MlflowClient(mlflow_server.uri).set_registered_model_alias(name, "staging", "1")

    def complete(line: str) -> list[str]:
        return offered(shell, line)

    assert complete("%wb ").count("promote") == 1 and "track" not in complete("%wb ")
    assert complete("%wb ro") == ["rollback"]
    assert complete("%%wb ") == ["track"]
    assert complete("%wb runs --ord") == ["--order-by"]
    assert name in complete("%wb promote ")
    assert complete(f"%wb promote {name[:-1]}") == [name]
    assert f"{name}@staging" in complete("%wb deploy ")
    assert f"exp-{name}" in complete("%wb runs --experiment ")
    assert complete("%wb dashboard g") == ["gpus"]
    assert complete(f"%wb promote {name} 1 --alias st") == ["staging"]  # its aliases, not models


def test_completion_never_raises_when_mlflow_is_down(shell, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:9")
    started = time.monotonic()
    assert not any(c.startswith("magic-") for c in offered(shell, "%wb promote ")) and time.monotonic() - started < 10
    assert offered(shell, "%wb ")[:2] == ["status", "runs"]


def test_unload_removes_the_magic_and_the_formatters(shell):
    magics.unload_ipython_extension(shell)
    assert "wb" not in shell.magics_manager.magics["line"]
    html = shell.display_formatter.formatters["text/html"]
    with pytest.raises(KeyError):
        html.lookup_by_type("workbench.tracking.RunSummary")
    magics.load_ipython_extension(shell)
    assert "wb" in shell.magics_manager.magics["cell"]


# --------------------------------------------------------------------------- rendering


def test_html_is_escaped_and_lists_show_as_tables():
    blocks = [Line("<b>x</b>", "warn"), Table(["a&b"], [["<script>alert(1)</script>"]], "t<i>")]
    assert "<script>" not in to_html(blocks) and "&lt;script&gt;" in to_html(blocks)
    assert to_text(blocks).splitlines()[0] == "<b>x</b>"
    run = RunSummary("abc", "<name>", "1", "FINISHED", 0, None, None, "active", None, {}, {"acc": 0.5}, {})
    runs = RunList([run], next_page_token="tok")
    assert runs == [run] and runs[0] is run
    assert "&lt;name&gt;" in runs._repr_html_() and "--page-token tok" in repr(runs)


# --------------------------------------------------------------------------- the tracked-run service


def test_tracked_run_without_gpu_says_why_and_restores_mlflow(tmp_path, mlflow_server):
    settings = load_settings(tmp_path, tracking_uri=mlflow_server.uri, gpu_source="none")
    before, env_before = mlflow.get_tracking_uri(), os.environ.get("MLFLOW_TRACKING_URI")
    seen = []
    record = tracked_run.track(settings, lambda: seen.append(mlflow.active_run().info.run_id), experiment="no-gpu")
    assert seen == [record.run_id] and record.status == "FINISHED" and record.gpu is None
    run = MlflowClient(mlflow_server.uri).get_run(record.run_id)
    assert run.data.tags["workbench.gpu.unavailable"] == record.gpu_unavailable
    assert not any(key.startswith("gpu_") for key in run.data.metrics)
    assert record.lineage is not None and record.lineage.commit is None  # not a git repository
    assert mlflow.get_tracking_uri() == before and mlflow.active_run() is None
    assert os.environ.get("MLFLOW_TRACKING_URI") == env_before


def test_tracked_run_failure_and_refusals(tmp_path, mlflow_server):
    settings = load_settings(tmp_path, tracking_uri=mlflow_server.uri, gpu_source="none")
    experiment = f"refusals-{uuid.uuid4().hex[:6]}"

    def boom() -> None:
        raise KeyError("inside")

    with pytest.raises(KeyError) as caught:
        tracked_run.track(settings, boom, experiment=experiment)
    (note,) = caught.value.__notes__
    run_id = note.split("MLflow run ")[1].split()[0]
    assert MlflowClient(mlflow_server.uri).get_run(run_id).info.status == "FAILED" and "marked FAILED" in note

    client = MlflowClient(mlflow_server.uri)
    client.delete_experiment(client.get_experiment_by_name(experiment).experiment_id)
    ran = []
    with pytest.raises(Conflict, match="is deleted"):
        tracked_run.track(settings, lambda: ran.append(1), experiment=experiment)
    down = load_settings(tmp_path, tracking_uri="http://127.0.0.1:9", gpu_source="none")
    started = time.monotonic()
    with pytest.raises(BackendUnavailable):
        tracked_run.track(down, lambda: ran.append(1))
    assert ran == [] and time.monotonic() - started < 10


def test_tracked_run_keeps_artifacts_in_the_workspace_store(make_repo, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)  # the embedded store
    root = make_repo(dvc=False)
    sh(root, "git", "commit", "-q", "--allow-empty", "-m", "start")
    settings = load_settings(root, gpu_source="none")
    record = tracked_run.track(settings, lambda: None, experiment="local", code="x = 1")
    experiment = MlflowClient(settings.tracking_uri).get_experiment(record.experiment_id)
    assert experiment.artifact_location == str(Path(settings.artifact_location) / "local")
    assert (Path(settings.artifact_location) / "local" / record.run_id / "artifacts" / "cell.py").read_text() == "x = 1"
    assert record.lineage.commit == sh(root, "git", "rev-parse", "HEAD")
