"""The process that runs one local deployment.

:func:`workbench.deploy.deploy` starts ``python -m workbench._supervisor SPEC``
in a session of its own, so it outlives the Jupyter server, dashboard or CLI
that started it. The supervisor

- serves the deployment's stable endpoint with :mod:`workbench._proxy` on the
  listening socket its parent bound and handed over;
- starts ``mlflow models serve --env-manager local`` for a concrete model
  version on a free loopback port and waits for ``/ping``;
- watches that model server (process exit checked every 0.5 s; ``/ping``
  every 2 s from a thread of its own, so a slow answer never delays the
  exit check; no answer for 15 s counts as a failure) and applies the restart policy: ``off``, or ``on-failure`` with
  exponential backoff and a maximum number of consecutive attempts;
- swaps versions blue/green on request: start the new server, wait until it
  is healthy, switch the proxy, let requests in flight on the old server
  finish, then stop the old one;
- takes commands (``status``, ``swap``, ``stop``) as JSON lines on a unix
  socket that only its user can open (mode 0600);
- writes its state atomically to ``<name>.json`` and the model servers'
  output plus its own events to ``<name>.log``, both in
  ``<workspace>/.workbench/deployments``.

All model server lifecycle work happens in the main thread (the control
socket thread only queues commands), which also keeps Linux's
parent-death signal reliable: it fires when the *thread* that started a
child ends. Standard library only, plus Workbench's audit log.
"""

from __future__ import annotations

import contextlib
import ctypes
import datetime as _dt
import json
import os
import queue
import signal
import socket
import socketserver
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from workbench import audit
from workbench._proxy import Backend, ProxyServer, Router
from workbench.config import load_settings

# Deployment states, as written to the state file.
STARTING = "starting"  # the first model server is starting
HEALTHY = "healthy"  # the endpoint forwards to a model server that answers /ping
UNHEALTHY = "unhealthy"  # the model server died or stopped answering; no (more) restarts
RESTARTING = "restarting"  # the model server failed; the restart policy is bringing it back
STOPPED = "stopped"  # stopped on request; nothing runs
FAILED = "failed"  # never became healthy; nothing runs
DEAD = "dead"  # the supervisor vanished (killed, machine rebooted); found by a reader
LIVE_STATES = frozenset({STARTING, HEALTHY, UNHEALTHY, RESTARTING})

POLL_S = 0.5
PING_EVERY_S = 2.0
HANG_AFTER_S = 15.0  # a live model server that answered no /ping for this long has hung
DRAIN_TIMEOUT_S = 60.0
STOP_GRACE_S = 10.0
BACKOFF_BASE_S = 1.0
BACKOFF_MAX_S = 30.0
STABLE_AFTER_S = 30.0  # healthy this long after a restart: the consecutive-failure count starts over
LOG_TAIL_LINES = 40


@dataclass
class Spec:
    """What to run; written by :mod:`workbench.deploy`, passed as JSON on the command line."""

    name: str
    workspace: str
    model: str
    alias: str | None
    version: str
    model_ref: str
    tracking_uri: str
    registry_uri: str
    restart_policy: str
    max_restarts: int
    listen_fd: int
    port: int
    state_path: str
    log_path: str
    socket_path: str
    startup_timeout: float
    actor: str


# --------------------------------------------------------------------------- helpers shared with deploy.py


def now_iso() -> str:
    return _dt.datetime.now(_dt.UTC).isoformat(timespec="milliseconds")


