"""The PostgreSQL store: enqueueing and operator work on the store's own connection or the caller's."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from typing import Any

import psycopg

from jobctl.errors import DatabaseError
from jobctl.records import (
    BatchCallback,
    BatchInfo,
    ClaimedExecution,
    Dependency,
    ErrorInfo,
    FailureSummary,
    Inserted,
    JobInfo,
    MetricsReading,
    NewJob,
    ProcessCount,
    ProcessInfo,
    Progress,
    QueueCount,
    QueueCounts,
    ReadyJobs,
    RecurringInfo,
    RecurringRow,
    ThroughputMinute,
    ThroughputTotals,
)
from jobctl.store import common, sqlfiles
from jobctl.store.interface import Listener, Session, Store, StoreOptions
from jobctl.store.postgres.connection import PACKAGE, Q, connect, latest_version, lost, require_schema, schema_version
from jobctl.store.postgres.session import PostgresListener, PostgresSession
from jobctl.urls import DatabaseURL

# Two hosts running `db migrate` at once serialise on this advisory lock.
MIGRATION_LOCK = 0x6A6F6263746C  # "jobctl"
COPY_CHUNK = 5000
_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def _copy_text(value: str) -> str:
    """A value in COPY's text format (backslash, tab, newline and carriage return escaped)."""
    return value.translate(_COPY_ESCAPES) if "\\" in value or "\t" in value or "\n" in value or "\r" in value \
        else value


def _job(r: tuple[Any, ...]) -> JobInfo:
    """A row of the job queries (`list_jobs`, `jobs_by_ids`, `waiting_jobs`), without errors or progress."""
    return JobInfo(id=r[0], class_path=r[1], queue=r[2], priority=r[3], state=r[4], arguments=r[5], attempts=r[6],
                   crashes=r[7], errors=(), key=r[8], progress=None, enqueued_at=r[9], scheduled_at=r[10],
                   claimed_at=r[11], finished_at=r[12], process_id=r[13], batch_id=r[14])


def _progress(done: Any, total: Any, message: str | None, at: dt.datetime) -> Progress:
    return Progress(float(done), None if total is None else float(total), message, at)


