"""The scheduler in real processes: one enqueue per tick however many run; commands by key."""

from __future__ import annotations

import datetime as dt
import itertools
import json
import signal
import time
from pathlib import Path

import psutil
import pytest

import jobctl
from jobctl.recurring import RecurringCommandJob
from tests import runtime_jobs as rj
from tests.runtime_helpers import cli, connection, query, start, stop, wait_for, write_config

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("configured")]

RECURRING = """\
development:
  tick:
    class: runtime_jobs:Record
    args: ["tick"]
    schedule: every second
  hello:
    command: runtime_jobs:command_task
    args: ["hello"]
    schedule: every 2 seconds
    queue: commands
"""




def test_two_supervisors_enqueue_each_tick_once(configured: str, backend: str, tmp_path: Path) -> None:
    url = configured
    with connection(url) as conn:
        conn.execute(rj.RUNS_DDL[backend])
    config = write_config(tmp_path / "queue.yml", processes=1, threads=2)
    schedule = tmp_path / "recurring.yml"
    schedule.write_text(RECURRING)
    first = start(url, config, "--recurring-schedule-file", str(schedule), log=tmp_path / "log1")
    second = start(url, config, "--recurring-schedule-file", str(schedule), log=tmp_path / "log2")
    try:
        wait_for(lambda: len(query(url, "SELECT pid FROM jobctl_processes WHERE kind = 'scheduler'")) == 2,
                 what="two schedulers")
        began = time.monotonic()
        time.sleep(5)
        # Kill one scheduler mid-run: the other keeps every tick coming.
        [(victim,)] = query(url, "SELECT pid FROM jobctl_processes WHERE kind = 'scheduler' ORDER BY id LIMIT 1")
        psutil.Process(victim).send_signal(signal.SIGKILL)
        time.sleep(max(0.0, 10 - (time.monotonic() - began)))
    finally:
        assert stop(first) == 0
        assert stop(second) == 0
    ticks = [r[0] for r in query(url, "SELECT run_at FROM jobctl_recurring_runs WHERE task_key = 'tick' "
                                      "ORDER BY run_at")]
    if backend == "sqlite":
        ticks = [dt.datetime.fromtimestamp(t, dt.UTC) for t in ticks]
    assert len(ticks) >= 9
    gaps = {(b - a).total_seconds() for a, b in itertools.pairwise(ticks)}
    assert gaps == {1.0}, gaps  # one job per second, no duplicates, no gaps
    jobs = query(url, "SELECT id FROM jobctl_jobs WHERE class = ?", ("runtime_jobs:Record",))
    assert len(jobs) == len(ticks)
    commands = query(url, "SELECT count(*) FROM jobctl_recurring_runs WHERE task_key = 'hello'")[0][0]
    assert commands >= 4
    assert query(url, "SELECT count(*) FROM jobctl_jobs WHERE queue = 'commands' AND state = 'finished'")[0][0] >= 3
    assert query(url, "SELECT count(*) FROM test_runs WHERE tag = 'hello'")[0][0] >= 3

    listed = json.loads(cli("recurring", "--json", url=url).stdout)
    by_key = {t["key"]: t for t in listed}
    assert by_key["tick"]["schedule"] == "every second" and by_key["tick"]["class"] == "runtime_jobs:Record"
    assert by_key["tick"]["args"] == ["tick"] and by_key["tick"]["last_run_at"] and by_key["tick"]["next_run_at"]
    assert by_key["hello"]["command"] == "runtime_jobs:command_task" and by_key["hello"]["class"] is None
    assert by_key["hello"]["cron"] == "*/2 * * * * *"


def test_a_command_job_runs_only_commands_of_the_loaded_config() -> None:
    from jobctl.errors import JobClassError
    from jobctl.recurring import register_tasks

    register_tasks(())
    with pytest.raises(JobClassError, match="is not a command task in this worker's recurring config"):
        RecurringCommandJob.perform_now("os:system")
    assert jobctl.count() == 0
