"""Browser timings in headless Chromium: runs table first rows and sort, and dashboard pages' first content.

Every measurement opens a fresh Playwright browser context (empty cache,
empty local storage: a cold visit, for every contender alike) on servers that
stay up across rounds; the rounds alternate the contenders (AB..., then ...BA)
like :func:`bench.common.alternate`. Before the rounds each page is loaded
once, untimed, so that the servers have done their imports. Every wait is
capped at ``--ui-timeout`` seconds: a wait that runs out is reported as that
timeout, a lower bound (``complete=False``, ``>`` in the table, ``>=`` ratio).
Times are Python's ``perf_counter`` around Playwright calls that wait for an
element to become visible (checked every animation frame).

Runs UI (``--runs``, default 10,000 and 100,000 runs in one experiment; the
store is ``make_runs_store(StoreSpec(runs=N, experiments=1))``): one lean
``mlflow server`` serves the store, a real Jupyter server with the Workbench
extension runs over it (``MLFLOW_TRACKING_URI`` = that server,
``WORKBENCH_STORE_URI`` = the SQLite file, i.e. the fast read path, as in
``bench_runs.py``).

- first rows, from navigation. MLflow UI: from ``page.goto(<mlflow>/#/experiments/<id>/runs)``
  (the experiment's "Training runs" page; ``#/experiments/<id>`` alone opens the
  GenAI overview, which has no runs table) until its first ag-grid row is
  visible. Workbench: from ``page.goto(<jupyter>/lab?reset)`` until the first
  row of the Experiments panel is visible, the panel being opened by a click
  on its sidebar tab as soon as that tab shows. So Workbench's figure
  includes JupyterLab's whole page load; it is also reported on its own
  ("jupyterlab to sidebar tab", navigation -> tab visible) with the rest
  ("panel rows after tab", tab visible -> rows). The panel starts loading its
  data while hidden during JupyterLab's start, so a click on an already
  loaded JupyterLab is not a fair start point: that is why both contenders
  are timed from navigation. Ratio: MLflow UI / Workbench in JupyterLab.
- sort by a metric (``m1``, descending), on the page just loaded, once it
  has made no data request (fetch/XHR) for 0.5 s (at most 5 s). MLflow UI: from the click on ``m1`` in the "Sort" menu
  (the menu opened beforehand, untimed) until the first row of the table is a
  run holding the experiment's highest ``m1``. Workbench: from the click on
  the ``m1`` column header of the panel until the same holds. The expected
  runs are read from the store with SQL and cross-checked against
  Workbench's REST API, so neither check can pass on the wrong rows. A sort
  that runs out of time restarts the MLflow server (its one worker is still
  busy) and is not asked again at that size. Ratio: MLflow UI / Workbench.
- scroll, on the page just loaded (quiet network), before the sort: with the
  pointer over the first row, ``SCROLL_STEPS`` wheel events of ``SCROLL_PX``
  px, one every ``SCROLL_GAP_MS`` ms; then back to the top (until the first
  row is drawn again). Figure: the 95th-percentile interval between
  animation frames during the gesture (``requestAnimationFrame`` times in the
  page); also the longest frame, and the rows passed (ARIA row index of the
  furthest row drawn, minus the first's). MLflow's UI stops at its 100 loaded
  runs; the panel loads the next page of 100 as it nears the end of what it
  holds. Ratio: MLflow UI / Workbench.

MLflow's UI opens its assistant side panel on a first visit; its pages start
with the local-storage flags of a user who closed it (as a returning user
has). Outside requests are aborted for every page (none is needed).

Dashboard (``--dashboard-runs``, default 10,000): ``workbench dashboard`` (a
process on loopback) over a workspace holding data (the demo workspace, built
once by ``workbench demo`` and cached, unless ``--workspace``) with its
tracking store = a copy of the N-run store with one registered model (two
versions, ``@champion``), through the same lean MLflow server (and the fast
read path). For each page, one navigation to ``?page=<slug>`` gives:

- "template paint": navigation -> the Bootstrap template's header is visible
  (the server has built the session and the browser painted the bare
  template: the least any Panel page costs);
- "first content": navigation -> the page's first piece of real data is
  visible (overview: the best-run-per-experiment table, which reads every
  run; data: the tracked-outputs table; experiments: the first runs table
  row; registry: the registered-models table; gpus: a GPU card);
- "all sections": navigation -> no section still shows its loading note.

For the experiments and registry pages MLflow's UI has an equivalent page on
the same server, timed the same way (runs page first row; registered models
first row); it is their baseline: ratio = MLflow UI / first content (> 1:
the dashboard shows its data sooner). For overview, data and gpus there is no
equivalent; the baseline is the template paint, and the ratio = template paint
/ first content: the share of the wait that is Panel's own page load (1.0:
the data shows the moment the empty page does; 0.5: the data takes as long
again as the page itself).

Screenshots from the first round go to ``<cache-dir>/screens`` (or
``--screens``): each runs UI at first rows and after the sort, each dashboard
page once its sections have loaded, MLflow's equivalent pages at first row.
All servers bind 127.0.0.1, start side by side, and are stopped by PID (their
process groups) at the end, also on error.

``--quick`` is a smoke run: 10,000 runs only (or ``--runs``), one round, 30 s
timeouts, no warm-up loads.

    python bench/bench_browser.py [--runs 10000 100000] [--rounds 3] [--ui-timeout 90] [--quick]
        [--dashboard-runs 10000] [--parts runs dashboard] [--workspace DIR] [--cache-dir bench/.cache]
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import os
import re
import shutil
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repo root: tests.*, bench.*

import requests

from bench import common
from bench.bench_runs import jupyter_server
from bench.make_runs_store import DEFAULT_CACHE, StoreSpec, make_runs_store, sqlite_uri
from tests.browser import RequestLog, launch_chromium, open_page
from tests.servers import JupyterServer, MlflowServer, free_port, stop_process_group

METRIC = "m1"
MODEL = "bench-model"
VENV_BIN = Path(sys.executable).parent

MLFLOW = "mlflow UI"
WB_LAB = "workbench in JupyterLab"
LAB_LOAD = "jupyterlab to sidebar tab"
PANEL_ROWS = "panel rows after tab"
WB_PANEL = "workbench panel"
TEMPLATE = "template paint"
CONTENT = "first content"
ALL_SECTIONS = "all sections"

# page slug -> the selector of its first real content
DASHBOARD_CONTENT = {
    "overview": "[data-testid=best-runs] tbody tr",
    "data": "[data-testid=tracked] tbody tr",
    "experiments": ".tabulator-row",
    "registry": "[data-testid=models] tbody tr",
    "gpus": "[data-testid=gpu-card]",
}
# page slug -> (contender name, MLflow UI route, its first row) for pages MLflow's UI has too
MLFLOW_EQUIVALENT = {
    "experiments": ("mlflow UI runs page", "#/experiments/{experiment}/runs", ".ag-center-cols-container .ag-row"),
    "registry": ("mlflow UI models page", "#/models", "[data-testid=model-list-table] a[href^='#/models/']"),
}
MLFLOW_ROWS = ".ag-center-cols-container .ag-row"
WB_ROWS = "#workbench-experiments .jp-wb-Table-row"
# the scroll gesture: wheel events of SCROLL_PX pixels every SCROLL_GAP_MS, over the table
SCROLL_STEPS = 90
SCROLL_PX = 120
SCROLL_GAP_MS = 16
# records the time of every animation frame until window.__wbStopFrames() returns them
FRAME_RECORDER = """() => {
  const frames = [];
  let recording = true;
  const tick = t => { if (recording) { frames.push(t); requestAnimationFrame(tick); } };
  requestAnimationFrame(tick);
  window.__wbStopFrames = () => { recording = false; return frames; };
}"""
# the ARIA row indexes of the rows drawn (MLflow's ag-grid and the panel both set them): [first, last]
ROWS_DRAWN = """selector => { const at = Array.from(document.querySelectorAll(selector),
  row => Number(row.getAttribute('aria-rowindex'))).filter(i => i > 0);
  return at.length ? [Math.min(...at), Math.max(...at)] : [0, 0]; }"""
# MLflow's UI opens its assistant side panel on a first visit; a returning user has closed it.
MLFLOW_RETURNING_USER = (
    "localStorage.setItem('mlflow.assistant.fab.autoOpenedOnFirstLoad_v1', 'true');"
    "localStorage.setItem('mlflow.assistant.panelOpen_v1', 'false');"
)


@dataclass
class Options:
    rounds: int
    ui_timeout: float
    cache_dir: Path
    screens: Path
    workspace: Path | None
    warm_up: bool = True


@dataclass
class Timing:
    seconds: float
    complete: bool = True


class Samples:
    """Seconds per contender, and whether every one of them finished in time."""

    def __init__(self, *names: str) -> None:
        self.seconds: dict[str, list[float]] = {name: [] for name in names}
        self.complete: dict[str, bool] = {name: True for name in names}

    def add(self, name: str, timing: Timing) -> None:
        self.seconds[name].append(timing.seconds)
        self.complete[name] = self.complete[name] and timing.complete

    def result(self, benchmark: str, case: str, *, baseline: str, workbench: str, **extra: Any) -> dict[str, Any]:
        measured = {name: values for name, values in self.seconds.items() if values}
        done = {name: self.complete[name] for name in measured}
        return common.result(benchmark, case, measured, baseline=baseline, workbench=workbench, complete=done, **extra)


# ----------------------------------------------------------------------------- browser helpers


class Clock:
    """Seconds since a start, and what is left of a timeout."""

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self.start = time.perf_counter()

    def elapsed(self) -> float:
        return time.perf_counter() - self.start

    def left_ms(self) -> float:
        return max(1.0, (self.timeout - self.elapsed()) * 1000)

    def wait(self, wait: Callable[[float], object]) -> Timing:
        """Run ``wait(timeout_ms)``; the seconds since the start, or the timeout when it ran out."""
        from playwright.sync_api import TimeoutError as PlaywrightTimeout

        try:
            wait(self.left_ms())
        except PlaywrightTimeout:
            return Timing(self.timeout, complete=False)
        return Timing(self.elapsed())


class Traffic:
    """Counts a page's data requests (fetch, XHR) in flight, to wait until its network is quiet.

    Scripts, styles and workers are left out: a worker script can stay "in
    flight" for the page's whole life (MLflow's UI has one).
    """

    DATA = ("fetch", "xhr")

    def __init__(self, page: Any) -> None:
        self.page = page
        self.in_flight = 0
        self.last = time.perf_counter()
        page.on("request", self._started)
        page.on("requestfinished", self._ended)
        page.on("requestfailed", self._ended)

    def _started(self, request: Any) -> None:
        if request.resource_type in self.DATA:
            self.in_flight += 1
            self.last = time.perf_counter()

    def _ended(self, request: Any) -> None:
        if request.resource_type in self.DATA:
            self.in_flight = max(0, self.in_flight - 1)
            self.last = time.perf_counter()

    def settle(self, quiet: float = 0.5, cap: float = 5.0) -> None:
        """Wait until no data request was in flight for ``quiet`` seconds (at most ``cap`` seconds)."""
        deadline = time.perf_counter() + cap
        while time.perf_counter() < deadline:
            if self.in_flight == 0 and time.perf_counter() - self.last >= quiet:
                return
            self.page.wait_for_timeout(50)


@contextlib.contextmanager
def fresh_page(browser: Any, init_script: str | None = None) -> Iterator[tuple[Any, Traffic]]:
    """A page in a new browser context (cold cache, empty storage), closed afterwards."""
    page = open_page(browser, RequestLog())
    if init_script:
        page.context.add_init_script(init_script)
    try:
        yield page, Traffic(page)
    finally:
        page.context.close()


def _shoot(page: Any, screens: Path | None, name: str) -> None:
    if screens is not None:
        screens.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(screens / f"{name}.png"))


def _first_row_in(selector: str, attribute: str) -> str:
    """A JS predicate: the first element matching ``selector`` has ``attribute`` among ``ids``."""
    return (
        f"ids => {{ const row = document.querySelector({json.dumps(selector)});"
        f" return !!row && ids.includes(row.getAttribute({json.dumps(attribute)})); }}"
    )


@dataclass
class Scroll:
    """One scroll gesture: the slowest frames while it ran, and how far down the table it got."""

    p95_frame: Timing
    longest_frame: float
    rows_passed: int


def scroll_gesture(page: Any, rows: str, timeout: float, shots: Path | None, name: str) -> Scroll:
    """Wheel-scroll the table whose rows match ``rows`` (pointer over its first row), then back to the top.

    The 95th-percentile interval between animation frames during the gesture
    is how smooth it felt: 16.7 ms is every frame at 60 Hz; a table that
    redraws too much, or blocks the main thread to load a page, shows here.
    """
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    box = page.locator(rows).first.bounding_box(timeout=timeout * 1000)
    top, _ = page.evaluate(ROWS_DRAWN, rows)
    if box is None or not top:
        raise RuntimeError(f"no table rows with an ARIA row index under {rows!r} to scroll")
    # near the row's left end: a row can be wider than its table's visible part (the panel's is)
    x, y = box["x"] + min(60, box["width"] / 2), box["y"] + box["height"] / 2
    if not page.evaluate("([x, y, rows]) => !!document.elementFromPoint(x, y)?.closest(rows)", [x, y, rows]):
        raise RuntimeError(f"the point ({x}, {y}) is not over a row of {rows!r}: the wheel would scroll something else")
    page.mouse.move(x, y)
    page.evaluate(FRAME_RECORDER)
    for _ in range(SCROLL_STEPS):
        page.mouse.wheel(0, SCROLL_PX)
        page.wait_for_timeout(SCROLL_GAP_MS)
    frames = page.evaluate("() => window.__wbStopFrames()")
    _, furthest = page.evaluate(ROWS_DRAWN, rows)
    _shoot(page, shots, name)
    intervals = sorted(later - earlier for earlier, later in itertools.pairwise(frames))
    page.mouse.wheel(0, -SCROLL_STEPS * SCROLL_PX * 10)  # back to the top for what follows
    with contextlib.suppress(PlaywrightTimeout):
        page.wait_for_function(f"selector => ({ROWS_DRAWN})(selector)[0] === {top}", arg=rows, timeout=timeout * 1000)
    if not intervals:
        return Scroll(Timing(timeout, complete=False), timeout, furthest - top)
    p95 = intervals[round(0.95 * (len(intervals) - 1))] / 1000
    return Scroll(Timing(p95), intervals[-1] / 1000, furthest - top)


# ----------------------------------------------------------------------------- servers


@contextlib.contextmanager
def _environ(**values: str) -> Iterator[None]:
    """Set environment variables for the block (child processes started in it inherit them)."""
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def lab_environment(folder: Path) -> dict[str, str]:
    """The environment the Jupyter servers start with: JupyterLab settings and workspaces of their own
    (no "Jupyter news?" toast, no saved layout) and no GPU sampling.

    Set for the whole run (``_environ``), before any server starts: ``bench_runs.jupyter_server``
    takes its environment from this process's.
    """
    notification = folder / "settings" / "@jupyterlab" / "apputils-extension" / "notification.jupyterlab-settings"
    notification.parent.mkdir(parents=True, exist_ok=True)
    notification.write_text(json.dumps({"fetchNews": "false"}))
    return {
        "JUPYTERLAB_SETTINGS_DIR": str(folder / "settings"),
        "JUPYTERLAB_WORKSPACES_DIR": str(folder / "workspaces"),
        "WORKBENCH_GPU_SOURCE": "none",
        "MLFLOW_DISABLE_TELEMETRY": "true",
    }


class Dashboard:
    """A ``workbench dashboard`` process on loopback, stopped by PID (its process group)."""

    def __init__(self, folder: Path, workspace: Path, tracking_uri: str, store_uri: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        env = dict(
            os.environ,
            MLFLOW_TRACKING_URI=tracking_uri,
            MLFLOW_REGISTRY_URI=tracking_uri,
            WORKBENCH_STORE_URI=store_uri,
            MLFLOW_DISABLE_TELEMETRY="true",
        )
        self.log_path = folder / "dashboard.log"
        self._log = open(self.log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [
                str(VENV_BIN / "workbench"),
                "dashboard",
                "--workspace",
                str(workspace),
                "--address",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--gpu-source",
                "simulated",
            ],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                self.stop()
                raise RuntimeError(f"workbench dashboard exited: {self.log_path.read_text(errors='replace')[-2000:]}")
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port), timeout=1):
                return
            time.sleep(0.3)
        self.stop()
        raise RuntimeError("workbench dashboard did not listen in 90 s")

    def stop(self) -> None:
        stop_process_group(self.proc)
        self._log.close()


def demo_workspace(cache_dir: Path) -> Path:
    """The demo workspace (``workbench demo``), built once under ``cache_dir``."""
    folder = cache_dir / "demo-workspace"
    ready = folder / ".bench-ready"
    if ready.exists():
        return folder
    shutil.rmtree(folder, ignore_errors=True)
    cache_dir.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, MLFLOW_DISABLE_TELEMETRY="true")
    env.pop("MLFLOW_TRACKING_URI", None)
    done = subprocess.run(
        [str(VENV_BIN / "workbench"), "demo", "--no-launch", "--dir", str(folder)],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
    )
    if done.returncode != 0:
        raise RuntimeError(f"workbench demo failed: {done.stdout[-2000:]}{done.stderr[-2000:]}")
    ready.write_text("built by bench/bench_browser.py\n")
    return folder


def _register_model(db: Path) -> None:
    """A registered model with two versions from the store's best runs by ``m0``, v2 as ``@champion``."""
    from mlflow import MlflowClient

    con = sqlite3.connect(db)
    try:
        best = con.execute(
            "SELECT r.run_uuid, r.artifact_uri FROM runs r JOIN latest_metrics m"
            " ON m.run_uuid = r.run_uuid AND m.key = 'm0' AND m.is_nan = 0"
            " WHERE r.lifecycle_stage = 'active' AND r.status = 'FINISHED' ORDER BY m.value DESC LIMIT 2"
        ).fetchall()
    finally:
        con.close()
    client = MlflowClient(tracking_uri=sqlite_uri(db), registry_uri=sqlite_uri(db))
    client.create_registered_model(MODEL, description="registered by bench_browser.py")
    for run_id, artifact_uri in reversed(best):
        client.create_model_version(MODEL, f"{artifact_uri}/model", run_id=run_id)
    client.set_registered_model_alias(MODEL, "champion", "2")


