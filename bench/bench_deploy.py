"""Deployments: time to healthy, and requests during a promotion swap, against bare `mlflow models serve`.

Starts a lean MLflow server in a temporary folder and registers a small
scikit-learn model in two versions (v1 predicts column ``a``, v2 its
opposite, so every answer shows which version gave it; ``@champion`` and
``@live`` on v1). Then, in the same run:

- time to healthy (``--rounds N`` alternates the order of the three):
  baseline ``mlflow models serve -m models:/NAME@champion --env-manager local``
  from process start until ``/ping`` answers 200; ``workbench deploy
  NAME@champion`` (the command line, as a user runs it) from process start
  until the command returns, which it does once the stable endpoint answers
  ``/ping`` through its proxy; and the same through the Python API
  (``workbench.deploy.deploy``), which skips the command's interpreter start
  and imports.
- requests during a promotion swap: a bounded stream on loopback of
  ``--clients`` clients (half keep-alive sessions, half a new connection per
  request), each sending ``--rate`` scoring requests per second, paced, not
  bursting. Workbench: the stream goes to a deployment of ``NAME@live``
  while ``registry.promote`` moves ``@live`` from v1 to v2 and the deployment
  swaps blue/green to a new model server; the stream keeps going at least
  ``--duration`` seconds and until v2 has answered for a few seconds. Baseline:
  the same stream, for as long (``--quick``: ``--duration`` seconds), straight
  to a bare ``mlflow models serve`` of v1 (nothing swaps). The ratios are
  baseline / Workbench of the p50 and of the p99. A request fails when it raises, answers other than 200,
  or predicts other than the version it names (Workbench's version header;
  v1 for the baseline). Latencies (p50, p99) are those of the requests that
  did not fail.

Everything it starts (the MLflow server, model servers, supervisors) is
stopped by PID before it exits, also on errors, and it checks that nothing
is left.

    python bench/bench_deploy.py [--rounds 1] [--clients 4] [--rate 10] [--duration 20] [--quick]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repo root: tests, bench.common

import psutil
import requests

from bench import common
from tests.servers import MlflowServer, free_port
from tests.test_deploy import EXPECTED, PAYLOAD, _processes_of, register_two_versions
from workbench import deploy, registry
from workbench._proxy import VERSION_HEADER
from workbench.config import load_settings

BENCHMARK = "deploy"
MODEL = "bench-deploy"
BARE = "bare mlflow models serve"
SWAP_WARMUP_S = 2.0  # the stream runs this long before the alias moves
SWAP_TAIL_S = 3.0  # and at least this long after the deployment switched


def _env(uri: str) -> dict[str, str]:
    bin_dir = str(Path(sys.executable).parent)
    return dict(
        os.environ,
        MLFLOW_TRACKING_URI=uri,
        MLFLOW_DISABLE_TELEMETRY="true",
        PATH=bin_dir + os.pathsep + os.environ.get("PATH", ""),
    )


def _stop_group(proc: subprocess.Popen) -> None:
    """Stop a process started in a session of its own, and every process of that group, by PID."""
    try:
        family = [psutil.Process(proc.pid), *psutil.Process(proc.pid).children(recursive=True)]
    except psutil.Error:
        family = []
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    _gone, alive = psutil.wait_procs(family, timeout=10)
    for member in alive:
        with contextlib.suppress(psutil.Error):
            member.kill()


@contextlib.contextmanager
def bare_serve(uri: str, model_uri: str, log: Path) -> Iterator[tuple[float, str]]:
    """A bare `mlflow models serve` of ``model_uri``: (seconds from start until /ping answered, its URL)."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    command = [sys.executable, "-m", "mlflow", "models", "serve", "-m", model_uri]
    command += ["--env-manager", "local", "-h", "127.0.0.1", "-p", str(port)]
    with log.open("ab") as out:
        started = time.perf_counter()
        proc = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=_env(uri), start_new_session=True)
    try:
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"mlflow models serve exited with {proc.returncode}; see {log}")
            try:
                if requests.get(f"{url}/ping", timeout=1).status_code == 200:
                    break
            except requests.RequestException:
                pass
            time.sleep(0.05)
        yield time.perf_counter() - started, url
    finally:
        _stop_group(proc)


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
        raise RuntimeError(f"{label} failed:\n{done.stderr}{done.stdout}")
    settings = load_settings(workspace, tracking_uri=uri)
    record = deploy.get(settings, "bench-cli")
    try:
        if requests.get(f"{record.endpoint}/ping", timeout=5).status_code != 200:
            raise RuntimeError("the deployment returned but its endpoint does not answer /ping")
    finally:
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


