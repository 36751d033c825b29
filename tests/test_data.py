"""The data service against real git + DVC repositories with a real local remote.

Every test runs from a working directory outside the repository (or, where
said, inside a subfolder of it): results must not depend on it, and the
working directory must be the same afterwards.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest
from dvc.repo import Repo

from workbench import audit, data, jobs
from workbench.config import load_settings
from workbench.errors import Busy, Conflict, InvalidInput, NotFound, NotInitialized

JOB_WAIT = 60


# from a folder outside every test repository: results must not depend on the working directory
pytestmark = pytest.mark.usefixtures("elsewhere")


@pytest.fixture
def every_event(monkeypatch):
    """Record all job events of the shared manager, with the throttle off."""
    manager = jobs.manager()
    monkeypatch.setattr(manager, "min_interval", 0)
    events: list[jobs.JobEvent] = []
    unsubscribe = manager.subscribe(events.append)
    yield events
    unsubscribe()


# ---------------------------------------------------------------- helpers


def git(root: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=root, check=True, capture_output=True, text=True).stdout.strip()


def write(path: Path, content: str | bytes) -> bytes:
    path.parent.mkdir(parents=True, exist_ok=True)
    raw = content.encode() if isinstance(content, str) else content
    path.write_bytes(raw)
    return raw


def md5(raw: bytes) -> str:
    return hashlib.md5(raw).hexdigest()


def dvc_add(root: Path, *paths: str) -> None:
    """``dvc add`` through the in-process API (the CLI costs ~0.5 s a call)."""
    with Repo(os.fspath(root)) as repo:
        repo.add([os.fspath(root / p) for p in paths])


def commit_all(root: Path, message: str) -> str:
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", message)
    return git(root, "rev-parse", "HEAD")


def finished(job: jobs.Job) -> jobs.Job:
    done = jobs.manager().wait(job.id, JOB_WAIT)
    assert done.finished, f"{job.kind} still {done.state} after {JOB_WAIT} s"
    return done


def succeeded(job: jobs.Job) -> jobs.Job:
    done = finished(job)
    assert done.state == "succeeded", done.error
    return done


def badges(status: data.DataStatus) -> dict[str, list[str]]:
    return {entry.path: entry.badges for entry in status.entries}


def workspace_files(root: Path) -> dict[str, bytes]:
    """Every file of the working tree except git's, DVC's and Workbench's own state (the audit log)."""
    skip = {".git", ".dvc", ".workbench"}
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in root.rglob("*")
        if p.is_file() and p.relative_to(root).parts[0] not in skip
    }


def dataset_repo(make_repo, name: str = "ds", images: int = 3) -> tuple[Path, bytes]:
    """A repository with a tracked CSV and a tracked folder of small files, committed."""
    root = make_repo(name)
    csv = write(root / "data" / "table.csv", "x,y\n1,2\n")
    for i in range(images):
        write(root / "data" / "images" / f"{i}.txt", f"image {i}\n")
    dvc_add(root, "data/table.csv", "data/images")
    commit_all(root, "add data")
    return root, csv


# ---------------------------------------------------------------- status


def test_status_badges_follow_add_modify_commit_push(make_repo):
    root, csv = dataset_repo(make_repo)
    settings = load_settings(root)
    before = workspace_files(root)

    status = data.status(settings)
    by_path = {entry.path: entry for entry in status.entries}
    table, images = by_path["data/table.csv"], by_path["data/images"]
    assert (table.kind, table.owner, table.stage) == ("file", "data/table.csv.dvc", None)
    assert (table.hash, table.size, table.cached) == (md5(csv), len(csv), True)
    assert (images.kind, images.nfiles) == ("dir", 3)
    assert images.hash.endswith(".dir")
    assert badges(status) == {"data/images": ["unchanged"], "data/table.csv": ["unchanged"]}
    assert status.remote_checked is False
    assert status.git.branch == "main"
    assert status.git.head == git(root, "rev-parse", "HEAD")[:7]
    assert status.git.dirty is False
    assert status.notes == []
    assert workspace_files(root) == before, "a status call must not write into the working tree"

    remote = data.status(settings, remote=True)
    assert remote.remote_checked and remote.remote == "local"
    assert badges(remote)["data/table.csv"] == ["not pushed", "unchanged"]

    assert data.has_uncommitted_changes(settings) is False
    write(root / "data" / "table.csv", "x,y\n1,2\n3,4\n")
    assert badges(data.status(settings))["data/table.csv"] == ["modified"]
    assert data.has_uncommitted_changes(settings) is True

    with Repo(os.fspath(root)) as repo:
        repo.commit(os.fspath(root / "data" / "table.csv"), force=True)
    status = data.status(settings)
    assert badges(status)["data/table.csv"] == ["not committed"]
    assert status.git.unstaged == ["data/table.csv.dvc"]
    assert data.has_uncommitted_changes(settings) is True

    commit_all(root, "table v2")
    assert badges(data.status(settings))["data/table.csv"] == ["unchanged"]
    assert data.has_uncommitted_changes(settings) is False

    pushed = succeeded(data.push(settings))
    assert pushed.result["pushed"] > 0
    after_push = data.status(settings, remote=True)
    assert badges(after_push) == {"data/images": ["unchanged"], "data/table.csv": ["unchanged"]}

    (root / "data" / "table.csv").unlink()
    assert badges(data.status(settings))["data/table.csv"] == ["missing"]


