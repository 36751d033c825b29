"""The exporter's Prometheus text, and the fleet view through a real Prometheus server.

The fleet test starts Debian's ``/usr/bin/prometheus`` (package ``prometheus``)
on loopback, scraping two ``workbench gpu export --source simulated``
processes, and reads both nodes back through the ``prometheus`` source.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.servers import free_port
from workbench.gpu.exporter import render_metrics
from workbench.gpu.model import GpuProcess, GpuReading, GpuSample
from workbench.gpu.prometheus import PrometheusSource
from workbench.gpu.simulated import SimulatedSource

PROMETHEUS = Path("/usr/bin/prometheus")
GIB = 1024**3
MIB = 1024**2
T = TypeVar("T")


def _families(text: str) -> dict[str, list]:
    return {f.name: f.samples for f in text_string_to_metric_families(text)}


def test_exported_text_uses_dcgm_names_and_units_and_leaves_out_what_is_not_read():
    gpus = [
        GpuReading(
            index=0,
            name='Tesla "V100"',
            uuid="GPU-1",
            host="n1",
            utilization_gpu=50.0,
            memory_used=2 * GIB,
            memory_total=16 * GIB,
            power=120.5,
            sm_clock=1380,
            unsupported=["pcie_rx", "pcie_tx"],
        ),
        GpuReading(index=1, name="Tesla V100", uuid="GPU-2", host="n1", state="lost", error="GPU is lost"),
    ]
    procs = [GpuProcess(pid=77, gpu_index=0, gpu_uuid="GPU-1", host="n1", used_memory=GIB, user="ann", command="a\nb")]
    sample = GpuSample(
        timestamp=1.0, host="n1", source="nvml", simulated=False, available=True, gpus=gpus, processes=procs
    )
    families = _families(render_metrics(sample))  # a real Prometheus text parser must accept it
    (util,) = families["DCGM_FI_DEV_GPU_UTIL"]
    assert util.value == 50.0
    assert util.labels == {
        "gpu": "0",
        "UUID": "GPU-1",
        "device": "nvidia0",
        "modelName": 'Tesla "V100"',
        "Hostname": "n1",
    }
    assert families["DCGM_FI_DEV_FB_USED"][0].value == 2048.0
    assert families["DCGM_FI_DEV_FB_FREE"][0].value == 14 * 1024.0
    assert families["DCGM_FI_DEV_POWER_USAGE"][0].value == 120.5
    assert "DCGM_FI_DEV_PCIE_RX_THROUGHPUT" not in families  # not read: no series, not a made-up 0
    assert "DCGM_FI_DEV_GPU_TEMP" not in families
    up = {s.labels["gpu"]: (s.value, s.labels["state"]) for s in families["workbench_gpu_up"]}
    assert up == {"0": (1.0, "ok"), "1": (0.0, "lost")}
    (proc,) = families["workbench_gpu_process_memory_bytes"]
    assert proc.value == GIB and proc.labels["pid"] == "77" and proc.labels["command"] == "a\nb"


def test_a_node_without_gpus_exports_the_reason():
    sample = GpuSample(timestamp=1.0, host="n2", source="none", simulated=False, available=False, reason="No driver")
    families = _families(render_metrics(sample))
    (up,) = families["workbench_gpu_source_up"]
    assert up.value == 0 and up.labels["reason"] == "No driver"
    assert not any(name.startswith("DCGM") for name in families)
    (source_up,) = _families(render_metrics(SimulatedSource(gpus=1).sample()))["workbench_gpu_source_up"]
    assert source_up.labels["simulated"] == "true" and source_up.value == 1


def test_prometheus_source_states_why_it_has_no_readings():
    sample = PrometheusSource(None).sample()
    assert not sample.available and "No Prometheus URL" in sample.reason
    url = f"http://127.0.0.1:{free_port()}"
    sample = PrometheusSource(url, timeout=2).sample()
    assert (sample.source, sample.available) == ("prometheus", False)
    assert url in sample.reason and "did not answer" in sample.reason


def _start(cmd: list[str], log: Path) -> subprocess.Popen:
    with log.open("wb") as out:
        return subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def _wait_for(predicate: Callable[[], T | None], timeout: float, what: str) -> T:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = predicate()
        if result:
            return result
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.mark.slow
@pytest.mark.skipif(
    not PROMETHEUS.exists(),
    reason="needs Debian's prometheus package (/usr/bin/prometheus): apt-get install prometheus",
)
def test_prometheus_fleet_view_lists_the_gpus_of_two_exporting_nodes(tmp_path):
    procs: list[subprocess.Popen] = []
    try:
        targets = {}
        for node in ("node-a", "node-b"):
            log = tmp_path / f"{node}.log"
            cmd = [sys.executable, "-m", "workbench.gpu", "export", "--port", "0", "--source", "simulated"]
            procs.append(_start([*cmd, "--node-name", node], log))

            def serving(log: Path = log) -> str | None:
                found = re.search(r"on http://(127\.0\.0\.1:\d+)/metrics", log.read_text())
                return found.group(1) if found else None

            targets[node] = _wait_for(serving, 30, f"the {node} exporter")
        port = free_port()
        (tmp_path / "prometheus.yml").write_text(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
            "scrape_configs:\n  - job_name: workbench-gpu\n    static_configs:\n"
            f"      - targets: ['{targets['node-a']}', '{targets['node-b']}']\n"
        )
        procs.append(
            _start(
                [
                    str(PROMETHEUS),
                    f"--config.file={tmp_path / 'prometheus.yml'}",
                    f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                    f"--web.listen-address=127.0.0.1:{port}",
                ],
                tmp_path / "prometheus.log",
            )
        )
        url = f"http://127.0.0.1:{port}"
        source = PrometheusSource(url)

        def both_nodes() -> GpuSample | None:
            assert all(p.poll() is None for p in procs), (tmp_path / "prometheus.log").read_text()[-2000:]
            sample = source.sample()
            return sample if len({g.host for g in sample.gpus}) == 2 and len(sample.processes) == 6 else None

        sample = _wait_for(both_nodes, 30, "Prometheus to scrape both exporters")
        source.close()
    finally:
        for proc in procs:
            _stop(proc)

    assert (sample.source, sample.available, sample.simulated) == ("prometheus", True, True)
    by_node = {node: [g for g in sample.gpus if g.host == node] for node in ("node-a", "node-b")}
    assert [g.index for g in by_node["node-a"]] == [g.index for g in by_node["node-b"]] == [0, 1, 2, 3]
    assert len({g.uuid for g in sample.gpus}) == 8  # two nodes, eight distinct GPUs
    for gpu in sample.gpus:
        assert gpu.simulated and "simulated" in gpu.name
        assert gpu.memory_total == pytest.approx(80 * GIB, abs=MIB)
        assert 0 <= gpu.utilization_gpu <= 100 and gpu.temperature > 20
        assert gpu.power_limit == 400.0 and gpu.sm_clock in (210, 1410)
    notebooks = {(p.host, p.notebook_path) for p in sample.processes if p.notebook_path}
    assert notebooks == {("node-a", "notebooks/train_resnet.ipynb"), ("node-b", "notebooks/train_resnet.ipynb")}
    assert all(p.used_memory and p.user for p in sample.processes)
