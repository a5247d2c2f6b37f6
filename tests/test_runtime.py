"""`jobctl start` with real forked processes and real signals, on both backends."""

from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import time
from collections import Counter
from pathlib import Path

import psutil
import pytest

import jobctl
from tests import runtime_jobs as rj
from tests.runtime_helpers import (
    children_of,
    query,
    scalar,
    start,
    stop,
    wait_for,
    write_config,
)

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("configured")]


@pytest.fixture
def runs_table(database_url: str, backend: str) -> str:
    from tests.runtime_helpers import connection

    with connection(database_url) as conn:
        conn.execute(rj.RUNS_DDL[backend])
    return database_url


def states(url: str) -> dict[str, int]:
    return dict(query(url, "SELECT state, count(*) FROM jobctl_jobs GROUP BY state"))


def test_two_processes_drain_2000_jobs_each_exactly_once(runs_table: str, tmp_path: Path) -> None:
    url = runs_table
    assert jobctl.perform_all_later([rj.Record(f"j{i}") for i in range(2000)]) == 2000
    proc = start(url, write_config(tmp_path / "queue.yml", threads=3, processes=2), log=tmp_path / "log")
    try:
        wait_for(lambda: states(url) == {"finished": 2000}, timeout=90, what="2000 finished jobs")
    finally:
        assert stop(proc) == 0
    runs = Counter(r[0] for r in query(url, "SELECT job_id FROM test_runs"))
    assert len(runs) == 2000 and set(runs.values()) == {1}
    pids = {r[0] for r in query(url, "SELECT DISTINCT pid FROM test_runs")}
    assert len(pids) == 2  # both worker processes took part
    assert scalar(url, "SELECT count(*) FROM jobctl_jobs WHERE attempts <> 1") == 0
    assert scalar(url, "SELECT count(*) FROM jobctl_processes") == 0
    assert scalar(url, "SELECT sum(finished) FROM jobctl_throughput") == 2000


def test_retries_with_waits_then_fails_with_traceback(runs_table: str, tmp_path: Path) -> None:
    url = runs_table
    handle = rj.Flaky.perform_later()
    discarded = rj.Gone.perform_later()
    proc = start(url, write_config(tmp_path / "queue.yml", processes=1), log=tmp_path / "log")
    try:
        wait_for(lambda: handle.state == "failed", timeout=30, what="the flaky job to fail")
        wait_for(lambda: discarded.state == "discarded", timeout=10, what="discard")
    finally:
        assert stop(proc) == 0
    info = jobctl.get_job(handle.id)
    assert info.attempts == 3
    assert [e.attempt for e in info.errors] == [1, 2, 3]
    assert [e.message for e in info.errors] == ["flaky run 1", "flaky run 2", "flaky run 3"]
    assert all(e.error_class == "ValueError" and 'raise ValueError(f"flaky run' in (e.traceback or "")
               for e in info.errors)
    starts = sorted(r[0] for r in query(url, "SELECT started FROM test_runs WHERE tag = 'flaky'"))
    gaps = [b - a for a, b in itertools.pairwise(starts)]
    assert len(gaps) == 2 and all(0.9 <= g < 3.0 for g in gaps), gaps  # wait=1 plus dispatcher polling
    gone = jobctl.get_job(discarded.id)
    assert gone.attempts == 1 and gone.errors[0].message == "the record is gone"
    assert gone.finished_at is not None


def _worker_running(url: str, tag: str) -> int | None:
    rows = query(url, "SELECT pid FROM test_runs WHERE tag = ?", (tag,))
    return rows[-1][0] if rows else None


def test_kill_9_of_a_worker_mid_job_restarts_it_and_runs_the_job_again(runs_table: str, tmp_path: Path) -> None:
    url = runs_table
    release = tmp_path / "release"
    handle = rj.WaitForFile.perform_later(str(release))
    proc = start(url, write_config(tmp_path / "queue.yml", processes=2), log=tmp_path / "log")
    try:
        victim = wait_for(lambda: _worker_running(url, "waiting"), what="the job to start")
        before = set(children_of(proc.pid))
        os.kill(victim, signal.SIGKILL)
        wait_for(lambda: len(query(url, "SELECT 1 FROM test_runs WHERE tag = 'waiting'")) == 2, timeout=30,
                 what="the job to run again")
        release.touch()
        wait_for(lambda: handle.state == "finished", timeout=30, what="the job to finish")
        after = set(children_of(proc.pid))
        assert victim not in after and len(after) == len(before)  # restarted
    finally:
        assert stop(proc) == 0
    info = jobctl.get_job(handle.id)
    assert info.attempts == 2 and info.crashes == 1
    assert info.errors[0].error_class == "jobctl.WorkerCrashed"
    assert "SIGKILL (signal 9)" in info.errors[0].message


