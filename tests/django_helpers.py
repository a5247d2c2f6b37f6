"""Django in this pytest process: the test project's settings, a fresh database per test on either
backend (the aliases "default" for SQLite and "pg" for PostgreSQL), and running enqueued tasks inline."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from typing import Any

import pytest

django = pytest.importorskip("django")
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.djangoproj.settings")
django.setup()

from django.db import connections  # noqa: E402

import jobctl  # noqa: E402
from jobctl.contrib.django import backend as backend_module  # noqa: E402
from jobctl.testing import TestQueue  # noqa: E402
from tests.djangoproj.djapp.models import Article, Event  # noqa: E402
from tests.djangoproj.settings import database  # noqa: E402

ALIASES = {"sqlite": "default", "postgresql": "pg"}


CURRENT = {"alias": "default"}
"""Where the test app's models live in this test (tests.djangoproj.routers reads it): tasks write there."""


def point(alias: str, url: str) -> None:
    """Django's database `alias` now means the jobctl test database at `url` (in every thread)."""
    close_everywhere()
    entry = database(url)
    for settings_dict in {id(d): d for d in (connections[alias].settings_dict, connections.settings[alias])}.values():
        for key in ("NAME", "USER", "PASSWORD", "HOST", "PORT"):
            settings_dict[key] = entry.get(key, "")
        settings_dict["OPTIONS"] = dict(entry.get("OPTIONS") or {})  # type: ignore[call-overload]
    CURRENT["alias"] = alias


def close_everywhere() -> None:
    """Close Django's connections in this thread and in asgiref's thread (where `aenqueue` and
    `aget_result` run), so none outlives its test's database."""
    from asgiref.sync import sync_to_async

    connections.close_all()
    asyncio.run(sync_to_async(connections.close_all)())


def fresh_alias(backend: str, database_url: str) -> Iterator[str]:
    """For an `alias` fixture: the Django database alias (and TASKS alias) of a fresh, migrated database of the
    backend under test, with the test app's tables."""
    name = ALIASES[backend]
    point(name, database_url)
    with connections[name].schema_editor() as editor:
        editor.create_model(Event)
        editor.create_model(Article)
    backend_module._configured = None
    try:
        yield name
    finally:
        close_everywhere()
        jobctl.configure(database_url=None)
        backend_module._configured = None


def run_enqueued() -> None:
    """Run every enqueued job inline as a worker would (the per-job hooks included); failures stay failed."""
    while True:
        try:
            TestQueue("").perform_enqueued_jobs()
            return
        except (Exception, SystemExit):  # a job that failed re-raises here: go on with the others
            continue


def bound(task: Any, alias: str) -> Any:
    """`task` on the TASKS backend of `alias`."""
    return task.using(backend=alias)
