"""jobctl for Django: a backend for Django's Tasks framework (`django.tasks` on Django ≥ 6.0, the
`django-tasks` backport before), `python manage.py jobctl VERB`, and Django models as job arguments.

    INSTALLED_APPS = [..., "jobctl.contrib.django"]
    TASKS = {"default": {"BACKEND": "jobctl.contrib.django.JobctlBackend"}}

Importing this package loads no Django: `JobctlBackend` is imported when first named.
"""

from __future__ import annotations

from typing import Any

__all__ = ["JobctlBackend", "JobctlTask"]


def __getattr__(name: str) -> Any:
    if name == "JobctlBackend":
        from .backend import JobctlBackend

        return JobctlBackend
    if name == "JobctlTask":
        from .tasks import JobctlTask

        return JobctlTask
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
