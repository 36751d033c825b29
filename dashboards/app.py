"""The standalone dashboard: every page in one Bootstrap template, served by Panel.

- :func:`create_app` builds one browser session's app (a fresh set of page
  objects per session); ``?page=experiments`` opens a page directly and
  ``&embed=true`` drops the template (for a JupyterLab main-area tab).
- :func:`serve` runs the server: loopback by default; any other address
  needs authentication (Panel's basic auth or OAuth) unless ``insecure``.

The page makes no request outside the machine: BootstrapTemplate and Panel's
bundled resources are served by this server, and no page loads web fonts.
"""

from __future__ import annotations

import html
import ipaddress
import logging
import secrets
import socket
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import panel as pn
import param

from dashboards.components import html_pane
from dashboards.data import DataPage
from dashboards.experiments import ExperimentsPage
from dashboards.gpus import GpuPage
from dashboards.overview import OverviewPage
from dashboards.page import Page
from dashboards.registry import RegistryPage
from workbench.config import Settings
from workbench.errors import Conflict, InvalidInput

log = logging.getLogger(__name__)

PAGES: dict[str, type[Page]] = {
    page.slug: page for page in (OverviewPage, DataPage, ExperimentsPage, RegistryPage, GpuPage)
}
DEFAULT_PORT = 5006
EXTENSIONS = ("tabulator",)


class WorkbenchApp(pn.viewable.Viewer):
    """One browser session's dashboard: a navigation list and the page it selects.

    Pages are built the first time they are shown and kept for the session,
    so going back to a page shows it as it was; "Refresh" reloads the page in
    view. Only the page in view runs live updates.
    """

    page = param.Selector(default="overview", objects=list(PAGES), doc="The page in view.")
    embed = param.Boolean(default=False, doc="Show the page alone, without the template (JupyterLab tabs).")

    def __init__(self, settings: Settings, gpu_source: str | None = None, **params: Any) -> None:
        super().__init__(**params)
        self.settings = settings
        self.gpu_source = gpu_source
        self._pages: dict[str, Page] = {}
        self._main = pn.Column(sizing_mode="stretch_width")
        self._nav = {
            slug: pn.widgets.Button(
                label=cls.title,
                color="primary",
                variant="outline",
                sizing_mode="stretch_width",
                margin=(3, 8),
            )
            for slug, cls in PAGES.items()
        }
        for slug, button in self._nav.items():
            button.on_click(lambda _event, slug=slug: setattr(self, "page", slug))
        self._refresh = pn.widgets.Button(
            label="Refresh this page", variant="outline", sizing_mode="stretch_width", margin=(12, 8)
        )
        self._refresh.on_click(lambda _event: self.current.refresh())
        self._show_page()

    @property
    def current(self) -> Page:
        """The page in view (built on first use)."""
        if self.page not in self._pages:
            cls = PAGES[self.page]
            self._pages[self.page] = (
                cls(self.settings, gpu_source=self.gpu_source) if cls in (OverviewPage, GpuPage) else cls(self.settings)
            )
        return self._pages[self.page]

    @param.depends("page", watch=True)
    def _show_page(self) -> None:
        for page in self._pages.values():
            page.hidden()
        for slug, button in self._nav.items():
            button.variant = "solid" if slug == self.page else "outline"
        page = self.current
        self._main[:] = [
            html_pane(
                f'<h2 style="margin:4px 0 0 4px;font-size:1.45em;font-weight:650">{html.escape(page.title)}</h2>'
                f'<p class="wb-sub" style="margin-left:4px">{html.escape(page.description)}</p>'
            ),
            page,
        ]
        page.shown()

    def sidebar(self) -> list[Any]:
        """The navigation, the workspace it shows, and the refresh button."""
        settings = self.settings
        where = html.escape(str(settings.workspace))
        tracking = html.escape(settings.tracking_uri)
        about = html_pane(
            '<div class="wb-sub" style="margin-top:14px">Workspace</div>'
            f'<div class="wb-mono" data-testid="workspace" style="word-break:break-all">{where}</div>'
            '<div class="wb-sub" style="margin-top:8px">MLflow</div>'
            f'<div class="wb-mono" style="word-break:break-all">{tracking}</div>',
            margin=(8, 10),
        )
        return [*self._nav.values(), self._refresh, about]

    def __panel__(self) -> pn.Column:
        return self._main


