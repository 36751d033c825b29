"""The MLflow model registry: models, versions, aliases, lineage; promote and rollback.

Aliases are read from the registered model (``get_registered_model``), never
from ``search_model_versions``, which returns ``aliases=[]`` for every version
(see BUILD-NOTES).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from workbench import _mlflow, audit, tracking
from workbench.config import Settings, embedded_store_exists, ensure_state_dir
from workbench.errors import Conflict, InvalidInput, NotFound, WorkbenchError
from workbench.gates import GateResult
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
    """``name`` if it can be a registered model's name (it goes into MLflow filter strings), else InvalidInput."""
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
    number, alias = _version_or_alias(version_or_alias)
    if number is not None:
        return number
    detail = _get_registered(_mlflow.client(settings), settings, name)
    aliases = {str(a): str(v) for a, v in (detail.aliases or {}).items()}
    if alias not in aliases:
        raise _no_alias(name, alias, aliases)
    return aliases[alias]


def version_status(settings: Settings, name: str, version_or_alias: str) -> tuple[str, str]:
    """The version number ``version_or_alias`` names now, and its MLflow status (``READY`` once registered).

    A registry behind an MLflow server is read over its REST API without
    importing MLflow (about two seconds), which ``workbench deploy`` would
    otherwise pay before starting the model server; a local store goes
    through MLflow's client. Both give the same answers and errors.
    """
    if _mlflow.is_http(settings.registry_uri):
        return _version_status_over_rest(settings.registry_uri, _check_name(name), version_or_alias)
    number = resolve_version(settings, name, version_or_alias)
    client = _mlflow.client(settings)
    try:
        with _mlflow.mlflow_errors(settings.registry_uri, f"{name} version {number}"):
            return number, str(client.get_model_version(name, number).status)
    except NotFound as exc:
        raise _no_version(name, number) from exc


def _version_status_over_rest(uri: str, name: str, version_or_alias: str) -> tuple[str, str]:
    number, alias = _version_or_alias(version_or_alias)
    if alias is not None:
        try:
            found = _mlflow.rest_get(uri, "registered-models/alias", {"name": name, "alias": alias})
        except (NotFound, InvalidInput):  # MLflow answers an unknown alias with INVALID_PARAMETER_VALUE
            # which aliases it has, or that the model itself is unknown, as the client path tells
            model = _mlflow.rest_get(uri, "registered-models/get", {"name": name}, f"model {name!r}")
            aliases = {a["alias"]: a["version"] for a in model["registered_model"].get("aliases", [])}
            if alias in aliases:  # it exists after all: the first answer was about something else
                raise
            raise _no_alias(name, alias, aliases) from None
    else:
        try:
            found = _mlflow.rest_get(uri, "model-versions/get", {"name": name, "version": str(number)})
        except NotFound as exc:
            raise _no_version(name, str(number)) from exc
    return str(found["model_version"]["version"]), str(found["model_version"].get("status", ""))


def _version_or_alias(text: str) -> tuple[str | None, str | None]:
    """``"3"``/``"v3"`` -> ("3", None); ``"@champion"``/``"champion"`` -> (None, "champion")."""
    ref = str(text).strip()
    digits = ref[1:] if ref[:1] in ("v", "V") else ref
    if digits.isdigit():
        return str(int(digits)), None
    alias = ref.lstrip("@")
    if not alias:
        raise InvalidInput(
            "A version or alias is required", "Pass a version number like 3, or an alias like @champion."
        )
    return None, alias


def _no_alias(name: str, alias: str, aliases: dict[str, str]) -> NotFound:
    return NotFound(f"Model {name!r} has no alias {alias!r}", f"Its aliases: {', '.join(sorted(aliases)) or 'none'}.")


def _no_version(name: str, version: str) -> NotFound:
    return NotFound(f"Model {name!r} has no version {version}", f"`workbench models {name}` lists its versions.")


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


# --------------------------------------------------------------------------- promote / rollback
#
# The previous holders of an alias live in a registered-model tag
# ``workbench.alias_history.<alias>``: a JSON list of steps
# ``{"v": previous holder or null, "by": the version that replaced it}``,
# newest last. Promote pushes a step, rollback pops one. A step whose "by"
# never took effect (a promotion interrupted between its two writes) is
# recognised by rollback and dropped, so a half-done promotion never breaks
# the chain. Promotions and rollbacks of one alias are serialized by a lock
# (threads of this process and, through a file lock in the workspace, other
# processes on this machine); every attempt is audited in that order.

HISTORY_TAG = "workbench.alias_history."
HISTORY_KEEP = 500
_locks: dict[tuple[str, str], threading.Lock] = {}
_locks_guard = threading.Lock()


@dataclass
class MetricComparison:
    key: str
    candidate: float | None
    current: float | None
    delta: float | None
    lower_is_better: bool  # by the metric's name (tracking.lower_is_better): how a surface colours the delta


