"""Promote and rollback against a real MLflow server: gates, history, audit, faults."""

from __future__ import annotations

import itertools
import threading
import uuid

import pytest
from mlflow import MlflowClient

from tests.servers import MlflowServer
from workbench import audit, registry
from workbench.config import load_settings
from workbench.errors import BackendUnavailable, Conflict, InvalidInput, NotFound

ACCURACY = {"1": 0.80, "2": 0.91, "3": 0.95}


def make_model(uri: str, versions: int = 3, *, dirty_v3: bool = False) -> str:
    """A registered model whose versions come from runs with metrics, params and lineage."""
    client = MlflowClient(uri)
    name = f"promo-{uuid.uuid4().hex[:8]}"
    experiment = client.create_experiment(f"exp-{name}")
    client.create_registered_model(name)
    for i in range(1, versions + 1):
        run = client.create_run(experiment)
        run_id = run.info.run_id
        client.log_metric(run_id, "accuracy", ACCURACY[str(i)])
        client.log_param(run_id, "depth", str(i))
        client.log_param(run_id, "model", "gb")
        client.set_tag(run_id, "workbench.git.commit", f"{i:040d}")
        client.set_tag(run_id, "workbench.git.dirty", "true" if (dirty_v3 and i == 3) else "false")
        client.create_model_version(name, source=f"runs:/{run_id}/model", run_id=run_id)
    return name


@pytest.fixture
def workspace(tmp_path, mlflow_server):
    return load_settings(tmp_path, tracking_uri=mlflow_server.uri)


def aliases(uri: str, name: str) -> dict[str, str]:
    return {a: str(v) for a, v in MlflowClient(uri).get_registered_model(name).aliases.items()}


def test_comparison_against_the_current_holder(workspace, mlflow_server):
    name = make_model(mlflow_server.uri)
    registry.promote(workspace, name, "1")
    comparison = registry.compare_for_promotion(workspace, name, "2")
    assert comparison.current.version == "1" and comparison.candidate.version == "2"
    (accuracy,) = [m for m in comparison.metrics if m.key == "accuracy"]
    assert (accuracy.candidate, accuracy.current) == (0.91, 0.80)
    assert accuracy.delta == pytest.approx(0.11) and not accuracy.lower_is_better  # +0.11 is an improvement
    assert comparison.params_differ == {"depth": {"candidate": "2", "current": "1"}}
    assert comparison.candidate.lineage.commit == f"{2:040d}"
    assert comparison.gates == [] and comparison.gates_passed


def test_promote_and_roll_back_through_the_whole_history(workspace, mlflow_server):
    name = make_model(mlflow_server.uri)
    for version in ("1", "2", "3"):
        move = registry.promote(workspace, name, version)
        assert move.after == version
        assert aliases(mlflow_server.uri, name) == {"champion": version}  # MLflow's own client agrees
    assert [s["by"] for s in registry.alias_history(workspace, name)] == ["1", "2", "3"]
    assert registry.rollback(workspace, name).after == "2"
    assert aliases(mlflow_server.uri, name) == {"champion": "2"}
    assert registry.rollback(workspace, name).after == "1"
    last = registry.rollback(workspace, name)
    assert (last.before, last.after) == ("1", None)
    assert aliases(mlflow_server.uri, name) == {}
    with pytest.raises(Conflict, match="no earlier holder"):
        registry.rollback(workspace, name)
    log = audit.read(workspace, target=f"{name}@champion")
    assert [(e.action, e.before, e.after, e.outcome) for e in log] == [
        ("promote", None, "1", "ok"),
        ("promote", "1", "2", "ok"),
        ("promote", "2", "3", "ok"),
        ("rollback", "3", "2", "ok"),
        ("rollback", "2", "1", "ok"),
        ("rollback", "1", None, "ok"),
        ("rollback", None, None, "refused"),
    ]


