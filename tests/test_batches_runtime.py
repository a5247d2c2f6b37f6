"""Batches and chains under real `jobctl start` workers: callbacks exactly once under concurrent finishes
and crashes, chains in order, on both backends."""

from __future__ import annotations

import os
import signal
from collections import Counter
from pathlib import Path

import pytest

import jobctl
from tests import batch_jobs as bj
from tests import runtime_jobs as rj
from tests.runtime_helpers import connection, query, scalar, start, stop, wait_for, write_config

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("configured")]


@pytest.fixture
def runs_table(configured: str, backend: str) -> str:
    with connection(configured) as conn:
        conn.execute(rj.RUNS_DDL[backend])
    return configured


def callback_runs(url: str) -> Counter[str]:
    """How many times each callback ran, by `event:batch`."""
    return Counter(":".join(r[0].split(":")[:2]) for r in query(url, "SELECT tag FROM test_runs")
                   if r[0].split(":")[0] in ("success", "failure", "finish"))


def test_concurrent_finishes_from_two_processes_enqueue_each_callback_once(runs_table: str, tmp_path: Path) -> None:
    url = runs_table
    batches = []
    for n in range(4):  # interleaved members of several batches, finishing side by side in 10 threads
        with jobctl.batch(**bj.callbacks(), description=f"b{n}") as b:
            jobctl.perform_all_later([bj.Part(f"b{n}.{i}", fail=(n == 1 and i == 7)) for i in range(150)])
            bj.FlakyPart.perform_later(f"flaky{n}")
            bj.Part.perform_later(f"spawner{n}", spawn=5)
        batches.append(b.id)
    proc = start(url, write_config(tmp_path / "queue.yml", processes=2, threads=5), log=tmp_path / "log")
    try:
        wait_for(lambda: all(jobctl.get_batch(b).state in ("finished", "failed") for b in batches), timeout=120,
                 what="every batch to end")
        wait_for(lambda: sum(callback_runs(url).values()) == 8, timeout=60, what="the callbacks to run")
    finally:
        assert stop(proc) == 0
    ok = [b for i, b in enumerate(batches) if i != 1]
    expected = Counter({f"{e}:{b}": 1 for b in ok for e in ("success", "finish")})
    expected.update({f"failure:{batches[1]}": 1, f"finish:{batches[1]}": 1})
    assert callback_runs(url) == expected
    assert scalar(url, "SELECT count(*) FROM jobctl_jobs WHERE class LIKE ?", ("%Callback",)) == 8  # none queued twice
    for b in batches:
        info = jobctl.get_batch(b)
        assert (info.total, info.finished + info.failed, info.pending) == (157, 157, 0)
    assert len({r[0] for r in query(url, "SELECT DISTINCT pid FROM test_runs")}) >= 2  # both processes took part


def test_kill_9_mid_job_reruns_the_member_and_the_batch_still_succeeds_once(runs_table: str, tmp_path: Path) -> None:
    url = runs_table
    release = tmp_path / "release"
    with jobctl.batch(**bj.callbacks()) as b:
        victim_job = bj.WaitingPart.perform_later(str(release))
        jobctl.perform_all_later([bj.Part(f"m{i}") for i in range(20)])
    proc = start(url, write_config(tmp_path / "queue.yml", processes=2), log=tmp_path / "log")
    try:
        victim = wait_for(lambda: [r[0] for r in query(url, "SELECT pid FROM test_runs WHERE tag = 'waiting'")],
                          what="the member to start")[-1]
        os.kill(victim, signal.SIGKILL)
        wait_for(lambda: len(query(url, "SELECT 1 FROM test_runs WHERE tag = 'waiting'")) == 2, timeout=30,
                 what="the member to run again")
        assert jobctl.get_batch(b.id).state == "running"  # a crash re-run ends nothing
        release.touch()
        wait_for(lambda: sum(callback_runs(url).values()) == 2, timeout=30, what="the callbacks")
    finally:
        assert stop(proc) == 0
    assert callback_runs(url) == Counter({f"success:{b.id}": 1, f"finish:{b.id}": 1})
    assert scalar(url, "SELECT count(*) FROM jobctl_jobs WHERE class LIKE ?", ("%Callback",)) == 2
    info = jobctl.get_job(victim_job.id)
    assert (info.state, info.crashes, info.batch_id) == ("finished", 1, b.id)


def test_a_chain_of_three_runs_in_order_under_workers(runs_table: str, tmp_path: Path) -> None:
    url = runs_table
    handles = jobctl.chain(bj.Part("one"), jobctl.group([bj.Part("two-a"), bj.Part("two-b")]),
                           bj.Part("three")).perform_later()
    proc = start(url, write_config(tmp_path / "queue.yml", processes=2, threads=3), log=tmp_path / "log")
    try:
        wait_for(lambda: handles[-1].state == "finished", timeout=30, what="the chain to finish")
    finally:
        assert stop(proc) == 0
    runs = dict(query(url, "SELECT tag, started FROM test_runs"))
    assert runs["one"] <= min(runs["two-a"], runs["two-b"]) <= max(runs["two-a"], runs["two-b"]) <= runs["three"]
