"""The PostgreSQL backend (psycopg 3): the only module that talks to PostgreSQL."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from typing import Any

import psycopg
from psycopg.rows import dict_row

from jobctl.errors import DatabaseError
from jobctl.store import queries
from jobctl.store.base import Inserted, Listener, NewJob, ReadyJobs, RuntimeSession, Store
from jobctl.urls import DatabaseURL, scrub

CONNECT_TIMEOUT = 5
# Two hosts running `db migrate` at once serialise on this advisory lock.
MIGRATION_LOCK = 0x6A6F6263746C  # "jobctl"
Q = queries.load("postgres")


def connect(url: DatabaseURL, *, autocommit: bool = True) -> psycopg.Connection[Any]:
    """Open a connection, turning every failure into one line without the password."""
    try:
        return psycopg.connect(url.target, autocommit=autocommit, connect_timeout=CONNECT_TIMEOUT)
    except (psycopg.Error, ValueError) as exc:
        raise DatabaseError(f"cannot connect to {url.redacted}: {scrub(str(exc), url)}") from None


COPY_CHUNK = 5000
_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def _copy_text(value: str) -> str:
    """A value in COPY's text format (backslash, tab, newline and carriage return escaped)."""
    return value.translate(_COPY_ESCAPES) if "\\" in value or "\t" in value or "\n" in value or "\r" in value \
        else value


