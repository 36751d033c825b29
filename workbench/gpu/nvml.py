"""The ``nvml`` source: the local GPUs through nvidia-ml-py (``import pynvml``).

Per sample: one ``nvmlDeviceGetCount`` and about twelve calls per GPU
(utilization, memory, temperature, power and limit, SM and memory clocks,
PCIe RX and TX, MIG mode, compute processes, process utilization); handles,
names and UUIDs are read once and kept while the device count stays the same.

Failures stay local (see :mod:`workbench.gpu.model` for how they show):

- ``NVMLError_NotSupported``: that field is ``None`` and listed in ``unsupported``;
- ``NVMLError_GpuIsLost`` (or a GPU missing from the device list): that GPU is
  reported with ``state="lost"``, every other GPU is still read;
- any other error: that field is ``None``, the GPU gets ``state="error"`` and
  the error text, every other field and GPU is still read;
- NVML failing to initialize (no library, driver not loaded, no permission):
  :func:`open_nvml` returns the ``none`` source with the reason.
"""

from __future__ import annotations

import contextlib
import re
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from workbench.gpu.model import GpuProcess, GpuReading, GpuSample, gpu_key
from workbench.gpu.processes import ProcessResolver
from workbench.gpu.source import GpuSource, NoneSource, SessionsProvider


def nvml_error_text(exc: Exception) -> str:
    """A readable text for an NVML error, also when the library cannot describe it."""
    text = str(exc)
    if text and not text.startswith("NVML Error with code"):
        return text
    words = re.sub(r"(?<!^)(?=[A-Z])", " ", type(exc).__name__.removeprefix("NVMLError_"))
    return words.capitalize()


def _init_failure_reason(nvml: Any, exc: Exception) -> str:
    if isinstance(exc, nvml.NVMLError_LibraryNotFound):
        return "No NVIDIA driver: the NVML library (libnvidia-ml.so.1) was not found"
    if isinstance(exc, nvml.NVMLError_DriverNotLoaded):
        return "The NVIDIA driver is installed but not loaded"
    if isinstance(exc, nvml.NVMLError_NoPermission):
        return "No permission to use the NVIDIA driver (NVML)"
    return f"NVML did not initialize: {nvml_error_text(exc)}"


def open_nvml(*, sessions: SessionsProvider | None = None, host: str | None = None) -> GpuSource:
    """The ``nvml`` source when NVML initializes, else the ``none`` source with the reason."""
    try:
        import pynvml
    except ImportError:
        return NoneSource("nvidia-ml-py is not installed (pip install nvidia-ml-py)", host)
    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError as exc:
        return NoneSource(_init_failure_reason(pynvml, exc), host)
    return NvmlSource(pynvml, sessions=sessions, host=host)


class _GpuLost(Exception):
    """Raised inside a GPU's read when NVML says the GPU is lost."""


@dataclass
class _Device:
    handle: Any
    name: str
    uuid: str