def time_to_healthy(uri: str, workspace: Path, folder: Path, rounds: int) -> list[dict[str, Any]]:
    bare: list[float] = []
    cli: list[float] = []
    api: list[float] = []
    label = "workbench deploy"
    for round_ in range(rounds):
        steps = ["bare", "cli", "api"]
        for step in steps[round_ % 3 :] + steps[: round_ % 3]:
            if step == "bare":
                with bare_serve(uri, f"models:/{MODEL}@champion", folder / "bare.log") as (seconds, _url):
                    bare.append(seconds)
            elif step == "cli":
                seconds, label = workbench_cli(uri, workspace)
                cli.append(seconds)
            else:
                api.append(workbench_api(uri, workspace))
    cores = {"cores": os.cpu_count()}
    return [
        common.result(
            BENCHMARK,
            "time to healthy, the command line",
            {BARE: bare, label: cli},
            baseline=BARE,
            workbench=label,
            **cores,
        ),
        common.result(
            BENCHMARK,
            "time to healthy, deploy.deploy() in-process",
            {BARE: bare, "deploy.deploy()": api},
            baseline=BARE,
            workbench="deploy.deploy()",
            **cores,
        ),
    ]


# --------------------------------------------------------------------------- requests during a swap


@dataclass
class Answer:
    sent: float  # time.monotonic() when the request went out
    seconds: float  # until the answer (or the error)
    version: str | None  # the version that answered (Workbench's header)
    error: str | None  # None: a 200 with the predictions of that version


class RequestStream:
    """``clients`` threads, each sending ``rate`` paced scoring requests per second to ``url`` until stopped.

    Even clients keep one connection (a session), odd ones open a new connection per request.
    ``expected_version`` names the version whose predictions a request without the version
    header must return (None: the header is required).
    """

    def __init__(self, url: str, clients: int, rate: float, expected_version: str | None) -> None:
        self.url = f"{url}/invocations"
        self.rate = rate
        self.expected_version = expected_version
        self.answers: list[Answer] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._client, args=(i, clients), daemon=True) for i in range(clients)]
        self.started = self.stopped = 0.0

    def __enter__(self) -> RequestStream:
        self.started = time.monotonic()
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=120)
        self.stopped = time.monotonic()

    def count(self, since: float = 0.0) -> int:
        with self._lock:
            return sum(1 for a in self.answers if a.sent >= since)

    def _client(self, index: int, clients: int) -> None:
        period = 1.0 / self.rate
        session = requests.Session() if index % 2 == 0 else None
        post: Callable[..., requests.Response] = session.post if session else requests.post
        next_at = time.monotonic() + period * index / clients  # spread the clients over one period
        try:
            while not self._stop.is_set():
                wait = next_at - time.monotonic()
                if wait > 0 and self._stop.wait(wait):
                    return
                sent = time.monotonic()
                answer = self._send(post, sent)
                with self._lock:
                    self.answers.append(answer)
                next_at = max(next_at + period, time.monotonic())  # a late answer delays; it never bursts
        finally:
            if session is not None:
                session.close()

    def _send(self, post: Callable[..., requests.Response], sent: float) -> Answer:
        try:
            response = post(self.url, json=PAYLOAD, timeout=60)
        except requests.RequestException as exc:
            return Answer(sent, time.monotonic() - sent, None, repr(exc))
        seconds = time.monotonic() - sent
        version = response.headers.get(VERSION_HEADER)
        if response.status_code != 200:
            return Answer(sent, seconds, version, f"HTTP {response.status_code}: {response.text[:200]}")
        predictions = response.json().get("predictions")
        wanted = version or self.expected_version
        if wanted not in EXPECTED or predictions != EXPECTED[wanted]:
            return Answer(sent, seconds, version, f"predictions {predictions} from version {version}")
        return Answer(sent, seconds, version, None)


