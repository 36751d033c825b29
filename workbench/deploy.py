"""Deployments: registered models served as REST endpoints.

A deployment serves ``models:/NAME@ALIAS`` (or a fixed version) under a name.
The alias is resolved to a concrete version when the deployment starts, so
the record always says exactly which version answers.

Targets are pluggable (:class:`Target`):

- ``local`` (:class:`LocalTarget`): each deployment is one supervisor process
  (:mod:`workbench._supervisor`) that runs ``mlflow models serve
  --env-manager local`` behind a stable loopback endpoint, health-checks and
  restarts it, and swaps versions blue/green without failing a request. The
  supervisor outlives whoever started it; its state file in
  ``<workspace>/.workbench/deployments`` lets any later process (a restarted
  Jupyter server, the dashboard, the CLI) find it again, and a reader that
  finds the supervisor gone marks the deployment ``dead`` and cleans up.
- any other target URI (:class:`PluginTarget`): handed to the MLflow
  deployments plugin that serves it (``mlflow.deployments.get_deploy_client``),
  e.g. KServe or SageMaker.

Every state change (deploy, stop, restart, swap) is recorded in the audit log;
the supervisor records the automatic ones (failures, restarts) itself.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import fcntl
import hashlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import workbench
from workbench import _mlflow, audit, registry
from workbench import _supervisor as sup
from workbench.config import Settings
from workbench.errors import BackendUnavailable, Busy, Conflict, InvalidInput, NotFound, WorkbenchError
from workbench.records import to_dict

STARTUP_TIMEOUT_S = 180.0  # `mlflow models serve` needs ~7 s alone, far more on a loaded machine
DEFAULT_MAX_RESTARTS = 5
LOCK_WAIT_S = 5.0
PREDICT_TIMEOUT_S = 60.0
LIVE_STATES = sup.LIVE_STATES
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")
_SOCKET_PATH_MAX = 100  # sun_path holds 108 bytes on Linux
# A sample prediction downloads two small files; MLflow's progress bars would only add noise.
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")

Progress = Callable[[int | None, int | None, str], None]


@dataclass
class Deployment:
    """One deployment and where it stands.

    ``state`` is one of ``starting``, ``healthy``, ``unhealthy``,
    ``restarting``, ``stopped``, ``failed`` or ``dead`` (its supervisor
    vanished). ``version`` is the version that answers now; ``endpoint`` does
    not change when it does. ``job_id`` is set when :func:`deploy` returned
    before the deployment was healthy (``wait=False``).
    """

    name: str
    target: str
    model: str
    alias: str | None
    version: str | None
    model_ref: str
    endpoint: str | None
    port: int | None
    state: str
    restart_policy: str
    max_restarts: int = DEFAULT_MAX_RESTARTS
    restarts: int = 0
    last_error: str | None = None
    supervisor_pid: int | None = None
    backend_pid: int | None = None
    backend_port: int | None = None
    started: str | None = None
    updated: str | None = None
    log_path: str | None = None
    job_id: str | None = None

    @property
    def live(self) -> bool:
        return self.state in LIVE_STATES


@dataclass
class PredictionResult:
    """One prediction through a deployment's endpoint."""

    deployment: str
    version: str | None  # the version that answered
    endpoint: str | None
    request: Any
    response: Any
    status_code: int
    latency_ms: float


class DeploymentFailed(WorkbenchError):
    """A model server did not start or swap; ``log_tail`` holds the end of its output."""

    status = 502
    kind = "deployment_failed"

    def __init__(self, message: str, hint: str | None = None, log_tail: str = "") -> None:
        super().__init__(message, hint)
        self.log_tail = log_tail

    def to_dict(self) -> dict[str, str]:
        return {**super().to_dict(), "log_tail": self.log_tail}


# --------------------------------------------------------------------------- model references


@dataclass(frozen=True)
class ModelRef:
    """``NAME@ALIAS`` or ``NAME/VERSION``, as the user wrote it."""

    model: str
    alias: str | None = None
    version: str | None = None

    @property
    def uri(self) -> str:
        return f"models:/{self.model}@{self.alias}" if self.alias else f"models:/{self.model}/{self.version}"


