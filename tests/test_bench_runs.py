"""The runs-table benchmark stays runnable: a small store, one round, the result contract."""

from __future__ import annotations

from bench import bench_runs


def test_runs_benchmark_measures_both_sides_and_checks_they_agree():
    (result,) = bench_runs.main(["--runs", "300", "--rounds", "1", "--mlflow-timeout", "60"])
    assert result["benchmark"] == "runs table" and result["runs"] == 300
    assert set(result["median"]) == {"workbench REST", "mlflow REST", "mlflow python"}
    assert all(value > 0 for value in result["median"].values())
    assert all(result["complete"].values())
    # the benchmark refuses to report a ratio over different answers; here it checked them
    assert result["same_runs_as_mlflow"] is True
    assert result["ratio_label"] == "mlflow REST / workbench REST" and result["ratio"] > 0
