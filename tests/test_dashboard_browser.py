"""The standalone dashboard in a real browser, on the demo workspace behind a real MLflow server.

One ``mlflow server`` over the demo workspace's own store, one in-process
Panel server (``dashboards.app.serve``, port 0), one headless Chromium for
the module. Every page is opened, checked for its content and screenshotted
into ``tests/artifacts/``; every request the pages make is recorded and none
may leave this machine. The GPU page reads the simulated source
(``WORKBENCH_GPU_SOURCE=simulated``).
"""

from __future__ import annotations

import time

import panel as pn
import pytest
from playwright.sync_api import expect

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
from tests.servers import MlflowServer, SilentServer
from workbench import audit, gpu
from workbench.config import load_settings

pytestmark = pytest.mark.slow
require_chromium(module=True)

MODEL = "wine-classifier"
# v1 of the demo passes the first gate and fails the second against v2, the champion
GATES = ["metrics.accuracy >= 0.9", "metrics.f1 >= current"]
LOADED_S = 60_000  # ms: the first load of a page imports MLflow and DVC in the server


def _champion(uri: str) -> str | None:
    from mlflow import MlflowClient

    holder = MlflowClient(tracking_uri=uri, registry_uri=uri).get_registered_model(MODEL).aliases.get("champion")
    return None if holder is None else str(holder)


@pytest.fixture(scope="module")
def browser():
    with launch_chromium() as launched:
        yield launched


@pytest.fixture(scope="module")
def stack(browser, demo_workspace, monkeypatch_module):
    """The demo workspace's store behind ``mlflow server``, and the dashboard over it."""
    monkeypatch_module.setenv("WORKBENCH_GPU_SOURCE", "simulated")
    mlflow = MlflowServer(demo_workspace / ".workbench").start()
    settings = load_settings(demo_workspace, tracking_uri=mlflow.uri, promotion_gates={MODEL: GATES})
    assert settings.gpu_source == "simulated" and settings.store_uri is None  # every read goes through the server
    dashboard = serve(settings, port=0, show=False, block=False, say=lambda _line: None, session_expiry_ms=1000)
    try:
        yield settings, mlflow, dashboard
    finally:
        dashboard.stop()
        mlflow.stop()
        gpu.close_samplers()
        pn.state.reset()


@pytest.fixture(scope="module")
def monkeypatch_module():
    with pytest.MonkeyPatch.context() as patch:
        yield patch


def _open(browser, stack, page_slug: str, log: RequestLog):
    _settings, _mlflow, dashboard = stack
    page = open_page(browser, log)
    page.goto(f"{dashboard.url}?page={page_slug}")
    return page


def _loaded(page) -> None:
    """Wait until no section shows its spinner or loading overlay, and none shows an error."""
    expect(page.locator("[data-testid=loading]")).to_have_count(0, timeout=LOADED_S)
    expect(page.locator(".pn-loading")).to_have_count(0, timeout=LOADED_S)
    expect(page.locator("[data-testid=error-banner]")).to_have_count(0)


def test_every_page_renders_its_content_and_no_request_leaves_the_machine(browser, stack):
    log = RequestLog()
    page = _open(browser, stack, "overview", log)
    expect(page.locator("[data-testid=workspace]")).to_contain_text(str(stack[0].workspace), timeout=LOADED_S)
    _loaded(page)
    expect(page.locator("[data-testid=kpi-runs-7d]")).to_contain_text("6")
    expect(page.locator("[data-testid=best-runs]")).to_contain_text("wine-quality")
    expect(page.locator("[data-testid=champions]")).to_contain_text("@champion v2")
    expect(page.locator("[data-testid=gpu-simulated]")).to_be_visible()
    expect(page.locator("[data-testid=data-glance]")).to_contain_text("data/wine.csv")
    screenshot(page, "dashboard-overview")

    # navigate by the sidebar, as a person would; the URL follows
    page.get_by_role("button", name="Data", exact=True).click()
    expect(page.locator("[data-testid=tracked]")).to_contain_text("data/wine.csv", timeout=LOADED_S)
    expect(page).to_have_url(f"{stack[2].url}?page=data")
    _loaded(page)
    expect(page.locator("[data-testid=revs]")).to_contain_text("wine data v2")
    expect(page.locator("[data-testid=diff]")).to_contain_text("data/wine.csv")
    expect(page.locator("[data-testid=stale]")).to_contain_text("up to date")
    expect(page.locator("[data-testid=stages]")).to_contain_text("evaluate")
    screenshot(page, "dashboard-data")

    page.get_by_role("button", name="Experiments", exact=True).click()
    expect(page.locator("[data-testid=runs-position]")).to_contain_text("Runs 1–6 of 6", timeout=LOADED_S)
    _loaded(page)
    expect(page.locator(".tabulator-row")).to_have_count(6)
    expect(page.locator(".tabulator-row").first).to_contain_text("data-v2")
    note = page.locator("[data-testid=curves-note]")
    expect(note).to_contain_text("points, drawn point by point")
    expect(note).to_have_attribute("data-rasterized", "false")
    screenshot(page, "dashboard-experiments")

    page.get_by_role("button", name="Registry & deploy", exact=True).click()
    expect(page.locator("[data-testid=versions]")).to_contain_text("v1", timeout=LOADED_S)
    _loaded(page)
    expect(page.locator("[data-testid=models]")).to_contain_text(MODEL)
    expect(page.locator("[data-testid=versions]")).to_contain_text("@champion")
    screenshot(page, "dashboard-registry")

    page.get_by_role("button", name="GPUs", exact=True).click()
    expect(page.locator("[data-testid=gpu-simulated]")).to_be_visible(timeout=LOADED_S)
    _loaded(page)
    expect(page.locator("[data-testid=gpu-card]")).to_have_count(4)
    expect(page.locator("[data-testid=gpu-processes]")).to_contain_text("notebooks/train_resnet.ipynb")
    screenshot(page, "dashboard-gpus")

    assert log.urls, "the pages made no request at all?"
    assert log.outside == [], f"requests left the machine: {log.outside}"
    page.context.close()


