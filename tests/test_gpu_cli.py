"""``workbench gpu``: the one-shot view, --json, --watch, and the plain "no GPU" state."""

from __future__ import annotations

import json
import subprocess
import sys

import pynvml
import pytest
from click.testing import CliRunner

from tests.fake_pynvml import FakeGpu, FakeNvml
from workbench.gpu.cli import gpu
from workbench.gpu.sampler import close_samplers


@pytest.fixture(autouse=True)
def _no_leftover_samplers(monkeypatch, tmp_path):
    for name in ("WORKBENCH_GPU_SOURCE", "WORKBENCH_GPU_INTERVAL", "WORKBENCH_PROMETHEUS_URL"):
        monkeypatch.delenv(name, raising=False)
    yield
    close_samplers()


def _run(*args: str, workspace) -> tuple[int, str]:
    result = CliRunner().invoke(gpu, [*args, "--workspace", str(workspace)], catch_exceptions=False)
    return result.exit_code, result.output


def test_no_driver_is_a_plain_state_with_the_reason(tmp_path):
    with FakeNvml([], init_error=pynvml.NVML_ERROR_LIBRARY_NOT_FOUND).installed():
        code, out = _run("--json", workspace=tmp_path)
        assert code == 0
        data = json.loads(out)
        assert (data["source"], data["available"], data["simulated"], data["gpus"]) == ("none", False, False, [])
        assert "No NVIDIA driver" in data["reason"]
        code, out = _run(workspace=tmp_path)
    assert code == 0
    assert "No GPU readings: No NVIDIA driver" in out and "Hint:" in out and "Traceback" not in out


def test_nvml_gpus_as_json_and_text_with_na_for_unsupported_fields(tmp_path):
    gpus = [FakeGpu(processes=[(999_999, 1024**3)]), FakeGpu(unsupported={"GetPcieThroughput", "GetMigMode"})]
    with FakeNvml(gpus).installed():
        code, out = _run("--json", "--source", "nvml", workspace=tmp_path)
        assert code == 0
        data = json.loads(out)
        assert [g["uuid"] for g in data["gpus"]] == [g.uuid for g in gpus]
        assert data["gpus"][1]["pcie_rx"] is None and "pcie_rx" in data["gpus"][1]["unsupported"]
        assert data["processes"][0]["pid"] == 999_999 and data["processes"][0]["user"] is None  # no such process
        code, out = _run("--source", "nvml", workspace=tmp_path)
    assert code == 0
    rows = [line for line in out.splitlines() if line.startswith(("0 ", "1 "))]
    assert len(rows) == 3  # two GPUs and one process
    assert "n/a" not in rows[0] and rows[1].count("n/a") == 2  # pcie rx/tx pair and MIG
    assert "37%" in rows[0] and "210/400 W" in rows[0] and "12/80 GiB" in rows[0]


def test_simulated_readings_say_so(tmp_path):
    code, out = _run("--source", "simulated", workspace=tmp_path)
    assert code == 0
    assert "SIMULATED READINGS" in out and out.count("(simulated)") >= 4 + 3  # every GPU and process
    code, out = _run("--json", "--source", "simulated", workspace=tmp_path)
    data = json.loads(out)
    assert data["simulated"] is True and all(g["simulated"] for g in data["gpus"])


def test_watch_prints_one_json_line_per_sample(tmp_path, monkeypatch):
    monkeypatch.setenv("WORKBENCH_GPU_INTERVAL", "0.05")
    code, out = _run("--watch", "--json", "--count", "3", "--source", "simulated", workspace=tmp_path)
    assert code == 0
    lines = [json.loads(line) for line in out.splitlines()]
    assert len(lines) == 3 and lines[0]["timestamp"] < lines[1]["timestamp"] < lines[2]["timestamp"]


def test_fleet_source_without_a_url_says_what_to_set(tmp_path):
    code, out = _run("--source", "prometheus", workspace=tmp_path)
    assert code == 0 and "No Prometheus URL set" in out


def test_an_unknown_source_is_a_usage_error(tmp_path):
    code, out = _run("--source", "gpus-please", workspace=tmp_path)
    assert code == 2 and "gpus-please" in out


def test_this_machine_reports_its_real_gpus_or_none_with_a_reason(tmp_path):
    """No fake: what ``workbench gpu --json`` says here must match whether NVML initializes here."""
    try:
        pynvml.nvmlInit()
        pynvml.nvmlShutdown()
        has_nvml = True
    except pynvml.NVMLError:
        has_nvml = False
    out = subprocess.run(
        [sys.executable, "-m", "workbench.gpu", "--json", "--workspace", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    data = json.loads(out)
    assert data["simulated"] is False
    if has_nvml:
        assert data["source"] == "nvml" and data["available"] and data["gpus"]
    else:
        assert data["source"] == "none" and not data["available"] and data["reason"]
