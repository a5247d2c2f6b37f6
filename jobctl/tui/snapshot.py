"""What the monitor shows: an immutable `Snapshot`, built by the pure `fetch()` from a store.

The screen never reads the database itself: a worker thread calls `Source.fetch()` (in `source.py`)
and posts the snapshot back, and the screen renders it (the memray pattern).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field

from jobctl import operations
from jobctl.records import FailureSummary, JobInfo, QueueStats
from jobctl.store import Store
from jobctl.tui.filtering import Filter
from jobctl.tui.probe import LocalProbe

RATE_WINDOW_S = 300.0
"""How far back the throughput sparklines reach."""
FAILURES_LIMIT = 200
"""Most recent failures read per refresh (the Failures panel says when there are more)."""
CLAIMED_LIMIT = 200
"""Oldest claimed executions read per refresh."""
BATCHES_LIMIT = 100
"""Newest batches read per refresh."""


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
    """Runs finished in the last hour (an estimate: per-minute counters, the oldest minute prorated)."""
    processes: int = 0
    """Processes with a recent heartbeat."""
    waiting: int = 0
    """Jobs waiting for the jobs and batches they depend on."""


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
    wakeup: str | None = None
    """How a worker learns of new jobs: `listening` or `polling` (None for other kinds)."""


@dataclass(frozen=True)
class BatchRow:
    """One batch."""

    id: int
    """Batch id (the row key)."""
    state: str
    """One of `records.BATCH_STATES`."""
    description: str | None
    """What the application said it is."""
    finished: int
    """Members finished."""
    failed: int
    """Members failed or discarded."""
    total: int
    """Members enqueued."""
    created_at: dt.datetime
    """When it was opened."""
    finished_at: dt.datetime | None = None
    """When no member was left active."""


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
    """Cumulative finished runs (the throughput counters); rates are deltas of these."""
    failed_total: int = 0
    """Cumulative failed runs."""
    rates: tuple[RateSample, ...] = ()
    """Throughput measured between this monitor's readings over the last RATE_WINDOW_S, oldest first
    (none at the first reading)."""
    queues: tuple[QueueStats, ...] = ()
    """The Queues panel, by name: queues with jobs, paused ones and those the queue config names."""
    claimed: tuple[ClaimedRow, ...] = ()
    """The Claimed executions panel, oldest claim first (at most CLAIMED_LIMIT)."""
    failures: tuple[FailureSummary, ...] = ()
    """The Failures panel, newest first (at most FAILURES_LIMIT; `counts.failed` is the total)."""
    recurring: tuple[TaskRow, ...] = ()
    """The Recurring panel, by key."""
    processes: tuple[ProcessRow, ...] = ()
    """The Processes panel, by id."""
    batches: tuple[BatchRow, ...] = ()
    """The Batches panel, newest first (at most BATCHES_LIMIT)."""


def advance_rates(previous: Snapshot | None, at: dt.datetime, finished_total: int, failed_total: int,
                  window: float = RATE_WINDOW_S) -> tuple[RateSample, ...]:
    """The rate history after one more reading: the delta of the cumulative counters since the previous
    snapshot over the time between them. The first reading measures nothing yet: no sample (a rate
    guessed for the time before the monitor started would be drawn as if it had been measured)."""
    if previous is None:
        return ()
    elapsed = (at - previous.at).total_seconds()
    if elapsed <= 0:
        return previous.rates
    # Counters shrink when old minutes are pruned: a negative delta counts as none.
    sample = RateSample(previous.at, at, max(finished_total - previous.finished_total, 0) / elapsed,
                        max(failed_total - previous.failed_total, 0) / elapsed)
    cutoff = at - dt.timedelta(seconds=window)
    return tuple(s for s in (*previous.rates, sample) if s.at > cutoff)


def failure_row(job: JobInfo) -> FailureSummary:
    """A failed job as the Failures panel shows it."""
    last = job.errors[-1] if job.errors else None
    return FailureSummary(job.id, job.class_path, job.queue, last.error_class if last else None,
                          last.message if last else None, job.attempts, job.finished_at)


def failure_matches(flt: Filter, row: FailureSummary) -> bool:
    """Whether a failure passes the filter (the same test for the panel and for `R` / `D`)."""
    return flt.matches({"queue": row.queue, "class": row.class_path, "error": row.error}, (str(row.id),))


def fetch(store: Store, previous: Snapshot | None = None, *, alive_threshold: float = 60.0,
          probe: LocalProbe | None = None, failures_limit: int = FAILURES_LIMIT,
          claimed_limit: int = CLAIMED_LIMIT, named_queues: Sequence[str] = (),
          batches_limit: int = BATCHES_LIMIT) -> Snapshot:
    """One refresh: every panel through the store's bounded reads (same code on both backends).
    `named_queues` (those the queue config's workers name) show in the Queues panel even while empty."""
    stats = operations.stats(store, alive_threshold=alive_threshold, named_queues=named_queues)
    totals = store.throughput_totals()
    at = stats.at
    rates = advance_rates(previous, at, totals.finished, totals.failed)
    claimed = tuple(
        ClaimedRow(c.id, c.class_path, c.queue, c.claimed_at,
                   f"{c.process_kind} {c.hostname}:{c.pid}" if c.hostname else "-",
                   c.progress.done if c.progress else None, c.progress.total if c.progress else None,
                   c.progress.message if c.progress else None)
        for c in store.claimed_executions(claimed_limit))
    failures = tuple(failure_row(j) for j in store.list_jobs(state="failed", limit=failures_limit))
    recurring = tuple(TaskRow(t.key, t.schedule, t.command or t.class_path or "", t.queue, t.last_run_at,
                              t.next_run_at) for t in store.recurring_tasks())
    rows = store.processes()
    local = probe.sample(rows) if probe is not None else {}
    processes = tuple(
        ProcessRow(r.id, r.kind, r.hostname, r.pid, ",".join(r.queues) if r.queues else None, r.threads, r.busy,
                   r.last_heartbeat_at, *local.get(r.id, (None, None)), wakeup=r.wakeup if r.kind == "worker" else None)
        for r in rows)
    batches = tuple(BatchRow(b.id, b.state, b.description, b.finished, b.failed, b.total, b.created_at, b.finished_at)
                    for b in store.list_batches(limit=batches_limit))
    s = stats.states
    counts = Counts(s["ready"], s["scheduled"], s["claimed"], s["blocked"], s["failed"], stats.finished_last_hour,
                    stats.processes, s.get("waiting", 0))
    return Snapshot(at, counts, totals.finished, totals.failed, rates, tuple(stats.queues), claimed, failures,
                    recurring, processes, batches)
