"""The one interface both backends implement: a typed method per statement, runtime and operator alike.

Nothing above `jobctl.store` asks which database it is on, and nothing outside it names a query.
Every method's inputs and results are plain records (`jobctl.records`) or builtins. The behaviour
contract is `tests/test_store_conformance.py`: one suite, run on every backend, with the same inputs
and the same expected results.
"""

from __future__ import annotations

import abc
import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from jobctl.records import (
    BatchCallback,
    BatchInfo,
    ClaimedExecution,
    ClaimedJob,
    FailureSummary,
    Inserted,
    JobInfo,
    JobSummary,
    MetricsReading,
    NewJob,
    ProcessInfo,
    ProcessRef,
    QueueCounts,
    ReadyJobs,
    RecurringInfo,
    RecurringRow,
    RunError,
    Selector,
    ThroughputMinute,
    ThroughputTotals,
)
from jobctl.urls import DatabaseURL


@dataclass(frozen=True)
class StoreOptions:
    """How a store connects, beyond its URL (PostgreSQL only; SQLite ignores them)."""

    pooler: str | None = None
    """`transaction`: the URL goes through a transaction-pooling PgBouncer, so connections prepare no
    server-side statements and LISTEN is not taken on the URL (see `listen_url`)."""
    listen_url: DatabaseURL | None = None
    """A direct URL, past the pooler, for LISTEN; without one, a store behind a transaction pooler
    offers no listener and workers poll."""

    @property
    def prepares(self) -> bool:
        """Whether connections may use server-side prepared statements."""
        return self.pooler != "transaction"


