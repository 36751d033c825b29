"""One GPU sampler per process: polls a source into a ring buffer that every viewer reads.

The sampler's thread is the only caller of its source, so the cost of polling
NVML (or Prometheus) does not grow with the number of viewers. Viewers either
read the buffer (:meth:`Sampler.latest`, :meth:`Sampler.history`), get a
callback after each sample (:meth:`Sampler.subscribe`), or iterate
``async for sample in sampler.stream(min_interval=...)`` at their own, slower
pace.

The thread starts lazily (first subscriber, first ``stream``, ``latest(wait=...)``
or an explicit :meth:`Sampler.start`) and runs until :meth:`Sampler.stop`; it is
a daemon thread, so it never keeps a process alive.
"""

from __future__ import annotations

import asyncio
import logging
import math
import threading
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

from workbench.config import Settings
from workbench.gpu.model import GpuSample
from workbench.gpu.source import GpuSource, SessionsProvider, open_source

log = logging.getLogger(__name__)

Subscriber = Callable[[GpuSample], None]


@dataclass
class SamplerStats:
    """What the sampler has done so far (for benchmarks and the status views)."""

    source: str
    interval: float
    capacity: int  # samples the ring buffer holds
    buffered: int
    samples: int  # samples taken
    source_calls: int  # calls into the source (one per sample)
    subscribers: int
    cpu_seconds: float  # CPU time the sampler thread spent sampling
    running: bool


