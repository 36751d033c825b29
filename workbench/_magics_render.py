"""How the notebook magics show the services' records: plain text and HTML from one description.

Each ``*_view`` function turns a record into a list of blocks (:class:`Line`
and :class:`Table`); :func:`to_text` renders them for a terminal IPython and
``repr``, :func:`to_html` as escaped HTML for notebooks. The magics return the
records themselves: lists come back as :class:`RecordList` subclasses (lists
with a rich display), single records get IPython display formatters
(:func:`register_formatters`), so ``runs = %wb runs`` holds plain records and
the cell still shows a table.
"""

from __future__ import annotations

import datetime as _dt
import html
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from workbench.cli import table

if TYPE_CHECKING:
    from workbench.deploy import Deployment
    from workbench.errors import WorkbenchError
    from workbench.gpu.model import GpuSample
    from workbench.overview import WorkspaceStatus
    from workbench.registry import AliasMove, ModelDetail, ModelInfo, PromotionComparison
    from workbench.tracked_run import TrackedRun
    from workbench.tracking import RunComparison, RunDetail, RunSummary

GIB = 1024**3
MAX_METRIC_COLUMNS = 6
_TONES = {"ok": "#1a7f37", "warn": "#9a6700", "error": "#cf222e", "muted": "#6e7781"}


@dataclass
class Line:
    """A line of text; ``tone`` (ok, warn, error, muted, title) only colours or bolds it in HTML."""

    text: str
    tone: str = ""


@dataclass
class Table:
    """A table of already formatted cells, with an optional title above it."""

    headers: Sequence[str]
    rows: list[list[str]]
    title: str | None = None


Block = Line | Table


# --------------------------------------------------------------------------- rendering


def to_text(blocks: Iterable[Block]) -> str:
    """Plain text: lines as they are, tables padded to their widest cell."""
    parts = []
    for block in blocks:
        if isinstance(block, Line):
            parts.append(block.text)
        else:
            if block.title:
                parts.append(block.title)
            parts.append(table(block.rows, block.headers))
    return "\n".join(parts)


