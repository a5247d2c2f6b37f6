"""In-process tests: the test app's models on the database the current test uses (SQLite or PostgreSQL)."""

from __future__ import annotations

from typing import Any


class CurrentDatabase:
    def db_for_read(self, model: Any, **hints: Any) -> str | None:
        return _current() if model._meta.app_label == "djapp" else None

    db_for_write = db_for_read


def _current() -> str:
    from tests.django_helpers import CURRENT

    return CURRENT["alias"]
