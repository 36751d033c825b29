"""Live GPUs: one sampler per process over a pluggable source (NVML, none, simulated, Prometheus).

Public API:

- :func:`get_sampler` / :class:`Sampler`: the shared poller and its ring buffer;
- :func:`open_source` and the sources :class:`NvmlSource`, :class:`NoneSource`,
  :class:`SimulatedSource`, :class:`PrometheusSource`;
- the records :class:`GpuSample`, :class:`GpuReading`, :class:`GpuProcess`;
- :mod:`workbench.gpu.kernels` for interrupting or shutting down the kernel
  behind a GPU process, :mod:`workbench.gpu.exporter` for Prometheus.

Submodules import their backends (pynvml, requests) only when used.
"""

from __future__ import annotations

from workbench.gpu.model import GpuProcess, GpuReading, GpuSample, fmt
from workbench.gpu.sampler import Sampler, SamplerStats, close_samplers, get_sampler
from workbench.gpu.source import GpuSource, NoneSource, open_source

__all__ = [
    "GpuProcess",
    "GpuReading",
    "GpuSample",
    "GpuSource",
    "NoneSource",
    "Sampler",
    "SamplerStats",
    "close_samplers",
    "fmt",
    "get_sampler",
    "open_source",
]
