"""What operators ask of the database (stats, listings, retries, discards, clears, pauses), written
once for both backends on top of the stores' named operator queries."""

from __future__ import annotations

import datetime as dt
import json
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from jobctl.errors import JobNotFound
from jobctl.info import STATES, ErrorInfo, JobInfo, Progress, iso
from jobctl.store.base import NewJob, Store

DELETE_BATCH = 5000


@dataclass(frozen=True)
class QueueStats:
    """One queue at a glance."""

    name: str
    """Queue name."""
    ready: int = 0
    """Jobs waiting to be claimed."""
    scheduled: int = 0
    """Jobs due later."""
    claimed: int = 0
    """Jobs taken by workers."""
    blocked: int = 0
    """Jobs waiting for a concurrency slot."""
    failed: int = 0
    """Jobs that failed."""
    latency_s: float | None = None
    """Age of the oldest ready job, in seconds (None when none is ready)."""
    paused: bool = False
    """Whether claiming from it is paused."""

    def to_dict(self) -> dict[str, Any]:
        """JSON form (SPEC 7.1)."""
        return {"name": self.name, "ready": self.ready, "scheduled": self.scheduled, "claimed": self.claimed,
                "blocked": self.blocked, "failed": self.failed,
                "latency_s": None if self.latency_s is None else round(self.latency_s, 3), "paused": self.paused}


@dataclass(frozen=True)
class Stats:
    """`jobctl stats`: counts, queues, processes, throughput."""

    states: dict[str, int]
    """Jobs per state (every state present)."""
    queues: list[QueueStats]
    """Every queue with active or failed jobs, or paused."""
    processes: int
    """Processes with a recent heartbeat."""
    finished_last_minute: int
    """Runs finished in the last 60 s (per-minute counters, prorated)."""
    failed_last_minute: int
    """Runs that raised or crashed in the last 60 s."""
    finished_last_hour: int
    """Runs finished in the last hour."""
    failed_last_hour: int
    """Runs that raised or crashed in the last hour."""
    at: dt.datetime
    """The database's time of the reading."""

    def to_dict(self) -> dict[str, Any]:
        """JSON form (SPEC 7.1)."""
        return {"states": self.states, "queues": [q.to_dict() for q in self.queues], "processes": self.processes,
                "finished_last_minute": self.finished_last_minute, "failed_last_minute": self.failed_last_minute,
                "finished_last_hour": self.finished_last_hour, "failed_last_hour": self.failed_last_hour,
                "at": iso(self.at)}


@dataclass
class WriteResult:
    """What a write verb did: `{"matched", "changed", "ids"}` plus why some were left alone."""

    matched: int = 0
    """Jobs the request named or its filter matched."""
    ids: list[int] = field(default_factory=list)
    """Jobs changed."""
    skipped: dict[int, str] = field(default_factory=dict)
    """Jobs matched but left as they were, with the reason."""

    @property
    def changed(self) -> int:
        """How many jobs changed."""
        return len(self.ids)

    def to_dict(self) -> dict[str, Any]:
        """JSON form (SPEC 7.1)."""
        return {"matched": self.matched, "changed": self.changed, "ids": self.ids,
                "skipped": [{"id": k, "reason": v} for k, v in sorted(self.skipped.items())]}


def stats(store: Store, *, alive_threshold: float = 60.0) -> Stats:
    """Counts by state and queue, latency, throughput and live processes; every read is index-bounded."""
    by_queue: dict[str, dict[str, Any]] = defaultdict(dict)
    states = dict.fromkeys(STATES, 0)
    now: dt.datetime | None = None
    for row in store.run("active_by_queue"):
        now = row["now"]
        by_queue[row["queue"]][row["state"]] = row["n"]
        states[row["state"]] += row["n"]
        if row["oldest_ready_at"] is not None:
            by_queue[row["queue"]]["oldest"] = row["oldest_ready_at"]
    for state in ("finished", "discarded"):
        states[state] = store.run("count_in_state", {"state": state})[0]["n"]
    paused = {row["queue"] for row in store.run("paused_queues")}
    buckets = store.run("throughput")
    totals = store.run("throughput_totals")[0]
    now = now or totals["now"]
    assert now is not None
    queues = []
    for name in sorted(set(by_queue) | paused):
        counts = by_queue.get(name, {})
        oldest = counts.get("oldest")
        queues.append(QueueStats(
            name, ready=counts.get("ready", 0), scheduled=counts.get("scheduled", 0), claimed=counts.get("claimed", 0),
            blocked=counts.get("blocked", 0), failed=counts.get("failed", 0),
            latency_s=max((now - oldest).total_seconds(), 0.0) if oldest is not None else None,
            paused=name in paused))
    live = store.run("live_processes", {"threshold": alive_threshold})[0]["n"]
    fin_min, fail_min = _recent(buckets, now, minutes=1)
    fin_hour, fail_hour = _recent(buckets, now, minutes=60)
    return Stats(states, queues, live, fin_min, fail_min, fin_hour, fail_hour, now)


