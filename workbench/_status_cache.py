"""Cheap repeat answers for :func:`workbench.data.status`.

The Jupyter server and the dashboards ask for the data status on every
refresh, and DVC's own answer costs a full look at the workspace (1.5-2 s at
50,000 tracked files on a 2-core machine). Most refreshes find nothing
changed. :class:`StatusCache` keeps the last answer per (repository, remote
check, untracked listing, remote setting) in this process, together with a
fingerprint of everything that answer was computed from, and hands it out
again while a new fingerprint equals the kept one. The fingerprint is a stat
scan, no hashing and no dependency:

- every file and folder under the walk root: the git root, or the DVC root
  when there is no git (git's ``dirty``/``unstaged``/``untracked`` cover the
  whole git work tree, and DVC finds .dvc files and dvc.yaml anywhere): name,
  inode, size, mtime, ctime and mode (``os.listdir`` + ``os.stat`` with a
  folder descriptor: about 4 µs a file here, 0.2 s at 50,000 files);
- git's state: HEAD and the branch it points at (read, they are tiny), the
  index, packed-refs, info/exclude and friends (stat), likewise for a nested
  repository found inside the tree; git's global excludes file;
- the configuration that decides where everything else lives, taken *before*
  DVC opens the repository: .dvc/config, .dvc/config.local, DVC's global and
  system config, git's repository, global and system config, whether a
  ``.git`` exists in a parent folder, and the ``DVC_*``/``GIT_*``/``HOME``/
  ``XDG_*`` environment;
- the DVC cache: the folders of its object tree down to ``files/md5/xx``
  (a folder's mtime and ctime change whenever an object in it is added,
  removed or renamed; DVC's ``not in cache`` only asks whether an object
  exists, and objects are content-addressed, so their contents are not
  looked at);
- with ``remote=True`` and a remote in a local folder: that folder's object
  tree the same way. A remote that is not a local folder (S3, GCS, SSH, ...)
  can change without a trace here: a ``remote=True`` answer for such a
  remote is never reused (no TTL: every such call asks the remote, as
  before; the local-only answer is cached separately).

Everything the scan stats is taken before DVC reads it, so a change made
while DVC computes shows in the next fingerprint.

Timestamps have a granularity (a kernel tick, or a second or two on some
file systems): a file written twice within one tick, with the same size,
keeps its mtime, ctime and inode. An answer whose fingerprint saw a
timestamp within :data:`RACY_WINDOW_NS` (2 s) of the moment the scan began is
therefore not reused (like git's "racily clean" index entries): the next
refresh asks DVC again, until the tree has been quiet for that long. On a
network file system whose clock runs more than that behind this machine's,
that guard weakens.

An edit that keeps the size and restores the mtime (``touch -d``,
``os.utime``) still changes the ctime, which no call can set: it is seen, and
DVC is asked again. DVC itself keys its hash cache on (inode, mtime, size),
so its answer may then still call the file unchanged; the cached answer
equals DVC's either way.

Writes that cannot change the answer are left out so they do not force a
recomputation: an in-tree ``.dvc/cache`` (seen through the object tree
above), DVC's own ``.dvc/tmp`` (locks) while ``.dvc/.gitignore`` ignores it
(or there is no git), and Workbench's state folder (``.workbench``: the embedded MLflow store, the
audit log, artifacts) while its ``.gitignore`` is the ``*`` Workbench writes,
git tracks nothing in it and no DVC output lies inside it. DVC skips
``.dvc`` and git-ignored folders when it looks for .dvc files, and git's status
never lists ignored files, so nothing in them reaches the answer. Any other
write in the tree (an edited notebook, a new file) makes the next refresh ask
DVC: that costs time, never a stale answer.

The cache is never used when the scan cannot see everything: a symlink to a
folder inside the tree, a folder it may not read, a git work tree without a
``git`` command to ask for its excludes file, or a remote folder kept as a
worktree remote. ``data.status(..., fresh=True)`` skips the check, asks DVC
and keeps that answer.

Thread safety: one lock per key (concurrent refreshes of the same status
wait for one scan or computation, and a waiter takes an answer whose scan
began after it arrived instead of scanning again); answers are deep-copied
in and out, so callers may change what they get.
"""

from __future__ import annotations

import copy
import hashlib
import marshal
import os
import stat
import subprocess
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from dvc.repo import Repo

    from workbench.data import DataStatus

