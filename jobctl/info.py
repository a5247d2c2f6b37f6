"""Frozen views of jobs as operators and the API see them; `to_dict()` is the JSON shape of SPEC 7.1."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

STATES = ("scheduled", "ready", "claimed", "blocked", "finished", "failed", "discarded")
"""Every job state, in lifecycle order; these names, exactly, in every output."""
ACTIVE_STATES = ("scheduled", "ready", "blocked", "claimed")
"""States in which a job holds its unique key."""


def iso(value: dt.datetime | None) -> str | None:
    """A UTC ISO-8601 string (`…Z`), or None."""
    if value is None:
        return None
    return value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


@dataclass(frozen=True)
class ErrorInfo:
    """One failed run of a job."""

    attempt: int
    """Which run (1 for the first)."""
    error_class: str
    """The exception's class, `module.QualName`."""
    message: str
    """The exception's message."""
    traceback: str | None
    """The formatted traceback, when there was one."""
    at: dt.datetime
    """When it was recorded (UTC)."""

    def to_dict(self) -> dict[str, Any]:
        """JSON form: `{attempt, class, message, traceback, at}`."""
        return {"attempt": self.attempt, "class": self.error_class, "message": self.message,
                "traceback": self.traceback, "at": iso(self.at)}


@dataclass(frozen=True)
class Progress:
    """The progress a running job last reported."""

    done: float
    """Units done."""
    total: float | None
    """Units in all, when known."""
    message: str | None
    """A short note from the job."""
    at: dt.datetime
    """When it was reported (UTC)."""

    def to_dict(self) -> dict[str, Any]:
        """JSON form: `{done, total, message, at}`."""
        return {"done": _num(self.done), "total": _num(self.total), "message": self.message, "at": iso(self.at)}


def _num(value: float | None) -> float | int | None:
    if value is not None and float(value).is_integer():
        return int(value)
    return value


@dataclass(frozen=True)
class JobInfo:
    """A job as stored, read fresh from the database."""

    id: int
    """The job's id."""
    class_path: str
    """The job class's import path, `module:QualName`."""
    queue: str
    """The queue it runs on."""
    priority: int
    """Lower runs first."""
    state: str
    """One of `STATES`."""
    arguments: Any
    """The stored arguments, `{"args": [...], "kwargs": {...}}` in the tagged JSON form."""
    attempts: int
    """Runs that ended (finished, raised or crashed)."""
    crashes: int
    """Runs that ended with the worker process dying."""
    errors: tuple[ErrorInfo, ...]
    """Every failed run's error, oldest first."""
    key: str | None
    """The unique key, if any."""
    progress: Progress | None
    """Last reported progress."""
    enqueued_at: dt.datetime
    """When it was enqueued."""
    scheduled_at: dt.datetime
    """When it is (or was) due."""
    claimed_at: dt.datetime | None
    """When a worker last claimed it."""
    finished_at: dt.datetime | None
    """When it finished, failed or was discarded."""

    def to_dict(self) -> dict[str, Any]:
        """The object `jobctl show ID --json` prints."""
        return {
            "id": self.id,
            "class": self.class_path,
            "queue": self.queue,
            "priority": self.priority,
            "state": self.state,
            "arguments": self.arguments,
            "attempts": self.attempts,
            "errors": [e.to_dict() for e in self.errors],
            "key": self.key,
            "progress": self.progress.to_dict() if self.progress else None,
            "enqueued_at": iso(self.enqueued_at),
            "scheduled_at": iso(self.scheduled_at),
            "claimed_at": iso(self.claimed_at),
            "finished_at": iso(self.finished_at),
            "crashes": self.crashes,
        }