def _percentile(values: list[float], percent: float) -> float:
    """The ``percent`` percentile, linear between the two nearest ranks."""
    ordered = sorted(values)
    rank = (len(ordered) - 1) * percent / 100
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def _summary(answers: list[Answer]) -> dict[str, Any]:
    latencies = [a.seconds for a in answers if a.error is None]
    failed = [a for a in answers if a.error is not None]
    return {
        "requests": len(answers),
        "failed": len(failed),
        "errors": sorted({a.error for a in failed if a.error})[:5],
        "latencies": latencies,
        "p50": _percentile(latencies, 50) if latencies else float("nan"),
        "p99": _percentile(latencies, 99) if latencies else float("nan"),
    }


def swap_under_load(
    uri: str, workspace: Path, folder: Path, clients: int, rate: float, duration: float, *, same_length: bool = True
) -> dict:
    """The Workbench stream across a promotion swap, then the same stream against a bare model server.

    The baseline stream lasts as long as the Workbench one did (``same_length``), or ``duration``.
    """
    settings = load_settings(workspace, tracking_uri=uri)
    record = deploy.deploy(settings, f"{MODEL}@live", name="bench-swap")
    try:
        with RequestStream(record.endpoint, clients, rate, expected_version=None) as stream:
            while time.monotonic() < stream.started + SWAP_WARMUP_S or stream.count() < clients:
                time.sleep(0.05)
            moving = time.monotonic()
            move = registry.promote(settings, MODEL, "2", alias="live")
            switched = time.monotonic()
            if move.deployment_errors or deploy.get(settings, "bench-swap").version != "2":
                raise RuntimeError(f"the deployment did not swap to v2: {move.deployment_errors}")
            while time.monotonic() < max(stream.started + duration, switched + SWAP_TAIL_S):
                time.sleep(0.05)
        answers = stream.answers
        stream_seconds = stream.stopped - stream.started
    finally:
        deploy.stop(settings, "bench-swap")
    workbench = _summary(answers)
    during = [a for a in answers if moving <= a.sent <= switched]
    after = [a for a in answers if a.sent > switched]
    workbench |= {
        "swap_s": switched - moving,
        "requests_during_swap": len(during),
        "p99_by_phase": {
            phase: _summary(part)["p99"] if part else float("nan")
            for phase, part in (
                ("before the move", [a for a in answers if a.sent < moving]),
                ("during the swap", during),
                ("after the switch", after),
            )
        },
        "versions": {v: sum(1 for a in answers if a.version == v) for v in ("1", "2")},
        "only_v2_after_switch": bool(after) and all(a.version == "2" for a in after if a.error is None),
        "stream_s": stream_seconds,
    }
    with bare_serve(uri, f"models:/{MODEL}/1", folder / "bare-stream.log") as (_seconds, url):
        with RequestStream(url, clients, rate, expected_version="1") as stream:
            time.sleep(stream_seconds if same_length else duration)
        baseline = _summary(stream.answers) | {"stream_s": stream.stopped - stream.started}
    return {"workbench": workbench, "baseline": baseline}


