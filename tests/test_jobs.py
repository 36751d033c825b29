"""The job manager: states, throttled progress, cancel, errors, subscriptions, async events."""

from __future__ import annotations

import asyncio
import json
import threading
import time

import pytest

from workbench import jobs
from workbench.errors import NotFound
from workbench.jobs import JobManager
from workbench.records import to_dict, to_json

WAIT = 10  # seconds; generous upper bounds so a slow machine never flakes


class Recorder:
    """A subscriber that keeps every event."""

    def __init__(self) -> None:
        self.events: list[jobs.JobEvent] = []
        self.lock = threading.Lock()

    def __call__(self, event: jobs.JobEvent) -> None:
        with self.lock:
            self.events.append(event)

    def of(self, job_id: str) -> list[jobs.JobEvent]:
        with self.lock:
            return [e for e in self.events if e.job.id == job_id]


def test_job_runs_and_reports_result():
    manager = JobManager(min_interval=0)
    recorder = Recorder()
    manager.subscribe(recorder)

    def work(progress):
        for i in range(3):
            progress(i + 1, 3, f"step {i + 1}")
        return {"steps": 3}

    job = manager.submit("demo", "target-a", work, actor="ada")
    assert job.state in {"queued", "running", "succeeded"}
    done = manager.wait(job.id, WAIT)

    assert done.state == "succeeded"
    assert done.result == {"steps": 3}
    assert done.error is None
    assert (done.done, done.total, done.message) == (3, 3, "step 3")
    assert done.actor == "ada"
    assert done.created <= done.started <= done.ended
    events = recorder.of(job.id)
    assert events[0].event == "created" and events[0].job.state == "queued"
    assert events[-1].event == "finished" and events[-1].job.state == "succeeded"
    assert [(e.job.done, e.job.message) for e in events if e.event == "progress" and e.job.done] == [
        (1, "step 1"),
        (2, "step 2"),
        (3, "step 3"),
    ]
    # the record turns into JSON with the shared helper
    data = json.loads(to_json(done))
    assert data["state"] == "succeeded" and data["result"] == {"steps": 3}
    assert manager.get(job.id) == done
    assert manager.list()[0].id == job.id


def test_progress_is_throttled_and_the_last_update_is_delivered():
    manager = JobManager(min_interval=5.0)
    recorder = Recorder()
    manager.subscribe(recorder)

    def work(progress):
        for i in range(1, 501):
            progress(i, 500, f"file {i}")
        return None

    job = manager.submit("demo", "t", work)
    manager.wait(job.id, WAIT)

    progress_events = [e for e in recorder.of(job.id) if e.event == "progress"]
    # the "running" event, the first update, and the held-back last update: not 500 events
    assert len(progress_events) == 3
    assert (progress_events[1].job.done, progress_events[1].job.message) == (1, "file 1")
    assert (progress_events[-1].job.done, progress_events[-1].job.total) == (500, 500)
    assert progress_events[-1].job.message == "file 500"
    finished = recorder.of(job.id)[-1]
    assert finished.event == "finished" and finished.job.done == 500


def test_event_snapshots_do_not_change_afterwards():
    manager = JobManager(min_interval=0)
    recorder = Recorder()
    manager.subscribe(recorder)
    job = manager.submit("demo", "t", lambda progress: progress(1, 2, "half"))
    manager.wait(job.id, WAIT)
    created = recorder.of(job.id)[0]
    assert created.job.state == "queued" and created.job.done is None


def test_cancel_a_running_job():
    manager = JobManager(min_interval=0)
    started = threading.Event()
    stopped = []

    def work(progress):
        i = 0
        try:
            while True:
                i += 1
                progress(i, None, "working")
                started.set()
                time.sleep(0.01)
        finally:
            stopped.append(i)

    job = manager.submit("demo", "t", work)
    assert started.wait(WAIT)
    asked = manager.cancel(job.id)
    assert asked.cancel_requested
    done = manager.wait(job.id, WAIT)

    assert done.state == "cancelled"
    assert done.error["kind"] == "cancelled"
    assert done.result is None
    assert stopped, "the work stopped at its next progress call"
    # cancelling again changes nothing
    assert manager.cancel(job.id).state == "cancelled"


def test_cancel_a_queued_job_never_runs_it():
    manager = JobManager(min_interval=0)
    release = threading.Event()
    ran = []

    def blocker(progress):
        release.wait(WAIT)
        return "first"

    first = manager.submit("demo", "same-target", blocker)
    second = manager.submit("demo", "same-target", lambda progress: ran.append(True))
    # jobs on one target run one after another: the second waits for the first
    assert manager.get(second.id).state == "queued"
    cancelled = manager.cancel(second.id)
    assert cancelled.state == "cancelled" and cancelled.ended is not None
    release.set()
    assert manager.wait(first.id, WAIT).state == "succeeded"
    assert manager.wait(second.id, WAIT).state == "cancelled"
    assert ran == []


