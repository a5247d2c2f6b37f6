"""Production topology on PostgreSQL (SPEC 14) with real processes: the supervisor's relayed LISTEN, the
connections a host holds, two supervisors sharing a hostname, and a database that turns read-only."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

import jobctl
from jobctl import urls
from tests import runtime_jobs as rj
from tests.pooler_jobs import SlowTally
from tests.runtime_helpers import children_of, connection, env_for, query, stop, wait_for, write_config

pytestmark = pytest.mark.slow


@pytest.fixture
def app_url(pg_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The test database, with an application_name that tells its connections apart from everyone else's."""
    url = f"{pg_url}&application_name=jobctl_{uuid.uuid4().hex[:10]}"
    from jobctl.store import open_store

    store = open_store(urls.parse(url))
    store.migrate()
    store.close()
    with connection(url) as conn:
        conn.execute(rj.RUNS_DDL["postgresql"])
    jobctl.configure(database_url=url)
    monkeypatch.setenv("JOBCTL_TEST_RECORD_URL", pg_url)  # the jobs' own writes are not jobctl's connections
    yield url
    jobctl.configure(database_url=None)


def launch(url: str, config: Path, log: Path, *prefix: str, extra_env: dict[str, str] | None = None
           ) -> subprocess.Popen[bytes]:
    env = {**env_for(url), **(extra_env or {})}
    if "JOBCTL_TEST_RECORD_URL" in os.environ:
        env["JOBCTL_TEST_RECORD_URL"] = os.environ["JOBCTL_TEST_RECORD_URL"]
    return subprocess.Popen([*prefix, sys.executable, "-m", "jobctl.cli", "start", "--config", str(config)],
                            cwd=config.parent, env=env, stdout=open(log, "ab"), stderr=subprocess.STDOUT)


def connections(url: str, server: str) -> int:
    name = dict(p.split("=", 1) for p in url.split("?", 1)[1].split("&"))["application_name"]
    with psycopg.connect(server, autocommit=True) as admin:
        row = admin.execute("SELECT count(*) FROM pg_stat_activity WHERE application_name = %s", (name,)).fetchone()
    return int(row[0]) if row else 0


def processes(url: str) -> list[tuple[str, str | None]]:
    return [(r[0], r[1]) for r in query(url, "SELECT kind, wakeup FROM jobctl_processes ORDER BY id")]


def ran(url: str) -> Counter[int]:
    return Counter(r[0] for r in query(url, "SELECT job_id FROM test_runs"))


def test_workers_wake_by_the_supervisors_relay_and_a_host_holds_five_connections(
        app_url: str, pg_server: str, tmp_path: Path) -> None:
    config = write_config(tmp_path / "queue.yml", alive_threshold=30)
    # A fallback poll this slow would make any pickup by polling obvious.
    config.write_text(config.read_text().replace("polling_interval: 0.05", "polling_interval: 0.05\n"
                                                 "    fallback_polling_interval: 60"))
    (tmp_path / "recurring.yml").write_text("tick:\n  class: tests.runtime_jobs:Record\n  args: [tick]\n"
                                            "  schedule: every second\n")
    log = tmp_path / "log"
    proc = launch(app_url, config, log, extra_env={"JOBCTL_RECURRING_SCHEDULE": str(tmp_path / "recurring.yml")})
    try:
        wait_for(lambda: len(processes(app_url)) == 5, what="supervisor, 2 workers, dispatcher and scheduler")
        assert sorted(processes(app_url)) == sorted([("supervisor", "listening"), ("worker", "listening"),
                                                     ("worker", "listening"), ("dispatcher", None),
                                                     ("scheduler", None)])
        # Idle: every new job is picked up by a relayed NOTIFY, far sooner than the 60 s fallback poll.
        for i in range(5):
            handle = rj.Record.perform_later(f"idle {i}")
            wait_for(lambda h=handle: jobctl.get_job(h.id).state == "finished", timeout=10, what="a relayed pickup")
        assert connections(app_url, pg_server) - 1 <= 5  # less the test's own (jobctl.count above)
        # Jobs that report progress and enqueue add at most one connection per worker.
        [rj.ProgressAndEnqueue.perform_later(i) for i in range(6)]
        peak = 0
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and jobctl.count(state="finished") < 5 + 6 + 6:
            peak = max(peak, connections(app_url, pg_server) - 1)
            time.sleep(0.05)
        assert jobctl.count(state="finished") >= 5 + 6 + 6
        assert peak <= 5 + 2, peak
        jobctl.database.get_store().close()
    finally:
        assert stop(proc) == 0, log.read_text()
    text = log.read_text()
    assert "workers listen for new jobs (NOTIFY)" in text