def parse_model_ref(text: str) -> ModelRef:
    """Read ``NAME@ALIAS``, ``NAME/3``, ``NAME/v3`` or the same with a ``models:/`` prefix."""
    ref = str(text or "").strip().removeprefix("models:/")
    hint = "Write NAME@ALIAS (e.g. iris@champion) or NAME/VERSION (e.g. iris/3)."
    if "@" in ref:
        model, alias = ref.rsplit("@", 1)
        if model and re.fullmatch(r"[A-Za-z0-9_-]+", alias):
            return ModelRef(model, alias=alias)
    elif "/" in ref:
        model, version = ref.rsplit("/", 1)
        digits = version[1:] if version[:1] in ("v", "V") else version
        if model and digits.isdigit():
            return ModelRef(model, version=str(int(digits)))
    raise InvalidInput(f"Cannot read the model reference {text!r}", hint)


def resolve(settings: Settings, ref: ModelRef) -> str:
    """The concrete version ``ref`` names now; NotFound for an unknown model, alias or version.

    Reads the registry without importing MLflow when it is an MLflow server
    (see :func:`workbench.registry.version_status`): the command line starts
    the model server that much sooner.
    """
    version, status = registry.version_status(settings, ref.model, f"@{ref.alias}" if ref.alias else ref.version or "")
    if status not in ("READY", "ModelVersionStatus.READY"):
        raise Conflict(f"{ref.model} v{version} is {status}, not READY", "Wait until MLflow finished registering it.")
    return version


def parse_restart_policy(policy: str) -> tuple[str, int]:
    """``off``, ``on-failure`` or ``on-failure:N`` (at most N restarts in a row) -> (policy, N)."""
    text = str(policy or "").strip().lower()
    if text == "off":
        return "off", 0
    if text == "on-failure":
        return "on-failure", DEFAULT_MAX_RESTARTS
    if text.startswith("on-failure:") and text.split(":", 1)[1].isdigit():
        return "on-failure", int(text.split(":", 1)[1])
    raise InvalidInput(f"Unknown restart policy {policy!r}", "Use off, on-failure, or on-failure:N.")


def _check_name(name: str) -> str:
    if not _NAME.match(name or ""):
        raise InvalidInput(
            f"Invalid deployment name {name!r}",
            "Use up to 63 letters, digits, '.', '_' or '-', starting with a letter or digit.",
        )
    return name


def default_name(ref: ModelRef) -> str:
    """``iris-champion`` for ``iris@champion``, ``iris-v3`` for ``iris/3``."""
    base = re.sub(r"[^A-Za-z0-9_.-]+", "-", ref.model).strip("-.") or "model"
    return f"{base[:48]}-{ref.alias or 'v' + str(ref.version)}"


# --------------------------------------------------------------------------- files in the workspace


@dataclass(frozen=True)
class _Files:
    state: Path
    log: Path
    lock: Path
    socket: Path


def _folder(settings: Settings) -> Path:
    return settings.state_dir / "deployments"


def _files(settings: Settings, name: str) -> _Files:
    folder = _folder(settings)
    sock = folder / f"{name}.sock"
    if len(str(sock)) > _SOCKET_PATH_MAX:
        # too long for a unix socket address: a private folder under the temp dir instead
        digest = hashlib.sha256(str(sock).encode()).hexdigest()[:20]
        sock = Path(tempfile.gettempdir()) / f"workbench-{os.getuid()}" / f"{digest}.sock"
    return _Files(folder / f"{name}.json", folder / f"{name}.log", folder / f"{name}.lock", sock)