class PostgresStore(Store):
    """Jobs in a PostgreSQL database."""

    listens = True

    def __init__(self, url: DatabaseURL) -> None:
        self.url = url
        self._conn: psycopg.Connection[Any] | None = None
        self._lock = threading.RLock()
        self._identity: str | None = None

    @contextmanager
    def _own(self) -> Iterator[psycopg.Connection[Any]]:
        """The store's own autocommit connection, reopened after a failure."""
        with self._lock:
            if self._conn is None or self._conn.closed:
                self._conn = connect(self.url)
            try:
                yield self._conn
            except psycopg.OperationalError as exc:
                self._conn.close()
                self._conn = None
                raise DatabaseError(f"database {self.url.redacted}: {scrub(str(exc), self.url)}") from None

    @contextmanager
    def _conn_for(self, conn: Any) -> Iterator[psycopg.Connection[Any]]:
        if conn is not None:
            yield conn
        else:
            with self._own() as own:
                yield own

    def session(self) -> RuntimeSession:
        from jobctl.store.postgres_runtime import PostgresSession

        return PostgresSession(self.url)

    def listener(self) -> Listener:
        from jobctl.store.postgres_runtime import PostgresListener

        return PostgresListener(self.url)

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    # -- schema ---------------------------------------------------------------------------

    def migrate(self) -> list[str]:
        applied: list[str] = []
        with self._own() as conn, conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))
            conn.execute(
                "CREATE TABLE IF NOT EXISTS jobctl_migrations (version integer PRIMARY KEY, "
                "name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())"
            )
            done = {row[0] for row in conn.execute("SELECT version FROM jobctl_migrations")}
            for version, name, sql in queries.migrations("postgres"):
                if version in done:
                    continue
                conn.execute(sql.encode())
                conn.execute("INSERT INTO jobctl_migrations (version, name) VALUES (%s, %s)", (version, name))
                applied.append(f"{version:04d}_{name}")
        return applied

    def schema_version(self) -> tuple[int, int]:
        latest = queries.migrations("postgres")[-1][0]
        with self._own() as conn:
            exists = conn.execute("SELECT to_regclass('jobctl_migrations') IS NOT NULL").fetchone()
            if not exists or not exists[0]:
                return 0, latest
            row = conn.execute("SELECT COALESCE(max(version), 0) FROM jobctl_migrations").fetchone()
        return (int(row[0]) if row else 0), latest

    def _database_identity(self, conn: psycopg.Connection[Any]) -> str:
        row = conn.execute(Q["database_identity"]).fetchone()
        return str(row[0]) if row else ""

    def check_connection(self, conn: Any) -> None:
        if not isinstance(conn, psycopg.Connection):
            raise ValueError(f"jobctl uses PostgreSQL here; using() needs a psycopg Connection, got {type(conn)!r}")
        if self._identity is None:
            with self._own() as own:
                self._identity = self._database_identity(own)
        if self._database_identity(conn) != self._identity:
            raise ValueError(f"the connection given to using() is not to jobctl's database {self.url.redacted}")

    # -- enqueue --------------------------------------------------------------------------

    def insert_job(self, job: NewJob, conn: Any = None) -> Inserted:
        with self._conn_for(conn) as c:
            if job.limit is not None and conn is None:
                with c.transaction():
                    return self._insert_one(c, job)
            return self._insert_one(c, job)

    def _insert_one(self, c: psycopg.Connection[Any], job: NewJob) -> Inserted:
        params = {"queue": job.queue, "class": job.class_path, "priority": job.priority, "arguments": job.arguments,
                  "key": job.key, "run_at": job.run_at, "delay": job.delay,
                  "concurrency_key": job.limit.key if job.limit else None,
                  # A limited job waits as blocked until jobctl_unblock gives it a slot (just below).
                  "due_state": "blocked" if job.limit else "ready"}
        if job.limit is not None:
            c.execute(Q["ensure_slots"], {"key": job.limit.key, "to": job.limit.to, "duration": job.limit.duration})
        for _ in range(10):
            row = c.execute(Q["insert_job"], params).fetchone()
            if row is not None:
                state = row[1]
                if job.limit is not None and state == "blocked":
                    c.execute(Q["unblock_key"], {"key": job.limit.key})
                    state = str(c.execute(Q["job_state"], {"id": row[0]}).fetchone()[0])  # type: ignore[index]
                    if state == "blocked" and job.limit.discard:
                        c.execute(Q["discard_blocked"], {"id": row[0], "message": job.limit.conflict_reason})
                        state = "discarded"
                return Inserted(row[0], state, True)
            # An active job holds the key; it may finish before we read it, then insert again.
            found = c.execute(Q["find_active_by_key"], {"key": job.key}).fetchone()
            if found is not None:
                return Inserted(found[0], found[1], False)
        raise DatabaseError(f"could not insert a job with key {job.key!r}: the key kept changing hands")

    def insert_jobs(self, ready: ReadyJobs, other: Sequence[NewJob], conn: Any = None) -> int:
        with self._conn_for(conn) as c:
            if conn is not None:
                return self._insert_jobs(c, ready, other)
            if other:
                with c.transaction():
                    return self._insert_jobs(c, ready, other)
            # On our own autocommit connection a lone COPY is a transaction by itself (no BEGIN and
            # COMMIT round trips). Its notification follows once the jobs are visible, and may fail
            # without failing the call: the jobs are in, and the workers' fallback poll finds them.
            self._copy_ready(c, ready)
            with suppress(psycopg.Error):
                self._notify_ready(c, ready)
            return len(ready)

    def _insert_jobs(self, c: psycopg.Connection[Any], ready: ReadyJobs, other: Sequence[NewJob]) -> int:
        created = 0
        if ready:
            self._copy_ready(c, ready)
            self._notify_ready(c, ready)
            created += len(ready)
        limited = [j for j in other if j.limit is not None]
        other = [j for j in other if j.limit is None]
        for j in limited:
            created += int(self._insert_one(c, j).created)
        if other:
            row = c.execute(Q["insert_jobs"], {
                "queues": [j.queue for j in other],
                "classes": [j.class_path for j in other],
                "priorities": [j.priority for j in other],
                "arguments": [j.arguments for j in other],
                "keys": [j.key for j in other],
                "run_ats": [j.run_at for j in other],
                "delays": [j.delay for j in other],
            }).fetchone()
            created += int(row[0]) if row else 0
        return created

    @staticmethod
    def _copy_ready(c: psycopg.Connection[Any], ready: ReadyJobs) -> None:
        # COPY's text format written by hand, a chunk at a time: the server stores one chunk while
        # the next is formatted (write_row's per-value dumping costs more than the rest of the path).
        prefixes = [f"{_copy_text(q)}\t{_copy_text(p)}\t{priority}\tready\t" for q, p, priority in ready.kinds]
        kind, args = ready.kind, ready.arguments
        with c.cursor() as cur, cur.copy(Q["copy_jobs"]) as copy:
            for start in range(0, len(kind), COPY_CHUNK):
                end = start + COPY_CHUNK
                copy.write("".join([f"{prefixes[k]}{_copy_text(a)}\n"
                                    for k, a in zip(kind[start:end], args[start:end], strict=True)]))

    @staticmethod
    def _notify_ready(c: psycopg.Connection[Any], ready: ReadyJobs) -> None:
        c.execute(Q["notify_queues"], {"queues": sorted({q for q, _, _ in ready.kinds})})

    # -- inspection -----------------------------------------------------------------------

    def job_state(self, job_id: int, conn: Any = None) -> str | None:
        with self._conn_for(conn) as c:
            row = c.execute(Q["job_state"], {"id": job_id}).fetchone()
        return str(row[0]) if row else None


    def run(self, name: str, params: dict[str, Any] | None = None, conn: Any = None) -> list[dict[str, Any]]:
        with self._conn_for(conn) as c, c.cursor(row_factory=dict_row) as cur:
            return cur.execute(Q[name], params or {}).fetchall()

    def count(self, state: str | None = None, queue: str | None = None) -> int:
        with self._own() as c:
            row = c.execute(Q["count_jobs"], {"state": state, "queue": queue}).fetchone()
        return int(row[0]) if row else 0
