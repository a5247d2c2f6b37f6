"""Running one claimed job and deciding what its outcome means: finished, retry, failed or discarded."""

from __future__ import annotations

import contextlib
import inspect
import json
import logging
import os
import time
import traceback
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any

from jobctl import arguments, database
from jobctl.errors import JobClassError, JobTimeout, RecordNotFound, UnreadableArguments
from jobctl.job import Job, RetryOn, resolve_job_class
from jobctl.records import ClaimedJob, RunError
from jobctl.runtime import logs
from jobctl.store import Session


@dataclass(frozen=True)
class Outcome:
    """What became of one run."""

    state: str
    """`finished`, `retry`, `failed` or `discarded`."""
    duration: float
    """Seconds the run took."""
    error: RunError | None = None
    """The error, unless finished."""
    delay: float = 0.0
    """Seconds until the retry."""
    retry_queue: str | None = None
    """Queue for the retry, when the rule moves it."""
    retry_priority: int | None = None
    """Priority for the retry, when the rule changes it."""
    exception: BaseException | None = field(default=None, compare=False, repr=False)
    """The exception itself (in this process only; never stored)."""
    result: str | None = None
    """What a finished run returned, as stored JSON text; None when it returned None."""


_PACKAGE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def error_of(exc: BaseException, *, with_traceback: bool = True) -> RunError:
    """The error as stored: `module.QualName`, message, and the traceback from the application's
    first frame (jobctl's own frames around `perform` tell an operator nothing)."""
    cls = type(exc)
    name = cls.__qualname__ if cls.__module__ == "builtins" else f"{cls.__module__}.{cls.__qualname__}"
    try:
        message = str(exc)
    except Exception:  # an application's __str__ may raise: the run still gets an outcome
        message = f"<{name}: str() failed>"
    if not with_traceback:
        return RunError(name, message, None)
    tb = exc.__traceback__
    while tb is not None and tb.tb_frame.f_code.co_filename.startswith(_PACKAGE + os.sep):
        tb = tb.tb_next
    text = "".join(traceback.format_exception(cls, exc, tb or exc.__traceback__))
    return RunError(name, message, text)


def decide(job_class: type[Job] | None, exc: BaseException, executions: int) -> tuple[str, RetryOn | None]:
    """`discarded`, `retry` (with its rule) or `failed` for an exception raised by run number `executions`."""
    if job_class is not None:
        if isinstance(exc, tuple(job_class.discard_on)):
            return "discarded", None
        for rule in job_class.retry_on:
            if rule.matches(exc):
                return ("failed", None) if rule.exhausted(executions) else ("retry", rule)
    return "failed", None


def _shape_problem(stored: str | Any) -> str | None:
    """Why stored arguments cannot be what `dump_arguments` writes, or None when they could be."""
    try:
        data = json.loads(stored) if isinstance(stored, str) else stored
    except ValueError as exc:
        return f"not valid JSON ({exc})"
    if not (isinstance(data, dict) and isinstance(data.get("args", []), list)
            and isinstance(data.get("kwargs", {}), dict)):
        return 'not {"args": [...], "kwargs": {...}}'
    return None


def unreadable(claimed: ClaimedJob, exc: BaseException) -> UnreadableArguments | None:
    """The error for a row whose arguments raised `exc` while loading, when the row itself is to blame.

    A row that is not JSON, or not an object of args and kwargs, can never run: retrying it would
    only repeat the error. Errors raised while decoding well-formed arguments (RecordNotFound, a
    locator's own) are the job's to judge with `retry_on` and `discard_on`.
    """
    if isinstance(exc, RecordNotFound):
        return None
    problem = _shape_problem(claimed.arguments)
    if problem is None:
        return None
    return UnreadableArguments(f"job {claimed.id}: its stored arguments are {problem}; it will not be run")


AroundJob = Callable[[Job], AbstractContextManager[object]]
_around_job: list[AroundJob] = []


def register_around_job(around: AroundJob) -> None:
    """Run every job inside `around(job)` (a context manager), in the worker and the testing helpers alike:
    an integration's per-job setup and teardown (Django's `close_old_connections()` and task signals).
    An exception it raises is the run's, like one from `perform`."""
    if around not in _around_job:
        _around_job.append(around)


