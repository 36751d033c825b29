"""Lineage: the tags that tie an MLflow run to its code and data.

Training code (and the ``%%wb track`` magic) calls :func:`record` inside a run;
it writes, as run tags:

- ``workbench.git.commit`` / ``workbench.git.branch`` / ``workbench.git.dirty``:
  the code the run was trained from, and whether the work tree had changes;
- ``workbench.data.<path>``: the DVC hash of each tracked input (from its
  ``.dvc`` file or the ``dvc.lock`` entry of the stage that made it);
- ``workbench.data_dirty``: ``true`` when tracked data differs from what the
  commit records (the hashes above then do not describe the data used);
- ``workbench.params.sha256``: a digest of ``params.yaml`` when there is one.

:func:`lineage_from_tags` reads them back for any run or model version; runs
logged without Workbench still show MLflow's own ``mlflow.source.git.commit``.
"""

from __future__ import annotations

import hashlib
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from workbench.config import Settings, load_settings
from workbench.errors import InvalidInput

PREFIX = "workbench."
TAG_COMMIT = "workbench.git.commit"
TAG_BRANCH = "workbench.git.branch"
TAG_DIRTY = "workbench.git.dirty"
TAG_DATA_DIRTY = "workbench.data_dirty"
TAG_PARAMS = "workbench.params.sha256"
DATA_PREFIX = "workbench.data."
MLFLOW_COMMIT = "mlflow.source.git.commit"


@dataclass
class Lineage:
    """Where a run's code and data came from."""

    commit: str | None
    branch: str | None = None
    dirty: bool | None = None
    data: dict[str, str] = field(default_factory=dict)  # tracked path -> DVC hash
    data_dirty: bool | None = None
    params_sha256: str | None = None
    source: str = "workbench"  # "workbench" tags, or "mlflow" (only MLflow's own git tag)

    def to_tags(self) -> dict[str, str]:
        tags = {}
        if self.commit:
            tags[TAG_COMMIT] = self.commit
        if self.branch:
            tags[TAG_BRANCH] = self.branch
        if self.dirty is not None:
            tags[TAG_DIRTY] = str(self.dirty).lower()
        if self.data_dirty is not None:
            tags[TAG_DATA_DIRTY] = str(self.data_dirty).lower()
        if self.params_sha256:
            tags[TAG_PARAMS] = self.params_sha256
        for path, digest in self.data.items():
            tags[DATA_PREFIX + path] = digest
        return tags


def _flag(value: str | None) -> bool | None:
    return None if value is None else value.lower() == "true"


def lineage_from_tags(tags: dict[str, str]) -> Lineage | None:
    """Read lineage back from a run's tags; None when the run has none."""
    if TAG_COMMIT in tags or any(k.startswith(DATA_PREFIX) for k in tags):
        return Lineage(
            commit=tags.get(TAG_COMMIT),
            branch=tags.get(TAG_BRANCH),
            dirty=_flag(tags.get(TAG_DIRTY)),
            data={k[len(DATA_PREFIX) :]: v for k, v in sorted(tags.items()) if k.startswith(DATA_PREFIX)},
            data_dirty=_flag(tags.get(TAG_DATA_DIRTY)),
            params_sha256=tags.get(TAG_PARAMS),
        )
    if MLFLOW_COMMIT in tags:
        return Lineage(commit=tags[MLFLOW_COMMIT], source="mlflow")
    return None


def _git(root: Path, *args: str) -> str | None:
    try:
        done = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def _tracked_hashes(root: Path) -> dict[str, str]:
    """DVC hashes of every tracked output, from ``*.dvc`` files and ``dvc.lock``."""
    hashes: dict[str, str] = {}

    def add(base: Path, out: dict) -> None:
        digest = out.get("md5") or out.get("etag") or out.get("checksum")
        if out.get("path") and digest:
            hashes[(base / out["path"]).resolve().relative_to(root).as_posix()] = str(digest)

    for dvc_file in sorted(root.rglob("*.dvc")):
        if not dvc_file.is_file() or ".dvc" in dvc_file.relative_to(root).parts[:-1]:
            continue  # DVC's own folder
        content = yaml.safe_load(dvc_file.read_text()) or {}
        for out in content.get("outs", []):
            add(dvc_file.parent, out)
    for lock in sorted(root.rglob("dvc.lock")):
        content = yaml.safe_load(lock.read_text()) or {}
        for stage in (content.get("stages") or {}).values():
            for out in stage.get("outs", []):
                add(lock.parent, out)
    return hashes


def _data_dirty(settings: Settings) -> bool | None:
    if settings.dvc_root is None:
        return None
    try:
        from workbench import data

        return data.has_uncommitted_changes(settings)
    except Exception:  # lineage must never break a training run
        return None


def collect(settings: Settings, inputs: list[str] | None = None) -> Lineage:
    """Lineage of the workspace as it is now.

    ``inputs`` narrows the data hashes to those tracked paths (relative to the
    workspace); by default every tracked output is recorded.
    """
    root = settings.git_root or settings.workspace
    commit = _git(root, "rev-parse", "HEAD") if settings.git_root else None
    branch = _git(root, "rev-parse", "--abbrev-ref", "HEAD") if commit else None
    porcelain = _git(root, "status", "--porcelain", "--untracked-files=no") if commit else None
    data = _tracked_hashes(settings.dvc_root) if settings.dvc_root else {}
    if inputs:
        wanted = {Path(p).as_posix().strip("/") for p in inputs}
        missing = wanted - set(data)
        if missing:
            raise InvalidInput(
                f"Not tracked by DVC: {', '.join(sorted(missing))}",
                "Pass paths of DVC-tracked data (relative to the workspace), or track them with `dvc add`.",
            )
        data = {p: h for p, h in data.items() if p in wanted}
    params_file = settings.workspace / "params.yaml"
    params_sha = hashlib.sha256(params_file.read_bytes()).hexdigest() if params_file.is_file() else None
    return Lineage(
        commit=commit,
        branch=branch if branch != "HEAD" else None,
        dirty=None if porcelain is None else bool(porcelain),
        data=data,
        data_dirty=_data_dirty(settings),
        params_sha256=params_sha,
    )


def record(
    run_id: str | None = None,
    *,
    workspace: str | Path | None = None,
    inputs: list[str] | None = None,
    settings: Settings | None = None,
) -> Lineage:
    """Tag a run with the lineage of the workspace; call it from training code.

    With no ``run_id`` the active MLflow run (``mlflow.start_run()``) is tagged.
    """
    import mlflow
    from mlflow.entities import RunTag

    from workbench import _mlflow

    settings = settings or load_settings(workspace)
    if run_id is None:
        active = mlflow.active_run()
        if active is None:
            raise InvalidInput("No MLflow run is active", "Call inside `with mlflow.start_run():` or pass run_id.")
        run_id = active.info.run_id
        client = mlflow.MlflowClient()  # the active run's own tracking URI
    else:
        client = _mlflow.client(settings, for_write=True)
    lineage = collect(settings, inputs)
    with _mlflow.mlflow_errors(settings.tracking_uri, "recording lineage"):
        client.log_batch(run_id, tags=[RunTag(k, v) for k, v in lineage.to_tags().items()])
    return lineage