def _read_state(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        return {"state": sup.DEAD, "last_error": f"unreadable state file {path}"}


def _record(name: str, state: dict[str, Any]) -> Deployment:
    known = {f.name for f in dataclasses.fields(Deployment)}
    values = {k: v for k, v in state.items() if k in known}
    values.setdefault("name", name)
    for key in ("target", "model", "model_ref", "restart_policy"):
        values.setdefault(key, "")
    values.setdefault("alias", None)
    values.setdefault("version", None)
    values.setdefault("endpoint", None)
    values.setdefault("port", None)
    return Deployment(**values)


@contextlib.contextmanager
def _name_lock(settings: Settings, name: str) -> Iterator[None]:
    """One state-changing action per deployment name at a time, across processes."""
    files = _files(settings, name)
    files.lock.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(files.lock, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        deadline = time.monotonic() + LOCK_WAIT_S
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError as exc:
                if time.monotonic() > deadline:
                    raise Busy(
                        f"Another action on deployment {name!r} is in progress", "Try again when it has finished."
                    ) from exc
                time.sleep(0.05)
        yield
    finally:
        os.close(fd)


def _load(settings: Settings, name: str) -> Deployment | None:
    """The deployment's record, with a vanished supervisor marked dead (and its leftovers stopped)."""
    files = _files(settings, name)
    state = _read_state(files.state)
    if state is None:
        return None
    local_and_live = state.get("target", "local") == "local" and state.get("state") in LIVE_STATES
    if local_and_live and not sup.is_same_process(state.get("supervisor_pid"), state.get("supervisor_started")):
        state = _mark_dead(settings, name, files) or state
    return _record(name, state)


def _mark_dead(settings: Settings, name: str, files: _Files) -> dict[str, Any] | None:
    fresh = _read_state(files.state)  # it may have stopped cleanly since it was read
    if fresh is None or fresh.get("state") not in LIVE_STATES:
        return fresh
    _kill_leftovers(fresh)
    before = fresh.get("state")
    fresh.update(
        state=sup.DEAD,
        last_error=f"the supervisor (pid {fresh.get('supervisor_pid')}) is gone; the endpoint no longer answers",
        backend_pid=None,
        backend_port=None,
        updated=sup.now_iso(),
    )
    sup.write_json_atomic(files.state, fresh)
    audit.record(settings, "deploy.lost", name, outcome="failed", before=before, after=sup.DEAD)
    return fresh


def _kill_leftovers(state: dict[str, Any]) -> None:
    """Stop whatever processes a deployment's state file still names."""
    sup.kill_group(state.get("supervisor_pid"), state.get("supervisor_started"), grace=5)
    sup.kill_group(state.get("backend_pid"), state.get("backend_started"), grace=5)
    sup.kill_group(state.get("pending_pid"), state.get("pending_started"), grace=5)


# --------------------------------------------------------------------------- targets


class Target(ABC):
    """Where deployments run. ``local`` is built in; others come from MLflow plugins."""

    name: str

    @abstractmethod
    def start(
        self,
        settings: Settings,
        name: str,
        ref: ModelRef,
        version: str,
        *,
        port: int | None,
        restart_policy: str,
        wait: bool,
        timeout: float,
    ) -> Deployment:
        """Start serving ``version`` of ``ref`` under ``name`` (nothing may run under it yet)."""

    @abstractmethod
    def stop(self, settings: Settings, record: Deployment) -> Deployment:
        """Stop everything the deployment runs; the record stays, as ``stopped``."""

    @abstractmethod
    def swap(self, settings: Settings, record: Deployment, version: str) -> Deployment:
        """Serve ``version`` at the same endpoint without failing a request."""

    @abstractmethod
    def predict(self, settings: Settings, record: Deployment, payload: Any) -> PredictionResult:
        """Send one scoring request."""

    @abstractmethod
    def logs(self, settings: Settings, record: Deployment, lines: int) -> str:
        """The last ``lines`` lines of the deployment's log."""


class LocalTarget(Target):
    """``mlflow models serve`` processes on this machine, each behind its own supervisor."""

    name = "local"

    def start(
        self,
        settings: Settings,
        name: str,
        ref: ModelRef,
        version: str,
        *,
        port: int | None,
        restart_policy: str,
        wait: bool,
        timeout: float,
    ) -> Deployment:
        policy, max_restarts = parse_restart_policy(restart_policy)
        files = _files(settings, name)
        with _name_lock(settings, name):
            existing = _load(settings, name)
            if existing is not None and existing.live:
                raise Conflict(
                    f"Deployment {name!r} already runs ({existing.model_ref}, v{existing.version}, "
                    f"{existing.endpoint})",
                    "Stop it first (`workbench undeploy NAME`) or pick another --name.",
                )
            listener = _listen(port)
            try:
                supervisor = self._spawn(settings, name, ref, version, listener, policy, max_restarts, timeout)
            finally:
                listener.close()
            state = self._await_first_state(files, supervisor)
        record = _record(name, state)
        if wait:
            return self._await_healthy(settings, name, supervisor, timeout, _no_progress)

        def work(progress: Progress) -> Deployment:
            return self._await_healthy(settings, name, supervisor, timeout, progress)

        from workbench import jobs

        job = jobs.manager().submit("deploy", f"deployment:{name}", work, actor=audit.actor())
        record.job_id = job.id
        return record

    def _spawn(
        self,
        settings: Settings,
        name: str,
        ref: ModelRef,
        version: str,
        listener: socket.socket,
        policy: str,
        max_restarts: int,
        timeout: float,
    ) -> subprocess.Popen:
        files = _files(settings, name)
        files.state.parent.mkdir(parents=True, exist_ok=True)
        files.socket.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        files.state.unlink(missing_ok=True)  # an earlier stopped/failed/dead record of this name
        spec = sup.Spec(
            name=name,
            workspace=str(settings.workspace),
            model=ref.model,
            alias=ref.alias,
            version=version,
            model_ref=ref.uri,
            tracking_uri=settings.tracking_uri,
            registry_uri=settings.registry_uri,
            restart_policy=policy,
            max_restarts=max_restarts,
            listen_fd=listener.fileno(),
            port=listener.getsockname()[1],
            state_path=str(files.state),
            log_path=str(files.log),
            socket_path=str(files.socket),
            startup_timeout=timeout,
            actor=audit.actor(),
        )
        package_root = str(Path(workbench.__file__).resolve().parent.parent)
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [package_root, os.environ.get("PYTHONPATH")])))
        with files.log.open("ab") as log:
            proc = subprocess.Popen(
                [sys.executable, "-m", "workbench._supervisor", json.dumps(dataclasses.asdict(spec))],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                cwd=files.state.parent,
                pass_fds=(listener.fileno(),),
                start_new_session=True,  # outlive this process (a Jupyter server, a CLI call)
            )
        # reap it when it exits, so a finished supervisor never lingers as a zombie of this process
        threading.Thread(target=proc.wait, name=f"workbench-reap-{name}", daemon=True).start()
        return proc

    @staticmethod
    def _await_first_state(files: _Files, supervisor: subprocess.Popen) -> dict[str, Any]:
        """Wait until the new supervisor wrote its state file (so no reader takes it for dead)."""
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            state = _read_state(files.state)
            if state is not None and state.get("supervisor_pid") == supervisor.pid:
                return state
            if supervisor.poll() is not None:
                break
            time.sleep(0.02)
        sup.kill_group(supervisor.pid, sup.process_start_time(supervisor.pid), grace=2)
        tail = sup.log_tail(files.log)
        raise DeploymentFailed(
            "The deployment's supervisor process did not start", f"Last lines of {files.log}:\n{tail}", tail
        )

    def _await_healthy(
        self, settings: Settings, name: str, supervisor: subprocess.Popen, timeout: float, progress: Progress
    ) -> Deployment:
        """Wait until the deployment is healthy, or fail leaving nothing running; audited either way."""
        files = _files(settings, name)
        deadline = time.monotonic() + timeout + 30
        state: dict[str, Any] = {}
        try:
            while True:
                state = _read_state(files.state) or {}
                current = state.get("state")
                if current == sup.HEALTHY:
                    record = _record(name, state)
                    audit.record(
                        settings, "deploy", name, before=None, after=record, detail={"version": record.version}
                    )
                    return record
                if current == sup.STOPPED:
                    state["last_error"] = "it was stopped while it started"
                    break
                if current == sup.FAILED or supervisor.poll() is not None:
                    break
                if time.monotonic() > deadline:
                    state["last_error"] = f"not healthy after {timeout:g} s"
                    break
                progress(None, None, f"starting model server for {state.get('model')} v{state.get('version')}")
                time.sleep(0.1)
            self._clean_up_failed_start(files, supervisor)
            reason = state.get("last_error") or "the supervisor exited"
            tail = state.get("log_tail") or sup.log_tail(files.log)
            error = DeploymentFailed(
                f"Deployment {name!r} did not start: {_key_error(tail) or reason}",
                f"Nothing was left running. Last lines of {files.log}:\n{tail}",
                tail,
            )
        except BaseException:
            self._clean_up_failed_start(files, supervisor)
            raise
        audit.record(settings, "deploy", name, outcome="failed", after=state.get("state"), error=error)
        raise error

    @staticmethod
    def _clean_up_failed_start(files: _Files, supervisor: subprocess.Popen) -> None:
        """Make sure a start that failed (or was given up) leaves no process behind."""
        with contextlib.suppress(OSError, ValueError):
            if supervisor.poll() is None:
                sup.send_command(str(files.socket), {"cmd": "stop"}, timeout=2)
        with contextlib.suppress(subprocess.TimeoutExpired):
            supervisor.wait(timeout=sup.STOP_GRACE_S + 5)
        state = _read_state(files.state) or {}
        _kill_leftovers(state)
        if state and state.get("state") in LIVE_STATES:
            state.update(state=sup.FAILED, backend_pid=None, backend_port=None, updated=sup.now_iso())
            sup.write_json_atomic(files.state, state)

    def stop(self, settings: Settings, record: Deployment) -> Deployment:
        files = _files(settings, record.name)
        state = _read_state(files.state) or {}
        pid, started = state.get("supervisor_pid"), state.get("supervisor_started")
        if sup.is_same_process(pid, started):
            try:
                sup.send_command(str(files.socket), {"cmd": "stop"}, timeout=5)
            except (OSError, ValueError):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGTERM)
            deadline = time.monotonic() + sup.STOP_GRACE_S + 20
            while time.monotonic() < deadline and sup.is_same_process(pid, started):
                time.sleep(0.05)
        _kill_leftovers(state)
        state = _read_state(files.state) or state
        if state.get("state") != sup.STOPPED:
            state.update(state=sup.STOPPED, backend_pid=None, backend_port=None, updated=sup.now_iso())
            sup.write_json_atomic(files.state, state)
        return _record(record.name, state)

    def swap(self, settings: Settings, record: Deployment, version: str) -> Deployment:
        files = _files(settings, record.name)
        wait = STARTUP_TIMEOUT_S + sup.DRAIN_TIMEOUT_S + sup.STOP_GRACE_S + 30
        try:
            answer = sup.send_command(str(files.socket), {"cmd": "swap", "version": version}, timeout=wait)
        except (OSError, ValueError) as exc:
            raise BackendUnavailable(
                f"Deployment {record.name!r} did not take the command ({exc})",
                "`workbench deployments` shows its state; restart it if it is dead.",
            ) from exc
        if not answer.get("ok"):
            tail = answer.get("log_tail", "")
            raise DeploymentFailed(
                f"Deployment {record.name!r} could not switch to v{version}: {_key_error(tail) or answer.get('error')}",
                (f"It still serves v{record.version}. " if record.state == sup.HEALTHY else "")
                + f"Last lines of {files.log}:\n{tail}",
                tail,
            )
        return _record(record.name, answer["state"])

    def predict(self, settings: Settings, record: Deployment, payload: Any) -> PredictionResult:
        import requests

        if record.state != sup.HEALTHY or not record.endpoint:
            raise Conflict(
                f"Deployment {record.name!r} is {record.state}"
                + (f": {record.last_error}" if record.last_error else ""),
                "Restart it (`workbench redeploy NAME`) or wait until it is healthy.",
            )
        started = time.perf_counter()
        try:
            response = requests.post(f"{record.endpoint}/invocations", json=payload, timeout=PREDICT_TIMEOUT_S)
        except requests.RequestException as exc:
            raise BackendUnavailable(
                f"Deployment {record.name!r} did not answer at {record.endpoint} ({type(exc).__name__})",
                "`workbench deployments` shows its state.",
            ) from exc
        latency = (time.perf_counter() - started) * 1000
        try:
            body: Any = response.json()
        except ValueError:
            body = response.text
        if response.status_code >= 400:
            detail = body.get("message") or body.get("error") if isinstance(body, dict) else str(body)
            raise InvalidInput(
                f"The model refused the request (HTTP {response.status_code}): {str(detail)[:500]}",
                "Check the payload against the model's signature; a payload of None sends its input example.",
            )
        return PredictionResult(
            deployment=record.name,
            version=response.headers.get("X-Workbench-Model-Version"),
            endpoint=record.endpoint,
            request=payload,
            response=body,
            status_code=response.status_code,
            latency_ms=round(latency, 2),
        )

    def logs(self, settings: Settings, record: Deployment, lines: int) -> str:
        return sup.log_tail(_files(settings, record.name).log, lines=lines)


