"""Shared plumbing for the services that talk to MLflow (tracking, registry, lineage).

- :func:`client` builds an ``MlflowClient`` for the settings, after checking
  that a tracking server answers (a ``BackendUnavailable`` within a few
  seconds instead of MLflow's minutes of retries);
- :func:`mlflow_errors` turns MLflow's exceptions into ``WorkbenchError``\\ s;
- :func:`rest_get` reads an MLflow server's REST API without importing MLflow,
  for command-line paths where the import would be most of the time.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from workbench.config import Settings, embedded_store_exists, ensure_store_dir
from workbench.errors import BackendUnavailable, Conflict, InvalidInput, NotFound, WorkbenchError

PROBE_TIMEOUT_S = 3.0
_PROBE_TTL_S = 2.0
_probe_ok: dict[str, float] = {}
_probe_lock = threading.Lock()

# MLflow retries a refused connection for minutes by default; an interactive
# tool must answer quickly. Users who set these keep their values.
os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "1")
os.environ.setdefault("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", "1")
os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "30")
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")


def is_http(uri: str) -> bool:
    return uri.startswith(("http://", "https://"))


def unreachable(uri: str, detail: str = "") -> BackendUnavailable:
    suffix = f" ({detail})" if detail else ""
    return BackendUnavailable(
        f"MLflow at {uri} did not answer{suffix}",
        "Start the tracking server, or set MLFLOW_TRACKING_URI to one that runs.",
    )


def check_reachable(uri: str) -> None:
    """Raise ``BackendUnavailable`` unless an HTTP tracking server answers ``/health``."""
    if not is_http(uri):
        return
    now = time.monotonic()
    with _probe_lock:
        if now - _probe_ok.get(uri, -1e9) < _PROBE_TTL_S:
            return
    import requests

    try:
        response = requests.get(uri.rstrip("/") + "/health", timeout=PROBE_TIMEOUT_S)
    except requests.RequestException as exc:
        raise unreachable(uri, type(exc).__name__) from exc
    if response.status_code >= 500:
        raise unreachable(uri, f"HTTP {response.status_code}")
    with _probe_lock:
        _probe_ok[uri] = time.monotonic()


def client(settings: Settings, *, for_write: bool = False):
    """An ``MlflowClient`` for the settings' tracking and registry URIs.

    ``for_write`` creates the embedded store's folder first; read paths never
    do (callers check :func:`workbench.config.embedded_store_exists`).
    """
    from mlflow.tracking import MlflowClient

    check_reachable(settings.tracking_uri)
    if settings.registry_uri != settings.tracking_uri:
        check_reachable(settings.registry_uri)
    if for_write:
        ensure_store_dir(settings)
        if not embedded_store_exists(settings):
            _create_embedded_store(settings)
    elif not embedded_store_exists(settings):
        raise NotFound("Nothing has been logged in this workspace yet", "Log a run (or run `workbench demo`).")
    with mlflow_errors(settings.tracking_uri):
        return MlflowClient(tracking_uri=settings.tracking_uri, registry_uri=settings.registry_uri)


def _create_embedded_store(settings: Settings) -> None:
    """Create a SQLite store whose default artifact root is the workspace's artifacts folder.

    Left to MLflow, the store would put artifacts under ``./mlruns`` of whatever
    folder the process happens to run in.
    """
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

    with mlflow_errors(settings.tracking_uri, "creating the store"):
        SqlAlchemyStore(settings.tracking_uri, settings.artifact_location)


@contextmanager
def mlflow_errors(uri: str, what: str = "") -> Iterator[None]:
    """Translate MLflow and HTTP failures into ``WorkbenchError``\\ s."""
    import requests
    from mlflow.exceptions import MlflowException

    try:
        yield
    except WorkbenchError:
        raise
    except MlflowException as exc:
        code = str(getattr(exc, "error_code", ""))
        message = exc.message if hasattr(exc, "message") else str(exc)
        raise translate(uri, code, message, what) from exc
    except (requests.RequestException, ConnectionError) as exc:
        raise unreachable(uri, type(exc).__name__) from exc


def translate(uri: str, code: str, message: str, what: str = "") -> WorkbenchError:
    """The ``WorkbenchError`` for an MLflow error code and message (from its client or its REST API)."""
    label = f"{what}: " if what else ""
    if code == "RESOURCE_DOES_NOT_EXIST" or ("not found" in message.lower() and code != "INVALID_PARAMETER_VALUE"):
        return NotFound(f"{label}{message}", "Check the name or id; `workbench status` lists what exists.")
    if code in ("INVALID_PARAMETER_VALUE", "BAD_REQUEST", "INVALID_STATE"):
        return InvalidInput(
            f"{label}{message}", "See MLflow's search syntax: https://mlflow.org/docs/latest/search-runs.html"
        )
    if code == "RESOURCE_ALREADY_EXISTS":
        return Conflict(f"{label}{message}", "Pick another name.")
    if code in ("UNAUTHENTICATED", "PERMISSION_DENIED"):
        return WorkbenchError(
            f"{label}MLflow at {uri} refused the request ({code})",
            "Set MLFLOW_TRACKING_TOKEN, or MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD.",
        )
    if "API request to" in message or "Max retries exceeded" in message or "Connection" in message:
        return unreachable(uri, "connection failed")
    return WorkbenchError(f"{label}MLflow error: {message}", "See the MLflow server's log for details.")


def rest_get(uri: str, endpoint: str, params: dict[str, str], what: str = "") -> dict:
    """GET one endpoint of an MLflow server's REST API (``/api/2.0/mlflow/<endpoint>``), without importing MLflow.

    For short command-line paths: importing MLflow costs about two seconds,
    the request a few milliseconds. Honours the environment MLflow's own
    client reads (``MLFLOW_TRACKING_TOKEN``, ``MLFLOW_TRACKING_USERNAME`` /
    ``_PASSWORD``, ``MLFLOW_TRACKING_INSECURE_TLS``, the request timeout);
    errors become the same ``WorkbenchError``\\ s as :func:`mlflow_errors` gives.
    """
    import requests

    check_reachable(uri)
    headers, auth = {}, None
    if os.environ.get("MLFLOW_TRACKING_TOKEN"):
        headers["Authorization"] = f"Bearer {os.environ['MLFLOW_TRACKING_TOKEN']}"
    elif os.environ.get("MLFLOW_TRACKING_USERNAME"):
        auth = (os.environ["MLFLOW_TRACKING_USERNAME"], os.environ.get("MLFLOW_TRACKING_PASSWORD", ""))
    try:
        response = requests.get(
            f"{uri.rstrip('/')}/api/2.0/mlflow/{endpoint}",
            params=params,
            headers=headers,
            auth=auth,
            verify=os.environ.get("MLFLOW_TRACKING_INSECURE_TLS", "").lower() != "true",
            timeout=float(os.environ["MLFLOW_HTTP_REQUEST_TIMEOUT"]),
        )
    except requests.RequestException as exc:
        raise unreachable(uri, type(exc).__name__) from exc
    try:
        body = response.json()
    except ValueError:
        body = {}
    if response.ok and isinstance(body, dict):
        return body
    default_code = {401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED", 404: "RESOURCE_DOES_NOT_EXIST"}
    code = body.get("error_code") if isinstance(body, dict) else None
    message = body.get("message") if isinstance(body, dict) else None
    raise translate(
        uri,
        str(code or default_code.get(response.status_code, f"HTTP {response.status_code}")),
        str(message or response.text[:200] or f"HTTP {response.status_code}"),
        what,
    )
