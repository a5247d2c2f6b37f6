"""`JobctlBackend`: Django's Tasks framework on jobctl, in Django's own database and transaction."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

from django.core import checks
from django.core.exceptions import ImproperlyConfigured
from django.utils import timezone

import jobctl
from jobctl import database
from jobctl.config import POOLER_MODES
from jobctl.errors import JobClassError, JobNotFound
from jobctl.job import resolve_job_class

from . import records, runs  # noqa: F401  (model references; close_old_connections and signals per job)
from .compat import BaseTaskBackend, TaskResult, TaskResultDoesNotExist, TaskResultStatus, normalize_json, task_enqueued
from .databases import database_url, driver_connection
from .tasks import DjangoTaskJob, JobctlTask, job_class_for, result_of

OPTIONS = {
    "DATABASE": "the DATABASES alias holding jobctl's tables (default: 'default')",
    "CONFIG": "the queue config for `manage.py jobctl start` (else JOBCTL_CONFIG, config/queue.yml)",
    "POOLER": "the PgBouncer pool_mode in front of that database: 'transaction' or 'session'",
    "LISTEN_DATABASE": "a DATABASES alias reaching the same database directly, for LISTEN past a pooler",
}

_configured: tuple[str, str | None, str | None, str | None] | None = None


class JobctlBackend(BaseTaskBackend):  # type: ignore[misc]
    """Django tasks enqueued as jobctl jobs in Django's database, inside the caller's transaction, run by
    `python manage.py jobctl start`.

    `OPTIONS`: `DATABASE` (the alias, default "default"), `CONFIG` (a queue.yml path), `POOLER`
    ("transaction" behind PgBouncer) and `LISTEN_DATABASE` (an alias past the pooler, for LISTEN).
    Priorities map onto jobctl's (Django's 100 runs first; jobctl priority = −Django priority).
    """

    task_class = JobctlTask
    supports_defer = True
    supports_async_task = True
    supports_get_result = True
    supports_priority = True

    def __init__(self, alias: str, params: dict[str, Any]) -> None:
        super().__init__(alias, params)
        unknown = sorted(set(self.options) - set(OPTIONS))
        if unknown:
            raise ImproperlyConfigured(f"TASKS[{alias!r}] OPTIONS: unknown {', '.join(map(repr, unknown))} "
                                       f"(jobctl knows {', '.join(OPTIONS)})")
        self.database: str = self.options.get("DATABASE", "default")
        """The DATABASES alias of jobctl's tables: enqueues run on Django's connection to it."""
        self.config: str | None = self.options.get("CONFIG")
        self.pooler: str | None = self.options.get("POOLER")
        self.listen_database: str | None = self.options.get("LISTEN_DATABASE")
        if self.pooler is not None and self.pooler not in POOLER_MODES:
            raise ImproperlyConfigured(f"TASKS[{alias!r}] OPTIONS POOLER: expected one of "
                                       f"{', '.join(POOLER_MODES)}, got {self.pooler!r}")

    # -- jobctl's database is Django's ---------------------------------------------------------

    def configure_jobctl(self) -> None:
        """Point this process's jobctl at Django's database (again only when the settings changed)."""
        global _configured
        wanted = (database_url(self.database), self.config, self.pooler,
                  database_url(self.listen_database) if self.listen_database else None)
        # jobctl.configure() called elsewhere (a test releasing jobctl's connection) makes it configure again.
        if wanted != _configured or database._configured_url != wanted[0]:
            jobctl.configure(database_url=wanted[0], config=wanted[1], pooler=wanted[2],
                             listen_database_url=wanted[3])
            _configured = wanted

    def environment(self) -> dict[str, str]:
        """The same settings as jobctl's environment variables, for `manage.py jobctl`: the CLI's own options
        (`--database`, `--config`) still win over them, as they do over any environment."""
        env = {"JOBCTL_DATABASE_URL": database_url(self.database)}
        if self.config:
            env["JOBCTL_CONFIG"] = str(self.config)
        if self.pooler:
            env["JOBCTL_POOLER"] = self.pooler
        if self.listen_database:
            env["JOBCTL_LISTEN_DATABASE_URL"] = database_url(self.listen_database)
        return env

    # -- Django's API --------------------------------------------------------------------------

    def enqueue(self, task: Any, args: Any, kwargs: Any) -> TaskResult:
        """Insert a job on Django's connection, inside its current transaction (none if it rolls back)."""
        self.validate_task(task)
        args, kwargs = normalize_json(list(args)), normalize_json(dict(kwargs))  # Django's rule: JSON only
        self.configure_jobctl()
        options: dict[str, Any] = {"queue": task.queue_name, "priority": -task.priority}
        if task.run_after is not None:
            options["wait_until"] = _aware(task.run_after)
        job = job_class_for(task).set(**options)(*args, **kwargs)
        with jobctl.using(driver_connection(self.database)):
            handle = job.enqueue()
        result = TaskResult(task=task, id=str(handle.id), status=TaskResultStatus.READY, enqueued_at=timezone.now(),
                            started_at=None, finished_at=None, last_attempted_at=None, args=args, kwargs=kwargs,
                            backend=self.alias, errors=[], worker_ids=[])
        task_enqueued.send(type(self), task_result=result)
        return result

    def get_result(self, result_id: str) -> TaskResult:
        """The task's result read fresh (through Django's connection: an uncommitted enqueue is visible to the
        transaction that made it); `TaskResultDoesNotExist` for an unknown id or a job that is no Django task."""
        try:
            job_id = int(str(result_id))
        except ValueError:
            raise TaskResultDoesNotExist(f"{result_id!r} is not a jobctl job id") from None
        self.configure_jobctl()
        with jobctl.using(driver_connection(self.database)):
            try:
                info = jobctl.get_job(job_id)
            except JobNotFound:
                raise TaskResultDoesNotExist(f"no task result {result_id!r}") from None
        try:
            cls = resolve_job_class(info.class_path)
        except JobClassError as exc:
            raise TaskResultDoesNotExist(f"job {job_id} names no task this process can load: {exc}") from None
        if not issubclass(cls, DjangoTaskJob):
            raise TaskResultDoesNotExist(f"job {job_id} is a jobctl job ({info.class_path}), not a Django task")
        return result_of(info, cls.task, self.alias)

    def check(self, **kwargs: Any) -> Iterable[checks.CheckMessage]:
        """Django's system checks: the database must be PostgreSQL or a SQLite file."""
        for alias in filter(None, (self.database, self.listen_database)):
            try:
                database_url(alias)
            except ImproperlyConfigured as exc:
                yield checks.Error(str(exc), obj=f"TASKS[{self.alias!r}]", id="jobctl.E001")


def _aware(when: dt.datetime) -> dt.datetime:
    """run_after as jobctl needs it: aware (Django allows a naive one when USE_TZ is off: local time)."""
    return when if timezone.is_aware(when) else timezone.make_aware(when)


def jobctl_backends() -> list[JobctlBackend]:
    """Every JobctlBackend in TASKS, the "default" alias first."""
    from django.conf import settings
    from django.utils.module_loading import import_string

    from .compat import task_backends

    found = []
    aliases = sorted(getattr(settings, "TASKS", {}) or {}, key=lambda a: a != "default")
    for alias in aliases:
        try:
            cls = import_string(settings.TASKS[alias]["BACKEND"])
        except (ImportError, KeyError, TypeError):
            continue
        if isinstance(cls, type) and issubclass(cls, JobctlBackend):
            found.append(task_backends[alias])
    return found