def test_promote_from_the_registry_page_moves_the_alias_and_rollback_moves_it_back(browser, stack):
    settings, mlflow, _dashboard = stack
    assert _champion(mlflow.uri) == "2"
    log = RequestLog()
    page = _open(browser, stack, "registry", log)
    expect(page.locator("[data-testid=versions]")).to_contain_text("v1", timeout=LOADED_S)
    _loaded(page)

    def compare_v1() -> None:
        page.get_by_label("Version").select_option(label="v1")
        page.get_by_role("button", name="Compare").click()
        expect(page.locator("[data-testid=comparison]")).to_contain_text(
            "v1 of wine-classifier against @champion (now v2)"
        )
        page.get_by_role("button", name="Promote v1 to @champion…").click()
        expect(page.locator("[data-testid=confirm-promote]")).to_contain_text("from v2 to v1")

    compare_v1()
    expect(page.locator("[data-testid=compare]")).to_contain_text("accuracy")
    gates = page.locator("[data-testid=gates]")
    expect(gates).to_contain_text("metrics.accuracy >= 0.9")
    expect(gates.locator("tr", has_text="metrics.accuracy >= 0.9")).to_contain_text("passed")
    expect(gates.locator("tr", has_text="metrics.f1 >= current")).to_contain_text("failed gate")
    expect(page.locator("[data-testid=comparison]")).to_contain_text("Some gates fail")
    assert _champion(mlflow.uri) == "2", "nothing may move before the confirmation"
    screenshot(page, "dashboard-registry-promote-confirm")

    # without the override the gates refuse it, and say how to proceed
    page.get_by_role("button", name="Confirm promotion").click()
    refused = page.locator("[data-testid=error-banner]")
    expect(refused).to_contain_text("refused by its gates", timeout=30_000)
    expect(refused).to_contain_text("override them explicitly")
    assert _champion(mlflow.uri) == "2"

    compare_v1()
    expect(page.get_by_text("Override the failing gates (recorded in the audit log)")).to_be_visible()
    override = page.get_by_role("checkbox")  # Panel's checkbox has no label element to find it by
    override.check()
    expect(override).to_be_checked()
    page.get_by_role("button", name="Confirm promotion").click()
    moved = page.locator("[data-testid=alias-moved]")
    expect(moved).to_contain_text("now names v1 (was v2)", timeout=30_000)
    expect(moved).to_contain_text("Gates overridden: metrics.f1 >= current")
    assert _champion(mlflow.uri) == "1"  # MLflow's own client agrees
    entry = audit.read(settings, action="promote")[-1]
    assert (entry.outcome, entry.before, entry.after) == ("ok", "2", "1")
    assert entry.detail["overridden_gates"] == ["metrics.f1 >= current"]
    expect(page.locator("[data-testid=models]")).to_contain_text("@champion v1", timeout=30_000)
    screenshot(page, "dashboard-registry-promoted")

    page.get_by_role("button", name="Roll back…").click()
    expect(page.locator("[data-testid=confirm-rollback]")).to_contain_text("back from v1 to v2")
    page.get_by_role("button", name="Confirm rollback").click()
    expect(page.locator("[data-testid=alias-moved]")).to_contain_text("now names v2 (was v1)", timeout=30_000)
    assert _champion(mlflow.uri) == "2"
    assert log.outside == []
    page.context.close()