def test_a_job_that_kills_its_worker_every_time_fails_after_max_crashes(runs_table: str, tmp_path: Path) -> None:
    url = runs_table
    handle = rj.Suicide.perform_later()
    bystanders = [rj.Record.perform_later(f"b{i}") for i in range(20)]
    # One thread: a job running beside the suicidal one would be charged the crash too (as it should).
    proc = start(url, write_config(tmp_path / "queue.yml", processes=1, threads=1, max_crashes=2),
                 log=tmp_path / "log")
    try:
        wait_for(lambda: handle.state == "failed", timeout=30, what="the job to fail")
        wait_for(lambda: all(b.state == "finished" for b in bystanders), timeout=30, what="bystanders")
    finally:
        assert stop(proc) == 0
    info = jobctl.get_job(handle.id)
    assert info.attempts == 2 and info.crashes == 2
    assert [e.message for e in info.errors] == ["worker process died: SIGKILL (signal 9)"] * 2
    assert scalar(url, "SELECT count(*) FROM test_runs WHERE tag = 'suicide'") == 2
    # Jobs the dying process had claimed but not started went back uncounted.
    assert scalar(url, "SELECT max(attempts) FROM jobctl_jobs WHERE class LIKE ?", ("%Record",)) == 1


def test_term_lets_running_jobs_finish_and_leaves_nothing_claimed(runs_table: str, tmp_path: Path) -> None:
    url = runs_table
    jobs = [rj.Announced.perform_later(1.0) for _ in range(6)]
    proc = start(url, write_config(tmp_path / "queue.yml", processes=1, threads=3, shutdown_timeout=10),
                 log=tmp_path / "log")
    wait_for(lambda: scalar(url, "SELECT count(*) FROM test_runs WHERE tag = 'started'") == 3,
             what="three jobs running")
    assert stop(proc, signal.SIGTERM) == 0
    started = {r[0] for r in query(url, "SELECT job_id FROM test_runs WHERE tag = 'started'")}
    assert {r[0] for r in query(url, "SELECT job_id FROM test_runs WHERE tag = 'ended'")} == started
    assert {j.state for j in jobs if j.id in started} == {"finished"}  # running jobs finished
    assert {j.state for j in jobs if j.id not in started} == {"ready"}  # the others went back, uncounted
    assert {jobctl.get_job(j.id).attempts for j in jobs if j.id not in started} == {0}
    assert scalar(url, "SELECT count(*) FROM jobctl_jobs WHERE state = 'claimed'") == 0
    assert scalar(url, "SELECT count(*) FROM jobctl_processes") == 0


def test_kill_9_of_the_supervisor(runs_table: str, tmp_path: Path) -> None:
    """Children stop claiming, finish or return their jobs within shutdown_timeout and exit; a new
    supervisor releases whatever claims are left."""
    url = runs_table
    release = tmp_path / "release"
    stuck = rj.WaitForFile.perform_later(str(release), 3.0)  # outlives the shutdown timeout below
    config = write_config(tmp_path / "queue.yml", processes=2, shutdown_timeout=1, alive_threshold=3)
    proc = start(url, config, log=tmp_path / "log")
    wait_for(lambda: _worker_running(url, "waiting"), what="the job to start")
    children = children_of(proc.pid)
    assert len(children) == 3
    proc.kill()
    proc.wait()

    def all_gone() -> bool:
        return not any(psutil.pid_exists(c) and psutil.Process(c).status() != psutil.STATUS_ZOMBIE
                       for c in children)

    wait_for(all_gone, timeout=10, what="orphaned children to exit")
    more = rj.Record.perform_later("after")
    time.sleep(0.5)
    assert more.state == "ready"  # nobody claims while no supervisor runs
    second = start(url, config, log=tmp_path / "log2")
    try:
        wait_for(lambda: more.state == "finished", timeout=30, what="the new supervisor's workers")
        wait_for(lambda: stuck.state == "finished", timeout=30, what="the stuck job to run again")
        wait_for(lambda: scalar(url, "SELECT count(*) FROM jobctl_processes WHERE kind = 'supervisor'") == 1,
                 timeout=15, what="the dead supervisor to be pruned")
    finally:
        assert stop(second) == 0