def swap_results(figures: dict, clients: int, rate: float) -> list[dict[str, Any]]:
    wb, base = figures["workbench"], figures["baseline"]
    name_wb = "Workbench, alias moves 1->2"
    name_base = f"{BARE}, no swap"
    stream = f"{clients} clients x {rate:g} req/s for {wb['stream_s']:.0f} s"
    if abs(base["stream_s"] - wb["stream_s"]) > 1:
        stream += f" (baseline {base['stream_s']:.0f} s)"
    extra = {
        "clients": clients,
        "rate_per_client": rate,
        "requests": {name_base: base["requests"], name_wb: wb["requests"]},
        "failed_requests": {name_base: base["failed"], name_wb: wb["failed"]},
        "errors": {name_base: base["errors"], name_wb: wb["errors"]},
        "p50_s": {name_base: base["p50"], name_wb: wb["p50"]},
        "p99_s": {name_base: base["p99"], name_wb: wb["p99"]},
        "stream_s": {name_base: base["stream_s"], name_wb: wb["stream_s"]},
        "swap_s": wb["swap_s"],
        "requests_during_swap": wb["requests_during_swap"],
        "p99_by_phase_s": wb["p99_by_phase"],
        "versions_answering": wb["versions"],
        "only_v2_after_switch": wb["only_v2_after_switch"],
    }
    p50 = common.result(
        BENCHMARK,
        f"request latency p50 across a promotion swap, {stream}",
        {name_base: base["latencies"] or [float("nan")], name_wb: wb["latencies"] or [float("nan")]},
        baseline=name_base,
        workbench=name_wb,
        **extra,
    )
    p50["ratio_label"] = "p50 latency: bare mlflow models serve (no swap) / Workbench (stream across the swap)"
    p99 = common.result(
        BENCHMARK,
        f"request latency p99 across a promotion swap, {stream}",
        {name_base: [base["p99"]], name_wb: [wb["p99"]]},
        baseline=name_base,
        workbench=name_wb,
        **extra,
    )
    p99["ratio_label"] = "p99 latency: bare mlflow models serve (no swap) / Workbench (stream across the swap)"
    return [p50, p99]


def _kill_leftovers(folder: Path) -> list[int]:
    """Kill (by PID) any process still running for this benchmark's folder; returns their PIDs."""
    left = _processes_of(folder)
    for proc in left:
        with contextlib.suppress(psutil.Error):
            proc.kill()
    psutil.wait_procs(left, timeout=10)
    return [proc.pid for proc in left]


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=1, help="rounds of the time to healthy (medians printed)")
    parser.add_argument("--clients", type=int, default=4, help="concurrent clients of the request stream")
    parser.add_argument("--rate", type=float, default=10.0, help="requests per second per client")
    parser.add_argument("--duration", type=float, default=20.0, help="least seconds of each request stream")
    parser.add_argument("--cases", nargs="+", choices=["healthy", "swap"], default=["healthy", "swap"])
    parser.add_argument(
        "--quick",
        action="store_true",
        help="short runs, a smoke test and not a measurement: 2 clients, 6 s streams (the baseline's not "
        "stretched to the swap's length)",
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.rounds, args.clients, args.duration = 1, 2, 6.0
    results: list[dict[str, Any]] = []
    swap: dict = {}
    with tempfile.TemporaryDirectory(prefix="bench-deploy-") as tmp:
        folder = Path(tmp)
        workspace = folder / "ws"
        server = MlflowServer(folder / "mlflow")
        try:
            server.start()
            workspace.mkdir()
            (workspace / "workbench.toml").write_text(f'tracking_uri = "{server.uri}"\n')
            settings = load_settings(workspace, tracking_uri=server.uri)
            try:
                register_two_versions(server.uri, MODEL)
                if "healthy" in args.cases:
                    results += time_to_healthy(server.uri, workspace, folder, max(1, args.rounds))
                if "swap" in args.cases:
                    swap = swap_under_load(
                        server.uri,
                        workspace,
                        folder,
                        args.clients,
                        args.rate,
                        args.duration,
                        same_length=not args.quick,
                    )
                    results += swap_results(swap, args.clients, args.rate)
            finally:
                for record in deploy.list_deployments(settings):
                    with contextlib.suppress(Exception):
                        deploy.stop(settings, record.name)
        finally:
            server.stop()
            left = _kill_leftovers(folder)
            if left:
                print(f"warning: killed processes left running: {left}", file=sys.stderr)
    print(common.table(results))
    if swap:
        wb, base = swap["workbench"], swap["baseline"]
        print(
            f"  failed requests: bare {base['failed']} of {base['requests']}, "
            f"Workbench {wb['failed']} of {wb['requests']} "
            f"({wb['requests_during_swap']} sent during the {wb['swap_s']:.1f} s swap)\n"
            "  Workbench p99 by phase: "
            + ", ".join(f"{phase} {common.format_value(v, 's')}" for phase, v in wb["p99_by_phase"].items()),
            flush=True,
        )
    return results


if __name__ == "__main__":
    main()
