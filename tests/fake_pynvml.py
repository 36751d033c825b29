"""A narrow fake of pynvml for machines without a GPU.

It replaces only the functions the ``nvml`` source calls (listed in
BUILD-NOTES), returns what pynvml returns (pynvml's own ctypes structures and
friendly objects, str names, mW, MHz, KB/s) and raises pynvml's real
``NVMLError_*`` classes; the exception classes and constants stay pynvml's.
Every call is counted, so tests and the benchmark can see the NVML cost.

    fake = FakeNvml([FakeGpu(), FakeGpu(name="NVIDIA H100 80GB HBM3")])
    with fake.installed():
        source = open_nvml()
"""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import pynvml

# every pynvml function the nvml source may call
FUNCTIONS = (
    "nvmlInit",
    "nvmlShutdown",
    "nvmlSystemGetDriverVersion",
    "nvmlDeviceGetCount",
    "nvmlDeviceGetHandleByIndex",
    "nvmlDeviceGetName",
    "nvmlDeviceGetUUID",
    "nvmlDeviceGetUtilizationRates",
    "nvmlDeviceGetMemoryInfo",
    "nvmlDeviceGetTemperature",
    "nvmlDeviceGetPowerUsage",
    "nvmlDeviceGetEnforcedPowerLimit",
    "nvmlDeviceGetComputeRunningProcesses",
    "nvmlDeviceGetProcessUtilization",
    "nvmlDeviceGetClockInfo",
    "nvmlDeviceGetPcieThroughput",
    "nvmlDeviceGetMigMode",
)

_uuids = itertools.count()


def nvml_error(code: int) -> pynvml.NVMLError:
    """The real pynvml exception for an NVML return code (NVMLError maps it to its subclass)."""
    return pynvml.NVMLError(code)


@dataclass
class FakeGpu:
    """One fake device; ``unsupported`` and ``failing`` name the pynvml functions (without the
    ``nvmlDevice`` prefix, e.g. ``"GetPcieThroughput"``) that raise NotSupported or the given code."""

    name: str = "NVIDIA A100-SXM4-80GB"
    uuid: str = field(default_factory=lambda: f"GPU-fake0000-0000-4000-8000-{next(_uuids):012d}")
    util_gpu: int = 37
    util_memory: int = 12
    memory_total: int = 80 * 1024**3
    memory_used: int = 12 * 1024**3
    temperature: int = 54
    power_mw: int = 210_500
    power_limit_mw: int = 400_000
    sm_clock: int = 1410
    memory_clock: int = 1593
    pcie_rx_kbps: int = 1200
    pcie_tx_kbps: int = 300
    mig: tuple[int, int] = (0, 0)
    # (pid, used bytes or None)
    processes: list[tuple[int, int | None]] = field(default_factory=list)
    # (pid, sm %, mem %), reported with a fresh timestamp on every call
    process_util: list[tuple[int, int, int]] = field(default_factory=list)
    unsupported: set[str] = field(default_factory=set)
    failing: dict[str, int] = field(default_factory=dict)
    lost: bool = False


class FakeHandle:
    """What nvmlDeviceGetHandleByIndex returns here (real pynvml: an opaque ctypes pointer)."""

    def __init__(self, gpu: FakeGpu) -> None:
        self.gpu = gpu


