"""The fast read path over an MLflow tracking store's SQL database.

MLflow's ``SqlAlchemyStore._search_runs`` builds one ``SELECT * FROM
latest_metrics WHERE key = ?`` subquery per filter and per sort key and joins
them to ``runs`` under a ``SELECT DISTINCT``. For a sort key the join is an
outer join, and SQLite materializes that subquery and scans all of it for
every run (``SCAN anon_1 LEFT-JOIN`` in its plan), quadratic in the number
of runs: 4.8 s at 10,000 runs and minutes at 100,000 (BUILD-NOTES).
Here the same search is one query in which every filter is a correlated
``EXISTS`` and every sort key a ``LEFT JOIN`` on the ``(key, run_uuid)``
primary keys MLflow already has, so the database walks the runs once, with
one index look-up per run and key, and keeps only the top rows of the sort. The
page's params, metrics and tags then come in three batch queries.

The results are exactly MLflow's: the same comparisons per key type (NaN
metrics never match except ``!=``; ``run_name`` filters read the
``mlflow.runName`` tag while ``run_name`` sorts read the column), the same
NULL and NaN placement (values, then NaN, then missing, in both directions),
the same tie-breakers (``start_time DESC`` unless sorted by it, then
``run_uuid``), the same offsets. ``tests/test_runs_fastpath.py`` checks it
against MLflow itself.

This module knows MLflow's schema but not MLflow's code: the tracking service
parses filters and ``order_by`` with MLflow's parser and hands over plain
:class:`Condition` and :class:`SortKey` records. The database is only read:
SQLite files are opened with ``mode=ro``, PostgreSQL sessions are read-only.
MySQL and SQL Server (whose string comparisons need collation tricks) are
left to MLflow's own search.
"""

from __future__ import annotations

import logging
import math
import sqlite3
import threading
import urllib.parse
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

log = logging.getLogger(__name__)

RUN_NAME_TAG = "mlflow.runName"

_meta = sa.MetaData()
_runs = sa.Table(
    "runs",
    _meta,
    sa.Column("run_uuid", sa.String(32), primary_key=True),
    sa.Column("name", sa.String(250)),
    sa.Column("user_id", sa.String(256)),
    sa.Column("status", sa.String(20)),
    sa.Column("start_time", sa.BigInteger),
    sa.Column("end_time", sa.BigInteger),
    sa.Column("lifecycle_stage", sa.String(20)),
    sa.Column("artifact_uri", sa.String(200)),
    sa.Column("experiment_id", sa.Integer),
)
_latest_metrics = sa.Table(
    "latest_metrics",
    _meta,
    sa.Column("key", sa.String(250)),
    sa.Column("value", sa.Float(precision=53)),
    sa.Column("timestamp", sa.BigInteger),
    sa.Column("step", sa.BigInteger),
    sa.Column("is_nan", sa.Boolean(create_constraint=False)),
    sa.Column("run_uuid", sa.String(32)),
)
_metrics = sa.Table(
    "metrics",
    _meta,
    sa.Column("key", sa.String(250)),
    sa.Column("value", sa.Float(precision=53)),
    sa.Column("timestamp", sa.BigInteger),
    sa.Column("step", sa.BigInteger),
    sa.Column("is_nan", sa.Boolean(create_constraint=False)),
    sa.Column("run_uuid", sa.String(32)),
)
_params = sa.Table(
    "params",
    _meta,
    sa.Column("key", sa.String(250)),
    sa.Column("value", sa.String(8000)),
    sa.Column("run_uuid", sa.String(32)),
)
_tags = sa.Table(
    "tags",
    _meta,
    sa.Column("key", sa.String(250)),
    sa.Column("value", sa.String(8000)),
    sa.Column("run_uuid", sa.String(32)),
)
_experiments = sa.Table(
    "experiments",
    _meta,
    sa.Column("experiment_id", sa.Integer, primary_key=True),
    sa.Column("name", sa.String(256)),
    sa.Column("lifecycle_stage", sa.String(32)),
)

# MLflow's search key types (SearchUtils) -> the table holding that key's values
_KEY_TABLES = {"metric": _latest_metrics, "parameter": _params, "tag": _tags}
# MLflow attribute names -> runs columns (as SqlRun.get_attribute_name does)
_ATTRIBUTE_COLUMNS = {
    "run_id": "run_uuid",
    "run_name": "name",
    "user_id": "user_id",
    "status": "status",
    "start_time": "start_time",
    "end_time": "end_time",
    "artifact_uri": "artifact_uri",
}
_SUMMARY_COLUMNS = (
    _runs.c.run_uuid,
    _runs.c.name,
    _runs.c.experiment_id,
    _runs.c.status,
    _runs.c.start_time,
    _runs.c.end_time,
    _runs.c.user_id,
    _runs.c.lifecycle_stage,
    _runs.c.artifact_uri,
)
# bound parameters per IN (...) batch; SQLite allows 32766, other databases fewer
_BATCH = 500


