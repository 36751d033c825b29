"""Thin tornado handlers over the route table: parse, call one service, render.

- Every request is authenticated by the Jupyter server's identity provider
  (``@tornado.web.authenticated``; the server checks the XSRF token of every
  state-changing request before a handler runs).
- Blocking service calls run in a thread pool, never on the event loop, so a
  slow MLflow server cannot freeze the GPU stream.
- Errors are JSON ``{"error", "hint", "kind"}`` with the status of the
  ``WorkbenchError`` (400, 404, 409, 423, 503); an unexpected failure is a
  500 with a generic message, its traceback only in the server's log.
- The acting identity is what the audit log records.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import tornado.web
import tornado.websocket
from jupyter_server.base.handlers import APIHandler, JupyterHandler
from jupyter_server.base.websocket import WebSocketMixin

from workbench import __version__, audit, jobs
from workbench.config import Settings, load_settings
from workbench.errors import InvalidInput, NotFound, WorkbenchError
from workbench.gpu.source import SOURCE_NAMES
from workbench.records import to_dict
from workbench.server.routes import MAX_BODY_BYTES, OVERRIDABLE, Endpoint, Param, Route, openapi

log = logging.getLogger("workbench.server")


class ServerContext:
    """What the handlers share: the workspace folder, a thread pool, the server's kernels and sessions."""

    def __init__(self, serverapp: Any, workspace: str | None = None) -> None:
        self.workspace = workspace or serverapp.root_dir
        self.executor = ThreadPoolExecutor(max_workers=8, thread_name_prefix="workbench")
        self.kernel_manager = serverapp.kernel_manager
        self.session_manager = getattr(serverapp, "session_manager", None)
        self._sessions: list[dict[str, Any]] = []
        # what the user chose in JupyterLab's settings editor (PUT settings); wins over the rest
        self.overrides: dict[str, str] = {}
        self.dashboard: Any = None  # the mounted Panel dashboard (dashboards.jupyter.DashboardMount)

    def settings(self) -> Settings:
        """Settings are read per request: a `dvc init` or a config edit shows without a restart."""
        return self._load(self.overrides)

    def _load(self, overrides: dict[str, str]) -> Settings:
        values = dict(overrides)
        return load_settings(values.pop("workspace", None) or self.workspace, **values)

    def configure(self, changes: dict[str, str | None]) -> Settings:
        """Apply the user's overrides (``""`` or ``None`` clears one); nothing changes if they are invalid."""
        overrides = dict(self.overrides)
        for name, value in changes.items():
            if name not in OVERRIDABLE:
                raise InvalidInput(f"Setting {name!r} cannot be changed here", f"Known: {', '.join(OVERRIDABLE)}.")
            value = (value or "").strip()
            if value:
                overrides[name] = value
            else:
                overrides.pop(name, None)
        source = overrides.get("gpu_source")
        if source is not None and source not in SOURCE_NAMES:
            raise InvalidInput(f"Unknown GPU source {source!r}", f"Pick one of {', '.join(SOURCE_NAMES)}.")
        settings = self._load(overrides)  # raises (and changes nothing) on a folder that does not exist
        self.overrides = overrides
        return settings

    def sessions(self) -> list[dict[str, Any]]:
        """The server's notebook sessions, as refreshed by :meth:`refresh_sessions`."""
        return list(self._sessions)

    async def refresh_sessions(self) -> None:
        if self.session_manager is not None:
            self._sessions = await self.session_manager.list_sessions()

    def gpu_sampler(self, settings: Settings) -> Any:
        from workbench import gpu

        return gpu.get_sampler(settings, sessions=self.sessions)

    def close(self) -> None:
        if self.dashboard is not None:
            self.dashboard.stop()
        self.executor.shutdown(wait=False, cancel_futures=True)


