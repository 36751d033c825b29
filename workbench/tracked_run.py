"""Run a piece of work inside an MLflow run that records where it came from and what it used.

:func:`track` is what ``%%wb track`` calls for a notebook cell (and what any
caller can use for a function): it starts an MLflow run in the workspace's
tracking store, tags it with the workspace's lineage (git commit and dirty
flag, DVC hashes of the tracked data, ``params.yaml`` digest), runs the work,
and logs

- ``cell_duration_s``: how long the work took;
- ``gpu_utilization_mean`` / ``gpu_utilization_max`` (%, averaged over the
  GPUs of each sample) and ``gpu_memory_used_mean_bytes`` /
  ``gpu_memory_used_max_bytes`` (summed over the GPUs of each sample), and
  ``gpu_samples``, from the process's shared GPU sampler while the work ran.
  The readings are the machine's GPUs, whoever uses them. Without GPU readings
  the tag ``workbench.gpu.unavailable`` says why and no GPU metric is logged;
  simulated readings are tagged ``workbench.gpu.simulated = true``.

The run is MLflow's active run while the work runs, so ``mlflow.log_metric``
(or autologging) in the work lands in it. An exception in the work marks the
run ``FAILED`` (``KILLED`` for an interrupt) and propagates, with a note
naming the run.
"""

from __future__ import annotations

import os
import statistics
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from workbench import _mlflow, lineage
from workbench.config import Settings
from workbench.errors import Conflict, WorkbenchError
from workbench.gpu.model import GpuSample

METRIC_DURATION = "cell_duration_s"
GPU_METRICS = (
    "gpu_utilization_mean",
    "gpu_utilization_max",
    "gpu_memory_used_mean_bytes",
    "gpu_memory_used_max_bytes",
    "gpu_samples",
)
# every metric a tracked run logs besides the work's own
METRICS = (METRIC_DURATION, *GPU_METRICS)
TAG_GPU_SOURCE = "workbench.gpu.source"
TAG_GPU_SIMULATED = "workbench.gpu.simulated"
TAG_GPU_UNAVAILABLE = "workbench.gpu.unavailable"
TAG_LINEAGE_ERROR = "workbench.lineage_error"
CODE_ARTIFACT = "cell.py"
# how long to wait at the end for a first GPU sample when the work was quicker than the sampler
FIRST_SAMPLE_WAIT_S = 5.0


@dataclass
class GpuUsage:
    """GPU readings while the work ran (utilization in %, memory in bytes)."""

    source: str
    simulated: bool
    samples: int
    gpus: int  # GPUs in the last sample
    utilization_mean: float | None
    utilization_max: float | None
    memory_used_mean_bytes: float | None
    memory_used_max_bytes: int | None

    def to_metrics(self) -> dict[str, float]:
        """The run metrics this usage is logged as (readings that were missing are left out)."""
        values = (
            self.utilization_mean,
            self.utilization_max,
            self.memory_used_mean_bytes,
            self.memory_used_max_bytes,
            self.samples,
        )
        return {key: float(value) for key, value in zip(GPU_METRICS, values, strict=True) if value is not None}


@dataclass
class TrackedRun:
    """The MLflow run a piece of work ran in, as it ended."""

    run_id: str
    run_name: str
    experiment_id: str
    experiment: str
    status: str  # FINISHED, FAILED or KILLED (the latter two only reach callers through the exception's note)
    duration_s: float
    tracking_uri: str
    lineage: lineage.Lineage | None
    lineage_error: str | None  # why lineage could not be collected
    gpu: GpuUsage | None
    gpu_unavailable: str | None  # why there are no GPU metrics