def write_json_atomic(path: Path, data: dict[str, Any]) -> None:
    """Replace ``path`` with ``data`` so a reader never sees half a file."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True))
    os.replace(tmp, path)


def process_start_time(pid: int) -> float | None:
    """When ``pid`` started (seconds since the epoch), or None if no such live process."""
    import psutil

    try:
        proc = psutil.Process(pid)
        if proc.status() == psutil.STATUS_ZOMBIE:
            return None
        return proc.create_time()
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return None


def is_same_process(pid: int | None, started: float | None) -> bool:
    """True if ``pid`` still runs and is the process that started at ``started`` (not a reused pid)."""
    if not pid:
        return False
    actual = process_start_time(pid)
    return actual is not None and (started is None or abs(actual - started) < 1.0)


def _group_members(pgid: int, started: float) -> list[Any]:
    """Live processes of process group ``pgid`` that started no earlier than its leader did."""
    import psutil

    members = []
    for proc in psutil.process_iter(["create_time", "status"]):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            if (
                os.getpgid(proc.pid) == pgid
                and proc.info["create_time"] >= started - 1.0
                and proc.info["status"] != psutil.STATUS_ZOMBIE
            ):
                members.append(proc)
    return members


def kill_group(pgid: int | None, started: float | None, grace: float = STOP_GRACE_S) -> None:
    """Stop every process of the group led by ``pgid`` since ``started``: SIGTERM, SIGKILL after ``grace`` s.

    Works after the leader itself has exited: the group's other members (the
    ``uvicorn`` under ``mlflow models serve``) are found and stopped too.
    """
    import psutil

    if not pgid or started is None:
        return
    members = _group_members(pgid, started)
    for proc in members:
        with contextlib.suppress(psutil.Error):
            proc.terminate()
    _, alive = psutil.wait_procs(members, timeout=grace)
    for proc in alive:
        with contextlib.suppress(psutil.Error):
            proc.kill()
    psutil.wait_procs(alive, timeout=5)


def log_tail(path: Path, lines: int = LOG_TAIL_LINES, start: int = 0) -> str:
    """The last ``lines`` lines of a log file, read from byte ``start`` on."""
    try:
        with path.open("rb") as handle:
            handle.seek(0, os.SEEK_END)
            size = handle.tell()
            handle.seek(max(start, size - 256 * 1024))
            data = handle.read()
    except FileNotFoundError:
        return ""
    return "\n".join(data.decode(errors="replace").splitlines()[-lines:])


def send_command(socket_path: str, command: dict[str, Any], timeout: float) -> dict[str, Any]:
    """Send one command to a supervisor and return its answer (OSError if none answers)."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        sock.connect(socket_path)
        sock.sendall(json.dumps(command).encode() + b"\n")
        data = b""
        while not data.endswith(b"\n"):
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    if not data:
        raise ConnectionError("the supervisor closed the connection without an answer")
    return json.loads(data)


# --------------------------------------------------------------------------- model servers


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _die_with_parent() -> None:
    """In the child before exec: get SIGTERM when the supervisor dies, even by SIGKILL."""
    _LIBC.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


_LIBC = ctypes.CDLL(None) if sys.platform.startswith("linux") else None


@dataclass(eq=False)
class ModelServer:
    """One ``mlflow models serve`` process and the proxy's view of it."""

    backend: Backend
    proc: subprocess.Popen
    started: float  # process start time, to recognise the pid later
    log_offset: int  # where its output begins in the log
    last_ok: float = 0.0  # monotonic time of its last good /ping
    retired: threading.Event = field(default_factory=threading.Event)

    def watch(self) -> None:
        """Ping it every few seconds until it is retired (runs in a thread of its own)."""
        url = f"http://127.0.0.1:{self.backend.port}/ping"
        while not self.retired.wait(PING_EVERY_S):
            if _ping(url, timeout=PING_EVERY_S):
                self.last_ok = time.monotonic()

    @property
    def pid(self) -> int:
        return self.proc.pid