class PostgresStore(Store):
    """Jobs in a PostgreSQL database."""

    def __init__(self, url: DatabaseURL, options: StoreOptions | None = None) -> None:
        self.url = url
        self.options = options or StoreOptions()
        # Behind a transaction pooler LISTEN on the URL would seem to work and hear nothing.
        self.listens = self.options.prepares or self.options.listen_url is not None
        self._conn: psycopg.Connection[Any] | None = None
        self._lock = threading.RLock()
        self._schema_checked = False
        self._identity: str | None = None

    @contextmanager
    def _own(self, *, check: bool = True) -> Iterator[psycopg.Connection[Any]]:
        """The store's own autocommit connection, reopened after a failure; its schema checked once."""
        with self._lock:
            if self._conn is None or self._conn.closed:
                self._conn = connect(self.url, prepare=self.options.prepares)
            try:
                if check and not self._schema_checked:
                    require_schema(self._conn, self.url)
                    self._schema_checked = True
                yield self._conn
            except psycopg.Error as exc:  # on the store's own connection: one line, never a driver traceback
                if isinstance(exc, psycopg.OperationalError) or self._conn.closed:
                    self._conn.close()
                    self._conn = None
                raise lost(exc, self.url) from None

    @contextmanager
    def _conn_for(self, conn: Any) -> Iterator[psycopg.Connection[Any]]:
        if conn is not None:
            yield conn
        else:
            with self._own() as own:
                yield own

    def _rows(self, name: str, params: dict[str, Any] | None = None, conn: Any = None) -> list[tuple[Any, ...]]:
        """Every row of one named query."""
        with self._conn_for(conn) as c:
            return c.execute(Q[name], params or {}).fetchall()

    def _one(self, name: str, params: dict[str, Any] | None = None, conn: Any = None) -> tuple[Any, ...]:
        """The single row of a named query that always returns one."""
        rows = self._rows(name, params, conn)
        return rows[0]

    def session(self) -> Session:
        return PostgresSession(self.url, prepare=self.options.prepares)

    def listener(self, share: Session | None = None) -> Listener | None:
        if self.options.listen_url is not None:
            return PostgresListener(self.options.listen_url)
        if not self.listens:
            return None
        if isinstance(share, PostgresSession):
            return PostgresListener(self.url, share.conn)
        return PostgresListener(self.url)

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    # -- schema ---------------------------------------------------------------------------

    def migrate(self) -> list[str]:
        applied: list[str] = []
        with self._own(check=False) as conn, conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))
            conn.execute(
                "CREATE TABLE IF NOT EXISTS jobctl_migrations (version integer PRIMARY KEY, "
                "name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())"
            )
            done = {row[0] for row in conn.execute("SELECT version FROM jobctl_migrations")}
            for version, name, text in sqlfiles.migrations(PACKAGE):
                if version in done:
                    continue
                conn.execute(text.encode())
                conn.execute("INSERT INTO jobctl_migrations (version, name) VALUES (%s, %s)", (version, name))
                applied.append(f"{version:04d}_{name}")
        self._schema_checked = True
        return applied

    def schema_version(self) -> tuple[int, int]:
        with self._own(check=False) as conn:
            return schema_version(conn), latest_version()

    def ensure_schema(self) -> None:
        with self._own():
            pass

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
            if (job.limit is not None or job.waits) and conn is None:
                with c.transaction():
                    return self._insert_one(c, job)
            return self._insert_one(c, job)

    def _insert_one(self, c: psycopg.Connection[Any], job: NewJob) -> Inserted:
        params = {"queue": job.queue, "class": job.class_path, "priority": job.priority, "arguments": job.arguments,
                  "key": job.key, "run_at": job.run_at, "delay": job.delay, "timeout": job.timeout,
                  "concurrency_key": job.limit.key if job.limit else None,
                  # A limited job waits as blocked until jobctl_unblock gives it a slot (just below).
                  "due_state": "blocked" if job.limit else "ready", "waits": job.waits, "batch_id": job.batch_id,
                  "on_dependency_failure": "run" if job.run_on_dependency_failure else None}
        if job.limit is not None:
            c.execute(Q["ensure_slots"], {"key": job.limit.key, "to": job.limit.to, "duration": job.limit.duration})
        for _ in range(10):
            row = c.execute(Q["insert_job"], params).fetchone()
            if row is not None:
                state = row[1]
                if job.waits:
                    state = str(c.execute(Q["depend"], {"id": row[0], "jobs": list(job.after_jobs),
                                                        "batches": list(job.after_batches)}).fetchone()[0])  # type: ignore[index]
                    return Inserted(row[0], state, True)
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
        limited = [j for j in other if j.limit is not None or j.waits]
        other = [j for j in other if j.limit is None and not j.waits]
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
                "timeouts": [j.timeout for j in other],
                "batch_ids": [j.batch_id for j in other],
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

    def insert_workflow(self, jobs: Sequence[NewJob], conn: Any = None) -> list[Inserted]:
        with self._conn_for(conn) as c:
            if conn is not None:
                return self._insert_workflow(c, jobs)
            with c.transaction():
                return self._insert_workflow(c, jobs)

    def _insert_workflow(self, c: psycopg.Connection[Any], jobs: Sequence[NewJob]) -> list[Inserted]:
        inserted: list[Inserted] = []
        for job in jobs:
            inserted.append(self._insert_one(c, common.resolve_references(job, inserted)))
        return inserted

    def job_state(self, job_id: int, conn: Any = None) -> str | None:
        rows = self._rows("job_state", {"id": job_id}, conn)
        return str(rows[0][0]) if rows else None

    def count(self, state: str | None = None, queue: str | None = None) -> int:
        return int(self._one("count_jobs", {"state": state, "queue": queue})[0])

    def set_progress(self, job_id: int, done: float, total: float | None, message: str | None) -> None:
        with self._own() as c:
            c.execute(Q["set_progress"], {"id": job_id, "done": done, "total": total, "message": message})

    # -- batches --------------------------------------------------------------------------

    def create_batch(self, *, description: str | None, metadata: str | None, parent_job_id: int | None,
                     conn: Any = None) -> int:
        return int(self._one("create_batch", {"description": description, "metadata": metadata,
                                              "parent_job_id": parent_job_id}, conn)[0])

    def seal_batch(self, batch_id: int, callbacks: Sequence[BatchCallback], conn: Any = None) -> None:
        with self._conn_for(conn) as c:
            c.execute(Q["seal_batch"], {"id": batch_id, **common.callback_json(callbacks)})

    def _batches(self, rows: list[tuple[Any, ...]], conn: Any = None, states: bool = False) -> list[BatchInfo]:
        found = []
        for r in rows:
            counts = {s: int(n) for s, n in self._rows("batch_states", {"id": r[0]}, conn)} if states else None
            found.append(common.batch_info(r, r[7], r[8], r[2], counts))
        return found

    def get_batches(self, ids: Sequence[int], conn: Any = None, *, states: bool = False) -> list[BatchInfo]:
        return self._batches(self._rows("batches_by_ids", {"ids": list(ids)}, conn), conn, states)

    def list_batches(self, *, state: str | None = None, limit: int = 50, after: int | None = None) -> list[BatchInfo]:
        return self._batches(self._rows("list_batches", {"state": state, "limit": limit, "after": after}))

    def batch_active_members(self, batch_id: int, limit: int) -> list[int]:
        return [r[0] for r in self._rows("batch_members", {"id": batch_id, "limit": limit})]

    # -- reading, for operators -----------------------------------------------------------

    def queue_counts(self) -> QueueCounts:
        rows = self._rows("queue_counts")
        return QueueCounts(rows[0][0], tuple(QueueCount(r[1], r[2], int(r[3]), r[4]) for r in rows if r[1] is not None))

    def metrics_reading(self, alive_threshold: float) -> MetricsReading:
        rows = self._rows("metrics_reading", {"threshold": alive_threshold})
        return MetricsReading(
            next(r[4] for r in rows if r[0] == "now"),
            tuple(QueueCount(r[1], r[2], int(r[3]), r[4]) for r in rows if r[0] == "jobs"),
            tuple(ProcessCount(r[1], r[2], int(r[3]), max(float(r[5]), 0.0)) for r in rows if r[0] == "processes"))

    def count_in_state(self, state: str) -> int:
        return int(self._one("count_in_state", {"state": state})[0])

    def paused_queues(self) -> list[str]:
        return [r[0] for r in self._rows("paused_queues")]

    def throughput(self) -> list[ThroughputMinute]:
        return [ThroughputMinute(r[0], int(r[1]), int(r[2])) for r in self._rows("throughput")]

    def throughput_totals(self) -> ThroughputTotals:
        r = self._one("throughput_totals")
        return ThroughputTotals(int(r[0]), int(r[1]), r[2])

    def queues_used(self, within: float) -> list[str]:
        return [r[0] for r in self._rows("queues_used", {"within": within})]

    def live_process_count(self, threshold: float) -> int:
        return int(self._one("live_process_count", {"threshold": threshold})[0])

    def _with_details(self, rows: list[tuple[Any, ...]], conn: Any = None, *,
                      dependencies: bool = False) -> list[JobInfo]:
        jobs = [_job(r) for r in rows]
        if not jobs:
            return []
        ids = [j.id for j in jobs]
        errors = [(r[0], ErrorInfo(r[1], r[2], r[3], r[4], r[5], r[6]))
                  for r in self._rows("errors_of_jobs", {"ids": ids}, conn)]
        progress = [(r[0], _progress(r[1], r[2], r[3], r[4])) for r in self._rows("progress_of_jobs", {"ids": ids},
                                                                                 conn)]
        finished = common.finished_ids(jobs)
        results = [(r[0], r[1]) for r in self._rows("results_of_jobs", {"ids": finished}, conn)] if finished else []
        detailed = common.with_details(jobs, errors, progress, results)
        if not dependencies:
            return detailed
        waits = [(r[0], Dependency(r[1], r[2], r[3])) for r in self._rows("dependencies_of_jobs", {"ids": ids}, conn)]
        waited = [(r[0], r[1]) for r in self._rows("dependents_of_jobs", {"ids": ids}, conn)]
        return common.with_dependencies(detailed, waits, waited)

    def get_jobs(self, ids: Sequence[int], conn: Any = None) -> list[JobInfo]:
        return self._with_details(self._rows("jobs_by_ids", {"ids": list(ids)}, conn), conn, dependencies=True)

    def list_jobs(self, *, state: str | None = None, queue: str | None = None, class_path: str | None = None,
                  limit: int = 50, after: int | None = None) -> list[JobInfo]:
        return self._with_details(self._rows("list_jobs", {"state": state, "queue": queue, "class": class_path,
                                                           "limit": limit, "after": after}))

    def waiting_jobs(self) -> list[JobInfo]:
        return self._with_details(self._rows("waiting_jobs"))

    def match_jobs(self, *, states: Sequence[str], queue: str | None = None, class_path: str | None = None,
                   older_than: float | None = None) -> list[int]:
        return [r[0] for r in self._rows("match_jobs", {"states": list(states), "queue": queue, "class": class_path,
                                                        "older_than": older_than})]

    def failed_page(self, *, after: int = 0, limit: int = 10_000) -> list[FailureSummary]:
        return [FailureSummary(id=r[0], queue=r[1], class_path=r[2], attempts=r[3], failed_at=r[4],
                               error_class=r[5], error_message=r[6])
                for r in self._rows("failed_page", {"after": after, "limit": limit})]

    def claimed_executions(self, limit: int) -> list[ClaimedExecution]:
        return [ClaimedExecution(id=r[0], class_path=r[1], queue=r[2], claimed_at=r[3], attempts=r[4],
                                 attempts_base=r[5], process_id=r[6], hostname=r[7], pid=r[8], process_kind=r[9],
                                 progress=None if r[10] is None else _progress(r[10], r[11], r[12], r[13]))
                for r in self._rows("claimed_executions", {"limit": limit})]

    def processes(self) -> list[ProcessInfo]:
        return [ProcessInfo(id=r[0], kind=r[1], hostname=r[2], pid=r[3], supervisor_id=r[4],
                            queues=tuple(r[5].split(",")) if r[5] else None, threads=r[6], busy=r[7] or 0,
                            last_heartbeat_at=r[8], started_at=r[9], wakeup=r[10])
                for r in self._rows("processes")]

    def recurring_tasks(self) -> list[RecurringInfo]:
        return [RecurringInfo(key=r[0], schedule=r[1], cron=r[2], class_path=None if r[4] else r[3], command=r[4],
                              # A command's tick job carries only the task key; its own args live in recurring.yml.
                              args=None if r[4] else r[5].get("args", []), queue=r[6], priority=r[7],
                              description=r[8], next_run_at=r[9], last_run_at=r[10], last_run_manual=bool(r[11]))
                for r in self._rows("recurring_tasks")]

    def recurring_task(self, key: str) -> RecurringRow | None:
        rows = self._rows("recurring_task", {"key": key})
        if not rows:
            return None
        r = rows[0]
        return RecurringRow(key=r[0], schedule=r[1], cron=r[2], class_path=r[3], command=r[4], arguments=r[5],
                            queue=r[6], priority=r[7], description=r[8], next_run_at=r[9])

    # -- changing, for operators ----------------------------------------------------------

    def retry_failed(self, ids: Sequence[int]) -> list[int]:
        return sorted(r[0] for r in self._rows("retry_failed", {"ids": list(ids)}))

    def discard_jobs(self, ids: Sequence[int]) -> list[int]:
        return sorted(r[0] for r in self._rows("discard_jobs", {"ids": list(ids)}))

    def delete_jobs(self, ids: Sequence[int]) -> list[int]:
        deleted: list[int] = []
        for batch in common.batches(ids):
            deleted.extend(r[0] for r in self._rows("delete_jobs", {"ids": batch}))
        return sorted(deleted)

    def pause_queue(self, queue: str) -> bool:
        return bool(self._rows("pause_queue", {"queue": queue}))

    def resume_queue(self, queue: str) -> bool:
        return bool(self._rows("resume_queue", {"queue": queue}))

    def enqueue_recurring_now(self, key: str) -> int | None:
        rows = self._rows("enqueue_recurring_now", {"key": key})
        return int(rows[0][0]) if rows else None

    def make_scheduled_due(self) -> int:
        return len(self._rows("make_scheduled_due"))
