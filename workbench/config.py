"""One settings object for every service and surface.

Resolution order, first match wins, per setting:

1. an explicit argument (``load_settings(tracking_uri=...)``, CLI flags);
2. the environment (``MLFLOW_TRACKING_URI``, ``WORKBENCH_WORKSPACE``, ...);
3. the workspace's ``workbench.toml`` (top-level keys) or the
   ``[tool.workbench]`` table of its ``pyproject.toml``;
4. the embedded default: an MLflow SQLite store at
   ``<workspace>/.workbench/mlflow.db`` with artifacts under
   ``<workspace>/.workbench/artifacts``.

The workspace is the git + DVC repository found by walking up from a path.
Loading settings never writes anything: the embedded store is created only
when something is logged (see :func:`ensure_store_dir`).
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from workbench.errors import InvalidInput, NotFound

STATE_DIR = ".workbench"

# setting name -> environment variable
ENV_VARS: dict[str, str] = {
    "workspace": "WORKBENCH_WORKSPACE",
    "tracking_uri": "MLFLOW_TRACKING_URI",
    "registry_uri": "MLFLOW_REGISTRY_URI",
    "store_uri": "WORKBENCH_STORE_URI",
    "gpu_source": "WORKBENCH_GPU_SOURCE",
    "gpu_interval": "WORKBENCH_GPU_INTERVAL",
    "gpu_history": "WORKBENCH_GPU_HISTORY",
    "prometheus_url": "WORKBENCH_PROMETHEUS_URL",
    "dvc_remote": "WORKBENCH_DVC_REMOTE",
}

_FLOAT_SETTINGS = {"gpu_interval", "gpu_history"}
_SQL_SCHEMES = ("sqlite", "postgresql", "mysql", "mssql")


@dataclass(frozen=True)
class Settings:
    """Resolved settings; ``sources`` says where each value came from."""

    workspace: Path
    tracking_uri: str
    registry_uri: str
    # The SQL database behind the tracking store, when Workbench may read it
    # directly for fast runs queries (None: MLflow's API only).
    store_uri: str | None
    artifact_location: str
    git_root: Path | None
    dvc_root: Path | None
    gpu_source: str = "auto"
    gpu_interval: float = 1.0
    gpu_history: float = 600.0
    prometheus_url: str | None = None
    dvc_remote: str | None = None
    # per registered model: a list of gate expressions, e.g. "metrics.accuracy >= 0.9"
    promotion_gates: dict[str, list[str]] = field(default_factory=dict)
    sources: dict[str, str] = field(default_factory=dict)

    @property
    def state_dir(self) -> Path:
        """Workbench's own folder inside the workspace (may not exist yet)."""
        return self.workspace / STATE_DIR

    @property
    def uses_embedded_store(self) -> bool:
        return self.sources.get("tracking_uri") == "default"


def find_workspace(start: str | os.PathLike[str] | None = None) -> tuple[Path, Path | None, Path | None]:
    """Walk up from ``start`` to the repository that holds it.

    Returns ``(workspace, git_root, dvc_root)``. The workspace is the DVC root,
    else the git root, else ``start`` itself (a plain folder still gets the
    experiment and registry views).
    """
    path = Path(start or os.getcwd()).expanduser()
    if not path.exists():
        raise NotFound(f"Workspace folder {path} does not exist", "Pass an existing folder with --workspace.")
    path = path.resolve()
    if path.is_file():
        path = path.parent
    git_root = dvc_root = None
    for folder in (path, *path.parents):
        if dvc_root is None and (folder / ".dvc").is_dir():
            dvc_root = folder
        if git_root is None and (folder / ".git").exists():
            git_root = folder
        if git_root is not None:
            break  # a DVC repo lives inside its git repo; stop at the git root
    return (dvc_root or git_root or path), git_root, dvc_root


def _file_settings(workspace: Path) -> tuple[dict[str, Any], str | None]:
    """Settings from ``workbench.toml`` or ``pyproject.toml [tool.workbench]``."""
    own = workspace / "workbench.toml"
    pyproject = workspace / "pyproject.toml"
    try:
        if own.is_file():
            return tomllib.loads(own.read_text()), str(own)
        if pyproject.is_file():
            table = tomllib.loads(pyproject.read_text()).get("tool", {}).get("workbench")
            if table is not None:
                return table, f"{pyproject} [tool.workbench]"
    except tomllib.TOMLDecodeError as exc:
        bad = own if own.is_file() else pyproject
        raise InvalidInput(f"Cannot read {bad}: {exc}", "Fix the TOML syntax in that file.") from exc
    return {}, None


def _sqlite_uri(path: Path) -> str:
    return f"sqlite:///{path}"


def _is_sql_uri(uri: str) -> bool:
    scheme = uri.split(":", 1)[0].split("+", 1)[0].lower()
    return scheme in _SQL_SCHEMES


