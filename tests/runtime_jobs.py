"""Jobs the runtime tests run in real worker processes; each records its runs in `test_runs`."""

from __future__ import annotations

import os
import signal
import sqlite3
import threading
import time
from typing import Any

import psycopg

import jobctl
from jobctl import urls

_local = threading.local()

RUNS_DDL = {
    "postgresql": "CREATE TABLE IF NOT EXISTS test_runs (job_id bigint, pid int, tag text, "
                  "started double precision, ended double precision)",
    "sqlite": "CREATE TABLE IF NOT EXISTS test_runs (job_id INTEGER, pid INTEGER, tag TEXT, started REAL, ended REAL)",
}


def _conn() -> Any:
    conn = getattr(_local, "conn", None)
    if conn is None or getattr(_local, "pid", None) != os.getpid():
        # The test's own connection for runs: JOBCTL_TEST_RECORD_URL when a test counts jobctl's connections.
        url = urls.parse(os.environ.get("JOBCTL_TEST_RECORD_URL") or os.environ["JOBCTL_DATABASE_URL"])
        if url.backend == "postgresql":
            conn = psycopg.connect(url.target, autocommit=True)
        else:
            conn = sqlite3.connect(url.target, timeout=30, isolation_level=None)
        _local.conn, _local.pid = conn, os.getpid()
    return conn


def record(job: jobctl.Job, tag: str, started: float, ended: float | None = None) -> None:
    """One row per run: which job, which process, when."""
    sql = "INSERT INTO test_runs (job_id, pid, tag, started, ended) VALUES (%s, %s, %s, %s, %s)"
    conn = _conn()
    if isinstance(conn, sqlite3.Connection):
        sql = sql.replace("%s", "?")
    conn.execute(sql, (job.job_id, os.getpid(), tag, started, ended))


class Record(jobctl.Job):
    """Records that it ran."""

    def perform(self, tag: str = "") -> None:
        now = time.time()
        record(self, tag, now, now)


class Sleep(jobctl.Job):
    """Runs for `seconds`, recording start and end."""

    def perform(self, seconds: float, tag: str = "") -> None:
        start = time.time()
        time.sleep(seconds)
        record(self, tag, start, time.time())


class Flaky(jobctl.Job):
    """Always raises; retried with fixed waits."""

    retry_on = (jobctl.RetryOn(ValueError, wait=1, attempts=3),)

    def perform(self) -> None:
        record(self, "flaky", time.time())
        raise ValueError(f"flaky run {self.executions}")


class Gone(jobctl.Job):
    """Discarded when it raises LookupError."""

    discard_on = (LookupError,)

    def perform(self) -> None:
        raise LookupError("the record is gone")


class Suicide(jobctl.Job):
    """Kills its own worker process every time."""

    def perform(self) -> None:
        record(self, "suicide", time.time())
        os.kill(os.getpid(), signal.SIGKILL)


class WaitForFile(jobctl.Job):
    """Runs until a file exists (lets a test kill its worker mid-job)."""

    def perform(self, path: str, timeout: float = 60) -> None:
        start = time.time()
        record(self, "waiting", start)
        deadline = time.monotonic() + timeout
        while not os.path.exists(path) and time.monotonic() < deadline:
            time.sleep(0.02)
        record(self, "done", start, time.time())


def command_task(label: str) -> None:
    """A recurring command: records a run (no job of its own)."""
    job = Record(label)
    job.job_id = 0
    record(job, label, time.time(), time.time())


class Limited(jobctl.Job):
    """At most two per key at once; records its run with the key as tag."""

    limits_concurrency = jobctl.ConcurrencyLimit(to=2, key=lambda key, *_: key)

    def perform(self, key: str, seconds: float) -> None:
        start = time.time()
        time.sleep(seconds)
        record(self, key, start, time.time())


class LimitedWait(jobctl.Job):
    """One at a time; the first waits for a file (so a test can kill its worker)."""

    limits_concurrency = jobctl.ConcurrencyLimit(to=1)

    def perform(self, path: str | None = None) -> None:
        start = time.time()
        record(self, "limited-start", start)
        deadline = time.monotonic() + 60
        while path and not os.path.exists(path) and time.monotonic() < deadline:
            time.sleep(0.02)
        record(self, "limited", start, time.time())


class Progressing(jobctl.Job):
    """Reports progress step by step; waits for a file before its last step."""

    def perform(self, steps: int, path: str) -> None:
        for i in range(steps):
            self.progress(i, steps, f"step {i}")
            if i == steps - 1:
                deadline = time.monotonic() + 30
                while not os.path.exists(path) and time.monotonic() < deadline:
                    time.sleep(0.02)
        self.progress(steps, steps, "done")


class SleepOnly(jobctl.Job):
    """Sleeps; touches no database."""

    def perform(self, seconds: float) -> None:
        time.sleep(seconds)


_HOARD: list[bytes] = []


class Hog(jobctl.Job):
    """Keeps `mb` megabytes alive in its worker process (a leak, for the recycling test)."""

    def perform(self, mb: int) -> None:
        _HOARD.append(b"x" * (mb * 2**20))
        record(self, "hog", time.time(), time.time())


class Announced(jobctl.Job):
    """Records its start at once (tag "started"), sleeps, then records its end."""

    def perform(self, seconds: float) -> None:
        start = time.time()
        record(self, "started", start)
        time.sleep(seconds)
        record(self, "ended", start, time.time())


class RaisesKeyboardInterrupt(jobctl.Job):
    """Raises KeyboardInterrupt out of perform (no signal: the job's own doing)."""

    def perform(self) -> None:
        raise KeyboardInterrupt("raised by the job")


class AwaitsCancelledTask(jobctl.Job):
    """An async perform that awaits a task cancelled under it: asyncio.CancelledError comes out."""

    async def perform(self) -> None:
        import asyncio

        task = asyncio.ensure_future(asyncio.sleep(30))
        await asyncio.sleep(0)
        task.cancel()
        await task


class Halt(BaseException):
    """An application's own BaseException subclass."""


class RaisesHalt(jobctl.Job):
    """Raises a BaseException subclass that is not an Exception."""

    def perform(self) -> None:
        raise Halt("halted by the job")


class ProgressAndEnqueue(jobctl.Job):
    """Reports progress and enqueues a Record job while it runs (both through the worker's one extra connection)."""

    def perform(self, n: int) -> None:
        start = time.time()
        for step in range(3):
            self.progress(step, 3, "step")
            time.sleep(0.2)
        Record.perform_later(f"child of {n}")
        self.progress(3, 3, "done")
        record(self, f"progress {n}", start, time.time())


class Stuck(jobctl.Job):
    """A plain perform that outlives its timeout (records its start, then sleeps up to `seconds`)."""

    timeout = 1.0

    def perform(self, seconds: float = 30.0) -> None:
        record(self, "stuck", time.time())
        time.sleep(seconds)
        record(self, "stuck-done", time.time(), time.time())


class AsyncStuck(jobctl.Job):
    """An async perform that outlives its timeout: it is cancelled."""

    timeout = 0.5

    async def perform(self) -> None:
        import asyncio

        record(self, "async-stuck", time.time())
        await asyncio.sleep(30)


class RetriedAfterTimeout(jobctl.Job):
    """Times out once (0.3 s, async), then is quick: retry_on names JobTimeout."""

    timeout = 0.3
    retry_on = (jobctl.RetryOn(jobctl.JobTimeout, wait=0, attempts=3),)

    async def perform(self) -> None:
        import asyncio

        record(self, f"run {self.executions}", time.time())
        if self.executions == 1:
            await asyncio.sleep(30)