def test_jobs_on_different_targets_run_side_by_side():
    manager = JobManager(min_interval=0)
    both = threading.Barrier(2, timeout=WAIT)
    a = manager.submit("demo", "a", lambda progress: both.wait())
    b = manager.submit("demo", "b", lambda progress: both.wait())
    assert manager.wait(a.id, WAIT).state == "succeeded"
    assert manager.wait(b.id, WAIT).state == "succeeded"


def test_failure_surfaces_the_error_dict():
    manager = JobManager(min_interval=0)

    def missing(progress):
        raise NotFound("dataset x is gone", "push it again")

    job = manager.wait(manager.submit("demo", "t", missing).id, WAIT)
    assert job.state == "failed"
    assert job.error == {"error": "dataset x is gone", "hint": "push it again", "kind": "not_found"}


def test_unexpected_failure_gives_a_message_not_a_traceback(caplog):
    manager = JobManager(min_interval=0)

    def broken(progress):
        raise RuntimeError("disk on fire")

    job = manager.wait(manager.submit("demo", "t", broken).id, WAIT)
    assert job.state == "failed"
    assert job.error["kind"] == "error"
    assert "disk on fire" in job.error["error"]
    assert "Traceback" not in json.dumps(job.error)
    assert "Traceback" in caplog.text  # the details go to the log instead


def test_result_must_be_json_ready():
    manager = JobManager(min_interval=0)
    job = manager.wait(manager.submit("demo", "t", lambda progress: object()).id, WAIT)
    assert job.state == "failed"
    assert "JSON" in job.error["error"]


def test_subscribe_and_unsubscribe():
    manager = JobManager(min_interval=0)
    recorder = Recorder()
    unsubscribe = manager.subscribe(recorder)
    first = manager.wait(manager.submit("demo", "t", lambda progress: None).id, WAIT)
    unsubscribe()
    second = manager.wait(manager.submit("demo", "t", lambda progress: None).id, WAIT)

    assert [e.event for e in recorder.of(first.id)] == ["created", "progress", "finished"]
    assert recorder.of(second.id) == []
    unsubscribe()  # a second call is harmless


def test_a_failing_subscriber_does_not_break_jobs():
    manager = JobManager(min_interval=0)

    def bad(event):
        raise ValueError("subscriber bug")

    manager.subscribe(bad)
    job = manager.wait(manager.submit("demo", "t", lambda progress: 7).id, WAIT)
    assert job.state == "succeeded" and job.result == 7


def test_unknown_job_and_bounded_history():
    manager = JobManager(min_interval=0, history=3)
    with pytest.raises(NotFound):
        manager.get("nope")
    ids = [manager.wait(manager.submit("demo", "t", lambda progress: None).id, WAIT).id for _ in range(5)]
    listed = [job.id for job in manager.list()]
    assert listed == list(reversed(ids[-3:]))
    with pytest.raises(NotFound):
        manager.get(ids[0])


def test_wait_returns_the_running_job_after_the_timeout():
    manager = JobManager(min_interval=0)
    release = threading.Event()
    job = manager.submit("demo", "t", lambda progress: release.wait(WAIT))
    assert manager.wait(job.id, 0.05).state in {"queued", "running"}
    release.set()
    assert manager.wait(job.id, WAIT).state == "succeeded"


def test_manager_is_process_wide():
    assert jobs.manager() is jobs.manager()


@pytest.mark.asyncio
async def test_async_events_stream():
    manager = JobManager(min_interval=0)

    def work(progress):
        for i in range(1, 4):
            progress(i, 3, "step")
        return "ok"

    async with manager.events() as stream:
        job = manager.submit("demo", "t", work)
        seen = []

        async def collect():
            async for event in stream:
                seen.append(event)
                if event.event == "finished":
                    return

        await asyncio.wait_for(collect(), WAIT)

    assert seen[0].event == "created" and seen[0].job.id == job.id
    assert seen[-1].job.state == "succeeded" and seen[-1].job.result == "ok"
    assert [e.job.done for e in seen if e.event == "progress" and e.job.done] == [1, 2, 3]
    assert manager._subscribers == []  # leaving `async with` unsubscribed the stream
    assert to_dict(seen[-1])["job"]["state"] == "succeeded"


@pytest.mark.asyncio
async def test_async_events_for_one_job_and_aclose_ends_iteration():
    manager = JobManager(min_interval=0)
    stream = manager.events(job_id="not-this-one")
    other = manager.submit("demo", "t", lambda progress: None)
    manager.wait(other.id, WAIT)
    await asyncio.sleep(0.05)  # let any (wrongly) forwarded event arrive

    async def drain():
        return [event async for event in stream]

    task = asyncio.ensure_future(drain())
    await asyncio.sleep(0)
    await stream.aclose()
    assert await asyncio.wait_for(task, WAIT) == []