def test_gates_refuse_unless_overridden_and_the_override_is_recorded(tmp_path, mlflow_server):
    name = make_model(mlflow_server.uri, dirty_v3=True)
    (tmp_path / "workbench.toml").write_text(
        f'[promotion_gates]\n"{name}" = ["metrics.accuracy >= 0.9", "metrics.accuracy >= current", '
        '"lineage required", "no dirty commit"]\n'
    )
    settings = load_settings(tmp_path, tracking_uri=mlflow_server.uri)
    with pytest.raises(Conflict, match=r"refused by its gates: metrics.accuracy >= 0.9 \(accuracy 0.8 >= 0.9\)"):
        registry.promote(settings, name, "1")
    assert aliases(mlflow_server.uri, name) == {}
    registry.promote(settings, name, "2")
    comparison = registry.compare_for_promotion(settings, name, "3")
    assert [g.passed for g in comparison.gates] == [True, True, True, False]
    with pytest.raises(Conflict, match="no dirty commit"):
        registry.promote(settings, name, "3")
    assert aliases(mlflow_server.uri, name) == {"champion": "2"}
    move = registry.promote(settings, name, "3", override_gates=True)
    assert move.overridden_gates == ["no dirty commit"]
    entries = audit.read(settings, target=f"{name}@champion")
    assert [e.outcome for e in entries] == ["refused", "ok", "refused", "ok"]
    assert entries[-1].detail["overridden_gates"] == ["no dirty commit"]


@pytest.mark.parametrize(
    ("version", "alias", "error"),
    [
        ("9", "champion", NotFound),
        ("@ghost", "champion", NotFound),
        ("1", "latest", InvalidInput),
        ("1", "v2", InvalidInput),
        ("1", "bad alias!", InvalidInput),
    ],
)
def test_bad_input_changes_nothing(workspace, mlflow_server, version, alias, error):
    name = make_model(mlflow_server.uri, versions=1)
    with pytest.raises(error) as info:
        registry.promote(workspace, name, version, alias)
    assert info.value.hint
    assert aliases(mlflow_server.uri, name) == {}
    assert audit.read(workspace)[-1].outcome == "failed"


def test_unknown_model_and_promoting_onto_itself(workspace, mlflow_server):
    with pytest.raises(NotFound):
        registry.promote(workspace, "no-such-model-abc", "1")
    name = make_model(mlflow_server.uri, versions=1)
    registry.promote(workspace, name, "1")
    with pytest.raises(Conflict, match="already holds"):
        registry.promote(workspace, name, "1")
    assert registry.alias_history(workspace, name) == [{"v": None, "by": "1"}]


def test_ten_threads_promoting_one_alias(workspace, mlflow_server):
    name = make_model(mlflow_server.uri)
    outcomes: list[str] = []

    def attempt(i: int) -> None:
        try:
            registry.promote(workspace, name, str(i % 3 + 1))
            outcomes.append("ok")
        except Conflict:
            outcomes.append("refused")

    threads = [threading.Thread(target=attempt, args=(i,)) for i in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    entries = audit.read(workspace, target=f"{name}@champion")
    assert len(entries) == 10 and len(outcomes) == 10
    succeeded = [e for e in entries if e.outcome == "ok"]
    # in order: each successful move starts where the previous one ended
    for previous, following in itertools.pairwise(succeeded):
        assert following.before == previous.after
    final = aliases(mlflow_server.uri, name)["champion"]
    assert final == succeeded[-1].after
    # the rollback chain walks back through exactly those moves
    for entry in reversed(succeeded):
        assert registry.rollback(workspace, name).after == entry.before


def test_tracking_server_dying_mid_promotion_leaves_nothing_half_done(tmp_path, monkeypatch):
    server = MlflowServer(tmp_path / "dying").start()
    try:
        name = make_model(server.uri, versions=2)
        settings = load_settings(tmp_path, tracking_uri=server.uri)
        registry.promote(settings, name, "1")
        real_set_alias = MlflowClient.set_registered_model_alias

        def die_then_set(self, *args, **kwargs):
            server.stop()  # the server goes away between the history write and the alias move
            return real_set_alias(self, *args, **kwargs)

        monkeypatch.setattr(MlflowClient, "set_registered_model_alias", die_then_set)
        with pytest.raises(BackendUnavailable):
            registry.promote(settings, name, "2")
        monkeypatch.undo()
        server.start()
        assert aliases(server.uri, name) == {"champion": "1"}
        assert audit.read(settings)[-1].outcome == "failed"
        # the chain is intact: rollback skips the step that never took effect
        assert registry.rollback(settings, name).after is None
    finally:
        server.stop()
