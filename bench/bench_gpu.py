"""GPU monitoring cost: the sampler alone, and the Jupyter server with live stream clients.

The sampler cases run against the narrow pynvml fake (tests/fake_pynvml.py)
with 8 GPUs and a (real, visible) process on each, so they need no GPU;
``--nvml`` uses the real library where NVML initializes. Every figure comes
with its baseline from the same run, alternating the order round by round:

- CPU per sample of the sampler thread vs. the bare NVML calls of one sample
  (the same calls made in a plain loop, no Workbench code around them);
- NVML calls per sample, and the sampler's CPU per sample, with 50
  subscribers vs. 1 (the design says the NVML cost never grows with viewers);
- CPU of a real Jupyter server with the Workbench extension, its sampler at
  1 Hz over 8 GPUs, with 0, 1 and 10 WebSocket clients of
  ``workbench/api/gpu/stream`` that read every message: the server process's
  CPU seconds (psutil, with its children) over a fixed window, as % of one
  core. The server's GPU source is the pynvml fake with 8 GPUs installed
  inside the server process (``--server-source``: or ``simulated``, the
  4-GPU demo source chosen by the ``gpu_source`` setting, or real ``nvml``).
  The sampler runs in every case (a REST call starts it first), so the cases
  differ only by their viewers. Each client must receive about one message
  per second in the window, or the run fails: dead clients cost nothing.

    python bench/bench_gpu.py [--samples 200] [--rounds 3] [--window 12] [--quick] [--nvml]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext, suppress
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repo root: tests.fake_pynvml, bench.common

import psutil
import pynvml
import requests
import tornado.httpclient
import tornado.websocket

from bench import common
from tests.fake_pynvml import FakeGpu, FakeNvml
from tests.servers import JupyterServer
from workbench.gpu.nvml import NvmlSource, open_nvml
from workbench.gpu.sampler import Sampler

ROOT = Path(__file__).resolve().parents[1]
BENCHMARK = "GPU monitoring"
GPUS = 8
INTERVAL = 0.002  # fast ticks: the sampler cases measure cost per sample, not the production rate
SERVER_INTERVAL = 1.0  # the production rate, for the server case
CLIENT_COUNTS = (0, 1, 10)
TOKEN = "bench-gpu"

# Runs `jupyter server` with the pynvml fake (8 GPUs, the server itself on each) installed in its process.
_SERVE_WITH_FAKE_NVML = """
import os, sys
sys.path.insert(0, {root!r})
from bench.bench_gpu import fake_nvml
from jupyter_server.serverapp import main
with fake_nvml(os.getpid()).installed():
    sys.exit(main())
