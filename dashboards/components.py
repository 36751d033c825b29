"""Building blocks every page uses: sections that load in the background, banners, KPI cards, job progress.

A slow backend never blocks a page: a :class:`Section` paints its title and a
spinner at once, runs its loader in a worker thread, and then shows what the
loader returned, or an :class:`ErrorBanner` with the error's message and
hint. Errors are :class:`~workbench.errors.WorkbenchError`\\ s; anything else
is logged with its traceback and shown as an unexpected error, never as a
traceback.
"""

from __future__ import annotations

import asyncio
import html
import logging
import threading
from collections.abc import Callable
from typing import Any, TypeVar

import panel as pn
import param

from dashboards import format as fmt
from workbench import audit, jobs
from workbench.errors import WorkbenchError

log = logging.getLogger(__name__)

T = TypeVar("T")

# Shared look, applied inside each HTML pane's shadow root (page CSS does not reach there).
STYLES = """
:host { width: 100%; }
.wb-h { margin: 0 0 4px 0; font-size: 1.15em; font-weight: 600; }
h4 { margin: 12px 0 4px 0; font-size: 0.95em; font-weight: 600; }
.wb-sub { margin: 0 0 8px 0; opacity: 0.7; font-size: 0.9em; }
.wb-kpis { display: flex; flex-wrap: wrap; gap: 12px; }
.wb-kpi { flex: 1 1 150px; border: 1px solid rgba(127,127,127,0.28); border-radius: 8px; padding: 10px 14px; }
.wb-kpi .label { font-size: 0.8em; text-transform: uppercase; letter-spacing: 0.04em; opacity: 0.7; }
.wb-kpi .value { font-size: 1.8em; font-weight: 650; line-height: 1.25; }
.wb-kpi .note { font-size: 0.85em; opacity: 0.75; }
.wb-banner { border-radius: 8px; padding: 10px 14px; border: 1px solid; margin: 2px 0; }
.wb-banner .title { font-weight: 650; }
.wb-banner .text { margin-top: 2px; }
.wb-banner.bad { background: rgba(179,38,30,0.10); border-color: rgba(179,38,30,0.55); }
.wb-banner.warn { background: rgba(178,106,0,0.12); border-color: rgba(178,106,0,0.6); }
.wb-banner.info { background: rgba(29,95,191,0.10); border-color: rgba(29,95,191,0.5); }
.wb-banner.ok { background: rgba(31,122,69,0.10); border-color: rgba(31,122,69,0.55); }
.wb-banner.muted { background: rgba(107,114,128,0.10); border-color: rgba(107,114,128,0.5); }
table.wb-table { border-collapse: collapse; width: 100%; font-size: 0.92em; }
table.wb-table th { text-align: left; font-weight: 600; opacity: 0.75; border-bottom: 1px solid rgba(127,127,127,0.35);
  padding: 4px 8px; }
table.wb-table td { padding: 4px 8px; border-bottom: 1px solid rgba(127,127,127,0.15); vertical-align: top; }
table.wb-table td.num, table.wb-table th.num { text-align: right; font-variant-numeric: tabular-nums; }
.wb-bar { height: 8px; border-radius: 4px; background: rgba(127,127,127,0.2); overflow: hidden; min-width: 80px; }
.wb-bar > div { height: 100%; border-radius: 4px; }
.wb-muted { opacity: 0.7; }
.wb-mono { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: 0.9em; }
"""

SECTION_STYLES = {
    "border": "1px solid rgba(127,127,127,0.28)",
    "border-radius": "10px",
    "padding": "6px 12px 10px 12px",
}


def html_pane(text: str, **kwargs: Any) -> pn.pane.HTML:
    """An HTML pane that carries the shared styles."""
    kwargs.setdefault("sizing_mode", "stretch_width")
    return pn.pane.HTML(text, stylesheets=[STYLES], **kwargs)