def test_status_lists_untracked_files_on_request(make_repo):
    root, _ = dataset_repo(make_repo)
    write(root / "notes.txt", "scratch\n")
    settings = load_settings(root)
    assert data.status(settings).git.untracked == []
    assert data.status(settings, untracked=True).git.untracked == ["notes.txt"]


# ---------------------------------------------------------------- history and diff


def test_revisions_and_diff_of_a_dataset(make_repo):
    root, v1 = dataset_repo(make_repo)
    sha1 = git(root, "rev-parse", "HEAD")
    write(root / "README.md", "unrelated\n")
    commit_all(root, "readme")
    v2 = write(root / "data" / "table.csv", "x,y\n1,2\n5,6\n")
    dvc_add(root, "data/table.csv")
    sha2 = commit_all(root, "table v2")
    settings = load_settings(root)

    revisions = data.revisions(settings, "data/table.csv")
    assert [r.sha for r in revisions] == [sha2, sha1]
    assert [r.message for r in revisions] == ["table v2", "add data"]
    assert [r.hash for r in revisions] == [md5(v2), md5(v1)]
    assert [r.size for r in revisions] == [len(v2), len(v1)]
    newest = revisions[0]
    assert newest.short_sha and sha2.startswith(newest.short_sha)
    assert newest.author == "Workbench Tests"
    assert newest.source == "data/table.csv.dvc" and newest.path == "data/table.csv"
    assert newest.date[:4].isdigit() and "T" in newest.date
    assert data.revisions(settings, root / "data" / "table.csv") == revisions  # absolute path

    images = data.revisions(settings, "data/images/")
    assert len(images) == 1 and images[0].nfiles == 3 and images[0].hash.endswith(".dir")

    diff = data.diff(settings, "HEAD~2", "HEAD")
    assert (diff.rev_a, diff.rev_b) == ("HEAD~2", "HEAD")
    assert [(c.change, c.path, c.old_hash, c.new_hash) for c in diff.changes] == [
        ("modified", "data/table.csv", md5(v1), md5(v2))
    ]

    write(root / "data" / "images" / "3.txt", "image 3\n")
    dvc_add(root, "data/images")
    workspace = data.diff(settings, "HEAD")
    assert workspace.rev_b == "workspace"
    assert [(c.change, c.path) for c in workspace.changes] == [
        ("modified", "data/images/"),
        ("added", "data/images/3.txt"),
    ]
    assert workspace.not_in_cache == []


def test_bad_paths_and_revisions(make_repo):
    root, _ = dataset_repo(make_repo)
    settings = load_settings(root)
    for outside in ("../elsewhere/x.csv", "/etc/passwd", root.parent / "x.csv"):
        with pytest.raises(InvalidInput, match="outside the repository"):
            data.revisions(settings, outside)
    with pytest.raises(InvalidInput):
        data.revisions(settings, " ")
    with pytest.raises(NotFound, match="not tracked"):
        data.revisions(settings, "data/nope.csv")
    with pytest.raises(NotFound) as inside:
        data.revisions(settings, "data/images/0.txt")
    assert "data/images" in inside.value.hint
    with pytest.raises(NotFound) as unknown:
        data.diff(settings, "no-such-branch")
    assert "no-such-branch" in unknown.value.message and "git log" in unknown.value.hint
    with pytest.raises(NotFound):
        data.diff(settings, "HEAD", "v9.9")
    with pytest.raises(InvalidInput):
        data.diff(settings, "--output=/tmp/x")
    with pytest.raises(NotFound, match="not tracked"):
        data.push(settings, targets=["data/nope.csv"])


