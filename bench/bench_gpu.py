"""GPU sampler cost: CPU per sample for 8 GPUs, and NVML calls with 50 viewers vs 1.

Runs against the narrow pynvml fake (tests/fake_pynvml.py) with 8 GPUs and a
(real, visible) process on each, so it needs no GPU; ``--nvml`` uses the real library where
NVML initializes. Every figure comes with its baseline from the same run:

- CPU per sample of the sampler thread vs. the bare NVML calls of one sample
  (the same calls made in a plain loop, no Workbench code around them);
- NVML calls per sample with 50 subscribers vs. with 1 (the design says 1.00).

    python bench/bench_gpu.py [--samples 200] [--nvml]
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
import time
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext, suppress
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repo root: tests.fake_pynvml

import pynvml

from tests.fake_pynvml import FakeGpu, FakeNvml
from workbench.gpu.nvml import NvmlSource, open_nvml
from workbench.gpu.sampler import Sampler

GPUS = 8
INTERVAL = 0.002  # fast ticks: the bench measures cost per sample, not the production rate


def _fake() -> FakeNvml:
    """8 GPUs, each with one process that psutil can see (this one), as on a training node."""
    pid = os.getpid()
    return FakeNvml([FakeGpu(processes=[(pid, 1 << 30)], process_util=[(pid, 50, 20)]) for _ in range(GPUS)])


def _bare_calls_cpu(samples: int) -> float:
    """CPU seconds per sample for just the NVML calls a sample makes (count + 12 per GPU)."""
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--samples", type=int, default=200)
    parser.add_argument("--nvml", action="store_true", help="use the real NVML (needs a GPU) instead of the fake")
    args = parser.parse_args()

    fake = None if args.nvml else _fake()
    context: AbstractContextManager = nullcontext() if fake is None else fake.installed()
    with context:
        count_calls = (lambda: fake.total_calls) if fake is not None else (lambda: 0)
        pynvml.nvmlInit()
        bare = _bare_calls_cpu(args.samples)
        pynvml.nvmlShutdown()
        cpu_one, calls_one = _run_sampler(1, args.samples, count_calls)
        cpu_fifty, calls_fifty = _run_sampler(50, args.samples, count_calls)

    what = "real NVML" if fake is None else f"fake NVML, {GPUS} GPUs, 1 process each"
    print(f"GPU sampler benchmark ({what}, {args.samples} samples)")
    print(f"  CPU per sample, sampler thread:   {cpu_one * 1e3:.3f} ms")
    print(f"  CPU per sample, bare NVML calls:  {bare * 1e3:.3f} ms  (baseline)")
    print(f"  ratio sampler / bare calls:       {cpu_one / bare:.2f}x")
    print(f"  at 1 Hz: {cpu_one * 100:.3f}% of a core")
    if fake is not None:
        print(f"  NVML calls per sample, 1 subscriber:    {calls_one:.1f}  (baseline)")
        print(f"  NVML calls per sample, 50 subscribers:  {calls_fifty:.1f}")
        print(f"  ratio 50 / 1 subscribers:               {calls_fifty / calls_one:.2f}")
    print(f"  CPU per sample with 50 subscribers: {cpu_fifty * 1e3:.3f} ms (callbacks run after the sample)")


if __name__ == "__main__":
    main()