# An answer whose fingerprint saw a timestamp this close to (or after) the
# start of its scan is not reused: a second write in the same timestamp tick
# would not show (see the module docstring).
RACY_WINDOW_NS = 2_000_000_000
# Keys kept (least recently used dropped): a key is one repository and one
# combination of the remote/untracked options.
MAX_ENTRIES = 16
# How deep the object trees of the cache and of a local remote are looked at:
# <root>/files/md5/<xx>
OBJECT_TREE_DEPTH = 3

_ENV_NAMES = ("HOME", "XDG_CONFIG_HOME", "XDG_CONFIG_DIRS", "XDG_CACHE_HOME")
_ENV_PREFIXES = ("DVC_", "GIT_")
_GIT_FILES = ("index", "shallow", "config.worktree", "info/sparse-checkout")
_GIT_COMMON_FILES = ("packed-refs", "config", "info/exclude", "info/attributes", "objects/info/alternates", "shallow")
_WORKBENCH_IGNORE = {"*"}  # the rules of the .gitignore Workbench writes into its state folder
_OPAQUE = "opaque"  # stands for a folder the scan does not enter


WatchFn = Callable[["Repo", "str | None"], None]


@dataclass(frozen=True)
class Guard:
    """A folder left opaque while the .gitignore ``rule_file`` keeps git (and so DVC) out of it.

    ``own`` guards are Workbench's state folder ignoring itself (rules exactly
    ``*``); the others are a parent's ``/<name>`` rule (``.dvc/.gitignore``'s
    ``/tmp``), with no negation in that file. Without git (``rule_file``
    None) only DVC looks, and it never enters ``.dvc``: that guard always holds.
    """

    folder: str
    rule_file: str | None
    own: bool

    def holds(self, content: bytes | None) -> bool:
        if self.rule_file is None:
            return True
        if content is None:
            return False
        lines = (line.strip() for line in content.decode(errors="replace").splitlines())
        rules = {line for line in lines if line and not line.startswith("#")}
        if self.own:
            return rules == _WORKBENCH_IGNORE
        return f"/{os.path.basename(self.folder)}" in rules and not any(r.startswith("!") for r in rules)


@dataclass(frozen=True)
class Watched:
    """Where the inputs of one answer live, learned from the open repository."""

    walk_root: str
    skip: frozenset[str]  # folders not walked at all: their state is watched apart (an in-tree DVC cache)
    opaque: frozenset[str]  # folders whose contents are not walked (see Guard)
    rule_files: tuple[str, ...]  # read whole: the guards of the opaque candidates depend on their contents
    dotgit: str | None  # the walk root's .git (a folder, or a file pointing at one)
    object_trees: tuple[str, ...]  # the DVC cache folder, a local remote's folder
    files: tuple[str, ...]  # more files stat'ed: git's global excludes file
    uncacheable: str | None = None  # why the answer is not reused (None: it is)


@dataclass
class _Entry:
    watched: Watched
    digest: bytes | None  # None: not reusable (racy, or uncacheable); only shared with calls that waited for it
    value: DataStatus
    computed_ns: int  # time.monotonic_ns() when the scan behind ``value`` began
    checked_ns: int  # ... or when its last successful check began


