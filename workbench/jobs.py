"""Long actions as jobs with progress events.

DVC push/pull/checkout (and model deploys) take seconds to minutes. Instead of
blocking a request, a service submits the work to the process-wide
:class:`JobManager` and returns the :class:`Job` at once; every surface then
follows the job through its events (``created``, ``progress``, ``finished``)
or polls :meth:`JobManager.get`.

The work is a function ``fn(progress)`` run in a worker thread. It calls
``progress(done, total, message)`` as it goes; that call raises
:class:`Cancelled` once someone asked to cancel the job, so cancelling is
cooperative: work that never reports progress cannot be cancelled while it
runs. Jobs on the same ``target`` (e.g. one repository) run one after another
in submission order, jobs on different targets run side by side.

Progress events are throttled per job (at most one per ``min_interval``,
10 per second by default); the latest state is always in the job record, and
an update that was held back is delivered before the ``finished`` event, so
the last progress a job reported always reaches subscribers.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as _dt
import json
import logging
import threading
import time
import uuid
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from workbench.errors import NotFound, WorkbenchError
from workbench.records import to_dict

logger = logging.getLogger(__name__)

QUEUED = "queued"
RUNNING = "running"
SUCCEEDED = "succeeded"
FAILED = "failed"
CANCELLED = "cancelled"
FINISHED_STATES = frozenset({SUCCEEDED, FAILED, CANCELLED})


def _now() -> _dt.datetime:
    return _dt.datetime.now(_dt.UTC)


class Cancelled(WorkbenchError):
    """Raised inside a job's work by ``progress()`` once the job was cancelled."""

    status = 409
    kind = "cancelled"


class Progress(Protocol):
    """The ``progress`` function handed to a job's work."""

    def __call__(self, done: int | None, total: int | None, message: str = "") -> None: ...


@dataclass
class Job:
    """A long action and where it stands.

    ``done``/``total`` count units of work (files for DVC transfers); either
    may be ``None`` while unknown. ``result`` is JSON-ready data once the job
    succeeded; ``error`` is a :class:`WorkbenchError` dict (``error``,
    ``hint``, ``kind``) once it failed or was cancelled, never a traceback.
    """

    id: str
    kind: str
    target: str
    state: str = QUEUED
    done: int | None = None
    total: int | None = None
    message: str = ""
    result: Any = None
    error: dict[str, str] | None = None
    created: _dt.datetime = dataclasses.field(default_factory=_now)
    started: _dt.datetime | None = None
    ended: _dt.datetime | None = None
    actor: str | None = None
    cancel_requested: bool = False

    @property
    def finished(self) -> bool:
        """True once the job ended: succeeded, failed or cancelled."""
        return self.state in FINISHED_STATES


@dataclass
class JobEvent:
    """One event about a job: ``created``, ``progress`` or ``finished``.

    ``progress`` events also mark the start of the work (state ``running``)
    and a cancel request (``cancel_requested``) on a running job.

    ``job`` is a snapshot taken when the event was emitted; it does not change
    afterwards.
    """

    event: str
    job: Job


@dataclass
class _Entry:
    """Manager-side state of one job; guarded by the manager's lock."""

    job: Job
    fn: Callable[[Progress], Any]
    cancel: threading.Event = dataclasses.field(default_factory=threading.Event)
    finished: threading.Event = dataclasses.field(default_factory=threading.Event)
    last_emit: float = 0.0
    pending: bool = False  # a progress update was held back by the throttle


