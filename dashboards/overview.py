"""The Overview page: the team's week at a glance.

Runs in the last 7 days, the best run of each experiment, the champion of each
registered model and the health of its deployments, the GPU fleet, and the
state of the tracked data. Each part loads on its own, so a slow or broken
backend only holds up its own part.
"""

from __future__ import annotations

import html
from typing import Any

import holoviews as hv
import panel as pn

from dashboards import format as fmt
from dashboards.components import Banner, Section, bar, html_pane, kpis, table
from dashboards.page import Page
from workbench import data, gpu, overview
from workbench.config import Settings
from workbench.gpu.model import GpuSample


class OverviewPage(Page):
    """Runs this week, best runs, champions and their deployments, GPUs and data, each in its own section."""

    title = "Overview"
    slug = "overview"
    description = "The week at a glance"

    def __init__(self, settings: Settings, gpu_source: str | None = None, **params: Any) -> None:
        super().__init__(settings, **params)
        self.gpu_source = gpu_source
        self.recent = Section(
            "Runs in the last 7 days", lambda: overview.recent_runs(self.settings), self._render_recent
        )
        self.best = Section(
            "Best run per experiment",
            lambda: overview.best_runs(self.settings),
            self._render_best,
            subtitle="Ranked by each experiment's main metric (losses: lowest wins).",
        )
        self.models = Section(
            "Champion models",
            lambda: overview.champions(self.settings),
            self._render_models,
            subtitle="The version each model's @champion alias names, and the deployments serving the model.",
        )
        self.gpus = Section("GPU fleet", self._load_gpus, self._render_gpus)
        self.data = Section("Data at a glance", lambda: data.status(self.settings), self._render_data)
        self.sections = [self.recent, self.best, self.models, self.gpus, self.data]
        self.layout[:] = [
            pn.Row(self.recent, self.best, sizing_mode="stretch_width"),
            pn.Row(self.models, self.gpus, sizing_mode="stretch_width"),
            self.data,
        ]

    # ------------------------------------------------------------------ runs

    def _render_recent(self, recent: overview.RecentRuns) -> list[Any]:
        total = f"{fmt.number(recent.total)}{'+' if recent.capped else ''}"
        statuses = " ".join(f"{fmt.badge(status)} {fmt.number(count)}" for status, count in recent.by_status.items())
        bars = hv.Bars(
            [(day[5:], count) for day, count in recent.per_day], hv.Dimension("day"), hv.Dimension("runs")
        ).opts(
            height=170,
            responsive=True,
            color="#1d5fbf",
            toolbar=None,
            show_grid=True,
            tools=["hover"],
            xlabel="",
            ylabel="runs",
        )
        return [
            kpis([("Runs started", total, statuses or "no runs this week", "kpi-runs-7d")]),
            pn.pane.HoloViews(bars, sizing_mode="stretch_width", margin=(4, 0)),
        ]

    def _render_best(self, best: list[overview.BestRun]) -> Any:
        if not best:
            return Banner(title="No runs yet", text="Log a run with MLflow, or build the demo: workbench demo.")
        counted = any(b.runs is not None for b in best)  # run counts come with the fast path only
        rows = []
        for b in best:
            direction = "lowest" if b.lower_is_better else "highest"
            row = [
                html.escape(b.experiment),
                html.escape(b.run_name or fmt.short_id(b.run_id)),
                html.escape(f"{b.metric} ({direction})" if b.metric else "no metrics"),
                f"<b>{fmt.number(b.value)}</b>",
                fmt.ago(b.start_time),
            ]
            if counted:
                row.insert(4, fmt.number(b.runs))
            rows.append(row)
        headers = ["experiment", "best run", "metric", "value", "started"]
        if counted:
            headers.insert(4, "runs")
        return html_pane(table(headers, rows, {3, 4} if counted else {3}, "best-runs"))

    # ------------------------------------------------------------------ models

    def _render_models(self, models: list[overview.ModelHealth]) -> list[Any]:
        if not models:
            return [Banner(title="No registered models", text="Register a model version from a run to see it here.")]
        deployed = sum(len(m.deployments) for m in models)
        healthy = sum(m.healthy for m in models)
        with_champion = sum(1 for m in models if m.version)
        cards = kpis(
            [
                ("Registered models", fmt.number(len(models)), f"{with_champion} with a champion", "kpi-models"),
                (
                    "Deployments healthy",
                    f"{healthy} / {deployed}",
                    "none deployed" if not deployed else "all answering" if healthy == deployed else "some need a look",
                    "kpi-deployments",
                ),
            ]
        )
        rows = []
        for m in models:
            champion = fmt.badge(f"@{m.alias} v{m.version}", "ok") if m.version else fmt.badge("no champion", "muted")
            if m.deployments_error:
                serving = fmt.badge("unknown", "warn") + " " + html.escape(m.deployments_error.get("error", ""))
            elif m.deployments:
                serving = " ".join(
                    f"{fmt.badge(d.state)} {html.escape(d.name)} (v{html.escape(d.version or '?')})"
                    for d in m.deployments
                )
            else:
                serving = '<span class="wb-muted">not deployed</span>'
            rows.append(
                [
                    f"<b>{html.escape(m.model.name)}</b>",
                    champion,
                    f"v{m.model.latest_version}" if m.model.latest_version else fmt.DASH,
                    serving,
                ]
            )
        return [cards, html_pane(table(["model", "champion", "latest", "deployments"], rows, testid="champions"))]

    # ------------------------------------------------------------------ GPUs

    def _load_gpus(self) -> GpuSample | None:
        return gpu.get_sampler(self.settings, self.gpu_source).latest(wait=5.0)

    def _render_gpus(self, sample: GpuSample | None) -> list[Any]:
        if sample is None:
            return [Banner(title="No GPU reading yet", text="The GPU sampler has not answered; refresh in a moment.")]
        if not sample.available:
            return [Banner(title="No GPU", text=sample.reason or "", tone="muted", testid="gpu-none")]
        parts: list[Any] = []
        if sample.simulated:
            parts.append(
                Banner(
                    title="Simulated GPUs",
                    text="These readings are made up for a demo; they measure no real device.",
                    tone="warn",
                    testid="gpu-simulated",
                )
            )
        utilizations = [g.utilization_gpu for g in sample.gpus if g.utilization_gpu is not None]
        average = sum(utilizations) / len(utilizations) if utilizations else None
        used = sum(g.memory_used or 0 for g in sample.gpus)
        total = sum(g.memory_total or 0 for g in sample.gpus)
        parts.append(
            kpis(
                [
                    ("GPUs", fmt.number(len(sample.gpus)), html.escape(sample.host), "kpi-gpus"),
                    ("Average utilization", fmt.percent(average), f"{len(sample.processes)} processes", "kpi-gpu-util"),
                    ("Memory in use", fmt.size(used), f"of {fmt.size(total)}", "kpi-gpu-mem"),
                ]
            )
        )
        rows = []
        for g in sample.gpus:
            memory = 100 * g.memory_used / g.memory_total if g.memory_used and g.memory_total else None
            rows.append(
                [
                    f"GPU {g.index}",
                    bar(g.utilization_gpu, "info") + f'<span class="wb-muted">{fmt.percent(g.utilization_gpu)}</span>',
                    bar(memory, "ok") + f'<span class="wb-muted">{fmt.size(g.memory_used)}</span>',
                    fmt.badge(g.state),
                ]
            )
        parts.append(html_pane(table(["GPU", "utilization", "memory", "state"], rows, testid="gpu-fleet")))
        return parts

    # ------------------------------------------------------------------ data

    def _render_data(self, status: data.DataStatus) -> list[Any]:
        attention = [e for e in status.entries if e.badges and e.badges != [data.UNCHANGED]]
        git = status.git
        where = f"{git.branch or 'detached'} @ {git.head or 'no commit'}" if git else "no git"
        cards = kpis(
            [
                ("Tracked outputs", fmt.number(len(status.entries)), html.escape(str(status.root)), "kpi-data"),
                (
                    "Need attention",
                    fmt.number(len(attention)),
                    "all up to date" if not attention else "modified, missing or not committed",
                    "kpi-data-attention",
                ),
                ("Git", html.escape(where), "uncommitted changes" if git and git.dirty else "clean", "kpi-git"),
            ]
        )
        rows = [
            [
                f'<span class="wb-mono">{html.escape(e.path)}</span>',
                " ".join(fmt.badge(b) for b in e.badges) or fmt.badge("in git", "muted"),
                fmt.size(e.size),
                html.escape(e.owner),
            ]
            for e in status.entries
        ]
        notes = [Banner(title=note, tone="muted") for note in status.notes]
        return [cards, *notes, html_pane(table(["path", "status", "size", "recorded by"], rows, {2}, "data-glance"))]