class Store(abc.ABC):
    """A database holding jobctl's tables, on a connection of the store's own (opened on first use,
    after checking the schema is this jobctl's). Methods taking `conn` run on the caller's connection
    instead (inside its transaction, without committing) when one is given."""

    url: DatabaseURL
    options: StoreOptions = StoreOptions()
    """How it connects beyond the URL."""
    listens: bool = False
    """Whether workers can wait for NOTIFY instead of polling."""

    # -- schema and connections -----------------------------------------------------------

    @abc.abstractmethod
    def migrate(self) -> list[str]:
        """Apply pending migrations (idempotent, safe from two hosts at once); return the names applied."""

    @abc.abstractmethod
    def schema_version(self) -> tuple[int, int]:
        """(version in the database, latest version this jobctl knows)."""

    @abc.abstractmethod
    def ensure_schema(self) -> None:
        """Raise `SchemaOutdated` (naming `jobctl db migrate` and the versions found and needed) unless the
        schema is this jobctl's; a new, empty SQLite file gets its schema instead."""

    @abc.abstractmethod
    def check_connection(self, conn: Any) -> None:
        """Raise ValueError when a caller's connection is not to this store's database."""

    @abc.abstractmethod
    def session(self) -> Session:
        """A new dedicated connection for a runtime process."""

    def listener(self, share: Session | None = None) -> Listener | None:
        """LISTEN for wake-ups, or None on backends (or behind poolers) where workers poll: on `share`'s own
        connection when one is given and it can carry LISTEN (a supervisor's: no extra connection), else on
        a connection of its own (the listen URL past a pooler, when there is one)."""
        return None

    @abc.abstractmethod
    def close(self) -> None:
        """Close the store's own connection (never callers')."""

    # -- enqueueing -----------------------------------------------------------------------

    @abc.abstractmethod
    def insert_job(self, job: NewJob, conn: Any = None) -> Inserted:
        """Insert one job (or find the active one holding its key)."""

    @abc.abstractmethod
    def insert_jobs(self, ready: ReadyJobs, other: Sequence[NewJob], conn: Any = None) -> int:
        """Insert many jobs in one transaction and as few round trips as the backend allows: `ready` ones
        by the backend's bulk path, then the `other` ones; return how many were created."""

    @abc.abstractmethod
    def insert_workflow(self, jobs: Sequence[NewJob], conn: Any = None) -> list[Inserted]:
        """Insert jobs in order in one transaction; a negative id `-1 - i` in a job's `after_jobs` is the
        job at index `i` of `jobs` (inserted before it). Returns what each insert did, in order."""

    @abc.abstractmethod
    def job_state(self, job_id: int, conn: Any = None) -> str | None:
        """A job's current state, or None when it does not exist."""

    @abc.abstractmethod
    def count(self, state: str | None = None, queue: str | None = None) -> int:
        """How many jobs, optionally of one state and/or queue."""

    @abc.abstractmethod
    def set_progress(self, job_id: int, done: float, total: float | None, message: str | None) -> None:
        """Record a running job's progress on the store's own connection: a worker's jobs report through
        the connection their own enqueues use, so progress costs no connection more."""

    # -- batches --------------------------------------------------------------------------

    @abc.abstractmethod
    def create_batch(self, *, description: str | None, metadata: str | None, parent_job_id: int | None,
                     conn: Any = None) -> int:
        """Open a batch (`metadata` JSON text); it cannot finish until sealed. Returns its id."""

    @abc.abstractmethod
    def seal_batch(self, batch_id: int, callbacks: Sequence[BatchCallback], conn: Any = None) -> None:
        """Store a batch's callbacks and seal it: from now on it finishes when no member is active (at once
        when none is), each callback enqueued once, in the transaction of the member's end that calls for it."""

    @abc.abstractmethod
    def get_batches(self, ids: Sequence[int], conn: Any = None, *, states: bool = False) -> list[BatchInfo]:
        """Batches by id, newest first (unknown ids absent); `states`: with their members counted by state."""

    @abc.abstractmethod
    def list_batches(self, *, state: str | None = None, limit: int = 50, after: int | None = None) -> list[BatchInfo]:
        """One page of batches, newest first, optionally in one of `BATCH_STATES`."""

    @abc.abstractmethod
    def batch_active_members(self, batch_id: int, limit: int) -> list[int]:
        """Ids of a batch's members still active, oldest first: what holds it open."""

    # -- reading, for operators -----------------------------------------------------------

    @abc.abstractmethod
    def queue_counts(self) -> QueueCounts:
        """Active and failed jobs per queue and state, each queue's oldest ready due time, and the time."""

    @abc.abstractmethod
    def metrics_reading(self, alive_threshold: float) -> MetricsReading:
        """Jobs per queue and state (as `queue_counts`) and processes per kind and host, in one statement."""

    @abc.abstractmethod
    def count_in_state(self, state: str) -> int:
        """Exact count of one state, through that state's index (finished and discarded included)."""

    @abc.abstractmethod
    def paused_queues(self) -> list[str]:
        """Every paused queue, by name."""

    @abc.abstractmethod
    def throughput(self) -> list[ThroughputMinute]:
        """Finished and failed runs per minute, for the current minute and the 61 before it."""

    @abc.abstractmethod
    def throughput_totals(self) -> ThroughputTotals:
        """Runs finished and failed since the counters began, and the database's time."""

    @abc.abstractmethod
    def queues_used(self, within: float) -> list[str]:
        """Queues with runs counted (finished or failed) within the last `within` seconds, by name."""

    @abc.abstractmethod
    def live_process_count(self, threshold: float) -> int:
        """Processes whose heartbeat is at most `threshold` seconds old."""

    @abc.abstractmethod
    def get_jobs(self, ids: Sequence[int], conn: Any = None) -> list[JobInfo]:
        """Jobs by id with their errors, progress and result, newest first; unknown ids are simply absent."""

    @abc.abstractmethod
    def list_jobs(self, *, state: str | None = None, queue: str | None = None, class_path: str | None = None,
                  limit: int = 50, after: int | None = None) -> list[JobInfo]:
        """One page of jobs (with errors and progress), newest first; `after` is the previous page's last id."""

    @abc.abstractmethod
    def waiting_jobs(self) -> list[JobInfo]:
        """Jobs enqueued and not yet run (scheduled, ready, blocked or waiting), oldest first."""

    @abc.abstractmethod
    def match_jobs(self, *, states: Sequence[str], queue: str | None = None, class_path: str | None = None,
                   older_than: float | None = None) -> list[int]:
        """Ids, ascending, of the jobs in `states` (and queue, class) a bulk verb selects; `older_than`
        seconds since they finished (or were enqueued, if unfinished)."""

    @abc.abstractmethod
    def failed_page(self, *, after: int = 0, limit: int = 10_000) -> list[FailureSummary]:
        """A page of failed jobs with their last error, oldest first, ids after `after`."""

    @abc.abstractmethod
    def claimed_executions(self, limit: int) -> list[ClaimedExecution]:
        """Claimed jobs with their process and progress, oldest claim first (at most `limit`)."""

    @abc.abstractmethod
    def processes(self) -> list[ProcessInfo]:
        """Every registered process, by id."""

    @abc.abstractmethod
    def recurring_tasks(self) -> list[RecurringInfo]:
        """Recurring tasks as schedulers registered them, with their last tick, by key."""

    @abc.abstractmethod
    def recurring_task(self, key: str) -> RecurringRow | None:
        """What one registered recurring task's ticks enqueue, or None when it is not registered."""

    # -- changing, for operators ----------------------------------------------------------

    @abc.abstractmethod
    def retry_failed(self, ids: Sequence[int]) -> list[int]:
        """Failed jobs back to ready with a fresh retry budget; one whose key another active job holds is
        left alone. Returns the ids changed, ascending."""

    @abc.abstractmethod
    def discard_jobs(self, ids: Sequence[int]) -> list[int]:
        """Failed, ready, scheduled, blocked or waiting jobs to discarded; returns the ids changed, ascending."""

    @abc.abstractmethod
    def delete_jobs(self, ids: Sequence[int]) -> list[int]:
        """Delete jobs with their errors and progress; returns the ids deleted, ascending."""

    @abc.abstractmethod
    def pause_queue(self, queue: str) -> bool:
        """Stop claiming from a queue (it need not have jobs); False when it was paused already."""

    @abc.abstractmethod
    def resume_queue(self, queue: str) -> bool:
        """Claim from a queue again and wake its workers; False when it was not paused."""

    @abc.abstractmethod
    def enqueue_recurring_now(self, key: str) -> int | None:
        """Enqueue a registered recurring task's job now, outside its schedule, and record it as its last run
        (made by hand); returns the job's id, or None when the task is not registered."""

    @abc.abstractmethod
    def make_scheduled_due(self) -> int:
        """Every scheduled job becomes due now (the testing helpers skip waits); returns how many."""


