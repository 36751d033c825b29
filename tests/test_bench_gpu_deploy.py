"""The GPU and deploy benchmarks run end to end in quick mode and return the result contract.

Only facts that do not depend on the machine's speed are checked (shapes,
messages received, failed requests, nothing left running); never timings.
"""

from __future__ import annotations

import math
import os

import psutil
import pytest

from bench import bench_deploy, bench_gpu

pytestmark = pytest.mark.slow

CONTRACT = {
    "benchmark",
    "case",
    "unit",
    "median",
    "spread",
    "complete",
    "samples",
    "ratio",
    "ratio_label",
    "ratio_is_lower_bound",
}


def _check_contract(res: dict) -> None:
    assert set(res) >= CONTRACT
    assert set(res["median"]) == set(res["spread"]) == set(res["samples"]) == set(res["complete"])
    assert len(res["median"]) >= 2
    for name, (low, high) in res["spread"].items():
        assert low <= res["median"][name] <= high
        assert res["samples"][name] >= 1
    assert res["ratio"] > 0 and not math.isnan(res["ratio"])
    assert " / " in res["ratio_label"] and res["ratio_is_lower_bound"] is False


def _running(marker: str) -> list[str]:
    """Command lines of other processes that mention ``marker``."""
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        if proc.pid == os.getpid():
            continue
        line = " ".join(proc.info["cmdline"] or [])
        if marker in line:
            found.append(line)
    return found


def test_gpu_benchmark_quick(capsys):
    results = bench_gpu.main(["--quick"])
    printed = capsys.readouterr().out
    assert len(results) == 4
    for res in results:
        _check_contract(res)
        assert res["benchmark"] == "GPU monitoring" and res["case"] in printed
    by_case = {res["case"].split(" (")[0]: res for res in results}

    calls = by_case["NVML calls per sample, 1 vs 50 subscribers"]
    assert calls["unit"] == "calls"
    assert calls["median"]["1 subscriber"] == calls["median"]["50 subscribers"] > 0  # viewers add no NVML calls

    server = by_case["Jupyter server CPU with GPU stream clients at 1 Hz"]
    assert server["unit"] == "% CPU" and set(server["median"]) == {"0 clients", "1 client", "10 clients"}
    assert "10 clients / with 1 client" in server["ratio_label"]
    received = server["messages_received"]
    assert len(received["1 client"]) == 1 and len(received["10 clients"]) == 10
    assert all(count > 0 for counts in received.values() for count in counts)
    assert all(rate > 0.5 for rate in server["messages_per_client_per_s"].values())
    assert server["gpus_per_message"] == [bench_gpu.GPUS] and server["source"] == "fake-nvml"
    assert server["sampler_ran_without_clients"] is True
    assert all(value >= 0 for value in server["median"].values())
    assert not _running("bench-gpu-"), "the benchmark's Jupyter server is still running"


def test_deploy_benchmark_quick_swap(capsys):
    results = bench_deploy.main(["--quick", "--cases", "swap"])
    printed = capsys.readouterr().out
    assert [res["case"].split(",")[0] for res in results] == [
        "request latency p50 across a promotion swap",
        "request latency p99 across a promotion swap",
    ]
    for res in results:
        _check_contract(res)
        assert res["benchmark"] == "deploy" and res["unit"] == "s"
        (baseline, workbench) = res["median"]
        assert baseline.startswith("bare mlflow models serve") and workbench.startswith("Workbench")
        assert res["failed_requests"][workbench] == 0, res["errors"][workbench]
        assert res["failed_requests"][baseline] == 0, res["errors"][baseline]
        assert res["requests"][baseline] > 0 and res["requests"][workbench] > 0
        assert res["requests_during_swap"] > 0, "the stream did not cover the swap"
        assert res["versions_answering"]["1"] > 0 and res["versions_answering"]["2"] > 0
        assert res["only_v2_after_switch"] is True
    p50, p99 = results
    assert p50["samples"][workbench] == p50["requests"][workbench]  # every latency counted once
    assert "p99 latency:" in p99["ratio_label"] and "failed requests: bare 0" in printed
    assert not _running("bench-deploy"), "a process the deploy benchmark started is still running"