class Stack:
    """One N-run store behind one lean ``mlflow server``, and the Workbench servers over it.

    ``with Stack(...)`` starts the servers the phases need side by side (MLflow,
    Jupyter for the runs UI, the dashboard) and stops every one on the way out.
    """

    def __init__(self, runs: int, opts: Options, workdir: Path, *, runs_ui: bool, dashboard: Path | None) -> None:
        self.runs = runs
        self.opts = opts
        self.runs_ui = runs_ui
        self.workspace = dashboard
        self.folder = workdir / f"stack-{runs}"
        self.folder.mkdir(parents=True)
        cached = make_runs_store(StoreSpec(runs=runs, experiments=1), opts.cache_dir)
        if dashboard is not None:  # the registry page needs a model; the cached store stays as it is
            self.db = self.folder / "mlflow.db"
            shutil.copyfile(cached, self.db)
            _register_model(self.db)
        else:
            self.db = cached
        self.experiment_id, self.experiment_runs = self._main_experiment()
        self.mlflow = MlflowServer(self.folder / "mlflow", db_uri=sqlite_uri(self.db))
        self.jupyter: JupyterServer | None = None
        self.dashboard: Dashboard | None = None

    def __enter__(self) -> Stack:
        try:
            with ThreadPoolExecutor(max_workers=2) as pool:
                started = [pool.submit(self.mlflow.start)]
                if self.runs_ui:
                    started.append(pool.submit(self._start_jupyter))
                if self.workspace is not None:
                    self.dashboard = Dashboard(self.folder, self.workspace, self.mlflow.uri, sqlite_uri(self.db))
                for future in started:
                    future.result()
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        for server in (self.dashboard, self.jupyter, self.mlflow):
            if server is not None:
                with contextlib.suppress(Exception):
                    server.stop()

    def _start_jupyter(self) -> None:
        folder = self.folder / "jupyter"
        folder.mkdir()
        self.jupyter = jupyter_server(folder, self.mlflow.uri, sqlite_uri(self.db))

    def _main_experiment(self) -> tuple[str, int]:
        con = sqlite3.connect(f"file:{self.db}?mode=ro", uri=True)
        try:
            experiment, count = con.execute(
                "SELECT experiment_id, count(*) FROM runs WHERE lifecycle_stage = 'active'"
                " GROUP BY experiment_id ORDER BY count(*) DESC LIMIT 1"
            ).fetchone()
        finally:
            con.close()
        return str(experiment), int(count)

    def top_runs(self) -> list[str]:
        """The runs holding the experiment's highest ``METRIC`` (ties: any of them may come first)."""
        con = sqlite3.connect(f"file:{self.db}?mode=ro", uri=True)
        try:
            where = (
                "FROM latest_metrics m JOIN runs r ON r.run_uuid = m.run_uuid"
                " WHERE r.experiment_id = ? AND r.lifecycle_stage = 'active' AND m.key = ? AND m.is_nan = 0"
            )
            args = (int(self.experiment_id), METRIC)
            (best,) = con.execute(f"SELECT max(m.value) {where}", args).fetchone()
            return [row[0] for row in con.execute(f"SELECT m.run_uuid {where} AND m.value = ?", (*args, best))]
        finally:
            con.close()

    def restart_mlflow(self) -> None:
        """After an abandoned request its one worker is still busy: start it afresh (same port)."""
        self.mlflow.stop()
        self.mlflow.start()


