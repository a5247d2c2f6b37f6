"""A dead network link (SPEC 14): `jobctl start` runs on a second host (a network namespace) and the link
to its database goes silently dead for 25 s. It must say so within 15 s (keepalives and tcp_user_timeout,
not the kernel's two hours), live through it, reconnect by itself when the link returns, and finish every
job exactly once."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

import jobctl
from jobctl import urls
from jobctl.store import open_store
from tests.netns import Link, unavailable
from tests.pgcluster import Cluster
from tests.pooler_jobs import SlowTally
from tests.runtime_helpers import env_for, log_events, query, scalar, stop, tallied, wait_for, write_config

pytestmark = [pytest.mark.slow, pytest.mark.skipif(unavailable() is not None, reason=str(unavailable()))]

OUTAGE_S = 25.0
JOBS = 800
LABEL = re.compile(r"^(.*?\(pid \d+\))")


@dataclass(frozen=True)
class Outage:
    """What one run of the scenario measured."""

    noticed: float
    """Seconds from the link going down to the first database_unavailable line."""
    first_error: dict[str, float]
    """Per process (its log label), seconds from the link going down to its first database_unavailable line."""
    reconnected: float
    """Seconds from the link coming back to the last process saying the database works again."""
    lines: Counter[str]
    """database_unavailable lines per process during the outage."""
    lost: int
    twice: int
    claimed: int
    code: int
    """`jobctl start`'s exit status after SIGTERM."""
    log: str


def outages(log: Path) -> tuple[dict[str, float], dict[str, float], Counter[str]]:
    """Per process (its log label): when it first said the database is unavailable, when it last said it
    works again, and how many times it said the former."""
    down: dict[str, float] = {}
    up: dict[str, float] = {}
    lines: Counter[str] = Counter()
    for event in log_events(log):
        label = m.group(1) if (m := LABEL.match(event["message"])) else event["message"]
        if event["event"] == "database_unavailable":
            down.setdefault(label, event["at"])
            lines[label] += 1
        elif event["event"] == "database_available":
            up[label] = event["at"]
    return down, up, lines


@pytest.fixture(scope="module")
def outage(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Outage]:
    """The scenario, run once: a namespace joined to us by a veth pair, a PostgreSQL of its own listening on
    our end of it too, `jobctl start` in the namespace draining jobs, the link down for 25 s, then up."""
    try:
        link = Link().create()
    except RuntimeError as exc:
        pytest.skip(f"cannot create a network namespace here: {exc}")
    root = Path(tempfile.mkdtemp(prefix="jobctl-test-link-"))  # not under basetemp: the postgres user reads it
    os.chmod(root, 0o755)
    cluster = Cluster(root / "cluster", listen=("127.0.0.1", link.outer), trust=(f"{link.inner}/32",))
    try:
        cluster.start()
        yield run_outage(link, cluster, tmp_path_factory.mktemp("dead-link"))
    finally:
        jobctl.configure(database_url=None)
        cluster.destroy()
        shutil.rmtree(root, ignore_errors=True)
        link.destroy()


def run_outage(link: Link, cluster: Cluster, tmp: Path) -> Outage:
    local = cluster.url  # ours, over loopback: the test's reads never cross the link
    store = open_store(urls.parse(local))
    store.migrate()
    store.close()
    jobctl.configure(database_url=local)
    assert jobctl.perform_all_later([SlowTally() for _ in range(JOBS)]) == JOBS
    runs = tmp / "runs"
    runs.mkdir()
    config = write_config(tmp / "queue.yml", alive_threshold=60)  # 60 s: the default
    log = tmp / "log"
    env = {**env_for(cluster.url_at(link.outer)), "JOBCTL_TEST_RUNS_DIR": str(runs)}
    proc = subprocess.Popen([*link.prefix(), sys.executable, "-m", "jobctl.cli", "start", "--config", str(config),
                             "--log-format", "json"], cwd=tmp, env=env, stdout=open(log, "ab"),
                            stderr=subprocess.STDOUT)
    try:
        wait_for(lambda: len(tallied(runs)) >= 100, timeout=30, what="the drain to start across the link")
        assert not outages(log)[0], log.read_text()[-3000:]
        link.down()
        cut = time.time()
        first = wait_for(lambda: min(outages(log)[0].values(), default=None), timeout=15,
                         what="a database_unavailable line after the link went down")
        time.sleep(max(0.0, cut + OUTAGE_S - time.time()))  # the outage itself
        assert proc.poll() is None, log.read_text()[-3000:]
        down, _, lines = outages(log)
        link.up()
        restored = time.time()
        # Every process that saw the outage says it is over, by itself.
        wait_for(lambda: set(down) <= set(outages(log)[1]), timeout=30,
                 what=f"'database works again' from each of {sorted(down)}")
        up = outages(log)[1]
        wait_for(lambda: scalar(local, "SELECT count(*) FROM jobctl_jobs WHERE state = 'finished'") == JOBS,
                 timeout=45, what="every job, once the link is back")
        assert proc.poll() is None, log.read_text()[-3000:]
    finally:
        link.up()  # harmless when up; a stop across a dead link would only wait for it
        code = stop(proc)
    ran = Counter(job for job, _ in tallied(runs))
    ids = {int(r[0]) for r in query(local, "SELECT id FROM jobctl_jobs")}
    result = Outage(
        noticed=first - cut, first_error={k: v - cut for k, v in down.items()},
        reconnected=max(up[label] for label in down) - restored, lines=lines,
        lost=len(ids - set(ran)), twice=sum(1 for n in ran.values() if n > 1),
        claimed=int(scalar(local, "SELECT count(*) FROM jobctl_jobs WHERE state = 'claimed'")), code=code,
        log=log.read_text())
    print(f"\ndead link: first error {result.noticed:.1f}s after the link went down "
          f"({', '.join(f'{k} {v:.1f}s' for k, v in sorted(result.first_error.items()))}); "
          f"all reconnected {result.reconnected:.2f}s after it came back; lost {result.lost}, "
          f"ran twice {result.twice}, left claimed {result.claimed}; "
          f"database_unavailable lines {dict(sorted(lines.items()))}")
    return result


def test_a_dead_link_is_an_error_within_15_s(outage: Outage) -> None:
    assert outage.noticed < 15, outage.first_error
    assert len(outage.first_error) >= 3, outage.first_error  # the supervisor and its busy children all noticed


def test_jobctl_lives_through_it_reconnects_and_runs_every_job_once(outage: Outage) -> None:
    assert outage.code == 0, outage.log[-3000:]
    assert "Traceback" not in outage.log and "died" not in outage.log, outage.log[-3000:]
    assert outage.reconnected < 15
    assert (outage.lost, outage.twice, outage.claimed) == (0, 0, 0)


def test_one_log_line_per_process_and_outage(outage: Outage) -> None:
    # One when the outage starts; one more is fair when the error changes (a lost link, then failed connects).
    assert max(outage.lines.values()) <= 2, outage.lines
