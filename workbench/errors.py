"""Typed errors that every surface can show to a person.

Each error carries a ``message`` (what went wrong) and a ``hint`` (what to do
about it). Surfaces render both and never a traceback; the server API maps
``status`` to the HTTP status code.
"""

from __future__ import annotations


class WorkbenchError(Exception):
    """Base class: something a person can act on."""

    status = 500
    kind = "error"

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint or ""

    def to_dict(self) -> dict[str, str]:
        return {"error": self.message, "hint": self.hint, "kind": self.kind}

    def __str__(self) -> str:
        return f"{self.message} ({self.hint})" if self.hint else self.message


class InvalidInput(WorkbenchError):
    """The caller asked for something malformed (bad filter, bad name...)."""

    status = 400
    kind = "invalid_input"


class NotFound(WorkbenchError):
    """An experiment, run, model, version, path or deployment that does not exist."""

    status = 404
    kind = "not_found"


class Conflict(WorkbenchError):
    """The action would clash with the current state (uncommitted changes, ...)."""

    status = 409
    kind = "conflict"


class NotInitialized(Conflict):
    """The workspace lacks a part the action needs (no git, no DVC, no remote)."""

    kind = "not_initialized"


class Busy(WorkbenchError):
    """Another process holds a lock the action needs (e.g. the DVC repo lock)."""

    status = 423
    kind = "busy"


class BackendUnavailable(WorkbenchError):
    """A backend (MLflow server, DVC remote, NVML) did not answer."""

    status = 503
    kind = "backend_unavailable"