def _recent(buckets: Iterable[dict[str, Any]], now: dt.datetime, *, minutes: int) -> tuple[int, int]:
    """Runs in the last `minutes`: whole buckets inside the window, the oldest one prorated."""
    current = now.replace(second=0, microsecond=0)
    elapsed = (now - current).total_seconds() / 60.0
    oldest = current - dt.timedelta(minutes=minutes)
    finished = failed = 0.0
    for b in buckets:
        if b["minute"] > oldest:
            weight = 1.0
        elif b["minute"] == oldest:
            weight = 1.0 - elapsed
        else:
            continue
        finished += weight * b["finished"]
        failed += weight * b["failed"]
    return round(finished), round(failed)


def job_infos(store: Store, rows: Sequence[dict[str, Any]], conn: Any = None) -> list[JobInfo]:
    """JobInfo for job rows, with their errors and progress (two more queries in all)."""
    ids = [r["id"] for r in rows]
    errors: dict[int, list[ErrorInfo]] = defaultdict(list)
    progress: dict[int, Progress] = {}
    if ids:
        for e in store.run("errors_of_jobs", {"ids": ids}, conn):
            errors[e["job_id"]].append(ErrorInfo(e["attempt"], e["class"], e["message"], e["traceback"], e["at"]))
        for p in store.run("progress_of_jobs", {"ids": ids}, conn):
            progress[p["job_id"]] = Progress(p["done"], p["total"], p["message"], p["at"])
    return [JobInfo(r["id"], r["class"], r["queue"], r["priority"], r["state"], r["arguments"], r["attempts"],
                    r["crashes"], tuple(errors[r["id"]]), r["key"], progress.get(r["id"]), r["enqueued_at"],
                    r["scheduled_at"], r["claimed_at"], r["finished_at"]) for r in rows]


def get_jobs(store: Store, ids: Sequence[int], conn: Any = None) -> list[JobInfo]:
    """Jobs by id, newest first (unknown ids are simply absent)."""
    return job_infos(store, store.run("jobs_by_ids", {"ids": list(ids)}, conn), conn)


def list_jobs(store: Store, *, state: str | None = None, queue: str | None = None, class_path: str | None = None,
              limit: int = 50, after: int | None = None) -> list[JobInfo]:
    """One page of jobs, newest first."""
    rows = store.run("list_jobs", {"state": state, "queue": queue, "class": class_path, "limit": limit,
                                   "after": after})
    return job_infos(store, rows)


def match(store: Store, *, states: Sequence[str], queue: str | None = None, class_path: str | None = None,
          older_than: float | None = None) -> list[int]:
    """Ids of the jobs a bulk verb's filter selects."""
    rows = store.run("match_jobs", {"states": list(states), "queue": queue, "class": class_path,
                                    "older_than": older_than})
    return [r["id"] for r in rows]


def failed_for_matching(store: Store, *, after: int = 0, limit: int = 10_000) -> list[dict[str, Any]]:
    """A page of failed jobs, oldest first after id `after`: id, queue, class, attempts, finished_at,
    and error_class and error_message of the last error (None without one). Light rows: no traceback."""
    return store.run("failed_for_matching", {"after": after, "limit": limit})


def states_of(store: Store, ids: Sequence[int]) -> dict[int, tuple[str, str | None]]:
    """(state, key) of each existing job among `ids`."""
    return {r["id"]: (r["state"], r["key"]) for r in store.run("jobs_by_ids", {"ids": list(ids)})}


