"""GPU processes mapped to real Jupyter kernels, and the audited interrupt/shutdown actions.

Kernels are real ipykernels (jupyter_client) and the server is a real
``jupyter server`` process; only NVML is faked, reporting the kernels' pids.
"""

from __future__ import annotations

import contextlib
import getpass
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
import requests
from jupyter_client.multikernelmanager import AsyncMultiKernelManager
from jupyter_core.paths import jupyter_config_path
from jupyter_server.extension.config import ExtensionConfigManager

from tests.fake_pynvml import FakeGpu, FakeNvml
from tests.servers import free_port
from workbench import audit
from workbench.config import load_settings
from workbench.errors import NotFound
from workbench.gpu.kernels import (
    JupyterServer,
    fetch_sessions,
    interrupt_kernel,
    interrupt_kernel_in_server,
    running_servers,
    shutdown_kernel,
    shutdown_kernel_in_server,
)
from workbench.gpu.nvml import open_nvml
from workbench.gpu.processes import sessions_by_kernel

GIB = 1024**3
SPAWN_CHILD = (
    "import subprocess, sys\n"
    "_child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(120)'])\n"
    "print(_child.pid)"
)


def _kill(pid: int | None) -> None:
    if pid:
        with contextlib.suppress(psutil.Error):
            psutil.Process(pid).kill()


def _wait_gone(pid: int, timeout: float = 15) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                return True
        except psutil.NoSuchProcess:
            return True
        time.sleep(0.05)
    return False