def track(
    settings: Settings,
    work: Callable[[], object],
    *,
    experiment: str | None = None,
    run_name: str | None = None,
    code: str | None = None,
) -> TrackedRun:
    """Run ``work()`` inside a new MLflow run with lineage, duration and GPU metrics; return the ended run.

    ``experiment`` is created when missing (default: ``MLFLOW_EXPERIMENT_NAME``,
    else the workspace folder's name); ``code``, when given, is saved as the
    run's ``cell.py`` artifact. Nothing runs when the tracking store cannot
    record the run (``WorkbenchError``). An exception raised by ``work`` ends
    the run FAILED (KILLED for ``KeyboardInterrupt``) and is re-raised.
    """
    __tracebackhide__ = True  # IPython and pytest hide this frame in the work's tracebacks
    import mlflow

    client = _mlflow.client(settings, for_write=True)
    name = experiment or _default_experiment(settings)
    experiment_id = _experiment_id(settings, client, name)
    found, lineage_error = _collect_lineage(settings)
    tags = found.to_tags() if found else {TAG_LINEAGE_ERROR: lineage_error or "unknown"}
    sampler, gpu_error = _sampler(settings)
    stats = _GpuStats()

    with _fluent_uris(settings):
        with _mlflow.mlflow_errors(settings.tracking_uri, "starting the run"):
            run = mlflow.start_run(
                experiment_id=experiment_id, run_name=run_name, tags=tags, nested=mlflow.active_run() is not None
            )
        run_id = run.info.run_id
        status, failure, unsubscribe = "FAILED", None, None
        started_wall, started = time.time(), time.perf_counter()
        try:
            if code is not None:
                with _mlflow.mlflow_errors(settings.tracking_uri, "saving the code"):
                    client.log_text(run_id, code, CODE_ARTIFACT)
            if sampler is not None:
                before = sampler.latest()
                if before is not None and before.timestamp >= started_wall - sampler.interval:
                    stats.add(before)  # the sample that describes the GPUs as the work starts
                unsubscribe = sampler.subscribe(stats.add)
            started = time.perf_counter()
            try:
                work()
            except BaseException as exc:
                status = "KILLED" if isinstance(exc, KeyboardInterrupt) else "FAILED"
                failure = exc
                raise
            status = "FINISHED"
        finally:
            duration = time.perf_counter() - started
            if unsubscribe is not None:
                unsubscribe()
                if stats.seen == 0:  # the work was quicker than the sampler's first sample
                    first = sampler.latest(wait=FIRST_SAMPLE_WAIT_S)
                    if first is not None:
                        stats.add(first)
            usage, gpu_reason = stats.usage() if sampler is not None else (None, gpu_error)
            metrics = {METRIC_DURATION: duration, **(usage.to_metrics() if usage else {})}
            try:
                _end_run(settings, client, run_id, status, metrics, _gpu_tags(usage, gpu_reason))
            except WorkbenchError as exc:
                if failure is None:
                    raise
                failure.add_note(f"Workbench: could not mark MLflow run {run_id} {status}: {exc}")
            else:
                if failure is not None:
                    failure.add_note(f"Workbench: MLflow run {run_id} in experiment {name!r} marked {status}.")
    return TrackedRun(
        run_id=run_id,
        run_name=run.info.run_name or "",
        experiment_id=experiment_id,
        experiment=name,
        status=status,
        duration_s=duration,
        tracking_uri=settings.tracking_uri,
        lineage=found,
        lineage_error=lineage_error,
        gpu=usage,
        gpu_unavailable=gpu_reason,
    )


def _end_run(
    settings: Settings, client, run_id: str, status: str, metrics: dict[str, float], tags: dict[str, str]
) -> None:
    """Log the closing metrics and tags, then end the active run with ``status`` (even if logging failed)."""
    import mlflow
    from mlflow.entities import Metric, RunTag

    now = int(time.time() * 1000)
    with _mlflow.mlflow_errors(settings.tracking_uri, "ending the run"):
        try:
            client.log_batch(
                run_id,
                metrics=[Metric(k, v, now, 0) for k, v in metrics.items()],
                tags=[RunTag(k, v) for k, v in tags.items()],
            )
        finally:
            mlflow.end_run(status)


def _default_experiment(settings: Settings) -> str:
    return os.environ.get("MLFLOW_EXPERIMENT_NAME") or settings.workspace.name or "Default"


def _experiment_id(settings: Settings, client, name: str) -> str:
    """The id of the active experiment ``name``, created when missing (artifacts inside the workspace)."""
    with _mlflow.mlflow_errors(settings.tracking_uri, f"experiment {name!r}"):
        found = client.get_experiment_by_name(name)
        if found is None:
            location = None
            if settings.uses_embedded_store or settings.sources.get("artifact_location", "default") != "default":
                location = str(Path(settings.artifact_location) / name)
            try:
                return str(client.create_experiment(name, artifact_location=location))
            except Conflict:  # another process created it meanwhile
                found = client.get_experiment_by_name(name)
    if found is None:
        raise Conflict(f"Experiment {name!r} could not be created or found", "Try again, or pick another name.")
    if found.lifecycle_stage != "active":
        raise Conflict(
            f"Experiment {name!r} is deleted",
            "Restore it (mlflow experiments restore), or track into another experiment with --experiment.",
        )
    return str(found.experiment_id)


