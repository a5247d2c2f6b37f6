"""Django tasks as jobctl jobs: one built-in job class per task, the Task class with jobctl's options,
and the `TaskResult` a row reads as."""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
import socket
from collections.abc import Sequence
from typing import Any, ClassVar

from django.utils import timezone

from jobctl.arguments import decode, load_arguments
from jobctl.job import Job, RetryOn, register_job_adapter
from jobctl.records import ErrorInfo, JobInfo

from .compat import (
    TASK_MAX_PRIORITY,
    TASK_MIN_PRIORITY,
    InvalidTask,
    Task,
    TaskContext,
    TaskError,
    TaskResult,
    TaskResultStatus,
    normalize_json,
    task_path,
)

UNKNOWN_WORKER = "unknown"
"""A run's entry in `TaskResult.worker_ids` when jobctl has no record of its process (rows from before schema 8)."""


def process_worker(process_id: int | None) -> str:
    """A past run's worker as `TaskResult.worker_ids` names it: `jobctl process N` (a row of `jobctl processes`)."""
    return UNKNOWN_WORKER if process_id is None else f"jobctl process {process_id}"

# jobctl's states as Django's: waiting is READY, claimed is RUNNING, discarded is FAILED.
STATUS = {
    "scheduled": TaskResultStatus.READY,
    "ready": TaskResultStatus.READY,
    "blocked": TaskResultStatus.READY,
    "waiting": TaskResultStatus.READY,  # for the jobs it depends on (jobctl's workflows)
    "claimed": TaskResultStatus.RUNNING,
    "finished": TaskResultStatus.SUCCESSFUL,
    "failed": TaskResultStatus.FAILED,
    "discarded": TaskResultStatus.FAILED,
}


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class JobctlTask(Task):  # type: ignore[misc]
    """The Task class of `JobctlBackend`: `@task(retry_on=[jobctl.RetryOn(...)], discard_on=[...])` as on a
    `jobctl.Job` (Django's Tasks framework has no retries of its own)."""

    retry_on: Sequence[RetryOn] = ()
    """Retry rules, as `jobctl.Job.retry_on`."""
    discard_on: Sequence[type[BaseException]] = ()
    """Exceptions that discard the task (it reads as FAILED), as `jobctl.Job.discard_on`."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "retry_on", tuple(self.retry_on))
        object.__setattr__(self, "discard_on", tuple(self.discard_on))
        for rule in self.retry_on:
            if not isinstance(rule, RetryOn):
                raise InvalidTask(f"retry_on expects jobctl.RetryOn rules, got {rule!r}")
        for exc in self.discard_on:
            if not (isinstance(exc, type) and issubclass(exc, BaseException)):
                raise InvalidTask(f"discard_on expects exception classes, got {exc!r}")
        super(JobctlTask, self).__post_init__()


class DjangoTaskJob(Job):
    """The built-in job that runs one Django task; each task gets its own subclass (`job_class_for`).

    Its rows name the task's function (`myapp.tasks:send_welcome`), so logs, `jobctl jobs --class` and the
    monitor say what runs. Arguments are the task's own, JSON as Django requires.
    """

    task: ClassVar[Any]
    """The module-level Task this class runs."""
    task_result: TaskResult | None = None
    """The run's TaskResult, set by the per-run hook (signals and `TaskContext` share it)."""
    returned: Any = None
    """What the run returned, JSON-normalised."""

    def perform(self, *args: Any, **kwargs: Any) -> Any:
        task = self.task
        if task.takes_context:
            result = self.task_result if self.task_result is not None else running_result(self)
            value = task.call(TaskContext(task_result=result), *args, **kwargs)
        else:
            value = task.call(*args, **kwargs)
        # Django's rule for return values (a TypeError fails the run), before jobctl stores it.
        self.returned = normalize_json(value)
        return self.returned

    def stored_class_path(self) -> str:
        return task_path(self.task)


_job_classes: dict[str, type[DjangoTaskJob]] = {}


