"""The one interface behind every GPU source, the ``none`` source, and the factory.

A source answers :meth:`GpuSource.sample` with a :class:`~workbench.gpu.model.GpuSample`
and never raises for a backend problem: a missing driver, a failing GPU or an
unreachable Prometheus become fields of the sample. Sources:

- ``nvml``: the local GPUs through nvidia-ml-py (:mod:`workbench.gpu.nvml`);
- ``none``: no GPU readings, with the reason (:class:`NoneSource`);
- ``simulated``: made-up, seedable readings for demos and tests
  (:mod:`workbench.gpu.simulated`), always labelled as such;
- ``prometheus``: a fleet of nodes read from Prometheus scraping DCGM-style
  exporters (:mod:`workbench.gpu.prometheus`).

``auto`` opens ``nvml`` when NVML initializes and ``none`` otherwise; it never
falls back to simulated readings.
"""

from __future__ import annotations

import socket
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable
from typing import Any

from workbench.config import Settings
from workbench.errors import InvalidInput
from workbench.gpu.model import GpuSample

SOURCE_NAMES = ("auto", "nvml", "none", "simulated", "prometheus")

# What an in-server caller passes to name notebooks: the Jupyter server's sessions
# (dicts shaped like GET /api/sessions: {"path": ..., "kernel": {"id": ...}}).
SessionsProvider = Callable[[], Iterable[dict[str, Any]]]


class GpuSource(ABC):
    """A place GPU readings come from."""

    name: str = ""
    simulated: bool = False

    @abstractmethod
    def sample(self) -> GpuSample:
        """Read every GPU once."""

    def close(self) -> None:  # noqa: B027 - most sources hold nothing to release
        """Release what the source holds (NVML handle, HTTP session)."""


class NoneSource(GpuSource):
    """No GPU readings, and why: no GPU, no driver, no permission, or asked for."""

    name = "none"

    def __init__(self, reason: str, host: str | None = None) -> None:
        self.reason = reason
        self.host = host or socket.gethostname()

    def sample(self) -> GpuSample:
        return GpuSample(
            timestamp=time.time(),
            host=self.host,
            source=self.name,
            simulated=False,
            available=False,
            reason=self.reason,
        )


def open_source(
    settings: Settings,
    source: str | None = None,
    *,
    sessions: SessionsProvider | None = None,
    host: str | None = None,
) -> GpuSource:
    """Open the source named by ``source`` (default: ``settings.gpu_source``).

    ``sessions`` lets a caller inside the Jupyter server name the notebook of
    each kernel from its own sessions; ``host`` overrides the node name the
    readings carry (useful for simulated nodes of a demo fleet).
    """
    name = source or settings.gpu_source
    if name not in SOURCE_NAMES:
        raise InvalidInput(f"Unknown GPU source {name!r}", f"Use one of: {', '.join(SOURCE_NAMES)}.")
    if name == "none":
        return NoneSource("GPU monitoring is turned off (gpu_source = none)", host)
    if name == "simulated":
        from workbench.gpu.simulated import SimulatedSource

        return SimulatedSource(host=host)
    if name == "prometheus":
        from workbench.gpu.prometheus import PrometheusSource

        return PrometheusSource(settings.prometheus_url)
    from workbench.gpu.nvml import open_nvml

    return open_nvml(sessions=sessions, host=host)
