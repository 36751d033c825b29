"""The notebook magics' live and plotted views: the GPU watch, run comparison plots, dashboard pages.

Everything here needs a rich frontend (a Jupyter kernel); the magics fall
back to text elsewhere. The GPU watch reads the process's one GPU sampler;
plots and pages come from the dashboard (:mod:`dashboards`), so a notebook
shows what the dashboard shows.
"""

from __future__ import annotations

import datetime as _dt
import threading
import time
from typing import TYPE_CHECKING, Any

from workbench import _magics_render as render
from workbench.config import Settings
from workbench.errors import InvalidInput

if TYPE_CHECKING:
    from workbench.gpu.model import GpuSample
    from workbench.gpu.sampler import Sampler
    from workbench.tracking import RunComparison

_watches: list[GpuWatch] = []
_watches_lock = threading.Lock()
_loaded_extensions: set[str] = set()


# --------------------------------------------------------------------------- the live GPU view


class GpuWatch:
    """A GPU view that updates in place in its output cell from the sampler's thread, for ``seconds``.

    The kernel stays free: the updates are display updates sent from the
    sampler's thread after each sample. :meth:`stop` ends it early; the last
    sample stays on screen, marked stopped.
    """

    def __init__(self, sampler: Sampler, seconds: float) -> None:
        self.sampler = sampler
        self.seconds = seconds
        self.updates = 0
        self._handle: Any = None
        self._unsubscribe: Any = None
        self._timer: threading.Timer | None = None
        self._lock = threading.Lock()
        self._until = 0.0
        self._stopped = False

    def start(self) -> GpuWatch:
        """Show the view in the current output and keep it updated."""
        from IPython.display import HTML, display

        self._until = time.time() + self.seconds
        first = self.sampler.latest(wait=min(5.0, 5 * self.sampler.interval))
        self._handle = display(HTML(self._html(first)), display_id=True)
        with _watches_lock:
            _watches.append(self)
        self._unsubscribe = self.sampler.subscribe(self._show)
        self._timer = threading.Timer(self.seconds, self.stop)
        self._timer.daemon = True
        self._timer.start()
        return self

    def latest(self) -> GpuSample | None:
        """The newest sample the view shows."""
        return self.sampler.latest()

    @property
    def live(self) -> bool:
        return self._handle is not None and not self._stopped

    def stop(self) -> None:
        """Stop updating; the view keeps the last sample and says it stopped."""
        if self._unsubscribe is not None:
            self._unsubscribe()
        if self._timer is not None:
            self._timer.cancel()
        with _watches_lock:
            if self in _watches:
                _watches.remove(self)
        with self._lock:  # after the last live update, never before it
            if self._stopped:
                return
            self._stopped = True
            self._update(self.sampler.latest())

    def _show(self, sample: GpuSample) -> None:
        with self._lock:
            if self._stopped:
                return
            self.updates += 1
            self._update(sample)

    def _update(self, sample: GpuSample | None) -> None:
        from IPython.display import HTML

        if self._handle is not None:
            self._handle.update(HTML(self._html(sample)))

    def _html(self, sample: GpuSample | None) -> str:
        blocks = render.gpu_view(sample) if sample is not None else [render.Line("Waiting for a first sample...")]
        if self._stopped:
            footer = f"stopped after {self.updates} updates"
        else:
            until = _dt.datetime.fromtimestamp(self._until).strftime("%H:%M:%S")
            footer = f"live, every {self.sampler.interval:g} s until {until} (%wb gpu --stop ends it)"
        return render.to_html([*blocks, render.Line(footer, "muted")])

    def __repr__(self) -> str:
        state = "live" if self.live else "stopped"
        return (
            f"<GPU watch, {self.sampler.source.name} source, {state}; .stop() ends it, .latest() is the newest sample>"
        )

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(repr(self))


def stop_watches() -> int:
    """Stop every live GPU view of this process; returns how many were live."""
    with _watches_lock:
        live = list(_watches)
    for watch in live:
        watch.stop()
    return len(live)


# --------------------------------------------------------------------------- plots and dashboard pages


def _load_extension(name: str) -> None:
    """Load HoloViews' or Panel's notebook support once per kernel (it sends their JavaScript)."""
    if name in _loaded_extensions:
        return
    if name == "holoviews":
        import holoviews as hv

        hv.extension("bokeh", logo=False)
    else:
        import panel as pn

        from dashboards.app import EXTENSIONS

        pn.extension(*EXTENSIONS)
    _loaded_extensions.add(name)


def comparison_plot(comparison: RunComparison) -> Any:
    """Every metric's curves, one run per curve and one plot per metric (None when no run logged a metric)."""
    if not comparison.metrics:
        return None
    import holoviews as hv

    from dashboards.plots import metric_curves

    _load_extension("holoviews")
    names = [r.run_name or r.run_id[:8] for r in comparison.runs]
    labels = {
        r.run_id: name if names.count(name) == 1 else f"{name} ({r.run_id[:8]})"
        for r, name in zip(comparison.runs, names, strict=True)
    }
    plots = []
    for key, series in comparison.metrics.items():
        curves = {}
        for run_id, values in series["values"].items():
            points = [(step, value) for step, value in zip(series["steps"], values, strict=True) if value is not None]
            if points:
                curves[labels[run_id]] = ([step for step, _ in points], [value for _, value in points])
        plot, _rasterized = metric_curves(curves, key, height=260)
        plots.append(plot.opts(title=key, responsive=False, width=440))
    return hv.Layout(plots).cols(2)


def dashboard_pages() -> list[str]:
    """The pages ``%wb dashboard`` can show: the standalone dashboard's pages."""
    from dashboards.app import PAGES

    return list(PAGES)


def dashboard(settings: Settings, page: str) -> Any:
    """One page of the dashboard, inline; it loads its sections in the background and runs its own live updates."""
    from dashboards.app import PAGES, WorkbenchApp

    if page not in PAGES:
        raise InvalidInput(f"The dashboard has no page {page!r}", f"Pages: {', '.join(PAGES)}.")
    _load_extension("panel")
    return WorkbenchApp(settings, page=page)
