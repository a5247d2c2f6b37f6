"""Progress reports from running jobs, written on a connection of their own and throttled."""

from __future__ import annotations

import logging
import threading
import time

from jobctl.errors import DatabaseError
from jobctl.job import Job
from jobctl.runtime import logs
from jobctl.store import Store

# At most one write per job in this interval; a report reaching its total is always written.
MIN_INTERVAL_S = 0.5


class ProgressReporter:
    """The `progress` sink of a worker's jobs: written on the store's own connection, which the worker's
    jobs also enqueue through (one connection in all, opened when first needed)."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._lock = threading.Lock()
        self._last: dict[int, float] = {}

    def attach(self, job: Job) -> None:
        """Route `job.progress(...)` here (the executor calls this before `perform`)."""
        job._progress_sink = self.report

    def report(self, job: Job, done: float, total: float | None, message: str | None) -> None:
        """Write the report unless one for this job was written very recently (a final one always is)."""
        if job.job_id is None:
            return
        now = time.monotonic()
        final = total is not None and done >= total
        if not final and now - self._last.get(job.job_id, -MIN_INTERVAL_S) < MIN_INTERVAL_S:
            return
        with self._lock:
            self._last[job.job_id] = now
            try:
                self.store.set_progress(job.job_id, float(done), None if total is None else float(total), message)
            except DatabaseError as exc:  # the store reconnects on the next report; progress is best effort
                logs.event(logging.WARNING, "progress_lost", f"job {job.job_id}: progress not recorded: {exc}")
            if len(self._last) > 10_000:
                self._last.clear()
