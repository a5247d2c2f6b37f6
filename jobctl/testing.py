"""Testing helpers and the pytest plugin (registered by entry point; inert until its fixture is used).

    def test_enqueues(jobctl_queue):
        Comment(1).notify_recipients_later()
        assert_enqueued(LaterJob, queue="default", count=1)
        perform_enqueued_jobs()            # runs them inline: real retry/discard rules, waits skipped

`jobctl_queue` gives each test an isolated queue: a temporary SQLite file, or a fresh schema on
the PostgreSQL server of `JOBCTL_TEST_DATABASE_URL` when that is set. Every enqueue in the test
goes there.
"""

from __future__ import annotations

import importlib.util
import json
import os
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import jobctl
from jobctl import arguments, database
from jobctl.errors import JobctlError
from jobctl.job import Job, job_class_path, resolve_job_class
from jobctl.records import JobInfo, Selector
from jobctl.store import Store, scratch_database

# pytest is an optional extra (jobctl-queue[pytest]): without it this module still imports and its
# helpers work, and `jobctl_queue` is a plain function instead of a fixture.
if TYPE_CHECKING or importlib.util.find_spec("pytest") is not None:
    from pytest import fixture
else:
    _F = TypeVar("_F", bound=Callable[..., Any])

    def fixture(function: _F) -> _F:
        return function

__all__ = ["TestQueue", "assert_enqueued", "enqueued_jobs", "jobctl_queue", "perform_enqueued_jobs"]

MAX_ROUNDS = 1000
_current: TestQueue | None = None


class TestQueue:
    """An isolated jobctl database for one test."""

    __test__ = False  # not a test class, whatever pytest thinks of the name

    def __init__(self, url: str) -> None:
        self.url = url
        """The database URL every enqueue of the test goes to."""

    @property
    def store(self) -> Store:
        """The store behind the queue."""
        return database.get_store()

    def enqueued_jobs(self, job_class: type[Job] | None = None, *, queue: str | None = None) -> list[JobInfo]:
        """Jobs enqueued and not yet run (scheduled, ready, blocked or waiting), oldest first."""
        found = self.store.waiting_jobs()
        return [j for j in found if (job_class is None or _is_of(j.class_path, job_class))
                and (queue is None or j.queue == queue)]

    def perform_enqueued_jobs(self) -> int:
        """Run every enqueued job inline, and those they enqueue, until none is left; returns runs made.

        The real rules apply: retry_on retries (its waits skipped), discard_on discards, and a job
        that ends failed re-raises its exception here.
        """
        from jobctl.runtime.execution import Executor, record_outcome

        executor = Executor()
        session = self.store.session()
        runs = 0
        try:
            for _ in range(MAX_ROUNDS):
                self.store.make_scheduled_due()
                session.dispatch_due(10_000)
                session.unblock_all()
                claimed = session.claim(Selector("any"), 100, token=1, process_id=0)
                if not claimed:
                    return runs
                for job in claimed:
                    outcome = executor.run(job, executions=job.executions)
                    runs += 1
                    record_outcome(session, job, outcome, token=1, process_id=0, delay=0)
                    if outcome.state == "failed" and outcome.exception is not None:
                        # The rest of this batch was claimed but not run: back to ready for the next call.
                        session.release_claims(0, [])
                        raise outcome.exception
            raise RuntimeError(f"perform_enqueued_jobs: jobs still enqueued after {MAX_ROUNDS} rounds "
                               "(a job that enqueues itself forever, or unlimited retries?)")
        finally:
            session.close()


def _is_of(stored: str, job_class: type[Job]) -> bool:
    """Whether a row of class path `stored` runs as `job_class`: its own path, or a path an adapter runs
    with it (a `_later` row names its `_now` method, and runs as `jobctl.later.LaterJob`)."""
    if stored == job_class_path(job_class):
        return True
    try:
        return resolve_job_class(stored) is job_class
    except JobctlError:
        return False


def _queue() -> TestQueue:
    if _current is None:
        raise RuntimeError("jobctl.testing: use the jobctl_queue fixture in this test")
    return _current


def enqueued_jobs(job_class: type[Job] | None = None, *, queue: str | None = None) -> list[JobInfo]:
    """Jobs enqueued in this test and not yet run, oldest first (optionally of one class and queue)."""
    return _queue().enqueued_jobs(job_class, queue=queue)


def perform_enqueued_jobs() -> int:
    """Run this test's enqueued jobs inline (see TestQueue.perform_enqueued_jobs)."""
    return _queue().perform_enqueued_jobs()


def assert_enqueued(job_class: type[Job], *, args: Sequence[Any] | None = None,
                    kwargs: dict[str, Any] | None = None, queue: str | None = None,
                    count: int | None = None) -> list[JobInfo]:
    """Assert jobs of `job_class` were enqueued: with exactly these `args` (a tuple or a list) and
    `kwargs` when given, on `queue` when given, `count` of them when given (else at least one)."""
    candidates = _queue().enqueued_jobs(job_class)
    wanted = json.loads(arguments.dump_arguments(args or (), kwargs or {}))
    matching = [j for j in candidates
                if (queue is None or j.queue == queue)
                and (args is None or j.arguments.get("args") == wanted["args"])
                and (kwargs is None or j.arguments.get("kwargs") == wanted["kwargs"])]
    expected = f"{count} " if count is not None else ""
    ok = len(matching) == count if count is not None else bool(matching)
    if not ok:
        described = ", ".join(f"#{j.id} on {j.queue!r} with {json.dumps(j.arguments)}" for j in candidates) or "none"
        conditions = "".join(f" {k}={v!r}" for k, v in (("args", args), ("kwargs", kwargs), ("queue", queue))
                             if v is not None)
        raise AssertionError(f"expected {expected}{job_class.__qualname__} job(s) enqueued{conditions}; "
                             f"found {len(matching)} matching. Enqueued {job_class.__qualname__} jobs: {described}")
    return matching


@fixture
def jobctl_queue(tmp_path: Path) -> Iterator[TestQueue]:
    """An isolated jobctl queue for this test; every enqueue in the test goes to it."""
    global _current
    with scratch_database(os.environ.get("JOBCTL_TEST_DATABASE_URL"), tmp_path) as url:
        jobctl.configure(database_url=url)
        database.get_store().migrate()
        _current = TestQueue(url)
        try:
            yield _current
        finally:
            _current = None
            jobctl.configure(database_url=None)
