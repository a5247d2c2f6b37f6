"""Job timeouts (SPEC 14) with real `jobctl start` processes on both backends: a plain perform past its timeout
fails with JobTimeout and its worker is replaced, its other jobs finishing; an async one is cancelled."""

from __future__ import annotations

from pathlib import Path

import pytest

import jobctl
from tests import runtime_jobs as rj
from tests.runtime_helpers import children_of, query, start, stop, wait_for, write_config

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("configured")]


@pytest.fixture(autouse=True)
def runs_table(database_url: str, backend: str) -> None:
    from tests.runtime_helpers import connection

    with connection(database_url) as conn:
        conn.execute(rj.RUNS_DDL[backend])


def last_error(job_id: int) -> tuple[str, str]:
    info = jobctl.get_job(job_id)
    return info.errors[-1].error_class, info.errors[-1].message


def registered_children(url: str) -> set[int] | None:
    """The pids of the worker and the dispatcher once both registered (a process seen forking may not be
    one of them yet)."""
    pids = {r[0] for r in query(url, "SELECT pid FROM jobctl_processes WHERE kind IN ('worker', 'dispatcher')")}
    return pids if len(pids) == 2 else None


def test_a_plain_job_past_its_timeout_fails_and_its_worker_is_replaced(database_url: str, tmp_path: Path) -> None:
    config = write_config(tmp_path / "queue.yml", threads=2, processes=1, shutdown_timeout=5)
    log = tmp_path / "log"
    proc = start(database_url, config, log=log)
    try:
        wait_for(lambda: children_of(proc.pid), what="the children")
        stuck = rj.Stuck.perform_later()
        wait_for(lambda: query(database_url, "SELECT 1 FROM test_runs WHERE tag = 'stuck'"), what="the stuck job")
        workers_before = set(children_of(proc.pid))
        other = rj.Sleep.perform_later(1.5, "beside")  # running on the other thread when the timeout hits
        wait_for(lambda: jobctl.get_job(stuck.id).state == "failed", timeout=20, what="the timeout")
        assert last_error(stuck.id) == ("jobctl.errors.JobTimeout",
                                        f"job {stuck.id} (tests.runtime_jobs:Stuck) ran longer than its timeout of 1s "
                                        "(its worker is replaced: a thread cannot be stopped)")
        wait_for(lambda: jobctl.get_job(other.id).state == "finished", timeout=20, what="its neighbour")
        wait_for(lambda: len(set(children_of(proc.pid)) - workers_before) >= 1, timeout=20,
                 what="a new worker process")
        after = rj.Record.perform_later("after")
        wait_for(lambda: jobctl.get_job(after.id).state == "finished", timeout=20, what="work after the replacement")
        assert jobctl.count(state="claimed") == 0 and proc.poll() is None
        assert [r[0] for r in query(database_url, "SELECT tag FROM test_runs WHERE job_id = ?", (other.id,))] \
            == ["beside"]  # it ran once
        assert jobctl.get_job(stuck.id).attempts == 1 and jobctl.get_job(stuck.id).crashes == 0
    finally:
        assert stop(proc) == 0, log.read_text()
    text = log.read_text()
    assert "ran past its timeout of 1s" in text and "died" not in text, text


def test_async_jobs_are_cancelled_and_retried_when_retry_on_names_jobtimeout(database_url: str,
                                                                            tmp_path: Path) -> None:
    config = write_config(tmp_path / "queue.yml", threads=2, processes=1)
    log = tmp_path / "log"
    proc = start(database_url, config, log=log)
    try:
        workers = wait_for(lambda: registered_children(database_url), what="the worker and the dispatcher")
        assert set(children_of(proc.pid)) == workers
        cancelled, retried = rj.AsyncStuck.perform_later(), rj.RetriedAfterTimeout.perform_later()
        per_call = rj.AsyncStuck.set(timeout=0.2).perform_later()
        wait_for(lambda: jobctl.get_job(cancelled.id).state == "failed", timeout=20, what="the cancellation")
        assert last_error(cancelled.id)[0] == "jobctl.errors.JobTimeout"
        assert "timeout of 0.5s (cancelled)" in last_error(cancelled.id)[1]
        wait_for(lambda: jobctl.get_job(per_call.id).state == "failed", timeout=20, what="set(timeout=)")
        assert "timeout of 0.2s (cancelled)" in last_error(per_call.id)[1]
        wait_for(lambda: jobctl.get_job(retried.id).state == "finished", timeout=20, what="the retried job")
        assert jobctl.get_job(retried.id).attempts == 2
        assert set(children_of(proc.pid)) == workers  # cancelling a coroutine needs no new worker
    finally:
        assert stop(proc) == 0, log.read_text()


def test_timeouts_are_checked_at_the_call() -> None:
    for bad in (0, -1):
        with pytest.raises(ValueError, match="timeout= expects a positive number of seconds"):
            rj.Record.set(timeout=bad)
    with pytest.raises(TypeError):
        rj.Record.set(timeout="soon")  # type: ignore[arg-type]
