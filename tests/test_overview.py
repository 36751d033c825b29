"""The workspace at a glance on the real demo workspace, checked against MLflow's own client."""

from __future__ import annotations

from mlflow import MlflowClient

from workbench import overview
from workbench.config import load_settings


def test_recent_best_and_champions_agree_with_mlflow_on_the_demo_workspace(demo_workspace):
    settings = load_settings(demo_workspace)
    client = MlflowClient(tracking_uri=settings.tracking_uri, registry_uri=settings.registry_uri)
    experiment = client.get_experiment_by_name("wine-quality")
    runs = client.search_runs([experiment.experiment_id], order_by=["metrics.accuracy DESC"])

    recent = overview.recent_runs(settings)
    assert recent.total == len(runs) == 6 and not recent.capped
    assert recent.by_status == {"FINISHED": 6}
    assert sum(n for _day, n in recent.per_day) == 6 and len(recent.per_day) == 7

    (best,) = overview.best_runs(settings)
    assert (best.experiment, best.metric) == ("wine-quality", "accuracy")
    assert best.value == runs[0].data.metrics["accuracy"]

    (model,) = overview.champions(settings)
    assert model.version == str(client.get_registered_model("wine-classifier").aliases["champion"])
