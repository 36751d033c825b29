"""``bench/run.py`` (``make bench``): results collected, failures isolated, figures saved and tabled.

The benchmarks themselves have their own smoke tests; here two stand-in
modules (one that measures, one that breaks) drive the runner.
"""

from __future__ import annotations

import json
import sys
import types

from bench import common, run


def _measuring(argv):
    samples = common.alternate({"baseline": lambda: sum(range(20_000)), "workbench": lambda: None}, rounds=3)
    return [common.result("stand-in", f"args {' '.join(argv)}", samples, baseline="baseline", workbench="workbench")]


def _breaking(argv):
    raise RuntimeError("the backend went away")


def test_runner_saves_figures_tables_them_and_isolates_a_failure(tmp_path, monkeypatch, capsys):
    for name, main in (("fake_measuring", _measuring), ("fake_breaking", _breaking)):
        monkeypatch.setitem(sys.modules, f"bench.{name}", types.SimpleNamespace(main=main))
    monkeypatch.setattr(
        run,
        "BENCHMARKS",
        {"measuring": ("bench.fake_measuring", ["--full"], ["--quick"]), "breaking": ("bench.fake_breaking", [], [])},
    )
    readme = tmp_path / "README.md"
    readme.write_text(f"# Benchmarks\n\n{run.BEGIN}\nold figures\n{run.END}\n\nafter\n")
    monkeypatch.setattr(run, "README", readme)

    status = run.main(["--results", str(tmp_path / "results")])

    assert status == 1  # one benchmark failed, and says so
    out = capsys.readouterr().out
    assert "FAILED: breaking" in out
    assert out.strip().splitlines()[-1].startswith("ratios (baseline / Workbench): stand-in args --full: ")
    (saved,) = (tmp_path / "results").glob("*.json")
    report = json.loads(saved.read_text())
    assert report["machine"]["cores"] and report["versions"]["mlflow"]
    assert [r["case"] for r in report["results"]] == ["args --full"]
    assert report["results"][0]["median"]["baseline"] > 0
    assert "the backend went away" in report["failed"]["breaking"]
    text = readme.read_text()
    assert "old figures" not in text and "| stand-in | args --full | baseline: " in text
    assert "| breaking | failed: RuntimeError: the backend went away" in text and text.endswith("after\n")


def test_quick_mode_passes_quick_arguments_and_leaves_the_readme(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "bench.fake_measuring", types.SimpleNamespace(main=_measuring))
    monkeypatch.setattr(run, "BENCHMARKS", {"measuring": ("bench.fake_measuring", ["--full"], ["--quick"])})
    readme = tmp_path / "README.md"
    readme.write_text(f"{run.BEGIN}\nkept\n{run.END}\n")
    monkeypatch.setattr(run, "README", readme)
    assert run.main(["--quick", "--results", str(tmp_path)]) == 0
    (saved,) = tmp_path.glob("*-quick.json")
    assert json.loads(saved.read_text())["results"][0]["case"] == "args --quick"
    assert "kept" in readme.read_text()
