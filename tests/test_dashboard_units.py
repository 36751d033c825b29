"""The dashboard without a browser: formatting, pipeline layout, plots, sections, pages inline, serving rules.

Pages are driven as a notebook would (no server: a section's background load
runs to completion before ``refresh()`` returns). The records the pages show
come from the services and are tested with them (tests/test_tracking.py,
tests/test_overview.py).
"""

from __future__ import annotations

import logging
import time

import holoviews as hv
import numpy as np
import panel as pn
import pytest
import requests
from click.testing import CliRunner

from dashboards import format as fmt
from dashboards import plots
from dashboards.app import check_bind, is_loopback, serve
from dashboards.cli import dashboard
from dashboards.components import Section
from dashboards.data import pipeline_layout
from dashboards.gpus import GpuPage
from dashboards.overview import OverviewPage
from workbench import gpu
from workbench.config import load_settings
from workbench.errors import InvalidInput, NotFound
from workbench.gpu import GpuSample, GpuSource, Sampler
from workbench.gpu.simulated import SimulatedSource
from workbench.tracking import RunSummary


def _text(viewable: object) -> str:
    """Every HTML and Markdown text inside a Panel layout (Viewers resolved), joined."""
    found = []

    def walk(obj: object) -> None:
        if isinstance(obj, pn.viewable.Viewer):
            walk(obj.__panel__())
        elif isinstance(obj, pn.pane.HTML | pn.pane.Markdown):
            found.append(str(obj.object))
        elif isinstance(obj, pn.layout.ListLike):
            for child in obj:
                walk(child)

    walk(viewable)
    return "\n".join(found)


# ----------------------------------------------------------------------------- format


def test_numbers_sizes_and_times_read_the_same_everywhere():
    assert fmt.number(12345) == "12,345"
    assert fmt.number(0.933333) == "0.9333"
    assert fmt.number(2.0) == "2"
    assert fmt.number(1234.56) == "1,234.6"
    assert fmt.number(float("nan")) == "NaN"
    assert fmt.number(None) == fmt.DASH
    assert fmt.signed(0.02) == "+0.02" and fmt.signed(-0.5) == "-0.5" and fmt.signed(0.0) == "0"
    assert fmt.percent(87.4) == "87%" and fmt.percent(4.54) == "4.5%"
    assert fmt.size(512) == "512 B" and fmt.size(31.5 * 1024**3) == "31.5 GiB"
    assert fmt.duration(1_000, 186_000) == "3 min 5 s"
    assert fmt.duration(1000, None) == fmt.DASH
    now = 1_700_000_000.0
    assert fmt.ago(int((now - 5 * 60) * 1000), now=now) == "5 min ago"
    assert fmt.ago(int((now - 3 * 86400) * 1000), now=now) == "3 d ago"


def test_badges_colour_states_by_what_they_mean():
    assert "#1f7a45" in fmt.badge("healthy")  # green
    assert "#b3261e" in fmt.badge("FAILED")  # red
    assert "#b26a00" in fmt.badge("stale")  # amber
    assert "&lt;b&gt;" in fmt.badge("<b>")  # text is escaped


# ----------------------------------------------------------------------------- pipeline layout


def test_pipeline_layout_puts_each_stage_right_of_its_upstreams():
    edges = [("prepare", "data.dvc"), ("train", "prepare"), ("evaluate", "train"), ("evaluate", "prepare")]
    positions = pipeline_layout(["data.dvc", "prepare", "train", "evaluate"], edges)
    assert [positions[n][0] for n in ("data.dvc", "prepare", "train", "evaluate")] == [0, 1, 2, 3]
    branched = pipeline_layout(["a", "b", "c"], [("b", "a"), ("c", "a")])
    assert branched["b"][0] == branched["c"][0] == 1
    assert branched["b"][1] != branched["c"][1]  # side by side, not on top of each other


# ----------------------------------------------------------------------------- plots


def _run(run_id: str, params: dict[str, str], metrics: dict[str, float]) -> RunSummary:
    return RunSummary(run_id, run_id, "1", "FINISHED", 0, 1, "ann", "active", None, params, metrics, {})


def test_parallel_axes_keep_varying_params_and_scale_them():
    runs = [
        _run("r1", {"lr": "0.1", "model": "rf", "fixed": "x"}, {"acc": 0.5}),
        _run("r2", {"lr": "0.3", "model": "gbm", "fixed": "x"}, {"acc": 0.9}),
        _run("r3", {"lr": "0.2", "model": "rf", "fixed": "x"}, {"acc": float("nan")}),  # no usable metric
    ]
    axes, lines = plots.parallel_axes(runs, "acc")
    assert [a.name for a in axes] == ["lr", "model", "acc"]  # "fixed" never varies
    assert [(ys, score) for ys, score, _name in lines] == [([0.0, 1.0, 0.0], 0.5), ([1.0, 0.0, 1.0], 0.9)]
    assert plots.parallel_coordinates(runs, "missing") is None


