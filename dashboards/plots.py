"""HoloViews plots of service records: metric curves, parallel coordinates, the pipeline graph.

Every builder takes records (or plain data shaped from them) and returns a
HoloViews object; pages wrap it in ``pn.pane.HoloViews``. Long metric
histories are rasterized with datashader on the server, so the browser gets an
image of the curves instead of every point.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import holoviews as hv
import holoviews.plotting.bokeh  # registers the Bokeh backend, which styling options need
import numpy as np

from workbench.data import Pipeline
from workbench.tracking import RunSummary

# Above this many points in all curves together, curves are rasterized (datashader).
RASTERIZE_ABOVE = 50_000
# Pixels of the image long curves are rasterized into (width, height).
RASTER_SIZE = (1000, 320)
# Curves this short also get a marker per point (a single point draws no line).
MARKERS_UP_TO = 30
# Category10: distinct on light and dark backgrounds.
PALETTE = (
    "#1f77b4",
    "#ff7f0e",
    "#2ca02c",
    "#d62728",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#7f7f7f",
    "#bcbd22",
    "#17becf",
)
STAGE_COLOURS = {"up to date": "#1f7a45", "stale": "#b26a00", "frozen": "#6b7280", "data source": "#1d5fbf"}


def colour_of(index: int) -> str:
    """The palette colour for the ``index``-th series."""
    return PALETTE[index % len(PALETTE)]


def metric_curves(
    curves: dict[str, tuple[list[int], list[float]]], metric: str, *, height: int = 320
) -> tuple[hv.Element | hv.Overlay, bool]:
    """One curve per run (label -> steps, values), overlaid; returns ``(plot, rasterized)``.

    With more than :data:`RASTERIZE_ABOVE` points the overlay is datashaded
    into an image right here (one colour per run, the same colours as
    :func:`colour_of` gives the labels in order), so call this in a worker
    thread: the session's event loop then only sends the image.
    """
    labels = list(curves)
    colours = {label: colour_of(i) for i, label in enumerate(labels)}
    total = sum(len(steps) for steps, _values in curves.values())
    elements = {
        label: hv.Curve((np.asarray(steps), np.asarray(values, dtype=float)), "step", metric, label=label)
        for label, (steps, values) in curves.items()
    }
    common = {
        "height": height,
        "responsive": True,
        "show_grid": True,
        "xlabel": "step",
        "ylabel": metric,
        "xformatter": "%d",
        "title": "",
    }
    if total > RASTERIZE_ABOVE:
        import datashader as ds
        from holoviews.operation.datashader import datashade, dynspread

        overlay = hv.NdOverlay(elements, kdims="run")
        shaded = datashade(
            overlay,
            aggregator=ds.by("run", ds.count()),
            color_key=colours,
            min_alpha=80,
            width=RASTER_SIZE[0],
            height=RASTER_SIZE[1],
            dynamic=False,
        )
        return dynspread(shaded, threshold=0.6, dynamic=False).opts(**common), True
    styled: list[hv.Element] = []
    for label, curve in elements.items():
        styled.append(curve.opts(color=colours[label], line_width=2, tools=["hover"], muted_alpha=0.1))
        if len(curve) <= MARKERS_UP_TO:  # few points (or one): show each of them
            styled.append(hv.Scatter(curve.data, "step", metric, label=label).opts(color=colours[label], size=7))
    return hv.Overlay(styled).opts(show_legend=False, padding=0.05, **common), False


# ----------------------------------------------------------------------------- parallel coordinates


@dataclass
class Axis:
    """One vertical axis of a parallel-coordinates plot (a param's name, or the metric's last);
    ``ticks`` are (position in 0..1, label)."""

    name: str
    ticks: list[tuple[float, str]]


def _numeric(values: list[str]) -> list[float] | None:
    try:
        return [float(v) for v in values]
    except ValueError:
        return None


def _scale(value: float, low: float, high: float) -> float:
    return 0.5 if high == low else (value - low) / (high - low)


def parallel_axes(
    runs: list[RunSummary], metric: str, max_params: int = 8
) -> tuple[list[Axis], list[tuple[list[float], float, str]]]:
    """Axes and one line per run: the params that vary across ``runs``, then ``metric``.

    A param becomes an axis when at least half the runs have it and it takes
    two values or more; numeric params scale linearly, others are spread as
    categories. Each line is ``(positions in 0..1 per axis, metric value,
    run name)``; NaN marks a missing param. Runs without the metric are left out.
    """
    with_metric = [r for r in runs if r.metrics.get(metric) is not None and not math.isnan(r.metrics[metric])]
    if not with_metric:
        return [], []
    keys = sorted({k for r in with_metric for k in r.params})
    chosen = [
        k
        for k in keys
        if sum(k in r.params for r in with_metric) * 2 >= len(with_metric)
        and len({r.params[k] for r in with_metric if k in r.params}) > 1
    ][:max_params]
    axes: list[Axis] = []
    positions: dict[str, dict[str, float]] = {}  # param -> value -> position
    for key in chosen:
        values = sorted({r.params[key] for r in with_metric if key in r.params})
        numbers = _numeric(values)
        if numbers is not None:
            low, high = min(numbers), max(numbers)
            positions[key] = {v: _scale(n, low, high) for v, n in zip(values, numbers, strict=True)}
            ticks = sorted({(positions[key][v], v) for v in values}, key=lambda t: t[0])
            if len(ticks) > 6:  # a continuous param: label its ends and middle only
                ticks = [ticks[0], ticks[len(ticks) // 2], ticks[-1]]
        else:
            step = 1 / max(1, len(values) - 1)
            positions[key] = {v: i * step for i, v in enumerate(values)}
            ticks = [(positions[key][v], v) for v in values][:12]
        axes.append(Axis(key, ticks))
    scores = [r.metrics[metric] for r in with_metric]
    low, high = min(scores), max(scores)
    axes.append(Axis(metric, [(0.0, f"{low:.4g}"), (0.5, f"{(low + high) / 2:.4g}"), (1.0, f"{high:.4g}")]))
    lines = []
    for run, score in zip(with_metric, scores, strict=True):
        ys = [positions[k].get(run.params[k], math.nan) if k in run.params else math.nan for k in chosen]
        lines.append(([*ys, _scale(score, low, high)], score, run.run_name or run.run_id[:8]))
    return axes, lines


def parallel_coordinates(runs: list[RunSummary], metric: str, *, height: int = 340) -> hv.Overlay | None:
    """Params against ``metric``: one line per run, coloured by the metric; None when no run has it."""
    axes, lines = parallel_axes(runs, metric)
    if not lines:
        return None
    xs = list(range(len(axes)))
    # one segment per run and pair of neighbouring axes: a single columnar element renders fast
    segments = [
        (x, ys[x], x + 1, ys[x + 1], score, name)
        for ys, score, name in lines
        for x in xs[:-1]
        if not (math.isnan(ys[x]) or math.isnan(ys[x + 1]))
    ]
    paths = hv.Segments(segments, kdims=["x0", "y0", "x1", "y1"], vdims=[metric, "run"]).opts(
        color=metric,
        cmap="viridis",
        colorbar=True,
        line_width=2,
        alpha=0.75 if len(lines) <= 50 else 0.35,  # many runs: let the dense bands show through
        tools=["hover"],
        hover_tooltips=[("run", "@run"), (metric, f"@{{{metric}}}")],
    )
    rails = hv.Overlay([hv.VLine(x).opts(color="#888888", line_width=1) for x in xs])
    ticks = hv.Labels(
        [(x, pos, label) for x, axis in zip(xs, axes, strict=True) for pos, label in axis.ticks],
        kdims=["x", "y"],
        vdims="label",
    ).opts(text_font_size="8pt", text_align="left", xoffset=0.04, text_color="#777777")
    return (rails * paths * ticks).opts(
        height=height,
        responsive=True,
        xticks=[(x, axis.name) for x, axis in zip(xs, axes, strict=True)],
        yaxis=None,
        xlabel="",
        ylim=(-0.08, 1.08),
        xlim=(-0.2, len(axes) - 0.5),
        show_grid=False,
        toolbar=None,
    )


# ----------------------------------------------------------------------------- pipeline graph


def stage_status(stale: bool, frozen: bool, kind: str) -> str:
    """The word a pipeline node is coloured by: stale, frozen, data source (unchanged) or up to date."""
    if stale:
        return "stale"
    if frozen:
        return "frozen"
    return "data source" if kind == "source" else "up to date"


def _edge_path(start: tuple[float, float], end: tuple[float, float]) -> np.ndarray:
    """A straight line to the next column; an arc over the stages in between for a longer edge."""
    (x0, y0), (x1, y1) = start, end
    if abs(x1 - x0) <= 1:
        return np.array([start, end])
    t = np.linspace(0, 1, 24)[:, None]
    control = np.array([(x0 + x1) / 2, max(y0, y1) + 0.45 * abs(x1 - x0)])
    return (1 - t) ** 2 * np.array(start) + 2 * (1 - t) * t * control + t**2 * np.array(end)


def pipeline_graph(pipeline: Pipeline, positions: dict[str, tuple[float, float]]) -> hv.Overlay:
    """The pipeline left to right: data sources and stages as nodes, arrows from each upstream to its stage.

    An edge that skips columns arcs over the stages between, so it never hides behind them.
    """
    stages = {s.name: s for s in pipeline.stages}
    names = [n for n in positions if n in stages]
    statuses = [stage_status(stages[n].stale, stages[n].frozen, stages[n].kind) for n in names]
    nodes = hv.Nodes(
        (
            [positions[n][0] for n in names],
            [positions[n][1] for n in names],
            names,
            statuses,
            [" ".join(stages[n].cmd) or "(data source)" for n in names],
            ["; ".join(stages[n].changes) or "none" for n in names],
        ),
        vdims=["status", "cmd", "changes"],
    )
    edges = [(e.upstream, e.stage) for e in pipeline.edges if e.upstream in positions and e.stage in positions]
    paths = [_edge_path(positions[a], positions[b]) for a, b in edges]
    graph = hv.Graph((edges, nodes, paths)).opts(
        directed=True,
        arrowhead_length=0.04,
        node_size=28,
        node_color="status",
        cmap=STAGE_COLOURS,
        edge_color="#888888",
        edge_line_width=2,
        tools=["hover"],
        inspection_policy="nodes",
    )
    labels = hv.Labels(
        ([positions[n][0] for n in names], [positions[n][1] - 0.28 for n in names], names),
        ["x", "y"],
        "text",
    ).opts(text_font_size="10pt", text_color="#666666")
    xs = [p[0] for p in positions.values()] or [0.0]
    ys = [p[1] for p in positions.values()] or [0.0]
    arc = max((0.45 * abs(positions[b][0] - positions[a][0]) for a, b in edges), default=0.0)
    top = max(ys) + (arc / 2 if arc > 0.45 else 0) + 0.4  # a quadratic arc peaks halfway to its control point
    return (graph * labels).opts(
        height=int(90 * (top - min(ys) + 0.7) + 60),
        responsive=True,
        xaxis=None,
        yaxis=None,
        show_grid=False,
        xlim=(min(xs) - 0.5, max(xs) + 0.5),
        ylim=(min(ys) - 0.7, top),
        toolbar=None,
        show_legend=False,
    )
