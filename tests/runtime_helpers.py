"""Running `jobctl start` as a real process and reading the database while it works."""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import psycopg

from jobctl import urls

ROOT = Path(__file__).resolve().parent.parent
T = TypeVar("T")

FAST_CONFIG = """\
shutdown_timeout: {shutdown_timeout}
process_heartbeat_interval: 1
process_alive_threshold: {alive_threshold}
max_crashes: {max_crashes}
dispatchers:
  - polling_interval: 0.1
    batch_size: 100
workers:
  - queues: "{queues}"
    threads: {threads}
    processes: {processes}
    polling_interval: 0.05
"""


def write_config(path: Path, *, threads: int = 3, processes: int = 2, queues: str = "*", max_crashes: int = 2,
                 shutdown_timeout: float = 3, alive_threshold: float = 4, extra: str = "") -> Path:
    """A queue.yml with short intervals, for tests."""
    path.write_text(FAST_CONFIG.format(threads=threads, processes=processes, queues=queues, max_crashes=max_crashes,
                                       shutdown_timeout=shutdown_timeout, alive_threshold=alive_threshold) + extra)
    return path


def env_for(url: str) -> dict[str, str]:
    """The environment a runtime process gets: the test database, tests importable."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JOBCTL_", "DATABASE_URL"))}
    env["JOBCTL_DATABASE_URL"] = url
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "tests"), str(ROOT)])
    return env


def start(url: str, config: Path, *args: str, log: Path | None = None) -> subprocess.Popen[bytes]:
    """`jobctl start` in the background."""
    out = open(log, "ab") if log else subprocess.DEVNULL
    return subprocess.Popen([sys.executable, "-m", "jobctl.cli", "start", "--config", str(config), *args],
                            cwd=config.parent, env=env_for(url), stdout=out, stderr=subprocess.STDOUT)


def wait_for(check: Callable[[], T], timeout: float = 30, what: str = "condition") -> T:
    """Poll `check` until it returns something truthy, or fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {value!r})")
        time.sleep(0.05)


@contextmanager
def connection(url: str) -> Iterator[Any]:
    """A raw autocommit connection to the test database."""
    parsed = urls.parse(url)
    if parsed.backend == "postgresql":
        conn: Any = psycopg.connect(parsed.target, autocommit=True)
    else:
        conn = sqlite3.connect(parsed.target, timeout=30, isolation_level=None)
    try:
        yield conn
    finally:
        conn.close()


def query(url: str, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Rows of one query (`?` placeholders work on both backends)."""
    with connection(url) as conn:
        if isinstance(conn, psycopg.Connection):
            sql = sql.replace("?", "%s")
        return list(conn.execute(sql, params).fetchall())


def scalar(url: str, sql: str, params: tuple[Any, ...] = ()) -> Any:
    """The single value of a query."""
    return query(url, sql, params)[0][0]


def stop(proc: subprocess.Popen[bytes], sig: int = signal.SIGTERM, timeout: float = 30) -> int:
    """Signal `jobctl start` and wait for it to exit."""
    if proc.poll() is None:
        proc.send_signal(sig)
    return proc.wait(timeout)


def children_of(pid: int) -> list[int]:
    """Pids of a process's direct children."""
    import psutil

    try:
        return [c.pid for c in psutil.Process(pid).children()]
    except psutil.NoSuchProcess:
        return []


def cli(*args: str, url: str | None = None, cwd: Path = ROOT, stdin: str | None = None,
        env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run `jobctl ARGS` as a user would (no terminal on stdin), against `url` when given."""
    full_env = env_for(url) if url else {k: v for k, v in os.environ.items()
                                         if not k.startswith(("JOBCTL_", "DATABASE_URL"))}
    full_env.update(env or {})
    return subprocess.run([sys.executable, "-m", "jobctl.cli", *args], cwd=cwd, env=full_env, input=stdin,
                          capture_output=True, text=True, timeout=60)


def fail_jobs(queue: str, n: int, *, attempts: int = 1, error: str = "ValueError",
              message: str = "bad input") -> list[int]:
    """Enqueue `n` jobs on `queue` and fail them through the runtime's own statements: `attempts - 1`
    retried runs (errors "try N"), then a final `error: message JOB_ID` with a traceback."""
    from jobctl import database
    from jobctl.records import RunError, Selector
    from tests.jobs_for_tests import Echo

    handles = [Echo.set(queue=queue).perform_later(i) for i in range(n)]
    session = database.get_store().session()
    token = random.getrandbits(60) + 1
    try:
        claimed = session.claim(Selector("queue", queue), n, token=token, process_id=1)
        assert len(claimed) == n
        for job in claimed:
            for attempt in range(1, attempts):
                session.retry(job.id, token=token, process_id=1, delay=0, queue=None, priority=None,
                              error=RunError("ConnectionError", f"try {attempt}", "Traceback: try"))
                assert session.claim(Selector("queue", queue), 1, token=token, process_id=1)
            session.end(job.id, token=token, process_id=1, state="failed",
                        error=RunError(error, f"{message} {job.id}", "Traceback (most recent call last):\n  boom"))
    finally:
        session.close()
    return [h.id for h in handles]


def log_events(log: Path) -> list[dict[str, Any]]:
    """The lines of a `jobctl start --log-format json` log, parsed (other lines, such as a traceback, skipped);
    each has `at`, its time as a Unix timestamp."""
    import datetime as dt
    import json

    events = []
    for line in log.read_text(errors="replace").splitlines():
        try:
            event = json.loads(line)
        except ValueError:
            continue
        if isinstance(event, dict) and "ts" in event:
            event["at"] = dt.datetime.fromisoformat(event["ts"]).timestamp()
            events.append(event)
    return events


def tallied(runs: Path) -> list[tuple[int, float]]:
    """(job id, when it ran) for every run that `tests.pooler_jobs.Tally` jobs recorded under `runs`."""
    return [(int(job), float(at)) for f in runs.iterdir() for job, at in
            (line.split() for line in f.read_text().splitlines() if line.strip())]
