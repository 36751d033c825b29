"""The Experiments page: a runs table paged from the server, metric curves, parallel coordinates.

The table shows one page of a runs search at a time (MLflow's filter and
order syntax, MLflow's page tokens), so it stays fast at 100,000 runs: the
tracking service answers each page from the store's SQL database in
milliseconds. Metric curves of the selected runs are drawn point by point
while short, and rasterized with datashader when long.
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
import panel as pn

from dashboards import format as fmt
from dashboards import plots
from dashboards.components import Banner, Section, html_pane
from dashboards.page import Page
from workbench import tracking
from workbench.config import Settings

PAGE_SIZES = [25, 50, 100]
PARALLEL_RUNS = 300  # runs drawn in the parallel-coordinates view (the first of the current search)
SELECT_FIRST = 3  # runs selected when a page loads, so the curves show something at once
ALL = ""  # the experiment selector's value for "every experiment"
TABLE_CSS = """
.tabulator, .tabulator .tabulator-row, .tabulator .tabulator-cell, .tabulator .tabulator-col-title {
  font-size: 13px !important;
}
.tabulator .tabulator-cell { padding: 5px 8px !important; }
.tabulator .tabulator-row.tabulator-selected { background-color: rgba(29, 95, 191, 0.14) !important;
  color: inherit !important; }
