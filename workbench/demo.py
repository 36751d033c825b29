"""Build a demo workspace from nothing: git + DVC + MLflow, all real.

The workspace holds scikit-learn's wine data set in two versions (both pushed
to a local DVC remote), a ``prepare -> train -> evaluate`` pipeline with
``params.yaml`` and metrics, six MLflow runs with metric histories and lineage
tags (three on each data version), and a registered model ``wine-classifier``
with two versions and a ``champion`` alias.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from workbench import lineage
from workbench.config import load_settings
from workbench.errors import Conflict, WorkbenchError
from workbench.records import to_dict

MODEL_NAME = "wine-classifier"
EXPERIMENT = "wine-quality"

PARAMS_YAML = """\
prepare:
  test_size: 0.3
  seed: 7
train:
  n_estimators: 60
  learning_rate: 0.1
  max_depth: 2
"""

DVC_YAML = """\
stages:
  prepare:
    cmd: python src/prepare.py
    deps: [src/prepare.py, data/wine.csv]
    params: [prepare]
    outs: [data/prepared]
  train:
    cmd: python src/train.py
    deps: [src/train.py, data/prepared]
    params: [train]
    outs: [models/model.pkl]
  evaluate:
    cmd: python src/evaluate.py
    deps: [src/evaluate.py, models/model.pkl, data/prepared]
    metrics:
      - metrics.json:
          cache: false
"""

PREPARE_PY = """\
import pathlib

import pandas as pd
import yaml
from sklearn.model_selection import train_test_split

params = yaml.safe_load(open("params.yaml"))["prepare"]
frame = pd.read_csv("data/wine.csv")
train, test = train_test_split(
    frame, test_size=params["test_size"], random_state=params["seed"], stratify=frame["target"]
)
out = pathlib.Path("data/prepared")
out.mkdir(parents=True, exist_ok=True)
train.to_csv(out / "train.csv", index=False)
test.to_csv(out / "test.csv", index=False)
"""

TRAIN_PY = """\
import pathlib
import pickle

import pandas as pd
import yaml
from sklearn.ensemble import GradientBoostingClassifier

params = yaml.safe_load(open("params.yaml"))["train"]
train = pd.read_csv("data/prepared/train.csv")
model = GradientBoostingClassifier(random_state=0, **params)
model.fit(train.drop(columns="target"), train["target"])
pathlib.Path("models").mkdir(exist_ok=True)
pickle.dump(model, open("models/model.pkl", "wb"))
"""

EVALUATE_PY = """\
import json
import pickle

import pandas as pd
from sklearn.metrics import accuracy_score, f1_score

