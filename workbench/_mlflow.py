"""Shared plumbing for the services that talk to MLflow (tracking, registry, lineage).

- :func:`client` builds an ``MlflowClient`` for the settings, after checking
  that a tracking server answers (a ``BackendUnavailable`` within a few
  seconds instead of MLflow's minutes of retries);
- :func:`mlflow_errors` turns MLflow's exceptions into ``WorkbenchError``\\ s.
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
        label = f"{what}: " if what else ""
        if code == "RESOURCE_DOES_NOT_EXIST" or ("not found" in message.lower() and code != "INVALID_PARAMETER_VALUE"):
            raise NotFound(f"{label}{message}", "Check the name or id; `workbench status` lists what exists.") from exc
        if code in ("INVALID_PARAMETER_VALUE", "BAD_REQUEST", "INVALID_STATE"):
            raise InvalidInput(
                f"{label}{message}", "See MLflow's search syntax: https://mlflow.org/docs/latest/search-runs.html"
            ) from exc
        if code == "RESOURCE_ALREADY_EXISTS":
            raise Conflict(f"{label}{message}", "Pick another name.") from exc
        if "API request to" in message or "Max retries exceeded" in message or "Connection" in message:
            raise unreachable(uri, "connection failed") from exc
        raise WorkbenchError(f"{label}MLflow error: {message}", "See the MLflow server's log for details.") from exc
    except (requests.RequestException, ConnectionError) as exc:
        raise unreachable(uri, type(exc).__name__) from exc
