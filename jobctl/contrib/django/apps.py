"""The Django app: `manage.py jobctl`, jobctl's tables made by `manage.py migrate`, models as references."""

from __future__ import annotations

from typing import Any

from django.apps import AppConfig
from django.db.models.signals import post_migrate


class JobctlConfig(AppConfig):
    """`jobctl.contrib.django` in INSTALLED_APPS."""

    name = "jobctl.contrib.django"
    label = "jobctl"
    verbose_name = "jobctl"

    def ready(self) -> None:
        from . import records, runs  # noqa: F401  (model references; per-job hooks)

        post_migrate.connect(migrate_jobctl, sender=self, dispatch_uid="jobctl.migrate")


def migrate_jobctl(sender: AppConfig, using: str, verbosity: int = 1, **kwargs: Any) -> None:
    """After `manage.py migrate` (and the test runner's) on a database holding jobctl's tables, bring them to
    jobctl's schema too (what `manage.py jobctl db migrate` does)."""
    from jobctl import urls
    from jobctl.store import open_store

    from .backend import jobctl_backends
    from .databases import database_url

    if not any(b.database == using for b in jobctl_backends()):
        return
    store = open_store(urls.parse(database_url(using)))
    try:
        applied = store.migrate()
    finally:
        store.close()
    if applied and verbosity >= 1:
        print(f"  jobctl: applied {', '.join(applied)} on {using!r}")
