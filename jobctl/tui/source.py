"""What the monitor shows: an immutable `Snapshot`, built by `fetch()` from a store, and the sources
that produce snapshots and carry out the monitor's actions (a database, or a fake for tests).

The screen never reads the database itself: a worker thread calls `Source.fetch()` and posts the
snapshot back, and the screen renders it (the memray pattern).
"""

from __future__ import annotations

import datetime as dt
import socket
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Protocol, TypeVar

import psutil

from jobctl import admin
from jobctl.db import open_store
from jobctl.errors import DatabaseError, JobctlError
from jobctl.info import JobInfo
from jobctl.store.base import Store
from jobctl.tui.filtering import Filter
from jobctl.urls import DatabaseURL, scrub

T = TypeVar("T")

RATE_WINDOW_S = 300.0
"""How far back the throughput sparklines reach."""
FAILURES_LIMIT = 200
"""Most recent failures read per refresh (the Failures panel says when there are more)."""
CLAIMED_LIMIT = 200
"""Oldest claimed executions read per refresh."""
MATCH_PAGE = 10_000
"""Failed jobs read per query when `R` / `D` look for every failure matching a filter."""
PID_REUSE_SLACK_S = 120.0
"""A local process created this long after its row says it started is another program (a reused pid)."""


@dataclass(frozen=True)
class Counts:
    """The counts line."""

    ready: int = 0
    """Jobs waiting to be claimed."""
    scheduled: int = 0
    """Jobs due later."""
    claimed: int = 0
    """Jobs taken by workers."""
    blocked: int = 0
    """Jobs waiting for a concurrency slot."""
    failed: int = 0
    """Jobs that failed (all of them, not only those shown)."""
    finished_last_hour: int = 0
    """Runs finished in the last hour."""
    processes: int = 0
    """Processes with a recent heartbeat."""


@dataclass(frozen=True)
class QueueRow:
    """One queue in the Queues panel."""

    name: str
    """Queue name (the row key)."""
    ready: int
    """Jobs waiting to be claimed."""
    scheduled: int
    """Jobs due later."""
    claimed: int
    """Jobs taken by workers."""
    blocked: int
    """Jobs waiting for a concurrency slot."""
    failed: int
    """Failed jobs."""
    latency_s: float | None
    """Age of the oldest ready job (None when none is ready)."""
    paused: bool
    """Whether claiming from it is paused."""


@dataclass(frozen=True)
class ClaimedRow:
    """One claimed execution."""

    id: int
    """Job id (the row key)."""
    class_path: str
    """Job class, `module:QualName`."""
    queue: str
    """Its queue."""
    claimed_at: dt.datetime | None
    """When the worker claimed it."""
    process: str
    """`kind host:pid` of the process holding it, `-` when that process is gone."""
    progress_done: float | None = None
    """Units done, as last reported."""
    progress_total: float | None = None
    """Units in all, when known."""
    progress_message: str | None = None
    """The job's note with its progress."""


@dataclass(frozen=True)
class FailureRow:
    """One failed job."""

    id: int
    """Job id (the row key)."""
    class_path: str
    """Job class, `module:QualName`."""
    queue: str
    """Its queue."""
    error_class: str | None
    """The last error's exception class."""
    error_message: str | None
    """The last error's message."""
    attempts: int
    """Runs in all."""
    failed_at: dt.datetime | None
    """When it failed."""

    @property
    def error(self) -> str:
        """`Class: message` of the last error."""
        if self.error_class is None:
            return ""
        return f"{self.error_class}: {self.error_message}" if self.error_message else self.error_class


@dataclass(frozen=True)
class TaskRow:
    """One recurring task."""

    key: str
    """Task key (the row key)."""
    schedule: str
    """As written in recurring.yml."""
    runs: str
    """The command or job class each tick runs."""
    queue: str | None
    """Queue of each tick's job."""
    last_run_at: dt.datetime | None
    """The last tick enqueued."""
    next_run_at: dt.datetime | None
    """When it runs next."""


@dataclass(frozen=True)
class ProcessRow:
    """One registered runtime process."""

    id: int
    """Process id in jobctl_processes (the row key)."""
    kind: str
    """supervisor, worker, dispatcher or scheduler."""
    hostname: str
    """Host it runs on."""
    pid: int
    """OS process id on that host."""
    queues: str | None
    """Queues a worker claims from, comma-separated."""
    threads: int | None
    """A worker's threads."""
    busy: int
    """Threads executing a job at the last heartbeat."""
    last_heartbeat_at: dt.datetime | None
    """Its last heartbeat."""
    rss_bytes: int | None = None
    """Resident memory, for processes on this host."""
    cpu_percent: float | None = None
    """CPU use since the previous refresh, for processes on this host."""


