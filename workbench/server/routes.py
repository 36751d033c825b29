"""The REST API's route table: one place that says what each route does.

Each :class:`Endpoint` names the service call it makes, the parameters it
takes (query, path or JSON body, with types) and whether it changes state.
The generic handler in :mod:`workbench.server.handlers` serves the table,
and :func:`openapi` describes it, so the code and the document cannot drift.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from workbench import audit, data, deploy, jobs, overview, registry, tracking
from workbench.config import Settings

API_PREFIX = "workbench/api"
DASHBOARD_PREFIX = "workbench/dashboard"  # the Panel dashboards, for JupyterLab tabs (dashboards/jupyter.py)
MAX_BODY_BYTES = 1 << 20  # request bodies above 1 MiB are refused (413)

_TYPES = {"string": str, "integer": int, "number": float, "boolean": bool, "array": list, "object": dict}


@dataclass
class Param:
    """One input of an endpoint: where it comes from, its JSON type, whether it is required."""

    name: str
    type: str = "string"  # a key of _TYPES; "array" means an array of strings
    where: str = "query"  # "query", "path" or "body"
    required: bool = False
    default: Any = None
    description: str = ""
    workspace_path: bool = False  # a path (or paths) that must stay inside the workspace


@dataclass
class Endpoint:
    method: str
    summary: str
    call: Callable[..., Any]  # call(settings, **params) -> record
    params: list[Param] = field(default_factory=list)
    changes_state: bool = False
    status: int = 200
    in_server: bool = False  # call(settings, server_context, **params), awaited on the event loop


@dataclass
class Route:
    path: str  # OpenAPI style, relative to the API prefix: "runs/{run_id}"
    endpoints: list[Endpoint]
    tag: str

    @property
    def pattern(self) -> str:
        """The tornado pattern: each ``{name}`` becomes a named group of one URL segment."""
        return re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", self.path)


def _deploy_job(settings: Settings, model: str, name: str | None, port: int | None, target: str) -> Any:
    """Start a deployment without waiting; its start is followed as a job."""
    return deploy.deploy(settings, model, name=name, port=port, target=target, wait=False)


def _gpu_snapshot(settings: Settings, server: Any) -> Any:
    return server.gpu_sampler(settings).latest(wait=5.0)


def _gpu_history(settings: Settings, server: Any, seconds: float | None) -> Any:
    return server.gpu_sampler(settings).history(seconds)


async def _kernel_action(action: str, settings: Settings, server: Any, kernel_id: str) -> Any:
    from workbench.gpu import kernels, processes

    notebook = processes.sessions_by_kernel(server.sessions()).get(kernel_id)
    act = kernels.interrupt_kernel_in_server if action == "interrupt" else kernels.shutdown_kernel_in_server
    return await act(settings, server.kernel_manager, kernel_id, notebook=notebook)


async def _kernel_interrupt(settings: Settings, server: Any, kernel_id: str) -> Any:
    return await _kernel_action("interrupt", settings, server, kernel_id)


async def _kernel_shutdown(settings: Settings, server: Any, kernel_id: str) -> Any:
    return await _kernel_action("shutdown", settings, server, kernel_id)


# what JupyterLab's settings editor may set for this server (the rest comes from the workspace)
OVERRIDABLE = ("workspace", "tracking_uri", "gpu_source", "prometheus_url")


def _settings_record(settings: Settings, server: Any) -> dict[str, Any]:
    shown = {name: getattr(settings, name) for name in (*OVERRIDABLE, "registry_uri", "gpu_interval", "gpu_history")}
    return {**shown, "sources": settings.sources, "overrides": dict(server.overrides)}


def _settings_get(settings: Settings, server: Any) -> dict[str, Any]:
    return _settings_record(settings, server)


def _settings_put(settings: Settings, server: Any, **changes: str | None) -> dict[str, Any]:
    before = dict(server.overrides)
    given = {name: value for name, value in changes.items() if value is not None}
    try:
        updated = server.configure(given)
    except Exception as exc:
        audit.record(settings, "settings", "server", outcome="refused", before=before, detail=given, error=_err(exc))
        raise
    if server.overrides != before:
        audit.record(updated, "settings", "server", before=before, after=server.overrides)
    return _settings_record(updated, server)


def _err(exc: Exception) -> dict[str, str] | None:
    to_dict = getattr(exc, "to_dict", None)
    return to_dict() if callable(to_dict) else {"error": str(exc), "hint": "", "kind": "error"}


def _runs(settings: Settings, experiment: list[str] | None, **kwargs: Any) -> Any:
    return tracking.search_runs(settings, experiments=experiment or None, **kwargs)


_TARGETS = Param(
    "targets", "array", "body", description="Tracked paths or stage names (default: all)", workspace_path=True
)
_REMOTE = Param("remote", "string", "body", description="DVC remote name (default: the repository's)")
_FORCE = Param("force", "boolean", "body", default=False, description="Overwrite unrecorded changes to tracked data")
_MODEL = Param("name", where="path", required=True, description="Registered model name")
_ALIAS_BODY = Param("alias", "string", "body", default="champion")
_DEPLOYMENT = Param("name", where="path", required=True, description="Deployment name")

ROUTES: list[Route] = [
    Route(
        "status",
        [Endpoint("GET", "The workspace at a glance: data, experiments, models", overview.workspace_status)],
        "workspace",
    ),
    Route(
        "settings",
        [
            Endpoint("GET", "The server's settings and where each came from", _settings_get, in_server=True),
            Endpoint(
                "PUT",
                "Override settings for this server (JupyterLab's settings editor); an empty string clears one",
                _settings_put,
                [
                    Param(name, "string", "body", description=f"{name} (empty: the workspace's own)")
                    for name in OVERRIDABLE
                ],
                changes_state=True,
                in_server=True,
            ),
        ],
        "workspace",
    ),
    # ------------------------------------------------------------------ data (DVC)
    Route(
        "data/status",
        [
            Endpoint(
                "GET",
                "Tracked data with status badges",
                data.status,
                [
                    Param("remote", "boolean", default=False, description="Also ask the remote what is not pushed"),
                    Param("untracked", "boolean", default=False, description="List untracked files too"),
                ],
            )
        ],
        "data",
    ),
    Route(
        "data/revisions",
        [
            Endpoint(
                "GET",
                "The git revisions of a tracked path",
                data.revisions,
                [
                    Param(
                        "path",
                        required=True,
                        description="Tracked path, relative to the repository",
                        workspace_path=True,
                    )
                ],
            )
        ],
        "data",
    ),
    Route(
        "data/diff",
        [
            Endpoint(
                "GET",
                "Data changes between two revisions (b omitted: the workspace)",
                data.diff,
                [Param("rev_a", required=True), Param("rev_b")],
            )
        ],
        "data",
    ),
    Route("data/pipeline", [Endpoint("GET", "Pipeline stages as a graph, stale ones marked", data.pipeline)], "data"),
    Route("data/params-metrics", [Endpoint("GET", "Params and metrics files", data.params_metrics)], "data"),
    Route(
        "data/push",
        [Endpoint("POST", "Start a push job", data.push, [_TARGETS, _REMOTE], changes_state=True, status=202)],
        "data",
    ),
    Route(
        "data/pull",
        [Endpoint("POST", "Start a pull job", data.pull, [_TARGETS, _REMOTE, _FORCE], changes_state=True, status=202)],
        "data",
    ),
    Route(
        "data/checkout",
        [Endpoint("POST", "Start a checkout job", data.checkout, [_TARGETS, _FORCE], changes_state=True, status=202)],
        "data",
    ),
    # ------------------------------------------------------------------ experiments (MLflow)
    Route("experiments", [Endpoint("GET", "Experiments with run counts", tracking.list_experiments)], "experiments"),
    Route(
        "runs",
        [
            Endpoint(
                "GET",
                "Search runs: MLflow filter, order and page token",
                _runs,
                [
                    Param("experiment", "array", description="Experiment names or ids (repeat the parameter)"),
                    Param("filter_string", description="MLflow filter, e.g. metrics.accuracy > 0.9", default=""),
                    Param("order_by", "array", description='Sort keys, e.g. "metrics.accuracy DESC"'),
                    Param("max_results", "integer", default=50),
                    Param("page_token"),
                ],
            )
        ],
        "experiments",
    ),
    Route(
        "runs/{run_id}",
        [
            Endpoint(
                "GET",
                "A run: params, metrics, tags, artifacts, lineage",
                tracking.get_run,
                [Param("run_id", where="path", required=True)],
            )
        ],
        "experiments",
    ),
    Route(
        "runs/{run_id}/metrics/{key}",
        [
            Endpoint(
                "GET",
                "The history of one metric",
                tracking.metric_history,
                [Param("run_id", where="path", required=True), Param("key", where="path", required=True)],
            )
        ],
        "experiments",
    ),
    Route(
        "compare",
        [
            Endpoint(
                "GET",
                "Compare runs: differing params, metric histories aligned by step",
                tracking.compare_runs,
                [Param("run_ids", "array", required=True, description="Two or more run ids (repeat the parameter)")],
            )
        ],
        "experiments",
    ),
    # ------------------------------------------------------------------ registry
    Route("models", [Endpoint("GET", "Registered models with aliases", registry.list_models)], "registry"),
    Route("models/{name}", [Endpoint("GET", "A model and its versions", registry.get_model, [_MODEL])], "registry"),
    Route(
        "models/{name}/versions/{version}",
        [
            Endpoint(
                "GET",
                "A version with its run's metrics, params and lineage",
                registry.get_version,
                [_MODEL, Param("version", where="path", required=True)],
            )
        ],
        "registry",
    ),
    Route(
        "models/{name}/promotion",
        [
            Endpoint(
                "GET",
                "What promoting a version would change, and the gate results",
                registry.compare_for_promotion,
                [_MODEL, Param("version", required=True), Param("alias", default="champion")],
            )
        ],
        "registry",
    ),
    Route(
        "models/{name}/promote",
        [
            Endpoint(
                "POST",
                "Move an alias to a version (gates checked, audited)",
                registry.promote,
                [
                    _MODEL,
                    Param("version", "string", "body", required=True),
                    _ALIAS_BODY,
                    Param("override_gates", "boolean", "body", default=False),
                ],
                changes_state=True,
            )
        ],
        "registry",
    ),
    Route(
        "models/{name}/rollback",
        [
            Endpoint(
                "POST",
                "Move an alias back to its previous holder",
                registry.rollback,
                [_MODEL, _ALIAS_BODY],
                changes_state=True,
            )
        ],
        "registry",
    ),
    Route(
        "models/{name}/aliases/{alias}/history",
        [
            Endpoint(
                "GET",
                "The steps a rollback would undo",
                registry.alias_history,
                [_MODEL, Param("alias", where="path", required=True)],
            )
        ],
        "registry",
    ),
    Route(
        "audit",
        [
            Endpoint(
                "GET",
                "The audit log, oldest first",
                audit.read,
                [Param("limit", "integer", default=200), Param("action"), Param("target")],
            )
        ],
        "registry",
    ),
    # ------------------------------------------------------------------ deployments
    Route(
        "deployments",
        [
            Endpoint("GET", "Deployments with their health", deploy.list_deployments),
            Endpoint(
                "POST",
                "Deploy a model (NAME@ALIAS or NAME/VERSION) as a REST endpoint; returns at once, starting",
                _deploy_job,
                [
                    Param("model", "string", "body", required=True),
                    Param("name", "string", "body"),
                    Param("port", "integer", "body"),
                    Param("target", "string", "body", default="local"),
                ],
                changes_state=True,
                status=202,
            ),
        ],
        "deployments",
    ),
    Route(
        "deployments/{name}",
        [
            Endpoint("GET", "One deployment", deploy.get, [_DEPLOYMENT]),
            Endpoint("DELETE", "Stop a deployment", deploy.stop, [_DEPLOYMENT], changes_state=True),
        ],
        "deployments",
    ),
    Route(
        "deployments/{name}/restart",
        [Endpoint("POST", "Restart a deployment", deploy.restart, [_DEPLOYMENT], changes_state=True)],
        "deployments",
    ),
    Route(
        "deployments/{name}/logs",
        [
            Endpoint(
                "GET",
                "The tail of a deployment's log",
                deploy.logs,
                [_DEPLOYMENT, Param("lines", "integer", default=100)],
            )
        ],
        "deployments",
    ),
    Route(
        "deployments/{name}/predict",
        [
            Endpoint(
                "POST",
                "Score a payload (default: a sample from the model's input example)",
                deploy.predict,
                [_DEPLOYMENT, Param("payload", "object", "body")],
                changes_state=True,
            )
        ],
        "deployments",
    ),
    # ------------------------------------------------------------------ GPUs
    Route("gpu", [Endpoint("GET", "The newest GPU sample", _gpu_snapshot, in_server=True)], "gpu"),
    Route(
        "gpu/history",
        [
            Endpoint(
                "GET", "Buffered GPU samples, oldest first", _gpu_history, [Param("seconds", "number")], in_server=True
            )
        ],
        "gpu",
    ),
    Route(
        "gpu/kernels/{kernel_id}/interrupt",
        [
            Endpoint(
                "POST",
                "Interrupt the kernel behind a GPU process (audited)",
                _kernel_interrupt,
                [Param("kernel_id", where="path", required=True)],
                changes_state=True,
                in_server=True,
            )
        ],
        "gpu",
    ),
    Route(
        "gpu/kernels/{kernel_id}/shutdown",
        [
            Endpoint(
                "POST",
                "Shut down the kernel behind a GPU process (audited)",
                _kernel_shutdown,
                [Param("kernel_id", where="path", required=True)],
                changes_state=True,
                in_server=True,
            )
        ],
        "gpu",
    ),
    # ------------------------------------------------------------------ jobs
    Route("jobs", [Endpoint("GET", "Recent jobs, newest first", lambda settings: jobs.manager().list())], "jobs"),
    Route(
        "jobs/{job_id}",
        [
            Endpoint(
                "GET",
                "One job",
                lambda settings, job_id: jobs.manager().get(job_id),
                [Param("job_id", where="path", required=True)],
            )
        ],
        "jobs",
    ),
    Route(
        "jobs/{job_id}/cancel",
        [
            Endpoint(
                "POST",
                "Cancel a job",
                lambda settings, job_id: jobs.manager().cancel(job_id),
                [Param("job_id", where="path", required=True)],
                changes_state=True,
            )
        ],
        "jobs",
    ),
]

# WebSockets, served by their own handlers (described in the OpenAPI document too)
STREAMS = {
    "gpu/stream": "Live GPU samples from the shared sampler; ?interval=SECONDS (never faster than the sampler)",
    "jobs/stream": "Progress events of long actions (created, progress, finished)",
}


def _schema(param: Param) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": param.type}
    if param.type == "array":
        schema["items"] = {"type": "string"}
    if param.default is not None:
        schema["default"] = param.default
    return schema


_ERROR = {"$ref": "#/components/schemas/Error"}


def openapi(version: str) -> dict[str, Any]:
    """The OpenAPI 3 document of the routes above (paths relative to ``<base_url>workbench/api``)."""
    paths: dict[str, Any] = {}
    for route in ROUTES:
        operations = {}
        for endpoint in route.endpoints:
            query_and_path = [p for p in endpoint.params if p.where != "body"]
            body = [p for p in endpoint.params if p.where == "body"]
            operation: dict[str, Any] = {
                "summary": endpoint.summary,
                "tags": [route.tag],
                "operationId": f"{endpoint.method.lower()}_{re.sub(r'[^a-z0-9]+', '_', route.path.lower()).strip('_')}",
                "parameters": [
                    {
                        "name": p.name,
                        "in": p.where,
                        "required": p.required or p.where == "path",
                        "description": p.description,
                        "schema": _schema(p),
                        **({"style": "form", "explode": True} if p.type == "array" else {}),
                    }
                    for p in query_and_path
                ],
                "responses": {
                    str(endpoint.status): {"description": "The service's record as JSON"},
                    **{
                        str(code): {"description": text, "content": {"application/json": {"schema": _ERROR}}}
                        for code, text in (
                            ("400", "Invalid input"),
                            ("403", "Not authenticated, or no XSRF token"),
                            ("404", "Not found"),
                            ("409", "Conflict with the current state"),
                            ("423", "Locked by another process"),
                            ("503", "A backend did not answer"),
                        )
                    },
                },
            }
            if body:
                operation["requestBody"] = {
                    "required": any(p.required for p in body),
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "properties": {p.name: {**_schema(p), "description": p.description} for p in body},
                                "required": [p.name for p in body if p.required],
                                "additionalProperties": False,
                            }
                        }
                    },
                }
            operations[endpoint.method.lower()] = operation
        paths[f"/{route.path}"] = operations
    for path, text in STREAMS.items():
        paths[f"/{path}"] = {
            "get": {
                "summary": f"WebSocket: {text}",
                "tags": ["streams"],
                "operationId": f"ws_{path.replace('/', '_')}",
                "responses": {"101": {"description": "Switching to the WebSocket protocol"}},
            }
        }
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "Workbench API",
            "version": version,
            "description": "Data (DVC), experiments and registry (MLflow), deployments and GPUs. "
            "Served by the Jupyter server under <base_url>workbench/api; every route needs the "
            "server's authentication, and state-changing routes its XSRF token.",
        },
        "servers": [{"url": f"/{API_PREFIX}"}],
        "paths": paths,
        "components": {
            "schemas": {
                "Error": {
                    "type": "object",
                    "properties": {"error": {"type": "string"}, "hint": {"type": "string"}, "kind": {"type": "string"}},
                    "required": ["error", "hint"],
                }
            }
        },
    }


if __name__ == "__main__":  # python -m workbench.server.routes > workbench/server/openapi.json
    import json

    from workbench import __version__

    print(json.dumps(openapi(__version__), indent=2, sort_keys=True))
