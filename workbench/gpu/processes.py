"""Who runs each GPU process: user and command (psutil), and the Jupyter kernel behind it.

A kernel is recognised by its command line: Jupyter starts kernels with their
connection file as an argument (``ipykernel_launcher -f .../kernel-<id>.json``),
and the file's name holds the kernel id. A GPU process that is a kernel, or a
child of one (a ``DataLoader`` worker, a ``subprocess`` the notebook started),
is mapped by walking up its parents until such a command line appears.

The notebook a kernel runs comes from, first match wins:

1. the Jupyter server's sessions, when a sessions provider is given (inside
   the server: its session manager; elsewhere: :func:`workbench.gpu.kernels.fetch_sessions`);
2. the kernel's connection file, where jupyter_client records the session
   name (``jupyter_session``, the notebook path) for kernels a server starts.

Process details are cached for as long as a pid stays on a GPU from one
sample to the next (a pid that leaves every GPU is forgotten), so a steady set
of GPU processes costs no ``/proc`` reads after the first sample.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil

from workbench.gpu.model import GpuProcess
from workbench.gpu.source import SessionsProvider

_CONNECTION_FILE = re.compile(r"(?:^|[=/])kernel-([A-Za-z0-9_.-]+)\.json$")
# How far up the process tree a kernel is looked for (kernel -> worker -> helper ...).
_MAX_ANCESTORS = 8
_COMMAND_CHARS = 200


@dataclass(frozen=True)
class KernelMatch:
    """The Jupyter kernel a process belongs to."""

    kernel_id: str
    kernel_pid: int
    connection_file: str
    notebook_path: str | None  # from the connection file's ``jupyter_session``, when set


@dataclass(frozen=True)
class ProcessDetails:
    """What psutil tells about one pid, plus its kernel."""

    user: str | None
    command: str | None
    kernel: KernelMatch | None


def sessions_by_kernel(sessions: Iterable[dict[str, Any]]) -> dict[str, str]:
    """Map kernel id -> notebook path from Jupyter server session dicts (``GET /api/sessions`` shape)."""
    mapping = {}
    for session in sessions:
        kernel = session.get("kernel") or {}
        if kernel.get("id") and session.get("path"):
            mapping[str(kernel["id"])] = str(session["path"])
    return mapping


def _connection_file(cmdline: list[str]) -> tuple[str, str] | None:
    """The (kernel id, connection file path as written) named on a kernel's command line, if any."""
    for arg in cmdline:
        match = _CONNECTION_FILE.search(arg)
        if match:
            path = arg.split("=", 1)[1] if arg.startswith("-") and "=" in arg else arg
            return match.group(1), path
    return None


def _session_from_file(path: str) -> str | None:
    """The notebook path jupyter_client wrote into a connection file (``jupyter_session``)."""
    try:
        info = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(info, dict):
        return None
    return info.get("jupyter_session") or None


def find_kernel(process: psutil.Process) -> KernelMatch | None:
    """The kernel ``process`` is, or descends from; None when it is no kernel's."""
    current: psutil.Process | None = process
    for _ in range(_MAX_ANCESTORS):
        if current is None or current.pid <= 1:
            return None
        try:
            found = _connection_file(current.cmdline())
            if found:
                kernel_id, path = found
                if not os.path.isabs(path):
                    path = os.path.join(current.cwd(), path)
                return KernelMatch(kernel_id, current.pid, path, _session_from_file(path))
            current = current.parent()
        except (psutil.Error, OSError):
            return None
    return None


def describe_process(pid: int) -> ProcessDetails:
    """User, command line and kernel of ``pid``; all None when it is not visible from here."""
    try:
        process = psutil.Process(pid)
        with process.oneshot():
            try:
                user = process.username()
            except (psutil.Error, KeyError):
                user = None
            try:
                command = " ".join(process.cmdline())[:_COMMAND_CHARS] or process.name()
            except psutil.Error:
                command = None
        return ProcessDetails(user, command, find_kernel(process))
    except psutil.Error:
        # not visible from here (another PID namespace, or already gone)
        return ProcessDetails(None, None, None)


class ProcessResolver:
    """Fills in user, command, kernel and notebook of GPU processes; one per source."""

    def __init__(self, sessions: SessionsProvider | None = None) -> None:
        self.sessions = sessions
        self._cache: dict[int, ProcessDetails] = {}

    def annotate(self, processes: list[GpuProcess]) -> None:
        """Set the psutil and kernel fields of ``processes`` in place; forget pids no longer seen."""
        notebooks: dict[str, str] = {}
        if self.sessions is not None and processes:
            try:
                notebooks = sessions_by_kernel(self.sessions())
            except Exception:  # a failing sessions provider must not stop sampling
                notebooks = {}
        for proc in processes:
            details = self._cache.get(proc.pid)
            if details is None:
                details = self._cache[proc.pid] = describe_process(proc.pid)
            proc.user, proc.command = details.user, details.command
            if details.kernel is not None:
                proc.kernel_id = details.kernel.kernel_id
                proc.kernel_pid = details.kernel.kernel_pid
                proc.notebook_path = notebooks.get(details.kernel.kernel_id) or details.kernel.notebook_path
        seen = {p.pid for p in processes}
        for pid in [p for p in self._cache if p not in seen]:
            del self._cache[pid]
