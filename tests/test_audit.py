"""The audit log stays whole under concurrent writers, threads and processes."""

from __future__ import annotations

import json
import multiprocessing
import subprocess
import threading

from workbench import audit
from workbench.config import load_settings
from workbench.errors import Conflict


def _write_many(workspace: str, tag: str, count: int) -> None:
    settings = load_settings(workspace)
    for i in range(count):
        audit.record(settings, "promote", f"model-{tag}", detail={"i": i, "pad": "x" * 3000})


def test_entries_record_who_what_before_after(tmp_path):
    settings = load_settings(tmp_path)
    audit.record(settings, "promote", "iris@champion", before="1", after="2", detail={"overrides": ["gate"]})
    with audit.acting_as("alice"):
        audit.record(settings, "rollback", "iris@champion", outcome="refused", error=Conflict("no", "why"))
    first, second = audit.read(settings)
    assert (first.action, first.before, first.after, first.detail) == ("promote", "1", "2", {"overrides": ["gate"]})
    assert first.actor and first.actor != "alice" and first.outcome == "ok"
    assert second.actor == "alice" and second.outcome == "refused"
    assert second.error == {"error": "no", "hint": "why", "kind": "conflict"}
    assert [e.action for e in audit.read(settings, action="rollback")] == ["rollback"]
    assert len(audit.read(settings, limit=1)) == 1


def test_concurrent_threads_and_processes_never_interleave(tmp_path):
    threads = [threading.Thread(target=_write_many, args=(str(tmp_path), f"t{i}", 40)) for i in range(5)]
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_write_many, args=(str(tmp_path), f"p{i}", 40)) for i in range(3)]
    for worker in threads + procs:
        worker.start()
    for worker in threads + procs:
        worker.join(timeout=120)
    lines = audit.log_path(load_settings(tmp_path)).read_text().splitlines()
    assert len(lines) == 8 * 40
    entries = [json.loads(line) for line in lines]  # every line is one whole JSON object
    for tag in [f"t{i}" for i in range(5)] + [f"p{i}" for i in range(3)]:
        mine = [e["detail"]["i"] for e in entries if e["target"] == f"model-{tag}"]
        assert mine == list(range(40))  # each writer's entries, all there, in its order


def test_reading_an_empty_workspace_writes_nothing(tmp_path):
    assert audit.read(load_settings(tmp_path)) == []
    assert not (tmp_path / ".workbench").exists()


def test_workbench_state_never_shows_as_a_git_change(make_repo):
    repo = make_repo()
    audit.record(load_settings(repo), "dvc.push", str(repo))
    assert (repo / ".workbench" / "audit.jsonl").is_file()
    status = subprocess.run(["git", "status", "--porcelain"], cwd=repo, capture_output=True, text=True, check=True)
    assert status.stdout == ""