@dataclass
class PromotionComparison:
    """Candidate vs the current holder of the alias, and the gate results."""

    model: str
    alias: str
    candidate: ModelVersionInfo
    current: ModelVersionInfo | None
    metrics: list[MetricComparison]
    params_differ: dict[str, dict[str, str | None]]  # param -> {"candidate": ..., "current": ...}
    gates: list[GateResult]
    gates_passed: bool


@dataclass
class AliasMove:
    """The outcome of a promote or rollback."""

    model: str
    alias: str
    before: str | None
    after: str | None
    comparison: PromotionComparison | None = None
    overridden_gates: list[str] = field(default_factory=list)
    deployments: list[Any] = field(default_factory=list)  # deployments swapped to the new version
    deployment_errors: list[dict[str, str]] = field(default_factory=list)


def _validate_alias(alias: str) -> str:
    from mlflow.utils.validation import _validate_model_alias_name, _validate_model_alias_name_reserved

    with _mlflow.mlflow_errors("", "alias"):
        _validate_model_alias_name(alias)
        _validate_model_alias_name_reserved(alias)
    return alias


def _read_history(tags: dict[str, str], alias: str) -> list[dict[str, str | None]]:
    raw = tags.get(HISTORY_TAG + alias)
    if not raw:
        return []
    try:
        steps = json.loads(raw)
    except json.JSONDecodeError:
        return []
    return [s for s in steps if isinstance(s, dict) and "by" in s]


def _write_history(client, name: str, alias: str, steps: list[dict[str, str | None]]) -> None:
    key = HISTORY_TAG + alias
    if steps:
        client.set_registered_model_tag(name, key, json.dumps(steps[-HISTORY_KEEP:], separators=(",", ":")))
    else:
        client.delete_registered_model_tag(name, key)


@contextmanager
def _alias_lock(settings: Settings, name: str, alias: str) -> Iterator[None]:
    """Serialize moves of one alias: a thread lock, then a file lock for other processes."""
    with _locks_guard:
        lock = _locks.setdefault((name, alias), threading.Lock())
    with lock:
        folder = ensure_state_dir(settings, "locks")
        safe = re.sub(r"[^\w.-]", "_", f"{name}@{alias}")
        with open(folder / f"{safe}.lock", "w") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)


def compare_for_promotion(settings: Settings, name: str, version: str, alias: str = "champion") -> PromotionComparison:
    """What promoting ``version`` to ``@alias`` would change, and whether the gates pass."""
    from workbench import gates as gates_module

    _validate_alias(alias)
    client = _mlflow.client(settings)
    candidate = get_version(settings, name, resolve_version(settings, name, version))
    model = _get_registered(client, settings, name)
    holder = (model.aliases or {}).get(alias)
    current = get_version(settings, name, str(holder)) if holder is not None else None
    keys = sorted(set(candidate.metrics) | set(current.metrics if current else {}))
    metrics = []
    for key in keys:
        new, old = candidate.metrics.get(key), current.metrics.get(key) if current else None
        delta = new - old if new is not None and old is not None else None
        metrics.append(MetricComparison(key, new, old, delta, tracking.lower_is_better(key)))
    params_differ = {}
    if current is not None:
        for key in sorted(set(candidate.params) | set(current.params)):
            if candidate.params.get(key) != current.params.get(key):
                params_differ[key] = {"candidate": candidate.params.get(key), "current": current.params.get(key)}
    results = gates_module.evaluate(settings.promotion_gates.get(name, []), candidate, current)
    return PromotionComparison(
        model=name,
        alias=alias,
        candidate=candidate,
        current=current,
        metrics=metrics,
        params_differ=params_differ,
        gates=results,
        gates_passed=all(g.passed for g in results),
    )


def _refresh_deployments(settings: Settings, move: AliasMove) -> None:
    """Swap deployments that serve the moved alias; their failures never undo the move."""
    try:
        from workbench import deploy
    except ImportError:  # deployments are optional for the registry
        return
    try:
        move.deployments = deploy.refresh_alias(settings, move.model, move.alias)
    except WorkbenchError as exc:
        move.deployment_errors.append(exc.to_dict())


def promote(
    settings: Settings,
    name: str,
    version: str,
    alias: str = "champion",
    *,
    override_gates: bool = False,
) -> AliasMove:
    """Move ``@alias`` to ``version`` after comparing it with the current holder.

    A failed gate refuses the promotion (``Conflict``) unless ``override_gates``;
    the override is recorded in the audit log. The previous holder is kept for
    :func:`rollback`. Deployments serving the alias swap to the new version.
    """
    target = f"{name}@{alias}"
    try:
        _validate_alias(alias)
        with _alias_lock(settings, name, alias):
            return _promote_locked(settings, name, version, alias, override_gates, target)
    except WorkbenchError as exc:
        if not getattr(exc, "_audited", False):
            audit.record(settings, "promote", target, outcome="failed", detail={"version": version}, error=exc)
        raise


