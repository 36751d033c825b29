"""The GPUs page: live utilization and memory per GPU, with history, and the processes on them.

Every session reads the process's one shared sampler (:func:`workbench.gpu.get_sampler`):
the sampler polls the source once per interval whatever the number of
viewers; each session subscribes only to learn that a sample arrived, and a
periodic callback of that session streams the new samples into its charts
(plain Bokeh ``ColumnDataSource.stream``, the cheapest live chart per session).
The callback and the subscription stop when the page is hidden and when the
browser session closes. "No GPU" and "simulated" are said plainly in banners.
"""

from __future__ import annotations

import html
import time
from typing import Any

import panel as pn
from bokeh.models import ColumnDataSource, HoverTool
from bokeh.plotting import figure

from dashboards import format as fmt
from dashboards.components import Banner, Section, bar, html_pane, table
from dashboards.page import Page
from dashboards.plots import colour_of
from workbench import gpu
from workbench.config import Settings
from workbench.gpu.model import GpuSample

HISTORY_SOURCE = "wb-gpu-history"  # the name browser tests find the live data source by
GIB = 1024**3


def _local_ms(timestamp: float) -> float:
    """Seconds since the epoch -> ms for Bokeh's datetime axis, shifted so it shows local wall time."""
    return (timestamp + time.localtime(timestamp).tm_gmtoff) * 1000


def _gpus_of(sample: GpuSample) -> list[tuple[str, int]]:
    """The (host, index) of every GPU in a sample: what identifies a GPU across a fleet."""
    return [(g.host, g.index) for g in sample.gpus]