class _Scan:
    """One fingerprint in the making: records of what was seen, in a fixed order.

    ``records`` hold the single files, git and the object trees; ``tree`` the
    walk of the work tree, one ``("d", folder, entries)`` per folder.
    """

    def __init__(self) -> None:
        self.started_ns = time.time_ns()
        self.records: list[Any] = []
        self.tree: list[Any] = []
        self.uncacheable: str | None = None

    # -- single files

    def stat(self, path: str, into: list[Any] | None = None) -> None:
        records = self.records if into is None else into
        try:
            st = os.stat(path)
        except FileNotFoundError:
            records.append(("s", path, None))
        except OSError as exc:
            records.append(("s", path, type(exc).__name__))
        else:
            records.append(("s", path, (st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_mode)))

    def read(self, path: str, into: list[Any] | None = None) -> bytes | None:
        records = self.records if into is None else into
        try:
            with open(path, "rb") as handle:
                content: bytes | None = handle.read(1 << 20)
        except FileNotFoundError:
            content = None
        except OSError as exc:
            records.append(("r", path, type(exc).__name__))
            return None
        records.append(("r", path, content))
        return content

    def kind(self, path: str, into: list[Any] | None = None) -> str | None:
        """Only whether ``path`` is a folder, a file or nothing (its times do not matter)."""
        records = self.records if into is None else into
        try:
            mode = os.lstat(path).st_mode
        except FileNotFoundError:
            found = None
        else:
            found = "folder" if stat.S_ISDIR(mode) else "file"
        records.append(("k", path, found))
        return found

    def git(self, dotgit: str, into: list[Any] | None = None) -> None:
        """A git repository's HEAD, current branch, index and the files next to them."""
        gitdir = dotgit
        if self.kind(dotgit, into) == "file":
            gitdir = _follow_gitfile(dotgit, self.read(dotgit, into))
        commondir = self.read(os.path.join(gitdir, "commondir"), into)
        common = _common_dir(gitdir, commondir)
        head = self.read(os.path.join(gitdir, "HEAD"), into) or b""
        if head.startswith(b"ref:"):
            ref = head[4:].decode(errors="replace").strip()
            self.read(os.path.join(gitdir, ref), into)
            if common != gitdir:
                self.read(os.path.join(common, ref), into)
        for name in _GIT_FILES:
            self.stat(os.path.join(gitdir, name), into)
        for name in _GIT_COMMON_FILES:
            self.stat(os.path.join(common, name), into)

    # -- trees

    def walk(self, top: str, skip: frozenset[str], opaque: frozenset[str], dotgit: str | None) -> None:
        """Every entry under ``top`` into ``self.tree``: name, inode, size, mtime, ctime, mode."""
        tree = self.tree
        fstat, is_dir = os.stat, stat.S_ISDIR
        pending = [top]
        while pending:
            folder = pending.pop()
            try:
                fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
            except FileNotFoundError:
                tree.append(("d", folder, None))
                continue
            except OSError as exc:
                self.uncacheable = f"cannot read {folder}: {exc.strerror}"
                tree.append(("d", folder, type(exc).__name__))
                continue
            try:
                entries: list[tuple[Any, ...]] = []
                # listing order is left as the file system gives it: an unchanged folder lists the same
                for name in os.listdir(fd):
                    try:
                        st = fstat(name, dir_fd=fd, follow_symlinks=False)
                    except FileNotFoundError:
                        entries.append((name, None))
                        continue
                    mode = st.st_mode
                    if is_dir(mode):
                        path = f"{folder}/{name}"
                        if path in skip:
                            continue
                        if path in opaque:
                            entries.append((name, _OPAQUE))
                            continue
                        if name == ".git":
                            entries.append((name, _OPAQUE))
                            if path != dotgit:
                                self.git(path, tree)  # a nested repository: its HEAD and index count
                            continue
                        pending.append(path)
                    elif name == ".git" and f"{folder}/{name}" != dotgit:
                        self.git(f"{folder}/{name}", tree)  # a submodule's pointer to its git folder
                    elif stat.S_ISLNK(mode):
                        self._symlink(folder, name, fd, entries)
                    entries.append((name, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns, mode))
                tree.append(("d", folder, tuple(entries)))
            finally:
                os.close(fd)

    def _symlink(self, folder: str, name: str, fd: int, entries: list[tuple[Any, ...]]) -> None:
        try:
            target = os.stat(name, dir_fd=fd, follow_symlinks=True)
        except OSError:
            entries.append((name + " ->", None))
            return
        if stat.S_ISDIR(target.st_mode):
            self.uncacheable = f"{folder}/{name} is a symlink to a folder"
        entries.append((name + " ->", target.st_ino, target.st_size, target.st_mtime_ns, target.st_ctime_ns))

    def object_tree(self, top: str, depth: int = OBJECT_TREE_DEPTH) -> None:
        """The folders of an object store down to ``depth``: their stats say which objects exist."""
        self.stat(top)
        pending = [(top, 0)]
        while pending:
            folder, level = pending.pop()
            try:
                with os.scandir(folder) as listing:
                    found = sorted((e.name, e.path) for e in listing if e.is_dir(follow_symlinks=False))
            except FileNotFoundError:
                self.records.append(("o", folder, None))
                continue
            except OSError as exc:
                self.uncacheable = f"cannot read {folder}: {exc.strerror}"
                continue
            entries = []
            for name, path in found:
                try:
                    st = os.stat(path, follow_symlinks=False)
                except FileNotFoundError:
                    continue
                entries.append((name, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_mode))
                if level + 1 < depth:
                    pending.append((path, level + 1))
            self.records.append(("o", folder, tuple(entries)))

    # -- the result

    def digest(self, tree: list[Any] | None = None) -> bytes:
        # marshal version 2 writes no back-references: equal records give equal bytes
        data = marshal.dumps((self.records, self.tree if tree is None else tree), 2)
        return hashlib.blake2b(data, digest_size=32).digest()

    def newest_ns(self, tree: list[Any]) -> int:
        """The newest mtime or ctime seen in ``self.records`` and ``tree``."""
        newest = 0
        for record in (*self.records, *tree):
            kind, payload = record[0], record[2]
            if kind in ("d", "o") and isinstance(payload, tuple):
                for entry in payload:
                    if len(entry) >= 5:
                        newest = max(newest, entry[3], entry[4])
            elif kind == "s" and isinstance(payload, tuple):
                newest = max(newest, payload[2], payload[3])
        return newest


