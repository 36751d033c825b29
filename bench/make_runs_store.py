"""Generate big MLflow tracking stores (SQLite) for tests and benchmarks.

MLflow itself creates the schema (one ``SqlAlchemyStore`` over a new file, so
the tables, indexes and migrations are exactly MLflow's), then the runs,
their latest metrics, one history point per metric, params and tags are
bulk-inserted with ``executemany`` in one transaction. The rows are
deterministic for a given :class:`StoreSpec` and exercise what the runs
search must get right: NaN and missing metrics, missing params, number-like
param values, mixed-case names, runs sharing a start time, unfinished runs
(no end time) and deleted runs.

Stores are cached by their spec under ``bench/.cache`` (built into a
temporary file and renamed, so a half-built store is never reused)::

    python bench/make_runs_store.py --runs 100000      # prints the sqlite URI
"""

from __future__ import annotations

import argparse
import os
import random
import sqlite3
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

DEFAULT_CACHE = Path(__file__).parent / ".cache"
# Bump when the generated rows change, so cached stores are rebuilt.
FORMAT_VERSION = 1

BASE_TIME_MS = 1_700_000_000_000
MODELS = ("rf", "gbm", "mlp", "svm")
LEARNING_RATES = ("0.1", "0.01", "0.001", "1e-3", "1")
NAME_PREFIXES = ("trial", "Trial", "sweep", "baseline")
USERS = ("alice", "bob", "carol")
TEAMS = ("vision", "nlp", "Vision")
STATUSES = ("FINISHED",) * 6 + ("FAILED", "KILLED", "RUNNING")


@dataclass(frozen=True)
class StoreSpec:
    """What to generate: ``runs`` spread over ``experiments``, each with up to
    ``metrics`` metrics (``m0``...) and ``params`` params (``p0``...)."""

    runs: int
    metrics: int = 10
    params: int = 5
    experiments: int = 2
    seed: int = 0

    @property
    def file_name(self) -> str:
        return f"runs-v{FORMAT_VERSION}-r{self.runs}-m{self.metrics}-p{self.params}-e{self.experiments}-s{self.seed}.db"


def sqlite_uri(path: Path) -> str:
    """The SQLAlchemy/MLflow URI of a SQLite file."""
    return f"sqlite:///{path}"


def make_runs_store(spec: StoreSpec, cache_dir: Path = DEFAULT_CACHE) -> Path:
    """Return the path of a SQLite MLflow store holding ``spec``'s runs, building it once."""
    cache_dir = Path(cache_dir)
    target = cache_dir / spec.file_name
    if target.exists():
        return target
    cache_dir.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=".building-", suffix=".db", dir=cache_dir)
    os.close(fd)
    tmp = Path(tmp_name)
    tmp.unlink()
    try:
        experiment_ids = _create_schema(tmp, cache_dir / "artifacts", spec.experiments)
        _insert_runs(tmp, spec, experiment_ids, cache_dir / "artifacts")
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
    return target


def _create_schema(path: Path, artifact_root: Path, n_experiments: int) -> list[int]:
    """Let MLflow create the store (tables, indexes, Default experiment) and the experiments."""
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

    store = SqlAlchemyStore(sqlite_uri(path), str(artifact_root))
    ids = [int(store.create_experiment(f"bench-{i}")) for i in range(n_experiments)]
    store.engine.dispose()
    return ids