class JobManager:
    """Runs jobs in worker threads and tells subscribers how they go.

    ``min_interval`` is the least time in seconds between two progress events
    of one job; ``history`` bounds how many finished jobs are remembered.
    """

    def __init__(self, *, min_interval: float = 0.1, history: int = 200) -> None:
        self.min_interval = min_interval
        self.history = history
        self._lock = threading.Lock()
        # Taking a snapshot and emitting it happen under this lock, so subscribers
        # see each job's events in order even when progress comes from several
        # threads. Lock order: _emit_lock, then _lock.
        self._emit_lock = threading.RLock()
        self._entries: OrderedDict[str, _Entry] = OrderedDict()
        self._queues: dict[str, deque[_Entry]] = {}
        self._subscribers: list[Callable[[JobEvent], None]] = []

    # ----------------------------------------------------------------- submit

    def submit(self, kind: str, target: str, fn: Callable[[Progress], Any], *, actor: str | None = None) -> Job:
        """Queue ``fn(progress)`` as a job of ``kind`` on ``target``; returns the new job at once."""
        if not callable(fn):
            raise TypeError("fn must be callable")
        entry = _Entry(job=Job(id=uuid.uuid4().hex, kind=kind, target=target, actor=actor), fn=fn)
        with self._emit_lock:
            with self._lock:
                self._entries[entry.job.id] = entry
                self._trim_history()
                queue = self._queues.get(target)
                start_worker = queue is None
                if start_worker:
                    queue = self._queues[target] = deque()
                queue.append(entry)
                snapshot = dataclasses.replace(entry.job)
            self._emit("created", snapshot)
        if start_worker:
            threading.Thread(target=self._work, args=(target,), name=f"workbench-job-{kind}", daemon=True).start()
        return snapshot

    # ------------------------------------------------------------------ query

    def get(self, job_id: str) -> Job:
        """The current state of a job (a snapshot); NotFound for an unknown or forgotten id."""
        with self._lock:
            return dataclasses.replace(self._entry(job_id).job)

    def list(self) -> list[Job]:
        """Recent jobs, newest first: all unfinished ones and up to ``history`` finished ones."""
        with self._lock:
            return [dataclasses.replace(e.job) for e in reversed(self._entries.values())]

    def wait(self, job_id: str, timeout: float | None = None) -> Job:
        """Block until the job finished or ``timeout`` seconds passed; returns its state then."""
        with self._lock:
            entry = self._entry(job_id)
        entry.finished.wait(timeout)
        with self._lock:
            return dataclasses.replace(entry.job)

    def cancel(self, job_id: str) -> Job:
        """Ask a job to stop.

        A queued job is cancelled at once. A running job is cancelled the next
        time its work reports progress. A finished job, or one already asked
        to stop, is left as it is.
        """
        with self._emit_lock:
            with self._lock:
                entry = self._entry(job_id)
                job = entry.job
                if job.finished or entry.cancel.is_set():
                    return dataclasses.replace(job)
                entry.cancel.set()
                job.cancel_requested = True
                cancelled_now = job.state == QUEUED
                if cancelled_now:
                    self._finish(entry, CANCELLED, error=self._cancelled(job).to_dict())
                snapshot = dataclasses.replace(job)
            self._emit("finished" if cancelled_now else "progress", snapshot)
        return snapshot

    # ------------------------------------------------------------ subscribing

    def subscribe(self, callback: Callable[[JobEvent], None]) -> Callable[[], None]:
        """Call ``callback(event)`` for every job event; returns the function that unsubscribes.

        Callbacks run in the thread that emits the event (a job's worker) and
        must return quickly: hand the event over, do not render in them.
        Exceptions raised by a callback are logged and otherwise ignored.
        """
        with self._lock:
            self._subscribers.append(callback)

        def unsubscribe() -> None:
            with self._lock:
                if callback in self._subscribers:
                    self._subscribers.remove(callback)

        return unsubscribe

    def events(self, job_id: str | None = None, *, max_queue: int = 1000) -> EventStream:
        """Job events for an asyncio consumer (all jobs, or only ``job_id``).

        Call it from a coroutine; the stream is subscribed from that moment,
        so a job submitted right after is seen from its ``created`` event.
        Use ``async with manager.events() as stream: async for event in stream``
        so the subscription ends with the consumer.
        """
        return EventStream(self, job_id, max_queue)

    # -------------------------------------------------------------- internals

    def _entry(self, job_id: str) -> _Entry:
        entry = self._entries.get(job_id)
        if entry is None:
            raise NotFound(f"No job {job_id!r}", "Jobs are kept in memory; the list shows the recent ones.")
        return entry

    def _trim_history(self) -> None:
        finished = [jid for jid, e in self._entries.items() if e.job.finished]
        for jid in finished[: max(0, len(finished) - self.history)]:
            del self._entries[jid]

    def _work(self, target: str) -> None:
        """Worker thread for one target: runs its queued jobs one by one."""
        while True:
            with self._emit_lock:
                with self._lock:
                    queue = self._queues[target]
                    if not queue:
                        del self._queues[target]
                        return
                    entry = queue.popleft()
                    if entry.job.finished:  # cancelled while queued
                        continue
                    entry.job.state = RUNNING
                    entry.job.started = _now()
                    snapshot = dataclasses.replace(entry.job)
                self._emit("progress", snapshot)
            self._run(entry)

    def _run(self, entry: _Entry) -> None:
        job = entry.job

        def progress(done: int | None, total: int | None, message: str = "") -> None:
            self._progress(entry, done, total, message)

        try:
            result = entry.fn(progress)
            result = to_dict(result)
            json.dumps(result)
        except Exception as exc:
            if entry.cancel.is_set() or isinstance(exc, Cancelled):
                state, error = CANCELLED, (exc if isinstance(exc, Cancelled) else self._cancelled(job)).to_dict()
            elif isinstance(exc, WorkbenchError):
                state, error = FAILED, exc.to_dict()
            else:
                logger.exception("job %s (%s on %s) failed", job.id, job.kind, job.target)
                detail = f"{type(exc).__name__}: {exc}"
                error = {
                    "error": f"{job.kind} on {job.target} failed unexpectedly ({detail[:500]})",
                    "hint": "The server log has the details.",
                    "kind": "error",
                }
                state = FAILED
            result = None
        else:
            state, error = SUCCEEDED, None
        with self._emit_lock:
            with self._lock:
                flush = dataclasses.replace(job) if entry.pending else None
                self._finish(entry, state, result=result, error=error)
                snapshot = dataclasses.replace(job)
            if flush is not None:
                self._emit("progress", flush)
            self._emit("finished", snapshot)

    def _progress(self, entry: _Entry, done: int | None, total: int | None, message: str) -> None:
        if entry.cancel.is_set():
            raise self._cancelled(entry.job)
        now = time.monotonic()
        with self._emit_lock:
            with self._lock:
                job = entry.job
                if job.finished:
                    return
                job.done, job.total = done, total
                if message:
                    job.message = message
                if now - entry.last_emit < self.min_interval:
                    entry.pending = True
                    return
                entry.last_emit, entry.pending = now, False
                snapshot = dataclasses.replace(job)
            self._emit("progress", snapshot)

    def _finish(self, entry: _Entry, state: str, *, result: Any = None, error: dict[str, str] | None = None) -> None:
        """Record the end of a job; the caller holds the lock and emits ``finished``."""
        entry.job.state, entry.job.result, entry.job.error = state, result, error
        entry.job.ended = _now()
        entry.pending = False
        entry.finished.set()
        self._trim_history()

    @staticmethod
    def _cancelled(job: Job) -> Cancelled:
        return Cancelled(f"{job.kind} on {job.target} was cancelled", "Start it again when needed.")

    def _emit(self, event: str, job: Job) -> None:
        """Hand an event to every subscriber; the caller holds ``_emit_lock``."""
        with self._lock:
            subscribers = list(self._subscribers)
        message = JobEvent(event=event, job=job)
        for callback in subscribers:
            try:
                callback(message)
            except Exception:
                logger.exception("job event subscriber %r failed", callback)


