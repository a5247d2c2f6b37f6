"""What operators ask of jobctl beyond a single store call (stats, retries, discards, clears, run-now),
written once for both backends on the store's typed methods. The CLI verbs and the monitor share it."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import Any

from jobctl.errors import JobNotFound
from jobctl.records import STATES, QueueStats, Stats, ThroughputMinute, WriteResult
from jobctl.store import Store

QUEUES_USED_WITHIN_S = 3600.0
"""A queue whose jobs ran this recently is listed even when it holds no jobs now."""


def stats(store: Store, *, alive_threshold: float = 60.0, named_queues: Sequence[str] = ()) -> Stats:
    """Counts by state and queue, latency, throughput and live processes; every read is index-bounded.

    The queues are those with active or failed jobs, the paused ones, those whose jobs ran in the last
    hour, and `named_queues` (those the queue config's workers name), with zero counts when empty."""
    by_queue: dict[str, dict[str, Any]] = defaultdict(dict)
    states = dict.fromkeys(STATES, 0)
    reading = store.queue_counts()
    now = reading.at
    for c in reading.counts:
        by_queue[c.queue][c.state] = c.count
        states[c.state] += c.count
        if c.oldest_ready_at is not None:
            by_queue[c.queue]["oldest"] = c.oldest_ready_at
    for state in ("finished", "discarded"):
        states[state] = store.count_in_state(state)
    paused = set(store.paused_queues())
    used = set(store.queues_used(QUEUES_USED_WITHIN_S))
    buckets = store.throughput()
    queues = []
    for name in sorted(set(by_queue) | paused | used | set(named_queues)):
        counts = by_queue.get(name, {})
        oldest = counts.get("oldest")
        queues.append(QueueStats(
            name, ready=counts.get("ready", 0), scheduled=counts.get("scheduled", 0), claimed=counts.get("claimed", 0),
            blocked=counts.get("blocked", 0), failed=counts.get("failed", 0),
            latency_s=max((now - oldest).total_seconds(), 0.0) if oldest is not None else None,
            paused=name in paused))
    live = store.live_process_count(alive_threshold)
    fin_min, fail_min = _recent(buckets, now, minutes=1)
    fin_hour, fail_hour = _recent(buckets, now, minutes=60)
    return Stats(states, queues, live, fin_min, fail_min, fin_hour, fail_hour, now)


def _recent(buckets: Iterable[ThroughputMinute], now: dt.datetime, *, minutes: int) -> tuple[int, int]:
    """Runs in the last `minutes`: whole buckets inside the window, the oldest one prorated."""
    current = now.replace(second=0, microsecond=0)
    elapsed = (now - current).total_seconds() / 60.0
    oldest = current - dt.timedelta(minutes=minutes)
    finished = failed = 0.0
    for b in buckets:
        if b.minute > oldest:
            weight = 1.0
        elif b.minute == oldest:
            weight = 1.0 - elapsed
        else:
            continue
        finished += weight * b.finished
        failed += weight * b.failed
    return round(finished), round(failed)


def states_of(store: Store, ids: Sequence[int]) -> dict[int, tuple[str, str | None]]:
    """(state, key) of each existing job among `ids`."""
    return {j.id: (j.state, j.key) for j in store.get_jobs(ids)}


def retry(store: Store, ids: Sequence[int]) -> WriteResult:
    """Failed jobs back to ready with a fresh retry budget; jobs whose key is held are skipped."""
    before = states_of(store, ids)
    result = WriteResult(matched=len(ids))
    result.ids = store.retry_failed(ids)
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
    """Failed, ready, scheduled, blocked or waiting jobs to discarded."""
    before = states_of(store, ids)
    result = WriteResult(matched=len(ids))
    result.ids = store.discard_jobs(ids)
    for job_id in ids:
        if job_id not in result.ids:
            state = before.get(job_id, ("missing", None))[0]
            result.skipped[job_id] = f"job {job_id} is {state}; only failed, ready, scheduled, blocked or " \
                                     "waiting jobs are discarded"
    return result


def clear(store: Store, ids: Sequence[int]) -> WriteResult:
    """Delete jobs (with their errors and progress), in batches."""
    return WriteResult(matched=len(ids), ids=store.delete_jobs(ids))


def run_recurring_now(store: Store, key: str) -> int:
    """Enqueue a recurring task's job now, outside its schedule (the monitor's `n`); it shows as the task's
    last run, made by hand."""
    job_id = store.enqueue_recurring_now(key)
    if job_id is None:
        raise JobNotFound(f"recurring task {key!r} is not registered")
    return job_id