def test_a_million_point_history_becomes_an_image_not_a_million_glyphs():
    steps = np.arange(1_000_000)
    curves = {"long": (steps, np.exp(-steps / 2e5)), "short": (np.arange(10), np.linspace(1, 0, 10))}
    plot, rasterized = plots.metric_curves(curves, "loss")
    assert rasterized
    figure = hv.render(plot)
    sizes = [len(v) for r in figure.renderers for v in r.data_source.data.values()]
    glyphs = {type(r.glyph).__name__ for r in figure.renderers}
    assert "ImageRGBA" in glyphs
    assert max(sizes) < 1000, "the points themselves would be sent to the browser"
    image = figure.renderers[0].data_source.data["image"][0]
    assert image.shape == (plots.RASTER_SIZE[1], plots.RASTER_SIZE[0])
    assert np.count_nonzero(image) > 0  # something was drawn

    small, rasterized = plots.metric_curves({"a": ([0, 1, 2], [0.1, 0.2, 0.3])}, "acc")
    assert not rasterized
    assert {type(r.glyph).__name__ for r in hv.render(small).renderers} >= {"Line", "Scatter"}


# ----------------------------------------------------------------------------- sections, as in a notebook


def test_a_section_shows_its_content_or_the_error_with_its_hint(caplog):
    shown = Section("Things", lambda: 41 + 1, lambda n: pn.pane.HTML(f"<b>{n}</b>"))
    shown.refresh()
    assert _text(shown).count("<b>42</b>") == 1

    def not_found() -> None:
        raise NotFound("No experiment named 'x'", "List them with workbench experiments.")

    failing = Section("Things", not_found, lambda _n: pn.pane.HTML("never"))
    failing.refresh()
    text = _text(failing)
    assert 'data-testid="error-banner"' in text and "never" not in text
    assert "No experiment named &#x27;x&#x27;" in text and "List them with workbench experiments." in text

    def bug() -> None:
        raise KeyError("oops")

    broken = Section("Things", bug, lambda _n: pn.pane.HTML("never"))
    with caplog.at_level(logging.ERROR, logger="dashboards.components"):
        broken.refresh()
    text = _text(broken)
    assert "failed unexpectedly (KeyError: &#x27;oops&#x27;)" in text
    assert "The dashboard&#x27;s log has the details." in text
    assert "Traceback" in caplog.text and "Traceback" not in text  # the log has it; the page never does


def test_pages_work_inline_without_a_server(demo_workspace):
    settings = load_settings(demo_workspace)
    overview = OverviewPage(settings, gpu_source="none")
    assert isinstance(overview.__panel__(), pn.Column)
    overview.refresh()
    text = _text(overview)
    assert "wine-quality" in text and "@champion v" in text and "data/wine.csv" in text
    assert 'data-testid="gpu-none"' in text and "turned off" in text  # the plain "no GPU" banner, with its reason

    gpus = GpuPage(settings, gpu_source="none")
    gpus.refresh()
    assert "GPU monitoring is turned off" in _text(gpus)
    assert not gpus.live_running  # nothing to stream without readings
    gpu.close_samplers()


# ----------------------------------------------------------------------------- serving rules


def test_loopback_needs_no_auth_and_anything_else_does():
    assert is_loopback("127.0.0.1") and is_loopback("127.0.0.2") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("10.1.2.3") and not is_loopback("example.org")
    assert check_bind("127.0.0.1", basic_auth=None, oauth=None, insecure=False) is None
    assert check_bind("0.0.0.0", basic_auth="pw", oauth=None, insecure=False) is None
    with pytest.raises(InvalidInput) as refused:
        check_bind("0.0.0.0", basic_auth=None, oauth=None, insecure=False)
    assert "--basic-auth" in refused.value.hint and "--insecure" in refused.value.hint
    assert "WITHOUT authentication" in check_bind("0.0.0.0", basic_auth=None, oauth=None, insecure=True)


def test_the_cli_refuses_a_non_loopback_bind_without_auth(demo_workspace):
    result = CliRunner().invoke(dashboard, ["--workspace", str(demo_workspace), "--address", "0.0.0.0"])
    assert result.exit_code == 1
    assert "Refusing to serve the dashboard on 0.0.0.0 without authentication" in result.output
    assert "Hint:" in result.output and "--basic-auth" in result.output
    assert "Traceback" not in result.output


