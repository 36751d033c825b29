"""The kept data status (workbench._status_cache) against DVC itself, on real git + DVC repositories.

After every change the cached ``data.status()`` must equal an uncached DVC
status (``data._compute_status`` called directly, the oracle), and a spy on
``_compute_status`` tells whether DVC was asked again: unchanged workspaces
must be answered without DVC, changed ones never from the cache. No test
looks at wall-clock durations; a few wait out the (shortened) window in
which fresh timestamps make an answer not reusable.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from dvc.repo import Repo

from workbench import _status_cache, data
from workbench.config import ensure_state_dir, load_settings

ORACLE = data._compute_status  # DVC's answer, never cached
RACY_WINDOW_S = 0.2


# from a folder outside the repositories: results must not depend on the working directory
pytestmark = pytest.mark.usefixtures("elsewhere")


@pytest.fixture(autouse=True)
def own_cache(monkeypatch):
    """A new, empty cache per test, with a short racy window so tests wait less."""
    cache = _status_cache.StatusCache()
    monkeypatch.setattr(_status_cache, "CACHE", cache)
    monkeypatch.setattr(_status_cache, "RACY_WINDOW_NS", int(RACY_WINDOW_S * 1e9))
    return cache


@pytest.fixture
def dvc_calls(monkeypatch):
    """Every time status() asked DVC (the spy on the recompute function)."""
    calls: list[dict] = []

    def spy(*args, **kwargs):
        calls.append(kwargs)
        return ORACLE(*args, **kwargs)

    monkeypatch.setattr(data, "_compute_status", spy)
    return calls


# ---------------------------------------------------------------- helpers


def git(root: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=root, check=True, capture_output=True, text=True).stdout.strip()


def write(path: Path, content: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(content)


def commit_all(root: Path, message: str) -> str:
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", message)
    return git(root, "rev-parse", "HEAD")


def dataset(make_repo, name: str = "ds") -> Path:
    """A committed repository: a tracked CSV and a tracked folder of three small files."""
    root = make_repo(name)
    write(root / "data" / "table.csv", "x,y\n1,2\n")
    for i in range(3):
        write(root / "data" / "images" / f"{i}.txt", f"image {i}\n")
    with Repo(os.fspath(root)) as repo:
        repo.add([os.fspath(root / "data" / "table.csv"), os.fspath(root / "data" / "images")])
    commit_all(root, "add data")
    return root


def settle() -> None:
    """Let every timestamp written so far leave the racy window."""
    time.sleep(RACY_WINDOW_S + 0.05)


def oracle(settings, **options) -> data.DataStatus:
    return ORACLE(
        settings.dvc_root, settings, remote=options.get("remote", False), untracked=options.get("untracked", False)
    )


def warm(settings, dvc_calls, **options) -> data.DataStatus:
    """A reusable answer in the cache, and proof that it is reused."""
    settle()
    data.status(settings, **options)
    before = len(dvc_calls)
    kept = data.status(settings, **options)
    assert len(dvc_calls) == before, "an unchanged repository must be answered from the cache"
    return kept


def check(settings, dvc_calls, *, asked_dvc: bool, **options) -> data.DataStatus:
    """status() equals DVC's own answer, and asked DVC (or not)."""
    before = len(dvc_calls)
    got = data.status(settings, **options)
    assert (len(dvc_calls) > before) == asked_dvc
    assert got == oracle(settings, **options)
    return got


def badges(status: data.DataStatus) -> dict[str, list[str]]:
    return {entry.path: entry.badges for entry in status.entries}


# ---------------------------------------------------------------- nothing changed


def test_unchanged_repository_is_answered_without_dvc(make_repo, dvc_calls, own_cache):
    root = dataset(make_repo)
    settings = load_settings(root)
    kept = warm(settings, dvc_calls)
    assert kept == oracle(settings)
    assert badges(kept) == {"data/images": ["unchanged"], "data/table.csv": ["unchanged"]}

    asked = len(dvc_calls)
    for _ in range(5):
        assert data.status(settings) == kept
    assert len(dvc_calls) == asked
    assert own_cache.hits >= 6

    # the caller gets a copy: changing it changes nothing kept
    mine = data.status(settings)
    mine.entries.clear()
    mine.git.untracked.append("nonsense")
    assert data.status(settings) == kept

    # DVC's own runs (in-process and the command line) write only where the answer does not look
    with Repo(os.fspath(root)) as repo:
        repo.data_status()
    subprocess.run(["dvc", "status"], cwd=root, check=True, capture_output=True)
    check(settings, dvc_calls, asked_dvc=False)