model = pickle.load(open("models/model.pkl", "rb"))
test = pd.read_csv("data/prepared/test.csv")
predicted = model.predict(test.drop(columns="target"))
json.dump(
    {
        "accuracy": accuracy_score(test["target"], predicted),
        "f1": f1_score(test["target"], predicted, average="macro"),
    },
    open("metrics.json", "w"),
    indent=2,
)
"""

# (n_estimators, learning_rate, max_depth) for the three runs on each data version
RUN_GRID = [(40, 0.05, 1), (60, 0.1, 2), (80, 0.2, 3)]


@dataclass
class DemoSummary:
    """What ``workbench demo`` built."""

    workspace: Path
    tracking_uri: str
    dvc_remote: Path
    data_commits: dict[str, str]  # data version -> git commit
    experiment: str
    runs: list[str]
    model: str
    versions: list[str]
    champion: str
    seconds: float
    next_steps: list[str] = field(default_factory=list)


def _run(cmd: list[str], cwd: Path) -> str:
    env = dict(os.environ, DVC_NO_ANALYTICS="1")
    # `python` in dvc.yaml and the `dvc` command are this environment's own
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    done = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, env=env)
    if done.returncode != 0:
        raise WorkbenchError(
            f"`{' '.join(cmd)}` failed in {cwd}: {(done.stderr or done.stdout).strip()[-800:]}",
            "Check that git and dvc work in this environment (`make demo` installs them).",
        )
    return done.stdout.strip()


def _write(root: Path, rel: str, text: str) -> None:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def _wine_frame(version: int):
    from sklearn.datasets import load_wine

    frame = load_wine(as_frame=True).frame
    if version == 1:
        # the first release of the data set: two thirds of the samples
        frame = frame.sample(frac=2 / 3, random_state=1).sort_index()
    return frame


def _commit_data_version(root: Path, version: int) -> str:
    _wine_frame(version).to_csv(root / "data" / "wine.csv", index=False)
    _run(["dvc", "add", "-q", "data/wine.csv"], root)
    if (root / "dvc.yaml").exists():
        _run(["dvc", "repro", "-q"], root)
    _run(["git", "add", "-A"], root)
    _run(["git", "commit", "-q", "-m", f"wine data v{version}"], root)
    _run(["dvc", "push", "-q"], root)
    return _run(["git", "rev-parse", "HEAD"], root)


def _log_runs(settings, version: int, frame, say: Callable[[str], None]) -> list[tuple[str, float, object]]:
    """Train and log three runs on one data version; return (run_id, accuracy, model)."""
    import mlflow
    from mlflow.entities import Metric
    from sklearn.ensemble import GradientBoostingClassifier
    from sklearn.metrics import accuracy_score, classification_report, f1_score
    from sklearn.model_selection import train_test_split

    x, y = frame.drop(columns="target"), frame["target"]
    x_train, x_test, y_train, y_test = train_test_split(x, y, test_size=0.3, random_state=7, stratify=y)
    tags = lineage.collect(settings).to_tags()
    client = mlflow.MlflowClient()
    results = []
    for n_estimators, learning_rate, max_depth in RUN_GRID:
        name = f"gb-d{max_depth}-lr{learning_rate}-data-v{version}"
        with mlflow.start_run(run_name=name) as run:
            model = GradientBoostingClassifier(
                n_estimators=n_estimators, learning_rate=learning_rate, max_depth=max_depth, random_state=0
            ).fit(x_train, y_train)
            now = int(time.time() * 1000)
            history = []
            for step, (train_pred, test_pred) in enumerate(
                zip(model.staged_predict(x_train), model.staged_predict(x_test), strict=True)
            ):
                history.append(Metric("train_accuracy", accuracy_score(y_train, train_pred), now + step, step))
                history.append(Metric("val_accuracy", accuracy_score(y_test, test_pred), now + step, step))
            for step, loss in enumerate(model.train_score_):
                history.append(Metric("train_loss", float(loss), now + step, step))
            client.log_batch(run.info.run_id, metrics=history)
            predicted = model.predict(x_test)
            accuracy = accuracy_score(y_test, predicted)
            mlflow.log_params(
                {
                    "model": "GradientBoostingClassifier",
                    "n_estimators": n_estimators,
                    "learning_rate": learning_rate,
                    "max_depth": max_depth,
                    "data_version": f"v{version}",
                }
            )
            mlflow.log_metrics({"accuracy": accuracy, "f1": f1_score(y_test, predicted, average="macro")})
            mlflow.log_dict(classification_report(y_test, predicted, output_dict=True), "classification_report.json")
            mlflow.set_tags(tags)
            # float columns in the example: a served model then accepts any number
            results.append((run.info.run_id, accuracy, model, x_test.head(3).astype("float64")))
            say(f"  run {name}: accuracy {accuracy:.3f}")
    return results


MARKER = Path(".workbench") / "demo.json"


def build(target: str | os.PathLike[str], say: Callable[[str], None] = print, *, replace: bool = False) -> DemoSummary:
    """Create the demo workspace in ``target`` (a new or empty folder).

    ``replace`` rebuilds a folder that holds an earlier demo workspace (and
    nothing else: a folder without the demo's marker is never removed).
    """
    started = time.monotonic()
    root = Path(target).expanduser().resolve()
    if root.exists() and any(root.iterdir()):
        if not (replace and (root / MARKER).is_file()):
            raise Conflict(
                f"{root} already exists and is not empty",
                "Pass an empty or new folder with --dir"
                + (
                    " (--replace only replaces an earlier demo workspace)."
                    if replace
                    else ", or --replace an earlier demo."
                ),
            )
        say(f"Replacing the earlier demo workspace in {root}")
        shutil.rmtree(root)
    root.mkdir(parents=True, exist_ok=True)
    say(f"Building the demo workspace in {root}")

    _run(["git", "init", "-q", "-b", "main"], root)
    _ensure_git_identity(root)
    _write(root, ".gitignore", ".workbench/\n__pycache__/\n")
    _run(["dvc", "init", "-q"], root)
    remote = root / ".workbench" / "dvc-remote"
    remote.mkdir(parents=True)
    _run(["dvc", "remote", "add", "-q", "-d", "local", str(remote)], root)
    (root / "data").mkdir()
    _run(["git", "add", "-A"], root)
    _run(["git", "commit", "-q", "-m", "Initialize git and DVC"], root)

    say("Data v1 (2/3 of the wine samples): dvc add, commit, push")
    commits = {"v1": _commit_data_version(root, 1)}
    _write(root, "params.yaml", PARAMS_YAML)
    _write(root, "dvc.yaml", DVC_YAML)
    _write(root, "src/prepare.py", PREPARE_PY)
    _write(root, "src/train.py", TRAIN_PY)
    _write(root, "src/evaluate.py", EVALUATE_PY)
    _write(
        root,
        "README.md",
        textwrap.dedent(
            f"""\
            # Workbench demo workspace

            Wine data (scikit-learn) tracked with DVC, a `prepare -> train -> evaluate`
            pipeline, MLflow runs in `.workbench/mlflow.db` and a registered model
            `{MODEL_NAME}` whose `champion` alias points at the best version.
            """
        ),
    )
    say("Pipeline prepare -> train -> evaluate: dvc repro, commit")
    _run(["dvc", "repro", "-q"], root)
    _run(["git", "add", "-A"], root)
    _run(["git", "commit", "-q", "-m", "Add the prepare/train/evaluate pipeline"], root)
    _run(["dvc", "push", "-q"], root)

    settings = load_settings(root)
    from workbench import _mlflow

    _mlflow.client(settings, for_write=True)  # checks a configured server answers; creates the store folder
    import mlflow

    previous_uri = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(settings.tracking_uri)
    mlflow.set_registry_uri(settings.registry_uri)
    try:
        with _mlflow.mlflow_errors(settings.tracking_uri, "demo"):
            # artifacts stay inside the workspace, wherever the process runs
            mlflow.create_experiment(EXPERIMENT, artifact_location=str(Path(settings.artifact_location) / EXPERIMENT))
            mlflow.set_experiment(EXPERIMENT)
            say(f"MLflow runs in {settings.tracking_uri}")
            runs_v1 = _log_runs(settings, 1, _wine_frame(1), say)
            say("Data v2 (all samples): dvc add, repro, commit, push")
            commits["v2"] = _commit_data_version(root, 2)
            settings = load_settings(root)
            runs_v2 = _log_runs(settings, 2, _wine_frame(2), say)
            versions = [_register(best, settings) for best in (_best(runs_v1), _best(runs_v2))]
            client = mlflow.MlflowClient()
            client.set_registered_model_alias(MODEL_NAME, "champion", versions[-1])
    finally:
        mlflow.set_tracking_uri(previous_uri)

    summary = DemoSummary(
        workspace=root,
        tracking_uri=settings.tracking_uri,
        dvc_remote=remote,
        data_commits=commits,
        experiment=EXPERIMENT,
        runs=[r[0] for r in runs_v1 + runs_v2],
        model=MODEL_NAME,
        versions=versions,
        champion=versions[-1],
        seconds=round(time.monotonic() - started, 1),
        next_steps=[
            f"workbench status --workspace {root}",
            f"workbench runs --workspace {root} --order-by 'metrics.accuracy DESC'",
            f"workbench models --workspace {root}",
            f"workbench data diff HEAD~2 HEAD --workspace {root}",
            f"mlflow ui --backend-store-uri {settings.tracking_uri}  (MLflow's own UI on the same store)",
        ],
    )
    (root / MARKER).write_text(json.dumps(to_dict(summary), indent=2))
    return summary


def _best(results):
    return max(results, key=lambda r: r[1])


def _register(result, settings) -> str:
    import mlflow
    import sklearn

    run_id, _accuracy, model, example = result
    with mlflow.start_run(run_id=run_id):
        info = mlflow.sklearn.log_model(
            model,
            name="model",
            pip_requirements=[f"scikit-learn=={sklearn.__version__}", f"mlflow=={mlflow.__version__}"],
            input_example=example,
            registered_model_name=MODEL_NAME,
            # the demo trained this model itself, so its tree nodes are trusted
            skops_trusted_types=["sklearn.tree._tree.Tree"],
        )
    return str(info.registered_model_version)


def _has_git_identity(root: Path) -> bool:
    return subprocess.run(["git", "config", "user.email"], cwd=root, capture_output=True).returncode == 0


def _ensure_git_identity(root: Path) -> None:
    """Commits need an identity; set a local one only when the user has none."""
    if not _has_git_identity(root):
        _run(["git", "config", "user.name", "Workbench Demo"], root)
        _run(["git", "config", "user.email", "demo@workbench.invalid"], root)