class PluginTarget(Target):
    """A target served by an installed MLflow deployments plugin (KServe, SageMaker, ...).

    The plugin resolves ``models:/NAME/VERSION`` through MLflow's configured
    registry (``MLFLOW_TRACKING_URI``), as the plugins document.
    """

    def __init__(self, target_uri: str) -> None:
        from mlflow.deployments import get_deploy_client
        from mlflow.exceptions import MlflowException

        self.name = target_uri
        try:
            self.client = get_deploy_client(target_uri)
        except MlflowException as exc:
            scheme = target_uri.split(":", 1)[0]
            raise NotFound(
                f"No MLflow deployments plugin handles the target {target_uri!r}",
                f"Install the plugin for {scheme} (see https://mlflow.org/docs/latest/plugins.html), "
                "or use --target local.",
            ) from exc
        if self.client is None:
            raise InvalidInput(f"Unknown deployment target {target_uri!r}", "Use local or a plugin's target URI.")

    def _call(self, what: str, fn: Callable[[], Any]) -> Any:
        from mlflow.exceptions import MlflowException

        try:
            return fn()
        except MlflowException as exc:
            raise WorkbenchError(f"{self.name}: {what} failed: {exc.message}", "See the target's own logs.") from exc

    def _save(self, settings: Settings, record: Deployment) -> Deployment:
        files = _files(settings, record.name)
        files.state.parent.mkdir(parents=True, exist_ok=True)
        record.updated = sup.now_iso()
        sup.write_json_atomic(files.state, to_dict(record))
        return record

    def start(
        self,
        settings: Settings,
        name: str,
        ref: ModelRef,
        version: str,
        *,
        port: int | None,
        restart_policy: str,
        wait: bool,
        timeout: float,
    ) -> Deployment:
        if port is not None:
            raise InvalidInput("--port applies to the local target only", "The plugin target chooses its endpoint.")
        with _name_lock(settings, name):
            existing = _load(settings, name)
            if existing is not None and existing.live:
                raise Conflict(f"Deployment {name!r} already exists", "Stop it first or pick another --name.")
            uri = f"models:/{ref.model}/{version}"
            info = self._call("create_deployment", lambda: self.client.create_deployment(name, uri)) or {}
            record = Deployment(
                name=name,
                target=self.name,
                model=ref.model,
                alias=ref.alias,
                version=version,
                model_ref=ref.uri,
                endpoint=_endpoint_of(info),
                port=None,
                state=sup.HEALTHY,
                restart_policy="managed by the target",
                started=sup.now_iso(),
            )
            return self._save(settings, record)

    def stop(self, settings: Settings, record: Deployment) -> Deployment:
        self._call("delete_deployment", lambda: self.client.delete_deployment(record.name))
        record.state = sup.STOPPED
        return self._save(settings, record)

    def swap(self, settings: Settings, record: Deployment, version: str) -> Deployment:
        uri = f"models:/{record.model}/{version}"
        self._call("update_deployment", lambda: self.client.update_deployment(record.name, model_uri=uri))
        record.version = version
        return self._save(settings, record)

    def predict(self, settings: Settings, record: Deployment, payload: Any) -> PredictionResult:
        started = time.perf_counter()
        answer = self._call("predict", lambda: self.client.predict(deployment_name=record.name, inputs=payload))
        body = answer.to_json() if hasattr(answer, "to_json") else answer
        return PredictionResult(
            deployment=record.name,
            version=record.version,
            endpoint=record.endpoint,
            request=payload,
            response=json.loads(body) if isinstance(body, str) else body,
            status_code=200,
            latency_ms=round((time.perf_counter() - started) * 1000, 2),
        )

    def logs(self, settings: Settings, record: Deployment, lines: int) -> str:
        raise InvalidInput(f"Logs of {self.name} deployments are kept by the target", "Use the target's own tools.")


