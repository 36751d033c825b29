"""Lineage tags written from a real git + DVC repository into a real MLflow server."""

from __future__ import annotations

import subprocess

import mlflow
import pytest
import yaml
from mlflow import MlflowClient

from workbench import lineage
from workbench.config import load_settings
from workbench.errors import InvalidInput


def sh(cwd, *cmd):
    return subprocess.run(cmd, cwd=cwd, check=True, capture_output=True, text=True).stdout.strip()


@pytest.fixture
def repo(make_repo):
    root = make_repo()
    (root / "data").mkdir()
    (root / "data" / "train.csv").write_text("x,y\n1,2\n3,4\n")
    (root / "data" / "test.csv").write_text("x,y\n5,6\n")
    (root / "params.yaml").write_text("lr: 0.1\n")
    sh(root, "dvc", "add", "-q", "data/train.csv", "data/test.csv")
    sh(root, "git", "add", "-A")
    sh(root, "git", "commit", "-q", "-m", "data")
    return root


def md5_of(root, dvc_file):
    return yaml.safe_load((root / dvc_file).read_text())["outs"][0]["md5"]


@pytest.fixture
def fluent_uri(mlflow_server, monkeypatch):
    """Point MLflow's fluent API at the test server, and back to unset afterwards.

    (MLflow 3's set_tracking_uri also sets MLFLOW_TRACKING_URI; monkeypatch restores it.)
    """
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_server.uri)
    mlflow.set_tracking_uri(mlflow_server.uri)
    yield mlflow_server.uri
    mlflow.set_tracking_uri(None)


def test_record_tags_the_active_run_and_reads_back(repo, mlflow_server, fluent_uri):
    mlflow.set_experiment("lineage-tests")
    with mlflow.start_run() as run:
        recorded = lineage.record(workspace=repo)
    tags = MlflowClient(mlflow_server.uri).get_run(run.info.run_id).data.tags
    assert tags["workbench.git.commit"] == sh(repo, "git", "rev-parse", "HEAD")
    assert tags["workbench.git.branch"] == "main"
    assert tags["workbench.git.dirty"] == "false"
    assert tags["workbench.data_dirty"] == "false"
    assert tags["workbench.data.data/train.csv"] == md5_of(repo, "data/train.csv.dvc")
    assert tags["workbench.data.data/test.csv"] == md5_of(repo, "data/test.csv.dvc")
    assert len(tags["workbench.params.sha256"]) == 64
    assert lineage.lineage_from_tags(tags) == recorded


def test_dirty_code_and_dirty_data_are_flagged(repo):
    (repo / "params.yaml").write_text("lr: 0.2\n")  # a tracked git file changes
    (repo / "data" / "train.csv").write_text("x,y\n9,9\n")  # DVC-tracked data changes, not committed
    found = lineage.collect(load_settings(repo))
    assert found.dirty is True
    assert found.data_dirty is True
    # the hash recorded is the committed one: the flag says it does not describe the data used
    assert found.data["data/train.csv"] == md5_of(repo, "data/train.csv.dvc")


def test_inputs_narrow_the_recorded_data(repo, mlflow_server):
    client = MlflowClient(mlflow_server.uri)
    run = client.create_run(client.create_experiment("lineage-inputs"))
    settings = load_settings(repo, tracking_uri=mlflow_server.uri)
    recorded = lineage.record(run.info.run_id, settings=settings, inputs=["data/train.csv"])
    assert list(recorded.data) == ["data/train.csv"]
    tags = client.get_run(run.info.run_id).data.tags
    assert "workbench.data.data/test.csv" not in tags
    with pytest.raises(InvalidInput, match="Not tracked by DVC"):
        lineage.record(run.info.run_id, settings=settings, inputs=["data/nope.csv"])


def test_no_active_run_is_a_clear_error(repo):
    assert mlflow.active_run() is None
    with pytest.raises(InvalidInput, match="No MLflow run is active"):
        lineage.record(workspace=repo)


def test_runs_logged_without_workbench_fall_back_to_mlflow_git_tag():
    found = lineage.lineage_from_tags({"mlflow.source.git.commit": "abc123"})
    assert found.commit == "abc123" and found.source == "mlflow"
    assert lineage.lineage_from_tags({"team": "vision"}) is None


def test_folder_without_git_or_dvc(tmp_path):
    found = lineage.collect(load_settings(tmp_path))
    assert found.commit is None and found.data == {} and found.dirty is None
