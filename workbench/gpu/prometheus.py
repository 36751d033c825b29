"""The ``prometheus`` source: a fleet view of every node's GPUs, read from Prometheus.

Prometheus scrapes NVIDIA's DCGM exporter (or ``workbench gpu export`` on nodes
without DCGM); this source asks Prometheus' HTTP API (``/api/v1/query``) for
the DCGM metrics in one instant query and groups the series by node
(``Hostname`` label, else the scrape ``instance``) and GPU (``gpu``, ``UUID``,
``modelName`` labels). Units follow DCGM: framebuffer in MiB (turned into
bytes here), power in W, clocks in MHz, PCIe in KB/s.

Metrics a node does not export leave their fields ``None``. Series from a
``workbench gpu export`` node also carry its processes
(``workbench_gpu_process_*``), its ``simulated`` label, and, when it has no GPU
readings, ``workbench_gpu_source_up 0`` with the reason, which this source
reports in ``GpuSample.errors`` under the node's name.
"""

from __future__ import annotations

import math
import socket
import time
from typing import Any

import requests

from workbench.gpu.model import GpuProcess, GpuReading, GpuSample, gpu_key
from workbench.gpu.source import GpuSource

MIB = 1024 * 1024

# DCGM metric -> (GpuReading field, factor to the field's unit)
DCGM_FIELDS: dict[str, tuple[str, float]] = {
    "DCGM_FI_DEV_GPU_UTIL": ("utilization_gpu", 1.0),
    "DCGM_FI_DEV_MEM_COPY_UTIL": ("utilization_memory", 1.0),
    "DCGM_FI_DEV_FB_USED": ("memory_used", MIB),
    "DCGM_FI_DEV_FB_FREE": ("memory_free", MIB),  # turned into memory_total below
    "DCGM_FI_DEV_GPU_TEMP": ("temperature", 1.0),
    "DCGM_FI_DEV_POWER_USAGE": ("power", 1.0),
    "DCGM_FI_DEV_POWER_MGMT_LIMIT": ("power_limit", 1.0),
    "DCGM_FI_DEV_SM_CLOCK": ("sm_clock", 1.0),
    "DCGM_FI_DEV_MEM_CLOCK": ("memory_clock", 1.0),
    "DCGM_FI_DEV_PCIE_RX_THROUGHPUT": ("pcie_rx", 1.0),
    "DCGM_FI_DEV_PCIE_TX_THROUGHPUT": ("pcie_tx", 1.0),
}
_INT_FIELDS = {"memory_used", "memory_free", "sm_clock", "memory_clock", "pcie_rx", "pcie_tx"}
# one instant query for every metric the fleet view shows
FLEET_QUERY = '{__name__=~"' + "|".join(DCGM_FIELDS) + '|workbench_gpu_.+"}'


