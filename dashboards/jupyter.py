"""The dashboard inside the Jupyter server: JupyterLab's main-area tabs, no extra port.

The Workbench server extension mounts the Panel app under
``<base_url>workbench/dashboard/``, in the Jupyter server's own process and
event loop (so the GPU page shares the server's one sampler):

- ``.../dashboard/open?page=<slug>&embed=true`` is a Jupyter handler: Jupyter
  authenticates the request (token or login cookie, as for every other
  route), then it sets a signed, HttpOnly, SameSite=Strict ticket cookie for
  the dashboard's path and redirects to the app.
- Everything else under the prefix (the page, its static files, its
  WebSocket) passes a gate: with a valid ticket it goes to Bokeh's own
  Tornado application, built on first use; without one, a page is sent back
  to ``open`` (which asks Jupyter again) and anything else gets a 403. No
  port is opened: requests reach Bokeh's handlers through the Jupyter
  server's router.

The ticket is signed with a secret that lives only in this process and
expires after a day; it carries the Jupyter user's name.
"""

from __future__ import annotations

import logging
import secrets
import shutil
import tempfile
import threading
from typing import Any
from urllib.parse import urlencode

import tornado.web
from tornado.routing import PathMatches, Router

from workbench.config import Settings

log = logging.getLogger(__name__)

COOKIE = "workbench-dashboard"
TICKET_DAYS = 1


class DashboardMount:
    """The dashboard app of one Jupyter server, built the first time it is opened."""

    def __init__(self, prefix: str, settings: Any, gpu_source: Any = None) -> None:
        """``prefix``: the URL path, e.g. ``/workbench/dashboard``; ``settings``: a callable returning Settings."""
        self.prefix = prefix.rstrip("/")
        self.settings = settings
        self.gpu_source = gpu_source
        self.secret = secrets.token_bytes(32)
        self._server: Any = None
        self._lock = threading.Lock()

    # --------------------------------------------------------------- tickets

    def ticket(self, user: str) -> bytes:
        return tornado.web.create_signed_value(self.secret, COOKIE, user)

    def user_of(self, ticket: str | None) -> str | None:
        """The Jupyter user a ticket names, or None (no ticket, forged or expired)."""
        if not ticket:
            return None
        value = tornado.web.decode_signed_value(self.secret, COOKIE, ticket, max_age_days=TICKET_DAYS)
        return value.decode() if value else None

    def user(self, handler: tornado.web.RequestHandler) -> str | None:
        """The user of a request (Bokeh's auth hook: the session's ``pn.state.user``)."""
        return self.user_of(handler.get_cookie(COOKIE))

    # ----------------------------------------------------------------- app

    @property
    def app(self) -> Any:
        """Bokeh's Tornado application serving the dashboard (built on first use)."""
        with self._lock:
            if self._server is None:
                self._server = self._build()
            return self._server._tornado

    def _build(self) -> Any:
        import panel as pn
        from bokeh.settings import settings as bokeh_settings

        from dashboards.app import create_app

        bokeh_settings.resources.set_value("server")  # scripts and styles from this server, never a CDN

        def session() -> Any:
            settings: Settings = self.settings()
            return create_app(settings, self.gpu_source)

        # Bokeh's server insists on listening somewhere: a Unix socket in a private folder,
        # closed at once (requests come through the Jupyter server's router instead).
        folder = tempfile.mkdtemp(prefix="workbench-dashboard-")
        try:
            server = pn.io.server.get_server(
                {"app": session},
                unix_socket=f"{folder}/bokeh.sock",
                prefix=self.prefix,
                websocket_origin="*",  # the ticket is SameSite=Strict: other sites cannot use it
                auth_provider=_ticket_auth(self),
                title="Workbench",
                show=False,
                start=False,
            )
            server._http.stop()
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        server.start()
        log.info("Workbench dashboard mounted at %s/", self.prefix)
        return server

    def stop(self) -> None:
        with self._lock:
            if self._server is not None:
                self._server.stop()
                self._server = None