class NvmlSource(GpuSource):
    """Reads the local GPUs; ``nvml`` is the initialized ``pynvml`` module."""

    name = "nvml"

    def __init__(self, nvml: Any, *, sessions: SessionsProvider | None = None, host: str | None = None) -> None:
        self._nvml = nvml
        self.host = host or socket.gethostname()
        self.resolver = ProcessResolver(sessions)
        try:
            self.driver_version: str | None = nvml.nvmlSystemGetDriverVersion()
        except nvml.NVMLError:
            self.driver_version = None
        self._devices: dict[int, _Device] = {}
        self._count: int | None = None
        self._seen: dict[str, tuple[int, str]] = {}  # uuid -> (last index, name), to report GPUs that vanish
        self._process_ts: dict[int, int] = {}  # index -> last process-utilization timestamp (µs)
        self._closed = False

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            with contextlib.suppress(self._nvml.NVMLError):
                self._nvml.nvmlShutdown()

    def sample(self) -> GpuSample:
        nvml = self._nvml
        sample = GpuSample(
            timestamp=time.time(),
            host=self.host,
            source=self.name,
            simulated=False,
            available=True,
            driver_version=self.driver_version,
        )
        try:
            count = nvml.nvmlDeviceGetCount()
        except nvml.NVMLError as exc:
            sample.available = False
            sample.reason = f"NVML stopped answering: {nvml_error_text(exc)}"
            return sample
        if count != self._count:  # devices came or went: indexes may have moved
            self._devices.clear()
            self._count = count
        present = set()
        for index in range(count):
            reading, processes = self._read_gpu(index)
            sample.gpus.append(reading)
            sample.processes.extend(processes)
            if reading.uuid:
                present.add(reading.uuid)
                self._seen[reading.uuid] = (index, reading.name or "")
        for uuid, (index, name) in self._seen.items():
            if uuid not in present:
                sample.gpus.append(
                    GpuReading(
                        index=index,
                        name=name,
                        uuid=uuid,
                        host=self.host,
                        state="lost",
                        error="GPU disappeared from NVML's device list",
                    )
                )
        if not sample.gpus:
            sample.available = False
            sample.reason = "NVML is running but reports no GPUs"
        sample.errors = {gpu_key(g): g.error for g in sample.gpus if g.error}
        self.resolver.annotate(sample.processes)
        return sample

    def _device(self, index: int) -> _Device:
        device = self._devices.get(index)
        if device is None:
            nvml = self._nvml
            handle = nvml.nvmlDeviceGetHandleByIndex(index)
            device = _Device(handle, nvml.nvmlDeviceGetName(handle), nvml.nvmlDeviceGetUUID(handle))
            self._devices[index] = device
        return device

    def _read_gpu(self, index: int) -> tuple[GpuReading, list[GpuProcess]]:
        """One GPU's reading and processes; never raises."""
        nvml = self._nvml
        reading = GpuReading(index=index, name=None, uuid=None, host=self.host)
        errors: list[str] = []

        def read(fields: tuple[str, ...], call: Callable[..., Any], *args: Any) -> Any:
            try:
                return call(*args)
            except nvml.NVMLError_NotSupported:
                reading.unsupported.extend(fields)
            except nvml.NVMLError_GpuIsLost as exc:
                raise _GpuLost from exc
            except nvml.NVMLError as exc:
                errors.append(f"{', '.join(fields)}: {nvml_error_text(exc)}")
            return None

        processes: list[GpuProcess] = []
        try:
            try:
                device = self._device(index)
            except nvml.NVMLError_GpuIsLost as exc:
                raise _GpuLost from exc
            reading.name, reading.uuid = device.name, device.uuid
            self._read_fields(device.handle, reading, read)
            processes = self._read_processes(index, device, read)
        except _GpuLost:
            self._devices.pop(index, None)
            if reading.uuid is None:  # lost before its identity was read this time: use the last known one
                reading.uuid, reading.name = next(
                    ((uuid, name) for uuid, (seen_index, name) in self._seen.items() if seen_index == index),
                    (None, None),
                )
            reading.state, reading.error = "lost", "GPU is lost (fell off the bus or stopped answering)"
            return reading, []
        except Exception as exc:  # one GPU's failure must not stop the others
            errors.append(nvml_error_text(exc) if isinstance(exc, nvml.NVMLError) else f"{type(exc).__name__}: {exc}")
        if errors:
            reading.state, reading.error = "error", "; ".join(errors)
        return reading, processes

    def _read_fields(self, handle: Any, reading: GpuReading, read: Callable[..., Any]) -> None:
        nvml = self._nvml
        util = read(("utilization_gpu", "utilization_memory"), nvml.nvmlDeviceGetUtilizationRates, handle)
        if util is not None:
            reading.utilization_gpu, reading.utilization_memory = float(util.gpu), float(util.memory)
        memory = read(("memory_used", "memory_total"), nvml.nvmlDeviceGetMemoryInfo, handle)
        if memory is not None:
            reading.memory_used, reading.memory_total = int(memory.used), int(memory.total)
        temperature = read(("temperature",), nvml.nvmlDeviceGetTemperature, handle, nvml.NVML_TEMPERATURE_GPU)
        reading.temperature = None if temperature is None else float(temperature)
        power = read(("power",), nvml.nvmlDeviceGetPowerUsage, handle)
        reading.power = None if power is None else power / 1000.0
        limit = read(("power_limit",), nvml.nvmlDeviceGetEnforcedPowerLimit, handle)
        reading.power_limit = None if limit is None else limit / 1000.0
        reading.sm_clock = read(("sm_clock",), nvml.nvmlDeviceGetClockInfo, handle, nvml.NVML_CLOCK_SM)
        reading.memory_clock = read(("memory_clock",), nvml.nvmlDeviceGetClockInfo, handle, nvml.NVML_CLOCK_MEM)
        reading.pcie_rx = read(("pcie_rx",), nvml.nvmlDeviceGetPcieThroughput, handle, nvml.NVML_PCIE_UTIL_RX_BYTES)
        reading.pcie_tx = read(("pcie_tx",), nvml.nvmlDeviceGetPcieThroughput, handle, nvml.NVML_PCIE_UTIL_TX_BYTES)
        mig = read(("mig_mode",), nvml.nvmlDeviceGetMigMode, handle)
        reading.mig_mode = None if mig is None else mig[0] == nvml.NVML_DEVICE_MIG_ENABLE

    def _read_processes(self, index: int, device: _Device, read: Callable[..., Any]) -> list[GpuProcess]:
        nvml = self._nvml
        running = read(("processes",), nvml.nvmlDeviceGetComputeRunningProcesses, device.handle) or []
        if not running:
            return []
        utilization: dict[int, Any] = {}
        try:
            samples = nvml.nvmlDeviceGetProcessUtilization(device.handle, self._process_ts.get(index, 0))
        except nvml.NVMLError_GpuIsLost as exc:
            raise _GpuLost from exc
        except nvml.NVMLError:
            samples = []  # not supported, or no new samples since the last poll: utilization n/a
        for entry in samples:
            if entry.pid not in utilization or entry.timeStamp >= utilization[entry.pid].timeStamp:
                utilization[entry.pid] = entry
            self._process_ts[index] = max(self._process_ts.get(index, 0), int(entry.timeStamp))
        processes = []
        for proc in running:
            util = utilization.get(proc.pid)
            processes.append(
                GpuProcess(
                    pid=int(proc.pid),
                    gpu_index=index,
                    gpu_uuid=device.uuid,
                    host=self.host,
                    used_memory=None if proc.usedGpuMemory is None else int(proc.usedGpuMemory),
                    sm_utilization=None if util is None else float(util.smUtil),
                    memory_utilization=None if util is None else float(util.memUtil),
                )
            )
        return processes
