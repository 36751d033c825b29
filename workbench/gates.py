"""Promotion gates: the checks a model version must pass before an alias moves.

Gates are configured per registered model in the workspace settings::

    [tool.workbench.promotion_gates]
    wine-classifier = ["metrics.accuracy >= 0.9", "metrics.f1 >= current", "lineage required", "no dirty commit"]

The grammar, one gate per string:

- ``metrics.<key> <op> <number>`` with ``<op>`` one of ``>= > <= < == !=``;
- ``metrics.<key> <op> current``: compared with the version that holds the
  alias now (passes when nothing holds it);
- ``params.<key> == <value>`` / ``params.<key> != <value>``;
- ``lineage required``: the version's run carries a git commit;
- ``no dirty commit``: that commit had no uncommitted code or data changes.
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Callable
from dataclasses import dataclass

from workbench.errors import InvalidInput

_OPS: dict[str, Callable[[float, float], bool]] = {
    ">=": operator.ge,
    ">": operator.gt,
    "<=": operator.le,
    "<": operator.lt,
    "==": operator.eq,
    "!=": operator.ne,
}
_COMPARISON = re.compile(r"^(metrics|params)\.(?P<key>[\w./\- ]+?)\s*(?P<op>>=|<=|==|!=|>|<)\s*(?P<value>.+)$")
_HINT = (
    'Gates look like "metrics.accuracy >= 0.9", "metrics.f1 >= current", '
    '"params.model == rf", "lineage required" or "no dirty commit".'
)


@dataclass
class GateResult:
    gate: str
    passed: bool
    detail: str


def _metric_gate(gate: str, key: str, op: str, raw: str, candidate, current) -> GateResult:
    value = candidate.metrics.get(key)
    if raw.strip().lower() == "current":
        if current is None:
            return GateResult(gate, True, "no current holder to compare with")
        threshold = current.metrics.get(key)
        label = f"current v{current.version} {threshold}"
        if threshold is None:
            return GateResult(gate, True, f"current v{current.version} has no metric {key}")
    else:
        try:
            threshold = float(raw)
        except ValueError as exc:
            raise InvalidInput(f"Gate {gate!r}: {raw!r} is not a number", _HINT) from exc
        label = f"{threshold:g}"
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return GateResult(gate, False, f"v{candidate.version} has no value for metric {key}")
    passed = _OPS[op](float(value), float(threshold))
    return GateResult(gate, passed, f"{key} {value:.4g} {op} {label}")


def evaluate(gates: list[str], candidate, current) -> list[GateResult]:
    """Evaluate each gate for ``candidate`` (and ``current``, the alias holder or None).

    Both are :class:`workbench.registry.ModelVersionInfo` records with metrics,
    params and lineage filled in. A malformed gate raises ``InvalidInput``.
    """
    results = []
    for gate in gates:
        text = " ".join(gate.split())
        lowered = text.lower()
        if lowered == "lineage required":
            commit = candidate.lineage.commit if candidate.lineage else None
            results.append(
                GateResult(gate, bool(commit), f"trained from commit {commit[:10]}" if commit else "no lineage tags")
            )
            continue
        if lowered == "no dirty commit":
            lineage = candidate.lineage
            if lineage is None or lineage.dirty is None:
                results.append(GateResult(gate, False, "unknown: the run has no lineage tags"))
            else:
                dirty = lineage.dirty or bool(lineage.data_dirty)
                what = "uncommitted changes" if dirty else "a clean commit"
                results.append(GateResult(gate, not dirty, f"trained from {what}"))
            continue
        match = _COMPARISON.match(text)
        if not match:
            raise InvalidInput(f"Cannot read promotion gate {gate!r}", _HINT)
        kind, key, op, raw = match.group(1), match.group("key").strip(), match.group("op"), match.group("value").strip()
        if kind == "metrics":
            results.append(_metric_gate(gate, key, op, raw, candidate, current))
        else:
            if op not in ("==", "!="):
                raise InvalidInput(f"Gate {gate!r}: params compare with == or != only", _HINT)
            expected = raw.strip("'\"")
            actual = candidate.params.get(key)
            passed = (actual == expected) == (op == "==")
            results.append(GateResult(gate, passed, f"{key} = {actual!r}"))
    return results