class Supervisor:
    """Runs the endpoint and the model servers of one deployment until told to stop."""

    def __init__(self, spec: Spec) -> None:
        self.spec = spec
        self.state_path = Path(spec.state_path)
        self.log_path = Path(spec.log_path)
        self.settings = load_settings(spec.workspace, tracking_uri=spec.tracking_uri, registry_uri=spec.registry_uri)
        self.router = Router()
        self.server: ModelServer | None = None
        self.commands: queue.Queue[tuple[dict[str, Any], queue.Queue[dict[str, Any]]]] = queue.Queue()
        self.stop_requested = threading.Event()
        self.failures = 0  # consecutive failures, for the restart policy
        self.next_restart_at: float | None = None
        self.healthy_since: float | None = None
        self._lock = threading.Lock()
        self._log = self.log_path.open("ab", buffering=0)
        self.state: dict[str, Any] = {
            **{k: v for k, v in asdict(spec).items() if k not in ("listen_fd", "max_restarts")},
            "target": "local",
            "max_restarts": spec.max_restarts,
            "endpoint": f"http://127.0.0.1:{spec.port}",
            "state": STARTING,
            "restarts": 0,
            "last_error": None,
            "supervisor_pid": os.getpid(),
            "supervisor_started": process_start_time(os.getpid()),
            "backend_pid": None,
            "backend_started": None,
            "backend_port": None,
            "started": now_iso(),
            "updated": now_iso(),
        }

    # ------------------------------------------------------------------ state

    def event(self, message: str) -> None:
        """One line of the supervisor's own story in the deployment log."""
        self._log.write(f"[workbench {now_iso()}] {message}\n".encode())

    def update(self, **changes: Any) -> None:
        with self._lock:
            self.state.update(changes, updated=now_iso())
            write_json_atomic(self.state_path, self.state)

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return dict(self.state)

    def _audit(self, action: str, outcome: str, **kwargs: Any) -> None:
        audit.record(self.settings, action, self.spec.name, outcome=outcome, who="workbench-supervisor", **kwargs)

    # ------------------------------------------------------------- processes

    def start_server(self, version: str) -> ModelServer:
        port = _free_port()
        env = dict(
            os.environ,
            MLFLOW_TRACKING_URI=self.spec.tracking_uri,
            MLFLOW_REGISTRY_URI=self.spec.registry_uri,
            MLFLOW_DISABLE_TELEMETRY="true",
            # lets anyone find the processes of a deployment (tests sweep for leftovers with it)
            WORKBENCH_DEPLOYMENT=self.spec.name,
            WORKBENCH_DEPLOYMENT_STATE=str(self.state_path),
            # one log line per request would grow the log without bound (uvicorn reads UVICORN_* options)
            UVICORN_ACCESS_LOG="false",
            # `mlflow models serve` runs `uvicorn` from PATH: use this environment's.
            PATH=str(Path(sys.executable).parent) + os.pathsep + os.environ.get("PATH", ""),
        )
        command = [sys.executable, "-m", "mlflow", "models", "serve", "-m", f"models:/{self.spec.model}/{version}"]
        command += ["--env-manager", "local", "-h", "127.0.0.1", "-p", str(port), "-w", "1"]
        offset = self.log_path.stat().st_size
        self.event(f"starting model server for {self.spec.model} v{version} on port {port}")
        proc = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
            preexec_fn=_die_with_parent if _LIBC is not None else None,
        )
        started = process_start_time(proc.pid) or time.time()
        # recorded at once, so a reader can clean up after a supervisor that dies while this one starts
        self.update(pending_pid=proc.pid, pending_started=started)
        return ModelServer(Backend(port=port, version=version), proc, started, offset)

    def wait_healthy(self, server: ModelServer) -> str | None:
        """Wait until ``server`` answers /ping; returns None, or why it never did."""
        deadline = time.monotonic() + self.spec.startup_timeout
        url = f"http://127.0.0.1:{server.backend.port}/ping"
        while time.monotonic() < deadline:
            if self.stop_requested.is_set():
                return "the deployment was stopped while the model server started"
            code = server.proc.poll()
            if code is not None:
                return f"the model server exited with code {code} before it answered /ping"
            if _ping(url, timeout=1.0):
                return None
            time.sleep(0.1)
        return f"the model server did not answer /ping within {self.spec.startup_timeout:g} s"

    def stop_server(self, server: ModelServer) -> None:
        server.retired.set()
        self.event(f"stopping model server v{server.backend.version} (pid {server.pid})")
        kill_group(server.pid, server.started)
        with contextlib.suppress(subprocess.TimeoutExpired):
            server.proc.wait(timeout=5)  # reap it
        if self.state.get("pending_pid") == server.pid:
            self.update(pending_pid=None, pending_started=None)

    def failure_report(self, server: ModelServer, reason: str) -> dict[str, Any]:
        return {"error": reason, "log_tail": log_tail(self.log_path, start=server.log_offset)}

    def go_live(self, server: ModelServer) -> ModelServer | None:
        """Switch traffic to ``server``; returns the server it replaced."""
        old = self.server
        self.router.switch(server.backend)
        self.server = server
        self.healthy_since = time.monotonic()
        server.last_ok = time.monotonic()
        threading.Thread(target=server.watch, name=f"ping-v{server.backend.version}", daemon=True).start()
        self.event(f"traffic now goes to v{server.backend.version} (port {server.backend.port})")
        self.update(
            state=HEALTHY,
            version=server.backend.version,
            backend_pid=server.pid,
            backend_started=server.started,
            backend_port=server.backend.port,
            pending_pid=None,
            pending_started=None,
        )
        return old

    def retire(self, old: ModelServer) -> None:
        """Let requests in flight on ``old`` finish, then stop it."""
        if not self.router.drain(old.backend, DRAIN_TIMEOUT_S):
            self.event(f"requests still in flight on v{old.backend.version} after {DRAIN_TIMEOUT_S:g} s")
        self.stop_server(old)

    # --------------------------------------------------------------- actions

    def swap(self, version: str) -> tuple[dict[str, Any], ModelServer | None]:
        """Blue/green: serve ``version`` without failing a request; the old server keeps serving on failure.

        Returns the answer for the caller and the replaced server, which the
        caller retires (drain, then stop) after answering.
        """
        server = self.start_server(version)
        problem = self.wait_healthy(server)
        if problem is not None:
            report = self.failure_report(server, f"v{version}: {problem}")
            self.stop_server(server)
            self.event(f"swap to v{version} failed: {problem}")
            # with no server left to fall back on (a swap asked for after a failure) the deployment is unhealthy
            self.update(last_error=report["error"], **({} if self.server else {"state": UNHEALTHY}))
            return {"ok": False, **report}, None
        old = self.go_live(server)
        self.failures, self.next_restart_at = 0, None
        self.update(last_error=None)
        return {"ok": True, "state": self.snapshot()}, old

    def check(self) -> None:
        """Notice a dead or silent model server, and apply the restart policy."""
        if self.next_restart_at is not None:
            if time.monotonic() >= self.next_restart_at:
                self.restart_after_failure()
            return
        server = self.server
        if server is None:
            return
        if self.healthy_since and time.monotonic() - self.healthy_since > STABLE_AFTER_S:
            self.failures = 0
        code = server.proc.poll()
        if code is not None:
            self.on_failure(server, f"the model server (pid {server.pid}) exited with code {code}")
        elif time.monotonic() - server.last_ok > HANG_AFTER_S:
            self.on_failure(server, f"the model server answered no /ping for {HANG_AFTER_S:g} s")

    def on_failure(self, server: ModelServer, reason: str) -> None:
        """Report a failed model server at once, clean up after it, and schedule a restart if allowed."""
        self.router.switch(None)
        self.server = None
        self.failures += 1
        self.event(f"FAILURE: {reason}")
        report = self.failure_report(server, reason)
        policy_on = self.spec.restart_policy == "on-failure"
        if policy_on and self.failures <= self.spec.max_restarts:
            delay = min(BACKOFF_BASE_S * 2 ** (self.failures - 1), BACKOFF_MAX_S)
            self.next_restart_at = time.monotonic() + delay
            self.update(state=RESTARTING, last_error=reason, backend_pid=None, backend_port=None)
            self.event(f"restart {self.failures}/{self.spec.max_restarts} in {delay:g} s")
        else:
            if policy_on:
                reason = f"{reason}; gave up after {self.spec.max_restarts} restart(s)"
            self.update(state=UNHEALTHY, last_error=reason, backend_pid=None, backend_port=None)
        self.stop_server(server)
        self._audit("deploy.failure", "failed", before={"version": server.backend.version}, detail=report)

    def restart_after_failure(self) -> None:
        self.next_restart_at = None
        version = self.state["version"]
        server = self.start_server(version)
        problem = self.wait_healthy(server)
        if problem is None:
            self.go_live(server)
            restarts = self.state["restarts"] + 1
            self.update(restarts=restarts)
            self._audit("deploy.auto-restart", "ok", after={"version": version}, detail={"restarts": restarts})
            return
        self.on_failure(server, f"restart failed: {problem}")

    # --------------------------------------------------------------- control

    def handle(self, command: dict[str, Any], reply: queue.Queue[dict[str, Any]]) -> None:
        """Run one queued command (a swap) in the main thread and answer it."""
        self.next_restart_at = None
        answer, old = self.swap(str(command["version"]))
        reply.put(answer)
        if old is not None:
            self.retire(old)

    def serve_forever(self, listener: socket.socket) -> int:
        """Run until stopped; returns the exit status (1: the first model server never became healthy).

        The endpoint and the control socket open first: until the first model
        server is healthy the endpoint answers 503, and a stop can already
        interrupt the start.
        """
        self.update()
        proxy = ProxyServer(listener, self.router, self.spec.name)
        threading.Thread(target=proxy.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True).start()
        control = _ControlServer(self.spec.socket_path, self)
        threading.Thread(target=control.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True).start()
        try:
            first = self.start_server(self.spec.version)
            problem = self.wait_healthy(first)
            if problem is not None:
                report = self.failure_report(first, f"{self.spec.model} v{self.spec.version}: {problem}")
                self.stop_server(first)
                if self.stop_requested.is_set():
                    return 0
                self.update(state=FAILED, last_error=report["error"], log_tail=report["log_tail"])
                return 1
            self.go_live(first)
            while not self.stop_requested.is_set():
                try:
                    command, reply = self.commands.get(timeout=POLL_S)
                except queue.Empty:
                    self.check()
                    continue
                self.handle(command, reply)
                self.check()
            return 0
        finally:
            control.shutdown()
            control.server_close()
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.spec.socket_path)
            while not self.commands.empty():  # commands that came in with the stop
                self.commands.get_nowait()[1].put({"ok": False, "error": "the deployment was stopped"})
            proxy.shutdown()
            proxy.server_close()
            if self.server is not None:
                self.stop_server(self.server)
            if self.state["state"] in LIVE_STATES:
                self.update(state=STOPPED, backend_pid=None, backend_port=None)
            self.event(f"supervisor exits ({self.state['state']})")


