"""The Data page: what DVC tracks and its state, the history of a path, a diff of two revisions,
the pipeline graph with stale stages marked, and push / pull with progress.
"""

from __future__ import annotations

import html
from typing import Any

import panel as pn

from dashboards import format as fmt
from dashboards import plots
from dashboards.components import Banner, JobProgress, Section, html_pane, kpis, run_action, table
from dashboards.page import Page
from workbench import data, jobs
from workbench.config import Settings

WORKSPACE = "workspace"  # the diff's name for the working tree


class DataPage(Page):
    """Tracked data, revision history, revision diff, pipeline graph, and push/pull as jobs."""

    title = "Data"
    slug = "data"
    description = "Tracked data, versions and the pipeline"

    def __init__(self, settings: Settings, **params: Any) -> None:
        super().__init__(settings, **params)
        self.check_remote = pn.widgets.Toggle(label="Check the remote", margin=(4, 6), width=170)
        self.push = pn.widgets.Button(label="Push", color="primary", margin=(4, 6), width=100)
        self.pull = pn.widgets.Button(label="Pull", color="primary", margin=(4, 6), width=100)
        self.tracked = Section(
            "Tracked data",
            self._load_status,
            self._render_status,
            subtitle="Every output DVC tracks, with its state. Checking the remote marks what is not pushed.",
            tools=[self.check_remote, self.push, self.pull],
        )
        self.path = pn.widgets.Select(label="Path", options=[], width=320, margin=(0, 6))
        self.history = Section(
            "History",
            self._load_revisions,
            self._render_revisions,
            subtitle="The commits that recorded a new version of the path.",
            tools=[self.path],
        )
        self.rev_a = pn.widgets.Select(label="From", options=[], width=320, margin=(0, 6))
        self.rev_b = pn.widgets.Select(label="To", options=[], width=320, margin=(0, 6))
        self.compare = pn.widgets.Button(label="Compare", color="primary", margin=(22, 6, 0, 6), width=120)
        self.diff = Section(
            "Diff of two revisions",
            self._load_diff,
            self._render_diff,
            subtitle="Tracked data added, deleted, modified or renamed between two commits (or the workspace).",
            tools=[self.rev_a, self.rev_b, self.compare],
        )
        self.pipeline = Section(
            "Pipeline",
            lambda: data.pipeline(self.settings),
            self._render_pipeline,
            subtitle="Stages left to right, each after what it depends on; stale stages would run in `dvc repro`.",
        )
        self.sections = [self.tracked, self.pipeline]
        self.layout[:] = [
            self.tracked,
            self.history,
            self.diff,
            self.pipeline,
        ]
        self.check_remote.param.watch(lambda _event: self.tracked.refresh(), "value")
        self.path.param.watch(lambda _event: self.history.refresh(), "value")
        self.compare.on_click(lambda _event: self.diff.refresh())
        self.push.on_click(lambda _event: self._transfer("Push", data.push))
        self.pull.on_click(lambda _event: self._transfer("Pull", data.pull))

    # ------------------------------------------------------------------ tracked data

    def _load_status(self) -> data.DataStatus:
        return data.status(self.settings, remote=self.check_remote.value)

    def _render_status(self, status: data.DataStatus) -> list[Any]:
        paths = [e.path for e in status.entries if e.cached]
        if paths and self.path.options != paths:
            self.path.options = paths
            if self.path.value not in paths:
                self.path.value = paths[0]
            else:
                self.history.refresh()
        elif not paths:
            self.history.show(Banner(title="No cached data", text="`dvc add` a file or folder first."))
        counts: dict[str, int] = {}
        for entry in status.entries:
            for name in entry.badges or ["in git"]:
                counts[name] = counts.get(name, 0) + 1
        git = status.git
        where = f"{git.branch or 'detached'} @ {git.head or 'no commit'}" if git else "no git"
        summary = " ".join(f"{fmt.badge(name)} {n}" for name, n in sorted(counts.items()))
        remote = "checked just now" if status.remote_checked else "press “Check the remote” to compare"
        cards = kpis(
            [
                ("Tracked outputs", fmt.number(len(status.entries)), summary, "kpi-tracked"),
                ("Git", html.escape(where), "uncommitted changes" if git and git.dirty else "clean", "kpi-git"),
                ("Remote", html.escape(status.remote or "not checked"), html.escape(remote), "kpi-remote"),
            ]
        )
        rows = [
            [
                f'<span class="wb-mono">{html.escape(e.path)}</span>',
                e.kind,
                " ".join(fmt.badge(b) for b in e.badges) or fmt.badge("in git", "muted"),
                fmt.size(e.size),
                fmt.number(e.nfiles),
                f'<span class="wb-mono">{fmt.short_id(e.hash)}</span>',
                html.escape(e.owner),
            ]
            for e in status.entries
        ]
        notes = [Banner(title=note, tone="muted") for note in status.notes]
        return [
            cards,
            *notes,
            html_pane(
                table(["path", "kind", "status", "size", "files", "hash", "recorded by"], rows, {3, 4}, "tracked")
            ),
        ]

    def _transfer(self, what: str, start: Any) -> None:
        """Start a push or pull job and follow it; the table refreshes when it ends."""

        def follow(job: jobs.Job) -> JobProgress:
            return JobProgress(job, on_finished=lambda _job: self.tracked.refresh())

        run_action(
            self.tracked.outcome,
            lambda: start(self.settings),  # run_action sets the acting user for the audit log
            follow,
            what,
            buttons=(self.push, self.pull),
        )

    # ------------------------------------------------------------------ history and diff

    def _load_revisions(self) -> list[data.DataRevision]:
        return data.revisions(self.settings, self.path.value) if self.path.value else []

    def _render_revisions(self, revisions: list[data.DataRevision]) -> Any:
        options = {f"{r.short_sha} · {r.message[:40]}": r.sha for r in revisions}
        choices = {**options, "HEAD": "HEAD", "workspace (uncommitted)": WORKSPACE}
        if self.rev_a.options != choices:
            self.rev_a.options = choices
            self.rev_b.options = choices
            self.rev_a.value = revisions[1].sha if len(revisions) > 1 else "HEAD"
            self.rev_b.value = revisions[0].sha if len(revisions) > 1 else WORKSPACE
            self.diff.refresh()
        if not revisions:
            return Banner(title="No committed version yet", text="Commit the .dvc file (or dvc.lock) to git.")
        rows = [
            [
                f'<span class="wb-mono">{r.short_sha}</span>',
                html.escape(r.date[:16].replace("T", " ")),
                html.escape(r.author),
                html.escape(r.message),
                fmt.size(r.size),
                fmt.number(r.nfiles),
                f'<span class="wb-mono">{fmt.short_id(r.hash)}</span>',
            ]
            for r in revisions
        ]
        return html_pane(table(["commit", "date", "author", "message", "size", "files", "hash"], rows, {4, 5}, "revs"))

    def _load_diff(self) -> data.DataDiff | None:
        if not self.rev_a.value:
            return None
        rev_b = None if self.rev_b.value == WORKSPACE else self.rev_b.value
        return data.diff(self.settings, self.rev_a.value, rev_b)

    def _render_diff(self, diff: data.DataDiff | None) -> Any:
        if diff is None:
            return Banner(title="Pick two revisions", text="Choose a path with history first.", tone="muted")
        if not diff.changes:
            return Banner(title="No data changes between these revisions", tone="ok", testid="diff-empty")
        rows = [
            [
                fmt.badge(c.change),
                f'<span class="wb-mono">{html.escape(c.path)}</span>'
                + (f' <span class="wb-muted">(was {html.escape(c.old_path)})</span>' if c.old_path else ""),
                f'<span class="wb-mono">{fmt.short_id(c.old_hash)}</span>',
                f'<span class="wb-mono">{fmt.short_id(c.new_hash)}</span>',
            ]
            for c in diff.changes
        ]
        missing = (
            [Banner(title="Not in the local cache: " + ", ".join(diff.not_in_cache), text="Pull them to compare.")]
            if diff.not_in_cache
            else []
        )
        return [html_pane(table(["change", "path", "old hash", "new hash"], rows, testid="diff")), *missing]

    # ------------------------------------------------------------------ pipeline

    def _render_pipeline(self, pipeline: data.Pipeline) -> list[Any]:
        if not pipeline.stages:
            return [Banner(title="No pipeline", text="Add stages with `dvc stage add` (dvc.yaml).", tone="muted")]
        positions = pipeline_layout([s.name for s in pipeline.stages], [(e.stage, e.upstream) for e in pipeline.edges])
        stale = [s for s in pipeline.stages if s.stale]
        headline = (
            Banner(title=f"{len(stale)} stale: " + ", ".join(s.name for s in stale), tone="warn", testid="stale")
            if stale
            else Banner(title="Everything is up to date", tone="ok", testid="stale")
        )
        rows = [
            [
                f"<b>{html.escape(s.name)}</b>",
                fmt.badge("stale" if s.stale else "frozen" if s.frozen else "up to date"),
                html.escape("; ".join(s.changes)) or fmt.DASH,
                f'<span class="wb-mono">{html.escape(" ".join(s.cmd)) or fmt.DASH}</span>',
                html.escape(", ".join(s.outs)),
            ]
            for s in pipeline.stages
        ]
        graph = plots.pipeline_graph(pipeline, positions)
        legend = " &nbsp; ".join(
            f'<span style="color:{colour};font-size:1.2em">●</span> {name}'
            for name, colour in plots.STAGE_COLOURS.items()
        )
        return [
            headline,
            pn.pane.HoloViews(graph, sizing_mode="stretch_width"),
            html_pane(f'<div class="wb-muted">{legend}</div>'),
            html_pane(table(["stage", "status", "what changed", "command", "outputs"], rows, testid="stages")),
        ]


