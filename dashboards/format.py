"""How the dashboards write numbers, sizes, times and status badges.

Every page formats through these functions so a value reads the same
everywhere: ``12,345`` runs, ``0.9333`` accuracy, ``31.5 GiB``, ``3 min ago``,
and one colour per kind of state (green: fine, amber: needs a look, red:
broken, blue: in progress, grey: neither).
"""

from __future__ import annotations

import datetime as _dt
import html
import math
from typing import Literal

Tone = Literal["ok", "warn", "bad", "info", "muted"]

DASH = "–"  # shown for a value that does not exist

# Badge colours (background, text): readable on light and dark pages alike.
_TONE_COLOURS: dict[str, tuple[str, str]] = {
    "ok": ("#1f7a45", "#ffffff"),
    "warn": ("#b26a00", "#ffffff"),
    "bad": ("#b3261e", "#ffffff"),
    "info": ("#1d5fbf", "#ffffff"),
    "muted": ("#6b7280", "#ffffff"),
}

# The tone of every state word the services use (runs, deployments, data, gates, jobs, GPUs).
STATE_TONES: dict[str, Tone] = {
    # MLflow run status
    "FINISHED": "ok",
    "RUNNING": "info",
    "SCHEDULED": "info",
    "FAILED": "bad",
    "KILLED": "muted",
    # model version status
    "READY": "ok",
    "PENDING_REGISTRATION": "info",
    "FAILED_REGISTRATION": "bad",
    # deployments
    "healthy": "ok",
    "starting": "info",
    "restarting": "info",
    "unhealthy": "warn",
    "stopped": "muted",
    "failed": "bad",
    "dead": "bad",
    # tracked data (workbench.data badges) and pipeline stages
    "unchanged": "ok",
    "up to date": "ok",
    "modified": "warn",
    "not committed": "warn",
    "not pushed": "warn",
    "stale": "warn",
    "frozen": "muted",
    "missing": "bad",
    "not in cache": "bad",
    # data diff
    "added": "ok",
    "deleted": "bad",
    "renamed": "info",
    # gates and jobs
    "passed": "ok",
    "failed gate": "bad",
    "queued": "muted",
    "succeeded": "ok",
    "cancelled": "muted",
    # GPUs
    "ok": "ok",
    "error": "bad",
    "lost": "bad",
    "simulated": "warn",
}


def badge(text: str, tone: Tone | None = None) -> str:
    """An HTML status badge; the tone defaults to the one :data:`STATE_TONES` gives ``text``."""
    background, colour = _TONE_COLOURS[tone or STATE_TONES.get(text, "muted")]
    return (
        f'<span class="wb-badge" style="background:{background};color:{colour};padding:1px 8px;'
        f'border-radius:10px;font-size:0.8em;font-weight:600;white-space:nowrap;">{html.escape(text)}</span>'
    )


def number(value: float | int | None, digits: int = 4) -> str:
    """A metric or count: ``12,345``, ``0.9333``, ``1.2e-05``, ``NaN``; ``–`` for None."""
    if value is None:
        return DASH
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "∞" if value > 0 else "-∞"
    if value.is_integer() and abs(value) < 1e15:
        return f"{int(value):,}"
    if abs(value) >= 1000:
        return f"{value:,.1f}"
    return f"{value:.{digits}g}"


def signed(value: float | None, digits: int = 4) -> str:
    """A difference with its sign: ``+0.0213``, ``-0.5``, ``0``; ``–`` for None."""
    if value is None:
        return DASH
    if value == 0:
        return "0"
    text = number(value, digits)
    return text if text.startswith(("-", "N")) else f"+{text}"


def percent(value: float | None) -> str:
    """A percentage that is already in 0..100: ``87%``, ``4.5%``."""
    if value is None:
        return DASH
    return f"{value:.0f}%" if value >= 10 else f"{value:.1f}%"


def size(num_bytes: float | int | None) -> str:
    """A size in bytes, in binary units: ``512 B``, ``1.5 MiB``, ``31.5 GiB``."""
    if num_bytes is None:
        return DASH
    value = float(num_bytes)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(value) < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def timestamp(ms: int | None) -> str:
    """A time given in ms since the epoch (as MLflow stores it), in local time: ``2026-05-01 14:03``."""
    if not ms:
        return DASH
    return _dt.datetime.fromtimestamp(ms / 1000).strftime("%Y-%m-%d %H:%M")


def ago(ms: int | None, now: float | None = None) -> str:
    """How long ago a time in ms since the epoch was: ``just now``, ``5 min ago``, ``3 d ago``."""
    if not ms:
        return DASH
    seconds = (now if now is not None else _dt.datetime.now().timestamp()) - ms / 1000
    if seconds < 60:
        return "just now"
    for unit, length in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= length:
            return f"{int(seconds // length)} {unit} ago"
    raise AssertionError("unreachable")


def duration(start_ms: int | None, end_ms: int | None) -> str:
    """How long a run took: ``42 s``, ``3 min 5 s``, ``2 h 10 min``; ``–`` while unknown."""
    if not start_ms or not end_ms or end_ms < start_ms:
        return DASH
    seconds = int((end_ms - start_ms) / 1000)
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60} min"


def short_id(value: str | None, length: int = 8) -> str:
    """The first characters of a run id, hash or commit sha."""
    return value[:length] if value else DASH