class _ControlServer(socketserver.ThreadingUnixStreamServer):
    daemon_threads = True

    def __init__(self, path: str, supervisor: Supervisor) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
        self.supervisor = supervisor
        super().__init__(path, _ControlHandler)
        os.chmod(path, 0o600)


class _ControlHandler(socketserver.StreamRequestHandler):
    server: _ControlServer

    def handle(self) -> None:
        supervisor = self.server.supervisor
        try:
            command = json.loads(self.rfile.readline() or b"{}")
        except json.JSONDecodeError:
            command = {}
        action = command.get("cmd")
        if action == "status":
            answer = {"ok": True, "state": supervisor.snapshot()}
        elif action == "stop":
            supervisor.stop_requested.set()
            answer = {"ok": True, "stopping": True}
        elif action == "swap" and command.get("version"):
            reply: queue.Queue[dict[str, Any]] = queue.Queue()
            supervisor.commands.put((command, reply))
            answer = reply.get()
        else:
            answer = {"ok": False, "error": f"unknown command {action!r}"}
        self.wfile.write(json.dumps(answer).encode() + b"\n")


def _ping(url: str, timeout: float) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError, ValueError):
        return False


def main(argv: list[str]) -> int:
    spec = Spec(**json.loads(argv[0]))
    os.umask(0o077)
    listener = socket.socket(fileno=spec.listen_fd)
    supervisor = Supervisor(spec)
    signal.signal(signal.SIGTERM, lambda *_: supervisor.stop_requested.set())
    signal.signal(signal.SIGINT, lambda *_: supervisor.stop_requested.set())
    return supervisor.serve_forever(listener)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