# ---------------------------------------------------------------- pipeline

PREPARE = """\
import os, yaml
split = yaml.safe_load(open("params.yaml"))["prepare"]["split"]
rows = open("data/raw.csv").read().splitlines()
os.makedirs("data/prepared", exist_ok=True)
open("data/prepared/train.csv", "w").write("\\n".join(rows) + "\\n")
open("data/prepared/test.csv", "w").write(rows[0] + "\\n")
"""

TRAIN = """\
import json, yaml
train = yaml.safe_load(open("params.yaml"))["train"]
n = len(open("data/prepared/train.csv").read().splitlines())
open("model.txt", "w").write(f"lr={train['lr']} rows={n}\\n")
json.dump({"accuracy": 0.75, "rows": n}, open("metrics.json", "w"))
"""

DVC_YAML = """\
stages:
  prepare:
    cmd: python src/prepare.py
    deps: [data/raw.csv, src/prepare.py]
    params: [prepare.split]
    outs: [data/prepared]
  train:
    cmd: python src/train.py
    deps: [data/prepared, src/train.py]
    params: [train]
    outs: [model.txt]
    metrics:
      - metrics.json:
          cache: false
"""


def repro(root: Path) -> None:
    subprocess.run(["dvc", "repro", "-q"], cwd=root, check=True, capture_output=True)


def test_pipeline_graph_stale_stages_params_and_metrics(make_repo, monkeypatch):
    root = make_repo("pipe")
    write(root / "params.yaml", "prepare:\n  split: 0.5\ntrain:\n  lr: 0.1\n  epochs: 3\n")
    write(root / "src" / "prepare.py", PREPARE)
    write(root / "src" / "train.py", TRAIN)
    write(root / "data" / "raw.csv", "x,y\n1,2\n")
    dvc_add(root, "data/raw.csv")
    write(root / "dvc.yaml", DVC_YAML)
    repro(root)
    commit_all(root, "pipeline")
    settings = load_settings(root)

    pipe = data.pipeline(settings)
    stages = {s.name: s for s in pipe.stages}
    assert set(stages) == {"data/raw.csv.dvc", "prepare", "train"}
    assert {(e.stage, e.upstream) for e in pipe.edges} == {("prepare", "data/raw.csv.dvc"), ("train", "prepare")}
    prepare, train = stages["prepare"], stages["train"]
    assert prepare.cmd == ["python src/prepare.py"] and prepare.source == "dvc.yaml"
    assert prepare.deps == ["data/raw.csv", "src/prepare.py"]
    assert prepare.outs == ["data/prepared"] and prepare.params == ["params.yaml:prepare.split"]
    assert train.metrics == ["metrics.json"] and set(train.outs) == {"model.txt", "metrics.json"}
    assert train.params == ["params.yaml:train"] and train.upstream == ["prepare"]
    assert stages["data/raw.csv.dvc"].kind == "source" and prepare.kind == "stage"
    assert not any(s.stale or s.frozen for s in pipe.stages)

    values = data.params_metrics(settings)
    assert [(f.path, f.values) for f in values.params] == [
        ("params.yaml", {"prepare": {"split": 0.5}, "train": {"lr": 0.1, "epochs": 3}})
    ]
    assert [(f.path, f.values) for f in values.metrics] == [("metrics.json", {"accuracy": 0.75, "rows": 2})]

    # a changed dependency makes its stage stale; seen from inside the repository too
    write(root / "data" / "raw.csv", "x,y\n1,2\n3,4\n")
    write(root / "params.yaml", "prepare:\n  split: 0.5\ntrain:\n  lr: 0.2\n  epochs: 3\n")
    monkeypatch.chdir(root / "src")
    stages = {s.name: s for s in data.pipeline(settings).stages}
    assert stages["prepare"].stale and stages["train"].stale and stages["data/raw.csv.dvc"].stale
    assert stages["prepare"].changes == ["changed deps: data/raw.csv (modified)"]
    assert any(c.startswith("changed deps: params.yaml") for c in stages["train"].changes)
    status = data.status(settings)
    assert badges(status)["data/raw.csv"] == ["modified"]
    owners = {entry.path: (entry.owner, entry.stage) for entry in status.entries}
    assert owners == {
        "data/raw.csv": ("data/raw.csv.dvc", None),
        "data/prepared": ("dvc.yaml:prepare", "prepare"),
        "model.txt": ("dvc.yaml:train", "train"),
        "metrics.json": ("dvc.yaml:train", "train"),
    }
    monkeypatch.chdir(settings.workspace.parent / "elsewhere")

    # pipeline outputs have history too, from dvc.lock
    dvc_add(root, "data/raw.csv")
    repro(root)
    commit_all(root, "more rows")
    assert not any(s.stale for s in data.pipeline(settings).stages)
    prepared = data.revisions(settings, "data/prepared")
    assert [r.message for r in prepared] == ["more rows", "pipeline"]
    assert {r.source for r in prepared} == {"dvc.lock"} and prepared[0].nfiles == 2
    assert prepared[0].hash != prepared[1].hash


