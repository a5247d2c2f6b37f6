"""Defining jobs: the `Job` base class, per-call options, enqueueing and running inline."""

from __future__ import annotations

import datetime as dt
import inspect
import logging
import numbers
import random
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from types import MappingProxyType
from typing import Any, ClassVar, Literal

from jobctl import arguments, database, tracing
from jobctl.current import current
from jobctl.errors import JobClassError, JobDiscarded, JobFailed, JobNotFound, JobTimeout, OptionError
from jobctl.imports import resolve_path
from jobctl.records import STATES, BatchInfo, JobInfo, Limit, NewJob, ReadyJobs

Wait = float | int | str | Callable[[int], float]
MAX_RESULT_BYTES = 1_000_000
"""What `Job.max_result_bytes` is unless a class sets its own: 1 MB of JSON."""


class RetryOn:
    """Retry a job when it raises one of `exception_types`.

    `attempts` counts runs in total (3 means three runs) or is `"unlimited"`; `wait` is seconds,
    a callable `executions -> seconds`, or `"polynomially_longer"` (executions⁴ + 2 s plus up
    to `jitter` × executions⁴ random); `queue`/`priority` move the retries elsewhere.
    """

    def __init__(
        self,
        *exception_types: type[BaseException],
        wait: Wait = 3,
        attempts: int | Literal["unlimited"] = 5,
        jitter: float = 0.15,
        queue: str | None = None,
        priority: int | None = None,
    ) -> None:
        self.exception_types = exception_types or (Exception,)
        for exc_type in self.exception_types:
            if not (isinstance(exc_type, type) and issubclass(exc_type, BaseException)):
                raise TypeError(f"RetryOn: {exc_type!r} is not an exception class")
        if wait == "exponentially_longer":
            wait = "polynomially_longer"
        if isinstance(wait, str) and wait != "polynomially_longer":
            raise ValueError(f"RetryOn: wait={wait!r} (expected seconds, a callable or 'polynomially_longer')")
        if attempts != "unlimited" and (not isinstance(attempts, int) or attempts < 1):
            raise ValueError(f"RetryOn: attempts={attempts!r} (expected a positive integer or 'unlimited')")
        self.wait = wait
        self.attempts = attempts
        self.jitter = jitter
        self.queue = queue
        self.priority = priority

    def matches(self, exc: BaseException) -> bool:
        """Whether this rule handles `exc`."""
        return isinstance(exc, self.exception_types)

    def exhausted(self, executions: int) -> bool:
        """True when `executions` runs used up the attempts."""
        return self.attempts != "unlimited" and executions >= self.attempts

    def delay(self, executions: int, rng: random.Random | None = None) -> float:
        """Seconds to wait before the run after run number `executions`."""
        if callable(self.wait):
            return float(self.wait(executions))
        if self.wait == "polynomially_longer":
            base = executions**4
            return base + 2 + (rng or random).random() * self.jitter * base
        return float(self.wait)

    def __repr__(self) -> str:
        names = ", ".join(t.__name__ for t in self.exception_types)
        return f"RetryOn({names}, wait={self.wait!r}, attempts={self.attempts!r})"


@dataclass(frozen=True)
class ConcurrencyLimit:
    """At most `to` jobs with the same key (within `group`, default the class) claimed at once.

    `key` is called at enqueue time with the perform arguments and returns a string or number
    (None: the class alone). Extra jobs wait as blocked (`on_conflict="block"`) or are
    discarded (`"discard"`). A slot frees when its job ends or its claim is released;
    `duration` is only a fail-safe for slots left behind by a job that no longer runs.
    """

    to: int = 1
    key: Callable[..., Any] | None = None
    duration: dt.timedelta | float = dt.timedelta(minutes=3)
    group: str | None = None
    on_conflict: Literal["block", "discard"] = "block"

    def __post_init__(self) -> None:
        if not isinstance(self.to, int) or isinstance(self.to, bool) or self.to < 1:
            raise ValueError(f"ConcurrencyLimit: to={self.to!r} (expected a positive integer)")
        if self.on_conflict not in ("block", "discard"):
            raise ValueError(f"ConcurrencyLimit: on_conflict={self.on_conflict!r} (expected 'block' or 'discard')")
        if self.key is not None and not callable(self.key):
            raise TypeError(f"ConcurrencyLimit: key={self.key!r} is not callable")

    def for_arguments(self, job_class: type, args: Sequence[Any], kwargs: dict[str, Any]) -> Limit:
        """The stored limit of one job: its concurrency key computed from its arguments."""
        base = self.group or job_class_path(job_class)
        if self.key is None:
            key = base
        else:
            value = self.key(*args, **kwargs)
            if not isinstance(value, str | int) or isinstance(value, bool):
                raise TypeError(f"ConcurrencyLimit key of {job_class.__qualname__} returned {value!r} "
                                "(expected a string or a number)")
            key = f"{base}/{value}"
        return Limit(key, self.to, _seconds(self.duration, "duration"), self.on_conflict == "discard")