def test_long_jobs_are_spread_over_processes(runs_table: str, tmp_path: Path) -> None:
    url = runs_table
    jobs = [rj.Sleep.perform_later(1.0, f"long{i}") for i in range(6)]
    proc = start(url, write_config(tmp_path / "queue.yml", processes=2, threads=3), log=tmp_path / "log")
    try:
        wait_for(lambda: all(j.state == "finished" for j in jobs), timeout=30, what="long jobs")
    finally:
        assert stop(proc) == 0
    per_pid = Counter(r[0] for r in query(url, "SELECT pid FROM test_runs"))
    assert sorted(per_pid.values()) == [3, 3]


def test_check_validates_and_exits(tmp_path: Path, database_url: str) -> None:
    from tests.runtime_helpers import env_for

    config = tmp_path / "queue.yml"
    config.write_text("production:\n  workers:\n    - queues: default\n      threads: 2\n")
    env = env_for(database_url)
    ok = subprocess.run([os.sys.executable, "-m", "jobctl.cli", "start", "--check", "--config", str(config)],
                        env={**env, "JOBCTL_ENV": "production"}, capture_output=True, text=True, timeout=30)
    assert ok.returncode == 0, ok.stderr
    assert "no dispatchers" in ok.stderr and "ok" in ok.stderr
    config.write_text("production:\n  workers:\n    - queues: default\n      thread: 2\n")
    bad = subprocess.run([os.sys.executable, "-m", "jobctl.cli", "start", "--check", "--config", str(config)],
                         env={**env, "JOBCTL_ENV": "production"}, capture_output=True, text=True, timeout=30)
    assert bad.returncode == 1 and bad.stderr.count("\n") == 1
    assert "production.workers[0].thread: unknown key" in bad.stderr


def test_json_logs(runs_table: str, tmp_path: Path) -> None:
    url = runs_table
    handle = rj.Record.perform_later("logged")
    log = tmp_path / "log"
    proc = start(url, write_config(tmp_path / "queue.yml", processes=1), "--log-format", "json", log=log)
    try:
        wait_for(lambda: handle.state == "finished", what="the job")
    finally:
        assert stop(proc) == 0
    events = [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]
    done = [e for e in events if e.get("event") == "job_finished"]
    assert done and done[0]["job_id"] == handle.id and done[0]["class"] == "tests.runtime_jobs:Record"
    assert {"ts", "level", "queue", "attempt", "duration_ms"} <= set(done[0])



def test_max_jobs_per_process_recycles_the_worker_gracefully(runs_table: str, tmp_path: Path) -> None:
    url = runs_table
    handles = [rj.Record.perform_later(f"r{i}") for i in range(30)]
    config = write_config(tmp_path / "queue.yml", processes=1, threads=1)
    config.write_text(config.read_text().replace("    polling_interval: 0.05\n",
                                                 "    polling_interval: 0.05\n    max_jobs_per_process: 5\n"))
    proc = start(url, config, log=tmp_path / "log")
    try:
        wait_for(lambda: all(h.state == "finished" for h in handles), timeout=60, what="jobs across recycles")
    finally:
        assert stop(proc) == 0
    pids = {r[0] for r in query(url, "SELECT pid FROM test_runs")}
    assert len(pids) >= 3  # one worker process at a time, replaced after about five jobs
    assert scalar(url, "SELECT count(*) FROM test_runs") == 30  # recycling is graceful: no job ran twice
    assert "recycling" in (tmp_path / "log").read_text()
    assert scalar(url, "SELECT count(*) FROM jobctl_jobs WHERE crashes > 0") == 0


def test_max_memory_mb_recycles_the_worker(runs_table: str, tmp_path: Path) -> None:
    url = runs_table
    config = write_config(tmp_path / "queue.yml", processes=1, threads=1)
    config.write_text(config.read_text().replace("    polling_interval: 0.05\n",
                                                 "    polling_interval: 0.05\n    max_memory_mb: 150\n"))
    proc = start(url, config, log=tmp_path / "log")
    try:
        first = rj.Hog.perform_later(200)
        wait_for(lambda: first.state == "finished", what="a first job")
        wait_for(lambda: "MB > max_memory_mb; recycling" in (tmp_path / "log").read_text(), what="a recycle")
        second = rj.Record.perform_later("after")
        wait_for(lambda: second.state == "finished", what="a job after the recycle")
    finally:
        assert stop(proc) == 0
    assert len({r[0] for r in query(url, "SELECT pid FROM test_runs")}) == 2
