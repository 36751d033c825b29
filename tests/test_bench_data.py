"""The data status benchmark still runs: a tiny repository, one round, the result contract."""

from __future__ import annotations

import pytest

from bench import bench_data


@pytest.mark.slow
def test_bench_data_runs_on_a_tiny_repository(tmp_path, capsys):
    results = bench_data.main(["--files", "200", "--rounds", "1", "--cache-dir", str(tmp_path)])
    printed = capsys.readouterr().out
    assert [r["case"] for r in results] == ["200 files, nothing changed", "200 files, one file changed"]
    contenders = {bench_data.WORKBENCH, bench_data.DVC_CLI, bench_data.DATA_STATUS}
    for res in results:
        assert res["benchmark"] == "data status" and res["unit"] == "s"
        assert set(res["median"]) == set(res["spread"]) == contenders
        assert all(res["median"][name] > 0 for name in contenders)
        assert all(low <= res["median"][name] <= high for name, (low, high) in res["spread"].items())
        assert res["samples"] == {name: 1 for name in contenders}
        assert res["complete"] == {name: True for name in contenders} and not res["ratio_is_lower_bound"]
        assert res["ratio_label"] == "dvc status CLI / Workbench data.status" and res["ratio"] > 0
        assert res["files"] == 200 and res["build"]["built_now"] is True
        assert res["case"] in printed
    assert results[0]["workbench_cache_hits"] == 1  # nothing changed: the kept answer
    assert results[1]["workbench_cache_hits"] == 0  # a change: DVC is asked

    # the repository is kept: a second run does not build it again
    again = bench_data.main(["--files", "200", "--rounds", "1", "--cache-dir", str(tmp_path)])
    assert again[0]["build"]["built_now"] is False