def job_class_path(cls: type) -> str:
    """`module:QualName` of a job class."""
    return arguments.class_path(cls)


JobAdapter = Callable[[Any], "type[Job] | None"]
_adapters: list[JobAdapter] = []


def register_job_adapter(adapter: JobAdapter) -> None:
    """Let rows name something that is not a `jobctl.Job` subclass but runs as one: `adapter(obj)` returns the
    built-in job class that runs `obj` (what a row's class path names, found without running anything),
    or None. `@jobctl.later` methods and Django tasks are named by their own path this way, so logs,
    `jobctl jobs --class` and the monitor show what runs, not an adapter class."""
    if adapter not in _adapters:
        _adapters.append(adapter)


def _job_class_of(obj: Any, path: str) -> type[Job]:
    """`obj` if it is a `jobctl.Job` subclass, else the job class an adapter runs it with; else refused."""
    if isinstance(obj, type) and issubclass(obj, Job):
        return obj
    for adapter in _adapters:
        cls = adapter(obj)
        if cls is not None:
            return cls
    raise JobClassError(f"{path!r} is not a subclass of jobctl.Job; it will not be run")


def load_job_class(path: str) -> type[Job]:
    """Import a job class by path; anything that is not a `jobctl.Job` subclass is refused.

    For paths the user or the configuration names (`jobctl enqueue CLASS`, recurring.yml): it
    imports whatever module the path names. A path read from a row goes through
    `resolve_job_class` instead.
    """
    try:
        obj = arguments.import_path(path)
    except (ImportError, AttributeError) as exc:
        raise JobClassError(f"job class {path!r} cannot be imported: {exc}") from None
    return _job_class_of(obj, path)


def resolve_job_class(path: str, *, imports: Sequence[str] = ()) -> type[Job]:
    """The `jobctl.Job` subclass a stored row names, importing nothing a row should not make us import
    (the rule of `jobctl.imports`); a path an adapter runs (`register_job_adapter`) gives its job class."""
    return _job_class_of(resolve_path(path, imports=imports), path)


class JobHandle:
    """What `perform_later` returns: the job's `id`, and its `state` read fresh on each access."""

    def __init__(self, job_id: int, created: bool = True, conn: Any = None) -> None:
        self.id = job_id
        """The job's id."""
        self.created = created
        """False when an active job with the same unique key was returned instead of a new one."""
        self._conn = conn

    @property
    def state(self) -> str:
        """The job's state now (through the caller's connection when enqueued inside `using`)."""
        conn = self._conn if self._conn is not None and not _closed(self._conn) else None
        state = database.get_store().job_state(self.id, conn)
        if state is None:
            raise JobNotFound(f"job {self.id} does not exist")
        return state

    def info(self) -> JobInfo:
        """Everything about the job, read fresh."""
        return get_job(self.id)

    def result(self, timeout: float | None = None) -> Any:
        """Wait for the job to end and return what it returned (decoded: a datetime comes back as one).

        Raises `JobFailed` (the last run's error class, message and traceback) when it failed,
        `JobDiscarded` when it was discarded, and `TimeoutError` when `timeout` seconds pass first.
        Waiting reads the job's state on jobctl's own connection, with a backoff from 5 ms to 250 ms:
        it costs the workers nothing, and nothing at all while nobody waits.
        """
        store = database.get_store()
        deadline = None if timeout is None else time.monotonic() + timeout
        pause = 0.005
        while True:
            state = store.job_state(self.id)
            if state is None:
                if self._conn is not None and store.job_state(self.id, self._conn) is not None:
                    raise JobNotFound(f"job {self.id} is not committed yet: commit the transaction that enqueued "
                                      "it (the one given to jobctl.using()) before waiting for its result")
                raise JobNotFound(f"job {self.id} does not exist")
            if state in ("finished", "failed", "discarded"):
                break
            if deadline is not None and time.monotonic() + pause > deadline:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"job {self.id} is still {state} after {timeout} s")
                pause = remaining
            time.sleep(pause)
            pause = min(pause * 1.5, 0.25)
        info = get_job(self.id)
        last = info.errors[-1] if info.errors else None
        if info.state == "failed":
            raise JobFailed(info.id, last.error_class if last else "", last.message if last else "",
                            last.traceback if last else None)
        if info.state == "discarded":
            raise JobDiscarded(info.id, last.error_class if last else "", last.message if last else "")
        return None if info.result is None else arguments.decode(info.result)

    def __repr__(self) -> str:
        return f"<JobHandle id={self.id}>"