def pipeline_layout(stages: list[str], edges: list[tuple[str, str]]) -> dict[str, tuple[float, float]]:
    """Positions for drawing a pipeline left to right.

    ``edges`` are ``(stage, upstream)`` pairs as :class:`workbench.data.PipelineEdge`
    has them. A stage's column is the length of the longest chain of
    upstreams before it; stages of one column are spread vertically around 0.
    """
    upstreams: dict[str, set[str]] = {name: set() for name in stages}
    for stage, upstream in edges:
        upstreams.setdefault(stage, set()).add(upstream)
        upstreams.setdefault(upstream, set())
    column: dict[str, int] = {}

    def depth(name: str, seen: frozenset[str] = frozenset()) -> int:
        if name not in column:
            parents = [u for u in upstreams[name] if u not in seen]  # a cycle would be a DVC error; never loop
            column[name] = 1 + max((depth(u, seen | {name}) for u in parents), default=-1)
        return column[name]

    for name in upstreams:
        depth(name)
    by_column: dict[int, list[str]] = {}
    for name in sorted(upstreams):
        by_column.setdefault(column[name], []).append(name)
    positions = {}
    for x, names in by_column.items():
        for i, name in enumerate(names):
            positions[name] = (float(x), (len(names) - 1) / 2 - i)
    return positions
