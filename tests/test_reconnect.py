"""The runtime survives its database connections being cut (a failover, a restart, a pooler)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

import jobctl
from tests.runtime_helpers import scalar, start, stop, wait_for, write_config
from tests.runtime_jobs import SleepOnly

pytestmark = pytest.mark.slow


def finished(url: str) -> int:
    return int(scalar(url, "SELECT count(*) FROM jobctl_jobs WHERE state = 'finished'"))


def test_connections_cut_mid_drain_recover_and_lose_nothing(pg_url: str, tmp_path: Path) -> None:
    """Every server connection of the runtime is terminated twice while it drains: it reconnects,
    gives back claims it may have lost track of, and every job still finishes."""
    import psycopg

    url = pg_url
    jobctl.configure(database_url=url)
    try:
        from jobctl import database

        database.get_store().migrate()
        # The jobs touch no database themselves: only the runtime's connections are cut.
        jobs = [SleepOnly(0.01) for _ in range(300)]
        jobctl.perform_all_later(jobs)
        config = write_config(tmp_path / "queue.yml", processes=2, threads=3)
        proc = start(url, config, log=tmp_path / "log")
        try:
            for _ in range(2):
                wait_for(lambda: scalar(url, "SELECT count(*) FROM jobctl_jobs WHERE state = 'claimed'") > 0,
                         what="jobs in flight")
                with psycopg.connect(url, autocommit=True) as admin:
                    admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                                  "WHERE datname = current_database() AND pid <> pg_backend_pid() "
                                  "AND backend_type = 'client backend'")
                time.sleep(0.3)
            wait_for(lambda: finished(url) == 300, timeout=60, what="all jobs after the cuts")
        finally:
            assert stop(proc) == 0
        assert scalar(url, "SELECT count(*) FROM jobctl_jobs WHERE state = 'claimed'") == 0
    finally:
        jobctl.configure(database_url=None)