class BatchHandle:
    """What names a batch in `set(after=...)`: `jobctl.batch()`'s value (`jobctl.batches.Batch`) is one."""

    id: int | None = None
    """The batch's id once its `with` block has started."""


def dependency_options(after: Iterable[Any]) -> dict[str, tuple[int, ...]]:
    """`set(after=...)` as stored: the ids of the jobs and of the batches waited for."""
    if isinstance(after, (str, bytes)) or not isinstance(after, Iterable):
        raise TypeError(f"after= expects a list of job handles and batches, got {_short(after)}")
    jobs: list[int] = []
    batches: list[int] = []
    for item in after:
        if isinstance(item, (JobHandle, JobInfo)):
            jobs.append(item.id)
        elif isinstance(item, BatchHandle | BatchInfo):
            if item.id is None:
                raise _refused("after= names a batch whose `with` block has not started")
            batches.append(item.id)
        else:
            raise TypeError(f"after= expects job handles (what perform_later returns) and batches, got {_short(item)}")
    return {"after_jobs": tuple(dict.fromkeys(jobs)), "after_batches": tuple(dict.fromkeys(batches))}


def _closed(conn: Any) -> bool:
    return bool(getattr(conn, "closed", False))


class ConfiguredJob:
    """A job class with per-call options; from `Job.set(...)`."""

    def __init__(self, job_class: type[Job], options: dict[str, Any]) -> None:
        self.job_class = job_class
        self.options = options

    def perform_later(self, *args: Any, **kwargs: Any) -> JobHandle:
        """Enqueue with these options."""
        return self(*args, **kwargs).enqueue()

    def perform_now(self, *args: Any, **kwargs: Any) -> Any:
        """Run inline (options other than arguments do not apply)."""
        return self.job_class.perform_now(*args, **kwargs)

    def __call__(self, *args: Any, **kwargs: Any) -> Job:
        """A job instance with these options, e.g. for `jobctl.perform_all_later`."""
        job = self.job_class(*args, **kwargs)
        job._options = dict(self.options)
        return job


# What the store can hold, checked where a value enters (the same on both backends): priorities
# are int4, PostgreSQL text cannot hold NUL, and a wait is within 100 years either way (as
# config.MAX_DURATION_S; not imported from there, which would load YAML with `import jobctl`).
_PRIORITY_RANGE = (-(2**31), 2**31 - 1)
_MAX_WAIT_S = 100 * 365.25 * 86400


def _seconds(value: Any, name: str) -> float:
    if isinstance(value, dt.timedelta):
        seconds = value.total_seconds()
    elif isinstance(value, numbers.Real) and not isinstance(value, bool):
        try:
            seconds = float(value)
        except OverflowError:  # 10**400
            seconds = float("inf")
    else:
        raise TypeError(f"{name}= expects a timedelta or a number of seconds, got {value!r}")
    if not abs(seconds) <= _MAX_WAIT_S:  # also nan
        raise _refused(f"{name}= expects a finite number of seconds within 100 years "
                         f"({_MAX_WAIT_S:.0f} seconds either way), got {_short(value)}")
    return seconds


