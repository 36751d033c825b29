"""The Experiments page at scale, in a real browser: thousands of runs and a 1,000,000-point history.

The store is built by ``bench/make_runs_store.py`` (cached under
``bench/.cache``) and copied, then one run gets a metric history of one
million points. The runs table must page through the store from the server,
sort and filter every run (not just the page in view), and the long history
must reach the browser as an image, not as a million points.
"""

from __future__ import annotations

import math
import random
import shutil
import sqlite3

import panel as pn
import pytest
from playwright.sync_api import expect

from bench.make_runs_store import BASE_TIME_MS, StoreSpec, make_runs_store, sqlite_uri
from dashboards.app import serve
from tests.browser import (  # noqa: F401 - the jp_* fixtures replace pytest-jupyter's for this module
    RequestLog,
    jp_asyncio_loop,
    jp_server_cleanup,
    launch_chromium,
    open_page,
    require_chromium,
    screenshot,
)
from workbench import tracking
from workbench.config import load_settings

pytestmark = pytest.mark.slow
require_chromium(module=True)

RUNS = 5000
HISTORY_POINTS = 1_000_000
LOADED_MS = 60_000


@pytest.fixture(scope="module")
def big_store(tmp_path_factory):
    """A copy of a 5,000-run store; two runs get a ``loss`` history, one of them a million points long."""
    cached = make_runs_store(StoreSpec(runs=RUNS))
    path = tmp_path_factory.mktemp("big-store") / "mlflow.db"
    shutil.copyfile(cached, path)
    con = sqlite3.connect(path)
    long_run, short_run = (
        row[0]
        for row in con.execute(
            "SELECT run_uuid FROM runs WHERE lifecycle_stage = 'active' ORDER BY run_uuid LIMIT 2"
        ).fetchall()
    )
    rng = random.Random(1)
    with con:
        con.executemany(
            "INSERT INTO metrics (key, value, timestamp, step, is_nan, run_uuid) VALUES (?, ?, ?, ?, 0, ?)",
            (
                ("loss", math.exp(-step / 200_000) + 0.05 * rng.random(), BASE_TIME_MS + step, step, long_run)
                for step in range(HISTORY_POINTS)
            ),
        )
        con.executemany(
            "INSERT INTO metrics (key, value, timestamp, step, is_nan, run_uuid) VALUES (?, ?, ?, ?, 0, ?)",
            (("loss", 1.0 / (step + 1), BASE_TIME_MS + step, step * 100_000, short_run) for step in range(10)),
        )
    active = con.execute("SELECT count(*) FROM runs WHERE lifecycle_stage = 'active'").fetchone()[0]
    con.close()
    return path, long_run, short_run, active


@pytest.fixture(scope="module")
def stack(big_store, tmp_path_factory):
    path = big_store[0]
    settings = load_settings(tmp_path_factory.mktemp("big-workspace"), tracking_uri=sqlite_uri(path))
    assert settings.store_uri  # the fast SQL path answers the runs table
    dashboard = serve(settings, port=0, show=False, block=False, say=lambda _line: None)
    try:
        with launch_chromium() as browser:
            yield settings, dashboard, browser
    finally:
        dashboard.stop()
        pn.state.reset()


def _first_run_name(page) -> str:
    return page.locator('.tabulator-row .tabulator-cell[tabulator-field="run"]').first.inner_text()


def test_runs_table_pages_sorts_and_filters_over_thousands_of_runs(stack, big_store):
    settings, dashboard, browser = stack
    active = big_store[3]
    log = RequestLog()
    page = open_page(browser, log)
    page.goto(f"{dashboard.url}?page=experiments")
    position = page.locator("[data-testid=runs-position]")
    expect(position).to_contain_text(f"Runs 1–25 of {active:,}", timeout=LOADED_MS)
    expect(page.locator(".tabulator-row")).to_have_count(25)

    oracle = tracking.search_runs(settings, order_by="attributes.start_time DESC", max_results=25)
    second = tracking.search_runs(
        settings, order_by="attributes.start_time DESC", max_results=25, page_token=oracle.next_page_token
    )
    assert _first_run_name(page) == oracle.runs[0].run_name
    page.get_by_role("button", name="Next →").click()
    expect(position).to_contain_text(f"Runs 26–50 of {active:,} · page 2")
    expect(page.locator('.tabulator-cell[tabulator-field="run"]').first).to_have_text(second.runs[0].run_name)
    page.get_by_role("button", name="← Previous").click()
    expect(position).to_contain_text("Runs 1–25")
    expect(page.locator('.tabulator-cell[tabulator-field="run"]').first).to_have_text(oracle.runs[0].run_name)

    # sorting applies to every run in the store, not only the page in view
    page.get_by_label("Sort by").select_option(label="metrics.m0")
    page.get_by_label("Order", exact=True).select_option(label="Ascending")
    lowest = tracking.search_runs(settings, order_by="metrics.`m0` ASC", max_results=1).runs[0]
    expect(page.locator('.tabulator-cell[tabulator-field="run"]').first).to_have_text(lowest.run_name)
    expect(page.locator('.tabulator-cell[tabulator-field="m0"]').first).to_have_text(f"{lowest.metrics['m0']:.4g}")

    filter_box = page.get_by_label("Filter (MLflow syntax)")
    filter_box.fill("params.p0 = 'rf'")
    filter_box.press("Enter")
    expect(position).to_contain_text("Runs 1–25 · page 1", timeout=LOADED_MS)
    cells = page.locator('.tabulator-cell[tabulator-field="params.p0"]')
    expect(cells).to_have_count(25)
    assert set(cells.all_inner_texts()) == {"rf"}
    screenshot(page, "dashboard-experiments-5000-runs")
    assert log.outside == []
    page.context.close()


_LONGEST_COLUMN = """() => {
  let longest = 0;
  for (const doc of Bokeh.documents)
    for (const model of doc.all_models)
      if (model.data) for (const column of Object.values(model.data))
        if (column && column.length !== undefined) longest = Math.max(longest, column.length);
  return longest;
}"""


def test_a_million_point_history_is_rasterized_not_sent_point_by_point(stack, big_store):
    _settings, dashboard, browser = stack
    _path, long_run, short_run, _active = big_store
    log = RequestLog()
    page = open_page(browser, log)
    page.goto(f"{dashboard.url}?page=experiments")
    expect(page.locator("[data-testid=runs-position]")).to_contain_text("Runs 1–25", timeout=LOADED_MS)
    filter_box = page.get_by_label("Filter (MLflow syntax)")
    filter_box.fill(f"attributes.run_id IN ('{long_run}', '{short_run}')")
    filter_box.press("Enter")
    # the search runs beside the first page's curves and parallel plot, in this (busy) test process
    expect(page.locator("[data-testid=runs-position]")).to_contain_text("Runs 1–2 of 2", timeout=LOADED_MS)
    note = page.locator("[data-testid=curves-note]")
    expect(note).to_have_attribute("data-rasterized", "true", timeout=LOADED_MS)
    expect(note).to_contain_text(f"{HISTORY_POINTS + 10:,} points, rasterized on the server (datashader)")
    expect(page.get_by_label("Metric", exact=True)).to_have_value("loss")
    page.wait_for_timeout(1500)  # let the image arrive
    longest = page.evaluate(_LONGEST_COLUMN)
    assert 0 < longest < 10_000, f"a data column of {longest} values reached the browser"
    screenshot(page, "dashboard-experiments-rasterized")
    assert log.outside == []
    page.context.close()