# ----------------------------------------------------------------------------- runs UI


def _check_not_sorted_yet(page: Any, selector: str, attribute: str, top: list[str], ui: str) -> None:
    first = page.locator(selector).first.get_attribute(attribute)
    if first in top:
        raise RuntimeError(
            f"{ui}: the newest run already holds the highest {METRIC}: the sort check would pass unsorted"
        )


def mlflow_runs(
    browser: Any, stack: Stack, top: list[str], *, sort: bool, shots: Path | None
) -> tuple[dict[str, Timing], Scroll | None]:
    """MLflow UI: navigation -> first rows; a scroll gesture; then a click on ``METRIC`` in its Sort menu."""
    timeout = stack.opts.ui_timeout
    url = f"{stack.mlflow.uri}/#/experiments/{stack.experiment_id}/runs"
    times: dict[str, Timing] = {}
    with fresh_page(browser, MLFLOW_RETURNING_USER) as (page, traffic):
        clock = Clock(timeout)
        page.goto(url, wait_until="commit", timeout=clock.left_ms())
        rows = page.locator(MLFLOW_ROWS).first
        times["rows"] = clock.wait(lambda ms: rows.wait_for(state="visible", timeout=ms))
        if not times["rows"].complete:
            return times, None
        _shoot(page, shots, f"runs-{stack.runs}-mlflow-first-rows")
        traffic.settle()
        scroll = scroll_gesture(page, MLFLOW_ROWS, timeout, shots, f"runs-{stack.runs}-mlflow-scrolled")
        if not sort:
            return times, scroll
        first = f'{MLFLOW_ROWS}[row-index="0"]'
        _check_not_sorted_yet(page, first, "row-id", top, MLFLOW)
        page.get_by_test_id("sort-select-dropdown").click(timeout=timeout * 1000)
        item = page.get_by_test_id(f"sort-select-{METRIC}")
        item.wait_for(state="visible", timeout=timeout * 1000)
        clock = Clock(timeout)

        def sort_table(ms: float) -> None:
            item.click(timeout=ms)
            page.wait_for_function(_first_row_in(first, "row-id"), arg=top, timeout=clock.left_ms())

        times["sort"] = clock.wait(sort_table)
        if times["sort"].complete:
            _shoot(page, shots, f"runs-{stack.runs}-mlflow-sorted")
    return times, scroll