def _endpoint_of(info: Any) -> str | None:
    if isinstance(info, dict):
        for key in ("endpoint", "url", "endpoint_url", "uri"):
            if info.get(key):
                return str(info[key])
    return None


def target_for(target: str) -> Target:
    """The :class:`Target` for a target URI (``local`` or a plugin's)."""
    text = str(target or "").strip()
    if not text:
        raise InvalidInput("A deployment target is required", "Use local, or a plugin's target URI.")
    return LocalTarget() if text == "local" else PluginTarget(text)


# --------------------------------------------------------------------------- public API


def deploy(
    settings: Settings,
    model_ref: str,
    *,
    name: str | None = None,
    port: int | None = None,
    target: str = "local",
    restart_policy: str = "on-failure",
    wait: bool = True,
    timeout: float = STARTUP_TIMEOUT_S,
) -> Deployment:
    """Serve ``model_ref`` (``NAME@ALIAS``, ``NAME/3`` or ``models:/...``) as a REST endpoint.

    Checks everything it can before starting anything: the reference, the
    model and version (NotFound), the name (Conflict if it runs) and the port
    (Conflict if taken). With ``wait`` it returns once the endpoint is
    healthy, or raises :class:`DeploymentFailed` with the model server's log
    tail and nothing left running. Without ``wait`` it returns the
    ``starting`` record at once; ``job_id`` names the job that follows the
    start (see :mod:`workbench.jobs`).
    """
    ref = parse_model_ref(model_ref)
    deployment_name = _check_name(name or default_name(ref))
    parse_restart_policy(restart_policy)
    if port is not None and not 0 < int(port) < 65536:
        raise InvalidInput(f"Port {port} is out of range", "Use a port between 1024 and 65535, or none.")
    try:
        chosen = target_for(target)
        version = resolve(settings, ref)
        return chosen.start(
            settings,
            deployment_name,
            ref,
            version,
            port=port,
            restart_policy=restart_policy,
            wait=wait,
            timeout=timeout,
        )
    except (Conflict, Busy, InvalidInput, NotFound) as exc:
        audit.record(settings, "deploy", deployment_name, outcome="refused", detail={"model": ref.uri}, error=exc)
        raise