def _follow_gitfile(dotgit: str, pointer: bytes | None) -> str:
    target = (pointer or b"").decode(errors="replace").strip().removeprefix("gitdir:").strip()
    return os.path.normpath(os.path.join(os.path.dirname(dotgit), target))


def _common_dir(gitdir: str, commondir: bytes | None) -> str:
    if not commondir:
        return gitdir
    return os.path.normpath(os.path.join(gitdir, commondir.decode(errors="replace").strip()))


def _without_opaque(tree: list[Any], opaque: frozenset[str]) -> list[Any]:
    """A full walk's records as a walk that left ``opaque`` folders opaque would have written them."""
    if not opaque:
        return tree
    inside = tuple(f"{folder}/" for folder in opaque)
    kept = []
    for record in tree:
        path = record[1]
        if path in opaque or path.startswith(inside):
            continue  # the folder's own listing, or a nested repository's git files inside it
        if record[0] == "d" and isinstance(record[2], tuple):
            entries = tuple(
                (entry[0], _OPAQUE) if len(entry) > 2 and f"{path}/{entry[0]}" in opaque else entry
                for entry in record[2]
            )
            record = ("d", path, entries)
        kept.append(record)
    return kept


# ---------------------------------------------------------------- what to watch


def _environment() -> tuple[tuple[str, str], ...]:
    return tuple(sorted((k, v) for k, v in os.environ.items() if k in _ENV_NAMES or k.startswith(_ENV_PREFIXES)))


def _pre_scan(root: str) -> _Scan:
    """What decides where the inputs live; taken before DVC opens the repository."""
    from dvc.dirs import global_config_dir, system_config_dir

    scan = _Scan()
    scan.records.append(("env", "", _environment()))
    for path in (
        os.path.join(root, ".dvc", "config"),
        os.path.join(root, ".dvc", "config.local"),
        os.path.join(global_config_dir(), "config"),
        os.path.join(system_config_dir(), "config"),
    ):
        scan.stat(path)
    # the nearest .git at or above the root (which folders have none counts too)
    folder, dotgit = root, None
    while dotgit is None:
        candidate = os.path.join(folder, ".git")
        found = scan.kind(candidate)
        if found is not None:
            dotgit = candidate
            gitdir = _follow_gitfile(candidate, scan.read(candidate)) if found == "file" else candidate
            common = _common_dir(gitdir, scan.read(os.path.join(gitdir, "commondir")))
            scan.stat(os.path.join(common, "config"))
            scan.stat(os.path.join(gitdir, "config.worktree"))
        elif os.path.dirname(folder) == folder:
            break
        folder = os.path.dirname(folder)
    home = os.path.expanduser("~")
    xdg = os.environ.get("XDG_CONFIG_HOME") or os.path.join(home, ".config")
    for path in (
        os.environ.get("GIT_CONFIG_GLOBAL") or os.path.join(home, ".gitconfig"),
        os.path.join(xdg, "git", "config"),
        os.environ.get("GIT_CONFIG_SYSTEM") or "/etc/gitconfig",
    ):
        scan.stat(path)
    return scan


def _within(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder.rstrip("/") + "/")