def load_settings(workspace: str | os.PathLike[str] | None = None, **overrides: Any) -> Settings:
    """Resolve the settings for the workspace that holds ``workspace`` (default: cwd).

    Keyword overrides are explicit arguments and win over everything else;
    ``None`` values are ignored so CLI flags can be passed through as they are.
    """
    overrides = {k: v for k, v in overrides.items() if v is not None}
    unknown = set(overrides) - set(ENV_VARS) - {"promotion_gates", "artifact_location"}
    if unknown:
        raise InvalidInput(
            f"Unknown setting(s): {', '.join(sorted(unknown))}", f"Known: {', '.join(sorted(ENV_VARS))}."
        )

    sources: dict[str, str] = {}
    if workspace is not None:
        start, sources["workspace"] = workspace, "argument"
    elif os.environ.get(ENV_VARS["workspace"]):
        start, sources["workspace"] = os.environ[ENV_VARS["workspace"]], "environment"
    else:
        start, sources["workspace"] = os.getcwd(), "current folder"
    root, git_root, dvc_root = find_workspace(start)
    from_file, file_name = _file_settings(root)

    def pick(name: str, default: Any) -> Any:
        if name in overrides:
            sources[name] = "argument"
            value = overrides[name]
        elif os.environ.get(ENV_VARS.get(name, "")):
            sources[name] = "environment"
            value = os.environ[ENV_VARS[name]]
        elif name in from_file:
            sources[name] = file_name or "file"
            value = from_file[name]
        else:
            sources[name] = "default"
            return default
        if name in _FLOAT_SETTINGS:
            try:
                return float(value)
            except (TypeError, ValueError) as exc:
                raise InvalidInput(
                    f"Setting {name}={value!r} is not a number", f"Set {name} to seconds, e.g. 1.0."
                ) from exc
        return value

    embedded_db = root / STATE_DIR / "mlflow.db"
    tracking_uri = str(pick("tracking_uri", _sqlite_uri(embedded_db)))
    if "://" not in tracking_uri and ":" not in tracking_uri[:3]:
        # a bare folder is MLflow's file store; keep MLflow's meaning but make it absolute
        tracking_uri = str((root / tracking_uri).resolve())
    store_default = tracking_uri if _is_sql_uri(tracking_uri) else None
    store_uri = pick("store_uri", store_default)
    registry_uri = str(pick("registry_uri", tracking_uri))
    artifact_location = str(pick("artifact_location", str(root / STATE_DIR / "artifacts")))
    gates = pick("promotion_gates", {})
    if not isinstance(gates, dict) or not all(isinstance(v, list) for v in gates.values()):
        raise InvalidInput(
            "promotion_gates must map a model name to a list of gate expressions",
            'Example: [tool.workbench.promotion_gates] iris = ["metrics.accuracy >= 0.9"]',
        )
    gpu_source = str(pick("gpu_source", "auto"))
    if gpu_source not in {"auto", "nvml", "none", "simulated", "prometheus"}:
        raise InvalidInput(f"Unknown GPU source {gpu_source!r}", "Use auto, nvml, none, simulated or prometheus.")

    return Settings(
        workspace=root,
        tracking_uri=tracking_uri,
        registry_uri=registry_uri,
        store_uri=store_uri,
        artifact_location=artifact_location,
        git_root=git_root,
        dvc_root=dvc_root,
        gpu_source=gpu_source,
        gpu_interval=pick("gpu_interval", 1.0),
        gpu_history=pick("gpu_history", 600.0),
        prometheus_url=pick("prometheus_url", None),
        dvc_remote=pick("dvc_remote", None),
        promotion_gates={str(k): [str(g) for g in v] for k, v in gates.items()},
        sources=sources,
    )


def embedded_store_exists(settings: Settings) -> bool:
    """True unless the settings point at the embedded SQLite store and it was never created."""
    if not settings.tracking_uri.startswith("sqlite:///"):
        return True
    return Path(settings.tracking_uri.removeprefix("sqlite:///")).exists()


def ensure_state_dir(settings: Settings, *parts: str) -> Path:
    """Create (a folder inside) the workspace's ``.workbench`` folder, and return it.

    The folder ignores itself in git (a ``.gitignore`` of ``*``), so Workbench's
    own state (store, audit log, deployments) never shows as a change.
    """
    root = settings.state_dir
    root.mkdir(parents=True, exist_ok=True)
    ignore = root / ".gitignore"
    if not ignore.exists():
        ignore.write_text("# Workbench's own state: stores, audit log, deployments\n*\n")
    folder = root.joinpath(*parts)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def ensure_store_dir(settings: Settings) -> None:
    """Create the folder of a local SQLite store; called only before something is logged."""
    if settings.uses_embedded_store:
        ensure_state_dir(settings)
    if settings.tracking_uri.startswith("sqlite:///"):
        Path(settings.tracking_uri.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    if "://" not in settings.artifact_location:
        Path(settings.artifact_location).mkdir(parents=True, exist_ok=True)