class GpuPage(Page):
    """Live per-GPU utilization and memory with history, GPU cards, and the processes (and notebooks) on them."""

    title = "GPUs"
    slug = "gpus"
    description = "Live utilization, memory and processes"

    def __init__(self, settings: Settings, gpu_source: str | None = None, **params: Any) -> None:
        super().__init__(settings, **params)
        self.sampler = gpu.get_sampler(settings, gpu_source)
        self.source: ColumnDataSource | None = None
        self._gpus: list[tuple[str, int]] = []  # (host, index) of each charted GPU, in column order
        self._last: float = 0.0
        self._new_sample = False
        self._visible = True
        self._callback: Any = None
        self._unsubscribe: Any = None
        self.cards = html_pane("")
        self.processes = html_pane("")
        self.footer = html_pane("")
        self.live = Section("Live GPUs", self._load, self._render)
        self.sections = [self.live]
        self.layout[:] = [self.live]
        if pn.state.curdoc is not None and pn.state.curdoc.session_context is not None:
            pn.state.on_session_destroyed(lambda _context: self._stop_live())

    # ------------------------------------------------------------------ loading

    def _load(self) -> tuple[GpuSample | None, list[GpuSample]]:
        latest = self.sampler.latest(wait=5.0)  # starts the shared sampler if nobody did
        return latest, self.sampler.history()

    def _render(self, loaded: tuple[GpuSample | None, list[GpuSample]]) -> list[Any]:
        latest, history = loaded
        self._stop_live()
        if latest is None:
            return [Banner(title="No GPU reading yet", text="The GPU sampler has not answered; refresh in a moment.")]
        if not latest.available:
            return [
                Banner(
                    title="No GPU",
                    text=(latest.reason or "")
                    + " For a demo, start the dashboard with --gpu-source simulated (readings are labelled simulated).",
                    tone="muted",
                    testid="gpu-none",
                )
            ]
        parts: list[Any] = []
        if latest.simulated:
            parts.append(
                Banner(
                    title="Simulated GPUs",
                    text="These readings are made up for a demo or a test; they measure no real device.",
                    tone="warn",
                    testid="gpu-simulated",
                )
            )
        self._gpus = _gpus_of(latest)
        samples = [s for s in history if s.available]
        self.source = ColumnDataSource(self._columns(samples), name=HISTORY_SOURCE)
        self._last = samples[-1].timestamp if samples else 0.0
        self._show_latest(latest)
        charts = pn.Row(
            pn.pane.Bokeh(self._chart("Utilization", "util", "%", (0, 100)), sizing_mode="stretch_width"),
            pn.pane.Bokeh(self._chart("Memory used", "mem", "GiB", None), sizing_mode="stretch_width"),
            sizing_mode="stretch_width",
        )
        parts += [
            self.cards,
            charts,
            html_pane('<h3 class="wb-h" style="margin-top:10px">Processes</h3>'),
            self.processes,
            self.footer,
        ]
        if self._visible:
            self._start_live()
        return parts

    def _columns(self, samples: list[GpuSample]) -> dict[str, list[float]]:
        """Chart columns for ``samples``: time, then utilization and memory of each GPU (by position)."""
        columns: dict[str, list[float]] = {"time": [_local_ms(s.timestamp) for s in samples]}
        for position, (host, index) in enumerate(self._gpus):
            readings = [next((g for g in s.gpus if (g.host, g.index) == (host, index)), None) for s in samples]
            columns[f"util{position}"] = [
                float("nan") if r is None or r.utilization_gpu is None else r.utilization_gpu for r in readings
            ]
            columns[f"mem{position}"] = [
                float("nan") if r is None or r.memory_used is None else r.memory_used / GIB for r in readings
            ]
        return columns

    def _label(self, position: int) -> str:
        """``GPU 0``, or ``node-a GPU 0`` when the readings come from several hosts (a fleet)."""
        host, index = self._gpus[position]
        several = len({h for h, _ in self._gpus}) > 1
        return f"{host} GPU {index}" if several else f"GPU {index}"

    def _chart(self, title: str, prefix: str, unit: str, y_range: tuple[float, float] | None) -> Any:
        chart = figure(
            title=f"{title} ({unit})",
            x_axis_type="datetime",
            height=260,
            sizing_mode="stretch_width",
            toolbar_location=None,
            tools="",
        )
        if y_range is not None:
            chart.y_range.start, chart.y_range.end = y_range
        for position in range(len(self._gpus)):
            chart.line(
                "time",
                f"{prefix}{position}",
                source=self.source,
                color=colour_of(position),
                line_width=2,
                legend_label=self._label(position),
            )
        chart.add_tools(
            HoverTool(
                tooltips=[("time", "@time{%H:%M:%S}")]
                + [(self._label(i), f"@{prefix}{i}{{0.0}} {unit}") for i in range(len(self._gpus))],
                formatters={"@time": "datetime"},
                mode="vline",
            )
        )
        legend = chart.legend[0]
        legend.orientation = "horizontal"
        legend.background_fill_alpha = 0
        legend.border_line_alpha = 0
        chart.add_layout(legend, "below")
        chart.background_fill_alpha = 0
        chart.border_fill_alpha = 0
        return chart

    # ------------------------------------------------------------------ live updates

    def shown(self) -> None:
        self._visible = True
        if self.source is not None:
            self._start_live()

    def hidden(self) -> None:
        self._visible = False
        self._stop_live()

    @property
    def live_running(self) -> bool:
        """Whether this page streams samples right now."""
        return self._callback is not None

    def _start_live(self) -> None:
        if self._callback is not None:
            return
        self._unsubscribe = self.sampler.subscribe(self._mark_new)
        period = max(250, int(self.sampler.interval * 1000))
        self._callback = pn.state.add_periodic_callback(self._tick, period=period)

    def _stop_live(self) -> None:
        if self._callback is not None:
            self._callback.stop()
            self._callback = None
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None

    def _mark_new(self, _sample: GpuSample) -> None:
        """Called in the sampler's thread: only note that there is something new."""
        self._new_sample = True

    def _tick(self) -> None:
        """Periodic callback (the session's event loop): stream the samples that arrived since the last tick."""
        if not self._new_sample or self.source is None:
            return
        self._new_sample = False
        fresh = [s for s in self.sampler.history() if s.timestamp > self._last and s.available]
        if not fresh:
            return
        if any(_gpus_of(s) != self._gpus for s in fresh):
            self.live.refresh()  # the set of GPUs changed: rebuild the charts
            return
        self._last = fresh[-1].timestamp
        self.source.stream(self._columns(fresh), rollover=self.sampler.stats().capacity)
        self._show_latest(fresh[-1])

    def _show_latest(self, sample: GpuSample) -> None:
        """Cards, processes and the footer for the newest sample."""
        cards = []
        for position, g in enumerate(sample.gpus):
            memory = 100 * g.memory_used / g.memory_total if g.memory_used and g.memory_total else None
            power = f"{fmt.number(g.power, 3)} / {fmt.number(g.power_limit, 3)} W" if g.power is not None else "n/a"
            temperature = f"{g.temperature:.0f} °C" if g.temperature is not None else "n/a"
            mig = " · MIG" if g.mig_mode else ""
            label = html.escape(f"{self._label(position)} · {g.name or 'unknown'}")
            error = f'<div class="note">{html.escape(g.error)}</div>' if g.error else ""
            cards.append(
                f'<div class="wb-kpi" data-testid="gpu-card">'
                f'<div class="label">{label}{mig}</div>'
                f'<div class="value">{fmt.percent(g.utilization_gpu)}</div>{bar(g.utilization_gpu, "info")}'
                f'<div class="note" style="margin-top:6px">memory {fmt.size(g.memory_used)} of '
                f"{fmt.size(g.memory_total)}</div>{bar(memory, 'ok')}"
                f'<div class="note" style="margin-top:6px">{temperature} · {power} · {fmt.badge(g.state)}</div>'
                f"{error}</div>"
            )
        self.cards.object = f'<div class="wb-kpis">{"".join(cards)}</div>'
        several_hosts = len({h for h, _ in self._gpus}) > 1
        rows = [
            [
                str(p.pid),
                html.escape(f"{p.host} GPU {p.gpu_index}" if several_hosts else f"GPU {p.gpu_index}"),
                html.escape(p.user or fmt.DASH),
                html.escape(p.notebook_path or fmt.DASH),
                f'<span class="wb-mono">{html.escape((p.command or fmt.DASH)[:90])}</span>',
                fmt.size(p.used_memory),
                fmt.percent(p.sm_utilization),
            ]
            for p in sorted(sample.processes, key=lambda p: (p.gpu_index, -(p.used_memory or 0)))
        ]
        self.processes.object = (
            table(["pid", "GPU", "user", "notebook", "command", "memory", "SM"], rows, {5, 6}, "gpu-processes")
            if rows
            else '<p class="wb-muted">No process holds GPU memory.</p>'
        )
        stats = self.sampler.stats()
        label = "simulated" if sample.simulated else sample.source
        self.footer.object = (
            f'<p class="wb-muted" data-testid="gpu-footer">Source {html.escape(label)} on {html.escape(sample.host)}'
            f" · sampled every {stats.interval:g} s · {stats.subscribers} live viewer(s) · "
            f"keeps {stats.capacity * stats.interval / 60:.0f} min · last sample "
            f"{time.strftime('%H:%M:%S', time.localtime(sample.timestamp))}</p>"
        )