def workbench_runs(
    browser: Any, stack: Stack, top: list[str], *, sort: bool, shots: Path | None
) -> tuple[dict[str, Timing], Scroll | None]:
    """Workbench: navigation to JupyterLab -> click the Experiments tab when it shows -> first rows; scroll; sort."""
    jupyter = stack.jupyter
    assert jupyter is not None
    timeout = stack.opts.ui_timeout
    times: dict[str, Timing] = {}
    with fresh_page(browser) as (page, traffic):
        clock = Clock(timeout)
        page.goto(f"{jupyter.url}/lab?reset&token={jupyter.token}", wait_until="commit", timeout=clock.left_ms())
        tab = page.locator('.jp-SideBar li[data-id="workbench-experiments"]')
        times["tab"] = clock.wait(lambda ms: tab.wait_for(state="visible", timeout=ms))
        if not times["tab"].complete:
            times["rows"] = times["tab"]
            return times, None
        rows = page.locator(WB_ROWS)

        def open_panel(ms: float) -> None:
            tab.click(timeout=ms)
            rows.first.wait_for(state="visible", timeout=clock.left_ms())

        times["rows"] = clock.wait(open_panel)
        if not times["rows"].complete:
            return times, None
        _shoot(page, shots, f"runs-{stack.runs}-workbench-first-rows")
        traffic.settle()
        scroll = scroll_gesture(page, WB_ROWS, timeout, shots, f"runs-{stack.runs}-workbench-scrolled")
        if not sort:
            return times, scroll
        traffic.settle()
        _check_not_sorted_yet(page, WB_ROWS, "data-run-id", top, "Workbench")
        header = page.locator("#workbench-experiments button.jp-wb-Table-sort", has_text=re.compile(rf"^{METRIC}$"))
        header.scroll_into_view_if_needed(timeout=timeout * 1000)
        clock = Clock(timeout)

        def sort_panel(ms: float) -> None:
            header.click(timeout=ms)
            page.wait_for_function(_first_row_in(WB_ROWS, "data-run-id"), arg=top, timeout=clock.left_ms())

        times["sort"] = clock.wait(sort_panel)
        if times["sort"].complete:
            _shoot(page, shots, f"runs-{stack.runs}-workbench-sorted")
    return times, scroll