def test_fresh_asks_dvc_and_keeps_the_answer(make_repo, dvc_calls):
    root = dataset(make_repo)
    settings = load_settings(root)
    warm(settings, dvc_calls)
    before = len(dvc_calls)
    assert data.status(settings, fresh=True) == oracle(settings)
    assert len(dvc_calls) == before + 1
    settle()
    data.status(settings, fresh=True)
    check(settings, dvc_calls, asked_dvc=False)


def test_answer_with_fresh_timestamps_is_not_reused(make_repo, dvc_calls, monkeypatch):
    """Within the racy window a second same-size write could keep every stat: DVC is asked again."""
    root = dataset(make_repo)
    settings = load_settings(root)
    warm(settings, dvc_calls)
    monkeypatch.setattr(_status_cache, "RACY_WINDOW_NS", 3600 * 10**9)  # every timestamp is fresh now
    write(root / "notes.txt", "a\n")
    for _ in range(3):
        check(settings, dvc_calls, asked_dvc=True)
    monkeypatch.setattr(_status_cache, "RACY_WINDOW_NS", int(RACY_WINDOW_S * 1e9))
    settle()
    check(settings, dvc_calls, asked_dvc=True)  # the first answer outside the window is kept ...
    check(settings, dvc_calls, asked_dvc=False)  # ... and reused


# ---------------------------------------------------------------- changes in the work tree


def test_same_size_edit_is_seen_even_with_the_mtime_put_back(make_repo, dvc_calls):
    root = dataset(make_repo)
    settings = load_settings(root)
    table = root / "data" / "table.csv"
    image = root / "data" / "images" / "1.txt"
    warm(settings, dvc_calls)

    write(table, "x,y\n1,3\n")  # same size, new mtime
    assert badges(check(settings, dvc_calls, asked_dvc=True))["data/table.csv"] == ["modified"]

    # same size, mtime restored to the nanosecond: the ctime still moves, so DVC is asked;
    # DVC's answer (which trusts inode + mtime + size) is what status() returns
    warm(settings, dvc_calls)
    before = image.stat()
    write(image, "IMAGE 1\n")
    os.utime(image, ns=(before.st_atime_ns, before.st_mtime_ns))
    after = image.stat()
    assert (after.st_size, after.st_mtime_ns, after.st_ino) == (before.st_size, before.st_mtime_ns, before.st_ino)
    check(settings, dvc_calls, asked_dvc=True)


def test_files_added_to_and_deleted_from_a_tracked_folder(make_repo, dvc_calls):
    root = dataset(make_repo)
    settings = load_settings(root)
    images = root / "data" / "images"
    warm(settings, dvc_calls)

    write(images / "3.txt", "image 3\n")
    assert badges(check(settings, dvc_calls, asked_dvc=True))["data/images"] == ["modified"]

    (images / "3.txt").unlink()
    assert badges(check(settings, dvc_calls, asked_dvc=True))["data/images"] == ["unchanged"]

    warm(settings, dvc_calls)
    (images / "0.txt").unlink()
    assert badges(check(settings, dvc_calls, asked_dvc=True))["data/images"] == ["modified"]

    shutil.rmtree(images)
    assert badges(check(settings, dvc_calls, asked_dvc=True))["data/images"] == ["missing"]


def test_dvc_commit_add_and_git_commit_after_a_change(make_repo, dvc_calls):
    root = dataset(make_repo)
    settings = load_settings(root)
    warm(settings, dvc_calls)

    write(root / "data" / "table.csv", "x,y\n1,2\n3,4\n")
    assert badges(check(settings, dvc_calls, asked_dvc=True))["data/table.csv"] == ["modified"]
    warm(settings, dvc_calls)
    with Repo(os.fspath(root)) as repo:
        repo.commit(os.fspath(root / "data" / "table.csv"), force=True)
    status = check(settings, dvc_calls, asked_dvc=True)
    assert badges(status)["data/table.csv"] == ["not committed"]
    assert status.git.unstaged == ["data/table.csv.dvc"]

    warm(settings, dvc_calls)
    write(root / "data" / "images" / "3.txt", "image 3\n")
    with Repo(os.fspath(root)) as repo:
        repo.add([os.fspath(root / "data" / "images")])
    assert badges(check(settings, dvc_calls, asked_dvc=True))["data/images"] == ["not committed"]

    warm(settings, dvc_calls)
    git(root, "add", "data")
    status = check(settings, dvc_calls, asked_dvc=True)  # only git's index changed
    assert sorted(status.git.staged) == ["data/images.dvc", "data/table.csv.dvc"]

    warm(settings, dvc_calls)
    git(root, "commit", "-q", "-m", "v2")
    status = check(settings, dvc_calls, asked_dvc=True)
    assert badges(status) == {"data/images": ["unchanged"], "data/table.csv": ["unchanged"]}
    assert status.git.head == git(root, "rev-parse", "--short=7", "HEAD")