def to_html(blocks: Iterable[Block]) -> str:
    """Escaped HTML: a ``div`` holding paragraphs and tables."""
    parts = ['<div class="workbench-view">']
    for block in blocks:
        if isinstance(block, Line):
            style = "margin:2px 0"
            if block.tone:
                style += ";font-weight:bold" if block.tone == "title" else f";color:{_TONES[block.tone]}"
            parts.append(f'<div style="{style}">{html.escape(block.text)}</div>')
            continue
        if block.title:
            parts.append(f'<div style="font-weight:bold;margin:8px 0 2px">{html.escape(block.title)}</div>')
        head = "".join(f"<th>{html.escape(h)}</th>" for h in block.headers)
        body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in block.rows)
        parts.append(f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")
    parts.append("</div>")
    return "".join(parts)


def cell(value: Any) -> str:
    """One table cell: ``-`` for nothing, four significant digits for floats."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return str(value) if not math.isfinite(value) else f"{value:.4g}"
    return str(value)


def when(ms: int | None) -> str:
    """A time MLflow stores (ms since the epoch) in local time."""
    if not ms:
        return "-"
    return _dt.datetime.fromtimestamp(ms / 1000).strftime("%Y-%m-%d %H:%M:%S")


def gib(value: float | None) -> str:
    return "-" if value is None else f"{value / GIB:.1f} GiB"


# --------------------------------------------------------------------------- views


def error_lines(exc: WorkbenchError) -> list[str]:
    """A WorkbenchError as a person reads it: the message, the hint, a log tail when there is one."""
    lines = [f"Error: {exc.message}"]
    if exc.hint:
        lines.append(f"Hint: {exc.hint}")
    tail = getattr(exc, "log_tail", "")
    if tail:
        lines += ["", "Log tail:", tail.rstrip()]
    return lines


def status_view(status: WorkspaceStatus) -> list[Block]:
    blocks: list[Block] = [
        Line(f"Workspace {status.workspace}", "title"),
        Line(f"git: {cell(status.git)}   dvc: {cell(status.dvc)}   MLflow: {status.tracking_uri}"),
    ]
    parts: dict[str, Callable[[], list[Block]]] = {
        "data": lambda: _data_blocks(status.data),
        "experiments": lambda: _experiments_blocks(status.experiments),
        "models": lambda: models_view(status.models),
    }
    for part, view in parts.items():
        blocks.append(Line(part.capitalize(), "title"))
        error = status.errors.get(part)
        if error:
            blocks.append(Line(error["error"], "warn"))
            if error.get("hint"):
                blocks.append(Line(f"Hint: {error['hint']}", "muted"))
        else:
            blocks += view()
    return blocks


def _data_blocks(data_status: Any) -> list[Block]:
    entries = getattr(data_status, "entries", None) or []
    if not entries:
        return [Line("nothing tracked yet", "muted")]
    rows = [[e.path, e.kind, ", ".join(e.badges) or "unchanged", e.owner] for e in entries]
    return [Table(["path", "kind", "status", "tracked by"], rows)]


def _experiments_blocks(experiments: Sequence[Any]) -> list[Block]:
    if not experiments:
        return [Line("no experiments yet", "muted")]
    return [Table(["name", "id", "runs"], [[e.name, e.experiment_id, cell(e.runs)] for e in experiments])]


def runs_view(runs: Sequence[RunSummary], next_page_token: str | None = None) -> list[Block]:
    if not runs:
        return [Line("No runs match.", "muted")]
    from workbench.tracked_run import METRICS

    # the runs' own metrics first, then what %%wb track measured
    keys = sorted({k for r in runs for k in r.metrics}, key=lambda k: (k in METRICS, k))[:MAX_METRIC_COLUMNS]
    rows = [[r.run_id, r.run_name, r.status, when(r.start_time), *(cell(r.metrics.get(k)) for k in keys)] for r in runs]
    blocks: list[Block] = [Table(["run", "name", "status", "started", *keys], rows)]
    if next_page_token:
        blocks.append(Line(f"More runs: add --page-token {next_page_token}", "muted"))
    return blocks


def run_view(run: RunDetail) -> list[Block]:
    blocks: list[Block] = [
        Line(f"Run {run.run_name or '-'} ({run.run_id})", "title"),
        Line(
            f"status {run.status}   experiment {run.experiment_id}   started {when(run.start_time)}   "
            f"ended {when(run.end_time)}   user {run.user or '-'}"
        ),
    ]
    lineage = run.lineage
    if lineage is not None:
        dirty = " (uncommitted changes)" if lineage.dirty else ""
        blocks.append(Line(f"code: commit {lineage.commit or '-'}{dirty}, branch {lineage.branch or '-'}"))
        if lineage.data_dirty:
            blocks.append(Line("tracked data differed from the commit", "warn"))
        if lineage.data:
            blocks.append(Table(["path", "DVC hash"], [[p, h] for p, h in lineage.data.items()], "Data"))
    if run.params:
        blocks.append(Table(["param", "value"], [[k, v] for k, v in run.params.items()], "Params"))
    if run.metrics:
        blocks.append(Table(["metric", "value"], [[k, cell(v)] for k, v in run.metrics.items()], "Metrics"))
    tags = {k: v for k, v in run.tags.items() if not k.startswith("mlflow.")}
    if tags:
        blocks.append(Table(["tag", "value"], [[k, v] for k, v in tags.items()], "Tags"))
    if run.artifacts:
        rows = [[a.path + ("/" if a.is_dir else ""), cell(a.size)] for a in run.artifacts]
        blocks.append(Table(["path", "bytes"], rows, "Artifacts"))
    if run.artifacts_error:
        blocks.append(Line(f"Artifacts not listed: {run.artifacts_error}", "warn"))
    return blocks


def run_comparison_view(comparison: RunComparison) -> list[Block]:
    labels = [r.run_name or r.run_id[:8] for r in comparison.runs]
    blocks: list[Block] = [
        Table(["run", "name", "status"], [[r.run_id, r.run_name, r.status] for r in comparison.runs], "Runs")
    ]
    if comparison.params_differ:
        rows = [
            [key, *(cell(values.get(r.run_id)) for r in comparison.runs)]
            for key, values in comparison.params_differ.items()
        ]
        blocks.append(Table(["param", *labels], rows, "Params that differ"))
    else:
        blocks.append(Line("All params are the same.", "muted"))
    if comparison.metrics:
        rows = [
            [key, *(cell(_last(series["values"].get(r.run_id, []))) for r in comparison.runs)]
            for key, series in comparison.metrics.items()
        ]
        blocks.append(Table(["metric (last value)", *labels], rows, "Metrics"))
    return blocks


def _last(values: list[float | None]) -> float | None:
    return next((v for v in reversed(values) if v is not None), None)


def models_view(models: Sequence[ModelInfo]) -> list[Block]:
    if not models:
        return [Line("No registered models yet.", "muted")]
    rows = [
        [
            m.name,
            cell(m.latest_version),
            ", ".join(f"@{a} -> v{v}" for a, v in sorted(m.aliases.items())) or "-",
            when(m.updated),
        ]
        for m in models
    ]
    return [Table(["model", "latest", "aliases", "updated"], rows)]


def model_detail_view(detail: ModelDetail) -> list[Block]:
    rows = [
        [f"v{v.version}", " ".join(f"@{a}" for a in v.aliases) or "-", v.status, v.run_id or "-", when(v.created)]
        for v in detail.versions
    ]
    return [Line(detail.model.name, "title"), Table(["version", "aliases", "status", "run", "created"], rows)]


def promotion_view(comparison: PromotionComparison) -> list[Block]:
    current = f"v{comparison.current.version}" if comparison.current else "nobody"
    candidate = f"v{comparison.candidate.version}"
    blocks: list[Block] = [
        Line(f"Promote {comparison.model} {candidate} to @{comparison.alias} (now: {current})", "title")
    ]
    if comparison.metrics:
        rows = [[m.key, cell(m.candidate), cell(m.current), cell(m.delta)] for m in comparison.metrics]
        blocks.append(Table(["metric", candidate, current, "delta"], rows))
    if comparison.params_differ:
        rows = [[k, cell(v["current"]), cell(v["candidate"])] for k, v in comparison.params_differ.items()]
        blocks.append(Table(["param", current, candidate], rows, "Params that change"))
    lineage = comparison.candidate.lineage
    if lineage is not None and lineage.commit:
        dirty = " (uncommitted changes)" if lineage.dirty or lineage.data_dirty else ""
        blocks.append(Line(f"lineage: commit {lineage.commit[:10]}{dirty}, data {', '.join(lineage.data) or '-'}"))
    for gate in comparison.gates:
        mark = "pass" if gate.passed else "FAIL"
        blocks.append(Line(f"gate [{mark}] {gate.gate}: {gate.detail}", "ok" if gate.passed else "error"))
    return blocks


def move_view(move: AliasMove) -> list[Block]:
    before = f"v{move.before}" if move.before else "nobody"
    after = f"v{move.after}" if move.after else "nobody (alias removed)"
    blocks: list[Block] = [Line(f"@{move.alias} of {move.model}: {before} -> {after}", "ok")]
    if move.overridden_gates:
        blocks.append(Line(f"Gates overridden (audited): {', '.join(move.overridden_gates)}", "warn"))
    blocks += [Line(f"deployment {d.name} now serves {after}") for d in move.deployments]
    blocks += [Line(f"deployment not switched: {e['error']}", "warn") for e in move.deployment_errors]
    return blocks


def deployments_view(deployments: Sequence[Deployment]) -> list[Block]:
    if not deployments:
        return [Line("No deployments yet.", "muted")]
    rows = [
        [
            d.name,
            d.model_ref,
            cell(d.version),
            d.state,
            cell(d.endpoint),
            cell(d.restarts),
            cell(d.last_error),
        ]
        for d in deployments
    ]
    return [Table(["name", "model", "version", "state", "endpoint", "restarts", "last error"], rows)]


def gpu_view(sample: GpuSample) -> list[Block]:
    """One GPU sample; ``n/a`` for readings a GPU does not report, "simulated" wherever readings are made up."""
    from workbench.gpu.model import fmt

    stamp = _dt.datetime.fromtimestamp(sample.timestamp).strftime("%H:%M:%S")
    blocks: list[Block] = [Line(f"GPUs on {sample.host} (source {sample.source}) at {stamp}", "title")]
    if sample.simulated:
        blocks.append(Line("SIMULATED READINGS: made-up numbers for a demo, not real GPUs", "warn"))
    if not sample.available:
        blocks.append(Line(f"No GPU readings: {sample.reason}", "warn"))
        return blocks
    rows = [
        [
            str(g.index),
            (g.name or "n/a") + (" [simulated]" if g.simulated and "simulated" not in (g.name or "") else ""),
            g.state,
            fmt(g.utilization_gpu, "%"),
            fmt(g.utilization_memory, "%"),
            "n/a" if g.memory_used is None else f"{gib(g.memory_used)} / {gib(g.memory_total)}",
            fmt(g.temperature, " C"),
            "n/a" if g.power is None else f"{fmt(g.power)} / {fmt(g.power_limit)} W",
        ]
        for g in sample.gpus
    ]
    headers = ["gpu", "name", "state", "util", "mem util", "memory used / total", "temp", "power / limit"]
    blocks.append(Table(headers, rows))
    blocks += [Line(f"error on GPU {key}: {error}", "error") for key, error in sample.errors.items()]
    if sample.processes:
        rows = [
            [
                str(p.gpu_index),
                str(p.pid),
                p.user or "n/a",
                "n/a" if p.used_memory is None else gib(p.used_memory),
                p.notebook_path or "-",
                (p.command or "n/a")[:60],
            ]
            for p in sample.processes
        ]
        blocks.append(Table(["gpu", "pid", "user", "memory", "notebook", "command"], rows, "Processes"))
    return blocks


def tracked_run_view(run: TrackedRun) -> list[Block]:
    blocks: list[Block] = [
        Line(
            f"Tracked run {run.run_name} ({run.run_id}) in experiment '{run.experiment}': "
            f"{run.status} in {run.duration_s:.2f} s",
            "ok" if run.status == "FINISHED" else "error",
        )
    ]
    lineage = run.lineage
    if lineage is None:
        blocks.append(Line(f"lineage not recorded: {run.lineage_error}", "warn"))
    else:
        code = f"commit {lineage.commit[:10]}" if lineage.commit else "no git commit"
        if lineage.dirty:
            code += " (uncommitted changes)"
        data = ", ".join(f"{p} {h[:8]}" for p, h in lineage.data.items()) or "none tracked"
        params = "params.yaml recorded" if lineage.params_sha256 else "no params.yaml"
        blocks.append(Line(f"lineage: {code}; data: {data}; {params}"))
    usage = run.gpu
    if usage is None:
        blocks.append(Line(f"GPU: no readings ({run.gpu_unavailable})", "muted"))
    else:
        label = f"{usage.source}, simulated" if usage.simulated and usage.source != "simulated" else usage.source
        blocks.append(
            Line(
                f"GPU ({label}, {usage.gpus} GPUs, {usage.samples} samples): utilization mean "
                f"{cell(usage.utilization_mean)}% max {cell(usage.utilization_max)}%, memory used max "
                f"{gib(usage.memory_used_max_bytes)}"
            )
        )
    return blocks


# --------------------------------------------------------------------------- rich lists


class RecordList(list):
    """A list of records that shows itself as a table (HTML in notebooks, text elsewhere).

    Subclasses name the view that describes them (``view``), or override ``_blocks``.
    """

    view: Callable[[Any], list[Block]]

    def _blocks(self) -> list[Block]:
        return type(self).view(self)

    def _repr_html_(self) -> str:
        return to_html(self._blocks())

    def __repr__(self) -> str:
        return to_text(self._blocks())

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(repr(self))


class RunList(RecordList):
    """Runs from ``%wb runs``; ``next_page_token`` continues the search (None: last page)."""

    def __init__(self, runs: Iterable[RunSummary], next_page_token: str | None = None) -> None:
        super().__init__(runs)
        self.next_page_token = next_page_token

    def _blocks(self) -> list[Block]:
        return runs_view(self, self.next_page_token)


class ModelList(RecordList):
    """Registered models from ``%wb models``."""

    view = models_view


class DeploymentList(RecordList):
    """Deployments from ``%wb deployments``."""

    view = deployments_view


# --------------------------------------------------------------------------- single records


def _gpu_text(sample: GpuSample) -> str:
    from workbench.gpu.cli import render_text

    return render_text(sample)


# "module.Class" of a record -> its view; a renderer of text alone where the CLI's own text exists
VIEWS: dict[str, Callable[[Any], list[Block]]] = {
    "workbench.overview.WorkspaceStatus": status_view,
    "workbench.tracking.RunDetail": run_view,
    "workbench.tracking.RunSummary": lambda run: runs_view([run]),
    "workbench.tracking.RunComparison": run_comparison_view,
    "workbench.registry.ModelInfo": lambda model: models_view([model]),
    "workbench.registry.ModelDetail": model_detail_view,
    "workbench.registry.PromotionComparison": promotion_view,
    "workbench.registry.AliasMove": move_view,
    "workbench.deploy.Deployment": lambda deployment: deployments_view([deployment]),
    "workbench.gpu.model.GpuSample": gpu_view,
    "workbench.tracked_run.TrackedRun": tracked_run_view,
}
TEXT_OVERRIDES: dict[str, Callable[[Any], str]] = {"workbench.gpu.model.GpuSample": _gpu_text}


def register_formatters(shell: Any) -> Callable[[], None]:
    """Show the records above as tables in ``shell``; returns the function that puts the old formatters back.

    Registered by name, so no service module is imported until a record is shown.
    """
    html_formatter = shell.display_formatter.formatters["text/html"]
    text_formatter = shell.display_formatter.formatters["text/plain"]
    previous: list[tuple[Any, str, Any]] = []
    for name, view in VIEWS.items():
        module, _, cls = name.rpartition(".")
        render_text = TEXT_OVERRIDES.get(name) or (lambda record, view=view: to_text(view(record)))
        for formatter, func in (
            (html_formatter, lambda record, view=view: to_html(view(record))),
            (text_formatter, lambda record, _p, _cycle, render=render_text: _p.text(render(record))),
        ):
            previous.append((formatter, name, formatter.for_type_by_name(module, cls, func)))

    def restore() -> None:
        for formatter, name, old in reversed(previous):
            formatter.pop(name, None)
            if old is not None:
                module, _, cls = name.rpartition(".")
                formatter.for_type_by_name(module, cls, old)

    return restore
