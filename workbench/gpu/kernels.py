"""Interrupt or shut down the Jupyter kernel behind a GPU process, through the Jupyter server, audited.

Outside the server, the server is reached over its REST API
(``POST /api/kernels/<id>/interrupt``, ``DELETE /api/kernels/<id>``): either a
given :class:`JupyterServer` (URL + token) or the running server that has the
kernel, found from the ``jpserver-<pid>.json`` files in Jupyter's runtime
folder. Inside the server (the server extension), the server's own kernel
manager is used through :func:`interrupt_kernel_in_server` /
:func:`shutdown_kernel_in_server`.

Every attempt, done or not, is one audit entry (``kernel.interrupt`` /
``kernel.shutdown``, target ``kernel:<id>``) with the kernel's state before and
after and the notebook it ran.
"""

from __future__ import annotations

import inspect
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
import requests

from workbench import audit
from workbench.config import Settings
from workbench.errors import BackendUnavailable, NotFound, WorkbenchError
from workbench.gpu.processes import sessions_by_kernel

_TIMEOUT = 10.0


@dataclass(frozen=True)
class JupyterServer:
    """A running Jupyter server: its URL (with the base URL, ending in ``/``) and token."""

    url: str
    token: str = ""
    pid: int | None = None
    root_dir: str | None = None

    def api(self, path: str) -> str:
        return self.url.rstrip("/") + "/api/" + path.lstrip("/")

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"token {self.token}"} if self.token else {}


@dataclass
class KernelActionResult:
    """What an interrupt or shutdown did."""

    kernel_id: str
    action: str  # "interrupt" or "shutdown"
    via: str  # the server URL, or "kernel manager" inside the server
    notebook_path: str | None
    before: dict[str, Any] | None  # the kernel's model before (execution_state, name, ...)
    after: dict[str, Any] | None  # its model after; None once shut down


def running_servers(runtime_dir: str | Path | None = None) -> list[JupyterServer]:
    """The Jupyter servers whose ``jpserver-*.json`` files are in the runtime folder and whose process lives."""
    if runtime_dir is None:
        from jupyter_core.paths import jupyter_runtime_dir

        runtime_dir = jupyter_runtime_dir()
    servers = []
    for path in sorted(Path(runtime_dir).glob("jpserver-*.json")):
        try:
            info = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if not isinstance(info, dict) or not info.get("url"):
            continue
        pid = info.get("pid")
        if pid and not psutil.pid_exists(pid):  # a file left behind by a server that died
            continue
        servers.append(
            JupyterServer(url=info["url"], token=info.get("token") or "", pid=pid, root_dir=info.get("root_dir"))
        )
    return servers


def fetch_sessions(server: JupyterServer) -> list[dict[str, Any]]:
    """The server's sessions (``GET /api/sessions``): notebook path and kernel of each."""
    response = _request("GET", server, "sessions")
    if response.status_code != 200:
        raise BackendUnavailable(
            f"Jupyter server at {server.url} answered {response.status_code} to GET /api/sessions",
            "Check the server's token.",
        )
    return response.json()


def _request(method: str, server: JupyterServer, path: str) -> requests.Response:
    try:
        return requests.request(method, server.api(path), headers=server.headers, timeout=_TIMEOUT)
    except requests.RequestException as exc:
        raise BackendUnavailable(f"Jupyter server at {server.url} did not answer", str(exc)) from exc


def _kernel_model(server: JupyterServer, kernel_id: str) -> dict[str, Any] | None:
    """The kernel's model on ``server``; None when that server has no such kernel."""
    response = _request("GET", server, f"kernels/{kernel_id}")
    if response.status_code == 404:
        return None
    if response.status_code != 200:
        raise BackendUnavailable(
            f"Jupyter server at {server.url} answered {response.status_code} for kernel {kernel_id}",
            "Check the server's token.",
        )
    return response.json()


def find_server(kernel_id: str, runtime_dir: str | Path | None = None) -> tuple[JupyterServer, dict[str, Any]]:
    """The running server that has ``kernel_id``, and the kernel's model there."""
    servers = running_servers(runtime_dir)
    answered = 0
    for server in servers:
        try:
            model = _kernel_model(server, kernel_id)
        except BackendUnavailable:
            continue
        answered += 1
        if model is not None:
            return server, model
    if servers and not answered:
        raise BackendUnavailable(
            "No running Jupyter server answered", "Start JupyterLab, or pass the server's URL and token."
        )
    raise NotFound(
        f"No running Jupyter server has kernel {kernel_id}",
        "The kernel may have stopped already; list the GPU processes again.",
    )


def _locate(
    kernel_id: str, server: JupyterServer | None, runtime_dir: str | Path | None
) -> tuple[JupyterServer, dict[str, Any]]:
    if server is None:
        return find_server(kernel_id, runtime_dir)
    model = _kernel_model(server, kernel_id)
    if model is None:
        raise NotFound(f"Jupyter server at {server.url} has no kernel {kernel_id}", "List the GPU processes again.")
    return server, model