def _history_length(page) -> int:
    return page.evaluate(
        "() => { for (const doc of Bokeh.documents) { const m = doc.get_model_by_name('wb-gpu-history');"
        " if (m) return m.data.time.length; } return -1; }"
    )


def test_gpu_page_plot_advances_and_its_updates_stop_with_the_browser_session(browser, stack):
    settings, _mlflow, _dashboard = stack
    sampler = gpu.get_sampler(settings)
    _wait_for_subscribers(sampler, 0)  # the sessions of earlier tests have closed by now
    log = RequestLog()
    page = _open(browser, stack, "gpus", log)
    expect(page.locator("[data-testid=gpu-simulated]")).to_contain_text("Simulated GPUs", timeout=LOADED_S)
    expect(page.locator("[data-testid=gpu-footer]")).to_contain_text("Source simulated")
    first = _history_length(page)
    assert first >= 1
    deadline = time.monotonic() + 10
    while _history_length(page) <= first and time.monotonic() < deadline:
        page.wait_for_timeout(250)
    assert _history_length(page) > first, "the live plot did not advance"
    assert sampler.stats().subscribers == 1  # this session's one subscription to the shared sampler
    screenshot(page, "dashboard-gpus-live")
    page.context.close()
    _wait_for_subscribers(sampler, 0)  # the session ended (its expiry is 1 s here): its updates stopped
    assert log.outside == []


def _wait_for_subscribers(sampler: gpu.Sampler, count: int) -> None:
    deadline = time.monotonic() + 15
    while sampler.stats().subscribers != count and time.monotonic() < deadline:
        time.sleep(0.1)
    assert sampler.stats().subscribers == count, "a closed browser session still receives GPU samples"


@pytest.fixture
def silent_mlflow():
    """An address that accepts connections and never answers: the slowest backend there is."""
    with SilentServer() as silent:
        yield silent.uri


def test_a_silent_backend_never_freezes_the_page_and_errors_show_their_hint(browser, demo_workspace, silent_mlflow):
    settings = load_settings(demo_workspace, tracking_uri=silent_mlflow)
    dashboard = serve(settings, port=0, show=False, block=False, say=lambda _line: None)
    log = RequestLog()
    page = open_page(browser, log)
    try:
        page.goto(f"{dashboard.url}?page=overview")
        # the template and every section's title paint while MLflow keeps silent
        expect(page.get_by_text("Best run per experiment", exact=True)).to_be_visible(timeout=10_000)
        expect(page.locator("[data-testid=loading]").first).to_be_visible()
        banner = page.locator("[data-testid=error-banner]").first
        expect(banner).to_contain_text("did not answer", timeout=LOADED_S)
        expect(banner).to_contain_text("MLFLOW_TRACKING_URI")  # the hint
        for text in page.locator("[data-testid=error-banner]").all_inner_texts():
            assert "Traceback" not in text
        # the data part does not depend on MLflow and still shows
        expect(page.locator("[data-testid=data-glance]")).to_contain_text("data/wine.csv")
        screenshot(page, "dashboard-backend-down")
    finally:
        page.context.close()
        dashboard.stop()
    assert log.outside == []


def test_push_from_the_data_page_runs_as_a_job_with_its_progress(browser, stack):
    log = RequestLog()
    page = _open(browser, stack, "data", log)
    expect(page.locator("[data-testid=tracked]")).to_contain_text("data/wine.csv", timeout=LOADED_S)
    page.get_by_role("button", name="Push", exact=True).click()
    state = page.locator("[data-testid=job-state]")
    expect(state).to_contain_text("succeeded", timeout=30_000)
    expect(page.locator("[data-testid=error-banner]")).to_have_count(0)
    expect(page.get_by_text("Pushed 0 files to local")).to_be_visible()  # the demo pushed everything already
    assert log.outside == []
    page.context.close()


def test_embed_mode_shows_one_page_without_the_template(browser, stack):
    log = RequestLog()
    page = _open(browser, stack, "experiments&embed=true", log)
    expect(page.locator("[data-testid=runs-position]")).to_contain_text("Runs 1–6", timeout=LOADED_S)
    expect(page.get_by_role("button", name="Registry & deploy", exact=True)).to_have_count(0)
    expect(page.locator("[data-testid=workspace]")).to_have_count(0)
    assert log.outside == []
    page.context.close()