@dataclass(frozen=True)
class RateSample:
    """Throughput between two refreshes."""

    since: dt.datetime
    """The database's time of the earlier refresh (the start of the span measured)."""
    at: dt.datetime
    """The database's time of the later refresh."""
    finished_per_s: float
    """Runs finished per second."""
    failed_per_s: float
    """Runs that raised or crashed per second."""


@dataclass(frozen=True)
class Snapshot:
    """Everything one refresh read; the screen renders nothing else."""

    at: dt.datetime
    """The database's clock at the reading: every age on screen is relative to it."""
    counts: Counts = field(default_factory=Counts)
    """The counts line."""
    finished_total: int = 0
    """Cumulative finished runs (admin's throughput counters); rates are deltas of these."""
    failed_total: int = 0
    """Cumulative failed runs."""
    rates: tuple[RateSample, ...] = ()
    """Throughput over the last RATE_WINDOW_S, oldest first."""
    queues: tuple[QueueRow, ...] = ()
    """The Queues panel, by name."""
    claimed: tuple[ClaimedRow, ...] = ()
    """The Claimed executions panel, oldest claim first (at most CLAIMED_LIMIT)."""
    failures: tuple[FailureRow, ...] = ()
    """The Failures panel, newest first (at most FAILURES_LIMIT; `counts.failed` is the total)."""
    recurring: tuple[TaskRow, ...] = ()
    """The Recurring panel, by key."""
    processes: tuple[ProcessRow, ...] = ()
    """The Processes panel, by id."""


def advance_rates(previous: Snapshot | None, at: dt.datetime, finished_total: int, failed_total: int,
                  seed: tuple[float, float] = (0.0, 0.0), window: float = RATE_WINDOW_S) -> tuple[RateSample, ...]:
    """The rate history after one more reading: the delta of the cumulative counters since the previous
    snapshot over the time between them. The first reading starts with `seed`, the last minute's rates."""
    if previous is None:
        return (RateSample(at - dt.timedelta(seconds=60), at, *seed),)
    elapsed = (at - previous.at).total_seconds()
    if elapsed <= 0:
        return previous.rates
    # Counters shrink when old minutes are pruned: a negative delta counts as none.
    sample = RateSample(previous.at, at, max(finished_total - previous.finished_total, 0) / elapsed,
                        max(failed_total - previous.failed_total, 0) / elapsed)
    cutoff = at - dt.timedelta(seconds=window)
    return tuple(s for s in (*previous.rates, sample) if s.at > cutoff)


def failure_row(job: JobInfo) -> FailureRow:
    """A failed job as the Failures panel shows it."""
    last = job.errors[-1] if job.errors else None
    return FailureRow(job.id, job.class_path, job.queue, last.error_class if last else None,
                      last.message if last else None, job.attempts, job.finished_at)


def failure_matches(flt: Filter, row: FailureRow) -> bool:
    """Whether a failure passes the filter (the same test for the panel and for `R` / `D`)."""
    return flt.matches({"queue": row.queue, "class": row.class_path, "error": row.error}, (str(row.id),))


def _num(value: Any) -> float | None:
    return None if value is None else float(value) if isinstance(value, int | float | Decimal) else None


class LocalProbe:
    """Memory and CPU of registered processes that run on this host, through psutil. Keeps each
    `psutil.Process` between refreshes, so that CPU is measured over the time between them."""

    def __init__(self, hostname: str | None = None) -> None:
        self.hostname = hostname or socket.gethostname()
        """This host's name, as the runtime registers it."""
        self._seen: dict[int, psutil.Process] = {}

    def sample(self, rows: Iterable[dict[str, Any]]) -> dict[int, tuple[int | None, float | None]]:
        """(rss bytes, cpu %) by row id for the local rows; cpu is None on a process's first sample."""
        found: dict[int, tuple[int | None, float | None]] = {}
        alive: dict[int, psutil.Process] = {}
        for row in rows:
            if row["hostname"] != self.hostname:
                continue
            pid = int(row["pid"])
            proc = self._seen.get(pid)
            try:
                first = proc is None or not proc.is_running()
                if first:
                    proc = psutil.Process(pid)
                    started = row.get("started_at")
                    if started is not None and proc.create_time() > started.timestamp() + PID_REUSE_SLACK_S:
                        continue
                assert proc is not None
                with proc.oneshot():
                    rss = int(proc.memory_info().rss)
                    cpu = proc.cpu_percent(None)
            except (psutil.Error, OSError):
                continue
            alive[pid] = proc
            found[int(row["id"])] = (rss, None if first else cpu)
        self._seen = alive
        return found