def _expected_top(stack: Stack) -> list[str]:
    """The store's best runs by ``METRIC`` (SQL), checked against Workbench's REST API."""
    top = stack.top_runs()
    jupyter = stack.jupyter
    assert jupyter is not None
    answer = requests.get(
        f"{jupyter.url}/workbench/api/runs",
        params={"experiment": stack.experiment_id, "order_by": f"metrics.{METRIC} DESC", "max_results": 1},
        headers=jupyter.headers,
        timeout=600,
    )
    answer.raise_for_status()
    first = answer.json()["runs"][0]["run_id"]
    if first not in top:
        raise RuntimeError(f"Workbench's REST API and the store disagree on the best run by {METRIC}")
    return top


def bench_runs_ui(browser: Any, stack: Stack) -> list[dict[str, Any]]:
    opts = stack.opts
    top = _expected_top(stack)
    if opts.warm_up:
        _say(f"runs UI, {stack.runs:,} runs: warming up")
        mlflow_runs(browser, stack, top, sort=False, shots=None)
        workbench_runs(browser, stack, top, sort=False, shots=None)

    first_rows = Samples(MLFLOW, WB_LAB, LAB_LOAD, PANEL_ROWS)
    sorting = Samples(MLFLOW, WB_PANEL)
    scrolling = Samples(MLFLOW, WB_PANEL)
    scrolled: dict[str, list[Scroll]] = {MLFLOW: [], WB_PANEL: []}

    def took(name: str, scroll: Scroll | None) -> None:
        if scroll is not None:
            scrolling.add(name, scroll.p95_frame)
            scrolled[name].append(scroll)

    def mlflow(shots: Path | None) -> None:
        times, scroll = mlflow_runs(browser, stack, top, sort=sorting.complete[MLFLOW], shots=shots)
        first_rows.add(MLFLOW, times["rows"])
        took(MLFLOW, scroll)
        if "sort" in times:
            sorting.add(MLFLOW, times["sort"])
        if not all(t.complete for t in times.values()):
            stack.restart_mlflow()

    def workbench(shots: Path | None) -> None:
        times, scroll = workbench_runs(browser, stack, top, sort=True, shots=shots)
        first_rows.add(WB_LAB, times["rows"])
        first_rows.add(LAB_LOAD, times["tab"])
        if times["tab"].complete:
            rows = times["rows"]
            first_rows.add(PANEL_ROWS, Timing(max(0.0, rows.seconds - times["tab"].seconds), rows.complete))
        took(WB_PANEL, scroll)
        if "sort" in times:
            sorting.add(WB_PANEL, times["sort"])

    _alternate({MLFLOW: mlflow, WB_PANEL: workbench}, opts, f"runs UI, {stack.runs:,} runs")
    common_extra = {"runs": stack.runs, "experiment_runs": stack.experiment_runs}
    return [
        first_rows.result(
            "browser runs table",
            f"first rows, {stack.runs:,} runs (from navigation)",
            baseline=MLFLOW,
            workbench=WB_LAB,
            measures={
                MLFLOW: "goto #/experiments/<id>/runs -> first table row visible",
                WB_LAB: "goto /lab -> click Experiments tab when shown -> first panel row visible",
                LAB_LOAD: "goto /lab -> Experiments sidebar tab visible",
                PANEL_ROWS: "Experiments sidebar tab visible -> first panel row visible",
            },
            **common_extra,
        ),
        sorting.result(
            "browser runs table",
            f"sort by {METRIC}, {stack.runs:,} runs",
            baseline=MLFLOW,
            workbench=WB_PANEL,
            measures={
                MLFLOW: f"click '{METRIC}' in the Sort menu -> first row holds the highest {METRIC}",
                WB_PANEL: f"click the '{METRIC}' column header -> first row holds the highest {METRIC}",
            },
            **common_extra,
        ),
        scrolling.result(
            "browser runs table",
            f"scroll, {stack.runs:,} runs (95th-percentile frame)",
            baseline=MLFLOW,
            workbench=WB_PANEL,
            measures={
                name: f"{SCROLL_STEPS} wheel events of {SCROLL_PX} px every {SCROLL_GAP_MS} ms over the table"
                " -> 95th-percentile interval between animation frames"
                for name in (MLFLOW, WB_PANEL)
            },
            longest_frame={name: max(s.longest_frame for s in done) for name, done in scrolled.items() if done},
            rows_passed={name: [s.rows_passed for s in done] for name, done in scrolled.items() if done},
            **common_extra,
        ),
    ]