@pytest.mark.asyncio
async def test_a_kernel_and_its_child_are_named_and_the_kernel_manager_interrupts_and_shuts_down(tmp_path, monkeypatch):
    runtime = tmp_path / "runtime"
    runtime.mkdir()
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(runtime))
    settings = load_settings(tmp_path)
    manager = AsyncMultiKernelManager(connection_dir=str(runtime))
    env = {**os.environ, "JPY_SESSION_NAME": "analysis/train.ipynb"}
    kernel_id = await manager.start_kernel(kernel_name="python3", env=env)
    child_pid = None
    client = manager.get_kernel(kernel_id).client()
    try:
        kernel_pid = manager.get_kernel(kernel_id).provisioner.pid
        assert (runtime / f"kernel-{kernel_id}.json").is_file()
        client.start_channels()
        await client.wait_for_ready(timeout=60)
        printed: list[str] = []

        def collect(msg: dict) -> None:
            if msg["msg_type"] == "stream":
                printed.append(msg["content"]["text"])

        await client.execute_interactive(SPAWN_CHILD, output_hook=collect, timeout=30)
        child_pid = int("".join(printed).strip())
        assert psutil.Process(child_pid).ppid() == kernel_pid

        gpu = FakeGpu(processes=[(kernel_pid, 2 * GIB), (child_pid, GIB), (os.getpid(), GIB // 2)])
        with FakeNvml([gpu]).installed():
            source = open_nvml()
            first = {p.pid: p for p in source.sample().processes}
            source.resolver.sessions = lambda: [{"path": "renamed/train.ipynb", "kernel": {"id": kernel_id}}]
            second = {p.pid: p for p in source.sample().processes}
            source.close()

        kernel, child, other = first[kernel_pid], first[child_pid], first[os.getpid()]
        assert (kernel.kernel_id, kernel.kernel_pid, kernel.notebook_path) == (
            kernel_id,
            kernel_pid,
            "analysis/train.ipynb",  # from the connection file, outside any server
        )
        assert (child.kernel_id, child.kernel_pid, child.notebook_path) == (
            kernel_id,
            kernel_pid,
            "analysis/train.ipynb",
        )
        assert "time.sleep(120)" in child.command and "ipykernel" in kernel.command
        assert kernel.user == child.user == getpass.getuser()
        assert other.kernel_id is None and other.notebook_path is None
        # the server's sessions win: the notebook may have been renamed since the kernel started
        assert second[kernel_pid].notebook_path == second[child_pid].notebook_path == "renamed/train.ipynb"

        # interrupt a long cell through the kernel manager (the in-server path)
        msg_id = client.execute("import time; print('sleeping', flush=True); time.sleep(60)")
        while True:  # interrupt only once the cell runs
            msg = await client.get_iopub_msg(timeout=20)
            if msg["parent_header"].get("msg_id") == msg_id and msg["msg_type"] == "stream":
                break
        result = await interrupt_kernel_in_server(settings, manager, kernel_id, notebook="analysis/train.ipynb")
        reply = await client.get_shell_msg(timeout=20)
        assert reply["parent_header"]["msg_id"] == msg_id
        assert reply["content"]["status"] == "error" and reply["content"]["ename"] == "KeyboardInterrupt"
        assert (result.action, result.via, result.before["id"]) == ("interrupt", "kernel manager", kernel_id)

        result = await shutdown_kernel_in_server(settings, manager, kernel_id)
        assert result.after is None and kernel_id not in manager
        assert _wait_gone(kernel_pid)
        with pytest.raises(NotFound):
            await interrupt_kernel_in_server(settings, manager, kernel_id)
    finally:
        client.stop_channels()
        if kernel_id in manager:
            await manager.shutdown_kernel(kernel_id, now=True)
        _kill(child_pid)

    entries = audit.read(settings)
    assert [(e.action, e.target, e.outcome) for e in entries] == [
        ("kernel.interrupt", f"kernel:{kernel_id}", "ok"),
        ("kernel.shutdown", f"kernel:{kernel_id}", "ok"),
        ("kernel.interrupt", f"kernel:{kernel_id}", "refused"),
    ]
    assert entries[0].detail == {"via": "kernel manager", "notebook": "analysis/train.ipynb"}
    assert entries[1].before["id"] == kernel_id and entries[1].after is None


@pytest.fixture
def jupyter_server(tmp_path):
    """A real ``jupyter server`` process with its runtime folder in ``tmp_path``."""
    runtime, root = tmp_path / "runtime", tmp_path / "root"
    runtime.mkdir()
    (root / "nb").mkdir(parents=True)
    token = "workbench-test-token"
    env = {**os.environ, "JUPYTER_RUNTIME_DIR": str(runtime)}
    # a bare server starts in a fraction of the time: no installed server extension is needed here
    installed = ExtensionConfigManager(read_config_path=jupyter_config_path()).get_jpserver_extensions()
    config = tmp_path / "jupyter_server_config.json"
    config.write_text(json.dumps({"ServerApp": {"jpserver_extensions": dict.fromkeys(installed, False)}}))
    log = (tmp_path / "server.log").open("wb")
    proc = subprocess.Popen(
        [
            str(Path(sys.executable).with_name("jupyter-server")),
            "--no-browser",
            f"--port={free_port()}",
            "--ServerApp.ip=127.0.0.1",
            "--ServerApp.allow_root=True",
            f"--ServerApp.root_dir={root}",
            f"--IdentityProvider.token={token}",
            f"--config={config}",
        ],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 60
        servers: list[JupyterServer] = []
        while not servers:
            assert proc.poll() is None, (tmp_path / "server.log").read_text()[-2000:]
            assert time.monotonic() < deadline, "jupyter server did not write its runtime file"
            time.sleep(0.1)
            servers = running_servers(runtime)
        server = servers[0]
        while True:  # the runtime file can come before the port answers
            assert time.monotonic() < deadline, "jupyter server did not answer /api/status"
            with contextlib.suppress(requests.ConnectionError):
                if requests.get(server.api("status"), headers=server.headers, timeout=5).status_code == 200:
                    break
            time.sleep(0.1)
        yield server, runtime
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        log.close()


def _kernel_pid(server_pid: int, kernel_id: str) -> int:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        for child in psutil.Process(server_pid).children(recursive=True):
            with contextlib.suppress(psutil.Error):
                if any(f"kernel-{kernel_id}.json" in arg for arg in child.cmdline()):
                    return child.pid
        time.sleep(0.1)
    raise AssertionError(f"no process for kernel {kernel_id}")


def test_through_a_running_jupyter_server_the_notebook_is_named_and_actions_are_audited(jupyter_server, tmp_path):
    server, runtime = jupyter_server
    settings = load_settings(tmp_path)
    response = requests.post(
        server.api("sessions"),
        headers=server.headers,
        json={"path": "nb/train.ipynb", "type": "notebook", "name": "train.ipynb", "kernel": {"name": "python3"}},
        timeout=60,
    )
    assert response.status_code == 201, response.text
    kernel_id = response.json()["kernel"]["id"]
    kernel_pid = _kernel_pid(server.pid, kernel_id)
    assert sessions_by_kernel(fetch_sessions(server)) == {kernel_id: "nb/train.ipynb"}

    with FakeNvml([FakeGpu(processes=[(kernel_pid, 3 * GIB)])]).installed():
        source = open_nvml(sessions=lambda: fetch_sessions(server))
        (proc,) = source.sample().processes
        source.close()
    assert (proc.pid, proc.kernel_id, proc.notebook_path) == (kernel_pid, kernel_id, "nb/train.ipynb")
    # the connection file the server wrote names the notebook too
    connection = json.loads((runtime / f"kernel-{kernel_id}.json").read_text())
    assert connection["jupyter_session"].endswith("train.ipynb")

    # the server is found from its jpserver-<pid>.json file
    interrupted = interrupt_kernel(settings, kernel_id, runtime_dir=runtime)
    assert (interrupted.via, interrupted.notebook_path) == (server.url, "nb/train.ipynb")
    assert interrupted.before["id"] == kernel_id and interrupted.after["id"] == kernel_id
    assert psutil.pid_exists(kernel_pid)  # an interrupt leaves the kernel running

    stopped = shutdown_kernel(settings, kernel_id, server=server)
    assert stopped.after is None
    assert requests.get(server.api(f"kernels/{kernel_id}"), headers=server.headers, timeout=5).status_code == 404
    assert _wait_gone(kernel_pid)
    with pytest.raises(NotFound):
        shutdown_kernel(settings, kernel_id, runtime_dir=runtime)
    with pytest.raises(NotFound):
        interrupt_kernel(settings, kernel_id, server=server)

    entries = audit.read(settings)
    assert [(e.action, e.outcome) for e in entries] == [
        ("kernel.interrupt", "ok"),
        ("kernel.shutdown", "ok"),
        ("kernel.shutdown", "refused"),
        ("kernel.interrupt", "refused"),
    ]
    assert entries[1].detail == {"via": server.url, "notebook": "nb/train.ipynb"}
    assert entries[1].before["execution_state"] in {"idle", "busy", "starting"}
    assert entries[2].error["kind"] == "not_found"
