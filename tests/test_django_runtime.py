"""`python manage.py jobctl start` of the test project, with real worker processes and signals, on SQLite and
PostgreSQL: tasks enqueued by Django here, run there on jobctl's database taken from DATABASES."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.django_helpers import bound, fresh_alias  # isort: skip (sets Django up)

from jobctl.contrib.django.compat import TaskResultStatus, task_backends
from tests.djangoproj.djapp import tasks as test_tasks
from tests.djangoproj.djapp.models import Event
from tests.runtime_helpers import ROOT, env_for, stop, wait_for, write_config

pytestmark = pytest.mark.slow
MANAGE = ROOT / "tests" / "djangoproj" / "manage.py"


@pytest.fixture
def alias(backend: str, database_url: str) -> Iterator[str]:
    yield from fresh_alias(backend, database_url)


def project_env(url: str) -> dict[str, str]:
    """The test project's environment: its one database is `url`; jobctl learns it from DATABASES only."""
    env = env_for(url)
    del env["JOBCTL_DATABASE_URL"]
    env.update(JOBCTL_TEST_DJANGO_URL=url, DJANGO_SETTINGS_MODULE="tests.djangoproj.settings")
    return env


def manage(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(MANAGE), "jobctl", *args], cwd=ROOT, env=project_env(url),
                          capture_output=True, text=True, timeout=60)


def start(url: str, config: Path, log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, str(MANAGE), "jobctl", "start", "--config", str(config)],
                            cwd=config.parent, env=project_env(url), stdout=open(log, "ab"), stderr=subprocess.STDOUT)


def events(alias: str) -> list[tuple[str, int]]:
    return list(Event.objects.using(alias).order_by("id").values_list("name", "pid"))


def result(alias: str, result_id: str) -> Any:
    return task_backends[alias].get_result(result_id)


def test_two_workers_run_tasks_in_priority_order_with_results_retries_and_failures(
        alias: str, database_url: str, tmp_path: Path) -> None:
    ordered = [bound(test_tasks.record, alias).using(priority=p).enqueue(f"p{p}") for p in (-50, 50, 0)]
    flaky = bound(test_tasks.flaky, alias).enqueue()
    failing = bound(test_tasks.failing_task_value_error, alias).enqueue()
    # One worker, one thread first: the order is the priority order (Django's higher first).
    proc = start(database_url, write_config(tmp_path / "one.yml", processes=1, threads=1), tmp_path / "log")
    try:
        wait_for(lambda: all(result(alias, r.id).is_finished for r in [*ordered, flaky, failing]), timeout=60,
                 what="the first tasks to end")
    finally:
        assert stop(proc) == 0
    assert [name for name, _ in events(alias) if name.startswith("p")] == ["p50", "p0", "p-50"]
    assert [result(alias, r.id).return_value for r in ordered] == ["p-50", "p50", "p0"]
    done = result(alias, flaky.id)
    assert (done.status, done.return_value, done.attempts) == (TaskResultStatus.SUCCESSFUL, 3, 3)
    assert [e.exception_class for e in done.errors] == [ConnectionError, ConnectionError]
    failed = result(alias, failing.id)
    assert failed.status == TaskResultStatus.FAILED and failed.errors[0].exception_class is ValueError
    assert "This task failed due to ValueError" in failed.errors[0].traceback

    # Two worker processes share slow tasks.
    slow = [bound(test_tasks.sleep_then_record, alias).enqueue(f"s{i}", 0.3) for i in range(6)]
    proc = start(database_url, write_config(tmp_path / "two.yml", processes=2, threads=1), tmp_path / "log")
    try:
        wait_for(lambda: all(result(alias, r.id).status == TaskResultStatus.SUCCESSFUL for r in slow), timeout=60,
                 what="the slow tasks to finish")
    finally:
        assert stop(proc) == 0
    assert len({pid for name, pid in events(alias) if name.startswith("end s")}) == 2
    log = (tmp_path / "log").read_text()
    assert "tests.djangoproj.djapp.tasks:sleep_then_record" in log  # the task, not an adapter class
    listed = manage(database_url, "jobs", "--json", "--class", "tests.djangoproj.djapp.tasks.sleep_then_record")
    assert listed.returncode == 0, listed.stderr
    assert {j["class"] for j in json.loads(listed.stdout)} == {"tests.djangoproj.djapp.tasks:sleep_then_record"}
    assert len(json.loads(listed.stdout)) == 6


def _started(alias: str, name: str) -> int:
    return next((pid for n, pid in events(alias) if n == f"start {name}"), 0)


def test_sigterm_of_a_worker_mid_task_lets_it_finish(alias: str, database_url: str, tmp_path: Path) -> None:
    release = tmp_path / "release"
    running = bound(test_tasks.wait_for_file, alias).enqueue("t", str(release))
    proc = start(database_url, write_config(tmp_path / "queue.yml", processes=1, threads=1, shutdown_timeout=20),
                 tmp_path / "log")
    try:
        worker = wait_for(lambda: _started(alias, "t"), what="the task to start")
        os.kill(worker, signal.SIGTERM)
        release.touch()
        wait_for(lambda: result(alias, running.id).is_finished, timeout=30, what="the task to end")
    finally:
        assert stop(proc) == 0
    done = result(alias, running.id)
    assert (done.status, done.return_value, done.attempts, done.errors) == (TaskResultStatus.SUCCESSFUL, "t", 1, [])
    assert [name for name, _ in events(alias)] == ["start t", "end t"]


def test_kill_9_of_a_worker_mid_task_runs_it_again(alias: str, database_url: str, tmp_path: Path) -> None:
    release = tmp_path / "release"
    running = bound(test_tasks.wait_for_file, alias).enqueue("k", str(release))
    proc = start(database_url, write_config(tmp_path / "queue.yml", processes=1, threads=1), tmp_path / "log")
    try:
        victim = wait_for(lambda: _started(alias, "k"), what="the task to start")
        os.kill(victim, signal.SIGKILL)
        wait_for(lambda: len([n for n, _ in events(alias) if n == "start k"]) == 2, timeout=30,
                 what="the task to run again")
        release.touch()
        wait_for(lambda: result(alias, running.id).is_finished, timeout=30, what="the task to end")
    finally:
        assert stop(proc) == 0
    done = result(alias, running.id)
    assert (done.status, done.return_value, done.attempts) == (TaskResultStatus.SUCCESSFUL, "k", 2)
    [crash] = done.errors
    assert crash.exception_class_path == "jobctl.WorkerCrashed" and "SIGKILL (signal 9)" in crash.traceback
    assert {pid for n, pid in events(alias) if n == "start k"} - {victim}  # a new worker process ran it


def test_every_verb_runs_through_manage_py(alias: str, database_url: str) -> None:
    bound(test_tasks.noop_task, alias).enqueue()
    stats = manage(database_url, "stats", "--json")
    assert stats.returncode == 0, stats.stderr
    assert json.loads(stats.stdout)["states"]["ready"] == 1  # the database of DATABASES, not jobctl's default
    helped = manage(database_url, "--help")
    assert helped.returncode == 0 and all(v in helped.stdout for v in ("start", "stats", "top", "jobs", "db"))
    bad = manage(database_url, "bogus")
    assert bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1
    checked = manage(database_url, "db", "migrate")
    assert checked.returncode == 0, checked.stderr