def _excludes_file(walk_root: str) -> str | None:
    """git's global excludes file (``core.excludesFile`` or the default); None when git did not run."""
    done = _git(walk_root, "config", "--path", "--get", "core.excludesFile")
    if done is None:
        return None
    configured = done.stdout.decode(errors="replace").strip()
    if done.returncode == 0 and configured:
        return os.path.join(walk_root, os.path.expanduser(configured))
    xdg = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    return os.path.join(xdg, "git", "ignore")


def _git_tracks_any(walk_root: str, folders: list[str]) -> bool:
    """True when git's index holds a file inside one of ``folders`` (or git cannot tell)."""
    if not folders:
        return False
    done = _git(walk_root, "ls-files", "-z", "--", *[os.path.relpath(f, walk_root) for f in folders])
    return done is None or done.returncode != 0 or bool(done.stdout)


def _git(walk_root: str, *args: str) -> subprocess.CompletedProcess[bytes] | None:
    """``git ARGS`` run in ``walk_root`` (output captured); None when git could not run."""
    try:
        return subprocess.run(["git", *args], cwd=walk_root, capture_output=True, timeout=30, check=False)
    except (OSError, subprocess.SubprocessError):
        return None


def _watched(repo: Repo, remote_name: str | None, state_dir: str | None) -> tuple[Watched, list[Guard]]:
    """Where the inputs of ``repo``'s status live, and the opaque candidates with their guards.

    Reads DVC's and git's configuration only (already fingerprinted), nothing of the work tree.
    """
    from dvc.scm import NoSCM

    root = os.path.abspath(repo.root_dir)
    has_git = not isinstance(repo.scm, NoSCM)
    walk_root = os.path.abspath(repo.scm.root_dir) if has_git else root
    problems: list[str] = []

    cache = os.path.abspath(repo.cache.local_cache_dir)
    skip = frozenset([cache]) if _within(cache, walk_root) and cache != walk_root else frozenset()
    object_trees = [cache]
    if remote_name is not None:
        remote = repo.cloud.get_remote(remote_name)
        if getattr(remote.fs, "protocol", None) != "local":
            problems.append(f"the remote {remote_name!r} is not a local folder")
        elif getattr(remote, "worktree", False):
            problems.append(f"the remote {remote_name!r} is a worktree remote")
        else:
            object_trees.append(os.path.abspath(remote.path))

    files: list[str] = []
    if has_git:
        excludes = _excludes_file(walk_root)
        if excludes is None:
            problems.append("the git command, needed to find git's excludes file, did not run")
        else:
            files.append(excludes)

    dvc_ignore = os.path.join(root, ".dvc", ".gitignore") if has_git else None
    guards = [Guard(os.path.join(root, ".dvc", "tmp"), dvc_ignore, own=False)]
    state = os.path.abspath(state_dir) if state_dir else None
    if has_git and state is not None and state != root and _within(state, root):
        # without git, DVC looks for .dvc files in it by name: it stays walked
        guards.append(Guard(state, os.path.join(state, ".gitignore"), own=True))
    watched = Watched(
        walk_root=walk_root,
        skip=skip,
        opaque=frozenset(),
        rule_files=tuple(sorted({g.rule_file for g in guards if g.rule_file is not None})),
        dotgit=os.path.join(walk_root, ".git") if has_git else None,
        object_trees=tuple(object_trees),
        files=tuple(files),
        uncacheable="; ".join(problems) or None,
    )
    return watched, guards


def _opaque(guards: list[Guard], scan: _Scan, tracked: bool, value: DataStatus) -> frozenset[str]:
    """The candidate folders that may be left opaque, by the state the scan saw and the answer."""
    if tracked:
        return frozenset()
    contents = {record[1]: record[2] for record in scan.records if record[0] == "r"}
    outputs = [os.path.join(os.fspath(value.root), entry.path) for entry in value.entries]
    return frozenset(
        guard.folder
        for guard in guards
        if guard.holds(contents.get(guard.rule_file or ""))
        and not any(_within(out, guard.folder) or _within(guard.folder, out) for out in outputs)
    )


# ---------------------------------------------------------------- the cache


