"""The PostgreSQL runtime session: one dedicated autocommit connection per process, plus LISTEN."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

import psycopg

from jobctl.records import ClaimedJob, JobSummary, ProcessRef, RecurringRow, RunError, Selector
from jobctl.store.common import HEAD
from jobctl.store.interface import PROBE_PREFIX, Listener, Session
from jobctl.store.postgres.connection import CHANNEL, Q, connect, lost
from jobctl.urls import DatabaseURL


def like_prefix(prefix: str) -> str:
    """A LIKE pattern matching names that start with `prefix` literally."""
    return prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


class PostgresSession(Session):
    """Runtime statements on one connection; every call is one statement and one commit."""

    def __init__(self, url: DatabaseURL, *, prepare: bool = True) -> None:
        self.url = url
        self.conn = connect(url, prepare=prepare)

    def _run(self, name: str, params: dict[str, Any]) -> list[tuple[Any, ...]]:
        try:
            return self.conn.execute(Q[name], params).fetchall()
        except psycopg.Error as exc:  # every database error: the runtime backs off and reconnects
            raise lost(exc, self.url) from None

    def close(self) -> None:
        self.conn.close()

    def send_probe(self, token: str) -> None:
        self._execute("send_probe", {"payload": PROBE_PREFIX + token})

    def register_process(self, *, kind: str, hostname: str, pid: int, supervisor_id: int | None,
                         queues: str | None, threads: int | None, metadata: str | None, host_id: str | None = None,
                         wakeup: str | None = None) -> int:
        rows = self._run("register_process", {"kind": kind, "hostname": hostname, "host_id": host_id, "pid": pid,
                                              "supervisor_id": supervisor_id, "queues": queues,
                                              "threads": threads, "wakeup": wakeup, "metadata": metadata})
        return int(rows[0][0])

    def set_wakeup(self, process_ids: Sequence[int], wakeup: str) -> None:
        self._execute("set_wakeup", {"ids": list(process_ids), "wakeup": wakeup})

    def heartbeat(self, beats: Sequence[tuple[int, int]]) -> set[int]:
        rows = self._run("heartbeat", {"ids": [b[0] for b in beats], "busy": [b[1] for b in beats]})
        return {int(r[0]) for r in rows}

    def deregister(self, process_ids: Sequence[int]) -> int:
        rows = self._run("deregister_processes", {"ids": list(process_ids)})
        return int(rows[0][0])

    def release_claims(self, process_id: int, keep: Sequence[int]) -> int:
        return int(self._run("release_claims", {"process_id": process_id, "keep": list(keep)})[0][0])

    def stale_processes(self, threshold: float) -> list[ProcessRef]:
        return [ProcessRef._make(r) for r in self._run("stale_processes", {"threshold": threshold})]

    def host_processes(self, host_id: str) -> list[ProcessRef]:
        return [ProcessRef._make(r) for r in self._run("host_processes", {"host_id": host_id})]

    def crash_jobs(self, process_id: int, job_ids: Sequence[int], max_crashes: int,
                   message: str) -> list[tuple[int, str]]:
        rows = self._run("crash_jobs", {"process_id": process_id, "ids": list(job_ids),
                                        "max_crashes": max_crashes, "message": message})
        return [(int(r[0]), r[1]) for r in rows]

    def job_summaries(self, job_ids: Sequence[int]) -> dict[int, JobSummary]:
        return {int(r[0]): JobSummary(int(r[0]), r[1], r[2], int(r[3]), r[4])
                for r in self._run("job_summaries", {"ids": list(job_ids)})}

    def claim(self, selector: Selector, limit: int, *, token: int, process_id: int,
              done: Sequence[int] = (), after: tuple[int, int] | None = None) -> list[ClaimedJob]:
        after_priority, after_id = after or HEAD
        params: dict[str, Any] = {"done": list(done), "token": token, "process_id": process_id,
                                  "limit": limit, "after_priority": after_priority, "after_id": after_id}
        if selector.kind == "queue":
            params["queue"] = selector.value
        elif selector.kind == "prefix":
            params["pattern"] = like_prefix(selector.value)
        rows = self._run(f"claim_{selector.kind}", params)
        if rows and rows[-1][0] is None:  # some queue is paused: the fast statement claimed nothing
            params["done"] = []  # already finished by the first statement
            rows = self._run(f"claim_{selector.kind}_paused", params)
        jobs = [ClaimedJob._make(r) for r in rows]
        jobs.sort(key=lambda j: (j.priority, j.id))  # RETURNING order is not the claim order
        return jobs

    def finish(self, done: Sequence[int], *, token: int, process_id: int, members: bool = False) -> None:
        if members:
            self._run("finish_members", {"done": list(done), "token": token, "process_id": process_id})
            return
        # The claim statement with limit 0 claims nothing: one shape for both.
        self.claim(Selector("queue", ""), 0, token=token, process_id=process_id, done=done)

    def finish_with_results(self, results: Sequence[tuple[int, str]], *, token: int, process_id: int,
                            members: bool = False) -> int:
        rows = self._run("finish_members_with_results" if members else "finish_with_results",
                         {"ids": [r[0] for r in results], "values": [r[1] for r in results],
                          "token": token, "process_id": process_id})
        return int(rows[0][0])

    def retry(self, job_id: int, *, token: int, process_id: int, delay: float, queue: str | None,
              priority: int | None, error: RunError) -> str | None:
        rows = self._run("retry_job", {"id": job_id, "token": token, "process_id": process_id, "delay": delay,
                                       "queue": queue, "priority": priority, "class": error.error_class,
                                       "message": error.message, "traceback": error.traceback})
        return str(rows[0][1]) if rows else None

    def end(self, job_id: int, *, token: int, process_id: int, state: str, error: RunError) -> bool:
        rows = self._run("end_job", {"id": job_id, "token": token, "process_id": process_id, "state": state,
                                     "class": error.error_class, "message": error.message,
                                     "traceback": error.traceback})
        return bool(rows)

    def dispatch_due(self, limit: int) -> int:
        return int(self._run("dispatch_due", {"limit": limit})[0][0])

    def set_progress(self, job_id: int, done: float, total: float | None, message: str | None) -> None:
        self._execute("set_progress", {"id": job_id, "done": done, "total": total, "message": message})

    def dispatch_and_unblock(self, limit: int) -> tuple[int, int]:
        row = self._run("dispatch_and_unblock", {"limit": limit})[0]
        return int(row[0]), int(row[1])

    def unblock_all(self) -> int:
        return int(self._run("unblock_all", {})[0][0])

    def prune_finished(self, age: float, limit: int) -> int:
        return int(self._run("prune_finished", {"age": age, "limit": limit})[0][0])

    def prune_throughput(self, age: float) -> None:
        self._execute("prune_throughput", {"age": age})


    def now(self) -> dt.datetime:
        value: dt.datetime = self._run("database_now", {})[0][0]
        return value.astimezone(dt.UTC)

    def upsert_recurring_task(self, row: RecurringRow) -> None:
        self._execute("upsert_recurring_task", {
            "key": row.key, "schedule": row.schedule, "cron": row.cron, "class": row.class_path,
            "command": row.command, "arguments": row.arguments, "queue": row.queue, "priority": row.priority,
            "description": row.description, "next_run_at": row.next_run_at})

    def enqueue_tick(self, row: RecurringRow, run_at: dt.datetime) -> int | None:
        rows = self._run("enqueue_tick", {"key": row.key, "run_at": run_at, "queue": row.queue,
                                          "class": row.class_path, "priority": row.priority,
                                          "arguments": row.arguments})
        return int(rows[0][0]) if rows else None

    def set_next_run(self, key: str, next_run_at: dt.datetime) -> None:
        self._execute("set_next_run", {"key": key, "next_run_at": next_run_at})

    def prune_recurring_runs(self, age: float) -> None:
        self._execute("prune_recurring_runs", {"age": age})

    def _execute(self, name: str, params: dict[str, Any]) -> None:
        try:
            self.conn.execute(Q[name], params)
        except psycopg.Error as exc:  # every database error: the runtime backs off and reconnects
            raise lost(exc, self.url) from None


class PostgresListener(Listener):
    """LISTEN on a connection of its own, or on a session's (which it then never closes); notifications
    carry the queue name."""

    def __init__(self, url: DatabaseURL, conn: psycopg.Connection[Any] | None = None) -> None:
        self.url = url
        self.owns = conn is None
        self.conn = connect(url) if conn is None else conn
        try:
            self.conn.execute(f"LISTEN {CHANNEL}")
        except psycopg.Error as exc:
            raise lost(exc, self.url) from None

    def wait(self, timeout: float) -> list[str]:
        try:
            return [n.payload for n in self.conn.notifies(timeout=timeout, stop_after=1)]
        except psycopg.Error as exc:  # every database error: the runtime backs off and reconnects
            raise lost(exc, self.url) from None

    def drain(self) -> list[str]:
        try:
            return [n.payload for n in self.conn.notifies(timeout=0)]
        except psycopg.Error as exc:
            raise lost(exc, self.url) from None

    def fileno(self) -> int:
        return self.conn.fileno()

    def close(self) -> None:
        if self.owns:
            self.conn.close()