def _refused(message: str) -> Exception:
    """An OptionError: a ValueError for the library, one line and exit 2 for the CLI."""
    return OptionError(message)


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _checked_text(value: Any, name: str) -> str:
    """A queue name or key as stored: a non-empty string without NUL; `name` says whose, in errors."""
    if not isinstance(value, str) or not value:
        raise _refused(f"{name} expects a non-empty string, got {_short(value)}")
    if "\0" in value:
        raise _refused(f"{name} cannot hold a NUL character (the database cannot store it), got {_short(value)}")
    return value


def _checked_priority(value: Any, name: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"{name} expects an integer, got {_short(value)}")
    low, high = _PRIORITY_RANGE
    if not low <= value <= high:
        raise _refused(f"{name} expects an integer from {low} to {high} (stored in 32 bits), got {value}")
    return value


class Job:
    """Base class of every job: set `queue`, `priority`, `retry_on`, `discard_on`; write `perform`."""

    queue: ClassVar[str] = "default"
    priority: ClassVar[int] = 0
    retry_on: ClassVar[Sequence[RetryOn]] = ()
    discard_on: ClassVar[Sequence[type[BaseException]]] = ()
    limits_concurrency: ClassVar[ConcurrencyLimit | None] = None
    max_result_bytes: ClassVar[int] = MAX_RESULT_BYTES
    timeout: ClassVar[float | None] = None
    """Seconds a run may take (None: no limit). A run past it fails with `jobctl.JobTimeout` (retried when a
    `retry_on` rule names it): an `async def perform` is cancelled; a thread cannot be, so its worker stops
    claiming, lets its other jobs finish, and is replaced. `set(timeout=)` overrides it per job."""
    """The largest return value kept, as JSON; a larger one fails the run with SerializationError."""

    # Instance state starts as these class-level defaults and is set on the instance when it
    # changes: building a job stores only its arguments (bulk enqueues build many).
    job_id: int | None = None
    """The job's id (None when run with perform_now)."""
    executions: int = 0
    """1 on the first run, 2 on the first retry, …"""
    last_progress: tuple[float, float | None, str | None] | None = None
    """The last `progress()` call's (done, total, message)."""
    _options: Mapping[str, Any] = MappingProxyType({})
    _progress_sink: Callable[[Job, float, float | None, str | None], None] | None = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._args = args
        self._kwargs = kwargs

    def perform(self, *args: Any, **kwargs: Any) -> Any:
        """The work (a thin call into application code). May be `async def`."""
        raise NotImplementedError(f"{type(self).__qualname__}.perform is not defined")

    # -- inside perform -------------------------------------------------------------------

    @property
    def logger(self) -> logging.Logger:
        """A logger for the job's own messages."""
        return logging.getLogger(f"jobctl.job.{type(self).__qualname__}")

    def progress(self, done: float, total: float | None = None, message: str | None = None) -> None:
        """Record progress, shown live by `jobctl show` and the monitor."""
        self.last_progress = (done, total, message)
        if self._progress_sink is not None:
            self._progress_sink(self, done, total, message)

    # -- enqueueing -----------------------------------------------------------------------

    @classmethod
    def set(
        cls,
        *,
        queue: str | None = None,
        priority: int | None = None,
        wait: dt.timedelta | float | None = None,
        wait_until: dt.datetime | None = None,
        key: str | None = None,
        timeout: dt.timedelta | float | None = None,
        after: Iterable[Any] | None = None,
        on_dependency_failure: Literal["discard", "run"] | None = None,
    ) -> ConfiguredJob:
        """Per-call options: `Job.set(queue="low", wait=60, timeout=30).perform_later(...)`.

        `after=[handle, batch, ...]`: the job waits (state `waiting`) until every job and batch named has
        finished; when one fails or is discarded it is discarded with the reason, or runs anyway with
        `on_dependency_failure="run"`.
        """
        options: dict[str, Any] = {}
        if after is not None:
            options.update(dependency_options(after))
        if on_dependency_failure is not None:
            if on_dependency_failure not in ("discard", "run"):
                raise _refused("on_dependency_failure= expects 'discard' or 'run', "
                               f"got {_short(on_dependency_failure)}")
            options["run_on_dependency_failure"] = on_dependency_failure == "run"
        if queue is not None:
            options["queue"] = _checked_text(queue, "queue=")
        if priority is not None:
            options["priority"] = _checked_priority(priority, "priority=")
        if wait is not None:
            options["delay"] = _seconds(wait, "wait")
        if wait_until is not None:
            if not isinstance(wait_until, dt.datetime) or wait_until.tzinfo is None:
                raise TypeError(f"wait_until= expects an aware datetime, got {wait_until!r}")
            options["run_at"] = wait_until
        if key is not None:
            options["key"] = _checked_text(key, "key=")
        if timeout is not None:
            seconds = _seconds(timeout, "timeout")
            if seconds <= 0:
                raise _refused(f"timeout= expects a positive number of seconds, got {_short(timeout)}")
            options["timeout"] = seconds
        return ConfiguredJob(cls, options)

    @classmethod
    def perform_later(cls, *args: Any, **kwargs: Any) -> JobHandle:
        """Enqueue the job; returns a handle with `.id` and `.state`."""
        return cls(*args, **kwargs).enqueue()

    @classmethod
    def perform_now(cls, *args: Any, **kwargs: Any) -> Any:
        """Run the job inline, in this process, with the same argument rules as the worker."""
        stored = arguments.dump_arguments(args, kwargs)
        loaded_args, loaded_kwargs = arguments.load_arguments(stored)
        job = cls(*loaded_args, **loaded_kwargs)
        job.executions = 1
        return job.execute()

    def stored_class_path(self) -> str:
        """What the row names as its class: the class's import path. A built-in adapter job (a `_later`
        method, a Django task) names what it runs instead; `register_job_adapter` maps it back."""
        return job_class_path(type(self))

    def to_new_job(self) -> NewJob:
        """The row to insert: arguments serialised now, so errors surface at enqueue time."""
        cls = type(self)
        opts = self._options
        path = self.stored_class_path()
        # set() checked its options; a class's own queue and priority are checked here.
        queue = opts["queue"] if "queue" in opts else _checked_text(cls.queue, f"{path}.queue")
        priority = opts["priority"] if "priority" in opts else _checked_priority(cls.priority, f"{path}.priority")
        return NewJob(
            class_path=path,
            queue=queue,
            priority=priority,
            arguments=arguments.dump_arguments(self._args, self._kwargs),
            key=opts.get("key"),
            delay=opts.get("delay", 0.0),
            run_at=opts.get("run_at"),
            timeout=opts.get("timeout"),
            limit=(cls.limits_concurrency.for_arguments(cls, self._args, self._kwargs)
                   if cls.limits_concurrency is not None else None),
            batch_id=database.current_batch(),
            after_jobs=opts.get("after_jobs", ()),
            after_batches=opts.get("after_batches", ()),
            run_on_dependency_failure=opts.get("run_on_dependency_failure", False),
        )

    def enqueue(self) -> JobHandle:
        """Insert this job instance; see `perform_later`."""
        row = self.to_new_job()
        conn = database.current_connection()
        if tracing.active():
            with tracing.sending(row.queue, row.class_path) as trace:
                assert trace is not None
                inserted = database.get_store().insert_job(replace(row, arguments=trace.stamp(row.arguments)), conn)
                trace.sent(inserted.id)
        else:
            inserted = database.get_store().insert_job(row, conn)
        self.job_id = inserted.id
        return JobHandle(inserted.id, inserted.created, conn)

    # -- running --------------------------------------------------------------------------

    def execute(self, timeout: float | None = None) -> Any:
        """Run `perform` with fresh `jobctl.current`; awaits an `async def perform`, cancelling it after
        `timeout` seconds with `jobctl.JobTimeout` (a plain `perform` is the worker's to watch)."""
        current.reset()
        result = self.perform(*self._args, **self._kwargs)
        if result is not None and inspect.isawaitable(result):
            return _run_coroutine(result, timeout, self)
        return result