class Executor:
    """Builds and runs claimed jobs; caches job classes by path.

    `imports` are the packages of the configuration's `imports:`: a row may name a class in a
    module under them even before it is imported (see `jobctl.job.resolve_job_class`).
    """

    def __init__(self, imports: Sequence[str] = ()) -> None:
        self._classes: dict[str, type[Job]] = {}
        self.imports = tuple(imports)

    def job_class(self, path: str) -> type[Job]:
        """The job class named by a row (only `jobctl.Job` subclasses, never an arbitrary import)."""
        cls = self._classes.get(path)
        if cls is None:
            cls = self._classes[path] = resolve_job_class(path, imports=self.imports)
        return cls

    def timeout_of(self, claimed: ClaimedJob) -> tuple[float, bool] | None:
        """(seconds, async) when the run has a timeout: the job's own (`set(timeout=)`), else its class's."""
        try:
            cls = self.job_class(claimed.class_path)
        except JobClassError:
            return None  # it fails at once when it runs
        timeout = claimed.timeout if claimed.timeout is not None else cls.timeout
        return None if timeout is None else (timeout, inspect.iscoroutinefunction(cls.perform))

    def timed_out(self, claimed: ClaimedJob, executions: int, timeout: float, duration: float) -> Outcome:
        """The outcome of a plain `perform` still running past its timeout (its worker's main thread
        decides it: a thread cannot be stopped): JobTimeout, retried when a `retry_on` rule names it."""
        job_class = self._classes.get(claimed.class_path)
        exc = JobTimeout(f"job {claimed.id} ({claimed.class_path}) ran longer than its timeout of {timeout:g}s "
                         "(its worker is replaced: a thread cannot be stopped)")
        state, rule = decide(job_class, exc, executions)
        if rule is not None:
            return Outcome("retry", duration, error_of(exc, with_traceback=False), rule.delay(executions), rule.queue,
                           rule.priority, exception=exc)
        return Outcome(state, duration, error_of(exc, with_traceback=False), exception=exc)

    def run(self, claimed: ClaimedJob, *, executions: int, setup: Callable[[Job], None] | None = None) -> Outcome:
        """Run one job; every exception becomes an outcome, never escapes.

        That includes BaseExceptions (KeyboardInterrupt, asyncio.CancelledError, GeneratorExit, …)
        raised by `perform`: in a worker's executor thread none of them can come from a signal
        (Python delivers those to the main thread, which handles TERM and INT itself), so they are
        the job's own doing, and the run fails like any other error (retry_on and discard_on apply
        when they name the class). Let through, one would end the thread with the job claimed.
        """
        start = time.perf_counter()
        job_class: type[Job] | None = None
        job: Job | None = None
        try:
            job_class = self.job_class(claimed.class_path)
            args, kwargs = arguments.load_arguments(claimed.arguments)
            job = job_class(*args, **kwargs)
            job.job_id = claimed.id
            job.executions = executions
            job.queue = claimed.queue  # type: ignore[misc]
            job.priority = claimed.priority  # type: ignore[misc]
            if setup is not None:
                setup(job)
            timeout = claimed.timeout if claimed.timeout is not None else job_class.timeout
            if claimed.batch_id is not None:  # what a batch's job enqueues while it runs joins the batch
                joined = database.join(claimed.batch_id, claimed.id)
                try:
                    value = _execute(job, timeout)
                finally:
                    database.leave(joined)
            else:
                value = _execute(job, timeout)
            result = None if value is None else arguments.dump_result(
                value, what=f"job {claimed.id} ({claimed.class_path})", max_bytes=job_class.max_result_bytes)
        except (JobClassError, UnreadableArguments) as exc:  # the row itself cannot run: no retry
            return Outcome("failed", time.perf_counter() - start, error_of(exc, with_traceback=False), exception=exc)
        except BaseException as exc:  # KeyboardInterrupt and the like too: see the docstring
            if job_class is not None and job is None and (bad := unreadable(claimed, exc)) is not None:
                return Outcome("failed", time.perf_counter() - start, error_of(bad, with_traceback=False),
                               exception=bad)
            state, rule = decide(job_class, exc, executions)
            duration = time.perf_counter() - start
            if rule is not None:
                return Outcome("retry", duration, error_of(exc), rule.delay(executions), rule.queue, rule.priority,
                               exception=exc)
            return Outcome(state, duration, error_of(exc), exception=exc)
        return Outcome("finished", time.perf_counter() - start, result=result)


def _execute(job: Job, timeout: float | None) -> Any:
    if _around_job:
        with contextlib.ExitStack() as around:
            for enter in _around_job:
                around.enter_context(enter(job))
            return job.execute(timeout)
    return job.execute(timeout)


def record_outcome(session: Session, job: ClaimedJob, outcome: Outcome, *, token: int, process_id: int,
                   delay: float | None = None) -> bool:
    """Write what became of a run (fenced by `token`) and log it; False when the claim was lost meanwhile.

    The worker and the testing helpers both record runs through here; `delay` replaces a retry's wait
    (the helpers skip waits). The worker batches finished runs itself (those returning None ride on its
    claims, the others on `finish_with_results`) and sends only the others.
    """
    if outcome.state == "finished":
        members = job.batch_id is not None
        if outcome.result is None:
            session.finish([job.id], token=token, process_id=process_id, members=members)
            return True
        return session.finish_with_results([(job.id, outcome.result)], token=token, process_id=process_id,
                                           members=members) == 1
    error = outcome.error
    assert error is not None
    attempt = job.attempt
    fields = {"job_id": job.id, "class_": job.class_path, "queue": job.queue, "attempt": attempt,
              "duration_ms": round(outcome.duration * 1000, 3), "error": error.message}
    if outcome.state == "retry":
        wait = outcome.delay if delay is None else delay
        state = session.retry(job.id, token=token, process_id=process_id, delay=wait, queue=outcome.retry_queue,
                              priority=outcome.retry_priority, error=error)
        if state is not None:
            logs.event(logging.WARNING, "job_retry",
                       f"job {job.id} {job.class_path} on {job.queue} attempt {attempt} raised "
                       f"{error.error_class}: {error.message}; retry in {wait:.1f}s", **fields)
        return state is not None
    ended = session.end(job.id, token=token, process_id=process_id, state=outcome.state, error=error)
    if ended:
        level = logging.ERROR if outcome.state == "failed" else logging.WARNING
        verb = "failed" if outcome.state == "failed" else "discarded"
        logs.event(level, f"job_{verb}", f"job {job.id} {job.class_path} on {job.queue} {verb} after attempt "
                   f"{attempt}: {error.error_class}: {error.message}", **fields)
    return ended