class EventStream:
    """An async iterator over job events, fed from worker threads.

    Events cross into the event loop that created the stream with
    ``loop.call_soon_threadsafe``. A consumer that falls more than
    ``max_queue`` events behind loses the oldest ones. ``aclose()`` (or
    leaving ``async with``) unsubscribes and ends the iteration.
    """

    def __init__(self, manager: JobManager, job_id: str | None, max_queue: int) -> None:
        self._loop = asyncio.get_running_loop()
        self._queue: asyncio.Queue[JobEvent | None] = asyncio.Queue()
        self._job_id = job_id
        self._max_queue = max_queue
        self._closed = False
        self._unsubscribe = manager.subscribe(self._deliver)

    def _deliver(self, event: JobEvent) -> None:
        """Called in the emitting thread."""
        if self._job_id is not None and event.job.id != self._job_id:
            return
        try:
            self._loop.call_soon_threadsafe(self._put, event)
        except RuntimeError:  # the loop is closed: nobody listens any more
            self._unsubscribe()

    def _put(self, event: JobEvent | None) -> None:
        if self._queue.qsize() >= self._max_queue:
            self._queue.get_nowait()
        self._queue.put_nowait(event)

    def __aiter__(self) -> EventStream:
        return self

    async def __anext__(self) -> JobEvent:
        if self._closed:
            raise StopAsyncIteration
        event = await self._queue.get()
        if event is None:
            raise StopAsyncIteration
        return event

    async def aclose(self) -> None:
        """Stop receiving events; a consumer waiting in ``async for`` ends its loop."""
        if not self._closed:
            self._closed = True
            self._unsubscribe()
            self._queue.put_nowait(None)

    async def __aenter__(self) -> EventStream:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()


_manager: JobManager | None = None
_manager_lock = threading.Lock()


def manager() -> JobManager:
    """The process-wide job manager every service and surface shares."""
    global _manager
    with _manager_lock:
        if _manager is None:
            _manager = JobManager()
        return _manager