def _refuse(settings: Settings, action: str, target: str, exc: WorkbenchError, **fields: Any) -> WorkbenchError:
    audit.record(settings, action, target, outcome="refused", error=exc, **fields)
    exc._audited = True  # type: ignore[attr-defined]
    return exc


def _promote_locked(
    settings: Settings, name: str, version: str, alias: str, override_gates: bool, target: str
) -> AliasMove:
    comparison = compare_for_promotion(settings, name, version, alias)
    new = comparison.candidate.version
    before = comparison.current.version if comparison.current else None
    if before == new:
        raise _refuse(
            settings,
            "promote",
            target,
            Conflict(f"v{new} already holds @{alias} of {name}", "Pick another version, or roll back instead."),
            before=before,
            after=before,
        )
    failed = [g for g in comparison.gates if not g.passed]
    if failed and not override_gates:
        reasons = "; ".join(f"{g.gate} ({g.detail})" for g in failed)
        raise _refuse(
            settings,
            "promote",
            target,
            Conflict(f"Promotion of {name} v{new} to @{alias} refused by its gates: {reasons}", _OVERRIDE_HINT),
            before=before,
            after=before,
            detail={"version": new, "gates": comparison.gates},
        )
    client = _mlflow.client(settings, for_write=True)
    with _mlflow.mlflow_errors(settings.registry_uri, f"promoting {target}"):
        model = client.get_registered_model(name)
        steps = _read_history(dict(model.tags or {}), alias)
        _write_history(client, name, alias, [*steps, {"v": before, "by": new}])
        try:
            client.set_registered_model_alias(name, alias, new)
        except Exception:
            with contextlib.suppress(Exception):  # best effort; rollback drops a step that never took effect
                _write_history(client, name, alias, steps)
            raise
    overridden = [g.gate for g in failed]
    move = AliasMove(name, alias, before, new, comparison=comparison, overridden_gates=overridden)
    audit.record(
        settings,
        "promote",
        target,
        before=before,
        after=new,
        detail={"gates": comparison.gates, "overridden_gates": overridden},
    )
    _refresh_deployments(settings, move)
    return move


_OVERRIDE_HINT = "Fix what the gates check, or override them explicitly (the override is audited)."


def alias_history(settings: Settings, name: str, alias: str = "champion") -> list[dict[str, str | None]]:
    """The steps rollback would undo, oldest first."""
    model = _get_registered(_mlflow.client(settings), settings, name)
    return _read_history(dict(model.tags or {}), alias)


def rollback(settings: Settings, name: str, alias: str = "champion") -> AliasMove:
    """Move ``@alias`` back to its previous holder (repeatable through the whole history)."""
    target = f"{name}@{alias}"
    try:
        _validate_alias(alias)
        with _alias_lock(settings, name, alias):
            return _rollback_locked(settings, name, alias, target)
    except WorkbenchError as exc:
        if not getattr(exc, "_audited", False):
            audit.record(settings, "rollback", target, outcome="failed", error=exc)
        raise


def _rollback_locked(settings: Settings, name: str, alias: str, target: str) -> AliasMove:
    client = _mlflow.client(settings, for_write=True)
    model = _get_registered(client, settings, name)
    holder = (model.aliases or {}).get(alias)
    current = None if holder is None else str(holder)
    steps = _read_history(dict(model.tags or {}), alias)
    # drop steps of promotions that were interrupted before the alias moved
    while steps and steps[-1]["by"] != current and steps[-1]["v"] == current:
        steps.pop()
    if not steps:
        raise _refuse(
            settings,
            "rollback",
            target,
            Conflict(f"@{alias} of {name} has no earlier holder to roll back to", "Promote a version instead."),
            before=current,
            after=current,
        )
    if steps[-1]["by"] != current:
        raise _refuse(
            settings,
            "rollback",
            target,
            Conflict(
                f"@{alias} of {name} was moved outside Workbench (it is v{current}, Workbench last set "
                f"v{steps[-1]['by']})",
                f"Promote the version you want explicitly: workbench promote {name} VERSION --alias {alias}",
            ),
            before=current,
            after=current,
        )
    previous = steps[-1]["v"]
    with _mlflow.mlflow_errors(settings.registry_uri, f"rolling back {target}"):
        if previous is None:
            client.delete_registered_model_alias(name, alias)
        else:
            client.set_registered_model_alias(name, alias, previous)
        _write_history(client, name, alias, steps[:-1])
    move = AliasMove(name, alias, current, previous)
    audit.record(settings, "rollback", target, before=current, after=previous)
    if previous is not None:
        _refresh_deployments(settings, move)
    return move