@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("unshare") is None, reason="needs root and unshare(1) "
                    "to run a supervisor in a PID namespace of its own (as a container does)")
def test_two_supervisors_with_one_hostname_never_prune_each_other(app_url: str, tmp_path: Path) -> None:
    config = write_config(tmp_path / "queue.yml", alive_threshold=6, threads=2, processes=1)
    logs = [tmp_path / "a.log", tmp_path / "b.log"]
    a = launch(app_url, config, logs[0])
    b = launch(app_url, config, logs[1], "unshare", "--pid", "--fork", "--mount-proc")
    try:
        wait_for(lambda: [k for k, _ in processes(app_url)].count("supervisor") == 2, what="both supervisors")
        handles = [rj.Record.perform_later(f"r{i}") for i in range(300)]
        wait_for(lambda: jobctl.count(state="finished") == len(handles), timeout=60, what="every job")
        time.sleep(8)  # beyond process_alive_threshold: heartbeats only, no pruning of the live twin
        assert [k for k, _ in processes(app_url)].count("supervisor") == 2
        assert a.poll() is None and b.poll() is None
    finally:
        inner = children_of(b.pid)  # unshare forwards no signals: stop the supervisor it forked
        for pid in inner:
            os.kill(pid, signal.SIGTERM)
        codes = [stop(a), b.wait(30) if inner else stop(b)]
    text = logs[0].read_text() + logs[1].read_text()
    assert codes == [0, 0], text
    assert "pruned" not in text and "died" not in text, text
    assert max(ran(app_url).values()) == 1 and len(ran(app_url)) == 300


def test_a_database_read_only_for_10_s_ends_nothing(app_url: str, pg_server: str, tmp_path: Path) -> None:
    config = write_config(tmp_path / "queue.yml", alive_threshold=60)
    log = tmp_path / "log"
    runs = tmp_path / "runs"
    runs.mkdir()
    handles = [SlowTally.perform_later() for _ in range(200)]  # they write no database of their own
    proc = launch(app_url, config, log, extra_env={"JOBCTL_TEST_RUNS_DIR": str(runs)})

    def read_only(on: bool) -> None:
        with psycopg.connect(pg_server, autocommit=True) as admin:
            admin.execute(f"ALTER SYSTEM SET default_transaction_read_only = {'on' if on else 'off'}")
            admin.execute("SELECT pg_reload_conf()")

    try:
        wait_for(lambda: jobctl.count(state="finished") >= 20, timeout=30, what="the drain to start")
        read_only(True)
        try:
            time.sleep(10)  # the outage itself: what is under test is that nothing ends during it
            assert proc.poll() is None, log.read_text()
        finally:
            read_only(False)
        wait_for(lambda: jobctl.count(state="finished") == len(handles), timeout=90, what="every job, once writable")
        assert proc.poll() is None
    finally:
        code = stop(proc)
    text = log.read_text()
    assert code == 0, text
    assert "read-only" in text and "database works again" in text, text
    tallied = Counter(int(line.split()[0]) for f in runs.iterdir() for line in f.read_text().splitlines())
    # Every job ran once: completions made during the outage waited in the workers' memory.
    assert set(tallied) == {h.id for h in handles} and max(tallied.values()) == 1
    assert jobctl.count(state="claimed") == 0 and jobctl.count(state="failed") == 0
    # One line per process and outage, not one per retry.
    assert text.count("retrying until it works") <= 6, text