def _over_rest(
    settings: Settings, action: str, kernel_id: str, server: JupyterServer | None, runtime_dir: str | Path | None
) -> KernelActionResult:
    name, target = f"kernel.{action}", f"kernel:{kernel_id}"
    try:
        server, before = _locate(kernel_id, server, runtime_dir)
        notebook = sessions_by_kernel(fetch_sessions(server)).get(kernel_id)
    except WorkbenchError as exc:
        audit.record(settings, name, target, outcome="refused" if isinstance(exc, NotFound) else "failed", error=exc)
        raise
    detail = {"via": server.url, "notebook": notebook}
    try:
        if action == "interrupt":
            response = _request("POST", server, f"kernels/{kernel_id}/interrupt")
        else:
            response = _request("DELETE", server, f"kernels/{kernel_id}")
        if response.status_code not in (200, 204):
            raise BackendUnavailable(
                f"Jupyter server refused to {action} kernel {kernel_id} ({response.status_code})",
                response.text[:200] or "Check the server's log.",
            )
        after = _kernel_model(server, kernel_id)
    except WorkbenchError as exc:
        audit.record(settings, name, target, outcome="failed", before=before, detail=detail, error=exc)
        raise
    audit.record(settings, name, target, before=before, after=after, detail=detail)
    return KernelActionResult(kernel_id, action, server.url, notebook, before, after)


def interrupt_kernel(
    settings: Settings,
    kernel_id: str,
    *,
    server: JupyterServer | None = None,
    runtime_dir: str | Path | None = None,
) -> KernelActionResult:
    """Interrupt ``kernel_id`` through its Jupyter server (given, or found in the runtime folder)."""
    return _over_rest(settings, "interrupt", kernel_id, server, runtime_dir)


def shutdown_kernel(
    settings: Settings,
    kernel_id: str,
    *,
    server: JupyterServer | None = None,
    runtime_dir: str | Path | None = None,
) -> KernelActionResult:
    """Shut ``kernel_id`` down through its Jupyter server (given, or found in the runtime folder)."""
    return _over_rest(settings, "shutdown", kernel_id, server, runtime_dir)


async def _in_server(
    settings: Settings, action: str, kernel_manager: Any, kernel_id: str, notebook: str | None
) -> KernelActionResult:
    if kernel_id not in kernel_manager:
        error = NotFound(f"No running kernel {kernel_id}", "The kernel may have stopped already.")
        audit.record(settings, f"kernel.{action}", f"kernel:{kernel_id}", outcome="refused", error=error)
        raise error
    before = _manager_model(kernel_manager, kernel_id)
    try:
        result = getattr(kernel_manager, f"{action}_kernel")(kernel_id)
        if inspect.isawaitable(result):
            await result
    except Exception as exc:  # a kernel manager may raise anything; report it, audited
        error = BackendUnavailable(f"Could not {action} kernel {kernel_id}: {exc}", "Check the Jupyter server's log.")
        audit.record(settings, f"kernel.{action}", f"kernel:{kernel_id}", outcome="failed", before=before, error=error)
        raise error from exc
    after = _manager_model(kernel_manager, kernel_id) if kernel_id in kernel_manager else None
    audit.record(
        settings,
        f"kernel.{action}",
        f"kernel:{kernel_id}",
        before=before,
        after=after,
        detail={"via": "kernel manager", "notebook": notebook},
    )
    return KernelActionResult(kernel_id, action, "kernel manager", notebook, before, after)


def _manager_model(kernel_manager: Any, kernel_id: str) -> dict[str, Any]:
    """The kernel's model from a kernel manager (jupyter_server's has ``kernel_model``)."""
    if hasattr(kernel_manager, "kernel_model"):
        return dict(kernel_manager.kernel_model(kernel_id))
    kernel = kernel_manager.get_kernel(kernel_id)
    return {"id": kernel_id, "name": getattr(kernel, "kernel_name", None)}


async def interrupt_kernel_in_server(
    settings: Settings, kernel_manager: Any, kernel_id: str, *, notebook: str | None = None
) -> KernelActionResult:
    """Interrupt ``kernel_id`` with a (multi) kernel manager, sync or async, e.g. the Jupyter server's own."""
    return await _in_server(settings, "interrupt", kernel_manager, kernel_id, notebook)


async def shutdown_kernel_in_server(
    settings: Settings, kernel_manager: Any, kernel_id: str, *, notebook: str | None = None
) -> KernelActionResult:
    """Shut ``kernel_id`` down with a (multi) kernel manager, sync or async, e.g. the Jupyter server's own."""
    return await _in_server(settings, "shutdown", kernel_manager, kernel_id, notebook)