def _value(result: dict[str, Any]) -> float | None:
    try:
        value = float(result["value"][1])
    except (KeyError, IndexError, TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def _node(labels: dict[str, str]) -> str:
    return labels.get("Hostname") or labels.get("instance") or "unknown"


class PrometheusSource(GpuSource):
    """Every GPU that a Prometheus server at ``url`` has DCGM metrics for."""

    name = "prometheus"

    def __init__(self, url: str | None, *, timeout: float = 5.0) -> None:
        self.url = url.rstrip("/") if url else None
        self.timeout = timeout
        self.host = socket.gethostname()
        self._http = requests.Session()

    def close(self) -> None:
        self._http.close()

    def _unavailable(self, reason: str) -> GpuSample:
        return GpuSample(
            timestamp=time.time(), host=self.host, source=self.name, simulated=False, available=False, reason=reason
        )

    def sample(self) -> GpuSample:
        if not self.url:
            return self._unavailable("No Prometheus URL set (prometheus_url / WORKBENCH_PROMETHEUS_URL)")
        try:
            response = self._http.get(f"{self.url}/api/v1/query", params={"query": FLEET_QUERY}, timeout=self.timeout)
            body = response.json()
        except (requests.RequestException, ValueError) as exc:
            return self._unavailable(f"Prometheus at {self.url} did not answer: {exc}")
        if body.get("status") != "success":
            return self._unavailable(f"Prometheus at {self.url} refused the query: {body.get('error', response.text)}")
        return self._fleet_sample(body.get("data", {}).get("result", []))

    def _fleet_sample(self, results: list[dict[str, Any]]) -> GpuSample:
        readings: dict[tuple[str, str, str], dict[str, Any]] = {}
        processes: dict[tuple[str, str, str], GpuProcess] = {}
        node_errors: dict[str, str] = {}
        for result in results:
            labels: dict[str, str] = result.get("metric", {})
            metric, value = labels.get("__name__", ""), _value(result)
            node = _node(labels)
            if metric == "workbench_gpu_source_up":
                if value == 0:
                    node_errors[node] = labels.get("reason") or "no GPU readings"
                continue
            if metric.startswith("workbench_gpu_process_"):
                self._add_process(processes, metric, labels, value)
                continue
            if "gpu" not in labels:
                continue
            entry = readings.setdefault((node, labels["gpu"], labels.get("UUID", "")), {"labels": labels, "values": {}})
            if metric in DCGM_FIELDS:
                field, factor = DCGM_FIELDS[metric]
                if value is not None:
                    value *= factor
                    entry["values"][field] = int(value) if field in _INT_FIELDS else value
            elif metric == "workbench_gpu_mig_mode" and value is not None:
                entry["values"]["mig_mode"] = value == 1
            elif metric == "workbench_gpu_up" and value == 0:
                entry["values"]["state"] = labels.get("state") or "error"
                entry["values"]["error"] = labels.get("error") or None
        gpus = [self._reading(node, entry) for (node, _, _), entry in readings.items()]
        gpus.sort(key=lambda g: (g.host, g.index))
        sample = GpuSample(
            timestamp=time.time(),
            host=self.host,
            source=self.name,
            simulated=any(g.simulated for g in gpus),
            available=bool(gpus),
            reason=None if gpus else f"Prometheus at {self.url} has no DCGM GPU metrics",
            gpus=gpus,
            processes=sorted(processes.values(), key=lambda p: (p.host, p.gpu_index, p.pid)),
        )
        sample.errors = {gpu_key(g, with_host=True): g.error for g in gpus if g.error} | node_errors
        return sample

    @staticmethod
    def _reading(node: str, entry: dict[str, Any]) -> GpuReading:
        labels, values = entry["labels"], dict(entry["values"])
        free = values.pop("memory_free", None)
        used = values.get("memory_used")
        try:
            index = int(labels["gpu"])
        except ValueError:
            index = -1
        return GpuReading(
            index=index,
            name=labels.get("modelName"),
            uuid=labels.get("UUID"),
            host=node,
            memory_total=None if free is None or used is None else used + free,
            simulated=labels.get("simulated") == "true",
            **values,
        )

    @staticmethod
    def _add_process(
        processes: dict[tuple[str, str, str], GpuProcess], metric: str, labels: dict[str, str], value: float | None
    ) -> None:
        node, pid, gpu = _node(labels), labels.get("pid", ""), labels.get("gpu", "")
        if not pid.isdigit() or not gpu.isdigit():
            return
        proc = processes.get((node, gpu, pid))
        if proc is None:
            proc = processes[(node, gpu, pid)] = GpuProcess(
                pid=int(pid),
                gpu_index=int(gpu),
                gpu_uuid=labels.get("UUID"),
                host=node,
                user=labels.get("user") or None,
                command=labels.get("command") or None,
                kernel_id=labels.get("kernel_id") or None,
                notebook_path=labels.get("notebook") or None,
                simulated=labels.get("simulated") == "true",
            )
        if metric == "workbench_gpu_process_memory_bytes" and value is not None:
            proc.used_memory = int(value)
        elif metric == "workbench_gpu_process_sm_util":
            proc.sm_utilization = value
