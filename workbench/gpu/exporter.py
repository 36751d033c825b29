"""Serve a sampler's readings in Prometheus text format, with DCGM exporter names.

A node without NVIDIA's DCGM exporter runs ``workbench gpu export --port P`` and
joins the same fleet view (:mod:`workbench.gpu.prometheus`). Per GPU it serves
the DCGM names and units (``DCGM_FI_DEV_GPU_UTIL``, ``..._FB_USED`` in MiB,
``..._POWER_USAGE`` in W, ...) with the DCGM labels ``gpu``, ``UUID``,
``device``, ``modelName`` and ``Hostname``, plus Workbench's own gauges:
``workbench_gpu_up`` (0 for a lost or failing GPU, with ``state`` and
``error``), ``workbench_gpu_mig_mode``, per-process
``workbench_gpu_process_memory_bytes`` and ``workbench_gpu_process_sm_util``
(labels ``pid``, ``user``, ``command``, ``kernel_id``, ``notebook``), and
``workbench_gpu_source_up`` (0 with a ``reason`` when the node has no readings).
Readings from the simulated source carry ``simulated="true"`` on every series.
A value the GPU does not report is left out, as Prometheus expects.

The server binds 127.0.0.1 unless told otherwise: process gauges name users
and commands.
"""

from __future__ import annotations

from collections.abc import Iterable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from workbench.gpu.model import GpuProcess, GpuReading, GpuSample
from workbench.gpu.sampler import Sampler

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
MIB = 1024 * 1024
# how long a scrape waits for the sampler's first sample
FIRST_SAMPLE_WAIT = 5.0

# name, help, GpuReading -> value (None: leave the series out)
_GPU_METRICS = (
    ("DCGM_FI_DEV_GPU_UTIL", "GPU utilization (in %).", lambda g: g.utilization_gpu),
    ("DCGM_FI_DEV_MEM_COPY_UTIL", "Memory utilization (in %).", lambda g: g.utilization_memory),
    (
        "DCGM_FI_DEV_FB_USED",
        "Framebuffer memory used (in MiB).",
        lambda g: None if g.memory_used is None else g.memory_used / MIB,
    ),
    (
        "DCGM_FI_DEV_FB_FREE",
        "Framebuffer memory free (in MiB).",
        lambda g: None if g.memory_used is None or g.memory_total is None else (g.memory_total - g.memory_used) / MIB,
    ),
    ("DCGM_FI_DEV_GPU_TEMP", "GPU temperature (in C).", lambda g: g.temperature),
    ("DCGM_FI_DEV_POWER_USAGE", "Power draw (in W).", lambda g: g.power),
    ("DCGM_FI_DEV_POWER_MGMT_LIMIT", "Power management limit (in W).", lambda g: g.power_limit),
    ("DCGM_FI_DEV_SM_CLOCK", "SM clock frequency (in MHz).", lambda g: g.sm_clock),
    ("DCGM_FI_DEV_MEM_CLOCK", "Memory clock frequency (in MHz).", lambda g: g.memory_clock),
    ("DCGM_FI_DEV_PCIE_RX_THROUGHPUT", "PCIe RX throughput (in KB/s).", lambda g: g.pcie_rx),
    ("DCGM_FI_DEV_PCIE_TX_THROUGHPUT", "PCIe TX throughput (in KB/s).", lambda g: g.pcie_tx),
    ("workbench_gpu_mig_mode", "MIG mode (1 enabled, 0 disabled).", lambda g: g.mig_mode),
)


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(pairs: Iterable[tuple[str, object]]) -> str:
    return "{" + ",".join(f'{k}="{_escape(str(v))}"' for k, v in pairs if v is not None) + "}"


def _number(value: float | int | bool) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    return repr(float(value)) if isinstance(value, float) else str(value)


def _gpu_labels(gpu: GpuReading) -> list[tuple[str, object]]:
    labels: list[tuple[str, object]] = [
        ("gpu", gpu.index),
        ("UUID", gpu.uuid or ""),
        ("device", f"nvidia{gpu.index}"),
        ("modelName", gpu.name or ""),
        ("Hostname", gpu.host),
    ]
    if gpu.simulated:
        labels.append(("simulated", "true"))
    return labels


def _process_labels(proc: GpuProcess) -> list[tuple[str, object]]:
    labels: list[tuple[str, object]] = [
        ("gpu", proc.gpu_index),
        ("UUID", proc.gpu_uuid or ""),
        ("Hostname", proc.host),
        ("pid", proc.pid),
        ("user", proc.user or ""),
        ("command", proc.command or ""),
        ("kernel_id", proc.kernel_id or ""),
        ("notebook", proc.notebook_path or ""),
    ]
    if proc.simulated:
        labels.append(("simulated", "true"))
    return labels


def render_metrics(sample: GpuSample | None) -> str:
    """The Prometheus text exposition of one sample (``None``: the sampler has no sample yet)."""
    out: list[str] = []

    def family(name: str, help_text: str, series: list[tuple[list[tuple[str, object]], object]]) -> None:
        rows = [(labels, value) for labels, value in series if value is not None]
        if not rows:
            return
        out.append(f"# HELP {name} {help_text}")
        out.append(f"# TYPE {name} gauge")
        out.extend(f"{name}{_labels(labels)} {_number(value)}" for labels, value in rows)

    if sample is None:
        family("workbench_gpu_source_up", "1 when the node has GPU readings.", [([("reason", "no sample yet")], 0)])
        return "\n".join(out) + "\n"
    node_labels: list[tuple[str, object]] = [("Hostname", sample.host), ("source", sample.source)]
    if sample.simulated:
        node_labels.append(("simulated", "true"))
    if not sample.available:
        node_labels.append(("reason", sample.reason or ""))
    family("workbench_gpu_source_up", "1 when the node has GPU readings.", [(node_labels, sample.available)])
    for name, help_text, read in _GPU_METRICS:
        family(name, help_text, [(_gpu_labels(g), read(g)) for g in sample.gpus])
    family(
        "workbench_gpu_up",
        "1 while the GPU answers; 0 when it is lost or failing (see state and error).",
        [([*_gpu_labels(g), ("state", g.state), ("error", g.error)], g.state == "ok") for g in sample.gpus],
    )
    family(
        "workbench_gpu_process_memory_bytes",
        "GPU memory a process holds (in bytes).",
        [(_process_labels(p), p.used_memory) for p in sample.processes],
    )
    family(
        "workbench_gpu_process_sm_util",
        "SM utilization of a process (in %), where the driver samples it.",
        [(_process_labels(p), p.sm_utilization) for p in sample.processes],
    )
    return "\n".join(out) + "\n"


class MetricsServer(ThreadingHTTPServer):
    """An HTTP server answering ``GET /metrics`` from ``sampler``'s newest sample."""

    daemon_threads = True

    def __init__(self, sampler: Sampler, address: str = "127.0.0.1", port: int = 9400) -> None:
        self.sampler = sampler
        super().__init__((address, port), _MetricsHandler)

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}/metrics"


class _MetricsHandler(BaseHTTPRequestHandler):
    server: MetricsServer

    def do_GET(self) -> None:
        if self.path.split("?", 1)[0] not in ("/metrics", "/"):
            self.send_error(404, "Only /metrics is served here")
            return
        body = render_metrics(self.server.sampler.latest(wait=FIRST_SAMPLE_WAIT)).encode()
        self.send_response(200)
        self.send_header("Content-Type", CONTENT_TYPE)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        """Scrapes come every second or so: keep them out of the terminal."""
