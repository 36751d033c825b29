"""The ``nvml`` source against the narrow pynvml fake (tests/fake_pynvml.py)."""

from __future__ import annotations

import pynvml
import pytest

from tests.fake_pynvml import FakeGpu, FakeNvml
from workbench.config import load_settings
from workbench.gpu.nvml import NvmlSource, open_nvml
from workbench.gpu.source import NoneSource, open_source

GIB = 1024**3


def test_normal_readings_have_every_field_in_its_unit():
    gpus = [FakeGpu(), FakeGpu(name="NVIDIA H100 80GB HBM3", util_gpu=99, temperature=71, mig=(1, 1))]
    with FakeNvml(gpus).installed() as fake:
        source = open_nvml()
        assert isinstance(source, NvmlSource)
        sample = source.sample()
        source.close()
    assert fake.initialized is False  # close() shut NVML down
    assert sample.source == "nvml" and sample.available and not sample.simulated
    assert sample.reason is None and sample.errors == {}
    assert sample.driver_version == "550.54.15"
    first, second = sample.gpus
    assert (first.index, first.name, first.uuid, first.state) == (0, "NVIDIA A100-SXM4-80GB", gpus[0].uuid, "ok")
    assert first.utilization_gpu == 37.0 and first.utilization_memory == 12.0
    assert first.memory_used == 12 * GIB and first.memory_total == 80 * GIB
    assert first.temperature == 54.0
    assert first.power == pytest.approx(210.5) and first.power_limit == pytest.approx(400.0)  # mW -> W
    assert (first.sm_clock, first.memory_clock) == (1410, 1593)
    assert (first.pcie_rx, first.pcie_tx) == (1200, 300)
    assert first.mig_mode is False and first.unsupported == []
    assert (second.name, second.utilization_gpu, second.temperature, second.mig_mode) == (
        "NVIDIA H100 80GB HBM3",
        99.0,
        71.0,
        True,
    )


def test_unsupported_queries_read_none_and_are_listed_while_the_rest_is_read():
    gpu = FakeGpu(unsupported={"GetPcieThroughput", "GetMigMode", "GetEnforcedPowerLimit", "GetTemperature"})
    with FakeNvml([gpu]).installed():
        source = open_nvml()
        reading = source.sample().gpus[0]
        source.close()
    assert reading.state == "ok" and reading.error is None
    assert sorted(reading.unsupported) == ["mig_mode", "pcie_rx", "pcie_tx", "power_limit", "temperature"]
    for name in ("pcie_rx", "pcie_tx", "power_limit", "temperature"):
        assert getattr(reading, name) is None
    assert reading.mig_mode is None
    assert reading.utilization_gpu == 37.0 and reading.power == pytest.approx(210.5)


def test_one_failing_gpu_is_marked_and_the_others_keep_sampling():
    broken = FakeGpu(failing={"GetUtilizationRates": pynvml.NVML_ERROR_UNKNOWN})
    gpus = [FakeGpu(), broken, FakeGpu()]
    with FakeNvml(gpus).installed():
        source = open_nvml()
        sample = source.sample()
        source.close()
    assert sample.available
    assert [g.state for g in sample.gpus] == ["ok", "error", "ok"]
    bad = sample.gpus[1]
    assert bad.utilization_gpu is None and bad.utilization_memory is None
    assert "utilization_gpu" in bad.error and "Unknown" in bad.error
    assert bad.memory_used == 12 * GIB  # the other queries of that GPU were still read
    assert set(sample.errors) == {"1"} and sample.errors["1"] == bad.error
    assert all(g.utilization_gpu == 37.0 for g in (sample.gpus[0], sample.gpus[2]))


def test_a_gpu_lost_while_sampling_is_reported_and_sampling_goes_on():
    doomed, survivor = FakeGpu(processes=[(4242, GIB)]), FakeGpu(processes=[(4343, GIB)])
    with FakeNvml([doomed, survivor]).installed() as fake:
        source = open_nvml()
        before = source.sample()
        doomed.lost = True  # falls off the bus
        during = source.sample()
        again = source.sample()  # its handle is looked up afresh and fails again: still reported
        fake.gpus.remove(doomed)  # then gone from the device list altogether
        after = source.sample()
        source.close()
    assert [g.state for g in before.gpus] == ["ok", "ok"]
    lost = during.gpus[0]
    assert (lost.index, lost.state, lost.uuid, lost.name) == (0, "lost", doomed.uuid, doomed.name)
    assert "lost" in lost.error and during.errors == {"0": lost.error}
    assert during.gpus[1].state == "ok" and during.gpus[1].utilization_gpu == 37.0
    assert [p.pid for p in during.processes] == [4343]
    assert [(g.uuid, g.state) for g in again.gpus] == [(doomed.uuid, "lost"), (survivor.uuid, "ok")]
    # the survivor is now device 0; the vanished one is still reported (at its last index), not dropped
    assert {g.uuid: (g.index, g.state) for g in after.gpus} == {survivor.uuid: (0, "ok"), doomed.uuid: (0, "lost")}
    assert after.available and "disappeared" in after.errors["0"]


def test_processes_carry_memory_and_utilization_where_the_driver_has_them():
    gpu = FakeGpu(processes=[(4242, 3 * GIB), (4343, None)], process_util=[(4242, 55, 20)])
    with FakeNvml([gpu]).installed():
        source = open_nvml()
        procs = {p.pid: p for p in source.sample().processes}
        source.close()
    assert procs[4242].used_memory == 3 * GIB and procs[4242].sm_utilization == 55.0
    assert procs[4242].memory_utilization == 20.0
    assert procs[4343].used_memory is None and procs[4343].sm_utilization is None
    assert all(p.gpu_index == 0 and p.gpu_uuid == gpu.uuid for p in procs.values())


@pytest.mark.parametrize(
    ("code", "words"),
    [
        (pynvml.NVML_ERROR_LIBRARY_NOT_FOUND, "No NVIDIA driver"),
        (pynvml.NVML_ERROR_DRIVER_NOT_LOADED, "not loaded"),
        (pynvml.NVML_ERROR_NO_PERMISSION, "No permission"),
    ],
)
def test_nvml_that_does_not_initialize_gives_the_none_source_with_the_reason(code, words, tmp_path):
    with FakeNvml([FakeGpu()], init_error=code).installed() as fake:
        for source in (open_nvml(), open_source(load_settings(tmp_path), "auto")):
            assert isinstance(source, NoneSource)
            sample = source.sample()
            assert (sample.source, sample.available, sample.simulated) == ("none", False, False)
            assert words in sample.reason and sample.gpus == []
    assert set(fake.calls) == {"nvmlInit"}  # nothing else was tried


def test_a_driver_that_stops_answering_makes_the_sample_unavailable_not_an_exception():
    with FakeNvml([FakeGpu()]).installed() as fake:
        source = open_nvml()
        fake.initialized = False  # every call now raises NVMLError_Uninitialized
        sample = source.sample()
    assert not sample.available and "NVML stopped answering" in sample.reason