def fetch(store: Store, previous: Snapshot | None = None, *, alive_threshold: float = 60.0,
          probe: LocalProbe | None = None, failures_limit: int = FAILURES_LIMIT,
          claimed_limit: int = CLAIMED_LIMIT) -> Snapshot:
    """One refresh: every panel through admin's bounded queries (same code on both backends)."""
    stats = admin.stats(store, alive_threshold=alive_threshold)
    totals = store.run("throughput_totals")[0]
    at = stats.at
    finished_total, failed_total = int(totals["finished"]), int(totals["failed"])
    rates = advance_rates(previous, at, finished_total, failed_total,
                          seed=(stats.finished_last_minute / 60.0, stats.failed_last_minute / 60.0))
    queues = tuple(QueueRow(q.name, q.ready, q.scheduled, q.claimed, q.blocked, q.failed, q.latency_s, q.paused)
                   for q in stats.queues)
    claimed = tuple(
        ClaimedRow(r["id"], r["class"], r["queue"], r["claimed_at"],
                   f"{r['kind']} {r['hostname']}:{r['pid']}" if r["hostname"] else "-",
                   _num(r["done"]), _num(r["total"]), r["progress_message"])
        for r in admin.claimed_executions(store, limit=claimed_limit))
    failures = tuple(failure_row(j) for j in admin.list_jobs(store, state="failed", limit=failures_limit))
    recurring = tuple(TaskRow(t["key"], t["schedule"], t["command"] or t["class"] or "", t["queue"],
                              t["last_run_at"], t["next_run_at"]) for t in admin.recurring(store))
    rows = admin.processes(store)
    local = probe.sample(rows) if probe is not None else {}
    processes = tuple(
        ProcessRow(r["id"], r["kind"], r["hostname"], r["pid"], ",".join(r["queues"]) if r["queues"] else None,
                   r["threads"], r["busy"] or 0, r["last_heartbeat_at"], *local.get(r["id"], (None, None)))
        for r in rows)
    s = stats.states
    counts = Counts(s["ready"], s["scheduled"], s["claimed"], s["blocked"], s["failed"], stats.finished_last_hour,
                    stats.processes)
    return Snapshot(at, counts, finished_total, failed_total, rates, queues, claimed, failures, recurring, processes)


class Source(Protocol):
    """Where the monitor gets snapshots and sends its actions. Every method may block: the screen
    calls them from worker threads only, never from the UI thread."""

    label: str
    """What the header names (a database URL without its password)."""

    def fetch(self, previous: Snapshot | None) -> Snapshot:
        """A fresh snapshot (`previous` carries the throughput history forward)."""

    def job(self, job_id: int) -> JobInfo | None:
        """One job with its errors and progress, or None when it is gone."""

    def failure_ids(self, flt: Filter) -> list[int]:
        """Ids of every failed job matching the filter (not only the ones on screen)."""

    def retry(self, ids: Sequence[int]) -> admin.WriteResult:
        """Failed jobs back to ready."""

    def discard(self, ids: Sequence[int]) -> admin.WriteResult:
        """Jobs to discarded."""

    def pause(self, queue: str) -> bool:
        """Stop claiming from a queue."""

    def resume(self, queue: str) -> bool:
        """Claim from a queue again."""

    def run_recurring_now(self, key: str) -> int:
        """Enqueue a recurring task's job now; returns the new job's id."""

    def close(self) -> None:
        """Release connections."""


