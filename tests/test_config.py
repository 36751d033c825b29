"""Settings resolution: argument > environment > workspace file > embedded default."""

from __future__ import annotations

from pathlib import Path

import pytest

from workbench.config import embedded_store_exists, find_workspace, load_settings
from workbench.errors import InvalidInput, NotFound


def test_embedded_default_inside_the_workspace(make_repo):
    repo = make_repo()
    nested = repo / "notebooks" / "deep"
    nested.mkdir(parents=True)
    settings = load_settings(nested)
    assert settings.workspace == repo.resolve()
    assert settings.git_root == repo.resolve()
    assert settings.dvc_root == repo.resolve()
    assert settings.tracking_uri == f"sqlite:///{repo.resolve() / '.workbench' / 'mlflow.db'}"
    assert settings.store_uri == settings.tracking_uri
    assert settings.artifact_location == str(repo.resolve() / ".workbench" / "artifacts")
    assert settings.sources["tracking_uri"] == "default"
    # loading settings writes nothing: no store until something is logged
    assert not (repo / ".workbench").exists()
    assert not embedded_store_exists(settings)


def test_order_argument_environment_file_default(make_repo, monkeypatch):
    repo = make_repo()
    (repo / "pyproject.toml").write_text(
        '[tool.workbench]\ntracking_uri = "http://127.0.0.1:5999"\ngpu_interval = 2\n'
        '[tool.workbench.promotion_gates]\niris = ["metrics.accuracy >= 0.9"]\n'
    )
    from_file = load_settings(repo)
    assert from_file.tracking_uri == "http://127.0.0.1:5999"
    assert from_file.sources["tracking_uri"].endswith("[tool.workbench]")
    assert from_file.store_uri is None  # a remote server: no direct SQL reads unless configured
    assert from_file.gpu_interval == 2.0
    assert from_file.promotion_gates == {"iris": ["metrics.accuracy >= 0.9"]}

    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:6000")
    from_env = load_settings(repo)
    assert from_env.tracking_uri == "http://127.0.0.1:6000"
    assert from_env.sources["tracking_uri"] == "environment"

    explicit = load_settings(repo, tracking_uri="sqlite:////tmp/x.db")
    assert explicit.tracking_uri == "sqlite:////tmp/x.db"
    assert explicit.store_uri == "sqlite:////tmp/x.db"
    assert explicit.sources["tracking_uri"] == "argument"


def test_workbench_toml_wins_over_pyproject(make_repo):
    repo = make_repo()
    (repo / "pyproject.toml").write_text('[tool.workbench]\ngpu_source = "none"\n')
    (repo / "workbench.toml").write_text('gpu_source = "simulated"\n')
    assert load_settings(repo).gpu_source == "simulated"


def test_workspace_from_environment(make_repo, monkeypatch, tmp_path):
    repo = make_repo()
    monkeypatch.setenv("WORKBENCH_WORKSPACE", str(repo))
    monkeypatch.chdir(tmp_path)
    assert load_settings().workspace == repo.resolve()


def test_plain_folder_and_git_only(tmp_path, make_repo):
    plain = tmp_path / "plain"
    plain.mkdir()
    assert find_workspace(plain) == (plain.resolve(), None, None)
    git_only = make_repo("gitonly", dvc=False)
    root, git_root, dvc_root = find_workspace(git_only)
    assert root == git_root == git_only.resolve() and dvc_root is None


@pytest.mark.parametrize(
    ("content", "error"),
    [
        ('gpu_source = "quantum"\n', "Unknown GPU source"),
        ('gpu_interval = "often"\n', "not a number"),
        ("promotion_gates = 3\n", "promotion_gates"),
        ("this is = = not toml\n", "Cannot read"),
    ],
)
def test_bad_settings_are_clear_errors(tmp_path, content, error):
    (tmp_path / "workbench.toml").write_text(content)
    with pytest.raises(InvalidInput, match=error) as info:
        load_settings(tmp_path)
    assert info.value.hint


def test_missing_workspace_and_unknown_override(tmp_path):
    with pytest.raises(NotFound):
        load_settings(tmp_path / "nope")
    with pytest.raises(InvalidInput, match="Unknown setting"):
        load_settings(tmp_path, colour="blue")


def test_relative_file_store_is_made_absolute(tmp_path):
    settings = load_settings(tmp_path, tracking_uri="mlruns")
    assert Path(settings.tracking_uri) == (tmp_path / "mlruns").resolve()