class Sampler:
    """Polls ``source`` every ``interval`` seconds into a buffer of ``history`` seconds."""

    def __init__(self, source: GpuSource, *, interval: float = 1.0, history: float = 600.0) -> None:
        if interval <= 0 or history <= 0:
            raise ValueError("interval and history must be positive")
        self.source = source
        self.interval = float(interval)
        self.history_seconds = float(history)
        self._buffer: deque[GpuSample] = deque(maxlen=max(1, math.ceil(history / interval)))
        self._subscribers: dict[int, Subscriber] = {}
        self._next_id = 0
        self._lock = threading.Lock()
        self._new_sample = threading.Condition(self._lock)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._samples = 0
        self._source_calls = 0
        self._cpu_seconds = 0.0

    # ------------------------------------------------------------------ lifecycle

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> Sampler:
        """Start the polling thread (no-op when it runs)."""
        with self._lock:
            if self._thread is not None and self._thread.is_alive():
                return self
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name=f"gpu-sampler-{self.source.name}", daemon=True)
            self._thread.start()
        return self

    def stop(self, *, close_source: bool = False) -> None:
        """Stop polling (and release the source when ``close_source``); the buffer stays readable."""
        self._stop.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=max(5.0, 2 * self.interval))
        self._thread = None
        if close_source:
            self.source.close()

    def _run(self) -> None:
        next_at = time.monotonic()
        while not self._stop.is_set():
            self._take_sample()
            next_at += self.interval
            now = time.monotonic()
            if next_at < now:  # a slow sample: skip the missed ticks, keep the rate
                next_at = now + self.interval - (now - next_at) % self.interval
            self._stop.wait(next_at - now)

    def _take_sample(self) -> None:
        cpu_before = time.thread_time()
        self._source_calls += 1
        try:
            sample = self.source.sample()
        except Exception as exc:  # a source bug must not kill the sampler thread
            log.exception("GPU source %s failed", self.source.name)
            sample = GpuSample(
                timestamp=time.time(),
                host="",
                source=self.source.name,
                simulated=self.source.simulated,
                available=False,
                reason=f"The {self.source.name} source failed: {type(exc).__name__}: {exc}",
            )
        with self._new_sample:
            self._buffer.append(sample)
            self._samples += 1
            self._cpu_seconds += time.thread_time() - cpu_before
            subscribers = list(self._subscribers.values())
            self._new_sample.notify_all()
        for callback in subscribers:
            try:
                callback(sample)
            except Exception:  # one viewer's bug must not starve the others
                log.exception("GPU sample subscriber failed")

    # ------------------------------------------------------------------ reading

    def latest(self, wait: float | None = None) -> GpuSample | None:
        """The newest sample; with ``wait``, start if needed and wait up to that long for a first one."""
        if wait is not None and not self._buffer:
            self.start()
            with self._new_sample:
                self._new_sample.wait_for(lambda: bool(self._buffer), timeout=wait)
        with self._lock:
            return self._buffer[-1] if self._buffer else None

    def history(self, seconds: float | None = None) -> list[GpuSample]:
        """Buffered samples, oldest first; only those of the last ``seconds`` when given."""
        with self._lock:
            samples = list(self._buffer)
        if seconds is None or not samples:
            return samples
        since = samples[-1].timestamp - seconds
        return [s for s in samples if s.timestamp >= since]

    def stats(self) -> SamplerStats:
        with self._lock:
            return SamplerStats(
                source=self.source.name,
                interval=self.interval,
                capacity=self._buffer.maxlen or 0,
                buffered=len(self._buffer),
                samples=self._samples,
                source_calls=self._source_calls,
                subscribers=len(self._subscribers),
                cpu_seconds=self._cpu_seconds,
                running=self.running,
            )

    # ------------------------------------------------------------------ subscriptions

    def subscribe(self, callback: Subscriber) -> Callable[[], None]:
        """Call ``callback(sample)`` from the sampler thread after each sample; returns the unsubscribe function.

        Callbacks must be quick (hand the sample to your own loop or queue).
        """
        with self._lock:
            key = self._next_id
            self._next_id += 1
            self._subscribers[key] = callback
        self.start()

        def unsubscribe() -> None:
            with self._lock:
                self._subscribers.pop(key, None)

        return unsubscribe

    async def stream(self, min_interval: float | None = None) -> AsyncIterator[GpuSample]:
        """Yield samples as they come, at most one per ``min_interval`` seconds (never faster than the sampler).

        A slow consumer skips samples rather than queueing them: it always gets the newest.
        Wrap it in ``contextlib.aclosing`` to unsubscribe as soon as the consumer stops.
        """
        period = max(min_interval or 0.0, self.interval)
        loop = asyncio.get_running_loop()
        ready = asyncio.Event()

        def wake(_sample: GpuSample) -> None:
            loop.call_soon_threadsafe(ready.set)

        unsubscribe = self.subscribe(wake)
        last: float | None = None
        try:
            while True:
                sample = self.latest()
                # half a sampler tick of slack, so sample-time jitter does not skip every other sample
                if sample is not None and (last is None or sample.timestamp - last >= period - self.interval / 2):
                    last = sample.timestamp
                    yield sample
                ready.clear()
                await ready.wait()
        finally:
            unsubscribe()


# ---------------------------------------------------------------------- the per-process registry

_samplers: dict[tuple[str, str | None, str | None], Sampler] = {}
_registry_lock = threading.Lock()


def get_sampler(
    settings: Settings,
    source: str | None = None,
    *,
    sessions: SessionsProvider | None = None,
    host: str | None = None,
) -> Sampler:
    """The process's one sampler for this source (created on first use; not started).

    The first caller's ``settings.gpu_interval``/``gpu_history`` and ``sessions``
    decide how that sampler polls; later callers share it. ``host`` names the
    node in the readings (default: this machine's host name).
    """
    name = source or settings.gpu_source
    key = (name, settings.prometheus_url if name == "prometheus" else None, host)
    with _registry_lock:
        sampler = _samplers.get(key)
        if sampler is None:
            sampler = Sampler(
                open_source(settings, name, sessions=sessions, host=host),
                interval=settings.gpu_interval,
                history=settings.gpu_history,
            )
            _samplers[key] = sampler
        return sampler


def close_samplers() -> None:
    """Stop every registered sampler and release its source (tests, process shutdown)."""
    with _registry_lock:
        samplers = list(_samplers.values())
        _samplers.clear()
    for sampler in samplers:
        sampler.stop(close_source=True)
