"""The base of every dashboard page: a Panel ``Viewer`` over the workspace settings.

A page works in three places: the standalone app (``workbench dashboard``),
a JupyterLab main-area tab, and inline in a notebook (``OverviewPage(settings)``
as the last expression of a cell, after ``pn.extension("tabulator")``). It
paints at once and loads its sections in the background the first time it is
shown; :meth:`Page.refresh` loads everything again.
"""

from __future__ import annotations

import contextlib
from typing import Any, ClassVar

import panel as pn

from dashboards.components import Section, warm_up
from workbench import data, registry, tracking
from workbench.config import Settings
from workbench.errors import WorkbenchError


def first_calls(settings: Settings) -> None:
    """Make the first calls into MLflow and DVC one after another (they import their backends on first use).

    Errors are left for the pages to show; only the imports matter here.
    """
    for first_call in (
        lambda: tracking.search_runs(settings, max_results=1),
        lambda: registry.list_models(settings),
        lambda: data.status(settings),
    ):
        with contextlib.suppress(WorkbenchError):
            first_call()


class Page(pn.viewable.Viewer):
    """A full-page view; subclasses fill ``self.sections`` and ``self.layout`` in their constructor."""

    title: ClassVar[str] = ""
    slug: ClassVar[str] = ""
    description: ClassVar[str] = ""

    def __init__(self, settings: Settings, **params: Any) -> None:
        super().__init__(**params)
        self.settings = settings
        self.sections: list[Section] = []
        self.layout = pn.Column(sizing_mode="stretch_width")
        self._loaded = False

    def __panel__(self) -> pn.Column:
        if not self._loaded:
            self._loaded = True
            pn.state.onload(self.refresh)
        return self.layout

    def refresh(self) -> None:
        """Load every section again (each in the background, each with its own spinner)."""
        self._loaded = True
        warm_up(lambda: first_calls(self.settings))
        for section in self.sections:
            section.refresh()

    def shown(self) -> None:
        """Called by the app when the page becomes the visible one (live pages start their updates)."""

    def hidden(self) -> None:
        """Called by the app when another page replaces this one (live pages pause their updates)."""
