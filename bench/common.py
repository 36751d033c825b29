"""What every benchmark shares: alternate the contenders, summarise, report.

A benchmark module exposes ``main(argv: list[str] | None = None) -> list[dict]``:
it prints its own table and returns one :func:`result` per case, which
``bench/run.py`` (``make bench``) collects into ``bench/results/<date>.json``
and the last line of ratios.

Each result dict has:

- ``benchmark``: the benchmark's name ("runs table", "data status", ...);
- ``case``: what was measured in this case ("100,000 runs", "5,000 files, nothing changed");
- ``unit``: ``"s"`` for times (the default) or another unit name;
- ``median`` and ``spread`` (``[min, max]``) per contender, in that unit;
- ``complete`` per contender: False where a call ran out of time (the median is a lower bound);
- ``baseline`` and ``workbench``: which contenders the ratio compares;
- ``ratio``: baseline median / Workbench median (> 1: Workbench is faster),
  ``ratio_label`` ("dvc status / Workbench", or a sentence saying what the
  ratio means) and ``ratio_is_lower_bound``.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Mapping
from typing import Any


def alternate(contenders: Mapping[str, Callable[[], object]], rounds: int) -> dict[str, list[float]]:
    """Time each contender ``rounds`` times, alternating their order round by round.

    Returns the seconds of every call per contender. Alternating (ABC, CBA, ...)
    spreads the machine's drift over all contenders instead of favouring one.
    """
    names = list(contenders)
    samples: dict[str, list[float]] = {name: [] for name in names}
    for index in range(rounds):
        order = names if index % 2 == 0 else list(reversed(names))
        for name in order:
            start = time.perf_counter()
            contenders[name]()
            samples[name].append(time.perf_counter() - start)
    return samples


def result(
    benchmark: str,
    case: str,
    samples: Mapping[str, list[float]],
    *,
    baseline: str,
    workbench: str,
    unit: str = "s",
    complete: Mapping[str, bool] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """One case's figures: medians, spreads and the baseline / Workbench ratio."""
    median = {name: statistics.median(values) for name, values in samples.items()}
    spread = {name: [min(values), max(values)] for name, values in samples.items()}
    done = {name: True for name in samples} | dict(complete or {})
    ratio = median[baseline] / median[workbench] if median[workbench] > 0 else float("inf")
    return {
        "benchmark": benchmark,
        "case": case,
        "unit": unit,
        "median": median,
        "spread": spread,
        "complete": done,
        "samples": {name: len(values) for name, values in samples.items()},
        "baseline": baseline,
        "workbench": workbench,
        "ratio": ratio,
        "ratio_label": f"{baseline} / {workbench}",
        "ratio_is_lower_bound": not done[baseline],
        **extra,
    }


def format_value(value: float, unit: str) -> str:
    """``0.0291 s`` -> ``29.1 ms``; other units print as they are."""
    if unit != "s":
        return f"{value:.3g} {unit}"
    if value < 1e-3:
        return f"{value * 1e6:.0f} µs"
    if value < 1:
        return f"{value * 1e3:.1f} ms"
    return f"{value:.2f} s"


def format_ratio(res: Mapping[str, Any]) -> str:
    sign = ">=" if res.get("ratio_is_lower_bound") else ""
    ratio = res["ratio"]
    return f"{sign}{ratio:.0f}x" if ratio >= 10 else f"{sign}{ratio:.2f}x"


def table(results: list[dict[str, Any]]) -> str:
    """A plain-text table: one block per case, one line per contender, then the ratio."""
    lines = []
    for res in results:
        lines.append(f"{res['benchmark']}: {res['case']}")
        for name, median in res["median"].items():
            low, high = res["spread"][name]
            bound = "" if res["complete"].get(name, True) else ">"
            unit = res["unit"]
            lines.append(
                f"  {name:<28} {bound}{format_value(median, unit):>12}"
                f"   (min {format_value(low, unit)}, max {format_value(high, unit)}, n={res['samples'][name]})"
            )
        lines.append(f"  {res['ratio_label']}: {format_ratio(res)}")
    return "\n".join(lines)