def as_error(exc: BaseException, what: str) -> WorkbenchError:
    """The error to show for ``exc``: itself when it is a WorkbenchError, else a logged unexpected error."""
    if isinstance(exc, WorkbenchError):
        return exc
    log.error("Loading %s failed unexpectedly", what, exc_info=exc)
    return WorkbenchError(
        f"Loading {what} failed unexpectedly ({type(exc).__name__}: {exc})", "The dashboard's log has the details."
    )


_warm = threading.Event()
_warm_started = False
_warm_guard = threading.Lock()
WARM_UP_WAIT_S = 120.0


def warm_up(prepare: Callable[[], None]) -> None:
    """Run ``prepare()`` once per process, in a thread, before any background load starts its work.

    The services import their backends (MLflow, DVC) on first use, and those
    packages break when two threads import them at the same time; ``prepare``
    makes the first calls one after another. Pages call this before loading.
    """
    global _warm_started
    with _warm_guard:
        if _warm_started:
            return
        _warm_started = True

    def run() -> None:
        try:
            prepare()
        except Exception:
            log.exception("Warming up the services failed; pages will show their own errors")
        finally:
            _warm.set()

    threading.Thread(target=run, name="workbench-dashboard-warm-up", daemon=True).start()


def _after_warm_up(work: Callable[[], T]) -> T:
    if _warm_started:
        _warm.wait(WARM_UP_WAIT_S)
    return work()


def run_in_background(
    work: Callable[[], T],
    done: Callable[[T], None],
    failed: Callable[[WorkbenchError], None],
    what: str,
) -> None:
    """Run ``work()`` in a worker thread, then ``done(result)`` or ``failed(error)`` in the session's event loop.

    Works in a served session (the session's loop), in a notebook (the
    kernel's loop) and in plain Python (runs to completion before returning).
    """

    async def run() -> None:
        try:
            result = await asyncio.to_thread(_after_warm_up, work)
        except Exception as exc:
            failed(as_error(exc, what))
            return
        done(result)

    pn.state.execute(run)


def run_action(
    outcome: pn.Column,
    work: Callable[[], T],
    done: Callable[[T], Any],
    what: str,
    *,
    buttons: tuple[pn.widgets.Widget, ...] = (),
) -> None:
    """Run a state-changing action from a button without blocking the page.

    ``buttons`` are disabled meanwhile; ``outcome`` shows a spinner, then what
    ``done(result)`` returns, or the error's banner. The action is recorded in
    the audit log as the signed-in user when the dashboard has authentication.
    """
    for button in buttons:
        button.disabled = True
    outcome[:] = [loading(f"{what}…")]
    user = pn.state.user

    def work_as_user() -> T:
        with audit.acting_as(user):
            return work()

    def finished(result: T) -> None:
        for button in buttons:
            button.disabled = False
        shown = done(result)
        outcome[:] = shown if isinstance(shown, list) else [shown]

    def failed(error: WorkbenchError) -> None:
        for button in buttons:
            button.disabled = False
        outcome[:] = [ErrorBanner.of(error)]

    run_in_background(work_as_user, finished, failed, what.lower())


class Banner(pn.viewable.Viewer):
    """A plain, coloured message across the page: what happened, and what to do about it."""

    title = param.String(default="", doc="The message, in one line.")
    text = param.String(default="", doc="More detail or what to do (optional).")
    tone = param.Selector(default="info", objects=["ok", "warn", "bad", "info", "muted"])
    testid = param.String(default="banner", doc="The data-testid browser tests find it by.")

    def __panel__(self) -> pn.pane.HTML:
        return html_pane(self._html(), margin=(4, 0))

    def _html(self) -> str:
        text = f'<div class="text">{html.escape(self.text)}</div>' if self.text else ""
        return (
            f'<div class="wb-banner {self.tone}" role="alert" data-testid="{self.testid}">'
            f'<div class="title">{html.escape(self.title)}</div>{text}</div>'
        )


class ErrorBanner(Banner):
    """A failed call: the error's message and its hint, never a traceback."""

    @classmethod
    def of(cls, error: WorkbenchError | dict[str, str]) -> ErrorBanner:
        """The banner for a WorkbenchError or its ``to_dict()`` form (as jobs report errors)."""
        if isinstance(error, WorkbenchError):
            return cls(title=error.message, text=error.hint, tone="bad", testid="error-banner")
        return cls(title=error.get("error", ""), text=error.get("hint", ""), tone="bad", testid="error-banner")


