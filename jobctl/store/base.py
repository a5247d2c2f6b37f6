"""The one interface both backends implement; nothing above `jobctl.store` asks which database it is on."""

from __future__ import annotations

import abc
import datetime as dt
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from jobctl.urls import DatabaseURL


@dataclass(frozen=True)
class Limit:
    """A concurrency limit as stored: at most `to` jobs of `key` ready or claimed at once."""

    key: str
    """The concurrency key (group or class, then the key function's value)."""
    to: int
    """Slots for the key."""
    duration: float
    """Seconds after which a slot still held by a job that no longer runs is reclaimed (a fail-safe)."""
    discard: bool
    """on_conflict="discard": a job finding no free slot is discarded instead of blocked."""

    @property
    def conflict_reason(self) -> str:
        """Why a job was discarded for this limit."""
        return f"concurrency limit reached: {self.to} of {self.key!r} already running or ready"


@dataclass
class ReadyJobs:
    """Jobs ready now, with no key, wait or limit, as the bulk path takes them, in order: job `i` is of
    kind `kinds[kind[i]]` = (queue, class path, priority) with serialised arguments `arguments[i]`.

    Parallel lists rather than an object or tuple per job: a bulk enqueue then allocates no container
    per job, and so sets off no garbage collections (which doubled the cost of building its rows).
    """

    kinds: list[tuple[str, str, int]] = field(default_factory=list)
    """Each distinct (queue, class path, priority)."""
    kind: list[int] = field(default_factory=list)
    """Per job, its index in `kinds`."""
    arguments: list[str] = field(default_factory=list)
    """Per job, its serialised arguments (JSON text)."""

    def __len__(self) -> int:
        return len(self.kind)

    def rows(self) -> Iterator[tuple[str, str, int, str]]:
        """(queue, class path, priority, arguments) per job, in order."""
        kinds = self.kinds
        return ((*kinds[k], a) for k, a in zip(self.kind, self.arguments, strict=True))


@dataclass(frozen=True)
class NewJob:
    """A job about to be inserted."""

    class_path: str
    """The job class's import path."""
    queue: str
    """Queue name."""
    priority: int
    """Lower runs first."""
    arguments: str
    """Serialised arguments (JSON text)."""
    key: str | None = None
    """Unique key: while a job with this key is active, no second one is inserted."""
    delay: float = 0.0
    """Seconds from the database's now until it is due (ignored when `run_at` is set)."""
    run_at: dt.datetime | None = None
    """An absolute due time (aware)."""
    limit: Limit | None = None
    """Its concurrency limit, when its class declares one."""

    @property
    def plain(self) -> bool:
        """Ready now, with no key and no limit: eligible for the bulk fast path."""
        return self.key is None and self.run_at is None and self.delay <= 0 and self.limit is None


@dataclass(frozen=True)
class Inserted:
    """What inserting one job did."""

    id: int
    """The new job's id, or the id of the active job already holding the key."""
    state: str
    """Its state right after the insert."""
    created: bool
    """False when an active job with the same key was returned instead."""


class Store(abc.ABC):
    """A database holding jobctl's tables. Methods taking `conn` run on the caller's connection
    (inside its transaction, without committing) when one is given, else on the store's own."""

    url: DatabaseURL
    listens: bool = False
    """Whether workers can wait for NOTIFY instead of polling."""

    @abc.abstractmethod
    def migrate(self) -> list[str]:
        """Apply pending migrations (idempotent, safe from two hosts at once); return the names applied."""

    @abc.abstractmethod
    def schema_version(self) -> tuple[int, int]:
        """(version in the database, latest version this jobctl knows)."""

    @abc.abstractmethod
    def check_connection(self, conn: Any) -> None:
        """Raise ValueError when a caller's connection is not to this store's database."""

    @abc.abstractmethod
    def insert_job(self, job: NewJob, conn: Any = None) -> Inserted:
        """Insert one job (or find the active one holding its key)."""

    @abc.abstractmethod
    def insert_jobs(self, ready: ReadyJobs, other: Sequence[NewJob], conn: Any = None) -> int:
        """Insert many jobs in one transaction and as few round trips as the backend allows: `ready` ones
        by the backend's bulk path, then the `other` ones; return how many were created."""

    @abc.abstractmethod
    def job_state(self, job_id: int, conn: Any = None) -> str | None:
        """A job's current state, or None when it does not exist."""

    @abc.abstractmethod
    def count(self, state: str | None = None, queue: str | None = None) -> int:
        """How many jobs, optionally of one state and/or queue."""

    @abc.abstractmethod
    def run(self, name: str, params: dict[str, Any] | None = None, conn: Any = None) -> list[dict[str, Any]]:
        """Run a named operator query; rows as dicts, times as aware datetimes, JSON columns parsed."""

    @abc.abstractmethod
    def close(self) -> None:
        """Close the store's own connections (not callers')."""

    @abc.abstractmethod
    def session(self) -> RuntimeSession:
        """A new dedicated connection for a runtime process."""

    def listener(self) -> Listener | None:
        """A new LISTEN connection, or None on backends that poll."""
        return None