class StoreUnreadable(Exception):
    """The database could not be read as an MLflow store (down, locked, other schema)."""


@dataclass(frozen=True)
class Condition:
    """One ``AND``-ed clause of a runs filter, as MLflow's parser produced it.

    ``kind`` is MLflow's key type (``metric``, ``parameter``, ``tag``,
    ``attribute``), ``key`` the metric/param/tag name or the attribute name
    after alias translation (``run_id``, ``run_name``, ``start_time``...),
    ``comparator`` upper-cased (``=``, ``LIKE``, ``IN``, ``IS NULL``...),
    ``value`` a float for metrics, a list for ``IN``, else a string or number.
    """

    kind: str
    key: str
    comparator: str
    value: Any = None


@dataclass(frozen=True)
class SortKey:
    """One ``order_by`` term: MLflow's key type, the key, and the direction."""

    kind: str
    key: str
    ascending: bool = True


def supports(kind: str) -> bool:
    """Whether filters/sorts on this MLflow key type can run here (datasets cannot)."""
    return kind == "attribute" or kind in _KEY_TABLES


class RunsStore:
    """Read-only queries over one MLflow SQL store."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    # -- runs search -------------------------------------------------------

    def search(
        self,
        experiment_ids: Sequence[int],
        stages: Sequence[str],
        conditions: Sequence[Condition],
        sort_keys: Sequence[SortKey],
        offset: int,
        limit: int,
    ) -> list[dict[str, Any]]:
        """One page of runs in MLflow's order, as dicts of :class:`RunSummary`'s fields."""
        runs = _runs
        source: sa.FromClause = runs
        order: list[Any] = []
        for index, sort in enumerate(sort_keys):
            if sort.kind == "attribute":
                value = runs.c[_ATTRIBUTE_COLUMNS[sort.key]]
                placement = sa.case((value.is_(None), 1), else_=0)
            else:
                joined = _KEY_TABLES[sort.kind].alias(f"sort_{index}")
                on = sa.and_(joined.c.run_uuid == runs.c.run_uuid, joined.c.key == sort.key)
                source = source.outerjoin(joined, on)
                value = joined.c.value
                if sort.kind == "metric":
                    # values first, then NaN (stored as 0 with is_nan), then runs without the metric
                    placement = sa.case((joined.c.is_nan == sa.true(), 1), (value.is_(None), 2), else_=0)
                else:
                    placement = sa.case((value.is_(None), 1), else_=0)
            order += [placement, value.asc() if sort.ascending else value.desc()]
        if not any(s.kind == "attribute" and s.key == "start_time" for s in sort_keys):
            order.append(runs.c.start_time.desc())
        order.append(runs.c.run_uuid)

        query = (
            sa.select(*_SUMMARY_COLUMNS)
            .select_from(source)
            .where(
                runs.c.experiment_id.in_(list(experiment_ids)),
                runs.c.lifecycle_stage.in_(list(stages)),
                *(_clause(c) for c in conditions),
            )
            .order_by(*order)
            .limit(limit)
            .offset(offset)
        )
        with self._connect() as con:
            rows = con.execute(query).all()
            return self._summaries(con, rows)

    def count(self, experiment_ids: Sequence[int], stages: Sequence[str]) -> int:
        """How many runs the experiments hold in these lifecycle stages."""
        query = sa.select(sa.func.count()).where(
            _runs.c.experiment_id.in_(list(experiment_ids)), _runs.c.lifecycle_stage.in_(list(stages))
        )
        with self._connect() as con:
            return int(con.execute(query).scalar_one())

    def run_counts(self, stages: Sequence[str]) -> dict[str, int]:
        """Runs per experiment id (as MLflow's string ids), one grouped query."""
        query = (
            sa.select(_runs.c.experiment_id, sa.func.count())
            .where(_runs.c.lifecycle_stage.in_(list(stages)))
            .group_by(_runs.c.experiment_id)
        )
        with self._connect() as con:
            return {str(eid): int(n) for eid, n in con.execute(query)}

    def runs(self, run_ids: Sequence[str]) -> list[dict[str, Any]]:
        """The runs with these ids (any lifecycle stage), in the order asked; unknown ids are left out."""
        with self._connect() as con:
            rows = []
            for chunk in _chunks(run_ids):
                rows += con.execute(sa.select(*_SUMMARY_COLUMNS).where(_runs.c.run_uuid.in_(chunk))).all()
            found = {row.run_uuid: summary for row, summary in zip(rows, self._summaries(con, rows), strict=True)}
        return [found[run_id] for run_id in run_ids if run_id in found]

    def metric_histories(self, run_ids: Sequence[str]) -> dict[tuple[str, str], list[tuple[int, int, float]]]:
        """Every logged point of every metric of these runs, by step then timestamp.

        Returns ``{(run_id, key): [(step, timestamp, value), ...]}``.
        """
        histories: dict[tuple[str, str], list[tuple[int, int, float]]] = {}
        m = _metrics
        with self._connect() as con:
            for chunk in _chunks(run_ids):
                query = (
                    sa.select(m.c.run_uuid, m.c.key, m.c.step, m.c.timestamp, m.c.value, m.c.is_nan)
                    .where(m.c.run_uuid.in_(chunk))
                    .order_by(m.c.run_uuid, m.c.key, m.c.step, m.c.timestamp)
                )
                for run_id, key, step, timestamp, value, is_nan in con.execute(query):
                    histories.setdefault((run_id, key), []).append((step, timestamp, math.nan if is_nan else value))
        return histories

    # -- experiments -------------------------------------------------------

    def experiment_ids(self, refs: Iterable[str]) -> dict[str, int]:
        """Map each reference to an experiment id: an existing id first, else an exact name.

        References that match nothing are left out.
        """
        refs = list(dict.fromkeys(refs))
        numeric = [int(r) for r in refs if r.isascii() and r.isdigit() and len(r) <= 18]  # fits a BIGINT
        e = _experiments
        with self._connect() as con:
            rows = con.execute(
                sa.select(e.c.experiment_id, e.c.name).where(sa.or_(e.c.experiment_id.in_(numeric), e.c.name.in_(refs)))
            ).all()
        by_id = {str(row.experiment_id): row.experiment_id for row in rows}
        by_name = {row.name: row.experiment_id for row in rows}
        resolved = {}
        for ref in refs:
            if ref in by_id:
                resolved[ref] = by_id[ref]
            elif ref in by_name:
                resolved[ref] = by_name[ref]
        return resolved

    def active_experiment_ids(self) -> list[int]:
        """Ids of every experiment not deleted."""
        e = _experiments
        with self._connect() as con:
            return list(con.execute(sa.select(e.c.experiment_id).where(e.c.lifecycle_stage == "active")).scalars())

    def experiment_names(self, limit: int) -> list[str]:
        """Up to ``limit`` active experiment names, for hints."""
        e = _experiments
        query = sa.select(e.c.name).where(e.c.lifecycle_stage == "active").order_by(e.c.name).limit(limit)
        with self._connect() as con:
            return list(con.execute(query).scalars())

    # -- plumbing ----------------------------------------------------------

    @contextmanager
    def _connect(self) -> Iterator[sa.Connection]:
        """A connection (closed, and so rolled back, on exit); database failures become StoreUnreadable."""
        try:
            with self.engine.connect() as con:
                yield con
        except sa.exc.DBAPIError as exc:
            raise StoreUnreadable(str(exc.orig)) from exc

    @staticmethod
    def _summaries(con: sa.Connection, rows: Sequence[sa.Row]) -> list[dict[str, Any]]:
        """Attach params, latest metrics and tags to ``rows`` with one query per table."""
        run_ids = [row.run_uuid for row in rows]
        params: dict[str, dict[str, str]] = {run_id: {} for run_id in run_ids}
        metrics: dict[str, dict[str, float]] = {run_id: {} for run_id in run_ids}
        tags: dict[str, dict[str, str]] = {run_id: {} for run_id in run_ids}
        lm = _latest_metrics
        for chunk in _chunks(run_ids):
            query = sa.select(lm.c.run_uuid, lm.c.key, lm.c.value, lm.c.is_nan).where(lm.c.run_uuid.in_(chunk))
            for run_id, key, value, is_nan in con.execute(query):
                metrics[run_id][key] = math.nan if is_nan else value
            for table, values in ((_params, params), (_tags, tags)):
                query = sa.select(table.c.run_uuid, table.c.key, table.c.value).where(table.c.run_uuid.in_(chunk))
                for run_id, key, value in con.execute(query):
                    values[run_id][key] = value
        return [
            {
                "run_id": row.run_uuid,
                # like SqlRun.to_mlflow_entity: runs logged by old MLflow only have the tag
                "run_name": row.name or tags[row.run_uuid].get(RUN_NAME_TAG) or "",
                "experiment_id": str(row.experiment_id),
                "status": row.status,
                "start_time": row.start_time,
                "end_time": row.end_time,
                "user": row.user_id,
                "lifecycle_stage": row.lifecycle_stage,
                "artifact_uri": row.artifact_uri,
                "params": dict(sorted(params[row.run_uuid].items())),
                "metrics": dict(sorted(metrics[row.run_uuid].items())),
                "tags": dict(sorted(tags[row.run_uuid].items())),
            }
            for row in rows
        ]


def _compare(column: Any, comparator: str, value: Any) -> Any:
    """The SQL for ``column <comparator> value``, built as MLflow builds it for SQLite and PostgreSQL."""
    if comparator == "LIKE":
        return column.like(value)
    if comparator == "ILIKE":
        return column.ilike(value)
    if comparator == "IN":
        return column.in_(value)
    if comparator == "NOT IN":
        return ~column.in_(value)
    operators = {
        "=": column.__eq__,
        "!=": column.__ne__,
        "<": column.__lt__,
        "<=": column.__le__,
        ">": column.__gt__,
        ">=": column.__ge__,
    }
    return operators[comparator](value)


def _clause(condition: Condition) -> Any:
    """The WHERE clause for one filter condition (see the module docstring for the semantics)."""
    runs = _runs
    if condition.kind == "attribute" and condition.key != "run_name":
        return _compare(runs.c[_ATTRIBUTE_COLUMNS[condition.key]], condition.comparator, condition.value)
    if condition.kind == "attribute":  # run_name: MLflow matches the mlflow.runName tag
        kind, key = "tag", RUN_NAME_TAG
    else:
        kind, key = condition.kind, condition.key
    table = _KEY_TABLES[kind].alias()
    match = [table.c.run_uuid == runs.c.run_uuid, table.c.key == key]
    if condition.comparator in ("IS NULL", "IS NOT NULL"):
        found = sa.exists().where(*match)
        return ~found if condition.comparator == "IS NULL" else found
    test = _compare(table.c.value, condition.comparator, condition.value)
    if kind == "metric":
        # NaN is stored as 0 with is_nan: it never matches a comparison, except "!=" which it always matches
        if condition.comparator == "!=":
            test = sa.or_(test, table.c.is_nan == sa.true())
        else:
            test = sa.and_(test, table.c.is_nan == sa.false())
    return sa.exists().where(*match, test)


def _chunks(items: Sequence[str]) -> Iterable[list[str]]:
    for start in range(0, len(items), _BATCH):
        yield list(items[start : start + _BATCH])


# -- opening stores ---------------------------------------------------------

_stores: dict[str, RunsStore] = {}
_stores_lock = threading.Lock()


def open_store(store_uri: str | None) -> RunsStore | None:
    """A :class:`RunsStore` for ``store_uri``, or None when the fast path cannot serve it.

    None for: no URI, an in-memory or missing SQLite file (opening it must not
    create it), a database other than SQLite and PostgreSQL, a missing driver.
    Engines are cached per URI.
    """
    if not store_uri:
        return None
    try:
        url = sa.engine.make_url(store_uri)
    except sa.exc.ArgumentError:
        return None
    backend = url.get_backend_name()
    if backend == "sqlite":
        path = Path(url.database or "")
        if not url.database or url.database == ":memory:" or not path.is_file():
            return None
        key = f"sqlite:{path.resolve()}"
    elif backend == "postgresql":
        key = store_uri
    else:
        return None
    with _stores_lock:
        store = _stores.get(key)
        if store is None:
            try:
                engine = _sqlite_engine(path.resolve()) if backend == "sqlite" else _postgres_engine(store_uri)
            except (ImportError, sa.exc.SQLAlchemyError) as exc:
                log.info("Fast runs path off for %s: %s", url.render_as_string(hide_password=True), exc)
                return None
            store = _stores[key] = RunsStore(engine)
    return store


def _sqlite_engine(path: Path) -> Engine:
    """An engine that opens ``path`` read-only, with MLflow's LIKE semantics."""
    uri = f"file:{urllib.parse.quote(str(path))}?mode=ro"

    def connect() -> sqlite3.Connection:
        con = sqlite3.connect(uri, uri=True, timeout=5.0, check_same_thread=False)
        # MLflow runs this on every session: LIKE is case-sensitive, ILIKE is lower() LIKE lower()
        con.execute("PRAGMA case_sensitive_like = true")
        con.execute("PRAGMA query_only = true")
        return con

    # NullPool: a fresh connection per query (microseconds for SQLite) never sees a replaced file's old inode
    return sa.create_engine("sqlite://", creator=connect, poolclass=sa.pool.NullPool)


def _postgres_engine(store_uri: str) -> Engine:
    """An engine whose sessions are read-only and give up connecting after a few seconds."""
    engine = sa.create_engine(store_uri, pool_pre_ping=True, pool_size=2, connect_args={"connect_timeout": 3})

    @sa.event.listens_for(engine, "connect")
    def _read_only(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY")
        cursor.close()

    return engine