def loading(text: str) -> pn.Row:
    """A spinner with a line saying what is being loaded."""
    return pn.Row(
        pn.indicators.LoadingSpinner(value=True, size=22, color="secondary", margin=(4, 8)),
        html_pane(f'<span class="wb-muted" data-testid="loading">{html.escape(text)}</span>', margin=(6, 0)),
        sizing_mode="stretch_width",
    )


def heading(title: str, subtitle: str = "") -> pn.pane.HTML:
    """A section title with an optional one-line explanation under it."""
    sub = f'<p class="wb-sub">{html.escape(subtitle)}</p>' if subtitle else ""
    return html_pane(f'<h3 class="wb-h">{html.escape(title)}</h3>{sub}', margin=(4, 0, 0, 0))


def card(title: str, subtitle: str, *objects: Any) -> pn.Column:
    """A framed area with a title, for content that does not load by itself (forms, action results)."""
    return pn.Column(
        heading(title, subtitle), *objects, sizing_mode="stretch_width", styles=SECTION_STYLES, margin=(6, 4)
    )


def kpis(cards: list[tuple[str, str, str, str]]) -> pn.pane.HTML:
    """A row of big numbers: ``(label, value, note, testid)`` each."""
    items = "".join(
        f'<div class="wb-kpi" data-testid="{html.escape(testid)}"><div class="label">{html.escape(label)}</div>'
        f'<div class="value">{html.escape(value)}</div><div class="note">{note}</div></div>'
        for label, value, note, testid in cards
    )
    return html_pane(f'<div class="wb-kpis">{items}</div>')


def table(headers: list[str], rows: list[list[str]], numeric: set[int] | None = None, testid: str = "") -> str:
    """A small static HTML table; cells are HTML already (escape text with :func:`html.escape`)."""
    numeric = numeric or set()
    head = "".join(f'<th class="{"num" if i in numeric else ""}">{h}</th>' for i, h in enumerate(headers))
    body = "".join(
        "<tr>" + "".join(f'<td class="{"num" if i in numeric else ""}">{c}</td>' for i, c in enumerate(row)) + "</tr>"
        for row in rows
    )
    return f'<table class="wb-table" data-testid="{testid}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def bar(percent: float | None, tone: fmt.Tone = "info") -> str:
    """A thin horizontal bar for a 0..100 value."""
    colour = {"ok": "#1f7a45", "warn": "#b26a00", "bad": "#b3261e", "info": "#1d5fbf", "muted": "#6b7280"}[tone]
    width = 0.0 if percent is None else max(0.0, min(100.0, percent))
    return f'<div class="wb-bar"><div style="width:{width:.1f}%;background:{colour};"></div></div>'