def create_app(settings: Settings, gpu_source: str | None = None) -> pn.template.BootstrapTemplate | pn.Column:
    """The dashboard for one browser session (call it once per session).

    Reads ``?page=<slug>`` (and keeps it in step with the page in view) and
    ``?embed=true`` from the URL when served.
    """
    pn.extension(*EXTENSIONS, sizing_mode="stretch_width")
    _local_stylesheets()
    app = WorkbenchApp(settings, gpu_source=gpu_source)
    if pn.state.location is not None:
        pn.state.location.sync(app, {"page": "page", "embed": "embed"})
    if app.embed:
        return pn.Column(app, sizing_mode="stretch_width")
    template = pn.template.BootstrapTemplate(
        title="Workbench",
        sidebar=app.sidebar(),
        main=[app],
        sidebar_width=240,
        header_background="#1d3557",
    )
    return template


def _local_stylesheets() -> None:
    """Point this session's component stylesheets at this server before any component exists.

    Panel resolves a component's stylesheet URLs against the document's
    ``dist_url`` and falls back to its CDN while that is unset; it sets it only
    when the page is rendered, after the session's components were built. Until
    then every component is built with CDN URLs, and Panel's design stylesheets
    are shared between sessions, so one session being built flipped another
    session's live stylesheets to the CDN (seen under load, with Bokeh's
    "reference already known" warning). Setting it first closes the window;
    Panel later writes the same value.

    A served session is a document with a session context (``pn.state.served``
    is true only inside ``panel serve script.py``, not for ``pn.serve(func)``).
    """
    from panel.io.resources import get_dist_path

    doc = pn.state.curdoc
    if doc is not None and doc.session_context is not None:
        doc._template_variables.setdefault("dist_url", get_dist_path(cdn=False))


# ----------------------------------------------------------------------------- serving


@dataclass(frozen=True)
class OAuth:
    """Panel's OAuth options (see Panel's "Configuring OAuth" guide)."""

    provider: str
    key: str
    secret: str
    redirect_uri: str | None = None
    encryption_key: str | None = None


@dataclass
class RunningDashboard:
    """A dashboard served in a background thread (``serve(..., block=False)``)."""

    url: str
    port: int
    address: str
    stop: Callable[[], None]


def is_loopback(address: str) -> bool:
    """Whether ``address`` only accepts connections from this machine."""
    if address == "localhost":
        return True
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False


def check_bind(address: str, *, basic_auth: str | None, oauth: OAuth | None, insecure: bool) -> str | None:
    """Refuse a non-loopback address without authentication; returns the warning to print, if any."""
    if is_loopback(address) or basic_auth or oauth:
        return None
    if not insecure:
        raise InvalidInput(
            f"Refusing to serve the dashboard on {address} without authentication: anyone who can reach that "
            "address could promote models, deploy and move data",
            "Pass --basic-auth (a password, or a JSON file of user: password), or the OAuth options "
            "(--oauth-provider, --oauth-key, --oauth-secret); or --insecure on a network you trust.",
        )
    return (
        f"serving on {address} WITHOUT authentication (--insecure): anyone who can reach this port can "
        "promote models, deploy and move data."
    )


def _port(address: str, port: int | None) -> int:
    """The port to serve on: ``port``; by default 5006, or a free one when 5006 is taken."""
    host = "127.0.0.1" if address in ("localhost", "") else address
    candidates = [port] if port is not None else [DEFAULT_PORT, 0]
    for candidate in candidates:
        with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
            try:
                probe.bind((host, candidate))
            except OSError as exc:
                if port is not None:
                    raise Conflict(
                        f"Cannot listen on {address}:{port} ({exc.strerror})",
                        "Pick another --port, or leave it out to use a free one.",
                    ) from exc
                continue
            return probe.getsockname()[1]
    raise Conflict(f"No free port on {address}", "Pass --port.")


