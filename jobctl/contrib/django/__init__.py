"""jobctl for Django: a backend for Django's Tasks framework (`django.tasks` on Django ≥ 6.0, the
`django-tasks` backport before), `python manage.py jobctl VERB`, and Django models as job arguments.

    INSTALLED_APPS = [..., "jobctl.contrib.django"]
    TASKS = {"default": {"BACKEND": "jobctl.contrib.django.JobctlBackend"}}

Importing this package loads no Django: `JobctlBackend` is imported when first named.
"""

from __future__ import annotations

from typing import Any

__all__ = ["JobctlBackend", "JobctlTask", "configure_jobctl"]


def configure_jobctl() -> None:
    """Point this process's jobctl (`jobctl.count()`, `jobctl.testing`, …) at the database of the TASKS backend
    that is a JobctlBackend ("default" first), as Django's connection settings are now: the test database
    while tests run. Enqueueing a task does this by itself; call it before using jobctl directly."""
    from django.core.exceptions import ImproperlyConfigured

    from .backend import jobctl_backends

    backends = jobctl_backends()
    if not backends:
        raise ImproperlyConfigured("no TASKS backend is jobctl.contrib.django.JobctlBackend")
    backends[0].configure_jobctl()


def __getattr__(name: str) -> Any:
    if name == "JobctlBackend":
        from .backend import JobctlBackend

        return JobctlBackend
    if name == "JobctlTask":
        from .tasks import JobctlTask

        return JobctlTask
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
