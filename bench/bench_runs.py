"""Runs table: the first page of 50 runs, sorted by a metric, with a filter.

On generated MLflow stores (10 metrics, 5 params per run; see
``make_runs_store.py``), served by one lean ``mlflow server``, it measures in
the same run, alternating the order:

- Workbench's REST API (``GET <jupyter>/workbench/api/runs``, the route the
  JupyterLab panel calls), served by a real Jupyter server with the extension,
  reading the store through its fast path;
- MLflow's own REST ``POST /api/2.0/mlflow/runs/search`` on the same server
  (the baseline);
- MLflow's Python client ``MlflowClient(server).search_runs``.

MLflow's search sorted by a metric takes minutes at 100,000 runs on this kind
of machine (BUILD-NOTES: 276 s with this filter), so each MLflow call gets
``--mlflow-timeout`` seconds; a call that runs out reports the timeout as a
lower bound (``>``) and the ratio as ``>=``. Every server started is stopped.

    python bench/bench_runs.py [--runs 10000 100000] [--rounds 3] [--mlflow-timeout 120]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repo root: tests.servers, bench

import requests

from bench import common
from bench.make_runs_store import StoreSpec, make_runs_store, sqlite_uri
from tests.servers import JupyterServer, MlflowServer

FILTER = "metrics.m0 > 0.5"
ORDER = "metrics.m1 DESC"
PAGE = 50


def jupyter_server(folder: Path, tracking_uri: str, store_uri: str) -> JupyterServer:
    """A ``jupyter server`` with the Workbench extension over a remote tracking server (fast SQL on ``store_uri``)."""
    env = dict(
        os.environ, MLFLOW_TRACKING_URI=tracking_uri, WORKBENCH_STORE_URI=store_uri, MLFLOW_DISABLE_TELEMETRY="true"
    )
    return JupyterServer(folder, env=env, token="bench")


def _timed(fn, timeout: float) -> tuple[float, bool, list[str]]:
    """(seconds, finished, run ids); a call past ``timeout`` is abandoned and reported as the timeout."""
    result: dict[str, object] = {}

    def work() -> None:
        try:
            result["ids"] = fn()
        except Exception as exc:  # the bench reports it, it does not stop
            result["error"] = exc

    thread = threading.Thread(target=work, daemon=True)
    started = time.perf_counter()
    thread.start()
    thread.join(timeout)
    elapsed = time.perf_counter() - started
    if thread.is_alive():
        return timeout, False, []
    if "error" in result:
        raise RuntimeError(f"query failed: {result['error']}")
    return elapsed, True, list(result["ids"])  # type: ignore[arg-type]


def bench_store(runs: int, rounds: int, mlflow_timeout: float, workdir: Path) -> dict[str, object]:
    """One store size: medians per contender and ratios against MLflow's REST search."""
    db = make_runs_store(StoreSpec(runs=runs))
    server = MlflowServer(workdir / f"mlflow-{runs}", db_uri=sqlite_uri(db)).start()
    jupyter = jupyter_server(workdir, server.uri, sqlite_uri(db))
    try:
        from mlflow import MlflowClient

        client = MlflowClient(server.uri)
        experiment_ids = [e.experiment_id for e in client.search_experiments()]

        def workbench_rest() -> list[str]:
            page = requests.get(
                f"{jupyter.url}/workbench/api/runs",
                params={"filter_string": FILTER, "order_by": ORDER, "max_results": PAGE, "experiment": experiment_ids},
                headers=jupyter.headers,
                timeout=600,
            )
            page.raise_for_status()
            return [r["run_id"] for r in page.json()["runs"]]

        def mlflow_rest() -> list[str]:
            page = requests.post(
                f"{server.uri}/api/2.0/mlflow/runs/search",
                json={"experiment_ids": experiment_ids, "filter": FILTER, "order_by": [ORDER], "max_results": PAGE},
                timeout=mlflow_timeout + 5,
            )
            page.raise_for_status()
            return [r["info"]["run_id"] for r in page.json().get("runs", [])]

        def mlflow_python() -> list[str]:
            found = client.search_runs(experiment_ids, FILTER, order_by=[ORDER], max_results=PAGE)
            return [r.info.run_id for r in found]

        workbench_rest()  # warm: imports and the first open of the store
        contenders = {"workbench REST": workbench_rest, "mlflow REST": mlflow_rest, "mlflow python": mlflow_python}
        times: dict[str, list[float]] = {name: [] for name in contenders}
        complete = {name: True for name in contenders}
        answers: dict[str, list[str]] = {}
        order = list(contenders)
        for round_index in range(rounds):
            for name in order if round_index % 2 == 0 else order[::-1]:
                if not complete[name]:
                    continue  # one abandoned MLflow call per size is enough to know
                seconds, done, ids = _timed(contenders[name], 600 if name == "workbench REST" else mlflow_timeout)
                times[name].append(seconds)
                complete[name] = done
                if done:
                    answers[name] = ids
                else:
                    # its one worker is still busy with the abandoned search: start it afresh
                    server.stop()
                    server.start()
        if "mlflow REST" in answers and answers["mlflow REST"] != answers["workbench REST"]:
            raise RuntimeError("Workbench and MLflow returned different runs: the benchmark would be meaningless")
        return common.result(
            "runs table",
            f"{runs:,} runs: first {PAGE} where {FILTER} by {ORDER}",
            times,
            baseline="mlflow REST",
            workbench="workbench REST",
            complete=complete,
            runs=runs,
            query={"filter": FILTER, "order_by": ORDER, "max_results": PAGE},
            same_runs_as_mlflow=answers.get("mlflow REST") == answers.get("workbench REST")
            if "mlflow REST" in answers
            else None,
        )
    finally:
        jupyter.stop()
        server.stop()


def main(argv: list[str] | None = None) -> list[dict[str, object]]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--mlflow-timeout", type=float, default=120.0)
    args = parser.parse_args(argv)
    results = []
    with tempfile.TemporaryDirectory(prefix="bench-runs-") as tmp:
        for runs in args.runs:
            result = bench_store(runs, args.rounds, args.mlflow_timeout, Path(tmp))
            print(common.table([result]), flush=True)
            results.append(result)
    return results


if __name__ == "__main__":
    main()
