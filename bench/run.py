"""``make bench``: every benchmark, one table each, a last line of ratios, the figures saved.

Runs, in one process and one after another (each benchmark alternates its
own contenders round by round):

1. ``bench_runs``    runs table: Workbench REST vs MLflow REST and Python search
2. ``bench_browser`` runs table in Chromium: Workbench panel vs MLflow UI; dashboard first content
3. ``bench_data``    data status: Workbench vs ``dvc status`` vs ``Repo.data_status()``
4. ``bench_gpu``     GPU sampler CPU and NVML calls; Jupyter server CPU with stream clients
5. ``bench_deploy``  time to healthy; requests during a promotion swap

and writes ``bench/results/<date>.json`` (figures, machine, versions, commit)
and the "Latest figures" table of ``bench/README.md``. A benchmark that fails
is reported and the others still run; the exit status is then 1.

    python bench/run.py [--quick] [--only runs data ...] [--no-readme]
"""

from __future__ import annotations

import argparse
import datetime as _dt
import importlib
import json
import os
import platform
import subprocess
import sys
import time
import traceback
from importlib import metadata
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench import common  # noqa: E402

RESULTS = ROOT / "bench" / "results"
README = ROOT / "bench" / "README.md"
BEGIN, END = "<!-- latest:begin -->", "<!-- latest:end -->"

# name -> (module, arguments for the full run, arguments for --quick); sized so that the
# whole full run stays under 20 minutes on a 2-core machine once the stores are cached
BENCHMARKS: dict[str, tuple[str, list[str], list[str]]] = {
    "runs": (
        "bench.bench_runs",
        ["--runs", "10000", "100000", "--rounds", "3", "--mlflow-timeout", "45"],
        ["--runs", "10000", "--rounds", "1", "--mlflow-timeout", "20"],
    ),
    "browser": ("bench.bench_browser", [], ["--quick"]),
    "data": ("bench.bench_data", [], ["--quick"]),
    "gpu": ("bench.bench_gpu", [], ["--quick"]),
    "deploy": ("bench.bench_deploy", ["--rounds", "3"], ["--quick"]),
}
VERSIONED = (
    "mlworkbench",
    "mlflow",
    "dvc",
    "jupyterlab",
    "jupyter_server",
    "panel",
    "bokeh",
    "holoviews",
    "nvidia-ml-py",
    "playwright",
)


def machine() -> dict[str, Any]:
    """Cores, memory, OS and Python of this machine."""
    memory = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                memory = round(int(line.split()[1]) / 1024 / 1024, 1)
    except OSError:
        pass
    return {
        "cores": os.cpu_count(),
        "memory_gib": memory,
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "python": platform.python_version(),
    }


def versions() -> dict[str, str | None]:
    found: dict[str, str | None] = {}
    for name in VERSIONED:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = None
    return found


def commit() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True)
    except (OSError, subprocess.CalledProcessError):
        return None
    return out.stdout.strip()


def ratios_line(results: list[dict[str, Any]]) -> str:
    """The last line: every case's ratio, > 1 meaning Workbench is faster (or cheaper)."""
    parts = [f"{r['benchmark']} {r['case']}: {common.format_ratio(r)}" for r in results]
    return "ratios (baseline / Workbench): " + " · ".join(parts)


def readme_table(report: dict[str, Any]) -> str:
    lines = [
        f"Measured {report['date']} on {report['machine']['cores']} cores, {report['machine']['memory_gib']} GiB "
        f"(commit `{(report['commit'] or 'unknown')[:10]}`{', quick mode' if report['quick'] else ''}); "
        "medians, spread in brackets.",
        "",
        "| benchmark | case | baseline | Workbench | ratio |",
        "|---|---|---|---|---|",
    ]
    for res in report["results"]:
        base_name, wb_name = res["baseline"], res["workbench"]
        unit = res["unit"]

        def cell(name: str, res: dict[str, Any] = res, unit: str = unit) -> str:
            low, high = res["spread"][name]
            bound = "" if res["complete"].get(name, True) else "> "
            return (
                f"{name}: {bound}{common.format_value(res['median'][name], unit)} "
                f"[{common.format_value(low, unit)}–{common.format_value(high, unit)}]"
            )

        ratio = common.format_ratio(res)
        if res["ratio_label"] != f"{base_name} / {wb_name}":
            ratio += f" ({res['ratio_label']})"
        lines.append(f"| {res['benchmark']} | {res['case']} | {cell(base_name)} | {cell(wb_name)} | {ratio} |")
    for name, error in report["failed"].items():
        lines.append(f"| {name} | failed: {error.splitlines()[-1][:120]} | | | |")
    return "\n".join(lines)


def update_readme(report: dict[str, Any]) -> None:
    text = README.read_text()
    if BEGIN not in text or END not in text:
        return
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    README.write_text(f"{head}{BEGIN}\n{readme_table(report)}\n{END}{tail}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="Small stores and one round each (a smoke run).")
    parser.add_argument("--only", nargs="+", choices=list(BENCHMARKS), help="Run only these benchmarks.")
    parser.add_argument("--no-readme", action="store_true", help="Do not rewrite bench/README.md's latest figures.")
    parser.add_argument("--results", type=Path, default=RESULTS, help="Folder for <date>.json.")
    parser.add_argument("--readme-from", type=Path, help="Only rewrite bench/README.md's figures from this JSON.")
    args = parser.parse_args(argv)
    if args.readme_from:
        update_readme(json.loads(args.readme_from.read_text()))
        return 0

    started = time.monotonic()
    results: list[dict[str, Any]] = []
    failed: dict[str, str] = {}
    durations: dict[str, float] = {}
    for name in args.only or list(BENCHMARKS):
        module_name, full, quick = BENCHMARKS[name]
        print(f"\n=== {name} ({module_name}) ===", flush=True)
        begin = time.monotonic()
        try:
            module = importlib.import_module(module_name)
            results += module.main(quick if args.quick else full)
        except Exception:  # one benchmark's failure must not hide the others' figures
            failed[name] = traceback.format_exc()
            print(f"{name} FAILED:\n{failed[name]}", file=sys.stderr, flush=True)
        durations[name] = round(time.monotonic() - begin, 1)

    now = _dt.datetime.now(_dt.UTC)
    report = {
        "date": now.date().isoformat(),
        "time": now.isoformat(timespec="seconds"),
        "quick": args.quick,
        "machine": machine(),
        "versions": versions(),
        "commit": commit(),
        "seconds": {"total": round(time.monotonic() - started, 1), **durations},
        "results": results,
        "failed": failed,
    }
    args.results.mkdir(parents=True, exist_ok=True)
    out = args.results / f"{report['date']}{'-quick' if args.quick else ''}.json"
    out.write_text(json.dumps(report, indent=2, default=str) + "\n")
    if not args.no_readme and not args.quick:
        update_readme(report)

    print("\n=== all benchmarks ===")
    print(common.table(results))
    shown = out.relative_to(ROOT) if out.is_relative_to(ROOT) else out
    print(f"\nfigures: {shown}; took {report['seconds']['total']} s")
    if failed:
        print(f"FAILED: {', '.join(failed)}")
    print(ratios_line(results))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