@dataclass(frozen=True)
class Selector:
    """Which queues one claim statement reads."""

    kind: str
    """`any` (every queue), `queue` (one name) or `prefix` (names starting with `value`)."""
    value: str = ""
    """The queue name or prefix."""

    @classmethod
    def parse(cls, text: str) -> Selector:
        """`*`, `name` or `prefix*` as written in queue.yml."""
        if text == "*":
            return cls("any")
        if text.endswith("*"):
            return cls("prefix", text[:-1])
        return cls("queue", text)


class ClaimedJob(NamedTuple):
    """A job a worker has claimed (a tuple: built for every job of every claim, cheaply)."""

    id: int
    """Job id."""
    queue: str
    """Its queue."""
    class_path: str
    """Its job class."""
    priority: int
    """Its priority."""
    arguments: str
    """Stored arguments (JSON text)."""
    attempts: int
    """Runs that ended before this one."""
    attempts_base: int
    """Attempts before the last manual retry: this run is execution `attempts - attempts_base + 1`."""


@dataclass(frozen=True)
class RunError:
    """The error of one run, as kept in jobctl_errors."""

    error_class: str
    """`module.QualName` of the exception (or `jobctl.WorkerCrashed`)."""
    message: str
    """Its message."""
    traceback: str | None = None
    """Formatted traceback."""


@dataclass(frozen=True)
class RecurringRow:
    """A recurring task as stored, and what each of its ticks enqueues."""

    key: str
    """Task key."""
    schedule: str
    """As written."""
    cron: str
    """As cron."""
    class_path: str
    """The job class each tick enqueues (a command's built-in job for commands)."""
    command: str | None
    """The command's import path, for display."""
    arguments: str
    """Stored arguments of each tick's job."""
    queue: str
    """Queue of each tick's job."""
    priority: int
    """Priority of each tick's job."""
    description: str | None
    """Free text."""
    next_run_at: dt.datetime | None
    """When it runs next."""


class RuntimeSession(abc.ABC):
    """A runtime process's own connection: registration, claims, completions, dispatching."""

    @abc.abstractmethod
    def register_process(self, *, kind: str, hostname: str, pid: int, supervisor_id: int | None,
                         queues: str | None, threads: int | None, metadata: str | None) -> int:
        """Insert a process row; returns its id."""

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
    def stale_processes(self, threshold: float) -> list[tuple[int, str, int, str]]:
        """(id, hostname, pid, kind) of processes whose heartbeat is older than `threshold` seconds."""

    @abc.abstractmethod
    def host_processes(self, hostname: str) -> list[tuple[int, int, str, int | None]]:
        """(id, pid, kind, supervisor_id) of the processes registered from `hostname`."""

    @abc.abstractmethod
    def crash_jobs(self, process_id: int, job_ids: Sequence[int], max_crashes: int,
                   message: str) -> list[tuple[int, str]]:
        """Count a crashed run for jobs that were executing; returns (id, new state)."""

    @abc.abstractmethod
    def claim(self, selector: Selector, limit: int, *, token: int, process_id: int,
              done: Sequence[int] = (), after: tuple[int, int] | None = None) -> list[ClaimedJob]:
        """Mark `done` finished and claim up to `limit` ready jobs, in one round trip where possible."""

    @abc.abstractmethod
    def finish(self, done: Sequence[int], *, token: int, process_id: int) -> None:
        """Mark jobs finished (fenced by the token)."""

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
    def set_progress(self, job_id: int, done: float, total: float | None, message: str | None) -> None:
        """Record a running job's progress."""

    @abc.abstractmethod
    def unblock_all(self) -> int:
        """Reclaim leaked concurrency slots and hand free slots to blocked jobs; returns jobs unblocked."""

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


class Listener(abc.ABC):
    """Wake-ups for idle workers (PostgreSQL LISTEN); SQLite has none and polls."""

    @abc.abstractmethod
    def wait(self, timeout: float) -> list[str]:
        """Block up to `timeout` seconds for notifications; returns their payloads (queue names)."""

    @abc.abstractmethod
    def close(self) -> None:
        """Stop listening."""
