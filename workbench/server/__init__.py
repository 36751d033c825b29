"""The Jupyter server extension: Workbench's REST and WebSocket API.

Enabled on install (``jupyter-config/server-config/workbench.json``); routes
live under ``<base_url>workbench/api/`` and are listed in ``routes.ROUTES``
and in the OpenAPI document at ``<base_url>workbench/api/openapi.json``.
"""

from __future__ import annotations

import os
from typing import Any


def _jupyter_server_extension_points() -> list[dict[str, str]]:
    return [{"module": "workbench.server"}]


def _load_jupyter_server_extension(serverapp: Any) -> None:
    from jupyter_server.utils import url_path_join

    from dashboards.jupyter import DashboardMount
    from dashboards.jupyter import install as install_dashboard
    from workbench.server.handlers import (
        GpuStreamHandler,
        JobsStreamHandler,
        NotFoundHandler,
        OpenApiHandler,
        RouteHandler,
        ServerContext,
    )
    from workbench.server.routes import API_PREFIX, DASHBOARD_PREFIX, ROUTES

    context = ServerContext(serverapp, os.environ.get("WORKBENCH_WORKSPACE") or None)
    web_app = serverapp.web_app
    web_app.settings["workbench"] = context
    base = url_path_join(web_app.settings["base_url"], API_PREFIX)
    handlers: list[tuple[str, Any, dict[str, Any]] | tuple[str, Any]] = [
        (url_path_join(base, "openapi.json"), OpenApiHandler),
        (url_path_join(base, "gpu", "stream"), GpuStreamHandler),
        (url_path_join(base, "jobs", "stream"), JobsStreamHandler),
    ]
    handlers += [(url_path_join(base, route.pattern), RouteHandler, {"route": route}) for route in ROUTES]
    handlers.append((url_path_join(base, "(?:.*)"), NotFoundHandler))
    # the full Panel dashboards, for JupyterLab's main-area tabs (see dashboards/jupyter.py)
    mount = DashboardMount(url_path_join(web_app.settings["base_url"], DASHBOARD_PREFIX), context.settings)
    context.dashboard = mount
    web_app.add_handlers(".*$", handlers)
    install_dashboard(web_app, mount)
    serverapp.log.info("Workbench API at %s (workspace %s)", base, context.workspace)


def _unload_jupyter_server_extension(serverapp: Any) -> None:
    """On the server's shutdown: stop the dashboard's sessions and the thread pool."""
    context = serverapp.web_app.settings.get("workbench")
    if context is not None:
        context.close()


# the older name, for jupyter_server < 2 style loading
load_jupyter_server_extension = _load_jupyter_server_extension
