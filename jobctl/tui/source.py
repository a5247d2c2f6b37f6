"""Where the monitor's snapshots come from and where its actions go: the `Source` protocol, and the live
database behind it. Every method may block: the screen calls them from worker threads only.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Protocol, TypeVar

from jobctl import operations
from jobctl.errors import DatabaseError, JobctlError
from jobctl.records import JobInfo, WriteResult
from jobctl.store import Store, open_store
from jobctl.tui.filtering import Filter
from jobctl.tui.probe import LocalProbe
from jobctl.tui.snapshot import FAILURES_LIMIT, Snapshot, failure_matches, fetch
from jobctl.urls import DatabaseURL, scrub

T = TypeVar("T")

MATCH_PAGE = 10_000
"""Failed jobs read per query when `R` / `D` look for every failure matching a filter."""


class Source(Protocol):
    """Where the monitor gets snapshots and sends its actions. Every method may block: the screen
    calls them from worker threads only, never from the UI thread."""

    label: str
    """What the header names (a database URL without its password)."""

    def fetch(self, previous: Snapshot | None) -> Snapshot:
        """A fresh snapshot (`previous` carries the throughput history forward)."""

    def job(self, job_id: int) -> JobInfo | None:
        """One job with its errors and progress, or None when it is gone."""

    def failure_ids(self, flt: Filter) -> list[int]:
        """Ids of every failed job matching the filter (not only the ones on screen)."""

    def retry(self, ids: Sequence[int]) -> WriteResult:
        """Failed jobs back to ready."""

    def discard(self, ids: Sequence[int]) -> WriteResult:
        """Jobs to discarded."""

    def pause(self, queue: str) -> bool:
        """Stop claiming from a queue."""

    def resume(self, queue: str) -> bool:
        """Claim from a queue again."""

    def run_recurring_now(self, key: str) -> int:
        """Enqueue a recurring task's job now; returns the new job's id."""

    def close(self) -> None:
        """Release connections."""


class DatabaseSource:
    """A live database, through the store and `jobctl.operations`.

    The store is opened lazily by the first call, which is on a worker thread, and reopened after any
    error (so the monitor recovers when the database comes back). Textual runs each thread worker on
    a new thread: every call holds one lock, so the store's connection is used by one thread at a
    time (the SQLite store opens its connection with `check_same_thread=False` for exactly this).
    """

    def __init__(self, url: DatabaseURL, *, alive_threshold: float = 60.0, probe: LocalProbe | None = None,
                 failures_limit: int = FAILURES_LIMIT, open_store: Callable[[DatabaseURL], Store] = open_store,
                 named_queues: Sequence[str] = ()) -> None:
        self.url = url
        self.label = url.redacted
        self.alive_threshold = alive_threshold
        self.named_queues = tuple(named_queues)
        """Queues the queue config's workers name: shown even while empty."""
        self.failures_limit = failures_limit
        self.probe = probe if probe is not None else LocalProbe()
        self._open_store = open_store
        self._store: Store | None = None
        self._lock = threading.Lock()

    def _use(self, work: Callable[[Store], T]) -> T:
        with self._lock:
            if self._store is None:
                self._store = self._open_store(self.url)
            try:
                return work(self._store)
            except JobctlError:
                self._drop()
                raise
            except Exception as exc:  # a driver error the store did not wrap: one line, never the password
                self._drop()
                raise DatabaseError(f"database {self.label}: {scrub(str(exc), self.url) or type(exc).__name__}") \
                    from exc

    def _drop(self) -> None:
        if self._store is not None:
            try:
                self._store.close()
            except Exception:  # a broken connection may not even close cleanly
                pass
            self._store = None

    def fetch(self, previous: Snapshot | None) -> Snapshot:
        return self._use(lambda s: fetch(s, previous, alive_threshold=self.alive_threshold, probe=self.probe,
                                         failures_limit=self.failures_limit, named_queues=self.named_queues))

    def job(self, job_id: int) -> JobInfo | None:
        found = self._use(lambda s: s.get_jobs([job_id]))
        return found[0] if found else None

    def failure_ids(self, flt: Filter) -> list[int]:
        if not flt:
            return self._use(lambda s: s.match_jobs(states=("failed",)))
        return self._use(lambda s: _matching_failures(s, flt))

    def retry(self, ids: Sequence[int]) -> WriteResult:
        return self._use(lambda s: operations.retry(s, ids))

    def discard(self, ids: Sequence[int]) -> WriteResult:
        return self._use(lambda s: operations.discard(s, ids))

    def pause(self, queue: str) -> bool:
        return self._use(lambda s: s.pause_queue(queue))

    def resume(self, queue: str) -> bool:
        return self._use(lambda s: s.resume_queue(queue))

    def run_recurring_now(self, key: str) -> int:
        return self._use(lambda s: operations.run_recurring_now(s, key))

    def close(self) -> None:
        with self._lock:
            self._drop()


def _matching_failures(store: Store, flt: Filter) -> list[int]:
    """Every failure matching a filter, read as the panel's rows in pages and matched with
    `failure_matches` itself: the database's lower() is not Python's, so it cannot do the test."""
    ids: list[int] = []
    after = 0
    while True:
        page = store.failed_page(after=after, limit=MATCH_PAGE)
        ids.extend(row.id for row in page if failure_matches(flt, row))
        if len(page) < MATCH_PAGE:
            return ids
        after = page[-1].id