class Section(pn.viewable.Viewer):
    """A titled area of a page whose content is loaded in the background.

    ``load`` runs in a worker thread and calls services; ``render`` turns its
    result into Panel objects in the session's event loop. ``tools`` (widgets
    that steer the section) stay above the content across refreshes, and so
    does ``outcome``, where actions started from the tools report. Until the result is
    there the section shows a spinner; a failed load shows an
    :class:`ErrorBanner`. :meth:`refresh` loads again (a result that arrives
    after a newer refresh started is dropped).
    """

    def __init__(
        self,
        title: str,
        load: Callable[[], Any],
        render: Callable[[Any], Any],
        *,
        subtitle: str = "",
        tools: list[Any] | None = None,
        framed: bool = True,
        **layout: Any,
    ) -> None:
        super().__init__()
        self.title = title
        self._load = load
        self._render = render
        self._generation = 0
        self._shown = False  # whether content (not the first spinner) is in place
        self.body = pn.Column(loading(f"Loading {title.lower() or 'data'}…"), sizing_mode="stretch_width")
        self.outcome = pn.Column(sizing_mode="stretch_width")
        parts: list[Any] = [heading(title, subtitle)] if title else []
        if tools:
            parts.append(pn.Row(*tools, sizing_mode="stretch_width"))
        parts += [self.outcome, self.body]
        layout.setdefault("sizing_mode", "stretch_width")
        if framed:
            layout.setdefault("styles", SECTION_STYLES)
        layout.setdefault("margin", (6, 4))
        self._layout = pn.Column(*parts, **layout)

    def __panel__(self) -> pn.Column:
        return self._layout

    def refresh(self) -> None:
        """Load the content again in the background; the spinner shows meanwhile."""
        self._generation += 1
        generation = self._generation
        if self._shown:
            self.body.loading = True  # keep what is there, greyed out under a spinner, until the new content
        else:
            self.body[:] = [loading(f"Loading {self.title.lower() or 'data'}…")]

        def done(result: Any) -> None:
            if generation != self._generation:
                return
            try:
                content = self._render(result)
            except Exception as exc:
                self.show_error(as_error(exc, self.title.lower() or "this section"))
                return
            self.show(content)

        def failed(error: WorkbenchError) -> None:
            if generation == self._generation:
                self.show_error(error)

        run_in_background(self._load, done, failed, self.title.lower() or "this section")

    def show(self, content: Any) -> None:
        """Replace the content without loading (a pending load's result is dropped)."""
        self._generation += 1
        self._shown = True
        self.body.loading = False
        self.body[:] = content if isinstance(content, list) else [content]

    def show_error(self, error: WorkbenchError) -> None:
        """Replace the content with the error's banner."""
        self.show(ErrorBanner.of(error))


class JobProgress(pn.viewable.Viewer):
    """Follows one job (:mod:`workbench.jobs`) to its end: a progress bar, its message, then its outcome.

    Job events arrive in the job's worker thread; they are handed to the
    session's event loop with Bokeh's thread-safe ``add_next_tick_callback``.
    ``on_finished(job)`` runs in the event loop once the job ended.
    """

    def __init__(self, job: jobs.Job, *, on_finished: Callable[[jobs.Job], None] | None = None) -> None:
        super().__init__()
        self._on_finished = on_finished
        self._bar = pn.indicators.Progress(value=-1, max=100, sizing_mode="stretch_width", height=14, margin=(4, 0))
        self._text = html_pane("", margin=(0, 0))
        self._outcome = pn.Column(sizing_mode="stretch_width")
        self._layout = pn.Column(self._bar, self._text, self._outcome, sizing_mode="stretch_width")
        self._doc = pn.state.curdoc
        self._ended = False
        self._job_id = job.id
        self._unsubscribe = jobs.manager().subscribe(self._on_event)
        if self._doc is not None and self._doc.session_context is not None:
            pn.state.on_session_destroyed(lambda _context: self._unsubscribe())
        self._show(jobs.manager().get(job.id))

    def __panel__(self) -> pn.Column:
        return self._layout

    def _on_event(self, event: jobs.JobEvent) -> None:
        """Called in the job's thread: pass the snapshot to the session."""
        if event.job.id != self._job_id:
            return
        if self._doc is not None and self._doc.session_context is not None:
            self._doc.add_next_tick_callback(lambda: self._show(event.job))
        else:
            pn.state.execute(lambda: self._show(event.job))

    def _show(self, job: jobs.Job) -> None:
        if self._ended:
            return
        if job.total:
            self._bar.value = int(100 * (job.done or 0) / job.total)
        elif job.finished:
            self._bar.value = 100
        else:
            self._bar.value = -1  # indeterminate
        counts = f" ({job.done:,} of {job.total:,})" if job.total else ""
        label = f"{job.kind} — {job.state}{counts}"
        message = f" · {html.escape(job.message)}" if job.message else ""
        self._text.object = f'<span data-testid="job-state">{fmt.badge(job.state)}</span> {html.escape(label)}{message}'
        if not job.finished:
            return
        self._ended = True
        self._unsubscribe()
        self._bar.visible = False
        if job.error:
            self._outcome[:] = [ErrorBanner.of(job.error)]
        if self._on_finished is not None:
            self._on_finished(job)