# ----------------------------------------------------------------------------- dashboard


def dashboard_page(browser: Any, dashboard: Dashboard, slug: str, timeout: float, shots: Path | None) -> dict:
    """One navigation to ``?page=<slug>``: template paint, first content, all sections loaded."""
    times: dict[str, Timing] = {}
    content = DASHBOARD_CONTENT[slug]
    with fresh_page(browser) as (page, _traffic):
        clock = Clock(timeout)
        page.goto(f"{dashboard.url}?page={slug}", wait_until="commit", timeout=clock.left_ms())
        times[TEMPLATE] = clock.wait(lambda ms: page.locator("#header").first.wait_for(state="visible", timeout=ms))
        found = page.locator(f"{content}, [data-testid=error-banner]").first
        times[CONTENT] = clock.wait(lambda ms: found.wait_for(state="visible", timeout=ms))
        if not times[CONTENT].complete:
            return times
        if page.locator(content).count() == 0:
            message = page.locator("[data-testid=error-banner]").first.text_content()
            raise RuntimeError(f"dashboard page {slug} shows an error instead of its content: {message}")

        def loaded(ms: float) -> None:
            page.locator("[data-testid=loading]").first.wait_for(state="detached", timeout=ms)
            page.locator(".pn-loading").first.wait_for(state="detached", timeout=clock.left_ms())

        times[ALL_SECTIONS] = clock.wait(loaded)
        _shoot(page, shots, f"dashboard-{slug}")
    return times


