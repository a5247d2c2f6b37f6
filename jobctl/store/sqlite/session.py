"""The SQLite runtime session: one connection per process; each step is one BEGIN IMMEDIATE."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import sqlite3
import time
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from jobctl.records import ClaimedJob, JobSummary, ProcessRef, RecurringRow, RunError, Selector
from jobctl.store.common import HEAD
from jobctl.store.interface import Session
from jobctl.store.sqlite.connection import Q, connect, database_error, is_busy, mapped, script, unavailable
from jobctl.urls import DatabaseURL

T = TypeVar("T")
BUSY_RETRY_FOR_S = 60.0


def glob_prefix(prefix: str) -> str:
    """A GLOB pattern matching names that start with `prefix` literally."""
    return "".join(f"[{c}]" if c in "*?[" else c for c in prefix) + "*"


class SqliteSession(Session):
    """Runtime statements on one SQLite connection."""

    def __init__(self, url: DatabaseURL) -> None:
        self.url = url
        self.conn = connect(url)

    def close(self) -> None:
        self.conn.close()

    def _tx(self, body: Callable[[sqlite3.Connection, float], T]) -> T:
        """Run `body(conn, now)` in a write transaction; SQLITE_BUSY means try again, never a lost job.

        A file that stays locked, or whose disk is full (SQLite says so at COMMIT), raises
        DatabaseError like an unreachable server: the runtime backs off and tries again.
        """
        conn = self.conn
        deadline = time.monotonic() + BUSY_RETRY_FOR_S
        while True:
            try:
                conn.execute("BEGIN IMMEDIATE")
            except sqlite3.OperationalError as exc:
                if is_busy(exc) and time.monotonic() < deadline:
                    continue
                raise database_error(exc, self.url) from None
            try:
                result = body(conn, time.time())
                conn.execute("COMMIT")
            except BaseException as exc:
                if conn.in_transaction:  # SQLite may have rolled back already; a failed COMMIT has not
                    with contextlib.suppress(sqlite3.Error):
                        conn.execute("ROLLBACK")
                if unavailable(exc):
                    raise database_error(exc, self.url) from None
                raise
            return result

    def send_probe(self, token: str) -> None:
        return None  # nothing listens on SQLite: workers poll

    def register_process(self, *, kind: str, hostname: str, pid: int, supervisor_id: int | None,
                         queues: str | None, threads: int | None, metadata: str | None, host_id: str | None = None,
                         wakeup: str | None = None) -> int:
        params = {"kind": kind, "hostname": hostname, "host_id": host_id, "pid": pid, "supervisor_id": supervisor_id,
                  "queues": queues, "threads": threads, "wakeup": wakeup, "metadata": metadata}
        return self._tx(lambda c, now: int(c.execute(Q["register_process"], {**params, "now": now}).fetchone()[0]))

    def set_wakeup(self, process_ids: Sequence[int], wakeup: str) -> None:
        self._tx(lambda c, now: c.execute(Q["set_wakeup"], {"ids": json.dumps(list(process_ids)), "wakeup": wakeup}))

    def heartbeat(self, beats: Sequence[tuple[int, int]]) -> set[int]:
        def body(c: sqlite3.Connection, now: float) -> set[int]:
            alive = set()
            for pid, busy in beats:
                if c.execute(Q["heartbeat"], {"id": pid, "busy": busy, "now": now}).fetchone():
                    alive.add(pid)
            return alive

        return self._tx(body)

    def deregister(self, process_ids: Sequence[int]) -> int:
        ids = json.dumps(list(process_ids))

        def body(c: sqlite3.Connection, now: float) -> int:
            released = c.execute(Q["release_processes_jobs"], {"ids": ids}).rowcount
            c.execute(Q["delete_processes"], {"ids": ids})
            return int(released)

        return self._tx(body)

    def release_claims(self, process_id: int, keep: Sequence[int]) -> int:
        return self._tx(lambda c, now: int(c.execute(Q["release_claims"], {
            "process_id": process_id, "keep": json.dumps(list(keep))}).rowcount))

    def stale_processes(self, threshold: float) -> list[ProcessRef]:
        with mapped(self.url):
            rows = self.conn.execute(Q["stale_processes"], {"now": time.time(), "threshold": threshold}).fetchall()
        return [ProcessRef._make(r) for r in rows]

    def host_processes(self, host_id: str) -> list[ProcessRef]:
        with mapped(self.url):
            rows = self.conn.execute(Q["host_processes"], {"host_id": host_id}).fetchall()
        return [ProcessRef._make(r) for r in rows]

    def job_summaries(self, job_ids: Sequence[int]) -> dict[int, JobSummary]:
        with mapped(self.url):
            rows = self.conn.execute(Q["job_summaries"], {"ids": json.dumps(list(job_ids))}).fetchall()
        return {int(r[0]): JobSummary(int(r[0]), r[1], r[2], int(r[3]), r[4]) for r in rows}

    def crash_jobs(self, process_id: int, job_ids: Sequence[int], max_crashes: int,
                   message: str) -> list[tuple[int, str]]:
        def body(c: sqlite3.Connection, now: float) -> list[tuple[int, str]]:
            rows = c.execute(Q["crash_jobs"], {"ids": json.dumps(list(job_ids)), "process_id": process_id,
                                               "max_crashes": max_crashes, "now": now}).fetchall()
            for job_id, attempt, _state, _queue in rows:
                c.execute(Q["insert_error"], {"id": job_id, "attempt": attempt, "class": "jobctl.WorkerCrashed",
                                              "process_id": process_id,
                                              "message": message, "traceback": None, "now": now})
            for queue, n in Counter(r[3] for r in rows).items():
                self._count(c, now, process_id, queue, 0, n)
            return [(int(r[0]), r[2]) for r in rows]

        return self._tx(body)

    @staticmethod
    def _count(c: sqlite3.Connection, now: float, process_id: int, queue: str, finished: int, failed: int) -> None:
        c.execute(Q["count_throughput"], {"minute": now - now % 60, "process_id": process_id, "queue": queue,
                                           "finished": finished, "failed": failed})

    def _finish(self, c: sqlite3.Connection, now: float, done: Sequence[int], token: int, process_id: int,
                members: bool = False) -> list[int]:
        """Mark jobs finished and count them; the ids this claim still held (fenced by the token). Batch
        members only with `members` (as on PostgreSQL: the rule is the interface's; triggers count them)."""
        if not done:
            return []
        rows = c.execute(Q["finish_jobs"], {"done": json.dumps(list(done)), "token": token, "now": now,
                                            "members": members}).fetchall()
        for queue, n in Counter(r[1] for r in rows).items():
            self._count(c, now, process_id, queue, n, 0)
        return [r[0] for r in rows]

    def claim(self, selector: Selector, limit: int, *, token: int, process_id: int,
              done: Sequence[int] = (), after: tuple[int, int] | None = None) -> list[ClaimedJob]:
        after_priority, after_id = after or HEAD
        params: dict[str, Any] = {"token": token, "process_id": process_id, "limit": limit,
                                  "after_priority": after_priority, "after_id": after_id}
        if selector.kind == "queue":
            params["queue"] = selector.value
        elif selector.kind == "prefix":
            params["pattern"] = glob_prefix(selector.value)

        def body(c: sqlite3.Connection, now: float) -> list[ClaimedJob]:
            self._finish(c, now, done, token, process_id)
            if limit <= 0:
                return []
            rows = c.execute(Q[f"claim_{selector.kind}"], {**params, "now": now}).fetchall()
            return sorted((ClaimedJob._make(r) for r in rows), key=lambda j: (j.priority, j.id))

        return self._tx(body)

    def finish(self, done: Sequence[int], *, token: int, process_id: int, members: bool = False) -> None:
        self._tx(lambda c, now: self._finish(c, now, done, token, process_id, members))

    def finish_with_results(self, results: Sequence[tuple[int, str]], *, token: int, process_id: int,
                            members: bool = False) -> int:
        values = dict(results)

        def body(c: sqlite3.Connection, now: float) -> int:
            finished = self._finish(c, now, list(values), token, process_id, members)
            for job_id in finished:
                c.execute(Q["store_result"], {"id": job_id, "value": values[job_id]})
            return len(finished)

        return self._tx(body)

    def retry(self, job_id: int, *, token: int, process_id: int, delay: float, queue: str | None,
              priority: int | None, error: RunError) -> str | None:
        def body(c: sqlite3.Connection, now: float) -> str | None:
            ran = c.execute(Q["queue_of_job"], {"id": job_id}).fetchone()
            row = c.execute(Q["retry_job"], {"id": job_id, "token": token, "delay": delay, "queue": queue,
                                             "priority": priority, "now": now}).fetchone()
            if row is None:
                return None
            self._error(c, now, job_id, row[1], error, process_id)
            self._count(c, now, process_id, ran[0], 0, 1)
            return str(row[2])

        return self._tx(body)

    def end(self, job_id: int, *, token: int, process_id: int, state: str, error: RunError) -> bool:
        def body(c: sqlite3.Connection, now: float) -> bool:
            row = c.execute(Q["end_job"], {"id": job_id, "token": token, "state": state, "now": now}).fetchone()
            if row is None:
                return False
            self._error(c, now, job_id, row[1], error, process_id)
            if state == "failed":
                self._count(c, now, process_id, row[3], 0, 1)
            return True

        return self._tx(body)

    @staticmethod
    def _error(c: sqlite3.Connection, now: float, job_id: int, attempt: int, error: RunError,
               process_id: int) -> None:
        c.execute(Q["insert_error"], {"id": job_id, "attempt": attempt, "class": error.error_class,
                                      "process_id": process_id,
                                      "message": error.message, "traceback": error.traceback, "now": now})

    def dispatch_due(self, limit: int) -> int:
        return self._tx(lambda c, now: int(c.execute(Q["dispatch_due"], {"now": now, "limit": limit}).rowcount))

    def set_progress(self, job_id: int, done: float, total: float | None, message: str | None) -> None:
        self._tx(lambda c, now: c.execute(Q["set_progress"], {"id": job_id, "done": done, "total": total,
                                                              "message": message, "now": now}))

    def dispatch_and_unblock(self, limit: int) -> tuple[int, int]:
        return self.dispatch_due(limit), self.unblock_all()  # no round trips to save in-process

    def unblock_all(self) -> int:
        def body(c: sqlite3.Connection, now: float) -> int:
            c.execute(Q["reclaim_slots"], {"now": now})
            moved = 0
            while c.execute(Q["unblock_one"], {"now": now}).rowcount:
                c.execute(Q["ready_slot_holders"], {"now": now})  # before the next round picks a job again
                moved += 1
            return moved

        return self._tx(body)

    def prune_finished(self, age: float, limit: int) -> int:
        def body(c: sqlite3.Connection, now: float) -> int:
            ids = [r[0] for r in c.execute(Q["prune_finished_ids"], {"now": now, "age": age, "limit": limit})]
            if ids:
                script(c, "delete_jobs", {"ids": json.dumps(ids)})  # the operators' delete
            return len(ids)

        return self._tx(body)

    def now(self) -> dt.datetime:
        return dt.datetime.now(dt.UTC)  # one host: the host's clock is the database's

    def upsert_recurring_task(self, row: RecurringRow) -> None:
        next_run = row.next_run_at.timestamp() if row.next_run_at else None
        self._tx(lambda c, now: c.execute(Q["upsert_recurring_task"], {
            "key": row.key, "schedule": row.schedule, "cron": row.cron, "class": row.class_path,
            "command": row.command, "arguments": row.arguments, "queue": row.queue, "priority": row.priority,
            "description": row.description, "next_run_at": next_run, "now": now}))

    def enqueue_tick(self, row: RecurringRow, run_at: dt.datetime) -> int | None:
        params = {"key": row.key, "run_at": run_at.timestamp()}

        def body(c: sqlite3.Connection, now: float) -> int | None:
            if c.execute(Q["insert_recurring_run"], params).rowcount != 1:
                return None  # another scheduler enqueued this tick
            found = c.execute(Q["insert_tick_job"], {**params, "queue": row.queue, "class": row.class_path,
                                                     "priority": row.priority, "arguments": row.arguments,
                                                     "now": now}).fetchone()
            return int(found[0])

        return self._tx(body)

    def set_next_run(self, key: str, next_run_at: dt.datetime) -> None:
        self._tx(lambda c, now: c.execute(Q["set_next_run"], {"key": key, "next_run_at": next_run_at.timestamp(),
                                                               "now": now}))

    def prune_recurring_runs(self, age: float) -> None:
        self._tx(lambda c, now: c.execute(Q["prune_recurring_runs"], {"now": now, "age": age}))

    def prune_throughput(self, age: float) -> None:
        self._tx(lambda c, now: c.execute(Q["prune_throughput"], {"now": now, "age": age}))