class Session(abc.ABC):
    """A runtime process's own connection: registration, claims, completions, dispatching. Every call
    is one transaction."""

    @abc.abstractmethod
    def send_probe(self, token: str) -> None:
        """NOTIFY a probe carrying `token`, which a listener gives back as `PROBE_PREFIX + token` when
        notifications reach it (a no-op where nothing listens)."""

    @abc.abstractmethod
    def register_process(self, *, kind: str, hostname: str, pid: int, supervisor_id: int | None,
                         queues: str | None, threads: int | None, metadata: str | None, host_id: str | None = None,
                         wakeup: str | None = None) -> int:
        """Insert a process row; returns its id."""

    @abc.abstractmethod
    def set_wakeup(self, process_ids: Sequence[int], wakeup: str) -> None:
        """Record how these processes' workers wake now (`listening` or `polling`)."""

    @abc.abstractmethod
    def heartbeat(self, beats: Sequence[tuple[int, int]]) -> set[int]:
        """Beat for (process id, busy threads) pairs; returns the ids still registered."""

    @abc.abstractmethod
    def deregister(self, process_ids: Sequence[int]) -> int:
        """Return the processes' claimed jobs to ready (uncounted) and delete them; returns jobs released."""

    @abc.abstractmethod
    def release_claims(self, process_id: int, keep: Sequence[int]) -> int:
        """Return a live process's claimed jobs to ready (uncounted), except `keep`; returns how many."""

    @abc.abstractmethod
    def stale_processes(self, threshold: float) -> list[ProcessRef]:
        """Processes, on any host, whose heartbeat is older than `threshold` seconds."""

    @abc.abstractmethod
    def host_processes(self, host_id: str) -> list[ProcessRef]:
        """The processes registered from the host `host_id` (hostname, boot and PID namespace)."""

    @abc.abstractmethod
    def crash_jobs(self, process_id: int, job_ids: Sequence[int], max_crashes: int,
                   message: str) -> list[tuple[int, str]]:
        """Count a crashed run for jobs that were executing; returns (id, new state)."""

    @abc.abstractmethod
    def job_summaries(self, job_ids: Sequence[int]) -> dict[int, JobSummary]:
        """Jobs by id, as the supervisor counts and reports crashed runs; unknown ids are absent."""

    @abc.abstractmethod
    def claim(self, selector: Selector, limit: int, *, token: int, process_id: int,
              done: Sequence[int] = (), after: tuple[int, int] | None = None) -> list[ClaimedJob]:
        """Mark `done` finished and claim up to `limit` ready jobs (by priority, then id; after the
        (priority, id) `after` when given), in one round trip where possible. `done` holds jobs outside any
        batch: a batch member among them is left claimed (members finish through `finish(members=True)`,
        which counts them in their batch, so the claim path of other jobs pays nothing for batches)."""

    @abc.abstractmethod
    def finish(self, done: Sequence[int], *, token: int, process_id: int, members: bool = False) -> None:
        """Mark jobs finished (fenced by the token); `members`: they belong to batches (see `claim`), which
        count them in the same transaction, and may enqueue their callbacks."""

    @abc.abstractmethod
    def finish_with_results(self, results: Sequence[tuple[int, str]], *, token: int, process_id: int,
                            members: bool = False) -> int:
        """Mark jobs finished (fenced by the token) and keep what each returned, (id, JSON text) pairs;
        returns how many were finished. Jobs that returned None go through `claim`'s `done` instead.
        `members` as for `finish`."""

    @abc.abstractmethod
    def retry(self, job_id: int, *, token: int, process_id: int, delay: float, queue: str | None,
              priority: int | None, error: RunError) -> str | None:
        """Count a failed run and schedule the next; returns the new state, None if the claim was lost."""

    @abc.abstractmethod
    def end(self, job_id: int, *, token: int, process_id: int, state: str, error: RunError) -> bool:
        """Count a final run as failed or discarded; False if the claim was lost."""

    @abc.abstractmethod
    def dispatch_due(self, limit: int) -> int:
        """Move up to `limit` due scheduled jobs to ready."""

    @abc.abstractmethod
    def dispatch_and_unblock(self, limit: int) -> tuple[int, int]:
        """`dispatch_due` then `unblock_all` in one round trip where the backend allows; (moved, unblocked)."""

    @abc.abstractmethod
    def unblock_all(self) -> int:
        """Reclaim leaked concurrency slots and hand free slots to blocked jobs; returns jobs unblocked."""

    @abc.abstractmethod
    def set_progress(self, job_id: int, done: float, total: float | None, message: str | None) -> None:
        """Record a running job's progress."""

    @abc.abstractmethod
    def prune_finished(self, age: float, limit: int) -> int:
        """Delete up to `limit` finished jobs older than `age` seconds."""

    @abc.abstractmethod
    def prune_throughput(self, age: float) -> None:
        """Forget throughput counters older than `age` seconds."""

    @abc.abstractmethod
    def now(self) -> dt.datetime:
        """The database's clock (aware UTC)."""

    @abc.abstractmethod
    def upsert_recurring_task(self, row: RecurringRow) -> None:
        """Record a recurring task as this scheduler loaded it."""

    @abc.abstractmethod
    def enqueue_tick(self, row: RecurringRow, run_at: dt.datetime) -> int | None:
        """Enqueue the tick `run_at` of a task; None when another scheduler already did."""

    @abc.abstractmethod
    def set_next_run(self, key: str, next_run_at: dt.datetime) -> None:
        """Show operators when a task runs next."""

    @abc.abstractmethod
    def prune_recurring_runs(self, age: float) -> None:
        """Forget ticks older than `age` seconds."""

    @abc.abstractmethod
    def close(self) -> None:
        """Close the connection."""


PROBE_PREFIX = "jobctl:probe:"
"""Payloads starting with this are a listener's own round-trip probes, never queue names to wake."""


class Listener(abc.ABC):
    """Wake-ups for idle workers (PostgreSQL LISTEN); SQLite has none and polls."""

    @abc.abstractmethod
    def wait(self, timeout: float) -> list[str]:
        """Block up to `timeout` seconds for notifications; returns their payloads (queue names)."""

    @abc.abstractmethod
    def drain(self) -> list[str]:
        """The payloads that arrived already (received during other statements, or waiting on the socket),
        without blocking."""

    @abc.abstractmethod
    def fileno(self) -> int:
        """The socket to select() on: readable when a notification may have arrived."""

    @abc.abstractmethod
    def close(self) -> None:
        """Stop listening."""