def mlflow_page(browser: Any, stack: Stack, slug: str, shots: Path | None) -> Timing:
    """MLflow UI's page equivalent to a dashboard page: navigation -> its first row visible."""
    _name, route, row = MLFLOW_EQUIVALENT[slug]
    url = f"{stack.mlflow.uri}/{route.format(experiment=stack.experiment_id)}"
    with fresh_page(browser, MLFLOW_RETURNING_USER) as (page, _traffic):
        clock = Clock(stack.opts.ui_timeout)
        page.goto(url, wait_until="commit", timeout=clock.left_ms())
        timing = clock.wait(lambda ms: page.locator(row).first.wait_for(state="visible", timeout=ms))
        if timing.complete:
            _shoot(page, shots, f"dashboard-{slug}-mlflow")
    return timing


def bench_dashboard(browser: Any, stack: Stack) -> list[dict[str, Any]]:
    opts = stack.opts
    dashboard = stack.dashboard
    assert dashboard is not None
    if opts.warm_up:
        _say(f"dashboard, {stack.runs:,} runs: warming up")
        for slug in DASHBOARD_CONTENT:
            dashboard_page(browser, dashboard, slug, max(opts.ui_timeout, 60), None)
    samples = {slug: Samples(TEMPLATE, CONTENT, ALL_SECTIONS) for slug in DASHBOARD_CONTENT}
    for slug, (name, _route, _row) in MLFLOW_EQUIVALENT.items():
        samples[slug] = Samples(name, TEMPLATE, CONTENT, ALL_SECTIONS)

    def page_of(slug: str) -> Callable[[Path | None], None]:
        def measure(shots: Path | None) -> None:
            for name, timing in dashboard_page(browser, dashboard, slug, opts.ui_timeout, shots).items():
                samples[slug].add(name, timing)

        return measure

    def mlflow_of(slug: str) -> Callable[[Path | None], None]:
        def measure(shots: Path | None) -> None:
            timing = mlflow_page(browser, stack, slug, shots)
            samples[slug].add(MLFLOW_EQUIVALENT[slug][0], timing)
            if not timing.complete:
                stack.restart_mlflow()

        return measure

    contenders = {f"dashboard {slug}": page_of(slug) for slug in DASHBOARD_CONTENT}
    contenders |= {f"mlflow {slug}": mlflow_of(slug) for slug in MLFLOW_EQUIVALENT}
    _alternate(contenders, opts, f"dashboard, {stack.runs:,} runs")
    results = []
    for slug, sample in samples.items():
        baseline = MLFLOW_EQUIVALENT[slug][0] if slug in MLFLOW_EQUIVALENT else TEMPLATE
        results.append(
            sample.result(
                "browser dashboard",
                f"{slug} page, {stack.runs:,} runs (from navigation)",
                baseline=baseline,
                workbench=CONTENT,
                runs=stack.runs,
                content_selector=DASHBOARD_CONTENT[slug],
            )
        )
    return results