def _origins(address: str, port: int, extra: tuple[str, ...]) -> list[str]:
    """Host:port names the browser may use to open the websocket (Bokeh checks the Origin header)."""
    names = {"localhost", "127.0.0.1"}
    if not is_loopback(address):
        names |= {socket.gethostname(), socket.getfqdn()}
        if address not in ("0.0.0.0", "::"):
            names.add(address)
    return sorted({f"{name}:{port}" for name in names} | set(extra))


def serve(
    settings: Settings,
    port: int | None = None,
    address: str = "127.0.0.1",
    show: bool = True,
    gpu_source: str | None = None,
    *,
    basic_auth: str | None = None,
    oauth: OAuth | None = None,
    cookie_secret: str | None = None,
    insecure: bool = False,
    allow_origins: tuple[str, ...] = (),
    block: bool = True,
    say: Callable[[str], None] = print,
    session_expiry_ms: int | None = None,
) -> RunningDashboard:
    """Serve the dashboard for ``settings``' workspace and print its URL.

    ``block=True`` (the CLI) serves until Ctrl-C; ``block=False`` serves in a
    background thread and returns at once (call ``stop()`` on the result).
    ``gpu_source`` overrides ``settings.gpu_source`` for the GPU views (the
    demo passes ``"simulated"`` on a machine without NVML). ``basic_auth`` is
    a password or the path of a JSON file of ``{user: password}``.
    ``session_expiry_ms`` shortens how long a closed browser tab's session
    lingers (Bokeh's default is about 15 s).
    """
    if oauth is not None and not (oauth.provider and oauth.key and oauth.secret):
        raise InvalidInput("OAuth needs a provider, a key and a secret", "Pass --oauth-key and --oauth-secret too.")
    warning = check_bind(address, basic_auth=basic_auth, oauth=oauth, insecure=insecure)
    if warning:
        log.warning("Dashboard %s", warning)
        say(f"Warning: {warning}")
    chosen = _port(address, port)
    options: dict[str, Any] = {
        "port": chosen,
        "address": address,
        "websocket_origin": _origins(address, chosen, allow_origins),
        "show": show,
        "title": "Workbench",
        "verbose": False,
    }
    if basic_auth or oauth:
        options["cookie_secret"] = cookie_secret or secrets.token_urlsafe(32)
    if basic_auth:
        options["basic_auth"] = basic_auth
    elif oauth:
        options.update(oauth_provider=oauth.provider, oauth_key=oauth.key, oauth_secret=oauth.secret)
        if oauth.redirect_uri:
            options["oauth_redirect_uri"] = oauth.redirect_uri
        if oauth.encryption_key:
            options["oauth_encryption_key"] = oauth.encryption_key
    if session_expiry_ms is not None:
        options["unused_session_lifetime_milliseconds"] = session_expiry_ms
        options["check_unused_sessions_milliseconds"] = max(100, session_expiry_ms // 2)
    host = "localhost" if is_loopback(address) else (address if address not in ("0.0.0.0", "::") else socket.getfqdn())
    url = f"http://{host}:{chosen}/"
    say(f"Workbench dashboard for {settings.workspace}: {url}" + ("  (Ctrl-C to stop)" if block else ""))

    # The page's scripts and stylesheets always come from this server, never a CDN (closed
    # networks): pin Bokeh's resource mode, which notebook-style rendering elsewhere may change.
    from bokeh.settings import settings as bokeh_settings

    bokeh_settings.resources.set_value("server")

    def session() -> Any:
        return create_app(settings, gpu_source)

    if not block:
        thread = pn.serve(session, threaded=True, **options)

        def stop() -> None:
            thread.stop()
            thread.join(timeout=15)

        return RunningDashboard(url=url, port=chosen, address=address, stop=stop)
    server = pn.serve(session, threaded=False, start=False, **options)
    server.start()
    try:
        server.io_loop.start()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
    say("Dashboard stopped.")
    return RunningDashboard(url=url, port=chosen, address=address, stop=lambda: None)
