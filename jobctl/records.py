"""Plain records every layer shares: the API, the runtime, the store, the operator tools and the monitor.

Values only: no database, no I/O, nothing imported from the rest of jobctl. A store method takes and
returns these; `to_dict()` is the JSON shape of SPEC 7.1 wherever a record has one.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, NamedTuple

STATES = ("scheduled", "ready", "claimed", "blocked", "waiting", "finished", "failed", "discarded")
"""Every job state, in lifecycle order; these names, exactly, in every output."""
ACTIVE_STATES = ("scheduled", "ready", "blocked", "claimed", "waiting")
"""States in which a job holds its unique key."""


def iso(value: dt.datetime | None) -> str | None:
    """A UTC ISO-8601 string (`…Z`), or None."""
    if value is None:
        return None
    return value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def _num(value: float | None) -> float | int | None:
    if value is not None and float(value).is_integer():
        return int(value)
    return value


# -- enqueueing -------------------------------------------------------------------------------


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
    timeout: float | None = None
    """Seconds a run may take, when `set(timeout=)` gave it one (the class's `timeout` needs no storing)."""
    batch_id: int | None = None
    """The batch it belongs to (enqueued inside `jobctl.batch()`, or by a batch's job while it ran)."""
    after_jobs: tuple[int, ...] = ()
    """Jobs it waits for (state `waiting`) before it is due."""
    after_batches: tuple[int, ...] = ()
    """Batches it waits for."""
    run_on_dependency_failure: bool = False
    """on_dependency_failure="run": run even when something it waits for failed (else it is discarded)."""

    @property
    def waits(self) -> bool:
        """Whether it is inserted as waiting for other jobs or batches."""
        return bool(self.after_jobs or self.after_batches)

    @property
    def plain(self) -> bool:
        """Ready now, with no key, limit, timeout, batch or dependency: eligible for the bulk fast path."""
        return self.key is None and self.run_at is None and self.delay <= 0 and self.limit is None \
            and self.timeout is None and self.batch_id is None and not self.after_jobs and not self.after_batches


@dataclass(frozen=True)
class Inserted:
    """What inserting one job did."""

    id: int
    """The new job's id, or the id of the active job already holding the key."""
    state: str
    """Its state right after the insert."""
    created: bool
    """False when an active job with the same key was returned instead."""


# -- running ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Selector:
    """Which queues one claim statement reads (one entry of a worker's `queues:`)."""

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

    def matches(self, queue: str) -> bool:
        """Whether jobs of `queue` are claimed through this selector (the rule the claim SQL applies)."""
        if self.kind == "any":
            return True
        if self.kind == "prefix":
            return queue.startswith(self.value)
        return queue == self.value


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
    timeout: float | None = None
    """Seconds this run may take when `set(timeout=)` gave the job one (else its class's `timeout`)."""
    batch_id: int | None = None
    """Its batch, if any: the jobs it enqueues while it runs join it."""

    @property
    def executions(self) -> int:
        """Which run this is since the job was enqueued or last retried by hand (1 for the first): what
        `retry_on`'s attempts count, and `Job.executions`."""
        return self.attempts - self.attempts_base + 1

    @property
    def attempt(self) -> int:
        """Which run this is of the job's whole life: the number `show`, `top` and the logs give it."""
        return self.attempts + 1


@dataclass(frozen=True)
class RunError:
    """The error of one run, as kept in jobctl_errors."""

    error_class: str
    """`module.QualName` of the exception (or `jobctl.WorkerCrashed`)."""
    message: str
    """Its message."""
    traceback: str | None = None
    """Formatted traceback."""


class ProcessRef(NamedTuple):
    """A registered runtime process, as the supervisors' pruning reads it."""

    id: int
    """Its row in jobctl_processes."""
    hostname: str
    """Host it registered from."""
    host_id: str | None
    """`hostname/boot id/pid namespace` (`jobctl.runtime.host.host_id`): pids compare only within one."""
    pid: int
    """OS pid on that host."""
    kind: str
    """supervisor, worker, dispatcher or scheduler."""
    supervisor_id: int | None
    """Its supervisor's row (None for a supervisor)."""


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


# -- jobs as operators and the API see them ---------------------------------------------------


@dataclass(frozen=True)
class ErrorInfo:
    """One failed run of a job."""

    attempt: int
    """Which run (1 for the first)."""
    error_class: str
    """The exception's class, `module.QualName`."""
    message: str
    """The exception's message."""
    traceback: str | None
    """The formatted traceback, when there was one."""
    at: dt.datetime
    """When it was recorded (UTC)."""
    process_id: int | None = None
    """The runtime process the run ran in (its row in jobctl_processes; None when not recorded)."""

    def to_dict(self) -> dict[str, Any]:
        """JSON form: `{attempt, class, message, traceback, at}`."""
        return {"attempt": self.attempt, "class": self.error_class, "message": self.message,
                "traceback": self.traceback, "at": iso(self.at)}


@dataclass(frozen=True)
class Progress:
    """The progress a running job last reported."""

    done: float
    """Units done."""
    total: float | None
    """Units in all, when known."""
    message: str | None
    """A short note from the job."""
    at: dt.datetime
    """When it was reported (UTC)."""

    def to_dict(self) -> dict[str, Any]:
        """JSON form: `{done, total, message, at}`."""
        return {"done": _num(self.done), "total": _num(self.total), "message": self.message, "at": iso(self.at)}


@dataclass(frozen=True)
class Dependency:
    """One thing a job waits for: a job or a batch, and how it ended."""

    job_id: int | None
    """The job waited for (None when it is a batch)."""
    batch_id: int | None
    """The batch waited for (None when it is a job)."""
    outcome: str | None
    """`finished` or `failed` once it ended (failed: failed or discarded, or a batch with such a job);
    None while it has not."""

    def to_dict(self) -> dict[str, Any]:
        """`{"job": 12, "batch": null, "outcome": "finished"}`."""
        return {"job": self.job_id, "batch": self.batch_id, "outcome": self.outcome}


BATCH_STATES = ("open", "running", "finished", "failed")
"""A batch's states: `open` while its `with` block runs, `running` while a member is active, then
`finished` (every member finished) or `failed` (some member failed or was discarded)."""


@dataclass(frozen=True)
class BatchCallback:
    """A batch callback as stored: which event, the configured job, and the job once enqueued."""

    event: str
    """`success`, `failure` or `finish`."""
    class_path: str
    """The callback job's class."""
    queue: str
    """Its queue."""
    priority: int
    """Its priority."""
    arguments: str
    """Its serialised arguments (JSON text), the batch first."""
    job_id: int | None = None
    """The callback job, once enqueued (each is enqueued at most once)."""

    def to_dict(self) -> dict[str, Any]:
        """`{"event": "success", "class": ..., "queue": ..., "job": 17}`."""
        return {"event": self.event, "class": self.class_path, "queue": self.queue, "priority": self.priority,
                "job": self.job_id}


@dataclass(frozen=True)
class BatchInfo:
    """A batch as stored, read fresh: what `jobctl.get_batch(id)` returns and callbacks receive first."""

    id: int
    """The batch's id."""
    description: str | None
    """What the application said it is."""
    metadata: Any
    """The JSON the application attached (`metadata=`), or None."""
    total: int
    """Members enqueued so far."""
    finished: int
    """Members finished."""
    failed: int
    """Members failed or discarded (for good: a retry does not count until it ends)."""
    sealed: bool
    """Whether its `with` block has ended (until then it cannot finish)."""
    created_at: dt.datetime
    """When it was opened."""
    finished_at: dt.datetime | None
    """When no member was left active (None while one is)."""
    callbacks: tuple[BatchCallback, ...] = ()
    """Its callbacks, in order success, failure, finish (those configured)."""
    parent_job_id: int | None = None
    """The job whose run opened it, if one did."""
    states: dict[str, int] = field(default_factory=dict)
    """Members by state now (only where asked for: `jobctl batch ID`; pruned members are not counted)."""

    @property
    def pending(self) -> int:
        """Members still active (scheduled, ready, claimed, blocked or waiting)."""
        return self.total - self.finished - self.failed

    @property
    def state(self) -> str:
        """One of `BATCH_STATES`."""
        if not self.sealed:
            return "open"
        if self.finished_at is None:
            return "running"
        return "failed" if self.failed else "finished"

    def callback(self, event: str) -> BatchCallback | None:
        """The callback for `event`, if configured."""
        return next((c for c in self.callbacks if c.event == event), None)

    def to_dict(self) -> dict[str, Any]:
        """The object `jobctl batch ID --json` prints."""
        return {
            "id": self.id,
            "state": self.state,
            "description": self.description,
            "metadata": self.metadata,
            "total": self.total,
            "finished": self.finished,
            "failed": self.failed,
            "pending": self.pending,
            "states": dict(self.states),
            "callbacks": [c.to_dict() for c in self.callbacks],
            "parent_job": self.parent_job_id,
            "created_at": iso(self.created_at),
            "finished_at": iso(self.finished_at),
        }


@dataclass(frozen=True)
class JobInfo:
    """A job as stored, read fresh from the database."""

    id: int
    """The job's id."""
    class_path: str
    """The job class's import path, `module:QualName`."""
    queue: str
    """The queue it runs on."""
    priority: int
    """Lower runs first."""
    state: str
    """One of `STATES`."""
    arguments: Any
    """The stored arguments, `{"args": [...], "kwargs": {...}}` in the tagged JSON form."""
    attempts: int
    """Runs that ended (finished, raised or crashed)."""
    crashes: int
    """Runs that ended with the worker process dying."""
    errors: tuple[ErrorInfo, ...]
    """Every failed run's error, oldest first."""
    key: str | None
    """The unique key, if any."""
    progress: Progress | None
    """Last reported progress."""
    enqueued_at: dt.datetime
    """When it was enqueued."""
    scheduled_at: dt.datetime
    """When it is (or was) due."""
    claimed_at: dt.datetime | None
    """When a worker last claimed it."""
    finished_at: dt.datetime | None
    """When it finished, failed or was discarded."""
    result: Any = None
    """What a finished job returned, in the same tagged JSON form as `arguments` (None when it returned
    None, or has not finished)."""
    process_id: int | None = None
    """The runtime process that last claimed it (its row in jobctl_processes, which may be gone)."""
    batch_id: int | None = None
    """The batch it belongs to, if any."""
    dependencies: tuple[Dependency, ...] = ()
    """What it waits (or waited) for, with each one's outcome."""
    dependents: tuple[int, ...] = ()
    """Jobs that wait (or waited) for it, by id."""

    def to_dict(self) -> dict[str, Any]:
        """The object `jobctl show ID --json` prints."""
        return {
            "id": self.id,
            "class": self.class_path,
            "queue": self.queue,
            "priority": self.priority,
            "state": self.state,
            "arguments": self.arguments,
            "attempts": self.attempts,
            "errors": [e.to_dict() for e in self.errors],
            "key": self.key,
            "progress": self.progress.to_dict() if self.progress else None,
            "enqueued_at": iso(self.enqueued_at),
            "scheduled_at": iso(self.scheduled_at),
            "claimed_at": iso(self.claimed_at),
            "finished_at": iso(self.finished_at),
            "crashes": self.crashes,
            "result": self.result,
            "batch": self.batch_id,
            "dependencies": [d.to_dict() for d in self.dependencies],
            "dependents": list(self.dependents),
        }


@dataclass(frozen=True)
class FailureSummary:
    """A failed job as the monitor's Failures panel lists it: no arguments, no traceback."""

    id: int
    """Job id."""
    class_path: str
    """Job class, `module:QualName`."""
    queue: str
    """Its queue."""
    error_class: str | None
    """The last error's exception class (None without an error)."""
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
class ClaimedExecution:
    """A claimed job with the process holding it and its last progress."""

    id: int
    """Job id."""
    class_path: str
    """Job class, `module:QualName`."""
    queue: str
    """Its queue."""
    claimed_at: dt.datetime | None
    """When the worker claimed it."""
    attempts: int
    """Runs that ended before this one."""
    attempts_base: int
    """Attempts before the last manual retry."""
    process_id: int | None
    """The row of the process holding the claim."""
    process_kind: str | None
    """That process's kind (None when its row is gone)."""
    hostname: str | None
    """That process's host (None when its row is gone)."""
    pid: int | None
    """That process's OS pid (None when its row is gone)."""
    progress: Progress | None
    """Its last reported progress."""


# -- queues, processes, recurring tasks -------------------------------------------------------


@dataclass(frozen=True)
class QueueCount:
    """How many jobs of one queue are in one state (active or failed states only)."""

    queue: str
    """Queue name."""
    state: str
    """One of scheduled, ready, claimed, blocked, failed."""
    count: int
    """Jobs in that state."""
    oldest_ready_at: dt.datetime | None
    """Due time of its oldest ready job (None unless `state` is ready)."""


@dataclass(frozen=True)
class QueueCounts:
    """Every queue's active and failed counts, read in one statement."""

    at: dt.datetime
    """The database's time of the reading."""
    counts: tuple[QueueCount, ...]
    """One entry per queue and state present."""


@dataclass(frozen=True)
class JobSummary:
    """A job as the supervisor reports and counts a crashed run of it."""

    id: int
    """The job's id."""
    queue: str
    """Its queue."""
    class_path: str
    """Its class, `module:QualName`."""
    attempt: int
    """Runs ended since its last manual retry (the crashed run's number, once counted)."""
    arguments: str
    """Its stored arguments (JSON text)."""


@dataclass(frozen=True)
class ProcessCount:
    """The registered processes of one kind on one host, for metrics."""

    kind: str
    """supervisor, worker, dispatcher or scheduler."""
    hostname: str
    """The host they run on."""
    alive: int
    """How many beat within the alive threshold."""
    oldest_heartbeat_age: float
    """Seconds since the least recent heartbeat among them (alive or not)."""


@dataclass(frozen=True)
class MetricsReading:
    """What metrics read from the database, in one statement."""

    at: dt.datetime
    """The database's time of the reading."""
    counts: tuple[QueueCount, ...]
    """Active and failed jobs per queue and state, as `QueueCounts`."""
    processes: tuple[ProcessCount, ...]
    """Registered processes per kind and host."""


@dataclass(frozen=True)
class ThroughputMinute:
    """Runs counted in one minute (every process's counters summed)."""

    minute: dt.datetime
    """Start of the minute (UTC)."""
    finished: int
    """Runs that finished."""
    failed: int
    """Runs that raised or crashed."""


@dataclass(frozen=True)
class ThroughputTotals:
    """Runs counted since the counters began; the monitor's rates are deltas of these."""

    finished: int
    """Runs that finished."""
    failed: int
    """Runs that raised or crashed."""
    at: dt.datetime
    """The database's time of the reading."""


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
    """Every queue with active or failed jobs, paused, or whose jobs ran in the last hour."""
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


@dataclass(frozen=True)
class ProcessInfo:
    """A registered runtime process as operators see it."""

    id: int
    """Its row in jobctl_processes."""
    kind: str
    """supervisor, worker, dispatcher or scheduler."""
    hostname: str
    """Host it runs on."""
    pid: int
    """OS process id on that host."""
    supervisor_id: int | None
    """Its supervisor's row (None for a supervisor)."""
    queues: tuple[str, ...] | None
    """Queues a worker claims from (None for other kinds)."""
    threads: int | None
    """A worker's threads."""
    busy: int
    """Threads executing a job at the last heartbeat."""
    last_heartbeat_at: dt.datetime
    """Its last heartbeat."""
    started_at: dt.datetime
    """When it registered."""
    wakeup: str | None = None
    """How a worker learns of new jobs: `listening` (PostgreSQL NOTIFY, relayed by its supervisor) or
    `polling` (SQLite, a transaction pooler, or notifications that did not arrive)."""

    def to_dict(self) -> dict[str, Any]:
        """JSON form (SPEC 7.1)."""
        return {"id": self.id, "kind": self.kind, "hostname": self.hostname, "pid": self.pid,
                "supervisor_id": self.supervisor_id, "queues": list(self.queues) if self.queues else None,
                "threads": self.threads, "busy": self.busy, "last_heartbeat_at": iso(self.last_heartbeat_at),
                "started_at": iso(self.started_at), "wakeup": self.wakeup}


@dataclass(frozen=True)
class RecurringInfo:
    """A recurring task as schedulers registered it, with its last and next run."""

    key: str
    """Task key."""
    schedule: str
    """As written in recurring.yml."""
    cron: str
    """As cron."""
    class_path: str | None
    """The job class it enqueues (None for a command)."""
    command: str | None
    """The command it calls (None for a class)."""
    args: Any
    """A class task's stored positional arguments (None for a command: its own live in recurring.yml)."""
    queue: str | None
    """Queue of each tick's job."""
    priority: int | None
    """Priority of each tick's job."""
    description: str | None
    """Free text."""
    last_run_at: dt.datetime | None
    """Its last run: the last tick enqueued, or a run enqueued by hand (`jobctl top`'s `n`)."""
    next_run_at: dt.datetime | None
    """When it runs next."""
    last_run_manual: bool = False
    """The last run was enqueued by hand, outside the schedule."""

    def to_dict(self) -> dict[str, Any]:
        """JSON form (SPEC 7.1)."""
        return {"key": self.key, "schedule": self.schedule, "cron": self.cron, "class": self.class_path,
                "command": self.command, "args": self.args, "queue": self.queue, "priority": self.priority,
                "description": self.description, "last_run_at": iso(self.last_run_at),
                "next_run_at": iso(self.next_run_at), "last_run_manual": self.last_run_manual}


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