def test_git_checkout_of_another_revision_then_dvc_checkout(make_repo, dvc_calls):
    root = dataset(make_repo)
    first = git(root, "rev-parse", "HEAD")
    write(root / "data" / "table.csv", "x,y\n9,9\n")
    with Repo(os.fspath(root)) as repo:
        repo.add([os.fspath(root / "data" / "table.csv")])
    commit_all(root, "table v2")
    settings = load_settings(root)
    warm(settings, dvc_calls)

    git(root, "checkout", "-q", first)
    status = check(settings, dvc_calls, asked_dvc=True)
    assert badges(status)["data/table.csv"] == ["modified"]
    assert (status.git.branch, status.git.head) == (None, first[:7])

    warm(settings, dvc_calls)
    with Repo(os.fspath(root)) as repo:
        repo.checkout(force=True)
    status = check(settings, dvc_calls, asked_dvc=True)
    assert badges(status)["data/table.csv"] == ["unchanged"]
    assert (root / "data" / "table.csv").read_text() == "x,y\n1,2\n"

    warm(settings, dvc_calls)
    git(root, "checkout", "-q", "main")
    status = check(settings, dvc_calls, asked_dvc=True)
    assert status.git.branch == "main"
    assert badges(status)["data/table.csv"] == ["modified"]


def test_untracked_and_other_git_changes(make_repo, dvc_calls):
    root = dataset(make_repo)
    write(root / "README.md", "hello\n")
    commit_all(root, "readme")
    settings = load_settings(root)
    warm(settings, dvc_calls, untracked=True)

    write(root / "scratch" / "notes.txt", "x\n")
    status = check(settings, dvc_calls, asked_dvc=True, untracked=True)
    assert status.git.untracked == ["scratch/"]
    # the untracked listing and the plain status are kept apart
    assert data.status(settings).git.untracked == []

    warm(settings, dvc_calls, untracked=True)
    write(root / "README.md", "HELLO\n")  # a git-tracked file outside DVC's outputs
    status = check(settings, dvc_calls, asked_dvc=True, untracked=True)
    assert status.git.dirty and status.git.unstaged == ["README.md"]

    warm(settings, dvc_calls, untracked=True)
    write(root / ".gitignore", "scratch/\n")
    status = check(settings, dvc_calls, asked_dvc=True, untracked=True)
    assert status.git.untracked == [".gitignore"]

    warm(settings, dvc_calls, untracked=True)
    write(root / "sub" / "stage.dvc", "outs:\n- path: nothing\n")  # a new .dvc file anywhere counts
    check(settings, dvc_calls, asked_dvc=True, untracked=True)


# ---------------------------------------------------------------- cache and remote


def test_removing_an_object_from_the_cache(make_repo, dvc_calls):
    root = dataset(make_repo)
    settings = load_settings(root)
    warm(settings, dvc_calls)
    table = next(e for e in data.status(settings).entries if e.path == "data/table.csv")
    obj = root / ".dvc" / "cache" / "files" / "md5" / table.hash[:2] / table.hash[2:]
    assert obj.is_file()
    obj.unlink()
    status = check(settings, dvc_calls, asked_dvc=True)
    assert "not in cache" in badges(status)["data/table.csv"]


def test_push_to_a_local_remote_is_seen_by_the_remote_check(make_repo, dvc_calls):
    root = dataset(make_repo)
    settings = load_settings(root)
    status = warm(settings, dvc_calls, remote=True)
    assert status.remote_checked and badges(status)["data/table.csv"] == ["not pushed", "unchanged"]

    with Repo(os.fspath(root)) as repo:
        assert repo.push() > 0
    status = check(settings, dvc_calls, asked_dvc=True, remote=True)
    assert badges(status) == {"data/images": ["unchanged"], "data/table.csv": ["unchanged"]}

    # an object gone from the remote folder
    warm(settings, dvc_calls, remote=True)
    table = next(e for e in status.entries if e.path == "data/table.csv")
    remote = Path(settings.dvc_root).parent / "remote-ds"
    (remote / "files" / "md5" / table.hash[:2] / table.hash[2:]).unlink()
    status = check(settings, dvc_calls, asked_dvc=True, remote=True)
    assert badges(status)["data/table.csv"] == ["not pushed", "unchanged"]