def _coerce(param: Param, raw: Any) -> Any:
    """Turn a query string (or JSON value) into the parameter's type, or raise InvalidInput."""
    expected = param.type
    try:
        if expected == "boolean":
            if isinstance(raw, bool):
                return raw
            if str(raw).lower() in ("1", "true", "yes"):
                return True
            if str(raw).lower() in ("0", "false", "no", ""):
                return False
            raise ValueError(raw)
        if expected == "integer":
            if isinstance(raw, bool):
                raise ValueError(raw)
            return int(raw)
        if expected == "number":
            if isinstance(raw, bool):
                raise ValueError(raw)
            return float(raw)
        if expected == "array":
            values = raw if isinstance(raw, list) else [raw]
            if not all(isinstance(v, str) for v in values):
                raise ValueError(raw)
            return values
        if expected == "object":
            if not isinstance(raw, dict):
                raise ValueError(raw)
            return raw
        if not isinstance(raw, str):
            raise ValueError(raw)
        return raw
    except (TypeError, ValueError) as exc:
        raise InvalidInput(
            f"Parameter {param.name!r} must be {expected}, got {raw!r}", f"Send {param.name} as a {expected}."
        ) from exc


def inside_workspace(settings: Settings, raw: str) -> str:
    """A path from a request, checked to stay inside the workspace (after following symlinks)."""
    if "\x00" in raw:
        raise InvalidInput("Paths cannot contain NUL bytes", "Send a path relative to the workspace.")
    root = settings.workspace.resolve()
    candidate = Path(raw)
    resolved = (candidate if candidate.is_absolute() else root / candidate).resolve()
    if resolved != root and root not in resolved.parents:
        raise InvalidInput(f"{raw!r} is outside the workspace", f"Paths must stay inside {root}.")
    return raw


