"""Registry read side against a real MLflow server."""

from __future__ import annotations

import time
import uuid

import pytest
from mlflow import MlflowClient

from tests.servers import free_port
from workbench import registry
from workbench.config import load_settings
from workbench.errors import BackendUnavailable, InvalidInput, NotFound


@pytest.fixture(scope="module")
def model(mlflow_server, tmp_path_factory):
    """A registered model with three versions, @champion on v2 and @challenger on v3."""
    client = MlflowClient(mlflow_server.uri)
    name = f"reg-{uuid.uuid4().hex[:8]}"
    experiment = client.create_experiment(f"exp-{name}")
    client.create_registered_model(name, description="test model")
    runs = []
    for i in range(3):
        run = client.create_run(experiment, run_name=f"train-{i}")
        client.log_metric(run.info.run_id, "accuracy", 0.8 + i / 100)
        client.log_param(run.info.run_id, "depth", str(i + 2))
        client.set_tag(run.info.run_id, "workbench.git.commit", f"{i}" * 40)
        client.set_tag(run.info.run_id, "workbench.data.data/train.csv", f"md5-{i}")
        client.create_model_version(name, source=f"runs:/{run.info.run_id}/model", run_id=run.info.run_id)
        runs.append(run.info.run_id)
    client.set_registered_model_alias(name, "champion", "2")
    client.set_registered_model_alias(name, "challenger", "3")
    settings = load_settings(tmp_path_factory.mktemp("ws"), tracking_uri=mlflow_server.uri)
    return settings, name, runs


def test_models_list_aliases_from_the_registered_model(model):
    settings, name, _ = model
    found = {m.name: m for m in registry.list_models(settings)}
    assert found[name].aliases == {"champion": "2", "challenger": "3"}
    assert found[name].latest_version == "3"
    assert found[name].description == "test model"


def test_model_detail_versions_newest_first_with_alias_chips(model):
    settings, name, runs = model
    detail = registry.get_model(settings, name)
    assert [v.version for v in detail.versions] == ["3", "2", "1"]
    assert {v.version: v.aliases for v in detail.versions} == {"3": ["challenger"], "2": ["champion"], "1": []}
    assert [v.run_id for v in detail.versions] == runs[::-1]


def test_version_with_run_metrics_and_lineage(model):
    settings, name, runs = model
    info = registry.get_version(settings, name, "@champion")
    assert info.version == "2" and info.aliases == ["champion"]
    assert info.metrics == {"accuracy": pytest.approx(0.81)}
    assert info.params == {"depth": "3"}
    assert info.lineage.commit == "1" * 40
    assert info.lineage.data == {"data/train.csv": "md5-1"}
    assert registry.get_version(settings, name, "v1").run_id == runs[0]
    assert registry.resolve_version(settings, name, "champion") == "2"


def test_version_status_reads_the_same_over_rest_and_through_mlflows_client(model, mlflow_server, tmp_path):
    """A server registry is read over REST (no MLflow import), a local store with MLflow's client: same answers."""
    settings, name, _ = model
    local = load_settings(tmp_path, tracking_uri=mlflow_server.db_uri)  # the same store, read as a file
    for reader in (settings, local):
        assert registry.version_status(reader, name, "@champion") == ("2", "READY")
        assert registry.version_status(reader, name, "challenger") == ("3", "READY")
        assert registry.version_status(reader, name, "v1") == ("1", "READY")
    for ref, message in (("@nobody", "has no alias 'nobody'"), ("99", "has no version 99")):
        refusals = []
        for reader in (settings, local):
            with pytest.raises(NotFound) as info:
                registry.version_status(reader, name, ref)
            refusals.append((info.value.message, info.value.hint))
        assert refusals[0] == refusals[1] and message in refusals[0][0], refusals
    assert refusals[0][1] == f"`workbench models {name}` lists its versions."
    with pytest.raises(NotFound, match="Its aliases: challenger, champion"):
        registry.version_status(settings, name, "@nobody")
    with pytest.raises(NotFound, match="model 'no-such-model-xyz'"):
        registry.version_status(settings, "no-such-model-xyz", "@champion")


@pytest.mark.parametrize(
    ("call", "error"),
    [
        (lambda s, n: registry.get_model(s, "no-such-model-xyz"), NotFound),
        (lambda s, n: registry.get_version(s, n, "99"), NotFound),
        (lambda s, n: registry.get_version(s, n, "@nobody"), NotFound),
        (lambda s, n: registry.get_model(s, "bad'name"), InvalidInput),
        (lambda s, n: registry.get_version(s, n, "@"), InvalidInput),
    ],
)
def test_bad_names_are_clear_errors(model, call, error):
    settings, name, _ = model
    with pytest.raises(error) as info:
        call(settings, name)
    assert info.value.message and info.value.hint


def test_refused_tracking_uri_fails_fast(tmp_path):
    settings = load_settings(tmp_path, tracking_uri=f"http://127.0.0.1:{free_port()}")
    started = time.monotonic()
    with pytest.raises(BackendUnavailable) as info:
        registry.list_models(settings)
    assert time.monotonic() - started < 5
    assert "did not answer" in info.value.message and "MLFLOW_TRACKING_URI" in info.value.hint


def test_empty_workspace_reads_without_creating_a_store(tmp_path):
    settings = load_settings(tmp_path)
    assert registry.list_models(settings) == []
    with pytest.raises(NotFound):
        registry.get_model(settings, "anything")
    assert not (tmp_path / ".workbench").exists()
