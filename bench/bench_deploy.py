"""Time to healthy: `workbench deploy` against a bare `mlflow models serve` of the same model.

Starts a lean MLflow server in a temporary folder, registers one small
scikit-learn model as ``@champion``, then measures in the same run:

- baseline: ``mlflow models serve -m models:/NAME@champion --env-manager local``
  from process start until ``/ping`` answers 200;
- ``workbench deploy NAME@champion`` (the command line, as a user runs it)
  from process start until the command returns, which it does once the
  stable endpoint answers ``/ping`` through its proxy;
- the same through the Python API (``workbench.deploy.deploy``), which
  skips the command's interpreter start and imports.

It prints each time and the ratios against the baseline. With ``--rounds N``
it repeats the three, alternating which goes first (the machine's load
drifts), and prints medians. Everything it starts is stopped before it exits.

    python bench/bench_deploy.py [--rounds 1]
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repo root: tests.servers

import requests

from tests.servers import MlflowServer, free_port
from workbench import deploy
from workbench.config import load_settings

MODEL = "bench-deploy"


def _register(uri: str) -> None:
    import mlflow
    import pandas as pd
    from sklearn.linear_model import LogisticRegression

    frame = pd.DataFrame([[0.0, 0.0], [1.0, 1.0], [0.0, 1.0], [1.0, 0.0]], columns=["a", "b"])
    mlflow.set_tracking_uri(uri)
    try:
        with mlflow.start_run():
            mlflow.sklearn.log_model(
                LogisticRegression().fit(frame, [0, 1, 0, 1]),
                name="model",
                pip_requirements=["scikit-learn"],
                input_example=frame.head(2),
                registered_model_name=MODEL,
            )
    finally:
        mlflow.set_tracking_uri(None)
    mlflow.MlflowClient(uri).set_registered_model_alias(MODEL, "champion", "1")


def _env(uri: str) -> dict[str, str]:
    bin_dir = str(Path(sys.executable).parent)
    return dict(
        os.environ,
        MLFLOW_TRACKING_URI=uri,
        MLFLOW_DISABLE_TELEMETRY="true",
        PATH=bin_dir + os.pathsep + os.environ.get("PATH", ""),
    )


def bare_serve(uri: str, log: Path) -> float:
    """Seconds from starting `mlflow models serve` until /ping answers."""
    port = free_port()
    command = [sys.executable, "-m", "mlflow", "models", "serve", "-m", f"models:/{MODEL}@champion"]
    command += ["--env-manager", "local", "-h", "127.0.0.1", "-p", str(port)]
    with log.open("ab") as out:
        started = time.perf_counter()
        proc = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=_env(uri), start_new_session=True)
    try:
        while True:
            if proc.poll() is not None:
                raise SystemExit(f"mlflow models serve exited with {proc.returncode}; see {log}")
            try:
                if requests.get(f"http://127.0.0.1:{port}/ping", timeout=1).status_code == 200:
                    return time.perf_counter() - started
            except requests.RequestException:
                pass
            time.sleep(0.05)
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)


def _deploy_command() -> tuple[list[str], str]:
    """`workbench deploy` when the main command has it, else the same commands run as a module."""
    workbench_bin = shutil.which("workbench", path=str(Path(sys.executable).parent))
    if workbench_bin:
        probe = subprocess.run([workbench_bin, "deploy", "--help"], capture_output=True)
        if probe.returncode == 0:
            return [workbench_bin, "deploy"], "workbench deploy"
    return [sys.executable, "-m", "workbench.deploy_cli", "deploy"], "python -m workbench.deploy_cli deploy"


def workbench_cli(uri: str, workspace: Path) -> tuple[float, str]:
    """Seconds from starting the deploy command until it returned with a healthy endpoint (then stops it)."""
    command, label = _deploy_command()
    command += [f"{MODEL}@champion", "--name", "bench-cli", "--workspace", str(workspace)]
    env = {k: v for k, v in _env(uri).items() if k != "MLFLOW_TRACKING_URI"}  # read from workbench.toml
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, env=env)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"{label} failed:\n{done.stderr}{done.stdout}")
    settings = load_settings(workspace, tracking_uri=uri)
    record = deploy.get(settings, "bench-cli")
    if requests.get(f"{record.endpoint}/ping", timeout=5).status_code != 200:
        raise SystemExit("the deployment returned but its endpoint does not answer /ping")
    deploy.stop(settings, "bench-cli")
    return elapsed, label


def workbench_api(uri: str, workspace: Path) -> float:
    """Seconds for ``deploy.deploy(...)`` in this (already warm) process (then stops it)."""
    settings = load_settings(workspace, tracking_uri=uri)
    started = time.perf_counter()
    deploy.deploy(settings, f"{MODEL}@champion", name="bench-api")
    elapsed = time.perf_counter() - started
    deploy.stop(settings, "bench-api")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=1, help="Repeat the three measurements (medians printed).")
    rounds = max(1, parser.parse_args().rounds)
    bare: list[float] = []
    cli: list[float] = []
    api: list[float] = []
    label = ""
    with tempfile.TemporaryDirectory(prefix="bench-deploy-") as tmp:
        folder = Path(tmp)
        server = MlflowServer(folder / "mlflow").start()
        workspace = folder / "ws"
        workspace.mkdir()
        (workspace / "workbench.toml").write_text(f'tracking_uri = "{server.uri}"\n')
        settings = load_settings(workspace, tracking_uri=server.uri)
        try:
            _register(server.uri)
            for round_ in range(rounds):
                steps = ["bare", "cli", "api"]
                for step in steps[round_ % 3 :] + steps[: round_ % 3]:
                    if step == "bare":
                        bare.append(bare_serve(server.uri, folder / "bare.log"))
                    elif step == "cli":
                        seconds, label = workbench_cli(server.uri, workspace)
                        cli.append(seconds)
                    else:
                        api.append(workbench_api(server.uri, workspace))
        finally:
            for record in deploy.list_deployments(settings):
                deploy.stop(settings, record.name)
            server.stop()
    base = statistics.median(bare)
    each = "one run each" if rounds == 1 else f"median of {rounds} rounds"
    print(f"time to healthy, {each}, {os.cpu_count()} cores")
    print(f"  {'bare mlflow models serve':<40}{base:6.2f} s  (baseline)")
    for name, times in ((label, cli), ("deploy.deploy() in-process", api)):
        print(f"  {name:<40}{statistics.median(times):6.2f} s  ratio {statistics.median(times) / base:.2f}")


if __name__ == "__main__":
    main()
