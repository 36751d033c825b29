"""Data status refresh: Workbench's data status against DVC's own status calls.

On generated git + DVC repositories (``--files`` small files in four tracked
folders, ``dvc add``-ed, committed, pushed to a local remote; built once and
kept under ``bench/.cache/data/``, or ``--cache-dir``), it measures in the
same run, alternating the order round by round:

- Workbench: ``workbench.data.status(settings)`` in-process, as the Jupyter
  server and the dashboards call it on every refresh (it keeps the last
  answer while a stat fingerprint of its inputs holds; see
  ``workbench/_status_cache.py``);
- ``dvc status`` on the command line (the baseline), as a subprocess;
- ``Repo(root).data_status()`` in-process, a new ``Repo`` per call, as a fresh
  tool call would.

Two cases per size: nothing changed since the last refresh, and one tracked
file changed before every call (new contents of the same size, different each
time; the few-byte write is inside every contender's timing alike). Before a
case each contender is called once untimed (imports, DVC's hash state).
The ratio is ``dvc status`` CLI / Workbench.

    python bench/bench_data.py [--files 5000 50000] [--rounds 5] [--quick] [--cache-dir DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repo root: bench, workbench

from bench import common

BENCHMARK = "data status"
WORKBENCH = "Workbench data.status"
DVC_CLI = "dvc status CLI"
DATA_STATUS = "Repo.data_status()"
FOLDERS = 4  # tracked folders, each with subfolders of PER_FOLDER files
PER_FOLDER = 500
LAYOUT = "v1"  # bump when the generated repository changes
DEFAULT_CACHE = Path(__file__).resolve().parent / ".cache" / "data"
DVC = str(Path(sys.executable).with_name("dvc"))
RACY_WAIT_S = 2.2  # Workbench does not reuse an answer that saw timestamps younger than 2 s

os.environ.setdefault("DVC_NO_ANALYTICS", "1")


# ---------------------------------------------------------------- the repository


def _run(cmd: list[str], cwd: Path) -> None:
    subprocess.run(cmd, cwd=cwd, check=True, capture_output=True)


def _sample_path(root: Path, index: int) -> Path:
    return root / "data" / f"part-{index % FOLDERS}" / f"{(index // FOLDERS) // PER_FOLDER:03d}" / f"{index:06d}.txt"


def build_repo(cache_dir: Path, files: int) -> tuple[Path, dict[str, Any]]:
    """The repository with ``files`` tracked files: from the cache, or built (and its build times)."""
    from dvc.repo import Repo

    name = f"repo-{LAYOUT}-{files}"
    root, remote, site = cache_dir / name, cache_dir / f"{name}-remote", cache_dir / f"{name}-site-cache"
    marker = cache_dir / f"{name}.json"
    if marker.is_file() and root.is_dir():
        return root, json.loads(marker.read_text()) | {"built_now": False}
    for folder in (root, remote, site):
        shutil.rmtree(folder, ignore_errors=True)
    root.mkdir(parents=True)
    remote.mkdir()
    phases: dict[str, float] = {}
    started = last = time.perf_counter()

    def phase(label: str) -> None:
        nonlocal last
        now = time.perf_counter()
        phases[label] = round(now - last, 2)
        last = now

    _run(["git", "init", "-q", "-b", "main"], root)
    Repo.init(os.fspath(root)).close()
    with Repo(os.fspath(root)) as repo, repo.config.edit() as config:
        config["core"]["site_cache_dir"] = os.fspath(site)
        config["core"]["analytics"] = False
        config["core"]["remote"] = "local"
        config["remote"]["local"] = {"url": os.fspath(remote)}
    phase("init")
    made: set[Path] = set()
    for index in range(files):
        path = _sample_path(root, index)
        if path.parent not in made:
            path.parent.mkdir(parents=True, exist_ok=True)
            made.add(path.parent)
        path.write_bytes(b"sample %06d\n" % index)
    phase("write files")
    folders = [os.fspath(root / "data" / f"part-{k}") for k in range(FOLDERS)]
    with Repo(os.fspath(root)) as repo:
        repo.add(folders)
    phase("dvc add")
    git = ["git", "-c", "user.name=bench", "-c", "user.email=bench@workbench.invalid"]
    _run([*git, "add", "-A"], root)
    _run([*git, "commit", "-q", "-m", f"{files} files"], root)
    phase("git commit")
    with Repo(os.fspath(root)) as repo:
        repo.push()
    phase("dvc push")
    info = {"files": files, "build_s": round(time.perf_counter() - started, 2), "build_phases": phases}
    marker.write_text(json.dumps(info))
    return root, info | {"built_now": True}


# ---------------------------------------------------------------- the contenders


def contenders(root: Path) -> dict[str, Callable[[], object]]:
    from dvc.repo import Repo

    from workbench import data
    from workbench.config import load_settings

    settings = load_settings(root)

    def workbench() -> object:
        return data.status(settings)

    def dvc_cli() -> object:
        return subprocess.run([DVC, "status"], cwd=root, check=True, capture_output=True)

    def data_status() -> object:
        with Repo(os.fspath(root)) as repo:
            return repo.data_status()

    return {WORKBENCH: workbench, DVC_CLI: dvc_cli, DATA_STATUS: data_status}


def _badges(root: Path) -> tuple[dict[str, list[str]], dict[str, list[str]]]:
    """(Workbench's, DVC's uncached) badges per output, to check the answers agree."""
    from workbench import data
    from workbench.config import load_settings

    settings = load_settings(root)
    kept = data.status(settings)
    truth = data._compute_status(root, settings, remote=False, untracked=False)
    return ({e.path: e.badges for e in kept.entries}, {e.path: e.badges for e in truth.entries})


def bench_size(files: int, rounds: int, cache_dir: Path) -> list[dict[str, Any]]:
    from workbench import _status_cache

    root, info = build_repo(cache_dir, files)
    if info["built_now"]:
        time.sleep(RACY_WAIT_S)
    _status_cache.CACHE.clear()
    calls = contenders(root)
    for call in calls.values():
        call()  # warm: imports, DVC's hash state, Workbench's kept answer
    hits = _status_cache.CACHE.hits
    calls[WORKBENCH]()
    if _status_cache.CACHE.hits == hits:  # the kept answer saw fresh timestamps: wait them out
        time.sleep(RACY_WAIT_S)
        calls[WORKBENCH]()

    results = []
    extra = {"files": files, "build": info}

    # nothing changed
    hits = _status_cache.CACHE.hits
    samples = common.alternate(calls, rounds)
    hits = _status_cache.CACHE.hits - hits
    kept, truth = _badges(root)
    if kept != truth:
        raise RuntimeError(f"Workbench's status differs from DVC's: {kept} != {truth}")
    results.append(
        common.result(
            BENCHMARK,
            f"{files:,} files, nothing changed",
            samples,
            baseline=DVC_CLI,
            workbench=WORKBENCH,
            workbench_cache_hits=hits,
            **extra,
        )
    )

    # one file changed before every call
    target = _sample_path(root, 0)
    original = target.read_bytes()
    counter = iter(range(10**9))

    def changing(call: Callable[[], object]) -> Callable[[], object]:
        def changed_then_call() -> object:
            target.write_bytes(b"change %06d\n" % next(counter))
            return call()

        return changed_then_call

    hits = _status_cache.CACHE.hits
    try:
        samples = common.alternate({name: changing(call) for name, call in calls.items()}, rounds)
        hits = _status_cache.CACHE.hits - hits
        changing(lambda: None)()
        kept, truth = _badges(root)
        if kept != truth or kept["data/part-0"] != ["modified"]:
            raise RuntimeError(f"Workbench's status differs from DVC's after a change: {kept} != {truth}")
    finally:
        target.write_bytes(original)
    results.append(
        common.result(
            BENCHMARK,
            f"{files:,} files, one file changed",
            samples,
            baseline=DVC_CLI,
            workbench=WORKBENCH,
            workbench_cache_hits=hits,
            **extra,
        )
    )
    calls[DATA_STATUS]()  # DVC's hash state learns the restored file
    return results


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", type=int, nargs="+", default=[5_000, 50_000])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="5,000 files, 3 rounds: a smoke run")
    parser.add_argument("--cache-dir", type=Path, default=DEFAULT_CACHE, help="where the repositories are kept")
    args = parser.parse_args(argv)
    sizes, rounds = ([5_000], 3) if args.quick else (args.files, args.rounds)
    args.cache_dir.mkdir(parents=True, exist_ok=True)
    results: list[dict[str, Any]] = []
    for files in sizes:
        found = bench_size(files, rounds, args.cache_dir)
        build = found[0]["build"]
        if build["built_now"]:
            print(f"built {files:,} files in {build['build_s']:.1f} s: {build['build_phases']}", flush=True)
        print(common.table(found), flush=True)
        results.extend(found)
    return results


if __name__ == "__main__":
    main()