class WorkbenchHandler(APIHandler):
    """Base: authentication, JSON errors, blocking calls off the event loop."""

    @property
    def context(self) -> ServerContext:
        return self.settings["workbench"]

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        exc = kwargs.get("exc_info", (None, None, None))[1]
        if isinstance(exc, WorkbenchError):
            payload = exc.to_dict()
        elif isinstance(exc, tornado.web.HTTPError):
            payload = {"error": exc.log_message or self._reason, "hint": "", "kind": "http"}
        else:
            payload = {"error": "Internal error in Workbench", "hint": "See the Jupyter server's log.", "kind": "error"}
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(payload))

    def _handle_request_exception(self, e: BaseException) -> None:
        if isinstance(e, WorkbenchError):
            # a person's error, not a server fault: its own status, no traceback in the log
            log.info("workbench %s %s: %s", self.request.method, self.request.path, e)
            self.send_error(e.status, exc_info=(type(e), e, e.__traceback__))
            return
        super()._handle_request_exception(e)

    def finish_record(self, record: Any, status: int = 200) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(to_dict(record)))

    def identity(self) -> str:
        user = self.current_user
        return getattr(user, "username", None) or str(user)

    async def run_blocking(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        """Run ``fn`` in the pool, attributed to the request's user in the audit log."""
        who = self.identity()

        def call() -> Any:
            with audit.acting_as(who):
                return fn(*args, **kwargs)

        return await asyncio.get_running_loop().run_in_executor(self.context.executor, call)


class RouteHandler(WorkbenchHandler):
    """Serves one :class:`Route` of the table; the route comes in ``initialize``."""

    def initialize(self, route: Route) -> None:
        self.route = route

    def _endpoint(self) -> Endpoint:
        for endpoint in self.route.endpoints:
            if endpoint.method == self.request.method:
                return endpoint
        raise tornado.web.HTTPError(405)

    def _body(self) -> dict[str, Any]:
        if len(self.request.body) > MAX_BODY_BYTES:
            raise tornado.web.HTTPError(413, f"Request body over {MAX_BODY_BYTES} bytes")
        if not self.request.body.strip():
            return {}
        try:
            body = json.loads(self.request.body)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise InvalidInput(f"The request body is not JSON: {exc}", "Send a JSON object.") from exc
        if not isinstance(body, dict):
            raise InvalidInput("The request body must be a JSON object", "Send a JSON object.")
        return body

    def _arguments(self, endpoint: Endpoint, path_args: dict[str, str], settings: Settings) -> dict[str, Any]:
        body = self._body() if endpoint.method in ("POST", "PUT", "PATCH", "DELETE") else {}
        known = {p.name for p in endpoint.params if p.where == "body"}
        unknown = set(body) - known
        if unknown:
            raise InvalidInput(
                f"Unknown field(s): {', '.join(sorted(unknown))}", f"Known: {', '.join(sorted(known)) or 'none'}."
            )
        values: dict[str, Any] = {}
        for param in endpoint.params:
            if param.where == "path":
                raw: Any = path_args.get(param.name)
            elif param.where == "body":
                raw = body.get(param.name)
            elif param.type == "array":
                raw = self.get_arguments(param.name) or None
            else:
                raw = self.get_argument(param.name, None)
            if raw is None:
                if param.required:
                    raise InvalidInput(f"Parameter {param.name!r} is required", f"Pass {param.name} ({param.where}).")
                values[param.name] = param.default
                continue
            value = _coerce(param, raw)
            if param.workspace_path:
                for item in value if isinstance(value, list) else [value]:
                    inside_workspace(settings, item)
            values[param.name] = value
        return values

    async def _serve(self, **path_args: str) -> None:
        endpoint = self._endpoint()
        settings = await self.run_blocking(self.context.settings)
        args = self._arguments(endpoint, path_args, settings)
        if endpoint.in_server:
            await self.context.refresh_sessions()
            with audit.acting_as(self.identity()):
                result = endpoint.call(settings, self.context, **args)
                if asyncio.iscoroutine(result):
                    result = await result
        else:
            result = await self.run_blocking(endpoint.call, settings, **args)
        self.finish_record(result, endpoint.status)

    @tornado.web.authenticated
    async def get(self, **path_args: str) -> None:
        await self._serve(**path_args)

    @tornado.web.authenticated
    async def post(self, **path_args: str) -> None:
        await self._serve(**path_args)

    @tornado.web.authenticated
    async def put(self, **path_args: str) -> None:
        await self._serve(**path_args)

    @tornado.web.authenticated
    async def delete(self, **path_args: str) -> None:
        await self._serve(**path_args)


class OpenApiHandler(WorkbenchHandler):
    @tornado.web.authenticated
    def get(self) -> None:
        self.finish_record(openapi(__version__))


class StreamHandler(WebSocketMixin, tornado.websocket.WebSocketHandler, JupyterHandler):
    """Base of the WebSockets: the same authentication and origin checks as the server's own."""

    @property
    def context(self) -> ServerContext:
        return self.settings["workbench"]

    async def get(self, *args: Any, **kwargs: Any) -> None:
        if self.current_user is None:
            raise tornado.web.HTTPError(403)
        await super().get(*args, **kwargs)

    def on_close(self) -> None:
        """Stop the stream's pump when the client goes away."""
        task = getattr(self, "_task", None)
        if task is not None:
            task.cancel()

    def send(self, payload: Any) -> None:
        self.send_text(json.dumps(to_dict(payload)))

    def send_text(self, text: str) -> None:
        with contextlib.suppress(tornado.websocket.WebSocketClosedError):
            self.write_message(text)


class GpuStreamHandler(StreamHandler):
    """Samples from the one shared sampler, at the client's rate (never faster than the sampler).

    Every client of a sample gets the same JSON text, encoded once: the newest
    sample and its encoding are kept (all handlers run on the one event loop).
    """

    _encoded: tuple[Any, str] | None = None

    @classmethod
    def encode(cls, sample: Any) -> str:
        if cls._encoded is None or cls._encoded[0] is not sample:
            cls._encoded = (sample, json.dumps(to_dict(sample)))
        return cls._encoded[1]

    def open(self) -> None:
        try:
            interval = float(self.get_argument("interval", "0"))
        except ValueError:
            interval = 0.0
        settings = self.context.settings()
        sampler = self.context.gpu_sampler(settings)
        sampler.start()
        self._task = asyncio.ensure_future(self._pump(sampler, interval))

    async def _pump(self, sampler: Any, interval: float) -> None:
        async with contextlib.aclosing(sampler.stream(min_interval=interval)) as samples:
            async for sample in samples:
                if self.ws_connection is None:
                    return
                self.send_text(self.encode(sample))


class JobsStreamHandler(StreamHandler):
    """Progress events of long actions."""

    def open(self) -> None:
        self._task = asyncio.ensure_future(self._pump())

    async def _pump(self) -> None:
        async with jobs.manager().events() as stream:
            async for event in stream:
                if self.ws_connection is None:
                    return
                self.send(event)


class NotFoundHandler(WorkbenchHandler):
    """Anything else under the API prefix: a JSON 404, not an HTML page."""

    def _missing(self) -> None:
        raise NotFound(f"No Workbench API route {self.request.path}", "GET .../workbench/api/openapi.json lists them.")

    get = post = delete = tornado.web.authenticated(_missing)
