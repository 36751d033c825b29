"""The shared sampler: one source call per tick however many viewers, a bounded buffer, streams."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import threading

import pytest

from tests.fake_pynvml import FakeGpu, FakeNvml
from workbench.config import load_settings
from workbench.gpu.model import GpuSample
from workbench.gpu.nvml import open_nvml
from workbench.gpu.sampler import Sampler, close_samplers, get_sampler
from workbench.gpu.simulated import SimulatedSource
from workbench.gpu.source import GpuSource

TICK = 0.02
GIB = 1024**3


def _nvml_calls_per_sample(subscribers: int, samples: int = 6) -> tuple[list[int], list[int]]:
    """Run a sampler over 8 fake GPUs with ``subscribers`` callbacks; NVML calls between samples, deliveries."""
    gpus = [FakeGpu(processes=[(10_000 + i, GIB)], process_util=[(10_000 + i, 40, 10)]) for i in range(8)]
    with FakeNvml(gpus).installed() as fake:
        sampler = Sampler(open_nvml(), interval=TICK, history=10)
        calls_at_sample: list[int] = []
        done = threading.Event()
        received = [0] * subscribers

        def count(_sample: GpuSample) -> None:
            calls_at_sample.append(fake.total_calls)
            if len(calls_at_sample) >= samples:
                done.set()

        unsubscribers = []
        for k in range(subscribers):

            def viewer(sample: GpuSample, k: int = k) -> None:
                received[k] += 1
                sampler.latest()  # viewers read the buffer...
                sampler.history(60)

            unsubscribers.append(sampler.subscribe(viewer))
        # subscribed last, so every sample it counts has reached every viewer first
        unsubscribers.append(sampler.subscribe(count))
        assert done.wait(10)
        for unsubscribe in unsubscribers:
            unsubscribe()
        sampler.stop(close_source=True)
        stats = sampler.stats()
    per_sample = [b - a for a, b in itertools.pairwise(calls_at_sample[:samples])]
    assert stats.source_calls == stats.samples
    return per_sample, received


def test_nvml_calls_per_sample_are_the_same_with_1_and_50_subscribers():
    one, received_one = _nvml_calls_per_sample(1)
    fifty, received_fifty = _nvml_calls_per_sample(50)
    # steady state: 1 device count + 12 queries for each of the 8 GPUs, whoever watches
    assert one == fifty == [1 + 8 * 12] * 5
    assert min(received_one) >= 6 and min(received_fifty) >= 6  # ...and every viewer got every counted sample


def test_reading_the_buffer_never_calls_the_source():
    with FakeNvml([FakeGpu()]).installed() as fake:
        sampler = Sampler(open_nvml(), interval=TICK)
        assert sampler.latest(wait=5) is not None  # starts lazily and waits for the first sample
        sampler.stop()
        calls = fake.total_calls
        for _ in range(1000):
            sampler.latest()
            sampler.history()
        assert fake.total_calls == calls
        sampler.source.close()


def test_the_ring_buffer_stays_bounded_and_keeps_the_newest():
    sampler = Sampler(SimulatedSource(gpus=1), interval=0.01, history=0.05)
    assert sampler.stats().capacity == 5
    taken = threading.Event()
    sampler.subscribe(lambda _s: taken.set() if sampler.stats().samples >= 25 else None)
    assert taken.wait(10)
    sampler.stop()
    history = sampler.history()
    assert len(history) == 5 and sampler.stats().samples >= 25
    assert history[-1] is sampler.latest()
    assert [s.timestamp for s in history] == sorted(s.timestamp for s in history)
    assert sampler.history(seconds=0) == [history[-1]]


def test_default_capacity_is_history_over_interval(tmp_path):
    settings = load_settings(tmp_path, gpu_source="simulated")
    sampler = get_sampler(settings)
    try:
        assert sampler.stats().capacity == 600  # 10 minutes at 1 s
        assert not sampler.running  # nothing started it yet
        assert get_sampler(settings) is sampler  # one per process and source
        assert get_sampler(settings, "none") is not sampler
    finally:
        close_samplers()


def test_a_failing_source_or_subscriber_does_not_stop_sampling():
    armed = threading.Event()

    class Flaky(GpuSource):
        """Fails once, on the first sample after the test arms it."""

        name = "flaky"

        def __init__(self) -> None:
            self.calls = 0
            self.failed = False

        def sample(self) -> GpuSample:
            self.calls += 1
            if armed.is_set() and not self.failed:
                self.failed = True
                raise RuntimeError("boom")
            return GpuSample(timestamp=self.calls, host="h", source="flaky", simulated=False, available=True)

    sampler = Sampler(Flaky(), interval=TICK)
    seen: list[GpuSample] = []
    enough = threading.Event()

    def bad_viewer(_sample: GpuSample) -> None:
        raise ValueError("viewer bug")

    def good_viewer(sample: GpuSample) -> None:  # called after bad_viewer for every sample
        seen.append(sample)
        failures = [i for i, s in enumerate(seen) if not s.available]
        if failures and len(seen) - failures[0] > 3:
            enough.set()

    sampler.subscribe(bad_viewer)
    sampler.subscribe(good_viewer)
    armed.set()
    assert enough.wait(10)
    sampler.stop()
    failed_at = [s.available for s in seen].index(False)
    assert "boom" in seen[failed_at].reason and seen[failed_at].source == "flaky"
    assert all(s.available for s in seen[failed_at + 1 :])  # sampling went on after the failure


@pytest.mark.asyncio
async def test_streams_share_the_sampler_and_a_client_can_go_slower_never_faster():
    source = SimulatedSource(gpus=2)
    sampler = Sampler(source, interval=0.05)

    async def take(n: int, min_interval: float | None) -> list[GpuSample]:
        got = []
        async with contextlib.aclosing(sampler.stream(min_interval=min_interval)) as stream:
            async for sample in stream:
                got.append(sample)
                if len(got) == n:
                    break
        return got

    fast, slow, *others = await asyncio.wait_for(
        asyncio.gather(take(6, 0.0), take(3, 0.2), *(take(3, None) for _ in range(48))), timeout=20
    )
    sampler.stop()
    fast_gaps = [b.timestamp - a.timestamp for a, b in itertools.pairwise(fast)]
    slow_gaps = [b.timestamp - a.timestamp for a, b in itertools.pairwise(slow)]
    assert all(gap >= 0.05 * 0.5 for gap in fast_gaps)  # never faster than the sampler
    assert all(gap >= 0.2 - 0.05 / 2 for gap in slow_gaps)  # the slow client's own rate
    assert all(len(o) == 3 for o in others)
    stats = sampler.stats()
    assert stats.subscribers == 0  # every stream unsubscribed when it ended
    assert stats.source_calls == stats.samples < 50 * 3  # one call per tick, not one per stream and item
