"""The SQLite store: enqueueing and operator work in one file, for one host and any number of processes.

Times are stored as epoch seconds from the host's clock (one host: it is the database's clock) and
given back as aware UTC datetimes; arrays travel as JSON text, read with json_each.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

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
from jobctl.store import common
from jobctl.store.interface import Session, Store
from jobctl.store.sqlite.connection import (
    Q,
    at,
    connect,
    latest_version,
    mapped,
    migrate,
    require_schema,
    schema_version,
    script,
    utc,
    write,
)
from jobctl.store.sqlite.session import SqliteSession
from jobctl.urls import DatabaseURL

# executemany cannot return rows: the insert without its RETURNING clause.
_INSERT_MANY = Q["insert_job"].rsplit("RETURNING", 1)[0]


def _ids(ids: Sequence[int]) -> str:
    return json.dumps(list(ids))


UNREADABLE_SHOWN = 200
"""Characters of an unreadable `arguments` text shown in its place."""


def _arguments(text: Any) -> Any:
    """Stored arguments as JSON values; text that is not JSON (a hand-edited or corrupted row) as
    `{"unreadable": "<the text, cut at UNREADABLE_SHOWN characters>"}`, so one such row does not
    hide the others. A worker fails such a job without running it."""
    try:
        return json.loads(text)
    except (TypeError, ValueError):
        shown = str(text)
        return {"unreadable": shown if len(shown) <= UNREADABLE_SHOWN else shown[:UNREADABLE_SHOWN] + "…"}


def _job(r: tuple[Any, ...]) -> JobInfo:
    """A row of the job queries (`list_jobs`, `jobs_by_ids`, `waiting_jobs`), without errors or progress."""
    return JobInfo(id=r[0], class_path=r[1], queue=r[2], priority=r[3], state=r[4], arguments=_arguments(r[5]),
                   attempts=r[6], crashes=r[7], errors=(), key=r[8], progress=None, enqueued_at=at(r[9]),
                   scheduled_at=at(r[10]), claimed_at=utc(r[11]), finished_at=utc(r[12]),
                   process_id=r[13], batch_id=r[14])


def _progress(done: Any, total: Any, message: str | None, when: float) -> Progress:
    return Progress(float(done), None if total is None else float(total), message, at(when))


def _task_args(text: Any) -> Any:
    """A class task's stored positional arguments (its tick jobs' arguments, shown as `_arguments` does)."""
    found = _arguments(text)
    return found.get("args", []) if isinstance(found, dict) and "unreadable" not in found else found


class SqliteStore(Store):
    """Jobs in an SQLite file: one host, any number of processes."""

    def __init__(self, url: DatabaseURL) -> None:
        self.url = url
        self._conn: sqlite3.Connection | None = None
        self._lock = threading.RLock()
        self._schema_checked = False

    def _raw(self) -> sqlite3.Connection:
        """The store's own connection, schema unchecked (for migrate and schema_version)."""
        with self._lock:
            if self._conn is None:
                self._conn = connect(self.url)
            return self._conn

    def _open(self) -> sqlite3.Connection:
        """The store's own connection; opening it creates the schema in a new file, once."""
        with self._lock:
            conn = self._raw()
            if not self._schema_checked:
                require_schema(conn, self.url)
                self._schema_checked = True
            return conn

    @contextmanager
    def _own(self) -> Iterator[sqlite3.Connection]:
        """The store's own connection; a locked file or a full disk raise DatabaseError (one line)."""
        with mapped(self.url):
            conn = self._open()
            with self._lock:
                yield conn

    @contextmanager
    def _conn_for(self, conn: Any) -> Iterator[sqlite3.Connection]:
        if conn is not None:
            with mapped(self.url):
                self._open()  # a caller's connection still needs the schema in the file
            yield conn
        else:
            with self._own() as own:
                yield own

    @contextmanager
    def _writing(self, conn: Any = None) -> Iterator[sqlite3.Connection]:
        """A connection to write on: the caller's (inside its transaction), or ours in a write transaction."""
        with self._conn_for(conn) as c:
            if conn is not None:
                yield c
            else:
                with write(c):
                    yield c

    def _rows(self, name: str, params: dict[str, Any] | None = None, conn: Any = None) -> list[Any]:
        with self._conn_for(conn) as c:
            return c.execute(Q[name], params or {}).fetchall()

    def session(self) -> Session:
        with mapped(self.url):
            self._open()  # the schema must exist before a runtime process claims
            return SqliteSession(self.url)

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    # -- schema ---------------------------------------------------------------------------

    def migrate(self) -> list[str]:
        with self._lock, mapped(self.url):
            applied = migrate(self._raw())
            self._schema_checked = True
            return applied

    def schema_version(self) -> tuple[int, int]:
        with self._lock, mapped(self.url):
            return schema_version(self._raw()), latest_version()

    def ensure_schema(self) -> None:
        with mapped(self.url):
            self._open()

    def check_connection(self, conn: Any) -> None:
        if not isinstance(conn, sqlite3.Connection):
            raise ValueError(f"jobctl uses SQLite here; using() needs a sqlite3.Connection, got {type(conn)!r}")
        files = {row[1]: row[2] for row in conn.execute("PRAGMA database_list")}
        if os.path.realpath(files.get("main") or "") != os.path.realpath(self.url.target):
            raise ValueError(f"the connection given to using() is not to jobctl's database {self.url.redacted}")

    # -- enqueue --------------------------------------------------------------------------

    @staticmethod
    def _params(job: NewJob, now: float) -> dict[str, Any]:
        due = job.run_at.timestamp() if job.run_at is not None else now + max(job.delay, 0.0)
        return {"queue": job.queue, "class": job.class_path, "priority": job.priority,
                "arguments": job.arguments, "key": job.key, "at": due, "now": now, "timeout": job.timeout,
                "concurrency_key": job.limit.key if job.limit else None, "waits": job.waits,
                "batch_id": job.batch_id, "on_dependency_failure": "run" if job.run_on_dependency_failure else None}

    def insert_job(self, job: NewJob, conn: Any = None) -> Inserted:
        with self._writing(conn) as c:
            return self._insert_one(c, job)

    def _insert_one(self, c: sqlite3.Connection, job: NewJob) -> Inserted:
        now = time.time()
        if job.limit is not None:
            script(c, "ensure_slots", {"key": job.limit.key, "to": job.limit.to, "duration": job.limit.duration})
        row = c.execute(Q["insert_job"], self._params(job, now)).fetchone()
        if row is not None:
            if job.waits:
                found = script(c, "depend", {"id": row[0], "jobs": _ids(job.after_jobs),
                                             "batches": _ids(job.after_batches), "now": now})
                return Inserted(row[0], str(found[0][0]), True)
            if job.limit is None:
                return Inserted(row[0], row[1], True)
            # RETURNING shows the row as inserted: the slot trigger may have blocked it since.
            state = c.execute(Q["job_state"], {"id": row[0]}).fetchone()[0]
            if state == "blocked" and job.limit.discard:
                script(c, "discard_blocked", {"id": row[0], "message": job.limit.conflict_reason, "now": now})
                state = "discarded"
            return Inserted(row[0], state, True)
        found = c.execute(Q["find_active_by_key"], {"key": job.key}).fetchone()
        if found is None:  # cannot happen inside one write transaction
            raise DatabaseError(f"job with key {job.key!r} conflicted but no active job holds the key")
        return Inserted(found[0], found[1], False)

    def insert_jobs(self, ready: ReadyJobs, other: Sequence[NewJob], conn: Any = None) -> int:
        now = time.time()
        plain = [j for j in other if j.limit is None and not j.waits]
        limited = [j for j in other if j.limit is not None or j.waits]
        with self._writing(conn) as c:
            # rowcount, not total_changes: a member's insert also counts it in its batch (a trigger).
            created = max(c.executemany(Q["insert_ready"], ((*row, now) for row in ready.rows())).rowcount, 0)
            created += max(c.executemany(_INSERT_MANY, (self._params(j, now) for j in plain)).rowcount, 0)
            return created + sum(self._insert_one(c, j).created for j in limited)

    def insert_workflow(self, jobs: Sequence[NewJob], conn: Any = None) -> list[Inserted]:
        inserted: list[Inserted] = []
        with self._writing(conn) as c:
            for job in jobs:
                inserted.append(self._insert_one(c, common.resolve_references(job, inserted)))
        return inserted

    def job_state(self, job_id: int, conn: Any = None) -> str | None:
        rows = self._rows("job_state", {"id": job_id}, conn)
        return str(rows[0][0]) if rows else None

    def count(self, state: str | None = None, queue: str | None = None) -> int:
        return int(self._rows("count_jobs", {"state": state, "queue": queue})[0][0])

    def set_progress(self, job_id: int, done: float, total: float | None, message: str | None) -> None:
        with self._writing() as c:
            c.execute(Q["set_progress"], {"id": job_id, "done": done, "total": total, "message": message,
                                          "now": time.time()})

    # -- batches --------------------------------------------------------------------------

    def create_batch(self, *, description: str | None, metadata: str | None, parent_job_id: int | None,
                     conn: Any = None) -> int:
        with self._writing(conn) as c:
            return int(c.execute(Q["create_batch"], {"description": description, "metadata": metadata,
                                                     "parent_job_id": parent_job_id, "now": time.time()}).fetchone()[0])

    def seal_batch(self, batch_id: int, callbacks: Sequence[BatchCallback], conn: Any = None) -> None:
        with self._writing(conn) as c:
            c.execute(Q["seal_batch"], {"id": batch_id, **common.callback_json(callbacks)})

    def _batches(self, rows: list[Any], conn: Any = None, states: bool = False) -> list[BatchInfo]:
        found = []
        for r in rows:
            counts = {s: int(n) for s, n in self._rows("batch_states", {"id": r[0]}, conn)} if states else None
            found.append(common.batch_info(r, at(r[7]), utc(r[8]), None if r[2] is None else json.loads(r[2]), counts))
        return found

    def get_batches(self, ids: Sequence[int], conn: Any = None, *, states: bool = False) -> list[BatchInfo]:
        return self._batches(self._rows("batches_by_ids", {"ids": _ids(ids)}, conn), conn, states)

    def list_batches(self, *, state: str | None = None, limit: int = 50, after: int | None = None) -> list[BatchInfo]:
        return self._batches(self._rows("list_batches", {"state": state, "limit": limit, "after": after}))

    def batch_active_members(self, batch_id: int, limit: int) -> list[int]:
        return [r[0] for r in self._rows("batch_members", {"id": batch_id, "limit": limit})]

    # -- reading, for operators -----------------------------------------------------------

    def queue_counts(self) -> QueueCounts:
        now = time.time()
        rows = self._rows("queue_counts")
        return QueueCounts(at(now), tuple(QueueCount(r[0], r[1], int(r[2]), utc(r[3])) for r in rows))

    def metrics_reading(self, alive_threshold: float) -> MetricsReading:
        now = time.time()
        rows = self._rows("metrics_reading", {"now": now, "threshold": alive_threshold})
        return MetricsReading(
            at(now),
            tuple(QueueCount(r[1], r[2], int(r[3]), utc(r[4])) for r in rows if r[0] == "jobs"),
            tuple(ProcessCount(r[1], r[2], int(r[3] or 0), max(float(r[5]), 0.0)) for r in rows
                  if r[0] == "processes"))

    def count_in_state(self, state: str) -> int:
        return int(self._rows("count_in_state", {"state": state})[0][0])

    def paused_queues(self) -> list[str]:
        return [r[0] for r in self._rows("paused_queues")]

    def throughput(self) -> list[ThroughputMinute]:
        rows = self._rows("throughput", {"now": time.time()})
        return [ThroughputMinute(at(r[0]), int(r[1]), int(r[2])) for r in rows]

    def throughput_totals(self) -> ThroughputTotals:
        r = self._rows("throughput_totals", {"now": time.time()})[0]
        return ThroughputTotals(int(r[0]), int(r[1]), at(r[2]))

    def queues_used(self, within: float) -> list[str]:
        return [r[0] for r in self._rows("queues_used", {"now": time.time(), "within": within})]

    def live_process_count(self, threshold: float) -> int:
        return int(self._rows("live_process_count", {"now": time.time(), "threshold": threshold})[0][0])

    def _with_details(self, rows: list[Any], conn: Any = None, *, dependencies: bool = False) -> list[JobInfo]:
        jobs = [_job(r) for r in rows]
        if not jobs:
            return []
        ids = _ids([j.id for j in jobs])
        errors = [(r[0], ErrorInfo(r[1], r[2], r[3], r[4], at(r[5]), r[6]))
                  for r in self._rows("errors_of_jobs", {"ids": ids}, conn)]
        progress = [(r[0], _progress(r[1], r[2], r[3], r[4])) for r in self._rows("progress_of_jobs", {"ids": ids},
                                                                                 conn)]
        finished = common.finished_ids(jobs)
        results = [(r[0], json.loads(r[1])) for r in self._rows("results_of_jobs", {"ids": _ids(finished)}, conn)] \
            if finished else []
        detailed = common.with_details(jobs, errors, progress, results)
        if not dependencies:
            return detailed
        waits = [(r[0], Dependency(r[1], r[2], r[3])) for r in self._rows("dependencies_of_jobs", {"ids": ids}, conn)]
        waited = [(r[0], r[1]) for r in self._rows("dependents_of_jobs", {"ids": ids}, conn)]
        return common.with_dependencies(detailed, waits, waited)

    def get_jobs(self, ids: Sequence[int], conn: Any = None) -> list[JobInfo]:
        return self._with_details(self._rows("jobs_by_ids", {"ids": _ids(ids)}, conn), conn, dependencies=True)

    def list_jobs(self, *, state: str | None = None, queue: str | None = None, class_path: str | None = None,
                  limit: int = 50, after: int | None = None) -> list[JobInfo]:
        return self._with_details(self._rows("list_jobs", {"state": state, "queue": queue, "class": class_path,
                                                           "limit": limit, "after": after}))

    def waiting_jobs(self) -> list[JobInfo]:
        return self._with_details(self._rows("waiting_jobs"))

    def match_jobs(self, *, states: Sequence[str], queue: str | None = None, class_path: str | None = None,
                   older_than: float | None = None) -> list[int]:
        return [r[0] for r in self._rows("match_jobs", {"states": json.dumps(list(states)), "queue": queue,
                                                        "class": class_path, "older_than": older_than,
                                                        "now": time.time()})]

    def failed_page(self, *, after: int = 0, limit: int = 10_000) -> list[FailureSummary]:
        return [FailureSummary(id=r[0], queue=r[1], class_path=r[2], attempts=r[3], failed_at=utc(r[4]),
                               error_class=r[5], error_message=r[6])
                for r in self._rows("failed_page", {"after": after, "limit": limit})]

    def claimed_executions(self, limit: int) -> list[ClaimedExecution]:
        return [ClaimedExecution(id=r[0], class_path=r[1], queue=r[2], claimed_at=utc(r[3]), attempts=r[4],
                                 attempts_base=r[5], process_id=r[6], hostname=r[7], pid=r[8], process_kind=r[9],
                                 progress=None if r[10] is None else _progress(r[10], r[11], r[12], r[13]))
                for r in self._rows("claimed_executions", {"limit": limit})]

    def processes(self) -> list[ProcessInfo]:
        return [ProcessInfo(id=r[0], kind=r[1], hostname=r[2], pid=r[3], supervisor_id=r[4],
                            queues=tuple(r[5].split(",")) if r[5] else None, threads=r[6], busy=r[7] or 0,
                            last_heartbeat_at=at(r[8]), started_at=at(r[9]), wakeup=r[10])
                for r in self._rows("processes")]

    def recurring_tasks(self) -> list[RecurringInfo]:
        return [RecurringInfo(key=r[0], schedule=r[1], cron=r[2], class_path=None if r[4] else r[3], command=r[4],
                              # A command's tick job carries only the task key; its own args live in recurring.yml.
                              args=None if r[4] else _task_args(r[5]), queue=r[6], priority=r[7],
                              description=r[8], next_run_at=utc(r[9]), last_run_at=utc(r[10]),
                              last_run_manual=bool(r[11]))
                for r in self._rows("recurring_tasks")]

    def recurring_task(self, key: str) -> RecurringRow | None:
        rows = self._rows("recurring_task", {"key": key})
        if not rows:
            return None
        r = rows[0]
        return RecurringRow(key=r[0], schedule=r[1], cron=r[2], class_path=r[3], command=r[4], arguments=r[5],
                            queue=r[6], priority=r[7], description=r[8], next_run_at=utc(r[9]))

    # -- changing, for operators ----------------------------------------------------------

    def _change(self, name: str, params: dict[str, Any]) -> list[int]:
        """Run a writing named query in a write transaction; the ids it returns, ascending."""
        with self._writing() as c:
            return sorted(r[0] for r in script(c, name, {**params, "now": time.time()}))

    def retry_failed(self, ids: Sequence[int]) -> list[int]:
        return self._change("retry_failed", {"ids": _ids(ids)})

    def discard_jobs(self, ids: Sequence[int]) -> list[int]:
        return self._change("discard_jobs", {"ids": _ids(ids)})

    def delete_jobs(self, ids: Sequence[int]) -> list[int]:
        deleted: list[int] = []
        for batch in common.batches(ids):
            deleted.extend(self._change("delete_jobs", {"ids": _ids(batch)}))
        return sorted(deleted)

    def pause_queue(self, queue: str) -> bool:
        return bool(self._change("pause_queue", {"queue": queue}))

    def resume_queue(self, queue: str) -> bool:
        return bool(self._change("resume_queue", {"queue": queue}))

    def enqueue_recurring_now(self, key: str) -> int | None:
        found = self._change("enqueue_recurring_now", {"key": key})
        return found[0] if found else None

    def make_scheduled_due(self) -> int:
        return len(self._change("make_scheduled_due", {}))
