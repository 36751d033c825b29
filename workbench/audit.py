"""The audit log: one append-only JSON-lines file of every state-changing action.

Every action that changes state (promote, rollback, deploy, stop, push, pull,
checkout, kernel interrupt/shutdown) goes through :func:`record`: who, when,
action, target, before, after, outcome and gate overrides. Each entry is written with one ``write`` under an
exclusive ``flock`` and fsynced, so concurrent writers (threads or processes)
never interleave or lose an entry.
"""

from __future__ import annotations

import contextvars
import datetime as _dt
import fcntl
import getpass
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from workbench.config import Settings, ensure_state_dir
from workbench.errors import WorkbenchError
from workbench.records import to_dict

LOG_NAME = "audit.jsonl"

# The acting identity: a surface that knows who is acting (the Jupyter server's
# identity provider) sets it for the duration of a request; otherwise the OS user.
current_actor: contextvars.ContextVar[str | None] = contextvars.ContextVar("workbench_actor", default=None)


@dataclass
class AuditEntry:
    """One action, as it happened."""

    time: str
    actor: str
    action: str
    target: str
    outcome: str  # "ok", "refused" or "failed"
    before: Any = None
    after: Any = None
    detail: dict[str, Any] = field(default_factory=dict)  # e.g. gate overrides, job id
    error: dict[str, str] | None = None


def log_path(settings: Settings) -> Path:
    return settings.state_dir / LOG_NAME


def actor() -> str:
    """Who is acting: the surface's identity when one is set, else the OS user."""
    explicit = current_actor.get()
    if explicit:
        return explicit
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return f"uid:{os.getuid()}"


@contextmanager
def acting_as(name: str | None) -> Iterator[None]:
    """Attribute the actions inside the block to ``name``."""
    token = current_actor.set(name)
    try:
        yield
    finally:
        current_actor.reset(token)


def record(
    settings: Settings,
    action: str,
    target: str,
    *,
    outcome: str = "ok",
    before: Any = None,
    after: Any = None,
    detail: dict[str, Any] | None = None,
    error: WorkbenchError | dict[str, str] | None = None,
    who: str | None = None,
) -> AuditEntry:
    """Append one entry (flushed and fsynced before this returns)."""
    entry = AuditEntry(
        time=_dt.datetime.now(_dt.UTC).isoformat(timespec="milliseconds"),
        actor=who or actor(),
        action=action,
        target=target,
        outcome=outcome,
        before=to_dict(before),
        after=to_dict(after),
        detail=to_dict(detail or {}),
        error=error.to_dict() if isinstance(error, WorkbenchError) else error,
    )
    line = (json.dumps(asdict(entry), sort_keys=True, default=str) + "\n").encode()
    path = ensure_state_dir(settings) / LOG_NAME
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            written = os.write(fd, line)
            while written < len(line):  # os.write may write less than asked
                written += os.write(fd, line[written:])
            os.fsync(fd)
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
    return entry


def read(
    settings: Settings, *, limit: int | None = None, action: str | None = None, target: str | None = None
) -> list[AuditEntry]:
    """Entries oldest first (the last ``limit`` ones when given), optionally filtered."""
    path = log_path(settings)
    if not path.exists():
        return []
    entries = []
    with path.open() as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_SH)
        for line in handle:
            if not line.strip():
                continue
            raw = json.loads(line)
            if (action and raw.get("action") != action) or (target and raw.get("target") != target):
                continue
            entries.append(AuditEntry(**raw))
    return entries[-limit:] if limit else entries
