"""Real backend processes for tests and benchmarks: ``mlflow server`` and ``jupyter server`` / ``lab`` on loopback.

Started with the lean settings from BUILD-NOTES (one worker, no job runner)
and stopped by PID (its whole process group) when the test is done.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import requests


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_url(
    url: str,
    proc: subprocess.Popen,
    log: Path,
    *,
    headers: dict[str, str] | None = None,
    timeout: float = 90.0,
    what: str = "server",
) -> None:
    """Wait until ``url`` answers 200; RuntimeError (with the log's tail) if ``proc`` exits or time runs out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited: {log.read_text(errors='replace')[-2000:]}")
        with contextlib.suppress(requests.RequestException):
            if requests.get(url, headers=headers, timeout=2).status_code == 200:
                return
        time.sleep(0.25)
    raise RuntimeError(f"{what} did not answer {url} in {timeout:.0f} s")


def stop_process_group(proc: subprocess.Popen, timeout: float = 15) -> None:
    """Stop a process started with ``start_new_session=True`` and its children, by its PID.

    SIGTERM to its process group, then SIGKILL if it is still there after ``timeout`` seconds.
    """
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=timeout)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=5)


class JupyterServer:
    """A ``jupyter server`` (or ``jupyter lab``) process on loopback with a token, stopped by PID (its process group).

    ``env`` is the process's whole environment (default: this one's); ``args`` are
    added after the loopback, token and root arguments; ``command`` replaces the
    ``jupyter <app>`` launcher (for example a script that patches NVML first).
    Without ``wait`` the caller calls :meth:`wait` when it needs the server.
    """

    def __init__(
        self,
        folder: Path,
        *,
        root: Path | None = None,
        env: dict[str, str] | None = None,
        app: str = "server",
        token: str = "workbench-test-token",
        args: tuple[str, ...] = (),
        command: list[str] | None = None,
        wait: bool = True,
    ) -> None:
        self.folder = Path(folder)
        self.root = Path(root or folder)
        self.app = app
        self.port = free_port()
        self.token = token
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = self.folder / f"jupyter-{app}.log"
        self._log = self.log_path.open("wb")
        launcher = command or [str(Path(sys.executable).with_name("jupyter")), app]
        self.proc = subprocess.Popen(
            [
                *launcher,
                "--no-browser",
                "--allow-root",
                f"--port={self.port}",
                "--ServerApp.ip=127.0.0.1",
                f"--IdentityProvider.token={token}",
                f"--ServerApp.root_dir={self.root}",
                *args,
            ],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env=dict(os.environ) if env is None else env,
            cwd=self.root,
            start_new_session=True,
        )
        if wait:
            self.wait()

    def wait(self, timeout: float = 90.0) -> JupyterServer:
        """Return once the server answers; RuntimeError with its log's tail (and the server stopped) if it does not."""
        try:
            wait_for_url(
                f"{self.url}/api/status",
                self.proc,
                self.log_path,
                headers=self.headers,
                timeout=timeout,
                what=f"jupyter {self.app}",
            )
        except RuntimeError:
            self.stop()
            raise
        return self

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"token {self.token}"}

    def api(self, method: str, path: str, **kwargs) -> requests.Response:
        return requests.request(method, f"{self.url}/{path}", headers=self.headers, timeout=30, **kwargs)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-3000:]

    def stop(self) -> None:
        stop_process_group(self.proc)
        self._log.close()


class MlflowServer:
    """An ``mlflow server`` process over a SQLite store in ``folder`` (or the store ``db_uri``).

    ``app_name`` picks one of MLflow's server apps (``basic-auth``); ``env`` adds to its environment.
    """

    def __init__(
        self,
        folder: Path,
        port: int | None = None,
        db_uri: str | None = None,
        app_name: str | None = None,
        env: dict[str, str] | None = None,
    ) -> None:
        self.folder = Path(folder)
        self.app_name = app_name
        self.extra_env = env or {}
        self.folder.mkdir(parents=True, exist_ok=True)
        self.db_uri = db_uri or f"sqlite:///{self.folder / 'mlflow.db'}"
        self.artifacts = self.folder / "artifacts"
        self.port = port or free_port()
        self.uri = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen | None = None

    def start(self, timeout: float = 90.0) -> MlflowServer:
        env = dict(
            os.environ, MLFLOW_SERVER_ENABLE_JOB_EXECUTION="false", MLFLOW_DISABLE_TELEMETRY="true", **self.extra_env
        )
        app = ["--app-name", self.app_name] if self.app_name else []
        log = open(self.folder / "server.log", "ab")  # noqa: SIM115 - closed in stop()
        self._log = log
        mlflow_bin = Path(sys.executable).with_name("mlflow")
        self.proc = subprocess.Popen(
            [
                str(mlflow_bin),
                "server",
                "--backend-store-uri",
                self.db_uri,
                "--artifacts-destination",
                str(self.artifacts),
                "--serve-artifacts",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--workers",
                "1",
                *app,
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )
        try:
            wait_for_url(
                self.uri + "/health", self.proc, self.folder / "server.log", timeout=timeout, what="mlflow server"
            )
        except RuntimeError:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        if self.proc:
            stop_process_group(self.proc)
        self.proc = None
        if getattr(self, "_log", None):
            self._log.close()
            self._log = None


class SilentServer:
    """An address that accepts connections and never answers: the slowest backend there is.

    Use as a context manager; ``uri`` is its ``http://127.0.0.1:PORT``.
    """

    def __init__(self) -> None:
        self._listener = socket.socket()
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(16)
        self._listener.settimeout(0.2)
        self.uri = f"http://127.0.0.1:{self._listener.getsockname()[1]}"
        self._held: list[socket.socket] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                self._held.append(self._listener.accept()[0])
            except OSError:
                continue

    def __enter__(self) -> SilentServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        for conn in self._held:
            conn.close()
        self._listener.close()
