"""The chaos suite's job: records every run (at least once is what is checked), survives a database restart."""

from __future__ import annotations

import os
import threading
import time

import psycopg

import jobctl

_local = threading.local()


def _conn() -> psycopg.Connection:  # type: ignore[type-arg]
    conn = getattr(_local, "conn", None)
    if conn is None or conn.closed or getattr(_local, "pid", 0) != os.getpid():
        conn = psycopg.connect(os.environ["CHAOS_RECORD_URL"], autocommit=True, connect_timeout=5)
        _local.conn, _local.pid = conn, os.getpid()
    return conn


class ChaosJob(jobctl.Job):
    """Sleeps a little and records its run; a lost database connection is retried, not failed."""

    retry_on = (jobctl.RetryOn(psycopg.OperationalError, wait=1, attempts="unlimited"),)

    def perform(self, seconds: float) -> None:
        try:
            _conn().execute("INSERT INTO chaos_runs (job_id, pid, at) VALUES (%s, %s, %s)",
                            (self.job_id, os.getpid(), time.time()))
        except psycopg.OperationalError:
            _local.conn = None
            raise
        time.sleep(seconds)