# ----------------------------------------------------------------------------- driver


_STARTED = time.monotonic()


def _say(line: str) -> None:
    """Progress, with the seconds since the start, on standard error."""
    print(f"[{time.monotonic() - _STARTED:6.1f} s] {line}", file=sys.stderr, flush=True)


def _alternate(contenders: dict[str, Callable[[Path | None], None]], opts: Options, what: str) -> None:
    """Each contender once per round, in order on even rounds and reversed on odd ones; screenshots in round 1."""
    names = list(contenders)
    for index in range(opts.rounds):
        _say(f"{what}: round {index + 1}/{opts.rounds}")
        for name in names if index % 2 == 0 else names[::-1]:
            contenders[name](opts.screens if index == 0 else None)


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, nargs="+", default=None, help="store sizes (default 10000 100000)")
    parser.add_argument("--rounds", type=int, default=None, help="default 3 (1 with --quick)")
    parser.add_argument("--ui-timeout", type=float, default=None, help="seconds per UI wait (default 90; 30 quick)")
    parser.add_argument(
        "--quick", action="store_true", help="a smoke run: 10,000 runs, 1 round, 30 s timeouts, no warm-up"
    )
    parser.add_argument("--dashboard-runs", type=int, default=10_000, help="the dashboard's store size")
    parser.add_argument("--parts", nargs="+", choices=("runs", "dashboard"), default=["runs", "dashboard"])
    parser.add_argument("--workspace", type=Path, default=None, help="the dashboard's workspace (default: the demo)")
    parser.add_argument("--cache-dir", type=Path, default=DEFAULT_CACHE, help="stores, demo workspace, screens")
    parser.add_argument("--screens", type=Path, default=None, help="default: <cache-dir>/screens")
    args = parser.parse_args(argv)
    sizes = args.runs or ([10_000] if args.quick else [10_000, 100_000])
    opts = Options(
        rounds=args.rounds or (1 if args.quick else 3),
        ui_timeout=args.ui_timeout or (30.0 if args.quick else 90.0),
        cache_dir=args.cache_dir,
        screens=args.screens or args.cache_dir / "screens",
        workspace=args.workspace,
        warm_up=not args.quick,
    )
    workspace = (opts.workspace or demo_workspace(opts.cache_dir)) if "dashboard" in args.parts else None
    # (store size, runs UI?, dashboard workspace or None): the dashboard shares its size's servers
    plan = [(n, "runs" in args.parts, workspace if n == args.dashboard_runs else None) for n in sizes]
    if workspace is not None and args.dashboard_runs not in sizes:
        plan.append((args.dashboard_runs, False, workspace))
    results: list[dict[str, Any]] = []
    with contextlib.ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-browser-")))
        stack.enter_context(_environ(**lab_environment(tmp / "lab")))
        browser = stack.enter_context(launch_chromium())
        for runs, runs_ui, dashboard in plan:
            if not (runs_ui or dashboard):
                continue
            _say(f"{runs:,} runs: starting the servers")
            with Stack(runs, opts, tmp, runs_ui=runs_ui, dashboard=dashboard) as servers:
                found: list[dict[str, Any]] = []
                if runs_ui:
                    found += bench_runs_ui(browser, servers)
                if dashboard:
                    found += bench_dashboard(browser, servers)
            print(common.table(found), flush=True)
            results += found
    return results


if __name__ == "__main__":
    main()
