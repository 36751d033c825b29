"""The GPU records every surface renders: one :class:`GpuSample` per poll.

Conventions, the same for every source:

- A numeric field that could not be read is ``None`` (JSON ``null``). When the
  device said the query is not supported, the field's name is also listed in
  :attr:`GpuReading.unsupported`; text surfaces render every ``None`` reading
  as ``"n/a"`` (see :func:`fmt`).
- Units: memory in bytes, power in watts, clocks in MHz, temperature in °C,
  utilization in percent, PCIe throughput in KB/s (NVML's unit).
- ``GpuReading.state`` is ``"ok"``, ``"error"`` (a query failed for another
  reason than "not supported"; the rest of that GPU and the other GPUs are
  still read) or ``"lost"`` (the GPU fell off the bus or disappeared from the
  device list). ``GpuSample.errors`` repeats each GPU's error under its key
  (:func:`gpu_key`: the index, ``host/index`` in the fleet view, where a node
  without readings also appears under its name with the reason).
- A sample with ``available=False`` has a ``reason`` a person can read (no
  driver, no permission, Prometheus not answering...) and no GPUs.
- ``simulated=True`` marks made-up readings; every surface must say
  "simulated" wherever it shows them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# The numeric fields of a GpuReading, in display order (used by tests, exporter, CLI).
READING_FIELDS = (
    "utilization_gpu",
    "utilization_memory",
    "memory_used",
    "memory_total",
    "temperature",
    "power",
    "power_limit",
    "sm_clock",
    "memory_clock",
    "pcie_rx",
    "pcie_tx",
)


@dataclass
class GpuReading:
    """One GPU at one moment."""

    index: int
    name: str | None
    uuid: str | None
    host: str
    state: str = "ok"  # "ok", "error" or "lost"
    utilization_gpu: float | None = None  # SM utilization, %
    utilization_memory: float | None = None  # memory controller utilization, %
    memory_used: int | None = None  # bytes
    memory_total: int | None = None  # bytes
    temperature: float | None = None  # °C
    power: float | None = None  # W
    power_limit: float | None = None  # W (enforced limit)
    sm_clock: int | None = None  # MHz
    memory_clock: int | None = None  # MHz
    pcie_rx: int | None = None  # KB/s
    pcie_tx: int | None = None  # KB/s
    mig_mode: bool | None = None  # current MIG mode; None: not supported / unknown
    unsupported: list[str] = field(default_factory=list)  # fields the device does not support
    error: str | None = None
    simulated: bool = False


@dataclass
class GpuProcess:
    """A process holding memory on a GPU, with who runs it and, for Jupyter kernels, which notebook."""

    pid: int
    gpu_index: int
    gpu_uuid: str | None
    host: str
    used_memory: int | None = None  # bytes; None where the driver does not say
    sm_utilization: float | None = None  # %, where the driver samples it
    memory_utilization: float | None = None  # %
    user: str | None = None
    command: str | None = None
    kernel_id: str | None = None  # the Jupyter kernel this process is (or descends from)
    kernel_pid: int | None = None  # that kernel's own pid (differs from pid for a child process)
    notebook_path: str | None = None  # the notebook the kernel runs, when known
    simulated: bool = False


@dataclass
class GpuSample:
    """Everything one poll of a source saw."""

    timestamp: float  # seconds since the epoch
    host: str  # where the sample was taken (for prometheus: where workbench runs)
    source: str  # "nvml", "none", "simulated" or "prometheus"
    simulated: bool
    available: bool
    reason: str | None = None  # why there are no readings, when available is False
    gpus: list[GpuReading] = field(default_factory=list)
    processes: list[GpuProcess] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)  # gpu_key -> error
    driver_version: str | None = None


def gpu_key(reading: GpuReading, *, with_host: bool = False) -> str:
    """The key of a GPU in ``GpuSample.errors``: its index, prefixed ``host/`` in a fleet view."""
    return f"{reading.host}/{reading.index}" if with_host else str(reading.index)


def fmt(value: object, unit: str = "") -> str:
    """Render one reading for text output: ``None`` is ``"n/a"``."""
    if value is None:
        return "n/a"
    if isinstance(value, float):
        value = f"{value:.0f}" if value >= 10 else f"{value:.1f}"
    return f"{value}{unit}"
