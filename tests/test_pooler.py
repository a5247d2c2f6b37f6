"""jobctl behind a real transaction-pooling PgBouncer (Debian's package; `make test` installs it when it
can): the library, the operator verbs, the monitor's reads and `jobctl start` all work with `pooler:
transaction`, which sends no server-side prepared statements and polls instead of listening."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

import jobctl
from jobctl import urls
from jobctl.store import StoreOptions, open_store
from jobctl.tui.snapshot import fetch
from tests.pgbouncer import BINARY, Bouncer
from tests.pooler_jobs import Tally
from tests.runtime_helpers import ROOT, env_for, stop, wait_for, write_config

pytestmark = pytest.mark.skipif(BINARY is None, reason="pgbouncer is not installed (`apt-get install pgbouncer`; "
                                                       "`make test` installs it when run as root)")
POOLED = StoreOptions(pooler="transaction")


@pytest.fixture(scope="module")
def bouncer(pg_server: str) -> Iterator[Bouncer]:
    # Not under pytest's basetemp (mode 0700): the postgres user runs PgBouncer and must reach its files.
    root = Path(tempfile.mkdtemp(prefix="jobctl-test-pgbouncer-"))
    os.chmod(root, 0o755)
    b = Bouncer(root / "run", pg_server, pool_mode="transaction", pool_size=4).start()
    try:
        yield b
    finally:
        b.stop()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def pooled(pg_server: str, bouncer: Bouncer) -> Iterator[tuple[str, str]]:
    """(direct URL, URL through the pooler) of a fresh, migrated database."""
    name = f"jobctl_pool_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(pg_server, autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name}")
    direct = pg_server.rsplit("/", 1)[0] + f"/{name}"
    store = open_store(urls.parse(direct))
    store.migrate()
    store.close()
    try:
        yield direct, bouncer.url(name)
    finally:
        jobctl.configure(database_url=None)
        with psycopg.connect(pg_server, autocommit=True) as admin:
            admin.execute(f"DROP DATABASE {name} WITH (FORCE)")


def test_without_pooler_mode_prepared_statements_break(pooled: tuple[str, str]) -> None:
    """The control: two clients through one server connection, with psycopg's default prepared statements."""
    _, url = pooled
    a, b = (open_store(urls.parse(url)) for _ in range(2))
    try:
        with pytest.raises(jobctl.DatabaseError, match="prepared statement"):
            for _ in range(12):
                a.count()
                b.count()
    finally:
        a.close()
        b.close()


def test_library_verbs_and_monitor_reads_through_the_pooler(pooled: tuple[str, str], tmp_path: Path) -> None:
    _, url = pooled
    jobctl.configure(database_url=url, pooler="transaction")
    handles = [Tally.perform_later() for _ in range(30)]
    assert jobctl.perform_all_later([Tally() for _ in range(500)]) == 500
    keyed = [Tally.set(key="once").perform_later() for _ in range(10)]
    assert {h.id for h in keyed} == {keyed[0].id} and jobctl.count() == 531
    assert [jobctl.get_job(h.id).state for h in handles[:10]] == ["ready"] * 10
    others = [open_store(urls.parse(url), POOLED) for _ in range(3)]  # more clients than server connections
    try:
        previous = None
        for _ in range(10):
            for s in others:
                previous = fetch(s, previous)
        assert previous is not None and previous.counts.ready == 531
    finally:
        for s in others:
            s.close()
    env = {**env_for(url), "JOBCTL_POOLER": "transaction"}
    for verb in (("stats", "--json"), ("jobs", "--limit", "5"), ("show", str(handles[0].id)), ("pause", "default"),
                 ("resume", "default"), ("discard", str(handles[1].id)), ("processes",), ("recurring",)):
        done = subprocess.run([sys.executable, "-m", "jobctl.cli", *verb], cwd=ROOT, env=env, capture_output=True,
                              text=True, timeout=60)
        assert done.returncode in (0, 1), (verb, done.stderr)
        assert "Traceback" not in done.stderr and "prepared statement" not in done.stderr, (verb, done.stderr)


@pytest.mark.slow
def test_jobctl_start_drains_through_the_pooler(pooled: tuple[str, str], tmp_path: Path) -> None:
    direct, url = pooled
    runs = tmp_path / "runs"
    runs.mkdir()
    n = 20_000
    jobctl.configure(database_url=direct)
    assert jobctl.perform_all_later([Tally() for _ in range(n)]) == n
    config = write_config(tmp_path / "queue.yml", alive_threshold=30, extra="pooler: transaction\n")
    env = {**env_for(url), "JOBCTL_TEST_RUNS_DIR": str(runs)}
    log = tmp_path / "log"
    proc = subprocess.Popen([sys.executable, "-m", "jobctl.cli", "start", "--config", str(config)], cwd=tmp_path,
                            env=env, stdout=open(log, "ab"), stderr=subprocess.STDOUT)
    try:
        wait_for(lambda: proc.poll() is None and jobctl.count(state="finished") == n, timeout=240,
                 what=f"{n} jobs drained through the pooler")
        # Idle now: a new job is picked up by polling, within the polling interval (not the 5 s fallback).
        enqueued = time.time()
        late = Tally.perform_later()
        wait_for(lambda: jobctl.get_job(late.id).state == "finished", timeout=30, what="the late job")
        started = {int(line.split()[0]): float(line.split()[1]) for f in runs.iterdir()
                   for line in f.read_text().splitlines()}
        assert started[late.id] - enqueued < 2.0
        assert proc.poll() is None, log.read_text()
        with psycopg.connect(direct) as conn:
            wakeups = {r[0]: r[1] for r in conn.execute("SELECT kind, wakeup FROM jobctl_processes")}
        assert wakeups["worker"] == "polling" and wakeups["supervisor"] == "polling"
    finally:
        assert stop(proc) == 0, log.read_text()
    text = log.read_text()
    assert "died" not in text and "Traceback" not in text and "prepared statement" not in text, text[-3000:]
    assert "workers poll every 0.05s: behind a transaction pooler (pooler: transaction) without listen_database" \
        in text, text[-3000:]
    ran = Counter(int(line.split()[0]) for f in runs.iterdir() for line in f.read_text().splitlines())
    assert len(ran) == n + 1 and max(ran.values()) == 1  # every job ran, none twice
    assert jobctl.count(state="claimed") == 0