def list_deployments(settings: Settings) -> list[Deployment]:
    """Every deployment recorded in the workspace, by name; vanished ones are marked dead."""
    folder = _folder(settings)
    if not folder.is_dir():
        return []
    records = (_load(settings, path.stem) for path in sorted(folder.glob("*.json")))
    return [r for r in records if r is not None]


def get(settings: Settings, name: str) -> Deployment:
    """One deployment's record (NotFound if none has that name)."""
    record = _load(settings, _check_name(name))
    if record is None:
        raise NotFound(f"No deployment named {name!r}", "`workbench deployments` lists them.")
    return record


def stop(settings: Settings, name: str, *, forget: bool = False) -> Deployment:
    """Stop a deployment and everything it runs; ``forget`` also deletes its record and log."""
    record = get(settings, name)
    with _name_lock(settings, name):
        chosen = target_for(record.target)
        try:
            # a local record is always brought to "stopped", making sure nothing it names still runs
            stopped = chosen.stop(settings, record) if record.live or isinstance(chosen, LocalTarget) else record
        except WorkbenchError as exc:
            audit.record(settings, "deploy.stop", name, outcome="failed", before=record.state, error=exc)
            raise
        audit.record(settings, "deploy.stop", name, before=record, after=stopped, detail={"forget": forget})
        if forget:
            files = _files(settings, name)
            for path in (files.state, files.log, files.socket):
                path.unlink(missing_ok=True)
    return stopped