class DatabaseSource:
    """A live database through admin's functions.

    The store is opened lazily by the first call, which is on a worker thread, and reopened after any
    error (so the monitor recovers when the database comes back). Textual runs each thread worker on
    a new thread: every call holds one lock, so the store's connection is used by one thread at a
    time (the SQLite store opens its connection with `check_same_thread=False` for exactly this).
    """

    def __init__(self, url: DatabaseURL, *, alive_threshold: float = 60.0, probe: LocalProbe | None = None,
                 failures_limit: int = FAILURES_LIMIT, open_store: Callable[[DatabaseURL], Store] = open_store
                 ) -> None:
        self.url = url
        self.label = url.redacted
        self.alive_threshold = alive_threshold
        self.failures_limit = failures_limit
        self.probe = probe if probe is not None else LocalProbe()
        self._open_store = open_store
        self._store: Store | None = None
        self._lock = threading.Lock()

    def _use(self, work: Callable[[Store], T]) -> T:
        with self._lock:
            if self._store is None:
                self._store = self._open_store(self.url)
            try:
                return work(self._store)
            except JobctlError:
                self._drop()
                raise
            except Exception as exc:  # a driver error the store did not wrap: one line, never the password
                self._drop()
                raise DatabaseError(f"database {self.label}: {scrub(str(exc), self.url) or type(exc).__name__}") \
                    from exc

    def _drop(self) -> None:
        if self._store is not None:
            try:
                self._store.close()
            except Exception:  # a broken connection may not even close cleanly
                pass
            self._store = None

    def fetch(self, previous: Snapshot | None) -> Snapshot:
        return self._use(lambda s: fetch(s, previous, alive_threshold=self.alive_threshold, probe=self.probe,
                                         failures_limit=self.failures_limit))

    def job(self, job_id: int) -> JobInfo | None:
        found = self._use(lambda s: admin.get_jobs(s, [job_id]))
        return found[0] if found else None

    def failure_ids(self, flt: Filter) -> list[int]:
        if not flt:
            return self._use(lambda s: admin.match(s, states=("failed",)))
        return self._use(lambda s: _matching_failures(s, flt))

    def retry(self, ids: Sequence[int]) -> admin.WriteResult:
        return self._use(lambda s: admin.retry(s, ids))

    def discard(self, ids: Sequence[int]) -> admin.WriteResult:
        return self._use(lambda s: admin.discard(s, ids))

    def pause(self, queue: str) -> bool:
        return self._use(lambda s: admin.pause(s, queue))

    def resume(self, queue: str) -> bool:
        return self._use(lambda s: admin.resume(s, queue))

    def run_recurring_now(self, key: str) -> int:
        return self._use(lambda s: admin.run_recurring_now(s, key))

    def close(self) -> None:
        with self._lock:
            self._drop()


def _matching_failures(store: Store, flt: Filter) -> list[int]:
    """Every failure matching a filter, read as the panel's rows in pages and matched with
    `failure_matches` itself: the database's lower() is not Python's, so it cannot do the test."""
    ids: list[int] = []
    after = 0
    while True:
        page = admin.failed_for_matching(store, after=after, limit=MATCH_PAGE)
        for r in page:
            row = FailureRow(r["id"], r["class"], r["queue"], r["error_class"], r["error_message"], r["attempts"],
                             r["finished_at"])
            if failure_matches(flt, row):
                ids.append(row.id)
        if len(page) < MATCH_PAGE:
            return ids
        after = page[-1]["id"]


class FakeSource:
    """Fixed snapshots for tests and screenshots: `snapshots` are served in turn (the last one repeats),
    `error` (when set) is raised instead, and actions are recorded in `calls`."""

    def __init__(self, *snapshots: Snapshot, jobs: Iterable[JobInfo] = (), label: str = "sqlite:///fake.sqlite3"
                 ) -> None:
        self.label = label
        self.snapshots = list(snapshots)
        self.jobs = {j.id: j for j in jobs}
        self.error: Exception | None = None
        self.calls: list[tuple[str, Any]] = []
        self.fetches = 0
        self._served: Snapshot | None = None

    def fetch(self, previous: Snapshot | None) -> Snapshot:
        self.fetches += 1
        if self.error is not None:
            raise self.error
        if len(self.snapshots) > 1:
            self._served = self.snapshots.pop(0)
        else:
            self._served = self.snapshots[0]
        return self._served

    def job(self, job_id: int) -> JobInfo | None:
        return self.jobs.get(job_id)

    def failure_ids(self, flt: Filter) -> list[int]:
        shown = self._served.failures if self._served else ()
        return sorted(f.id for f in shown if failure_matches(flt, f))

    def retry(self, ids: Sequence[int]) -> admin.WriteResult:
        self.calls.append(("retry", list(ids)))
        return admin.WriteResult(matched=len(ids), ids=sorted(ids))

    def discard(self, ids: Sequence[int]) -> admin.WriteResult:
        self.calls.append(("discard", list(ids)))
        return admin.WriteResult(matched=len(ids), ids=sorted(ids))

    def pause(self, queue: str) -> bool:
        self.calls.append(("pause", queue))
        return True

    def resume(self, queue: str) -> bool:
        self.calls.append(("resume", queue))
        return True

    def run_recurring_now(self, key: str) -> int:
        self.calls.append(("run_recurring_now", key))
        return 1

    def close(self) -> None:
        self.calls.append(("close", None))

