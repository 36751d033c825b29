"""Registry read side against a real MLflow server."""

from __future__ import annotations

import secrets
import time
import uuid
from pathlib import Path

import pytest
from mlflow import MlflowClient

from tests.servers import MlflowServer, free_port
from workbench import registry
from workbench.config import load_settings
from workbench.errors import BackendUnavailable, InvalidInput, NotFound, WorkbenchError

ROOT = Path(__file__).resolve().parents[1]
CREDENTIALS = ("MLFLOW_TRACKING_TOKEN", "MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD")


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


@pytest.fixture(scope="module")
def auth_server(tmp_path_factory):
    """``mlflow server --app-name basic-auth``: users and passwords, plus a bearer token for the admin.

    Nobody but the admin may read anything (``default_permission = NO_PERMISSIONS``);
    tests/mlflow_token_auth.py adds the bearer token MLflow's client sends for MLFLOW_TRACKING_TOKEN.
    """
    folder = tmp_path_factory.mktemp("mlflow-auth")
    admin = {"user": "admin", "password": secrets.token_urlsafe(16), "token": secrets.token_urlsafe(24)}
    config = folder / "auth.ini"
    config.write_text(
        "[mlflow]\n"
        "default_permission = NO_PERMISSIONS\n"
        f"database_uri = sqlite:///{folder / 'auth.db'}\n"
        f"admin_username = {admin['user']}\n"
        f"admin_password = {admin['password']}\n"
        "authorization_function = tests.mlflow_token_auth:authenticate\n"
        "grant_default_workspace_access = false\n"
    )
    env = {
        "MLFLOW_AUTH_CONFIG_PATH": str(config),
        "MLFLOW_FLASK_SERVER_SECRET_KEY": secrets.token_hex(16),
        "WORKBENCH_TEST_MLFLOW_TOKEN": admin["token"],
        "WORKBENCH_TEST_MLFLOW_ADMIN": admin["user"],
        "PYTHONPATH": str(ROOT),
    }
    server = MlflowServer(folder, app_name="basic-auth", env=env).start()
    yield server, admin
    server.stop()


def _sign_in(monkeypatch, **credentials: str) -> None:
    for name in CREDENTIALS:
        monkeypatch.delenv(name, raising=False)
    for name, value in credentials.items():
        monkeypatch.setenv(f"MLFLOW_TRACKING_{name.upper()}", value)


def test_a_registry_behind_mlflow_authentication_is_read_with_mlflows_own_credentials(
    auth_server, tmp_path, monkeypatch
):
    """The REST read (registry.version_status) signs in the way MLflow's client does, and a refusal says what to set."""
    server, admin = auth_server
    _sign_in(monkeypatch, username=admin["user"], password=admin["password"])
    client = MlflowClient(server.uri)
    experiment = client.create_experiment(f"auth-{uuid.uuid4().hex[:8]}")
    run = client.create_run(experiment).info.run_id
    name = f"guarded-{uuid.uuid4().hex[:8]}"
    client.create_registered_model(name)
    client.create_model_version(name, source=f"runs:/{run}/model", run_id=run)
    client.set_registered_model_alias(name, "champion", "1")
    from mlflow.server import get_app_client

    reader = {"user": "reader", "password": secrets.token_urlsafe(16)}
    get_app_client("basic-auth", tracking_uri=server.uri).create_user(reader["user"], reader["password"])
    settings = load_settings(tmp_path, tracking_uri=server.uri)

    assert registry.version_status(settings, name, "@champion") == ("1", "READY")  # user and password
    _sign_in(monkeypatch, token=admin["token"])
    assert MlflowClient(server.uri).get_model_version_by_alias(name, "champion").version == "1"  # the token works
    assert registry.version_status(settings, name, "@champion") == ("1", "READY")  # bearer token

    refused = {
        "UNAUTHENTICATED": [{}, {"token": "not-the-token"}, {"username": admin["user"], "password": "wrong"}],
        "PERMISSION_DENIED": [{"username": reader["user"], "password": reader["password"]}],
    }
    for code, sign_ins in refused.items():
        for credentials in sign_ins:
            _sign_in(monkeypatch, **credentials)
            for read in (
                lambda: registry.version_status(settings, name, "@champion"),  # REST, no MLflow import
                lambda: registry.get_version(settings, name, "@champion"),  # MLflow's client
            ):
                with pytest.raises(WorkbenchError) as info:
                    read()
                refusal = info.value
                assert f"MLflow at {server.uri} refused the request ({code})" in refusal.message, (credentials, refusal)
                assert all(variable in refusal.hint for variable in CREDENTIALS), refusal.hint
    _sign_in(monkeypatch, username=admin["user"], password=admin["password"])
    assert client.get_model_version_by_alias(name, "champion").version == "1"  # refusals changed nothing


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
