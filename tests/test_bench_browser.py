"""Smoke test of ``bench/bench_browser.py``: its quick mode on a tiny store, one round of every case.

It checks the shape of what the benchmark returns (the ``bench/common.py``
contract) and that every contender measured something; never the times
themselves. The store (300 runs) and the screenshots go to a temporary
folder; the dashboard reads the session's demo workspace.
"""

from __future__ import annotations

import math

import pytest

from bench import bench_browser
from tests.browser import (  # noqa: F401 - the jp_* fixtures replace pytest-jupyter's for this module
    jp_asyncio_loop,
    jp_server_cleanup,
    require_chromium,
)

pytestmark = pytest.mark.slow
require_chromium(module=True)

RUNS = 300


def test_quick_mode_returns_every_case_with_a_positive_median_per_contender(demo_workspace, tmp_path):
    results = bench_browser.main(
        [
            "--quick",
            "--runs",
            str(RUNS),
            "--dashboard-runs",
            str(RUNS),
            "--cache-dir",
            str(tmp_path / "cache"),
            "--workspace",
            str(demo_workspace),
        ]
    )

    cases = {(r["benchmark"], r["case"]) for r in results}
    assert ("browser runs table", f"first rows, {RUNS} runs (from navigation)") in cases
    assert ("browser runs table", f"sort by {bench_browser.METRIC}, {RUNS} runs") in cases
    scroll = next(r for r in results if r["case"] == f"scroll, {RUNS} runs (95th-percentile frame)")
    # both tables moved under the wheel: rows further down were drawn (MLflow's UI holds 100 loaded runs)
    assert all(passed > 20 for passes in scroll["rows_passed"].values() for passed in passes), scroll
    assert set(scroll["longest_frame"]) == {bench_browser.MLFLOW, bench_browser.WB_PANEL}
    for slug in bench_browser.DASHBOARD_CONTENT:
        assert ("browser dashboard", f"{slug} page, {RUNS} runs (from navigation)") in cases
    assert len(results) == 3 + len(bench_browser.DASHBOARD_CONTENT)

    for res in results:
        assert res["unit"] == "s"
        assert set(res["median"]) == set(res["spread"]) == set(res["complete"]) == set(res["samples"])
        baseline, workbench = res["ratio_label"].split(" / ")
        assert {baseline, workbench} <= set(res["median"])
        for name, median in res["median"].items():
            assert median > 0, (res["case"], name)
            low, high = res["spread"][name]
            assert 0 < low <= median <= high
            assert res["samples"][name] == 1  # --quick: one round
            assert isinstance(res["complete"][name], bool)
        assert math.isfinite(res["ratio"]) and res["ratio"] > 0
        assert res["ratio_is_lower_bound"] is not res["complete"][baseline]

    screens = {p.name for p in (tmp_path / "cache" / "screens").glob("*.png")}
    assert {f"runs-{RUNS}-mlflow-first-rows.png", f"runs-{RUNS}-workbench-first-rows.png"} <= screens
    assert {f"dashboard-{slug}.png" for slug in bench_browser.DASHBOARD_CONTENT} <= screens
