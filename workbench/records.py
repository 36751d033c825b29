"""Plain records and the one function that turns them into JSON.

Services return dataclasses; every surface (REST API, dashboards, magics,
CLI ``--json``) renders them through :func:`to_dict`, so a field added once
shows everywhere.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import enum
import json
import math
from pathlib import PurePath
from typing import Any


def to_dict(value: Any) -> Any:
    """Convert a record (or a list/dict of records) into JSON-ready data."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_dict(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(k): to_dict(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [to_dict(v) for v in value]
    if isinstance(value, PurePath):
        return str(value)
    if isinstance(value, (_dt.datetime, _dt.date)):
        return value.isoformat()
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, float) and not math.isfinite(value):
        # JSON has no NaN/Infinity; keep the information as a string.
        return str(value)
    return value


def to_json(value: Any, **kwargs: Any) -> str:
    """Serialize a record to JSON text (``indent`` etc. pass through)."""
    return json.dumps(to_dict(value), **kwargs)
