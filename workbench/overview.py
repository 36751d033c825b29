"""The workspace at a glance: what ``workbench status`` and overview pages show.

Each part (data, experiments, models) is read on its own; a part whose backend
fails carries that error and the others still show.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from workbench.config import Settings
from workbench.errors import WorkbenchError


@dataclass
class ExperimentCount:
    experiment_id: str
    name: str
    runs: int


@dataclass
class WorkspaceStatus:
    workspace: Path
    git: bool
    dvc: bool
    tracking_uri: str
    settings_sources: dict[str, str]
    data: Any = None  # data.DataStatus
    experiments: list[ExperimentCount] = field(default_factory=list)
    models: list[Any] = field(default_factory=list)  # registry.ModelInfo
    errors: dict[str, dict[str, str]] = field(default_factory=dict)  # part -> error record


def workspace_status(settings: Settings) -> WorkspaceStatus:
    """Data status, experiments with run counts, models with aliases."""
    from workbench import data, registry, tracking

    status = WorkspaceStatus(
        workspace=settings.workspace,
        git=settings.git_root is not None,
        dvc=settings.dvc_root is not None,
        tracking_uri=settings.tracking_uri,
        settings_sources=dict(settings.sources),
    )
    try:
        status.data = data.status(settings)
    except WorkbenchError as exc:
        status.errors["data"] = exc.to_dict()
    try:
        status.experiments = [
            ExperimentCount(
                e.experiment_id,
                e.name,
                e.run_count if e.run_count is not None else tracking.count_runs(settings, [e.experiment_id]),
            )
            for e in tracking.list_experiments(settings)
        ]
    except WorkbenchError as exc:
        status.errors["experiments"] = exc.to_dict()
    try:
        status.models = registry.list_models(settings)
    except WorkbenchError as exc:
        status.errors["models"] = exc.to_dict()
    return status