def test_remote_check_against_a_remote_that_is_not_a_folder_is_never_reused(make_repo, own_cache):
    root = dataset(make_repo)
    subprocess.run(["dvc", "remote", "add", "web", "http://127.0.0.1:9/store"], cwd=root, check=True)
    with Repo(os.fspath(root)) as repo:
        watched, _ = _status_cache._watched(repo, "web", None)
    assert "not a local folder" in watched.uncacheable

    computed = []

    def compute(watch):
        with Repo(os.fspath(root)) as repo:
            watch(repo, "web")
        computed.append(1)
        return oracle(load_settings(root))

    settle()
    for _ in range(3):
        own_cache.get(("web",), root, None, compute)
    assert len(computed) == 3


# ---------------------------------------------------------------- what is left out, and what is not


def test_workbench_state_and_dvc_tmp_writes_do_not_cost_a_dvc_call(make_repo, dvc_calls):
    root = dataset(make_repo)
    settings = load_settings(root)
    state = ensure_state_dir(settings)
    write(state / "mlflow.db", "runs")
    warm(settings, dvc_calls)

    write(state / "mlflow.db", "more runs")
    write(state / "artifacts" / "1" / "model.pkl", "weights")
    write(root / ".dvc" / "tmp" / "scratch", "lock")
    check(settings, dvc_calls, asked_dvc=False)

    # the rule that makes it safe changes: everything counts again
    write(state / ".gitignore", "mlflow.db\n")
    status = check(settings, dvc_calls, asked_dvc=True, untracked=True)
    assert ".workbench/" in status.git.untracked
    warm(settings, dvc_calls)
    write(state / "artifacts" / "1" / "model.pkl", "other weights")
    check(settings, dvc_calls, asked_dvc=True)


def test_repository_without_git(make_repo, dvc_calls):
    root = make_repo("nogit", git=False)
    write(root / "data" / "a.txt", "a\n")
    with Repo(os.fspath(root)) as repo:
        repo.add([os.fspath(root / "data")])
    settings = load_settings(root)
    status = warm(settings, dvc_calls)
    assert status.git is None and badges(status) == {"data": ["unchanged"]}
    write(root / ".dvc" / "tmp" / "scratch", "lock")  # DVC never looks into .dvc
    check(settings, dvc_calls, asked_dvc=False)
    write(root / "data" / "b.txt", "b\n")
    assert badges(check(settings, dvc_calls, asked_dvc=True)) == {"data": ["modified"]}


def test_a_symlink_to_a_folder_turns_the_cache_off(make_repo, dvc_calls):
    root = dataset(make_repo)
    (root / "linked").symlink_to(root / "data" / "images", target_is_directory=True)
    settings = load_settings(root)
    settle()
    for _ in range(2):
        check(settings, dvc_calls, asked_dvc=True)


def test_subdirectory_dvc_repository_watches_the_whole_git_work_tree(make_repo, tmp_path, dvc_calls):
    top = make_repo("top", dvc=False)
    write(top / "README.md", "top\n")
    commit_all(top, "top")
    root = top / "project"
    root.mkdir()
    subprocess.run(["dvc", "init", "-q", "--subdir"], cwd=root, check=True)
    subprocess.run(["dvc", "config", "core.site_cache_dir", str(tmp_path / "site-sub")], cwd=root, check=True)
    write(root / "data.csv", "a\n")
    with Repo(os.fspath(root)) as repo:
        repo.add([os.fspath(root / "data.csv")])
    commit_all(top, "dvc")
    settings = load_settings(root)
    warm(settings, dvc_calls)

    write(top / "README.md", "changed\n")  # outside the DVC repository, inside git's work tree
    status = check(settings, dvc_calls, asked_dvc=True)
    assert status.git.dirty


# ---------------------------------------------------------------- threads


def test_concurrent_refreshes_agree_with_dvc(make_repo, dvc_calls):
    root = dataset(make_repo)
    settings = load_settings(root)
    expected = warm(settings, dvc_calls)
    before = len(dvc_calls)
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda _: data.status(settings), range(16)))
    assert all(r == expected for r in results)
    assert len(dvc_calls) == before

    write(root / "data" / "images" / "9.txt", "new\n")
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda _: data.status(settings), range(16)))
    truth = oracle(settings)
    assert badges(truth)["data/images"] == ["modified"]
    assert all(r == truth for r in results)
    assert before < len(dvc_calls) <= before + 16
