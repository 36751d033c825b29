"""Data versions: what DVC tracks, how it changed, and moving it to and from a remote.

Every function takes the resolved :class:`~workbench.config.Settings` first and
works on the DVC repository at ``settings.dvc_root`` through DVC's in-process
API (``dvc.repo.Repo``); this is the only module that imports DVC.

Things to know about DVC that shape this module:

- A fresh ``Repo`` is opened for every call and closed after it: a ``Repo``
  caches its index and is not safe to share between threads, and opening one
  costs a few milliseconds.
- DVC resolves relative paths against the process's working directory, not
  the repository root, and prints paths relative to it. Paths going in are
  made absolute here, and paths coming back are made relative to the
  repository root, so results are the same whatever the working directory.
  Nothing here changes the working directory.
- ``Repo.data_status()`` does not take the repository lock, so :func:`status`
  answers even while another DVC process works. ``Repo.status()``,
  ``Repo.diff()`` and the transfers do; DVC retries for about 3 seconds and
  then fails, which becomes :class:`~workbench.errors.Busy`.
- Read-only calls write nothing into the working tree. DVC itself keeps its
  state database and index cache under ``core.site_cache_dir`` and, for the
  locked calls (pipeline, diff, the jobs), its lock files under ``.dvc/tmp``.
- The in-process API sends no usage analytics (only DVC's command line does).

Push, pull and checkout run as jobs (:mod:`workbench.jobs`), one at a time
per repository. DVC 3 has no progress parameter on
``Repo.push/fetch/checkout``; its progress goes through ``tqdm`` callbacks
it creates internally (``dvc_data``'s ``TqdmCallback`` for file transfers,
``ui.progress(...).as_callback()`` for the other phases).
:func:`_install_progress_tap` wraps those two callback classes once per
process so that a callback created inside a job's thread also reports to
that job; callbacks created anywhere else behave exactly as before.
Cancelling a job stops it at DVC's next progress update: what a push or pull
already copied stays (objects are content-addressed, so that is harmless); a
cancelled checkout leaves some outputs restored and others not (run it
again).
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import logging
import os
import posixpath
import subprocess
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from workbench import _status_cache, audit, jobs
from workbench.config import Settings
from workbench.errors import (
    BackendUnavailable,
    Busy,
    Conflict,
    InvalidInput,
    NotFound,
    NotInitialized,
    WorkbenchError,
)

if TYPE_CHECKING:
    from dvc.repo import Repo
    from dvc.stage import Stage

logger = logging.getLogger(__name__)

# Status badges of a tracked output.
MODIFIED = "modified"  # the workspace differs from the hash recorded in the .dvc file / dvc.lock
MISSING = "missing"  # recorded, but absent from the workspace
NOT_COMMITTED = "not committed"  # the recorded hash changed since the last git commit
NOT_IN_CACHE = "not in cache"  # the recorded version is not in the local cache
NOT_PUSHED = "not pushed"  # the recorded version is not in the remote (checked on request)
UNCHANGED = "unchanged"  # workspace, record and git commit (if any) agree

NO_GIT_NOTE = "This DVC repository has no git: history, diff and 'not committed' need git."
_GIT_HINT = "Run `git init` in the repository folder and commit the .dvc files, dvc.yaml and dvc.lock."


# ---------------------------------------------------------------- records


@dataclass
class TrackedOutput:
    """One output DVC tracks (from a .dvc file or a dvc.yaml stage) and its state.

    ``path`` is relative to the repository root (POSIX separators). ``owner``
    is what records it: the .dvc file, or ``<dvc.yaml>:<stage>`` for a
    pipeline output, whose ``stage`` is then the name the pipeline graph uses.
    ``hash``, ``size`` and ``nfiles`` are the recorded values (``None`` when
    never recorded or unknown). ``badges`` holds the status constants of this
    module; DVC reports none for outputs it does not cache (``cache: false``,
    e.g. metrics files kept in git): git tracks those.
    """

    path: str
    kind: str  # "file" or "dir"
    owner: str
    stage: str | None
    hash: str | None
    size: int | None
    nfiles: int | None
    cached: bool
    badges: list[str] = field(default_factory=list)


@dataclass
class GitState:
    """The git side of the repository; paths are relative to the DVC repository root."""

    branch: str | None
    head: str | None  # short sha, None before the first commit
    dirty: bool
    staged: list[str]
    unstaged: list[str]
    untracked: list[str]


@dataclass
class DataStatus:
    """Everything DVC tracks in the workspace, with status badges per output.

    ``remote_checked`` says whether ``not pushed`` badges were computed (they
    need a look at the remote; see :func:`status`).
    """

    root: Path
    entries: list[TrackedOutput]
    remote_checked: bool
    remote: str | None
    git: GitState | None
    notes: list[str] = field(default_factory=list)


@dataclass
class DataRevision:
    """One version of a tracked path: the git commit that recorded a new hash for it."""

    path: str
    sha: str
    short_sha: str
    date: str  # ISO 8601, author date
    author: str
    message: str
    hash: str | None
    size: int | None
    nfiles: int | None
    source: str  # the file that records it (.dvc file or dvc.lock)


@dataclass
class DataChange:
    """A changed path: ``change`` is added, deleted, modified or renamed.

    Directories end with ``/``; a change inside a tracked directory is listed
    as well as the directory itself. ``old_path`` is set for renames.
    """

    change: str
    path: str
    old_hash: str | None
    new_hash: str | None
    old_path: str | None = None


@dataclass
class DataDiff:
    """What changed in tracked data between two revisions (``rev_b`` "workspace" when not given).

    ``not_in_cache`` lists paths of ``rev_a`` whose data is not in the local
    cache (only reported against the workspace).
    """

    rev_a: str
    rev_b: str
    changes: list[DataChange]
    not_in_cache: list[str]


@dataclass
class PipelineStage:
    """A node of the pipeline graph: a dvc.yaml stage or a .dvc data source.

    ``name`` is how DVC addresses it from the repository root (``train``,
    ``sub/dvc.yaml:train``, ``data/raw.csv.dvc``). ``stale`` comes from
    ``dvc status``: the stage would run again in ``dvc repro`` (for a data
    source: its data changed). ``changes`` says why.
    """

    name: str
    kind: str  # "stage" or "source"
    source: str
    cmd: list[str]
    deps: list[str]
    outs: list[str]
    params: list[str]
    metrics: list[str]
    frozen: bool
    stale: bool
    changes: list[str]
    upstream: list[str]


@dataclass
class PipelineEdge:
    """``stage`` depends on ``upstream`` (uses one of its outputs)."""

    stage: str
    upstream: str


@dataclass
class Pipeline:
    """The stages of the repository as a graph, stale stages marked."""

    root: Path
    stages: list[PipelineStage]
    edges: list[PipelineEdge]


@dataclass
class ValuesFile:
    """The current values of one params or metrics file, or why it could not be read."""

    path: str
    values: dict[str, Any] | None
    error: str | None = None


@dataclass
class ParamsMetrics:
    """Current params (params.yaml and other params files) and metrics of the workspace."""

    params: list[ValuesFile]
    metrics: list[ValuesFile]


# ---------------------------------------------------------------- read side


def status(settings: Settings, *, remote: bool = False, untracked: bool = False, fresh: bool = False) -> DataStatus:
    """Tracked outputs with status badges, without taking DVC's repository lock.

    ``remote=True`` also checks which recorded versions are missing from the
    remote (``not pushed``); that asks the remote about every tracked object
    (for a local remote a few milliseconds, for a cloud remote one request
    per batch of objects), so surfaces should offer it on demand. It always
    asks the remote itself: DVC's cached index of the remote misses pushes
    made since it was built, even DVC's own.
    ``untracked=True`` lists untracked files as git sees them.

    Refreshes are cheap while nothing changed: the last answer is kept in
    this process with a stat fingerprint of everything it depends on (work
    tree, git, DVC cache, config, a local remote's folder) and returned again
    while the fingerprint holds; any change makes DVC compute a new one
    (:mod:`workbench._status_cache` says exactly what is watched, and when an
    answer is never reused, e.g. ``remote=True`` with a cloud remote).
    ``fresh=True`` skips that check: DVC computes the answer, which is kept.
    """
    root = _dvc_root(settings)
    return _status_cache.CACHE.get(
        (os.fspath(root), remote, untracked, settings.dvc_remote),
        root,
        settings.state_dir,
        lambda watch: _compute_status(root, settings, remote=remote, untracked=untracked, watch=watch),
        fresh=fresh,
    )


def _compute_status(
    root: Path,
    settings: Settings,
    *,
    remote: bool,
    untracked: bool,
    watch: Callable[[Repo, str | None], None] | None = None,
) -> DataStatus:
    """:func:`status` as DVC computes it; ``watch(repo, remote_name)`` runs before DVC reads the work tree."""
    with _open(root) as repo:
        remote_name = _remote_name(repo, settings.dvc_remote) if remote else None
        if watch is not None:
            watch(repo, remote_name)
        raw = repo.data_status(
            untracked_files="normal" if untracked else "no",
            not_in_remote=remote,
            remote_refresh=remote,
            remote=remote_name,
        )
        badges = _badges(raw)
        entries = [
            _tracked_output(root, stage, out, badges)
            for stage in repo.index.stages
            for out in stage.outs
            if out.is_in_repo
        ]
        git = _git_state(repo, raw.get("git") or {}, root)
    entries.sort(key=lambda e: e.path)
    return DataStatus(
        root=root,
        entries=entries,
        remote_checked=remote,
        remote=remote_name,
        git=git,
        notes=[] if git is not None else [NO_GIT_NOTE],
    )


def revisions(settings: Settings, path: str | os.PathLike[str]) -> list[DataRevision]:
    """The versions of a tracked output in git history, newest first.

    ``path`` is relative to the repository root or absolute. A version is a
    commit that recorded a new hash for the output in its .dvc file (or, for a
    pipeline output, in dvc.lock); commits that touched the file without
    changing the hash are left out.
    """
    root = _dvc_root(settings)
    git_root = _git_root(settings)
    rel = _repo_path(root, path)
    with _open(root) as repo:
        stage, out = _find_output(repo, root, rel)
        stage_name = _stage_name(stage)
        record = stage.path if stage_name is None else _lockfile(stage.path)
        out_key = out.def_path
    record_in_git = Path(os.path.relpath(record, git_root)).as_posix()
    commits = _git_log(git_root, record_in_git)
    blobs = _git_blobs(git_root, [f"{c[0]}:{record_in_git}" for c in commits])

    found: list[DataRevision] = []
    last_hash: str | None = None
    for (sha, short, date, author, message), text in zip(reversed(commits), reversed(blobs), strict=True):
        entry = _recorded_entry(text, out_key, stage_name) if text is not None else None
        if entry is None:
            last_hash = None
            continue
        entry_hash = entry.get("md5") or entry.get("etag") or entry.get("checksum")
        if entry_hash == last_hash:
            continue
        last_hash = entry_hash
        found.append(
            DataRevision(
                path=rel,
                sha=sha,
                short_sha=short,
                date=date,
                author=author,
                message=message,
                hash=entry_hash,
                size=entry.get("size"),
                nfiles=entry.get("nfiles"),
                source=_rel(root, record),
            )
        )
    found.reverse()
    return found


def diff(settings: Settings, rev_a: str, rev_b: str | None = None) -> DataDiff:
    """Tracked data that changed between ``rev_a`` and ``rev_b`` (default: the workspace).

    Revisions are anything git understands (sha, branch, tag, ``HEAD~1``).
    Takes DVC's repository lock (Busy while another DVC process works).
    """
    root = _dvc_root(settings)
    for rev in (rev_a, rev_b):
        if rev is not None and (not rev.strip() or rev.startswith("-")):
            raise InvalidInput(f"Invalid revision {rev!r}", "Use a commit sha, branch or tag, e.g. HEAD~1.")
    _git_root(settings)
    with _open(root) as repo:
        for rev in (rev_a, rev_b):
            if rev is not None:
                _resolve_rev(repo, rev)
        raw = repo.diff(rev_a, rev_b) or {}

    changes = [DataChange("added", _posix(item["path"]), None, item.get("hash")) for item in raw.get("added", [])]
    changes += [DataChange("deleted", _posix(item["path"]), item.get("hash"), None) for item in raw.get("deleted", [])]
    changes += [
        DataChange("modified", _posix(item["path"]), item["hash"]["old"], item["hash"]["new"])
        for item in raw.get("modified", [])
    ]
    changes += [
        DataChange(
            "renamed", _posix(item["path"]["new"]), item.get("hash"), item.get("hash"), _posix(item["path"]["old"])
        )
        for item in raw.get("renamed", [])
    ]
    changes.sort(key=lambda c: (c.path, c.change))
    return DataDiff(
        rev_a=rev_a,
        rev_b=rev_b or "workspace",
        changes=changes,
        not_in_cache=sorted(_posix(item["path"]) for item in raw.get("not in cache", [])),
    )


def has_uncommitted_changes(settings: Settings) -> bool:
    """True when tracked data in the workspace is not what the current git commit records.

    That is: data changed and not recorded (``dvc add``/``dvc commit``),
    recorded but not committed to git, or missing from the workspace.
    Lineage uses it to flag runs whose recorded data hashes do not describe
    the data they used. Does not take DVC's repository lock.
    """
    root = _dvc_root(settings)
    with _open(root) as repo:
        raw = repo.data_status()
    dirty = {MODIFIED, MISSING, NOT_COMMITTED}
    return any(dirty.intersection(badges) for badges in _badges(raw).values())


def pipeline(settings: Settings) -> Pipeline:
    """The pipeline as a graph (dvc.yaml stages and .dvc data sources), stale stages marked.

    Staleness comes from ``dvc status``, which takes DVC's repository lock
    (Busy while another DVC process works).
    """
    root = _dvc_root(settings)
    from dvc.dependency.param import ParamsDependency

    with _open(root) as repo:
        index = repo.index
        names = {stage: _address(stage) for stage in index.stages}
        by_addressing = {stage.addressing: stage for stage in index.stages}
        stale = {by_addressing[key]: items for key, items in repo.status().items() if key in by_addressing}
        edges = [PipelineEdge(stage=names[a], upstream=names[b]) for a, b in index.graph.edges]
        stages = []
        for stage in index.stages:
            params, deps = [], []
            for dep in stage.deps:
                if isinstance(dep, ParamsDependency):
                    file = _rel(root, dep.fs_path)
                    params.extend([f"{file}:{key}" for key in dep.params] or [file])
                else:
                    deps.append(_rel(root, dep.fs_path) if dep.is_in_repo else dep.def_path)
            outs = [_rel(root, out.fs_path) if out.is_in_repo else out.def_path for out in stage.outs]
            cmd = stage.cmd if isinstance(stage.cmd, list) else [stage.cmd] if stage.cmd else []
            stages.append(
                PipelineStage(
                    name=names[stage],
                    kind="source" if stage.is_data_source else "stage",
                    source=_source(stage),
                    cmd=[str(c) for c in cmd],
                    deps=deps,
                    outs=outs,
                    params=params,
                    metrics=[path for out, path in zip(stage.outs, outs, strict=True) if out.metric],
                    frozen=bool(stage.frozen),
                    stale=stage in stale,
                    changes=_describe_changes(root, stage, stale.get(stage, [])),
                    upstream=sorted(e.upstream for e in edges if e.stage == names[stage]),
                )
            )
    stages.sort(key=lambda s: (s.kind != "source", s.name))
    return Pipeline(root=root, stages=stages, edges=edges)


def params_metrics(settings: Settings) -> ParamsMetrics:
    """Current values of the params files (params.yaml, stage params, vars) and metrics files."""
    root = _dvc_root(settings)
    with _open(root) as repo:
        params = repo.params.show(hide_workspace=False)
        metrics = repo.metrics.show(hide_workspace=False)
    return ParamsMetrics(params=_values_files(params), metrics=_values_files(metrics))


# ---------------------------------------------------------------- jobs


def push(
    settings: Settings,
    targets: Sequence[str] | None = None,
    remote: str | None = None,
    *,
    actor: str | None = None,
) -> jobs.Job:
    """Start uploading tracked data (all, or ``targets``) to the remote; returns the job.

    ``targets`` are tracked paths (relative to the repository root or
    absolute) or stage names. No remote configured: NotInitialized, before
    any job starts. The job's result says how many files were uploaded.
    """
    root = _dvc_root(settings)
    with _open(root) as repo:
        remote_name = _remote_name(repo, remote or settings.dvc_remote)
        paths = _resolve_targets(repo, root, targets)

    def work(progress: jobs.Progress) -> dict[str, Any]:
        with _job_repo(root, progress) as repo:
            pushed = repo.push(targets=_absolute(root, paths), remote=remote_name)
        _report_end(progress, pushed, f"Pushed {pushed} files to {remote_name}")
        return {"pushed": pushed, "remote": remote_name, "targets": paths}

    return _submit_audited(settings, "dvc.push", root, work, actor)


def pull(
    settings: Settings,
    targets: Sequence[str] | None = None,
    remote: str | None = None,
    force: bool = False,
    *,
    actor: str | None = None,
) -> jobs.Job:
    """Start downloading tracked data from the remote and checking it out; returns the job.

    Refuses (Conflict, before any job starts, nothing changed on disk) when
    the workspace holds changes to tracked data that were not recorded with
    ``dvc commit``/``dvc add``, unless ``force=True``; no remote configured:
    NotInitialized. The job's result has the fetched count and the paths
    added, modified and deleted in the workspace.
    """
    root = _dvc_root(settings)
    with _open(root) as repo:
        remote_name = _remote_name(repo, remote or settings.dvc_remote)
        paths = _resolve_targets(repo, root, targets)
        if not force:
            _refuse_audited(settings, "dvc.pull", repo, root, paths)

    def work(progress: jobs.Progress) -> dict[str, Any]:
        with _job_repo(root, progress) as repo:
            raw = repo.pull(targets=_absolute(root, paths), remote=remote_name, force=force)
        result = _checkout_summary(root, raw)
        fetched = result["stats"].get("fetched", 0)
        _report_end(progress, fetched, f"Fetched {fetched} files from {remote_name}; {_stats_text(result['stats'])}")
        return {**result, "remote": remote_name, "targets": paths}

    return _submit_audited(settings, "dvc.pull", root, work, actor)


def checkout(
    settings: Settings,
    targets: Sequence[str] | None = None,
    force: bool = False,
    *,
    actor: str | None = None,
) -> jobs.Job:
    """Start restoring the workspace to the recorded data versions from the cache; returns the job.

    Refuses (Conflict, before any job starts) to overwrite unrecorded changes
    to tracked data unless ``force=True``.
    """
    root = _dvc_root(settings)
    with _open(root) as repo:
        paths = _resolve_targets(repo, root, targets)
        if not force:
            _refuse_audited(settings, "dvc.checkout", repo, root, paths)

    def work(progress: jobs.Progress) -> dict[str, Any]:
        with _job_repo(root, progress) as repo:
            raw = repo.checkout(targets=_absolute(root, paths), force=force)
        result = _checkout_summary(root, raw)
        changed = sum(result["stats"].values())
        _report_end(progress, changed, f"Checked out: {_stats_text(result['stats'])}")
        return {**result, "targets": paths}

    return _submit_audited(settings, "dvc.checkout", root, work, actor)


# ---------------------------------------------------------------- progress tap

# The job progress sink of the current thread, set while a job runs DVC.
_progress_sink: contextvars.ContextVar[_ProgressSink | None] = contextvars.ContextVar(
    "workbench_dvc_progress", default=None
)
_tap_lock = threading.Lock()
_tap_installed = False


class _ProgressSink:
    """Forwards DVC's callbacks to a job's ``progress``.

    Only the job's own thread is interrupted by :class:`jobs.Cancelled`;
    progress reported from DVC's helper threads (async transfers) never raises.
    """

    def __init__(self, progress: jobs.Progress) -> None:
        self.progress = progress
        self.thread = threading.get_ident()

    def __call__(self, done: int | None, total: int | None, message: str) -> None:
        try:
            self.progress(done, total, message)
        except jobs.Cancelled:
            if threading.get_ident() == self.thread:
                raise


class _CallbackTap:
    """What a tapped DVC callback reports: files with counts, other phases by name only."""

    def __init__(self, sink: _ProgressSink, label: str, unit: str | None) -> None:
        self.sink, self.label, self.unit = sink, label, unit
        self.total: int | None = None
        self.last: tuple[int | None, int | None] | None = None

    def update(self, size: int | None, value: int | None) -> None:
        if self.unit == "file":
            # DVC sets the size per batch after first setting the whole count:
            # the largest size seen is the total of this phase.
            if size:
                self.total = max(self.total or 0, size)
            now = (value, self.total)
        elif self.unit != "B":
            now = (None, None)  # entries, not files: name the phase only
        else:
            return  # bytes of one file
        if now != self.last:
            self.last = now
            self.sink(*now, self.label)


def _tap_callback_class(cls: type) -> None:
    """Wrap ``cls`` (an fsspec ``TqdmCallback``) so instances made in a job's thread report to it."""
    init, call = cls.__init__, cls.call

    @functools.wraps(init)
    def tapped_init(self: Any, *args: Any, **kwargs: Any) -> None:
        init(self, *args, **kwargs)
        sink = _progress_sink.get()
        tap = None
        if sink is not None:
            label = getattr(kwargs.get("progress_bar"), "_workbench_label", None)
            if label is None:
                label = (str(kwargs.get("desc") or ""), "B" if kwargs.get("bytes") else kwargs.get("unit"))
            tap = _CallbackTap(sink, *label)
        self._workbench_tap = tap

    @functools.wraps(call)
    def tapped_call(self: Any, *args: Any, **kwargs: Any) -> Any:
        result = call(self, *args, **kwargs)
        tap = getattr(self, "_workbench_tap", None)
        if tap is not None:
            tap.update(self.size, self.value)
        return result

    cls.__init__ = tapped_init
    cls.call = tapped_call


def _install_progress_tap() -> None:
    """Route DVC's progress callbacks created in a job's thread to that job (once per process)."""
    global _tap_installed
    with _tap_lock:
        if _tap_installed:
            return
        _tap_installed = True
        try:
            from dvc.fs.callbacks import TqdmCallback as DvcCallback
            from dvc.ui import ui
            from dvc_data.callbacks import TqdmCallback as DataCallback
        except ImportError:  # another DVC layout: jobs still report their start and end
            logger.warning("DVC's progress callbacks were not found; DVC jobs report no per-file progress")
            return

        make_bar = ui.progress

        def progress_bar(*args: Any, **kwargs: Any) -> Any:
            bar = make_bar(*args, **kwargs)
            if _progress_sink.get() is not None:
                # DVC's bars are disabled off a terminal and then forget their
                # description; keep it for the callback made from the bar.
                bar._workbench_label = (str(kwargs.get("desc") or ""), kwargs.get("unit"))
            return bar

        ui.progress = progress_bar
        for cls in (DvcCallback, DataCallback):
            _tap_callback_class(cls)


@contextlib.contextmanager
def _job_repo(root: Path, progress: jobs.Progress) -> Iterator[Repo]:
    """A repository for a job's thread, with DVC's progress routed to ``progress``."""
    _install_progress_tap()
    token = _progress_sink.set(_ProgressSink(progress))
    try:
        with _open(root) as repo:
            yield repo
    finally:
        _progress_sink.reset(token)


def _submit_audited(
    settings: Settings, action: str, root: Path, work: Callable[[jobs.Progress], dict[str, Any]], actor: str | None
) -> jobs.Job:
    """Run ``work`` as a job whose end (done, failed or cancelled) is written to the audit log."""
    who = actor or audit.actor()  # read in the caller's thread, where a surface set the identity

    def audited(progress: jobs.Progress) -> dict[str, Any]:
        try:
            result = work(progress)
        except jobs.Cancelled as exc:
            audit.record(settings, action, str(root), outcome="cancelled", error=exc, who=who)
            raise
        except WorkbenchError as exc:
            audit.record(settings, action, str(root), outcome="failed", error=exc, who=who)
            raise
        except Exception:
            audit.record(settings, action, str(root), outcome="failed", detail={"error": "unexpected"}, who=who)
            raise
        audit.record(settings, action, str(root), after=result, who=who)
        return result

    return jobs.manager().submit(action, str(root), audited, actor=who)


def _refuse_audited(settings: Settings, action: str, repo: Repo, root: Path, paths: list[str] | None) -> None:
    """Refuse to overwrite unrecorded changes; the refusal is audited like the action would be."""
    try:
        _refuse_uncommitted(repo, root, paths, action.removeprefix("dvc."))
    except Conflict as exc:
        audit.record(settings, action, str(root), outcome="refused", error=exc)
        raise


def _report_end(progress: jobs.Progress, count: int, message: str) -> None:
    """The final progress event; a cancel that came after the work finished no longer applies."""
    with contextlib.suppress(jobs.Cancelled):
        progress(count, count, message)


# ---------------------------------------------------------------- helpers


def _dvc_root(settings: Settings) -> Path:
    if settings.dvc_root is None:
        raise NotInitialized(
            f"{settings.workspace} is not a DVC repository",
            "Run `dvc init` in the git repository (git init first if needed).",
        )
    if not settings.dvc_root.is_dir():
        raise NotFound(f"DVC repository {settings.dvc_root} does not exist", "Check the workspace setting.")
    return settings.dvc_root


def _git_root(settings: Settings) -> Path:
    if settings.git_root is None:
        raise NotInitialized(f"{settings.workspace} has no git repository; data history needs git", _GIT_HINT)
    return settings.git_root


@contextlib.contextmanager
def _open(root: Path) -> Iterator[Repo]:
    """Open the DVC repository at ``root``; DVC errors inside become WorkbenchErrors."""
    with _dvc_errors(root):
        from dvc.repo import Repo

        with Repo(os.fspath(root)) as repo:
            yield repo


@contextlib.contextmanager
def _dvc_errors(root: Path) -> Iterator[None]:
    from dvc.config import ConfigError, NoRemoteError, RemoteNotFoundError
    from dvc.exceptions import (
        CheckoutError,
        DvcException,
        FileTransferError,
        NoOutputOrStageError,
        NotDvcRepoError,
    )
    from dvc.lock import LockError
    from dvc.scm import NoSCMError, RevError
    from dvc.utils.serialize import ParseError
    from dvc.utils.strictyaml import YAMLValidationError

    try:
        yield
    except WorkbenchError:
        raise
    except LockError as exc:
        raise Busy(
            f"Another DVC process is working in {root}",
            "Wait for it to finish and retry. If no DVC command is running, a stale lock may be left in .dvc/tmp.",
        ) from exc
    except NotDvcRepoError as exc:
        raise NotInitialized(f"{root} is not a DVC repository", "Run `dvc init` in the git repository.") from exc
    except NoRemoteError as exc:
        raise NotInitialized(
            f"No DVC remote is configured in {root}",
            "Add one with `dvc remote add -d <name> <url>` (a folder path works for a start).",
        ) from exc
    except RemoteNotFoundError as exc:
        raise NotFound(f"{exc}", "`dvc remote list` shows the configured remotes.") from exc
    except NoSCMError as exc:
        raise NotInitialized(f"{root} has no git repository; this needs git", _GIT_HINT) from exc
    except RevError as exc:
        raise NotFound(f"{exc}", "Use a commit sha, branch or tag, e.g. HEAD~1; `git log` lists commits.") from exc
    except CheckoutError as exc:
        raise NotFound(
            f"Some tracked data is neither in the workspace nor in the local cache: {exc}",
            "Pull it from the remote (it must have been pushed from where it was added).",
        ) from exc
    except FileTransferError as exc:
        raise BackendUnavailable(f"DVC remote transfer failed: {exc}", "Check the remote's URL and access.") from exc
    except NoOutputOrStageError as exc:
        raise NotFound(f"{exc}", "Use a tracked path or a stage name.") from exc
    except (ParseError, YAMLValidationError, ConfigError) as exc:
        raise InvalidInput(f"DVC cannot read a file in {root}: {exc}", "Fix that file; `dvc doctor` helps.") from exc
    except DvcException as exc:
        raise WorkbenchError(
            f"DVC failed in {root}: {exc}", "Run the same action with the dvc command for details."
        ) from exc


def _remote_name(repo: Repo, name: str | None) -> str:
    """The remote to use (``name`` or DVC's default); NotInitialized when there is none."""
    return repo.cloud.get_remote(name).name


def _posix(path: str) -> str:
    """A DVC path with OS separators to POSIX, keeping a trailing ``/`` for directories."""
    return path.replace(os.sep, "/")


def _rel(root: Path, path: str | os.PathLike[str]) -> str:
    return Path(os.path.relpath(path, root)).as_posix()


def _repo_path(root: Path, path: str | os.PathLike[str]) -> str:
    """``path`` (root-relative or absolute) as a normalized root-relative POSIX path."""
    text = os.fspath(path).strip()
    if not text:
        raise InvalidInput("Empty path", "Give a tracked path relative to the repository root.")
    full = os.path.normpath(os.path.join(root, text))
    if os.path.commonpath([full, os.fspath(root)]) != os.fspath(root) or full == os.fspath(root):
        raise InvalidInput(f"{text} is outside the repository {root}", "Give a path inside the repository.")
    return _rel(root, full)


def _stage_name(stage: Stage) -> str | None:
    """The stage name of a dvc.yaml stage, None for a .dvc file."""
    return None if stage.is_data_source else getattr(stage, "name", None)


def _address(stage: Stage) -> str:
    """How DVC addresses a stage from the repository root."""
    name = _stage_name(stage)
    if name is None:
        return Path(stage.path_in_repo).as_posix()
    source = Path(stage.path_in_repo).as_posix()
    return name if source == "dvc.yaml" else f"{source}:{name}"


def _source(stage: Stage) -> str:
    """The file that defines a stage: its .dvc file or dvc.yaml (root-relative)."""
    return Path(stage.path_in_repo).as_posix()


def _owner(stage: Stage) -> str:
    """What records a stage's outputs: the .dvc file, or ``<dvc.yaml>:<stage>``."""
    name = _stage_name(stage)
    return _source(stage) if name is None else f"{_source(stage)}:{name}"


def _lockfile(dvcyaml: str) -> str:
    return os.path.splitext(dvcyaml)[0] + ".lock"


def _find_output(repo: Repo, root: Path, rel: str) -> tuple[Stage, Any]:
    """The stage and output that track ``rel`` exactly; NotFound otherwise."""
    for stage in repo.index.stages:
        for out in stage.outs:
            if not out.is_in_repo:
                continue
            out_rel = _rel(root, out.fs_path)
            if out_rel == rel:
                return stage, out
            if rel.startswith(out_rel + "/"):
                raise NotFound(
                    f"{rel} is inside the tracked directory {out_rel}",
                    f"Versions are kept per tracked output: ask for {out_rel}.",
                )
    raise NotFound(f"{rel} is not tracked by DVC in {root}", "Tracked outputs are listed in the data status.")


def _tracked_output(root: Path, stage: Stage, out: Any, badges: dict[str, list[str]]) -> TrackedOutput:
    path = _rel(root, out.fs_path)
    meta = out.meta
    out_hash = out.hash_info.value if out.hash_info else None
    isdir = bool(meta and meta.isdir) or (out_hash or "").endswith(".dir") or os.path.isdir(out.fs_path)
    return TrackedOutput(
        path=path,
        kind="dir" if isdir else "file",
        owner=_owner(stage),
        stage=_stage_name(stage),
        hash=out_hash,
        size=meta.size if meta else None,
        nfiles=meta.nfiles if meta else None,
        cached=bool(out.use_cache),
        badges=badges.get(path, []),
    )


def _resolve_targets(repo: Repo, root: Path, targets: Sequence[str] | None) -> list[str] | None:
    """Targets as root-relative paths of tracked data: paths in or at outputs, or stage names."""
    if targets is None:
        return None
    if isinstance(targets, str):
        targets = [targets]
    outs = [(stage, _rel(root, out.fs_path)) for stage in repo.index.stages for out in stage.outs if out.is_in_repo]
    resolved: list[str] = []
    for target in targets:
        by_stage = [path for stage, path in outs if target in {_address(stage), _stage_name(stage)}]
        if by_stage:
            resolved.extend(by_stage)
            continue
        rel = _repo_path(root, target)
        if not any(rel == path or rel.startswith(path + "/") for _, path in outs):
            raise NotFound(f"{target} is not tracked by DVC in {root}", "Use a tracked path or a stage name.")
        resolved.append(rel)
    return list(dict.fromkeys(resolved))


def _absolute(root: Path, paths: list[str] | None) -> list[str] | None:
    return None if paths is None else [os.path.join(root, p) for p in paths]


def _refuse_uncommitted(repo: Repo, root: Path, targets: list[str] | None, action: str) -> None:
    """Conflict when the workspace holds unrecorded changes to tracked data that ``action`` would overwrite."""
    raw = repo.data_status(granular=True)
    uncommitted = raw.get("uncommitted", {})
    changed = [*uncommitted.get("modified", []), *uncommitted.get("added", [])]
    changed += [item["new"] for item in uncommitted.get("renamed", [])]
    paths = sorted({_posix(p) for p in changed if not p.endswith(os.sep)})
    if targets is not None:
        paths = [p for p in paths if any(p == t or p.startswith(t + "/") for t in targets)]
    if paths:
        shown = ", ".join(paths[:10]) + (f" and {len(paths) - 10} more" if len(paths) > 10 else "")
        raise Conflict(
            f"{action} would overwrite uncommitted changes to tracked data: {shown}",
            "Commit them with `dvc commit`/`dvc add`, or pass force to discard them.",
        )


def _checkout_summary(root: Path, raw: dict[str, Any]) -> dict[str, Any]:
    """DVC's checkout result with paths relative to the repository root (DVC gives them cwd-relative)."""
    summary: dict[str, Any] = {"stats": dict(raw.get("stats", {}))}
    for kind in ("added", "modified", "deleted"):
        summary[kind] = sorted(_rel(root, os.path.abspath(p)) for p in raw.get(kind, []))
    return summary


def _stats_text(stats: dict[str, int]) -> str:
    return ", ".join(f"{stats.get(k, 0)} {k}" for k in ("added", "modified", "deleted"))


def _badges(raw: dict[str, Any]) -> dict[str, list[str]]:
    """Badges per root-relative output path from ``Repo.data_status()``."""
    badges: dict[str, list[str]] = {}

    def add(paths: Any, badge: str) -> None:
        for path in paths:
            key = _posix(path).rstrip("/")
            if badge not in badges.setdefault(key, []):
                badges[key].append(badge)

    uncommitted = raw.get("uncommitted", {})
    add(uncommitted.get("modified", []), MODIFIED)
    add(uncommitted.get("added", []), MODIFIED)
    add((item["new"] for item in uncommitted.get("renamed", [])), MODIFIED)
    add(uncommitted.get("deleted", []), MISSING)
    committed = raw.get("committed", {})
    for kind in ("modified", "added", "deleted"):
        add(committed.get(kind, []), NOT_COMMITTED)
    add((item["new"] for item in committed.get("renamed", [])), NOT_COMMITTED)
    add(raw.get("not_in_cache", []), NOT_IN_CACHE)
    add(raw.get("not_in_remote", []), NOT_PUSHED)
    add(raw.get("unchanged", []), UNCHANGED)
    return badges


def _git_state(repo: Repo, raw: dict[str, Any], root: Path) -> GitState | None:
    """Branch, head and pending git changes; None for a repository without git."""
    from dvc.scm import NoSCM
    from scmrepo.exceptions import SCMError

    if isinstance(repo.scm, NoSCM):
        return None
    try:
        branch: str | None = repo.scm.active_branch()
    except SCMError:  # detached head or no commits yet
        branch = None
    head = None if raw.get("is_empty") else repo.scm.get_rev()[:7]
    prefix = _rel(repo.scm.root_dir, root)

    def local(paths: Any) -> list[str]:
        if prefix == ".":
            return sorted(paths)
        return sorted(p[len(prefix) + 1 :] for p in paths if p.startswith(prefix + "/"))

    staged = raw.get("staged", {})
    staged_paths = [p for group in staged.values() for p in group] if isinstance(staged, dict) else list(staged)
    return GitState(
        branch=branch,
        head=head,
        dirty=bool(raw.get("is_dirty")),
        staged=local(staged_paths),
        unstaged=local(raw.get("unstaged", [])),
        untracked=local(raw.get("untracked", [])),
    )


def _resolve_rev(repo: Repo, rev: str) -> str:
    from scmrepo.exceptions import RevError

    try:
        return repo.scm.resolve_rev(rev)
    except RevError as exc:
        raise NotFound(
            f"Unknown revision {rev!r} in {repo.root_dir}",
            "Use a commit sha, branch or tag (e.g. HEAD~1); `git log` lists commits.",
        ) from exc


def _git(git_root: Path, *args: str, stdin: bytes | None = None) -> bytes:
    try:
        done = subprocess.run(["git", *args], cwd=git_root, input=stdin, capture_output=True, check=False)
    except FileNotFoundError as exc:
        raise BackendUnavailable("The git command is not installed", "Install git to see data history.") from exc
    if done.returncode != 0:
        message = done.stderr.decode(errors="replace").strip()
        raise BackendUnavailable(f"git {args[0]} failed in {git_root}: {message}", "Check the git repository.")
    return done.stdout


def _git_log(git_root: Path, path: str) -> list[tuple[str, str, str, str, str]]:
    """Commits that touched ``path`` (git-root relative), newest first."""
    out = _git(git_root, "log", "--format=%H%x1f%h%x1f%aI%x1f%an%x1f%s%x1e", "--", path)
    commits = []
    for record in out.decode(errors="replace").split("\x1e"):
        record = record.strip("\n")
        if record:
            sha, short, date, author, message = record.split("\x1f", 4)
            commits.append((sha, short, date, author, message))
    return commits


def _git_blobs(git_root: Path, objects: list[str]) -> list[str | None]:
    """The text of ``rev:path`` objects in one ``git cat-file --batch`` call (None when missing)."""
    if not objects:
        return []
    out = _git(git_root, "cat-file", "--batch", stdin="".join(f"{o}\n" for o in objects).encode())
    texts: list[str | None] = []
    pos = 0
    for _ in objects:
        end = out.index(b"\n", pos)
        header = out[pos:end].split()
        pos = end + 1
        if len(header) < 3 or header[-1] == b"missing":
            texts.append(None)
            continue
        size = int(header[2])
        texts.append(out[pos : pos + size].decode(errors="replace"))
        pos += size + 1
    return texts


def _recorded_entry(text: str, out_key: str, stage_name: str | None) -> dict[str, Any] | None:
    """The entry for ``out_key`` in a .dvc file (``stage_name`` None) or a dvc.lock text."""
    from dvc.utils.serialize import ParseError, parse_yaml

    try:
        data = parse_yaml(text, "record") or {}
    except ParseError:
        return None
    if stage_name is not None:
        stages = data.get("stages", {}) if "schema" in data else data
        data = stages.get(stage_name) or {}
    for entry in data.get("outs") or []:
        if isinstance(entry, dict) and posixpath.normpath(str(entry.get("path", ""))) == posixpath.normpath(out_key):
            return entry
    return None


def _describe_changes(root: Path, stage: Stage, items: list[Any]) -> list[str]:
    """``dvc status`` items of a stage as sentences with root-relative paths."""
    # DVC names paths relative to the working directory (or the root when the
    # working directory is outside the repository): map them back.
    names = {str(item): _rel(root, item.fs_path) for item in [*stage.deps, *stage.outs] if item.is_in_repo}
    changes = []
    for item in items:
        if isinstance(item, dict):
            for what, paths in item.items():
                if isinstance(paths, dict):
                    listed = ", ".join(f"{names.get(p, p)} ({state})" for p, state in paths.items())
                    changes.append(f"{what}: {listed}")
                else:
                    changes.append(f"{what}: {paths}")
        else:
            changes.append(str(item))
    return changes


def _values_files(shown: dict[str, Any]) -> list[ValuesFile]:
    """``repo.params.show()``/``repo.metrics.show()`` of the workspace as records."""
    result = next(iter(shown.values()), {})
    if "error" in result and "data" not in result:
        return [ValuesFile(path="", values=None, error=str(result["error"]))]
    files = []
    for path, item in sorted(result.get("data", {}).items()):
        error = item.get("error")
        files.append(
            ValuesFile(
                path=_posix(path),
                values=item.get("data") if error is None else None,
                error=None if error is None else (str(error) or type(error).__name__),
            )
        )
    return files