def _insert_runs(path: Path, spec: StoreSpec, experiment_ids: list[int], artifact_root: Path) -> None:
    rng = random.Random(spec.seed)
    # Runs are generated in run-id order and per-key rows kept in per-key lists, so every
    # (key, run_uuid) primary key is inserted in order: appends, not page splits all over.
    run_ids = sorted(f"{rng.getrandbits(128):032x}" for _ in range(spec.runs))
    runs: list[tuple] = []
    latest: dict[str, list[tuple]] = {f"m{m}": [] for m in range(spec.metrics)}
    params: dict[str, list[tuple]] = {f"p{p}": [] for p in range(spec.params)}
    tags: dict[str, list[tuple]] = {"mlflow.runName": [], "mlflow.user": [], "team": []}
    for i, run_id in enumerate(run_ids):
        experiment_id = rng.choice(experiment_ids)
        # few distinct start times: many runs share one, so tie-breaking matters
        start = BASE_TIME_MS + rng.randrange(max(1, spec.runs // 3)) * 1000
        status = rng.choice(STATUSES)
        end = None if status == "RUNNING" else start + rng.randrange(1, 3_600_000)
        deleted = rng.random() < 0.02
        name = f"{rng.choice(NAME_PREFIXES)}-{i:06d}"
        user = rng.choice(USERS)
        runs.append(
            (
                run_id,
                name,
                "LOCAL",
                "train.py",
                "",
                user,
                status,
                start,
                end,
                "",
                "deleted" if deleted else "active",
                f"{artifact_root}/{experiment_id}/{run_id}/artifacts",
                experiment_id,
                start + 7_200_000 if deleted else None,
            )
        )
        for m, key in enumerate(latest):
            if rng.random() < 0.05:
                continue  # missing metric
            is_nan = rng.random() < 0.01
            value = 0.0 if is_nan else round(rng.random(), 4)  # rounding makes equal values common
            latest[key].append((key, value, start + 1000 * m, rng.randrange(100), int(is_nan), run_id))
        for p, key in enumerate(params):
            if rng.random() < 0.05:
                continue  # missing param
            params[key].append((key, _param_value(rng, p), run_id))
        tags["mlflow.runName"].append(("mlflow.runName", name, run_id))
        tags["mlflow.user"].append(("mlflow.user", user, run_id))
        if rng.random() < 0.8:
            tags["team"].append(("team", rng.choice(TEAMS), run_id))

    con = sqlite3.connect(path, isolation_level=None)
    try:
        con.execute("PRAGMA journal_mode=OFF")  # a fresh private file: no rollback journal needed
        con.execute("PRAGMA synchronous=OFF")
        con.execute("PRAGMA cache_size=-262144")  # 256 MiB: index pages stay in memory while inserting
        con.execute("BEGIN")
        con.executemany(
            "INSERT INTO runs (run_uuid, name, source_type, source_name, entry_point_name, user_id, status,"
            " start_time, end_time, source_version, lifecycle_stage, artifact_uri, experiment_id, deleted_time)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            runs,
        )
        for key in sorted(latest):
            con.executemany(
                "INSERT INTO latest_metrics (key, value, timestamp, step, is_nan, run_uuid) VALUES (?, ?, ?, ?, ?, ?)",
                latest[key],
            )
            # one history point per metric, the same as the latest value
            con.executemany(
                "INSERT INTO metrics (key, value, timestamp, step, is_nan, run_uuid) VALUES (?, ?, ?, ?, ?, ?)",
                latest[key],
            )
        for table, rows_by_key in (("params", params), ("tags", tags)):
            for key in sorted(rows_by_key):
                con.executemany(f"INSERT INTO {table} (key, value, run_uuid) VALUES (?, ?, ?)", rows_by_key[key])
        con.execute("COMMIT")
        con.execute("PRAGMA journal_mode=DELETE")
    finally:
        con.close()


def _param_value(rng: random.Random, index: int) -> str:
    if index == 0:
        return rng.choice(MODELS)
    if index == 1:
        return rng.choice(LEARNING_RATES)
    if index == 2:
        return str(rng.choice((8, 9, 10, 16, 100)))  # number-like strings sort as text: "100" < "9"
    return str(rng.randrange(1000))


def rows(path: Path) -> Iterator[tuple[str, int]]:
    """(table, row count) for the run tables of a generated store."""
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        for table in ("runs", "latest_metrics", "metrics", "params", "tags"):
            yield table, con.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
    finally:
        con.close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, required=True)
    parser.add_argument("--metrics", type=int, default=10)
    parser.add_argument("--params", type=int, default=5)
    parser.add_argument("--experiments", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cache-dir", type=Path, default=DEFAULT_CACHE)
    args = parser.parse_args(argv)
    spec = StoreSpec(args.runs, args.metrics, args.params, args.experiments, args.seed)
    started = time.perf_counter()
    path = make_runs_store(spec, args.cache_dir)
    elapsed = time.perf_counter() - started
    counts = ", ".join(f"{table} {count}" for table, count in rows(path))
    print(f"{sqlite_uri(path)}\n{counts} (ready in {elapsed:.1f} s)")


if __name__ == "__main__":
    main()