.tabulator .tabulator-row.tabulator-selected:hover { background-color: rgba(29, 95, 191, 0.24) !important; }
"""
BASE_SORTS = {"Start time": "attributes.start_time", "Run name": "attributes.run_name", "Status": "attributes.status"}


@dataclass
class CurvesView:
    """What the metric-curves section shows: the selected runs, their metrics, and the plot of one."""

    selected: list[tracking.RunSummary]
    metrics: list[str]
    metric: str | None
    plot: Any = None
    rasterized: bool = False
    points: int = 0
    labels: list[str] = field(default_factory=list)


class ExperimentsPage(Page):
    """Runs table (server-side paging, filter and sort), overlaid metric curves, parallel coordinates."""

    title = "Experiments"
    slug = "experiments"
    description = "Runs, metric curves and parameters"

    def __init__(self, settings: Settings, **params: Any) -> None:
        super().__init__(settings, **params)
        self.experiment = pn.widgets.Select(label="Experiment", options={"All experiments": ALL}, width=220)
        self.filter = pn.widgets.TextInput(
            label="Filter (MLflow syntax)",
            placeholder="metrics.accuracy > 0.9 and params.model = 'rf'",
            min_width=300,
            sizing_mode="stretch_width",
        )
        self.sort = pn.widgets.Select(label="Sort by", options=dict(BASE_SORTS), width=200)
        self.order = pn.widgets.Select(label="Order", options={"Descending": "DESC", "Ascending": "ASC"}, width=130)
        self.page_size = pn.widgets.Select(label="Rows", options=PAGE_SIZES, value=PAGE_SIZES[0], width=80)
        self.previous = pn.widgets.Button(label="← Previous", disabled=True, width=110)
        self.next = pn.widgets.Button(label="Next →", disabled=True, width=110)
        self.position = html_pane("", margin=(8, 12))
        self.table = pn.widgets.Tabulator(
            pd.DataFrame(),
            selectable="checkbox",
            show_index=False,
            disabled=True,
            sortable=False,
            layout="fit_data_table",
            hidden_columns=["run_id"],
            formatters={"status": {"type": "html"}},
            theme="simple",
            stylesheets=[TABLE_CSS],
            sizing_mode="stretch_width",
            max_height=760,
        )
        self._tokens: list[str | None] = [None]  # page token of each page visited so far
        self._page = 0
        self._next_token: str | None = None
        self._runs: list[tracking.RunSummary] = []
        self._totals: dict[str, int] = {}
        self._experiment_options: dict[str, str] = {}
        self._experiments_loaded = False
        self._syncing_metric = False
        self._metric_picked = False
        self._history_of: list[str] | None = None  # the run ids whose histories are in _histories
        self._histories: dict[str, dict[str, tracking.Series]] = {}

        self.runs = Section(
            "Runs",
            self._load_runs,
            self._render_runs,
            subtitle="Pages come from the server; filter and sort apply to every run, not just this page.",
            tools=[
                pn.Column(
                    # wraps on a narrow page (a JupyterLab tab beside the sidebar) instead of clipping
                    pn.FlexBox(
                        self.experiment,
                        self.filter,
                        self.sort,
                        self.order,
                        self.page_size,
                        flex_wrap="wrap",
                        sizing_mode="stretch_width",
                    ),
                    pn.Row(self.previous, self.next, self.position),
                    sizing_mode="stretch_width",
                )
            ],
        )
        self.metric = pn.widgets.Select(label="Metric", options=[], width=220)
        self.curves = Section(
            "Metric curves",
            self._load_curves,
            self._render_curves,
            subtitle="The selected runs, overlaid by step. Long histories are drawn as an image (datashader).",
            tools=[self.metric],
        )
        self.parallel_metric = pn.widgets.Select(label="Colour by metric", options=[], width=220)
        self.parallel = Section(
            "Parameters against a metric",
            self._load_parallel,
            self._render_parallel,
            subtitle=f"Parallel coordinates of the first {PARALLEL_RUNS} runs of the search above.",
            tools=[self.parallel_metric],
        )
        self.sections = [self.runs]
        self.layout[:] = [self.runs, pn.Row(self.curves, self.parallel, sizing_mode="stretch_width")]

        for widget in (self.experiment, self.sort, self.order, self.page_size):
            widget.param.watch(lambda _event: self._first_page(), "value")
        self.filter.param.watch(lambda _event: self._first_page(), "value")
        self.previous.on_click(lambda _event: self._turn(-1))
        self.next.on_click(lambda _event: self._turn(+1))
        self.table.param.watch(lambda _event: self.curves.refresh(), "selection")
        self.metric.param.watch(lambda _event: self._metric_chosen(), "value")
        self.parallel_metric.param.watch(lambda _event: self.parallel.refresh(), "value")

    # ------------------------------------------------------------------ the search

    def _experiments(self) -> str | None:
        return self.experiment.value or None

    def _order_by(self) -> str:
        return f"{self.sort.value} {self.order.value}"

    def _first_page(self) -> None:
        self._tokens, self._page = [None], 0
        self.runs.refresh()
        self.parallel.refresh()

    def _turn(self, step: int) -> None:
        if step > 0 and self._next_token:
            self._tokens[self._page + 1 : self._page + 2] = [self._next_token]
        self._page = max(0, self._page + step)
        self.runs.refresh()

    def _load_runs(self) -> tracking.RunsPage:
        if not self._experiments_loaded:
            experiments = tracking.list_experiments(self.settings)
            self._experiment_options = {e.name: e.experiment_id for e in experiments}
            self._totals = {e.experiment_id: e.run_count for e in experiments if e.run_count is not None}
        page = tracking.search_runs(
            self.settings,
            self._experiments(),
            self.filter.value.strip(),
            self._order_by(),
            max_results=self.page_size.value,
            page_token=self._tokens[self._page],
        )
        return page

    def _total(self, page: tracking.RunsPage) -> int | None:
        """How many runs the search matches, when known without counting them all.

        Known on the last page, and, without a filter, from the experiments'
        run counts (the fast path keeps them; MLflow's API alone does not).
        """
        if page.next_page_token is None:
            return self._page * self.page_size.value + len(page.runs)
        if self.filter.value.strip() or not self._totals:
            return None
        chosen = self._experiments()
        return self._totals.get(chosen, 0) if chosen else sum(self._totals.values())

    def _render_runs(self, page: tracking.RunsPage) -> Any:
        if not self._experiments_loaded:
            self._experiments_loaded = True
            self.experiment.options = {"All experiments": ALL, **self._experiment_options}
        self._runs = page.runs
        self._next_token = page.next_page_token
        self.previous.disabled = self._page == 0
        self.next.disabled = page.next_page_token is None
        size = self.page_size.value
        first = self._page * size + 1
        total = self._total(page)
        shown = f"{fmt.number(first)}–{fmt.number(first + len(page.runs) - 1)}" if page.runs else "none"
        of = f" of {fmt.number(total)}" if total is not None else ""
        self.position.object = (
            f'<span data-testid="runs-position">Runs {shown}{of} · page {self._page + 1}</span>'
            f' <span class="wb-muted">({html.escape(page.source)} search)</span>'
        )
        metrics = sorted({k for r in page.runs for k in r.metrics})
        params = sorted({k for r in page.runs for k in r.params})
        sorts = dict(BASE_SORTS)
        sorts.update({f"metrics.{k}": f"metrics.`{k}`" for k in metrics})
        sorts.update({f"params.{k}": f"params.`{k}`" for k in params})
        if self.sort.value not in sorts.values():
            sorts[self.sort.value] = self.sort.value
        self.sort.options = sorts
        self._set_metric_options(self.parallel_metric, metrics)
        self.table.value = self._frame(page.runs, metrics, params)
        self.table.text_align = {k: "right" for k in metrics}
        first_runs = list(range(min(SELECT_FIRST, len(page.runs))))
        if self.table.selection == first_runs:
            self.curves.refresh()  # same rows, new runs: the watcher would not fire
        else:
            self.table.selection = first_runs
        if not page.runs:
            return Banner(title="No runs match", text=tracking.SEARCH_HINT, tone="muted", testid="no-runs")
        return self.table

    @staticmethod
    def _frame(runs: list[tracking.RunSummary], metrics: list[str], params: list[str]) -> pd.DataFrame:
        rows = []
        for r in runs:
            row = {
                "run_id": r.run_id,
                "run": r.run_name or r.run_id[:8],
                "status": fmt.badge(r.status),
                "started": fmt.timestamp(r.start_time),
                "duration": fmt.duration(r.start_time, r.end_time),
                "user": r.user or fmt.DASH,
            }
            row.update({f"{k}": fmt.number(r.metrics.get(k)) for k in metrics})
            row.update({f"params.{k}": r.params.get(k, fmt.DASH) for k in params})
            rows.append(row)
        columns = ["run_id", "run", "status", "started", "duration", "user", *metrics, *(f"params.{k}" for k in params)]
        return pd.DataFrame(rows, columns=columns)

    @staticmethod
    def _set_metric_options(select: pn.widgets.Select, keys: list[str]) -> None:
        """Offer ``keys``; keep the current choice when it is still there, else pick the primary metric."""
        if select.options == keys:
            return
        current = select.value
        select.options = keys
        if current in keys:
            return
        select.value = tracking.primary_metric(keys)

    # ------------------------------------------------------------------ curves

    def _selected(self) -> list[tracking.RunSummary]:
        return [self._runs[i] for i in self.table.selection if i < len(self._runs)]

    def _load_curves(self) -> CurvesView:
        """Histories of the selected runs (fetched again only when the selection changed) and the plot.

        Runs in a worker thread: a long history is rasterized here, not in the session's event loop.
        """
        selected = self._selected()
        ids = [r.run_id for r in selected]
        if ids != self._history_of:
            self._histories = tracking.metric_curves(self.settings, selected)
            self._history_of = ids
        histories = self._histories
        chosen = self.metric.value if self._metric_picked else None
        metric = chosen if chosen in histories else tracking.longest_metric(histories)
        view = CurvesView(selected, sorted(histories), metric)
        if selected and metric and histories.get(metric):
            names = {r.run_id: r.run_name or r.run_id[:8] for r in selected}
            labelled = {names[run_id]: series for run_id, series in histories[metric].items()}
            view.labels = list(labelled)
            view.points = sum(len(steps) for steps, _values in labelled.values())
            view.plot, view.rasterized = plots.metric_curves(labelled, metric)
        return view

    def _render_curves(self, view: CurvesView) -> list[Any]:
        self._syncing_metric = True
        try:
            self.metric.param.update(options=view.metrics, value=view.metric)
        finally:
            self._syncing_metric = False
        if not view.selected:
            return [Banner(title="Select runs in the table to overlay their curves", tone="muted")]
        if view.plot is None:
            return [Banner(title="The selected runs log no metric history", tone="muted")]
        legend = " ".join(
            f'<span style="color:{plots.colour_of(i)};font-weight:700">━</span> {html.escape(name)}'
            for i, name in enumerate(view.labels)
        )
        how = "rasterized on the server (datashader)" if view.rasterized else "drawn point by point"
        note = html_pane(
            f'<div data-testid="curves-note" data-rasterized="{str(view.rasterized).lower()}">{legend}'
            f'<div class="wb-muted">{fmt.number(view.points)} points, {how}.</div></div>'
        )
        return [pn.pane.HoloViews(view.plot, sizing_mode="stretch_width"), note]

    def _metric_chosen(self) -> None:
        if not self._syncing_metric:
            self._metric_picked = True  # from now on, keep the person's choice while the runs have it
            self.curves.refresh()

    # ------------------------------------------------------------------ parallel coordinates

    def _load_parallel(self) -> tuple[list[tracking.RunSummary], str | None]:
        metric = self.parallel_metric.value
        if not metric:
            return [], None
        page = tracking.search_runs(
            self.settings,
            self._experiments(),
            self.filter.value.strip(),
            self._order_by(),
            max_results=PARALLEL_RUNS,
        )
        return page.runs, metric

    def _render_parallel(self, loaded: tuple[list[tracking.RunSummary], str | None]) -> Any:
        runs, metric = loaded
        if not metric:
            return Banner(title="No metric to colour by", text="The runs on this page log no metrics.", tone="muted")
        plot = plots.parallel_coordinates(runs, metric)
        if plot is None:
            return Banner(title=f"No run of this search has {metric}", tone="muted")
        return pn.pane.HoloViews(plot, sizing_mode="stretch_width")
