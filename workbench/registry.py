"""The MLflow model registry, read side: models, versions, aliases, lineage.

Aliases are read from the registered model (``get_registered_model``), never
from ``search_model_versions``, which returns ``aliases=[]`` for every version
(see BUILD-NOTES).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from workbench import _mlflow
from workbench.config import Settings, embedded_store_exists
from workbench.errors import InvalidInput, NotFound
from workbench.lineage import Lineage, lineage_from_tags

_PAGE = 200


@dataclass
class ModelVersionInfo:
    """One registered version and what stands behind it."""

    name: str
    version: str
    aliases: list[str]
    status: str
    run_id: str | None
    source: str
    description: str
    tags: dict[str, str]
    created: int | None  # ms since the epoch, as MLflow stores it
    updated: int | None
    # filled by get_version (one extra call per version):
    metrics: dict[str, float] = field(default_factory=dict)
    params: dict[str, str] = field(default_factory=dict)
    lineage: Lineage | None = None


@dataclass
class ModelInfo:
    """A registered model with its aliases (alias -> version)."""

    name: str
    description: str
    tags: dict[str, str]
    aliases: dict[str, str]
    latest_version: str | None
    created: int | None
    updated: int | None


@dataclass
class ModelDetail:
    model: ModelInfo
    versions: list[ModelVersionInfo]


def _check_name(name: str) -> str:
    if not name or not name.strip():
        raise InvalidInput("A model name is required", "`workbench models` lists the registered models.")
    if "'" in name or "\n" in name:
        raise InvalidInput(f"Invalid model name {name!r}", "Model names cannot contain quotes or new lines.")
    return name


def _aliases_by_version(aliases: dict[str, str]) -> dict[str, list[str]]:
    by_version: dict[str, list[str]] = {}
    for alias, version in sorted(aliases.items()):
        by_version.setdefault(str(version), []).append(alias)
    return by_version


def _model_info(model) -> ModelInfo:
    aliases = {str(a): str(v) for a, v in (model.aliases or {}).items()}
    latest = max((int(v.version) for v in (model.latest_versions or [])), default=None)
    return ModelInfo(
        name=model.name,
        description=model.description or "",
        tags=dict(model.tags or {}),
        aliases=aliases,
        latest_version=None if latest is None else str(latest),
        created=model.creation_timestamp,
        updated=model.last_updated_timestamp,
    )


def _version_info(mv, aliases: list[str]) -> ModelVersionInfo:
    return ModelVersionInfo(
        name=mv.name,
        version=str(mv.version),
        aliases=aliases,
        status=str(mv.status),
        run_id=mv.run_id or None,
        source=mv.source or "",
        description=mv.description or "",
        tags=dict(mv.tags or {}),
        created=mv.creation_timestamp,
        updated=mv.last_updated_timestamp,
    )


def list_models(settings: Settings) -> list[ModelInfo]:
    """Every registered model, by name."""
    if not embedded_store_exists(settings):
        return []
    client = _mlflow.client(settings)
    models, token = [], None
    with _mlflow.mlflow_errors(settings.registry_uri, "listing models"):
        while True:
            page = client.search_registered_models(max_results=_PAGE, page_token=token)
            models.extend(_model_info(m) for m in page)
            token = page.token
            if not token:
                break
    return sorted(models, key=lambda m: m.name)


def _get_registered(client, settings: Settings, name: str):
    with _mlflow.mlflow_errors(settings.registry_uri, f"model {name!r}"):
        return client.get_registered_model(_check_name(name))


def get_model(settings: Settings, name: str) -> ModelDetail:
    """A model and all its versions (newest first), aliases attached."""
    if not embedded_store_exists(settings):
        raise NotFound(f"No registered model named {name!r}", "Nothing has been logged in this workspace yet.")
    client = _mlflow.client(settings)
    model = _model_info(_get_registered(client, settings, name))
    by_version = _aliases_by_version(model.aliases)
    versions, token = [], None
    with _mlflow.mlflow_errors(settings.registry_uri, f"versions of {name!r}"):
        while True:
            page = client.search_model_versions(f"name='{name}'", max_results=_PAGE, page_token=token)
            versions.extend(_version_info(mv, by_version.get(str(mv.version), [])) for mv in page)
            token = page.token
            if not token:
                break
    versions.sort(key=lambda v: int(v.version), reverse=True)
    return ModelDetail(model=model, versions=versions)


def resolve_version(settings: Settings, name: str, version_or_alias: str) -> str:
    """Turn ``"3"``, ``"v3"`` or ``"@champion"``/``"champion"`` into a version number."""
    ref = str(version_or_alias).strip()
    digits = ref[1:] if ref[:1] in ("v", "V") else ref
    if digits.isdigit():
        return str(int(digits))
    alias = ref.lstrip("@")
    if not alias:
        raise InvalidInput(
            "A version or alias is required", "Pass a version number like 3, or an alias like @champion."
        )
    detail = _get_registered(_mlflow.client(settings), settings, name)
    aliases = {str(a): str(v) for a, v in (detail.aliases or {}).items()}
    if alias not in aliases:
        known = ", ".join(sorted(aliases)) or "none"
        raise NotFound(f"Model {name!r} has no alias {alias!r}", f"Its aliases: {known}.")
    return aliases[alias]


def get_version(settings: Settings, name: str, version: str) -> ModelVersionInfo:
    """One version with its run's metrics, params and lineage."""
    if not embedded_store_exists(settings):
        raise NotFound(f"No registered model named {name!r}", "Nothing has been logged in this workspace yet.")
    client = _mlflow.client(settings)
    number = resolve_version(settings, name, version)
    model = _get_registered(client, settings, name)
    by_version = _aliases_by_version({str(a): str(v) for a, v in (model.aliases or {}).items()})
    with _mlflow.mlflow_errors(settings.registry_uri, f"{name} version {number}"):
        mv = client.get_model_version(name, number)
    info = _version_info(mv, by_version.get(number, []))
    if info.run_id:
        try:
            with _mlflow.mlflow_errors(settings.tracking_uri, f"run {info.run_id}"):
                run = client.get_run(info.run_id)
        except NotFound:
            run = None  # the run was deleted; the version stays readable
        if run is not None:
            info.metrics = dict(run.data.metrics)
            info.params = dict(run.data.params)
            info.lineage = lineage_from_tags(dict(run.data.tags))
    return info
