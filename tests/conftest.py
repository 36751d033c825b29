"""Shared fixtures: a real MLflow server, real git + DVC repositories."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.servers import MlflowServer

# Keep tests hermetic and quiet: no telemetry, no analytics, a fixed git identity.
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("DO_NOT_TRACK", "true")
os.environ.setdefault("DVC_NO_ANALYTICS", "1")
os.environ.setdefault("GIT_AUTHOR_NAME", "Workbench Tests")
os.environ.setdefault("GIT_AUTHOR_EMAIL", "tests@workbench.invalid")
os.environ.setdefault("GIT_COMMITTER_NAME", "Workbench Tests")
os.environ.setdefault("GIT_COMMITTER_EMAIL", "tests@workbench.invalid")
# the venv's console scripts (dvc, mlflow, workbench) must be found by subprocesses
os.environ["PATH"] = str(Path(sys.executable).parent) + os.pathsep + os.environ.get("PATH", "")
for _var in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI", "WORKBENCH_WORKSPACE", "WORKBENCH_STORE_URI"):
    os.environ.pop(_var, None)

ARTIFACTS = Path(__file__).parent / "artifacts"
WORKBENCH = str(Path(sys.executable).with_name("workbench"))

pytest_plugins = ["pytest_jupyter.jupyter_server"]


@pytest.fixture(scope="session")
def demo_workspace(tmp_path_factory):
    """The demo workspace, built once per session by the real `workbench demo` command.

    Tests that change it (promote, push...) put it back as it was.
    """
    folder = tmp_path_factory.mktemp("demo") / "ws"
    done = subprocess.run(
        [WORKBENCH, "demo", "--no-launch", "--dir", str(folder)], capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Demo workspace ready" in done.stdout
    return folder


@pytest.fixture(scope="session")
def mlflow_server(tmp_path_factory):
    """One real ``mlflow server`` process for the whole session (lean settings)."""
    server = MlflowServer(tmp_path_factory.mktemp("mlflow-server")).start()
    yield server
    server.stop()


def run(cmd: list[str], cwd: Path) -> str:
    return subprocess.run(cmd, cwd=cwd, check=True, capture_output=True, text=True).stdout


@pytest.fixture
def elsewhere(tmp_path, monkeypatch):
    """Run from a folder outside every test repository; check nobody changed the cwd."""
    cwd = tmp_path / "elsewhere"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    yield cwd
    assert Path.cwd() == cwd


@pytest.fixture
def make_repo(tmp_path):
    """Factory for a real git + DVC repository with a local DVC remote.

    ``make_repo(dvc=True)`` returns the repo folder; its remote is
    ``<tmp>/remote-<name>``; DVC's site cache stays inside ``tmp_path``.
    """

    def make(name: str = "repo", *, git: bool = True, dvc: bool = True) -> Path:
        root = tmp_path / name
        root.mkdir()
        if git:
            run(["git", "init", "-q", "-b", "main"], root)
        if dvc:
            run(["dvc", "init", "-q"] + ([] if git else ["--no-scm"]), root)
            run(["dvc", "config", "core.site_cache_dir", str(tmp_path / f"site-cache-{name}")], root)
            run(["dvc", "config", "core.analytics", "false"], root)
            remote = tmp_path / f"remote-{name}"
            remote.mkdir()
            run(["dvc", "remote", "add", "-d", "local", str(remote)], root)
            if git:
                run(["git", "add", "-A"], root)
                run(["git", "commit", "-q", "-m", "init dvc"], root)
        return root

    return make