# ---------------------------------------------------------------- push, pull, checkout


def test_push_then_pull_into_a_fresh_clone_with_progress(make_repo, tmp_path, every_event):
    root, csv = dataset_repo(make_repo, images=20)
    settings = load_settings(root)
    with pytest.raises(NotFound):
        data.push(settings, remote="nope")

    job = data.push(settings)
    assert job.kind == "dvc.push" and job.target == str(root)
    pushed = succeeded(job)
    in_remote = [p for p in (tmp_path / "remote-ds").rglob("*") if p.is_file()]
    assert pushed.result == {"pushed": len(in_remote), "remote": "local", "targets": None}
    events = [e for e in every_event if e.job.id == job.id]
    transfer = [e.job for e in events if e.event == "progress" and e.job.message.startswith("Pushing to")]
    assert transfer, "DVC's own transfer progress reached the job"
    assert all(j.total == len(in_remote) for j in transfer if j.total is not None)
    assert [j.done for j in transfer] == sorted(j.done for j in transfer)
    last = [e.job for e in events if e.event == "progress"][-1]
    assert last.done == last.total == len(in_remote)
    assert events[-1].event == "finished" and events[-1].job.done == events[-1].job.total

    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", os.fspath(root), os.fspath(clone)], check=True)
    clone_settings = load_settings(clone)
    assert set(badges(data.status(clone_settings))["data/table.csv"]) == {"missing", "not in cache"}

    job = data.pull(clone_settings)
    pulled = succeeded(job)
    assert pulled.result["stats"]["fetched"] == len(in_remote)
    assert pulled.result["added"] == ["data/images", "data/table.csv"]
    events = [e for e in every_event if e.job.id == job.id]
    assert any(e.job.message.startswith("Fetching from") for e in events if e.event == "progress")
    final = events[-1].job
    assert final.state == "succeeded" and final.done == final.total == len(in_remote)
    assert (clone / "data" / "table.csv").read_bytes() == csv
    assert workspace_files(clone) == workspace_files(root)
    assert set(map(tuple, badges(data.status(clone_settings)).values())) == {("unchanged",)}
    # both transfers went through the audit log, with their results
    (push_entry,) = audit.read(settings, action="dvc.push")
    assert push_entry.outcome == "ok" and push_entry.after["pushed"] == len(in_remote)
    (pull_entry,) = audit.read(clone_settings, action="dvc.pull")
    assert pull_entry.outcome == "ok" and pull_entry.target == str(clone)


def test_checkout_refuses_uncommitted_changes_then_force(make_repo, elsewhere):
    root, csv = dataset_repo(make_repo)
    settings = load_settings(root)
    write(root / "data" / "table.csv", "edited by hand\n")
    write(root / "data" / "images" / "new.txt", "a new image\n")
    before = workspace_files(root)
    jobs_before = len(jobs.manager().list())

    with pytest.raises(Conflict) as refused:
        data.checkout(settings)
    assert "data/table.csv" in refused.value.message and "data/images/new.txt" in refused.value.message
    assert "dvc commit" in refused.value.hint and "force" in refused.value.hint
    with pytest.raises(Conflict):
        data.pull(settings)
    with pytest.raises(Conflict) as only_images:
        data.checkout(settings, targets=["data/images"])
    assert "data/table.csv" not in only_images.value.message
    assert workspace_files(root) == before, "a refused checkout must not touch the workspace"
    assert len(jobs.manager().list()) == jobs_before, "refused before any job started"

    refusals = audit.read(settings)
    assert [(e.action, e.outcome) for e in refusals] == [
        ("dvc.checkout", "refused"),
        ("dvc.pull", "refused"),
        ("dvc.checkout", "refused"),
    ]
    assert refusals[0].error["kind"] == "conflict"

    done = succeeded(data.checkout(settings, force=True))
    assert done.result["modified"] == ["data/images", "data/table.csv"]
    assert (root / "data" / "table.csv").read_bytes() == csv
    assert not (root / "data" / "images" / "new.txt").exists()

    # restoring deleted data overwrites nothing: no force needed
    (root / "data" / "table.csv").unlink()
    restored = succeeded(data.checkout(settings, targets=[str(root / "data" / "table.csv")]))
    assert restored.result["added"] == ["data/table.csv"] and restored.result["targets"] == ["data/table.csv"]
    assert (root / "data" / "table.csv").read_bytes() == csv
    assert not any(elsewhere.iterdir()), "nothing was written relative to the working directory"


