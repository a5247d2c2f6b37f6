"""Faults that must not jam, crash or lose anything (issue 19, SPEC 9): jobs raising BaseException,
a full or locked SQLite file, rows with unreadable arguments or hostile class paths, file modes.

Real `jobctl start` processes and real CLI runs, on both backends where the fault can happen.
"""

from __future__ import annotations

import sqlite3
import subprocess
from pathlib import Path

import pytest

import jobctl
from jobctl.records import ClaimedJob
from jobctl.runtime.execution import Executor, error_of
from tests import runtime_jobs as rj
from tests.runtime_helpers import children_of, connection, query, scalar, start, stop, wait_for, write_config


def states(url: str) -> dict[str, int]:
    return dict(query(url, "SELECT state, count(*) FROM jobctl_jobs GROUP BY state"))


def set_column(url: str, job_id: int, column: str, value: str) -> None:
    """Overwrite one column of a job row, as a hand edit or a hostile writer would."""
    with connection(url) as conn:
        sql = f"UPDATE jobctl_jobs SET {column} = ? WHERE id = ?"
        if not isinstance(conn, sqlite3.Connection):
            sql = sql.replace("?", "%s")
        conn.execute(sql, (value, job_id))


def running_children(proc: subprocess.Popen[bytes], count: int = 2) -> list[int]:
    """The pids of `jobctl start`'s children once all `count` of them (a worker, a dispatcher) run."""
    def found() -> list[int] | None:
        pids = children_of(proc.pid)
        return pids if len(pids) == count else None

    return wait_for(found, what=f"{count} children")


def one_line(text: str) -> str:
    lines = text.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in text, text
    return lines[0]


def claimed_job(job_id: int, class_path: str, arguments: str = '{"args":[],"kwargs":{}}') -> ClaimedJob:
    return ClaimedJob(job_id, "default", class_path, 0, arguments, 0, 0)


# -- 1. a job raising BaseException ------------------------------------------------------------


@pytest.mark.parametrize("job, error_class", [
    (rj.RaisesKeyboardInterrupt, "KeyboardInterrupt"),
    (rj.AwaitsCancelledTask, "asyncio.exceptions.CancelledError"),
    (rj.RaisesHalt, "tests.runtime_jobs.Halt"),
])
def test_executor_turns_a_base_exception_into_a_failed_run(job: type[jobctl.Job], error_class: str) -> None:
    outcome = Executor().run(claimed_job(1, jobctl.job.job_class_path(job)), executions=1)
    assert outcome.state == "failed"
    assert outcome.error is not None and outcome.error.error_class == error_class
    assert outcome.error.traceback and "perform" in outcome.error.traceback


def test_an_exception_whose_str_raises_still_gives_an_error() -> None:
    class Unprintable(Exception):
        def __str__(self) -> str:
            raise RuntimeError("no")

    error = error_of(Unprintable())
    assert error.message.endswith("Unprintable: str() failed>")


@pytest.mark.slow
@pytest.mark.usefixtures("configured")
def test_base_exceptions_fail_their_jobs_and_the_thread_runs_the_jobs_behind(database_url: str, backend: str,
                                                                            tmp_path: Path) -> None:
    url = database_url
    with connection(url) as conn:
        conn.execute(rj.RUNS_DDL[backend])
    bad = [rj.RaisesKeyboardInterrupt.perform_later(), rj.AwaitsCancelledTask.perform_later(),
           rj.RaisesHalt.perform_later()]
    behind = [rj.Record.perform_later(f"behind {i}") for i in range(5)]
    log = tmp_path / "log"
    proc = start(url, write_config(tmp_path / "queue.yml", threads=1, processes=1), log=log)
    try:
        workers = running_children(proc)
        wait_for(lambda: states(url) == {"failed": 3, "finished": 5}, timeout=30,
                 what="3 failed and 5 finished jobs")
        assert children_of(proc.pid) == workers  # the worker lived: nothing crashed or restarted
    finally:
        assert stop(proc) == 0
    got = {h.id: jobctl.get_job(h.id) for h in bad}
    assert [(i.attempts, i.crashes, [e.error_class for e in i.errors]) for i in got.values()] == [
        (1, 0, ["KeyboardInterrupt"]), (1, 0, ["asyncio.exceptions.CancelledError"]),
        (1, 0, ["tests.runtime_jobs.Halt"])]
    assert got[bad[0].id].errors[0].message == "raised by the job"
    assert got[bad[2].id].errors[0].message == "halted by the job"
    assert sorted(r[0] for r in query(url, "SELECT tag FROM test_runs")) == [f"behind {i}" for i in range(len(behind))]
    assert scalar(url, "SELECT count(*) FROM jobctl_jobs WHERE state = 'claimed'") == 0
    assert scalar(url, "SELECT count(*) FROM jobctl_processes") == 0
    assert "Traceback" not in log.read_text()
