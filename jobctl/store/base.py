"""The one interface both backends implement; nothing above `jobctl.store` asks which database it is on."""

from __future__ import annotations

import abc
import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from jobctl.info import JobInfo
from jobctl.urls import DatabaseURL


@dataclass(frozen=True)
class NewJob:
    """A job about to be inserted."""

    class_path: str
    """The job class's import path."""
    queue: str
    """Queue name."""
    priority: int
    """Lower runs first."""
    arguments: str
    """Serialised arguments (JSON text)."""
    key: str | None = None
    """Unique key: while a job with this key is active, no second one is inserted."""
    delay: float = 0.0
    """Seconds from the database's now until it is due (ignored when `run_at` is set)."""
    run_at: dt.datetime | None = None
    """An absolute due time (aware)."""

    @property
    def plain(self) -> bool:
        """Ready now, with no key: eligible for the bulk fast path."""
        return self.key is None and self.run_at is None and self.delay <= 0


@dataclass(frozen=True)
class Inserted:
    """What inserting one job did."""

    id: int
    """The new job's id, or the id of the active job already holding the key."""
    state: str
    """Its state right after the insert."""
    created: bool
    """False when an active job with the same key was returned instead."""


class Store(abc.ABC):
    """A database holding jobctl's tables. Methods taking `conn` run on the caller's connection
    (inside its transaction, without committing) when one is given, else on the store's own."""

    url: DatabaseURL

    @abc.abstractmethod
    def migrate(self) -> list[str]:
        """Apply pending migrations (idempotent, safe from two hosts at once); return the names applied."""

    @abc.abstractmethod
    def schema_version(self) -> tuple[int, int]:
        """(version in the database, latest version this jobctl knows)."""

    @abc.abstractmethod
    def check_connection(self, conn: Any) -> None:
        """Raise ValueError when a caller's connection is not to this store's database."""

    @abc.abstractmethod
    def insert_job(self, job: NewJob, conn: Any = None) -> Inserted:
        """Insert one job (or find the active one holding its key)."""

    @abc.abstractmethod
    def insert_jobs(self, jobs: Sequence[NewJob], conn: Any = None) -> int:
        """Insert many jobs in as few round trips as the backend allows; return how many were created."""

    @abc.abstractmethod
    def job_state(self, job_id: int, conn: Any = None) -> str | None:
        """A job's current state, or None when it does not exist."""

    @abc.abstractmethod
    def get_job(self, job_id: int, conn: Any = None) -> JobInfo | None:
        """One job with its errors and progress, or None."""

    @abc.abstractmethod
    def count(self, state: str | None = None, queue: str | None = None) -> int:
        """How many jobs, optionally of one state and/or queue."""

    @abc.abstractmethod
    def close(self) -> None:
        """Close the store's own connections (not callers')."""