class FakeNvml:
    """The fake library state: its GPUs, whether init works, and the call counts."""

    def __init__(self, gpus: list[FakeGpu], *, init_error: int | None = None, driver: str = "550.54.15") -> None:
        self.gpus = gpus
        self.init_error = init_error
        self.driver = driver
        self.calls: Counter[str] = Counter()
        self.initialized = False
        self._timestamp = 1_700_000_000_000_000  # µs, like NVML's process samples

    @property
    def total_calls(self) -> int:
        return sum(self.calls.values())

    @contextmanager
    def installed(self) -> Iterator[FakeNvml]:
        """Put the fake functions in place of pynvml's for the duration of the block."""
        saved = {name: getattr(pynvml, name) for name in FUNCTIONS}
        for name in FUNCTIONS:
            setattr(pynvml, name, self._counted(name, getattr(self, name)))
        try:
            yield self
        finally:
            for name, function in saved.items():
                setattr(pynvml, name, function)

    def _counted(self, name: str, function: Callable[..., Any]) -> Callable[..., Any]:
        def call(*args: Any, **kwargs: Any) -> Any:
            self.calls[name] += 1
            return function(*args, **kwargs)

        return call

    # -------------------------------------------------------------- library

    def nvmlInit(self) -> None:
        if self.init_error is not None:
            raise nvml_error(self.init_error)
        self.initialized = True

    def nvmlShutdown(self) -> None:
        self._check_init()
        self.initialized = False

    def nvmlSystemGetDriverVersion(self) -> str:
        self._check_init()
        return self.driver

    def nvmlDeviceGetCount(self) -> int:
        self._check_init()
        return len(self.gpus)

    def nvmlDeviceGetHandleByIndex(self, index: int) -> FakeHandle:
        self._check_init()
        if not 0 <= index < len(self.gpus):
            raise nvml_error(pynvml.NVML_ERROR_INVALID_ARGUMENT)
        gpu = self.gpus[index]
        if gpu.lost:
            raise nvml_error(pynvml.NVML_ERROR_GPU_IS_LOST)
        return FakeHandle(gpu)

    # -------------------------------------------------------------- device queries

    def _check_init(self) -> None:
        if not self.initialized:
            raise nvml_error(pynvml.NVML_ERROR_UNINITIALIZED)

    def _gpu(self, handle: FakeHandle, query: str) -> FakeGpu:
        self._check_init()
        gpu = handle.gpu
        if gpu.lost:
            raise nvml_error(pynvml.NVML_ERROR_GPU_IS_LOST)
        if query in gpu.unsupported:
            raise nvml_error(pynvml.NVML_ERROR_NOT_SUPPORTED)
        if query in gpu.failing:
            raise nvml_error(gpu.failing[query])
        return gpu

    def nvmlDeviceGetName(self, handle: FakeHandle) -> str:
        return self._gpu(handle, "GetName").name

    def nvmlDeviceGetUUID(self, handle: FakeHandle) -> str:
        return self._gpu(handle, "GetUUID").uuid

    def nvmlDeviceGetUtilizationRates(self, handle: FakeHandle) -> pynvml.c_nvmlUtilization_t:
        gpu = self._gpu(handle, "GetUtilizationRates")
        return pynvml.c_nvmlUtilization_t(gpu=gpu.util_gpu, memory=gpu.util_memory)

    def nvmlDeviceGetMemoryInfo(self, handle: FakeHandle) -> pynvml.c_nvmlMemory_t:
        gpu = self._gpu(handle, "GetMemoryInfo")
        return pynvml.c_nvmlMemory_t(
            total=gpu.memory_total, free=gpu.memory_total - gpu.memory_used, used=gpu.memory_used
        )

    def nvmlDeviceGetTemperature(self, handle: FakeHandle, sensor: int) -> int:
        gpu = self._gpu(handle, "GetTemperature")
        if sensor != pynvml.NVML_TEMPERATURE_GPU:
            raise nvml_error(pynvml.NVML_ERROR_INVALID_ARGUMENT)
        return gpu.temperature

    def nvmlDeviceGetPowerUsage(self, handle: FakeHandle) -> int:
        return self._gpu(handle, "GetPowerUsage").power_mw

    def nvmlDeviceGetEnforcedPowerLimit(self, handle: FakeHandle) -> int:
        return self._gpu(handle, "GetEnforcedPowerLimit").power_limit_mw

    def nvmlDeviceGetClockInfo(self, handle: FakeHandle, clock_type: int) -> int:
        gpu = self._gpu(handle, "GetClockInfo")
        if clock_type == pynvml.NVML_CLOCK_SM:
            return gpu.sm_clock
        if clock_type == pynvml.NVML_CLOCK_MEM:
            return gpu.memory_clock
        raise nvml_error(pynvml.NVML_ERROR_INVALID_ARGUMENT)

    def nvmlDeviceGetPcieThroughput(self, handle: FakeHandle, counter: int) -> int:
        gpu = self._gpu(handle, "GetPcieThroughput")
        if counter == pynvml.NVML_PCIE_UTIL_RX_BYTES:
            return gpu.pcie_rx_kbps
        if counter == pynvml.NVML_PCIE_UTIL_TX_BYTES:
            return gpu.pcie_tx_kbps
        raise nvml_error(pynvml.NVML_ERROR_INVALID_ARGUMENT)

    def nvmlDeviceGetMigMode(self, handle: FakeHandle) -> list[int]:
        return list(self._gpu(handle, "GetMigMode").mig)

    def nvmlDeviceGetComputeRunningProcesses(self, handle: FakeHandle) -> list[pynvml.nvmlFriendlyObject]:
        gpu = self._gpu(handle, "GetComputeRunningProcesses")
        result = []
        for pid, used in gpu.processes:
            info = pynvml.c_nvmlProcessInfo_v3_t(pid=pid, usedGpuMemory=used or 0)
            obj = pynvml.nvmlStructToFriendlyObject(info)
            if used is None:  # what pynvml does with NVML_VALUE_NOT_AVAILABLE
                obj.usedGpuMemory = None
            result.append(obj)
        return result

    def nvmlDeviceGetProcessUtilization(
        self, handle: FakeHandle, last_seen: int
    ) -> list[pynvml.c_nvmlProcessUtilizationSample_t]:
        gpu = self._gpu(handle, "GetProcessUtilization")
        self._timestamp += 1_000_000
        samples = [
            pynvml.c_nvmlProcessUtilizationSample_t(pid=pid, timeStamp=self._timestamp, smUtil=sm, memUtil=mem)
            for pid, sm, mem in gpu.process_util
            if self._timestamp > last_seen
        ]
        if not samples:  # NVML answers NOT_FOUND when it has no samples newer than last_seen
            raise nvml_error(pynvml.NVML_ERROR_NOT_FOUND)
        return samples