def _collect_lineage(settings: Settings) -> tuple[lineage.Lineage | None, str | None]:
    """The workspace's lineage, or why it could not be read (tracking goes on without it)."""
    try:
        return lineage.collect(settings), None
    except WorkbenchError as exc:
        return None, str(exc)
    except Exception as exc:  # a broken .dvc file or git must not stop the work from running
        return None, f"{type(exc).__name__}: {exc}"


def _sampler(settings: Settings):
    """The process's shared GPU sampler, or None and why there is none."""
    from workbench import gpu

    try:
        return gpu.get_sampler(settings), None
    except WorkbenchError as exc:
        return None, str(exc)


class _GpuStats:
    """Running utilization and memory statistics over GPU samples (fed from the sampler's thread)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.seen = 0  # samples received, readable or not
        self._readable = 0
        self._utilization: list[float] = [0.0, 0.0, 0.0]  # count, sum, max
        self._memory: list[float] = [0.0, 0.0, 0.0]
        self._last: GpuSample | None = None
        self._simulated = False

    def add(self, sample: GpuSample) -> None:
        with self._lock:
            self.seen += 1
            self._last = sample
            if not (sample.available and sample.gpus):
                return
            self._readable += 1
            self._simulated = self._simulated or sample.simulated
            utilization = [g.utilization_gpu for g in sample.gpus if g.utilization_gpu is not None]
            if utilization:
                _accumulate(self._utilization, statistics.fmean(utilization))
            memory = [g.memory_used for g in sample.gpus if g.memory_used is not None]
            if memory:
                _accumulate(self._memory, float(sum(memory)))

    def usage(self) -> tuple[GpuUsage | None, str | None]:
        """The usage over the samples so far, or None and why there is none."""
        with self._lock:
            last = self._last
            if last is None:
                return None, "No GPU sample arrived in time"
            if not self._readable:
                return None, last.reason or "No GPU readings"
            count_u, sum_u, max_u = self._utilization
            count_m, sum_m, max_m = self._memory
            return (
                GpuUsage(
                    source=last.source,
                    simulated=self._simulated,
                    samples=self._readable,
                    gpus=len(last.gpus),
                    utilization_mean=sum_u / count_u if count_u else None,
                    utilization_max=max_u if count_u else None,
                    memory_used_mean_bytes=sum_m / count_m if count_m else None,
                    memory_used_max_bytes=int(max_m) if count_m else None,
                ),
                None,
            )


def _accumulate(stat: list[float], value: float) -> None:
    """Add ``value`` to a ``[count, sum, max]`` triple."""
    stat[2] = value if stat[0] == 0 else max(stat[2], value)
    stat[0] += 1
    stat[1] += value


def _gpu_tags(usage: GpuUsage | None, reason: str | None) -> dict[str, str]:
    if usage is None:
        return {TAG_GPU_UNAVAILABLE: (reason or "No GPU readings")[:5000]}
    tags = {TAG_GPU_SOURCE: usage.source}
    if usage.simulated:
        tags[TAG_GPU_SIMULATED] = "true"
    return tags


@contextmanager
def _fluent_uris(settings: Settings) -> Iterator[None]:
    """Point MLflow's fluent API (what the work itself calls) at the workspace's store, then back.

    MLflow mirrors a set tracking URI into ``MLFLOW_TRACKING_URI``; restoring
    the previous value (or unsetting both when none was set) leaves the
    process as it was.
    """
    import mlflow
    from mlflow.tracking import is_tracking_uri_set

    was_set, previous = is_tracking_uri_set(), mlflow.get_tracking_uri()
    if previous != settings.tracking_uri:
        mlflow.set_tracking_uri(settings.tracking_uri)
    previous_registry = mlflow.get_registry_uri()
    if previous_registry != settings.registry_uri:
        mlflow.set_registry_uri(settings.registry_uri)
    try:
        yield
    finally:
        if previous_registry != settings.registry_uri:
            mlflow.set_registry_uri(previous_registry)
        if previous != settings.tracking_uri:
            mlflow.set_tracking_uri(previous if was_set else None)