"""


def fake_nvml(pid: int | None = None) -> FakeNvml:
    """8 GPUs, each with one process that psutil can see (``pid``, default this one), as on a training node."""
    pid = pid or os.getpid()
    return FakeNvml([FakeGpu(processes=[(pid, 1 << 30)], process_util=[(pid, 50, 20)]) for _ in range(GPUS)])


# --------------------------------------------------------------------------- the sampler alone


def _bare_calls_cpu(samples: int) -> float:
    """CPU seconds per sample for just the NVML calls a sample makes (count + 12 per GPU)."""
    pynvml.nvmlInit()
    try:
        handles = [pynvml.nvmlDeviceGetHandleByIndex(i) for i in range(pynvml.nvmlDeviceGetCount())]
        start = time.process_time()
        for _ in range(samples):
            pynvml.nvmlDeviceGetCount()
            for h in handles:
                pynvml.nvmlDeviceGetUtilizationRates(h)
                pynvml.nvmlDeviceGetMemoryInfo(h)
                pynvml.nvmlDeviceGetTemperature(h, pynvml.NVML_TEMPERATURE_GPU)
                pynvml.nvmlDeviceGetPowerUsage(h)
                pynvml.nvmlDeviceGetEnforcedPowerLimit(h)
                pynvml.nvmlDeviceGetClockInfo(h, pynvml.NVML_CLOCK_SM)
                pynvml.nvmlDeviceGetClockInfo(h, pynvml.NVML_CLOCK_MEM)
                pynvml.nvmlDeviceGetPcieThroughput(h, pynvml.NVML_PCIE_UTIL_RX_BYTES)
                pynvml.nvmlDeviceGetPcieThroughput(h, pynvml.NVML_PCIE_UTIL_TX_BYTES)
                for call in (pynvml.nvmlDeviceGetMigMode, pynvml.nvmlDeviceGetComputeRunningProcesses):
                    with suppress(pynvml.NVMLError):
                        call(h)
                with suppress(pynvml.NVMLError):
                    pynvml.nvmlDeviceGetProcessUtilization(h, 0)
        return (time.process_time() - start) / samples
    finally:
        pynvml.nvmlShutdown()


def _run_sampler(subscribers: int, samples: int, count_calls: Callable[[], int]) -> tuple[float, float]:
    """(CPU seconds per sample of the sampler thread, NVML calls per sample) with ``subscribers`` viewers."""
    source = open_nvml()
    if not isinstance(source, NvmlSource):
        raise SystemExit(f"NVML is not available here: {source.sample().reason}")
    sampler = Sampler(source, interval=INTERVAL, history=60)
    done = threading.Event()
    marks: list[int] = []

    def mark(_sample: object) -> None:
        marks.append(count_calls())
        if len(marks) > samples:
            done.set()

    unsubscribers = [sampler.subscribe(mark)]
    unsubscribers += [sampler.subscribe(lambda s: sampler.latest()) for _ in range(subscribers - 1)]
    done.wait()
    sampler.stop(close_source=True)
    for unsubscribe in unsubscribers:
        unsubscribe()
    stats = sampler.stats()
    calls_per_sample = (marks[samples] - marks[0]) / samples  # steady state: after the first sample
    return stats.cpu_seconds / stats.samples, calls_per_sample


def sampler_cases(samples: int, rounds: int, use_nvml: bool) -> list[dict[str, Any]]:
    """CPU per sample vs. bare calls; NVML calls and CPU per sample with 50 subscribers vs. 1."""
    fake = None if use_nvml else fake_nvml()
    context: AbstractContextManager = nullcontext() if fake is None else fake.installed()
    cpu: dict[str, list[float]] = {"bare NVML calls": [], "1 subscriber": [], "50 subscribers": []}
    calls: dict[str, list[float]] = {"1 subscriber": [], "50 subscribers": []}
    with context:
        count_calls = (lambda: fake.total_calls) if fake is not None else (lambda: 0)
        steps = list(cpu)
        for index in range(rounds):
            for step in steps if index % 2 == 0 else steps[::-1]:
                if step == "bare NVML calls":
                    cpu[step].append(_bare_calls_cpu(samples))
                    continue
                seconds, per_sample = _run_sampler(1 if step == "1 subscriber" else 50, samples, count_calls)
                cpu[step].append(seconds)
                calls[step].append(per_sample)

    what = "real NVML" if fake is None else f"fake NVML, {GPUS} GPUs, 1 process each"
    sampler_cpu = {"bare NVML calls": cpu["bare NVML calls"], "Workbench sampler": cpu["1 subscriber"]}
    results = [
        common.result(
            BENCHMARK,
            f"CPU per sample ({what}; {samples} samples per round)",
            sampler_cpu,
            baseline="bare NVML calls",
            workbench="Workbench sampler",
            at_1hz_percent_of_core=statistics.median(cpu["1 subscriber"]) * 100,
        ),
        common.result(
            BENCHMARK,
            f"sampler CPU per sample, 1 vs 50 subscribers ({what})",
            {name: cpu[name] for name in ("1 subscriber", "50 subscribers")},
            baseline="1 subscriber",
            workbench="50 subscribers",
            note="the sampler thread's CPU per sample; subscriber callbacks run after the sample",
        ),
    ]
    if fake is not None:
        results.append(
            common.result(
                BENCHMARK,
                f"NVML calls per sample, 1 vs 50 subscribers ({what})",
                calls,
                baseline="1 subscriber",
                workbench="50 subscribers",
                unit="calls",
            )
        )
        results[-1]["ratio_label"] = "NVML calls per sample, 1 subscriber / 50 subscribers (1.00: viewers add none)"
    return results


# --------------------------------------------------------------------------- the server with stream clients


class GpuJupyterServer(JupyterServer):
    """A real ``jupyter server`` with the Workbench extension, sampling GPUs every ``interval`` seconds."""

    def __init__(self, folder: Path, source: str, interval: float) -> None:
        env = dict(
            os.environ,
            WORKBENCH_GPU_SOURCE="nvml" if source == "fake-nvml" else source,
            WORKBENCH_GPU_INTERVAL=str(interval),
            WORKBENCH_WORKSPACE=str(folder),
            MLFLOW_DISABLE_TELEMETRY="true",
        )
        command = (
            [sys.executable, "-c", _SERVE_WITH_FAKE_NVML.format(root=str(ROOT))] if source == "fake-nvml" else None
        )
        super().__init__(folder, env=env, token=TOKEN, command=command)

    @property
    def stream_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/workbench/api/gpu/stream"

    def cpu_seconds(self) -> tuple[float, float | None]:
        """CPU seconds of the server process and its live children: (psutil, per-thread run time).

        psutil reads user + system time (with reaped children), which Linux reports in 10 ms
        steps: a 12 s window of a process at 0.1% of a core is one or two steps. The second
        figure sums the nanosecond run times of every live thread (``/proc/PID/task/*/schedstat``);
        None where the kernel keeps none.
        """
        proc = psutil.Process(self.proc.pid)
        family = [proc]
        with contextlib.suppress(psutil.Error):
            family += proc.children(recursive=True)
        coarse = sum(proc.cpu_times()[:4])  # user, system, children_user, children_system
        fine: float | None = 0.0
        for member in family:
            with contextlib.suppress(psutil.Error):
                if member is not proc:
                    coarse += sum(member.cpu_times()[:2])
                run = _run_seconds(member.pid)
                fine = None if fine is None or run is None else fine + run
        return coarse, fine


_SCHEDSTAT = Path("/proc/self/schedstat").exists()


def _run_seconds(pid: int) -> float | None:
    """The run time of every live thread of ``pid``, to the nanosecond (None without schedstat)."""
    if not _SCHEDSTAT:
        return None
    total = 0.0
    for tid in os.listdir(f"/proc/{pid}/task"):
        with contextlib.suppress(FileNotFoundError):  # a thread that just ended
            total += int(Path(f"/proc/{pid}/task/{tid}/schedstat").read_text().split()[0]) / 1e9
    return total


class StreamClients:
    """``count`` WebSocket clients of the GPU stream on an event loop of their own, each reading every message."""

    def __init__(self, url: str, headers: dict[str, str], count: int) -> None:
        self.url = url
        self.headers = headers
        self.count = count
        self.arrivals: list[list[float]] = [[] for _ in range(count)]
        self.gpus_seen: set[int] = set()
        self._connections: list[tornado.websocket.WebSocketClientConnection] = []
        self._readers: list[asyncio.Future[None]] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    def __enter__(self) -> StreamClients:
        if self.count:
            self._loop = asyncio.new_event_loop()
            self._thread = threading.Thread(target=self._loop.run_forever, name="gpu-stream-clients", daemon=True)
            self._thread.start()
            try:
                asyncio.run_coroutine_threadsafe(self._connect_all(), self._loop).result(timeout=60)
            except BaseException:
                self.__exit__()
                raise
        return self

    async def _connect_all(self) -> None:
        for index in range(self.count):
            request = tornado.httpclient.HTTPRequest(self.url, headers=self.headers)
            connection = await tornado.websocket.websocket_connect(request)
            self._connections.append(connection)
            self._readers.append(asyncio.ensure_future(self._read(index, connection)))
        while not all(self.arrivals):  # every client has its first message
            await asyncio.sleep(0.05)

    async def _read(self, index: int, connection: tornado.websocket.WebSocketClientConnection) -> None:
        while True:
            message = await connection.read_message()
            if message is None:
                return
            sample = json.loads(message)
            self.gpus_seen.add(len(sample.get("gpus", [])))
            self.arrivals[index].append(time.monotonic())

    def received(self, start: float, end: float) -> list[int]:
        """Messages each client received between the monotonic times ``start`` and ``end``."""
        return [sum(1 for t in arrivals if start <= t <= end) for arrivals in self.arrivals]

    def __exit__(self, *_exc: object) -> None:
        if self._loop is None or self._thread is None:
            return

        async def close() -> None:
            for connection in self._connections:
                connection.close()
            await asyncio.sleep(0.2)  # let the close frames go out

        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(close(), self._loop).result(timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()


def _label(clients: int) -> str:
    return f"{clients} client" + ("" if clients == 1 else "s")


def server_case(window: float, rounds: int, source: str) -> dict[str, Any]:
    """% of a core the Jupyter server uses with 0, 1 and 10 GPU stream clients at 1 Hz."""
    cpu: dict[str, list[float]] = {_label(n): [] for n in CLIENT_COUNTS}
    coarse: dict[str, list[float]] = {_label(n): [] for n in CLIENT_COUNTS}
    precise = True
    sampled_without_clients: list[bool] = []
    received: dict[str, list[int]] = {_label(n): [] for n in CLIENT_COUNTS if n}
    gpus: set[int] = set()
    with tempfile.TemporaryDirectory(prefix="bench-gpu-") as tmp:
        server = GpuJupyterServer(Path(tmp), source, SERVER_INTERVAL)
        try:
            # start the sampler (and warm the imports of a stream) before anything is measured
            first = requests.get(f"{server.url}/workbench/api/gpu", headers=server.headers, timeout=30)
            first.raise_for_status()
            if not first.json().get("available"):
                raise RuntimeError(f"the server's GPU source is not available: {first.json().get('reason')}")
            with StreamClients(server.stream_url, server.headers, 1):
                time.sleep(SERVER_INTERVAL)
            for index in range(rounds):
                for clients in CLIENT_COUNTS if index % 2 == 0 else CLIENT_COUNTS[::-1]:
                    with StreamClients(server.stream_url, server.headers, clients) as viewers:
                        time.sleep(SERVER_INTERVAL / 2)  # settle between two ticks
                        start, cpu_start = time.monotonic(), server.cpu_seconds()
                        time.sleep(window)
                        end, cpu_end = time.monotonic(), server.cpu_seconds()
                        counts = viewers.received(start, end)
                        gpus |= viewers.gpus_seen
                    if not clients:  # the sampler kept sampling while nobody watched
                        newest = requests.get(f"{server.url}/workbench/api/gpu", headers=server.headers, timeout=30)
                        sampled_without_clients.append(time.time() - newest.json()["timestamp"] < 3 * SERVER_INTERVAL)
                    (coarse_start, fine_start), (coarse_end, fine_end) = cpu_start, cpu_end
                    coarse[_label(clients)].append((coarse_end - coarse_start) / (end - start) * 100)
                    if fine_start is None or fine_end is None:
                        precise = False
                    else:
                        cpu[_label(clients)].append((fine_end - fine_start) / (end - start) * 100)
                    if clients:
                        expected = (end - start) / SERVER_INTERVAL
                        if min(counts) < 0.6 * expected - 1:
                            raise RuntimeError(
                                f"a stream client received only {min(counts)} messages in {end - start:.1f} s "
                                f"(expected about {expected:.0f}): the measurement would count dead clients"
                            )
                        received[_label(clients)].extend(counts)
        finally:
            server.stop()
    if not precise:
        cpu = coarse
    what = {"fake-nvml": f"fake NVML, {GPUS} GPUs", "simulated": "simulated source", "nvml": "real NVML"}[source]
    res = common.result(
        BENCHMARK,
        f"Jupyter server CPU with GPU stream clients at 1 Hz ({what}; {window:g} s windows)",
        cpu,
        baseline=_label(CLIENT_COUNTS[-1]),
        workbench="1 client",
        unit="% CPU",
        cpu_clock="thread run time, ns (/proc schedstat)" if precise else "psutil user + system (10 ms steps)",
        psutil_percent={name: statistics.median(values) for name, values in coarse.items()},
        source=source,
        gpus_per_message=sorted(gpus),
        sampler_ran_without_clients=all(sampled_without_clients),
        window_s=window,
        interval_s=SERVER_INTERVAL,
        messages_received=received,
        messages_per_client_per_s={name: min(counts) / window for name, counts in received.items()},
        extra_cpu_percent_per_client=(statistics.median(cpu["10 clients"]) - statistics.median(cpu["1 client"])) / 9,
    )
    res["ratio_label"] = "server CPU with 10 clients / with 1 client (1.00: extra clients cost nothing)"
    return res


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--samples", type=int, default=200, help="samples per sampler round")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of the sampler cases")
    parser.add_argument("--window", type=float, default=12.0, help="seconds of each server measurement")
    parser.add_argument("--server-rounds", type=int, default=2, help="rounds of the 0 / 1 / 10 clients windows")
    parser.add_argument(
        "--server-source",
        choices=["fake-nvml", "simulated", "nvml"],
        help="the Jupyter server's GPU source (default: fake-nvml, or nvml with --nvml)",
    )
    parser.add_argument("--no-server", action="store_true", help="skip the Jupyter server case")
    parser.add_argument("--quick", action="store_true", help="short runs: a smoke test, not a measurement")
    parser.add_argument("--nvml", action="store_true", help="use the real NVML (needs a GPU) instead of the fake")
    args = parser.parse_args(argv)
    if args.quick:
        args.samples, args.rounds, args.window, args.server_rounds = 50, 1, 3.0, 1

    results = sampler_cases(args.samples, max(1, args.rounds), args.nvml)
    print(common.table(results), flush=True)
    if not args.no_server:
        source = args.server_source or ("nvml" if args.nvml else "fake-nvml")
        server = server_case(args.window, max(1, args.server_rounds), source)
        print(common.table([server]))
        rates = ", ".join(f"{name} {rate:.2f}" for name, rate in server["messages_per_client_per_s"].items())
        print(f"  messages per client per second (slowest client): {rates}")
        print(
            f"  each client past the first: +{server['extra_cpu_percent_per_client']:.3f}% of a core "
            f"(CPU clock: {server['cpu_clock']})",
            flush=True,
        )
        results.append(server)
    return results


if __name__ == "__main__":
    main()
