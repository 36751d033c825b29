"""The ``nvml`` source on a real NVIDIA GPU, checked against ``nvidia-smi``.

Runs only where a GPU is present (marker ``gpu``); elsewhere it is skipped
with the reason (no ``nvidia-smi``, or NVML does not initialize).
"""

from __future__ import annotations

import csv
import shutil
import subprocess

import pytest

from workbench.gpu.nvml import NvmlSource, open_nvml

pytestmark = pytest.mark.gpu

MIB = 1024**2
FIELDS = (
    "index,name,uuid,memory.total,memory.used,temperature.gpu,power.limit,"
    "utilization.gpu,clocks.mem,mig.mode.current,driver_version"
)


def _number(text: str) -> float | None:
    """An nvidia-smi value; None for "[N/A]", "[Not Supported]" and the like."""
    try:
        return float(text)
    except ValueError:
        return None


@pytest.fixture
def nvml_source():
    if shutil.which("nvidia-smi") is None:
        pytest.skip("needs an NVIDIA GPU: nvidia-smi is not on PATH")
    source = open_nvml()
    if not isinstance(source, NvmlSource):
        pytest.skip(f"needs an NVIDIA GPU: NVML did not initialize ({source.sample().reason})")
    yield source
    source.close()


def test_nvml_readings_match_nvidia_smi(nvml_source):
    out = subprocess.run(
        ["nvidia-smi", f"--query-gpu={FIELDS}", "--format=csv,noheader,nounits"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    rows = [row for row in csv.reader(out.splitlines(), skipinitialspace=True) if row]
    sample = nvml_source.sample()
    assert sample.source == "nvml" and sample.available and not sample.simulated
    assert len(sample.gpus) == len(rows)
    for row, gpu in zip(rows, sample.gpus, strict=True):
        index, name, uuid, total, used, temperature, power_limit, util, mem_clock, mig, driver = row
        assert (gpu.index, gpu.name, gpu.uuid, gpu.state) == (int(index), name, uuid, "ok")
        assert sample.driver_version == driver
        assert gpu.memory_total is not None and abs(gpu.memory_total / MIB - float(total)) <= 1
        # values that move between the two reads get a tolerance
        assert gpu.memory_used is not None and abs(gpu.memory_used / MIB - float(used)) <= max(512, 0.02 * float(total))
        if _number(temperature) is not None:
            assert gpu.temperature is not None and abs(gpu.temperature - float(temperature)) <= 5
        if _number(power_limit) is not None:
            assert gpu.power_limit == pytest.approx(float(power_limit), abs=1.0)
        else:
            assert gpu.power_limit is None
        if _number(util) is not None:
            assert gpu.utilization_gpu is not None and 0 <= gpu.utilization_gpu <= 100
        if _number(mem_clock) is not None:
            assert gpu.memory_clock is not None and gpu.memory_clock > 0
        expected_mig = {"Enabled": True, "Disabled": False}.get(mig)
        assert gpu.mig_mode == expected_mig
        for field in gpu.unsupported:
            assert getattr(gpu, field) is None