def _run_coroutine(awaitable: Any, timeout: float | None = None, job: Job | None = None) -> Any:
    import asyncio  # only for `async def perform`: keeps `import jobctl` light

    async def runner() -> Any:
        if timeout is None:
            return await awaitable
        try:
            return await asyncio.wait_for(awaitable, timeout)
        except TimeoutError:
            raise JobTimeout(timeout_message(job, timeout, cancelled=True)) from None

    return asyncio.run(runner())


def timeout_message(job: Job | None, timeout: float, *, cancelled: bool) -> str:
    """`job 17 (app:Report) ran longer than its timeout of 30s (cancelled)`."""
    who = f"job {job.job_id} ({job_class_path(type(job))})" if job is not None and job.job_id else "the job"
    how = "cancelled" if cancelled else "its worker is replaced: a thread cannot be stopped"
    return f"{who} ran longer than its timeout of {timeout:g}s ({how})"


def build_job(class_path: str, stored_arguments: Any) -> Job:
    """A job instance from a stored row: the class must be a `jobctl.Job` that `resolve_job_class`
    finds, arguments are decoded."""
    cls = resolve_job_class(class_path)
    args, kwargs = arguments.load_arguments(stored_arguments)
    return cls(*args, **kwargs)


def perform_all_later(jobs: Iterable[Job]) -> int:
    """Enqueue many jobs in one transaction and as few round trips as the backend allows.

    Returns how many jobs were created (a job whose unique key is held is not created).
    Every job's arguments are serialised before anything is written, so a bad one changes nothing.
    Jobs ready now without a key or limit are written first, then the others (each in list order).
    """
    ready = ReadyJobs()  # ready now, no key, no limit: the backend's bulk path (COPY)
    other: list[NewJob] = []
    # Per class: its kind's index in ready.kinds, or None when its jobs go through to_new_job (a
    # limit, or an override); jobs with options find their kind by value.
    class_kind: dict[type, int | None] = {}
    kind_index: dict[tuple[str, str, int], int] = {}
    add_kind, add_arguments = ready.kind.append, ready.arguments.append
    dump = arguments.dump_arguments
    batched = database.current_batch() is not None  # members carry their batch: never the COPY path
    for job in jobs:
        cls = type(job)
        if cls in class_kind:
            kind = class_kind[cls]
        else:
            if not isinstance(job, Job):
                raise TypeError(f"perform_all_later expects Job instances, got {job!r}")
            direct = (cls.limits_concurrency is None and cls.to_new_job is Job.to_new_job
                      and cls.stored_class_path is Job.stored_class_path)
            if direct:  # the checks to_new_job makes of the class's own queue and priority, once per class
                path = job_class_path(cls)
                kind = _kind_of(ready, kind_index, _checked_text(cls.queue, f"{path}.queue"), path,
                                _checked_priority(cls.priority, f"{path}.priority"))
            else:
                kind = None
            class_kind[cls] = kind
        if kind is None or job._options or batched:
            row = job.to_new_job()
            if row.plain:
                add_kind(_kind_of(ready, kind_index, row.queue, row.class_path, row.priority))
                add_arguments(row.arguments)
            else:
                other.append(row)
        else:
            add_kind(kind)
            add_arguments(dump(job._args, job._kwargs))
    if not ready and not other:
        return 0
    if tracing.active():
        queues = {k[0] for k in ready.kinds} | {row.queue for row in other}
        classes = {k[1] for k in ready.kinds} | {row.class_path for row in other}
        with tracing.sending(next(iter(queues)) if len(queues) == 1 else None,
                             next(iter(classes)) if len(classes) == 1 else None,
                             len(ready.arguments) + len(other)) as trace:
            assert trace is not None
            ready.arguments[:] = [trace.stamp(a) for a in ready.arguments]
            other = [replace(row, arguments=trace.stamp(row.arguments)) for row in other]
            return database.get_store().insert_jobs(ready, other, database.current_connection())
    return database.get_store().insert_jobs(ready, other, database.current_connection())


def _kind_of(ready: ReadyJobs, index: dict[tuple[str, str, int], int], queue: str, path: str, priority: int) -> int:
    """The index of (queue, path, priority) in `ready.kinds`, added when new."""
    key = (queue, path, priority)
    found = index.get(key)
    if found is None:
        found = index[key] = len(ready.kinds)
        ready.kinds.append(key)
    return found


def count(state: str | None = None, queue: str | None = None) -> int:
    """How many jobs, optionally of one state and/or queue (the Rails guide's "check queue")."""
    if state is not None and state not in STATES:
        raise ValueError(f"state={state!r} (expected one of {', '.join(STATES)})")
    return database.get_store().count(state, queue)


def get_job(job_id: int) -> JobInfo:
    """A frozen `JobInfo`; raises `JobNotFound` for an unknown id."""
    found = database.get_store().get_jobs([job_id], database.current_connection())
    if not found:
        raise JobNotFound(f"job {job_id} does not exist")
    return found[0]