class StatusCache:
    """Data status answers per key, reused while their fingerprint holds (see the module docstring)."""

    def __init__(self, max_entries: int = MAX_ENTRIES) -> None:
        self.max_entries = max_entries
        self._lock = threading.Lock()
        self._entries: OrderedDict[Hashable, _Entry] = OrderedDict()
        self._key_locks: dict[Hashable, threading.Lock] = {}
        self.hits = 0  # answers reused after a check
        self.misses = 0  # answers DVC computed

    def clear(self) -> None:
        """Forget every kept answer."""
        with self._lock:
            self._entries.clear()

    def get(
        self,
        key: Hashable,
        root: Path,
        state_dir: Path | None,
        compute: Callable[[WatchFn], DataStatus],
        *,
        fresh: bool = False,
    ) -> DataStatus:
        """The status for ``key``: the kept one while nothing it depends on changed, else ``compute(watch)``.

        ``compute`` opens the repository, calls ``watch(repo, remote_name)``
        before DVC reads anything of the work tree, and returns the status.
        ``fresh=True`` computes (and keeps) a new answer without checking.
        """
        arrived = time.monotonic_ns()
        with self._key_lock(key):
            entry = self._get_entry(key)
            if entry is not None and (entry.computed_ns if fresh else entry.checked_ns) >= arrived:
                return copy.deepcopy(entry.value)  # made while this call waited: as new as its own would be
            if entry is not None and entry.digest is not None and not fresh:
                checked = time.monotonic_ns()
                if self._fingerprint(os.fspath(root), entry.watched) == entry.digest:
                    entry.checked_ns = checked
                    self._count(hit=True)
                    return copy.deepcopy(entry.value)
            self._count(hit=False)
            return self._compute(key, os.fspath(root), state_dir, compute)

    # -- internals

    def _count(self, *, hit: bool) -> None:
        with self._lock:
            if hit:
                self.hits += 1
            else:
                self.misses += 1

    def _key_lock(self, key: Hashable) -> threading.Lock:
        with self._lock:
            return self._key_locks.setdefault(key, threading.Lock())

    def _get_entry(self, key: Hashable) -> _Entry | None:
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None:
                self._entries.move_to_end(key)
            return entry

    def _put(self, key: Hashable, entry: _Entry) -> None:
        with self._lock:
            self._entries[key] = entry
            self._entries.move_to_end(key)
            while len(self._entries) > self.max_entries:
                dropped, _ = self._entries.popitem(last=False)
                self._key_locks.pop(dropped, None)

    @staticmethod
    def _scan_inputs(scan: _Scan, watched: Watched, opaque: frozenset[str]) -> None:
        for path in watched.rule_files:
            scan.read(path)
        if watched.dotgit is not None:
            scan.git(watched.dotgit)
        for path in watched.files:
            scan.stat(path)
        for tree in watched.object_trees:
            scan.object_tree(tree)
        scan.walk(watched.walk_root, watched.skip, opaque, watched.dotgit)

    def _fingerprint(self, root: str, watched: Watched) -> bytes:
        scan = _pre_scan(root)
        self._scan_inputs(scan, watched, watched.opaque)
        return scan.digest()

    def _compute(
        self, key: Hashable, root: str, state_dir: Path | None, compute: Callable[[WatchFn], DataStatus]
    ) -> DataStatus:
        started = time.monotonic_ns()
        scan = _pre_scan(root)  # before DVC reads its configuration
        seen: dict[str, Any] = {}

        def watch(repo: Repo, remote_name: str | None) -> None:
            watched, guards = _watched(repo, remote_name, os.fspath(state_dir) if state_dir else None)
            # walked in full: which candidates may stay opaque is known from the answer only
            self._scan_inputs(scan, watched, frozenset())
            candidates = [g.folder for g in guards if os.path.isdir(g.folder)]
            # after the scan took the index's stat: a later change to it shows
            seen["tracked"] = watched.dotgit is not None and _git_tracks_any(watched.walk_root, candidates)
            seen["watched"], seen["guards"] = watched, guards

        value = compute(watch)
        watched: Watched | None = seen.get("watched")
        if watched is None:
            return value  # compute did not call watch: nothing to keep
        digest = None
        if watched.uncacheable is None and scan.uncacheable is None:
            opaque = _opaque(seen["guards"], scan, seen["tracked"], value)
            watched = replace(watched, opaque=opaque)
            tree = _without_opaque(scan.tree, opaque)
            if scan.newest_ns(tree) < scan.started_ns - RACY_WINDOW_NS:
                digest = scan.digest(tree)
        entry = _Entry(watched, digest, copy.deepcopy(value), computed_ns=started, checked_ns=started)
        self._put(key, entry)
        return value


CACHE = StatusCache()