def restart(settings: Settings, name: str, *, wait: bool = True) -> Deployment:
    """Serve the deployment again, re-resolving its alias.

    A live local deployment swaps blue/green (no request fails); a stopped,
    failed or dead one starts again on the same port.
    """
    record = get(settings, name)
    ref = parse_model_ref(record.model_ref)
    version = resolve(settings, ref)
    chosen = target_for(record.target)
    try:
        if record.live:
            after = chosen.swap(settings, record, version)
        else:
            after = chosen.start(
                settings,
                name,
                ref,
                version,
                port=record.port,
                restart_policy=_policy_text(record),
                wait=wait,
                timeout=STARTUP_TIMEOUT_S,
            )
    except WorkbenchError as exc:
        audit.record(settings, "deploy.restart", name, outcome="failed", before=record, error=exc)
        raise
    audit.record(settings, "deploy.restart", name, before=record, after=after)
    return after


def _policy_text(record: Deployment) -> str:
    if record.restart_policy == "on-failure":
        return f"on-failure:{record.max_restarts}"
    return record.restart_policy or "on-failure"


def refresh_alias(settings: Settings, model: str, alias: str) -> list[Deployment]:
    """Bring every live deployment of ``model@alias`` to the version the alias names now.

    Called after an alias moved (promote, rollback). Local deployments swap
    blue/green side by side, so no request fails. Returns the deployments of
    that alias after the refresh; raises :class:`DeploymentFailed` naming
    those that could not switch (they keep serving their old version).
    """
    serving = [d for d in list_deployments(settings) if d.model == model and d.alias == alias and d.live]
    if not serving:
        return []
    version = resolve(settings, ModelRef(model, alias=alias))
    results: dict[str, Deployment] = {d.name: d for d in serving}
    errors: dict[str, WorkbenchError] = {}

    def refresh(record: Deployment) -> None:
        try:
            results[record.name] = target_for(record.target).swap(settings, record, version)
        except WorkbenchError as exc:
            errors[record.name] = exc
            audit.record(
                settings, "deploy.swap", record.name, outcome="failed", before=record.version, after=version, error=exc
            )
            return
        audit.record(
            settings,
            "deploy.swap",
            record.name,
            before=record.version,
            after=version,
            detail={"model": model, "alias": alias},
        )

    threads = [threading.Thread(target=refresh, args=(d,)) for d in serving if d.version != version]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        message = "; ".join(f"{n}: {e.message}" for n, e in sorted(errors.items()))
        tails = "\n".join(getattr(e, "log_tail", "") for e in errors.values())
        raise DeploymentFailed(
            f"@{alias} of {model} moved to v{version}, but not every deployment followed: {message}",
            "Those deployments still serve their previous version; `workbench redeploy NAME` tries again.",
            tails,
        )
    return [results[d.name] for d in serving]