def _ticket_auth_class() -> type:
    from bokeh.server.auth_provider import AuthProvider

    class TicketAuth(AuthProvider):
        """Bokeh's auth hook: the user named by a valid ticket, else back to ``open``."""

        def __init__(self, mount: DashboardMount) -> None:
            self.mount = mount
            super().__init__()

        @property
        def get_user(self) -> Any:
            return self.mount.user

        @property
        def get_login_url(self) -> Any:
            return self._login_url

        def _login_url(self, handler: tornado.web.RequestHandler) -> str:
            from panel.io.server import LoginUrlMixin

            # Panel's page handler prefixes "." to this URL (relative to the page); others take it as is
            return "/open" if isinstance(handler, LoginUrlMixin) else f"{self.mount.prefix}/open"

    return TicketAuth


def _ticket_auth(mount: DashboardMount) -> Any:
    """The auth provider (its class is made on first use: Bokeh is imported only then)."""
    return _ticket_auth_class()(mount)


def install(web_app: tornado.web.Application, mount: DashboardMount) -> None:
    """Add the dashboard's routes to the Jupyter server: ``open`` (authenticated by Jupyter) and the app."""
    from jupyter_server.base.handlers import JupyterHandler

    class OpenHandler(JupyterHandler):
        """Jupyter authenticates; the answer is a ticket cookie and a redirect to the app."""

        @tornado.web.authenticated
        async def get(self) -> None:
            user = self.current_user
            name = getattr(user, "username", None) or str(user)
            self.set_cookie(
                COOKIE,
                mount.ticket(name).decode(),
                path=f"{mount.prefix}/",
                httponly=True,
                samesite="Strict",
                secure=self.request.protocol == "https",
            )
            target = self.get_argument("next", "")
            if not target.startswith(f"{mount.prefix}/") or target.startswith(f"{mount.prefix}/open"):
                query = {k: self.get_argument(k) for k in ("page", "embed") if self.get_argument(k, None)}
                target = f"{mount.prefix}/app" + (f"?{urlencode(query)}" if query else "")
            self.redirect(target)

    web_app.add_handlers(".*$", [(f"{mount.prefix}/open", OpenHandler)])
    # The app's rule targets a router, not a handler class, so it goes through Tornado's own
    # add_handlers: Jupyter's check for decorated handler methods cannot look inside a router.
    # The router itself is the gate: it passes only requests with a valid ticket (static files too).
    tornado.web.Application.add_handlers(
        web_app, ".*$", [(PathMatches(f"{mount.prefix}/.*"), _AppRouter(web_app, mount))]
    )


class _AppRouter(Router):
    """The gate: a request with a valid ticket goes to Bokeh's application, any other back to ``open``."""

    def __init__(self, web_app: tornado.web.Application, mount: DashboardMount) -> None:
        self.web_app = web_app
        self.mount = mount

    def find_handler(self, request: Any, **kwargs: Any) -> Any:
        morsel = request.cookies.get(COOKIE)
        if morsel is not None and self.mount.user_of(morsel.value):
            return self.mount.app.find_handler(request, **kwargs)
        return self.web_app.get_handler_delegate(request, _ToOpen, {"mount": self.mount})


class _ToOpen(tornado.web.RequestHandler):
    """No ticket (or a forged or expired one): a page goes back to ``open``; anything else is refused."""

    def initialize(self, mount: DashboardMount) -> None:
        self.mount = mount

    def get(self, *args: Any) -> None:
        if self.request.headers.get("Upgrade", "").lower() == "websocket":
            raise tornado.web.HTTPError(403)
        self.redirect(f"{self.mount.prefix}/open?{urlencode({'next': self.request.uri})}")

    def prepare(self) -> None:
        if self.request.method != "GET":
            raise tornado.web.HTTPError(403)
