"""Around every job a worker runs in a Django project: `close_old_connections()` before and after (as
Django does around a request), and for Django tasks the `task_started` and `task_finished` signals."""

from __future__ import annotations

import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from django.db import close_old_connections
from django.utils import timezone

from jobctl.job import Job
from jobctl.runtime.execution import register_around_job

from .compat import TaskError, TaskResultStatus, task_finished, task_started
from .tasks import DjangoTaskJob, exception_path, running_result


def _sender() -> type:
    from .backend import JobctlBackend

    return JobctlBackend


@contextmanager
def around_job(job: Job) -> Iterator[None]:
    """One run: fresh database connections; a Django task's signals, `task_finished` sent inside the
    exception handler when it raised (Django's log receiver then logs the traceback)."""
    close_old_connections()
    try:
        if not isinstance(job, DjangoTaskJob):
            yield
            return
        result = job.task_result = running_result(job)
        task_started.send(sender=_sender(), task_result=result)
        try:
            yield
        except BaseException as exc:
            _set(result, status=TaskResultStatus.FAILED, finished_at=timezone.now())
            result.errors.append(TaskError(exception_class_path=exception_path(type(exc)),
                                           traceback="".join(traceback.format_exception(exc))))
            task_finished.send(sender=_sender(), task_result=result)
            raise
        _set(result, status=TaskResultStatus.SUCCESSFUL, finished_at=timezone.now(), _return_value=job.returned)
        task_finished.send(sender=_sender(), task_result=result)
    finally:
        close_old_connections()


def _set(result: Any, **fields: Any) -> None:
    for name, value in fields.items():
        object.__setattr__(result, name, value)


register_around_job(around_job)