def retry(store: Store, ids: Sequence[int]) -> WriteResult:
    """Failed jobs back to ready with a fresh retry budget; jobs whose key is held are skipped."""
    before = states_of(store, ids)
    result = WriteResult(matched=len(ids))
    result.ids = sorted(r["id"] for r in store.run("retry_failed", {"ids": list(ids)}))
    for job_id in ids:
        if job_id in result.ids:
            continue
        state, key = before.get(job_id, ("missing", None))
        if state != "failed":
            result.skipped[job_id] = f"job {job_id} is {state}; only failed jobs are retried"
        else:
            result.skipped[job_id] = f"job {job_id}: another active job holds its key {key!r}"
    return result


def discard(store: Store, ids: Sequence[int]) -> WriteResult:
    """Failed, ready, scheduled or blocked jobs to discarded."""
    before = states_of(store, ids)
    result = WriteResult(matched=len(ids))
    result.ids = sorted(r["id"] for r in store.run("discard_jobs", {"ids": list(ids)}))
    for job_id in ids:
        if job_id not in result.ids:
            state = before.get(job_id, ("missing", None))[0]
            result.skipped[job_id] = f"job {job_id} is {state}; only failed, ready, scheduled or blocked jobs " \
                                     "are discarded"
    return result


def clear(store: Store, ids: Sequence[int]) -> WriteResult:
    """Delete jobs (with their errors and progress), in batches."""
    result = WriteResult(matched=len(ids))
    for start in range(0, len(ids), DELETE_BATCH):
        batch = list(ids[start:start + DELETE_BATCH])
        result.ids.extend(r["id"] for r in store.run("delete_jobs", {"ids": batch}))
    result.ids.sort()
    return result


def pause(store: Store, queue: str) -> bool:
    """Stop claiming from `queue`; False when it was paused already."""
    return bool(store.run("pause_queue", {"queue": queue}))


def resume(store: Store, queue: str) -> bool:
    """Claim from `queue` again; False when it was not paused."""
    return bool(store.run("resume_queue", {"queue": queue}))


def processes(store: Store) -> list[dict[str, Any]]:
    """Every registered process with the keys of SPEC 7.1 (times as datetimes)."""
    return [{"id": r["id"], "kind": r["kind"], "hostname": r["hostname"], "pid": r["pid"],
             "supervisor_id": r["supervisor_id"], "queues": r["queues"].split(",") if r["queues"] else None,
             "threads": r["threads"], "busy": r["busy"], "last_heartbeat_at": r["last_heartbeat_at"],
             "started_at": r["started_at"]} for r in store.run("list_processes")]


def recurring(store: Store) -> list[dict[str, Any]]:
    """Recurring tasks as schedulers registered them, with the keys of SPEC 7.1 (times as datetimes)."""
    tasks = []
    for r in store.run("list_recurring"):
        command = r["command"]
        tasks.append({
            "key": r["key"], "schedule": r["schedule"], "cron": r["cron"],
            "class": None if command else r["class"], "command": command,
            # A command's tick job carries only the task key; its own args live in recurring.yml.
            "args": None if command else r["arguments"].get("args", []),
            "queue": r["queue"], "priority": r["priority"], "description": r["description"],
            "last_run_at": r["last_run_at"], "next_run_at": r["next_run_at"]})
    return tasks


def claimed_executions(store: Store, limit: int = 200) -> list[dict[str, Any]]:
    """Claimed jobs, oldest claim first: id, class, queue, claimed_at, process (host, pid), progress."""
    return store.run("claimed_executions", {"limit": limit})


def run_recurring_now(store: Store, key: str) -> int:
    """Enqueue a recurring task's job now, outside its schedule (the monitor's `n`)."""
    rows = store.run("recurring_task_row", {"key": key})
    if not rows:
        raise JobNotFound(f"recurring task {key!r} is not registered")
    r = rows[0]
    row = NewJob(class_path=r["class"], queue=r["queue"], priority=r["priority"],
                 arguments=json.dumps(r["arguments"], separators=(",", ":")))
    return store.insert_job(row).id
