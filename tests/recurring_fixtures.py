"""Importable targets for recurring-task tests: the Rails guide's commands as Python, and a job class."""

from __future__ import annotations

from typing import Any

import jobctl

calls: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = []
"""What the commands below were called with, in order."""

NOT_CALLABLE = 42
"""A module attribute that cannot be called."""


def ping() -> None:
    """A module-level function."""
    calls.append(("ping", (), {}))


class Bundle:
    """Stands in for the Rails guide's `Notification::Bundle`."""

    @classmethod
    def deliver_all_later(cls) -> None:
        calls.append(("Bundle.deliver_all_later", (), {}))


class Session:
    """Stands in for the Rails guide's `Session` model."""

    @classmethod
    def cleanup_old_sessions_later(cls, days: int = 30) -> None:
        calls.append(("Session.cleanup_old_sessions_later", (days,), {}))


class Digest:
    """Stands in for the Rails guide's `Digest`."""

    @classmethod
    def send_weekly_later(cls, *, dry_run: bool = False) -> None:
        calls.append(("Digest.send_weekly_later", (), {"dry_run": dry_run}))


class NotAJob:
    """A class that is not a jobctl.Job."""


class CleanupJob(jobctl.Job):
    """A job with its own queue and priority."""

    queue = "maintenance"
    priority = 5

    def perform(self, days: int) -> int:
        return days


class AnyArgsJob(jobctl.Job):
    """A job whose perform takes anything."""

    def perform(self, *args: Any, **kwargs: Any) -> None:
        return None
