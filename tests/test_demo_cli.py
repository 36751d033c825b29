"""`workbench demo` builds a real workspace; the CLI reports it as git, DVC and MLflow see it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from mlflow import MlflowClient

from tests.conftest import WORKBENCH


def wb(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([WORKBENCH, *args], capture_output=True, text=True, cwd=cwd, timeout=300)


def wb_json(*args: str):
    done = wb(*args, "--json")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


@pytest.fixture(scope="module")
def demo(demo_workspace):
    return demo_workspace


def git(folder: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=folder, capture_output=True, text=True, check=True).stdout.strip()


def test_status_reports_data_experiments_and_models(demo):
    status = wb_json("status", "--workspace", str(demo))
    assert status["git"] and status["dvc"] and not status["errors"]
    assert {e["name"]: e["runs"] for e in status["experiments"]}["wine-quality"] == 6
    model = next(m for m in status["models"] if m["name"] == "wine-classifier")
    assert model["aliases"] == {"champion": "2"} and model["latest_version"] == "2"
    paths = {e["path"] for e in status["data"]["entries"]}
    assert {"data/wine.csv", "data/prepared", "models/model.pkl"} <= paths


def test_runs_match_mlflow_own_client(demo):
    page = wb_json("runs", "--workspace", str(demo), "--order-by", "metrics.accuracy DESC")
    tracking_uri = f"sqlite:///{demo.resolve() / '.workbench' / 'mlflow.db'}"
    theirs = MlflowClient(tracking_uri).search_runs(
        [MlflowClient(tracking_uri).get_experiment_by_name("wine-quality").experiment_id],
        order_by=["metrics.accuracy DESC"],
    )
    assert [r["run_id"] for r in page["runs"]] == [r.info.run_id for r in theirs]
    assert len(page["runs"]) == 6
    for run in page["runs"]:
        assert len(run["metrics"]) >= 5  # accuracy, f1 and three histories' last values
        assert run["tags"]["workbench.git.commit"]
    # metric histories have many steps
    history = MlflowClient(tracking_uri).get_metric_history(page["runs"][0]["run_id"], "val_accuracy")
    assert len(history) >= 40


def test_lineage_ties_runs_to_both_data_versions(demo):
    page = wb_json("runs", "--workspace", str(demo))
    hashes = set()
    for run in page["runs"]:
        commit = run["tags"]["workbench.git.commit"]
        assert git(demo, "cat-file", "-t", commit) == "commit"
        dvc_file = yaml.safe_load(git(demo, "show", f"{commit}:data/wine.csv.dvc"))
        assert run["tags"]["workbench.data.data/wine.csv"] == dvc_file["outs"][0]["md5"]
        hashes.add(dvc_file["outs"][0]["md5"])
    assert len(hashes) == 2


def test_dvc_sees_the_same_state(demo):
    env = dict(os.environ, PATH=str(Path(sys.executable).parent) + os.pathsep + os.environ["PATH"])
    local = subprocess.run(["dvc", "status"], cwd=demo, capture_output=True, text=True, env=env)
    assert local.returncode == 0 and "up to date" in local.stdout
    cloud = subprocess.run(["dvc", "status", "-c"], cwd=demo, capture_output=True, text=True, env=env)
    assert cloud.returncode == 0 and "in sync" in cloud.stdout
    # both versions of the data are in the remote
    remote = demo / ".workbench" / "dvc-remote"
    for rev in ("HEAD", "HEAD~2"):
        md5 = yaml.safe_load(git(demo, "show", f"{rev}:data/wine.csv.dvc"))["outs"][0]["md5"]
        assert (remote / "files" / "md5" / md5[:2] / md5[2:]).is_file()
    assert git(demo, "status", "--porcelain") == ""


def test_data_diff_between_the_two_data_versions(demo):
    diff = wb_json("data", "diff", "HEAD~2", "HEAD", "--workspace", str(demo))
    modified = {c["path"] for c in diff["changes"] if c["change"] == "modified"}
    assert "data/wine.csv" in modified
    text = wb("data", "diff", "HEAD~2", "HEAD", "--workspace", str(demo))
    assert text.returncode == 0 and "data/wine.csv" in text.stdout


def test_text_output_is_readable(demo):
    done = wb("status", "--workspace", str(demo))
    assert done.returncode == 0
    assert "wine-quality" in done.stdout and "@champion -> v2" in done.stdout
    models = wb("models", "wine-classifier", "--workspace", str(demo))
    assert "v2" in models.stdout and "@champion" in models.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("runs", "--filter", "metrics.accuracy >>> 1"), "'>>>'"),
        (("runs", "--experiment", "no-such-experiment"), "no-such-experiment"),
        (("models", "no-such-model"), "no-such-model"),
        (("data", "diff", "no-such-rev", "HEAD"), "no-such-rev"),
    ],
)
def test_bad_input_is_an_error_with_a_hint_not_a_traceback(demo, args, message):
    before = git(demo, "status", "--porcelain"), (demo / ".workbench" / "mlflow.db").stat().st_size
    done = wb(*args, "--workspace", str(demo))
    assert done.returncode == 1
    assert "Error:" in done.stderr and "Hint:" in done.stderr and message in done.stderr
    assert "Traceback" not in done.stderr + done.stdout
    assert (git(demo, "status", "--porcelain"), (demo / ".workbench" / "mlflow.db").stat().st_size) == before


def test_demo_never_replaces_a_folder_it_did_not_build(tmp_path):
    other = tmp_path / "notes"
    other.mkdir()
    (other / "keep.txt").write_text("mine")
    refused = wb("demo", "--no-launch", "--replace", "--dir", str(other))
    assert refused.returncode == 1 and "not empty" in refused.stderr
    assert (other / "keep.txt").read_text() == "mine"


def test_plain_folder_gets_experiment_views_and_a_hint_for_data(tmp_path):
    status = wb_json("status", "--workspace", str(tmp_path))
    assert status["git"] is False and status["dvc"] is False
    assert "dvc init" in status["errors"]["data"]["hint"]
    assert status["experiments"] == [] and status["models"] == []
    assert not (tmp_path / ".workbench").exists()


def test_promote_rollback_and_audit_from_the_command_line(demo):
    tracking_uri = f"sqlite:///{demo.resolve() / '.workbench' / 'mlflow.db'}"
    asked = subprocess.run(
        [WORKBENCH, "promote", "wine-classifier", "1", "--workspace", str(demo)],
        input="n\n",
        capture_output=True,
        text=True,
    )
    assert asked.returncode == 1 and "cancelled" in asked.stderr
    assert "accuracy" in asked.stdout and "now: v2" in asked.stdout  # the comparison was shown first
    assert str(MlflowClient(tracking_uri).get_model_version_by_alias("wine-classifier", "champion").version) == "2"

    done = wb("promote", "wine-classifier", "1", "--yes", "--workspace", str(demo))
    try:
        assert done.returncode == 0, done.stderr
        assert "v2 -> v1" in done.stdout
        assert str(MlflowClient(tracking_uri).get_model_version_by_alias("wine-classifier", "champion").version) == "1"
    finally:
        back = wb("rollback", "wine-classifier", "--workspace", str(demo))
    assert back.returncode == 0 and "v1 -> v2" in back.stdout
    assert str(MlflowClient(tracking_uri).get_model_version_by_alias("wine-classifier", "champion").version) == "2"

    entries = wb_json("audit", "--workspace", str(demo))
    assert [(e["action"], e["before"], e["after"]) for e in entries[-2:]] == [
        ("promote", "2", "1"),
        ("rollback", "1", "2"),
    ]
    assert "promote" in wb("audit", "--workspace", str(demo)).stdout