def logs(settings: Settings, name: str, lines: int = 100) -> str:
    """The end of a deployment's log: its model servers' output and the supervisor's events."""
    record = get(settings, name)
    return target_for(record.target).logs(settings, record, max(1, int(lines)))


def predict(settings: Settings, name: str, payload: dict[str, Any] | None = None) -> PredictionResult:
    """Score ``payload`` through the deployment's endpoint.

    With no payload, a sample is built for the version that runs: its saved
    serving input example, else one row of neutral values from its signature.
    """
    record = get(settings, name)
    if payload is None:
        if not record.version:
            raise Conflict(f"Deployment {name!r} runs no version right now", "Restart it first.")
        payload = sample_payload(settings, record.model, record.version)
    return target_for(record.target).predict(settings, record, payload)


def sample_payload(settings: Settings, model: str, version: str) -> dict[str, Any]:
    """A request body for ``/invocations`` from the version's input example, else its signature."""
    from mlflow.artifacts import download_artifacts
    from mlflow.models import Model

    client = _mlflow.client(settings)
    what = f"reading {model} v{version}"
    with tempfile.TemporaryDirectory() as tmp, _mlflow.mlflow_errors(settings.registry_uri, what):
        # the artifact location itself, so no download depends on MLflow's process-wide registry URI
        root = client.get_model_version_download_uri(model, version).rstrip("/")

        def fetch(path: str) -> str:
            return download_artifacts(artifact_uri=f"{root}/{path}", dst_path=tmp, tracking_uri=settings.tracking_uri)

        meta = Model.load(fetch("MLmodel"))
        serving_file = (meta.saved_input_example_info or {}).get("serving_input_path")
        if serving_file:
            return json.loads(Path(fetch(serving_file)).read_text())
    if meta.signature is not None and meta.signature.inputs is not None:
        return _payload_from_schema(meta.signature.inputs)
    raise InvalidInput(
        f"{model} v{version} has neither an input example nor a signature to build a sample from",
        "Pass a payload (e.g. --json-input FILE with a dataframe_split body).",
    )


_NEUTRAL = {"boolean": False, "integer": 0, "long": 0, "float": 0.0, "double": 0.0, "string": "", "binary": ""}


def _payload_from_schema(schema: Any) -> dict[str, Any]:
    """One row (or one tensor of ones along free dimensions) of neutral values for ``schema``."""
    if schema.is_tensor_spec():
        import numpy as np

        def zeros(spec: Any) -> Any:
            shape = [1 if d == -1 else d for d in spec.shape]
            return np.zeros(shape, dtype=spec.type).tolist()

        if schema.has_input_names():
            return {"inputs": {spec.name: zeros(spec) for spec in schema.inputs}}
        return {"inputs": zeros(schema.inputs[0])}
    row = [_NEUTRAL.get(getattr(spec.type, "name", str(spec.type))) for spec in schema.inputs]
    split: dict[str, Any] = {"data": [row]}
    if schema.has_input_names():
        split["columns"] = schema.input_names()
    return {"dataframe_split": split}


def _key_error(tail: str) -> str | None:
    """The line of a log tail that says what went wrong (``ModuleNotFoundError: ...``)."""
    found = [line.strip() for line in tail.splitlines() if re.match(r"^\s*[\w.]*(Error|Exception)\b.*: ", line)]
    # `mlflow models serve` ends with a generic "Exception: Command ... returned non zero" line
    specific = [line for line in found if not line.startswith("Exception: Command")]
    return (specific or found or [None])[-1]


def _listen(port: int | None) -> socket.socket:
    """Bind and listen on 127.0.0.1:``port`` (a free one if None); Conflict if it is taken."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.bind(("127.0.0.1", int(port or 0)))
        sock.listen(128)
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise Conflict(
                f"Port {port} on 127.0.0.1 is already in use",
                "Pick another --port, or leave it out to use a free one.",
            ) from exc
        if exc.errno == errno.EACCES:
            raise InvalidInput(f"Not allowed to listen on port {port}", "Use a port above 1023.") from exc
        raise
    sock.set_inheritable(True)
    return sock


def _no_progress(done: int | None, total: int | None, message: str = "") -> None:
    """Progress sink for a deploy that runs in the caller's thread."""