# ---------------------------------------------------------------- missing parts


def test_folder_without_dvc(make_repo, tmp_path):
    plain = make_repo("plain", dvc=False)
    for call in (data.status, data.pipeline, data.params_metrics, data.push, data.checkout):
        with pytest.raises(NotInitialized) as missing:
            call(load_settings(plain))
        assert "is not a DVC repository" in missing.value.message
        assert "dvc init" in missing.value.hint
    bare = tmp_path / "bare"
    bare.mkdir()
    with pytest.raises(NotInitialized) as missing:
        data.revisions(load_settings(bare), "x.csv")
    assert "git init" in missing.value.hint


def test_no_remote_configured(make_repo):
    root, _ = dataset_repo(make_repo, "noremote")
    with Repo(os.fspath(root)) as repo, repo.config.edit() as conf:
        del conf["remote"]["local"]
        del conf["core"]["remote"]
    settings = load_settings(root)
    for call in (data.push, data.pull, lambda s: data.status(s, remote=True)):
        with pytest.raises(NotInitialized) as missing:
            call(settings)
        assert "No DVC remote" in missing.value.message
        assert "dvc remote add -d" in missing.value.hint
    assert not [j for j in jobs.manager().list() if j.target == str(root)]
    assert badges(data.status(settings))["data/table.csv"] == ["unchanged"]


def test_dvc_without_git(make_repo):
    root = make_repo("nogit", git=False)
    raw = write(root / "data.csv", "a\n1\n")
    dvc_add(root, "data.csv")
    settings = load_settings(root)

    status = data.status(settings)
    assert [(e.path, e.hash, e.badges) for e in status.entries] == [("data.csv", md5(raw), ["unchanged"])]
    assert status.git is None and status.notes == [data.NO_GIT_NOTE]
    write(root / "data.csv", "a\n2\n")
    assert badges(data.status(settings)) == {"data.csv": ["modified"]}
    assert [s.name for s in data.pipeline(settings).stages] == ["data.csv.dvc"]
    for call in (lambda s: data.revisions(s, "data.csv"), lambda s: data.diff(s, "HEAD")):
        with pytest.raises(NotInitialized) as missing:
            call(settings)
        assert "git" in missing.value.message and "git init" in missing.value.hint


# ---------------------------------------------------------------- lock

HOLD_LOCK = """\
import sys, time
from dvc.repo import Repo
repo = Repo(sys.argv[1])
repo.lock.lock()
print("locked", flush=True)
time.sleep(60)
"""


@pytest.mark.timeout(90)
def test_repository_locked_by_another_process(make_repo):
    root, _ = dataset_repo(make_repo, "locked")
    settings = load_settings(root)
    holder = subprocess.Popen([sys.executable, "-c", HOLD_LOCK, os.fspath(root)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        # a job started now meets the lock in its worker thread ...
        job = data.checkout(settings, force=True)
        # ... while the caller meets it in pipeline(); both give up after DVC's ~3 s
        with pytest.raises(Busy) as busy:
            data.pipeline(settings)
        assert f"Another DVC process is working in {root}" in busy.value.message
        assert "retry" in busy.value.hint
        failed = finished(job)
        assert failed.state == "failed" and failed.error["kind"] == "busy"
        # status does not take the lock: it still answers
        assert badges(data.status(settings))["data/table.csv"] == ["unchanged"]
    finally:
        holder.kill()
        holder.wait()
    assert [s.name for s in data.pipeline(settings).stages] == ["data/images.dvc", "data/table.csv.dvc"]