def test_oauth_needs_a_key_and_a_secret(demo_workspace):
    result = CliRunner().invoke(
        dashboard, ["--workspace", str(demo_workspace), "--address", "0.0.0.0", "--oauth-provider", "github"]
    )
    assert result.exit_code == 1
    assert "OAuth needs a provider, a key and a secret" in result.output


@pytest.fixture
def served():
    """Dashboards started by a test; stopped, and Panel's state reset, after it."""
    running = []
    yield running
    for dashboard_server in running:
        dashboard_server.stop()
    pn.state.reset()


def test_insecure_serves_on_every_interface_with_a_warning(demo_workspace, served):
    lines: list[str] = []
    settings = load_settings(demo_workspace)
    running = serve(settings, port=0, address="0.0.0.0", insecure=True, show=False, block=False, say=lines.append)
    served.append(running)
    assert lines[0].startswith("Warning: serving on 0.0.0.0 WITHOUT authentication")
    assert f":{running.port}/" in lines[1]
    page = _get(f"http://127.0.0.1:{running.port}/")
    assert page.status_code == 200 and "<title>Workbench</title>" in page.text


def test_basic_auth_guards_a_non_loopback_bind(demo_workspace, served):
    settings = load_settings(demo_workspace)
    running = serve(settings, port=0, address="0.0.0.0", basic_auth="s3cret", show=False, block=False, say=print)
    served.append(running)
    base = f"http://127.0.0.1:{running.port}"
    anonymous = _get(base + "/")
    assert "/login" in anonymous.url and "<title>Workbench</title>" not in anonymous.text
    session = requests.Session()
    wrong = session.post(base + "/login", data={"username": "ann", "password": "nope"}, timeout=10)
    assert "error=" in wrong.url
    right = session.post(base + "/login", data={"username": "ann", "password": "s3cret"}, timeout=10)
    assert right.url.rstrip("/") == base and "<title>Workbench</title>" in right.text


def test_served_sessions_build_every_component_with_this_servers_stylesheets(demo_workspace, served, monkeypatch):
    """No component of a served session is ever pointed at Panel's CDN, not even while the page is built.

    Panel's design stylesheets are shared between sessions: a session built
    with CDN URLs flipped the live stylesheets of another one (a closed network
    then loses the page's CSS). Every stylesheet a session patches must get
    this server's address.
    """
    import panel.io.resources
    import panel.reactive

    seen: list[str] = []
    original = panel.io.resources.patch_stylesheet

    def recording(stylesheet, dist_url):
        seen.append(dist_url)
        return original(stylesheet, dist_url)

    monkeypatch.setattr(panel.io.resources, "patch_stylesheet", recording)
    monkeypatch.setattr(panel.reactive, "patch_stylesheet", recording)
    running = serve(load_settings(demo_workspace), port=0, show=False, block=False, say=lambda _line: None)
    served.append(running)
    for page in ("overview", "data", "experiments"):
        answer = _get(f"http://127.0.0.1:{running.port}/?page={page}")
        assert answer.status_code == 200 and "cdn.holoviz.org" not in answer.text
    assert seen, "building the pages patched no stylesheet: this check would prove nothing"
    elsewhere = {url for url in seen if "://" in url}  # this server's are paths: static/extensions/panel/
    assert not elsewhere, f"stylesheets of a served session were pointed at {elsewhere}"


def _get(url: str) -> requests.Response:
    """GET once the server answers (it starts in a background thread)."""
    deadline = time.monotonic() + 15
    while True:
        try:
            return requests.get(url, timeout=10)
        except requests.ConnectionError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


class _TwoNodes(GpuSource):
    """A fleet of two simulated nodes whose GPUs share indices, merged into one sample."""

    name = "simulated"
    simulated = True

    def __init__(self) -> None:
        self.nodes = [SimulatedSource(gpus=2, host="node-a"), SimulatedSource(gpus=2, host="node-b")]

    def sample(self) -> GpuSample:
        first, second = (node.sample() for node in self.nodes)
        first.gpus += second.gpus
        first.processes += second.processes
        return first


def test_gpu_page_tells_the_gpus_of_a_fleet_apart(demo_workspace):
    page = GpuPage(load_settings(demo_workspace), gpu_source="simulated")
    page.sampler = Sampler(_TwoNodes(), interval=0.2, history=5)
    page.hidden()  # no live updates without a server
    page.refresh()
    text = _text(page)
    for label in ("node-a GPU 0", "node-a GPU 1", "node-b GPU 0", "node-b GPU 1"):
        assert label in text
    assert 'data-testid="gpu-simulated"' in text
    assert sorted(page.source.data) == ["mem0", "mem1", "mem2", "mem3", "time", "util0", "util1", "util2", "util3"]
    page.sampler.stop()
