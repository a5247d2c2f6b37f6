"""Failover (SPEC 14): a primary and its streaming replica on loopback, jobctl on a multi-host URL with
`target_session_attrs=read-write`. Mid-drain the primary dies (`pg_ctl stop -m immediate`) and the replica
is promoted: jobctl resumes on the new primary by itself, nothing is lost, no job stays claimed, only jobs
in flight at the failover may run twice, and `using()` keeps accepting the application's connections (the
database's identity is what a primary and its replicas share)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest

import jobctl
from tests.failover_jobs import PacedTally
from tests.pgcluster import Cluster
from tests.runtime_helpers import cli, env_for, query, scalar, stop, tallied, wait_for, write_config

pytestmark = pytest.mark.slow

JOBS = 3000
IN_FLIGHT_S = 2.0
"""A job may run twice only if its first run was at most this long before the primary stopped, or after."""


@dataclass(frozen=True)
class Failover:
    """What one run of the scenario measured."""

    resumed: float
    """Seconds from the promotion to the first job finished on the new primary."""
    promotion: float
    """Seconds from stopping the primary to the replica accepting writes."""
    ids: set[int]
    """Every job in the new primary."""
    states: dict[str, int]
    ran: dict[int, list[float]]
    """When each job ran (each of its runs)."""
    stopped_at: float
    """When the primary was stopped."""
    using_before: str
    using_after: str
    """What `using()` said to an application connection before and after the failover ("ok" or the error)."""
    connections: int
    """jobctl's connections to the new primary once resumed."""
    stats: subprocess.CompletedProcess[str]
    """`jobctl stats --json` on the multi-host URL after the failover."""
    code: int
    log: str


def enqueue_using(url: str) -> str:
    """Enqueue one job inside `jobctl.using()` on an application connection to `url`: "ok", or the error."""
    try:
        with psycopg.connect(url, autocommit=True) as app, jobctl.using(app):
            PacedTally.perform_later(0.0)
    except ValueError as exc:
        return f"ValueError: {exc}"
    return "ok"


@pytest.fixture(scope="module")
def failover(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Failover]:
    root = Path(tempfile.mkdtemp(prefix="jobctl-test-failover-"))  # not under basetemp: the postgres user reads it
    os.chmod(root, 0o755)
    primary, replica = Cluster(root / "primary"), Cluster(root / "replica")
    try:
        primary.start()
        replica.replicate(primary)
        replica.start()
        yield run_failover(primary, replica, tmp_path_factory.mktemp("failover"))
    finally:
        jobctl.configure(database_url=None)
        replica.destroy()
        primary.destroy()
        shutil.rmtree(root, ignore_errors=True)


def run_failover(primary: Cluster, replica: Cluster, tmp: Path) -> Failover:
    app_name = f"jobctl_{uuid.uuid4().hex[:10]}"
    url = (f"postgresql://postgres@127.0.0.1:{primary.port},127.0.0.1:{replica.port}/postgres"
           f"?target_session_attrs=read-write&application_name={app_name}")
    migrated = cli("db", "migrate", url=url)
    assert migrated.returncode == 0, migrated.stderr
    jobctl.configure(database_url=url)
    assert jobctl.perform_all_later([PacedTally(0.02) for _ in range(JOBS)]) == JOBS
    using_before = enqueue_using(primary.url)  # this process's store now knows the database's identity
    runs = tmp / "runs"
    runs.mkdir()
    config = write_config(tmp / "queue.yml", alive_threshold=60)  # 60 s: the default; 2 × 3 threads: ~10 s
    log = tmp / "log"
    proc = subprocess.Popen([sys.executable, "-m", "jobctl.cli", "start", "--config", str(config),
                             "--log-format", "json"], cwd=tmp, env={**env_for(url), "JOBCTL_TEST_RUNS_DIR": str(runs)},
                            stdout=open(log, "ab"), stderr=subprocess.STDOUT)
    new = replica.url
    try:
        wait_for(lambda: len(tallied(runs)) >= JOBS // 3, timeout=30, what="a third of the drain")
        stopped_at = time.time()
        primary.stop("immediate")
        replica.promote()
        promoted_at = time.time()
        using_after = enqueue_using(new)
        first = wait_for(lambda: scalar(new, "SELECT extract(epoch FROM min(finished_at)) FROM jobctl_jobs "
                                             "WHERE finished_at >= to_timestamp(?)", (promoted_at,)),
                         timeout=30, what="a job finished on the new primary")
        total = JOBS + 1 + (using_after == "ok")
        wait_for(lambda: scalar(new, "SELECT count(*) FROM jobctl_jobs WHERE state = 'finished'") == total,
                 timeout=45, what="every job on the new primary")
        connections = int(scalar(new, "SELECT count(*) FROM pg_stat_activity WHERE application_name = ?",
                                 (app_name,)))
        stats = cli("stats", "--json", url=url)
        assert proc.poll() is None, log.read_text()[-3000:]
    finally:
        code = stop(proc)
    ran: dict[int, list[float]] = {}
    for job, at in tallied(runs):
        ran.setdefault(job, []).append(at)
    result = Failover(
        resumed=float(first) - promoted_at, promotion=promoted_at - stopped_at,
        ids={int(r[0]) for r in query(new, "SELECT id FROM jobctl_jobs")},
        states=dict(Counter(r[0] for r in query(new, "SELECT state FROM jobctl_jobs"))), ran=ran,
        stopped_at=stopped_at, using_before=using_before, using_after=using_after, connections=connections,
        stats=stats, code=code, log=log.read_text())
    twice = [job for job, at in ran.items() if len(at) > 1]
    print(f"\nfailover: promoted {result.promotion:.2f}s after the primary stopped, jobs finished on it "
          f"{result.resumed:.2f}s later; {len(ran)} of {len(result.ids)} jobs ran, "
          f"lost {len(result.ids - set(ran))}, ran twice {len(twice)}, states {result.states}, "
          f"{connections} connections on the new primary; using() before: {using_before}, after: {using_after}")
    return result


def test_jobctl_resumes_on_the_new_primary(failover: Failover) -> None:
    assert failover.code == 0, failover.log[-3000:]
    assert "Traceback" not in failover.log and "died" not in failover.log, failover.log[-3000:]
    assert failover.resumed < 15
    assert failover.connections <= 5


def test_nothing_is_lost_nothing_left_claimed_only_jobs_in_flight_ran_twice(failover: Failover) -> None:
    assert failover.states == {"finished": len(failover.ids)}
    assert set(failover.ran) == failover.ids
    twice = {job: at for job, at in failover.ran.items() if len(at) > 1}
    assert all(min(at) >= failover.stopped_at - IN_FLIGHT_S for at in twice.values()), twice


def test_using_accepts_the_new_primarys_connections(failover: Failover) -> None:
    assert failover.using_before == "ok"
    assert failover.using_after == "ok"


def test_stats_work_on_the_multi_host_url_after_failover(failover: Failover) -> None:
    assert failover.stats.returncode == 0, failover.stats.stderr
    assert json.loads(failover.stats.stdout)["states"]["finished"] == len(failover.ids)
