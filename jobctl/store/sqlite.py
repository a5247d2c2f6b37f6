"""The SQLite backend (stdlib sqlite3, WAL): the only module that talks to SQLite."""

from __future__ import annotations

import datetime as dt
import json
import os
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from functools import cache
from typing import Any

from jobctl.errors import DatabaseError, SchemaOutdated
from jobctl.store import queries
from jobctl.store.base import Inserted, NewJob, ReadyJobs, RuntimeSession, Store
from jobctl.urls import DatabaseURL

BUSY_TIMEOUT_S = 5.0
Q = queries.load("sqlite")


def epoch(value: dt.datetime) -> float:
    """An aware datetime as epoch seconds."""
    return value.timestamp()


def utc(value: float | None) -> dt.datetime | None:
    """Epoch seconds as an aware UTC datetime."""
    return None if value is None else dt.datetime.fromtimestamp(value, dt.UTC)


def connect(url: DatabaseURL, *, synchronous: str = "FULL") -> sqlite3.Connection:
    """Open the file in WAL mode, autocommit (explicit BEGIN), usable from any thread of this process."""
    folder = os.path.dirname(url.target)
    if folder and not os.path.isdir(folder):
        raise DatabaseError(f"cannot open {url.redacted}: directory {folder} does not exist")
    try:
        conn = sqlite3.connect(url.target, timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute(f"PRAGMA synchronous={synchronous}")
    except sqlite3.Error as exc:
        raise DatabaseError(f"cannot open {url.redacted}: {exc}") from None
    return conn


def split_script(sql: str) -> list[str]:
    """Split a migration into statements (executescript would commit our transaction)."""
    statements, buf = [], ""
    for line in sql.splitlines(keepends=True):
        buf += line
        if sqlite3.complete_statement(buf):
            statements.append(buf.strip())
            buf = ""
    if buf.strip() and not all(ln.strip().startswith("--") or not ln.strip() for ln in buf.splitlines()):
        statements.append(buf.strip())
    return statements


def _bind(value: Any) -> Any:
    if isinstance(value, list | tuple):
        return json.dumps(list(value))
    if isinstance(value, dt.datetime):
        return value.timestamp()
    return value


def _column(name: str, value: Any) -> Any:
    """Times are stored as epoch seconds and JSON as text: give them back as the PostgreSQL side does."""
    if value is not None:
        if name.endswith("_at") or name in ("at", "minute", "now"):
            return utc(value)
        if name in ("arguments", "metadata") and isinstance(value, str):
            return json.loads(value)
    return value


@cache
def _statements(name: str) -> list[str]:
    return split_script(Q[name])


def _execute_script(conn: sqlite3.Connection, name: str, params: dict[str, Any]) -> None:
    """Run every statement of a named query (inside the caller's transaction)."""
    for statement in _statements(name):
        conn.execute(statement, params).fetchall()


def _run_all(conn: sqlite3.Connection, statements: list[str], params: dict[str, Any]) -> list[dict[str, Any]]:
    """Run every statement; the last one's rows are the result (read before any commit)."""
    for statement in statements[:-1]:
        conn.execute(statement, params).fetchall()
    cur = conn.execute(statements[-1], params)
    names = [d[0] for d in cur.description or ()]
    return [{n: _column(n, v) for n, v in zip(names, row, strict=True)} for row in cur.fetchall()]


class SqliteStore(Store):
    """Jobs in an SQLite file: one host, any number of processes."""

    def __init__(self, url: DatabaseURL) -> None:
        self.url = url
        self._conn: sqlite3.Connection | None = None
        self._lock = threading.RLock()

    def _open(self) -> sqlite3.Connection:
        """The store's own connection; opening it creates the schema in a new file."""
        with self._lock:
            if self._conn is None:
                conn = connect(self.url)
                self._ensure_schema(conn)
                self._conn = conn
            return self._conn

    @contextmanager
    def _own(self) -> Iterator[sqlite3.Connection]:
        conn = self._open()
        with self._lock:
            yield conn

    @contextmanager
    def _conn_for(self, conn: Any) -> Iterator[sqlite3.Connection]:
        if conn is not None:
            self._open()  # a caller's connection still needs the schema in the file
            yield conn
        else:
            with self._own() as own:
                yield own

    def session(self) -> RuntimeSession:
        from jobctl.store.sqlite_runtime import SqliteSession

        self._open()  # the schema must exist before a runtime process claims
        return SqliteSession(self.url)

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    @contextmanager
    def _write(self, conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
        """A write transaction taken up front, so two writers queue instead of deadlocking."""
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    # -- schema ---------------------------------------------------------------------------

    def _ensure_schema(self, conn: sqlite3.Connection) -> None:
        current, latest = self._version(conn), queries.migrations("sqlite")[-1][0]
        if current == 0:
            self._migrate(conn)
        elif current < latest:
            raise SchemaOutdated(f"{self.url.redacted} has jobctl schema {current}, this jobctl needs {latest}: "
                                 "run `jobctl db migrate`")

    def _version(self, conn: sqlite3.Connection) -> int:
        row = conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'jobctl_migrations'").fetchone()
        if row is None:
            return 0
        return int(conn.execute("SELECT COALESCE(max(version), 0) FROM jobctl_migrations").fetchone()[0])

    def _migrate(self, conn: sqlite3.Connection) -> list[str]:
        applied: list[str] = []
        with self._write(conn):
            conn.execute("CREATE TABLE IF NOT EXISTS jobctl_migrations (version INTEGER PRIMARY KEY, "
                         "name TEXT NOT NULL, applied_at REAL NOT NULL)")
            done = {row[0] for row in conn.execute("SELECT version FROM jobctl_migrations")}
            for version, name, sql in queries.migrations("sqlite"):
                if version in done:
                    continue
                for statement in split_script(sql):
                    conn.execute(statement)
                conn.execute("INSERT INTO jobctl_migrations (version, name, applied_at) VALUES (?, ?, ?)",
                             (version, name, time.time()))
                applied.append(f"{version:04d}_{name}")
        return applied

    def migrate(self) -> list[str]:
        with self._lock:
            if self._conn is None:
                self._conn = connect(self.url)
            return self._migrate(self._conn)

    def schema_version(self) -> tuple[int, int]:
        with self._lock:
            if self._conn is None:
                self._conn = connect(self.url)
            return self._version(self._conn), queries.migrations("sqlite")[-1][0]

    def check_connection(self, conn: Any) -> None:
        if not isinstance(conn, sqlite3.Connection):
            raise ValueError(f"jobctl uses SQLite here; using() needs a sqlite3.Connection, got {type(conn)!r}")
        files = {row[1]: row[2] for row in conn.execute("PRAGMA database_list")}
        if os.path.realpath(files.get("main") or "") != os.path.realpath(self.url.target):
            raise ValueError(f"the connection given to using() is not to jobctl's database {self.url.redacted}")

    # -- enqueue --------------------------------------------------------------------------

    @staticmethod
    def _params(job: NewJob, now: float) -> dict[str, Any]:
        at = epoch(job.run_at) if job.run_at is not None else now + max(job.delay, 0.0)
        return {"queue": job.queue, "class": job.class_path, "priority": job.priority,
                "arguments": job.arguments, "key": job.key, "at": at, "now": now,
                "concurrency_key": job.limit.key if job.limit else None}

    def insert_job(self, job: NewJob, conn: Any = None) -> Inserted:
        with self._conn_for(conn) as c:
            if conn is None:
                with self._write(c):
                    return self._insert_one(c, job)
            return self._insert_one(c, job)

    def _insert_one(self, c: sqlite3.Connection, job: NewJob) -> Inserted:
        now = time.time()
        if job.limit is not None:
            _execute_script(c, "ensure_slots", {"key": job.limit.key, "to": job.limit.to,
                                                "duration": job.limit.duration})
        row = c.execute(Q["insert_job"], self._params(job, now)).fetchone()
        if row is not None:
            if job.limit is None:
                return Inserted(row[0], row[1], True)
            # RETURNING shows the row as inserted: the slot trigger may have blocked it since.
            state = c.execute(Q["job_state"], {"id": row[0]}).fetchone()[0]
            if state == "blocked" and job.limit.discard:
                _execute_script(c, "discard_blocked", {"id": row[0], "message": job.limit.conflict_reason,
                                                       "now": now})
                state = "discarded"
            return Inserted(row[0], state, True)
        found = c.execute(Q["find_active_by_key"], {"key": job.key}).fetchone()
        if found is None:  # cannot happen inside one write transaction
            raise DatabaseError(f"job with key {job.key!r} conflicted but no active job holds the key")
        return Inserted(found[0], found[1], False)

    def insert_jobs(self, ready: ReadyJobs, other: Sequence[NewJob], conn: Any = None) -> int:
        now = time.time()
        # executemany cannot return rows: the same statement without its RETURNING clause.
        insert = Q["insert_job"].rsplit("RETURNING", 1)[0]
        plain = [j for j in other if j.limit is None]
        limited = [j for j in other if j.limit is not None]

        def insert_all(c: sqlite3.Connection) -> int:
            before = c.total_changes
            c.executemany(Q["insert_ready"], ((*row, now) for row in ready.rows()))
            c.executemany(insert, (self._params(j, now) for j in plain))
            created = c.total_changes - before
            return created + sum(self._insert_one(c, j).created for j in limited)

        with self._conn_for(conn) as c:
            if conn is None:
                with self._write(c):
                    return insert_all(c)
            return insert_all(c)

    # -- inspection -----------------------------------------------------------------------

    def job_state(self, job_id: int, conn: Any = None) -> str | None:
        with self._conn_for(conn) as c:
            row = c.execute(Q["job_state"], {"id": job_id}).fetchone()
        return str(row[0]) if row else None


    def run(self, name: str, params: dict[str, Any] | None = None, conn: Any = None) -> list[dict[str, Any]]:
        bound = {k: _bind(v) for k, v in (params or {}).items()}
        bound.setdefault("now", time.time())
        statements = _statements(name)
        writes = any(st.lstrip().split(None, 1)[0].upper() in ("INSERT", "UPDATE", "DELETE") for st in statements)
        with self._conn_for(conn) as c:
            if writes and conn is None:
                with self._write(c):
                    return _run_all(c, statements, bound)
            return _run_all(c, statements, bound)

    def count(self, state: str | None = None, queue: str | None = None) -> int:
        with self._own() as c:
            row = c.execute(Q["count_jobs"], {"state": state, "queue": queue}).fetchone()
        return int(row[0]) if row else 0
