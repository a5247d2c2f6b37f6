"""Concurrency limits under real workers: never over the limit, nothing lost, dead holders free slots."""

from __future__ import annotations

import os
import random
import signal
from collections import defaultdict
from pathlib import Path

import pytest

import jobctl
from tests import runtime_jobs as rj
from tests.runtime_helpers import connection, query, start, stop, wait_for, write_config

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("configured")]


def max_overlap(intervals: list[tuple[float, float]]) -> int:
    events = sorted([(s, 1) for s, _ in intervals] + [(e, -1) for _, e in intervals])
    running = peak = 0
    for _, delta in events:  # an end sorts before a start at the same instant
        running += delta
        peak = max(peak, running)
    return peak


def test_never_more_than_two_per_key(configured: str, backend: str, tmp_path: Path) -> None:
    url = configured
    with connection(url) as conn:
        conn.execute(rj.RUNS_DDL[backend])
    rng = random.Random(7)
    jobs = [rj.Limited(f"k{i % 5}", rng.uniform(0.005, 0.03)) for i in range(200)]
    assert jobctl.perform_all_later(jobs) == 200
    assert jobctl.count(state="ready") == 10 and jobctl.count(state="blocked") == 190
    proc = start(url, write_config(tmp_path / "queue.yml", processes=2, threads=5), log=tmp_path / "log")
    try:
        wait_for(lambda: jobctl.count(state="finished") == 200, timeout=120, what="200 limited jobs")
    finally:
        assert stop(proc) == 0
    runs = query(url, "SELECT tag, started, ended, job_id FROM test_runs")
    assert len({r[3] for r in runs}) == 200 and len(runs) == 200  # each ran exactly once
    by_key: dict[str, list[tuple[float, float]]] = defaultdict(list)
    for tag, started, ended, _ in runs:
        by_key[tag].append((started, ended))
    peaks = {key: max_overlap(iv) for key, iv in by_key.items()}
    assert set(peaks) == {f"k{i}" for i in range(5)}
    assert max(peaks.values()) <= 2, peaks
    assert max(peaks.values()) == 2  # the limit was reached, not just respected by accident
    assert query(url, "SELECT count(*) FROM jobctl_slots WHERE job_id IS NOT NULL")[0][0] == 0


def test_kill_9_of_a_slot_holder_frees_the_slot(configured: str, backend: str, tmp_path: Path) -> None:
    url = configured
    with connection(url) as conn:
        conn.execute(rj.RUNS_DDL[backend])
    holder = rj.LimitedWait.perform_later(str(tmp_path / "never"))
    waiting = [rj.LimitedWait.perform_later() for _ in range(3)]
    assert [w.state for w in waiting] == ["blocked"] * 3
    proc = start(url, write_config(tmp_path / "queue.yml", processes=1, threads=2, max_crashes=1),
                 log=tmp_path / "log")
    try:
        pid = wait_for(lambda: query(url, "SELECT pid FROM test_runs WHERE tag = 'limited-start'"),
                       what="the holder to start")[0][0]
        os.kill(pid, signal.SIGKILL)
        wait_for(lambda: holder.state == "failed", what="the holder to fail after its crash")
        wait_for(lambda: all(w.state == "finished" for w in waiting), timeout=30, what="the blocked jobs")
    finally:
        assert stop(proc) == 0
    assert "SIGKILL (signal 9)" in jobctl.get_job(holder.id).errors[0].message
    done = query(url, "SELECT started, ended FROM test_runs WHERE tag = 'limited'")
    assert len(done) == 3 and max_overlap(done) == 1