def job_class_for(task: Any) -> type[DjangoTaskJob]:
    """The job class that runs `task` (made once per task path, with the task's retry and discard rules)."""
    path = task_path(task)
    cls = _job_classes.get(path)
    if cls is None:
        name = f"DjangoTask[{path}]"
        attrs = {"task": task, "__module__": __name__, "__qualname__": name,
                 "retry_on": tuple(getattr(task, "retry_on", ())), "discard_on": tuple(getattr(task, "discard_on", ()))}
        cls = _job_classes[path] = type(name, (DjangoTaskJob,), attrs)
    return cls


def _task_job(obj: Any) -> type[Job] | None:
    return job_class_for(obj) if isinstance(obj, Task) else None


register_job_adapter(_task_job)


def django_priority(priority: int) -> int:
    """jobctl's priority (lower first) as Django's (higher first, −100..100)."""
    return int(max(TASK_MIN_PRIORITY, min(TASK_MAX_PRIORITY, -priority)))


def row_task(task: Any, queue: str, priority: int, run_after: dt.datetime | None = None,
             backend: str | None = None) -> Any:
    """`task` as a row has it (its queue, priority and run_after; on `backend`, the alias that read it), or
    `task` itself when Django would refuse those (a retry rule moved it to a queue the backend does not list)."""
    changes: dict[str, Any] = {}
    if backend is not None and backend != task.backend:
        changes["backend"] = backend
    if queue != task.queue_name:
        changes["queue_name"] = queue
    if django_priority(priority) != task.priority:
        changes["priority"] = django_priority(priority)
    if run_after is not None:
        changes["run_after"] = run_after
    if not changes:
        return task
    try:
        return task.using(**changes)
    except InvalidTask:
        return task


_worker: tuple[int, str] | None = None


def worker_id() -> str:
    """This process as a Django worker id: `host:pid`."""
    global _worker
    if _worker is None or _worker[0] != os.getpid():
        _worker = (os.getpid(), f"{socket.gethostname()}:{os.getpid()}")
    return _worker[1]


def running_result(job: DjangoTaskJob) -> TaskResult:
    """The TaskResult of a run starting now in this process (run number `job.executions`)."""
    now = timezone.now()
    runs = max(job.executions, 1)
    return TaskResult(task=row_task(job.task, job.queue, job.priority), id=str(job.job_id),
                      status=TaskResultStatus.RUNNING, enqueued_at=None, started_at=now, finished_at=None,
                      last_attempted_at=now, args=list(job._args), kwargs=dict(job._kwargs),
                      backend=job.task.backend, errors=[], worker_ids=[UNKNOWN_WORKER] * (runs - 1) + [worker_id()])


def exception_path(cls: type) -> str:
    """`module.QualName` of an exception class, as Django's TaskError wants it (builtins too)."""
    return f"{cls.__module__}.{cls.__qualname__}"


def task_error(error: ErrorInfo) -> TaskError:
    """One failed run of a job as Django's TaskError: jobctl writes a builtin's class bare (`ValueError`)."""
    path = error.error_class if "." in error.error_class else f"builtins.{error.error_class}"
    text = error.traceback or f"{error.error_class}: {error.message}\n"
    return TaskError(exception_class_path=path, traceback=text)


def result_of(info: JobInfo, task: Any, backend: str) -> TaskResult:
    """What Django reads for a stored job: status, times, arguments, errors, runs and the return value."""
    args, kwargs = load_arguments(info.arguments)
    runs = info.attempts + (1 if info.state == "claimed" else 0)
    run_after = info.scheduled_at if info.scheduled_at > info.enqueued_at else None
    last_error_at = info.errors[-1].at if info.errors else None
    result = TaskResult(
        task=row_task(task, info.queue, info.priority, run_after, backend),
        id=str(info.id), status=STATUS[info.state], enqueued_at=info.enqueued_at, started_at=info.claimed_at,
        finished_at=info.finished_at, last_attempted_at=info.claimed_at or last_error_at,
        args=args, kwargs=kwargs, backend=backend, errors=[task_error(e) for e in info.errors],
        worker_ids=[process_worker(e.process_id) for e in info.errors][:runs]
        + [process_worker(info.process_id)] * max(runs - len(info.errors), 0))
    if info.state == "finished" and info.result is not None:
        object.__setattr__(result, "_return_value", decode(info.result))
    return result

