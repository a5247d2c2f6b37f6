"""jobctl's own trials: enqueue, drain by `jobctl start` (PostgreSQL and SQLite), pickup latency, idle cost.

Every drain runs the real runtime, `jobctl start --skip-recurring --log-level warning`, with no
config file (the built-in defaults: 2 worker processes x 3 threads, 1 dispatcher), in an empty
temp directory, and reads its rate from the database's own timestamps.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import psutil
import psycopg

import jobctl
from bench.common import ROOT, log, percentile
from bench.jobs import Noop, Stamp

START_ARGS = ["start", "--skip-recurring", "--log-level", "warning"]
# Idle measurements start this long after start-up: a backend that went idle within 1 s of its last
# statistics flush reports its last transactions only 10 s later (PGSTAT_IDLE_INTERVAL), so start-up
# statements would otherwise land in the window.
IDLE_WARMUP_S = float(os.environ.get("BENCH_IDLE_WARMUP_S", 12))


def jobctl_env(url: str) -> dict[str, str]:
    """The environment of a `jobctl` process: this database, `bench.jobs` importable, nothing else of ours."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JOBCTL_", "DATABASE_URL", "BENCH_"))}
    env["JOBCTL_DATABASE_URL"] = url
    env["PYTHONPATH"] = str(ROOT)
    return env


def cli(url: str, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run one `jobctl` command (with the bench venv's python) in an empty directory."""
    with tempfile.TemporaryDirectory(prefix="jobctl-bench-cli-") as cwd:
        return subprocess.run([sys.executable, "-m", "jobctl.cli", *args], cwd=cwd, env=jobctl_env(url),
                              capture_output=True, text=True, timeout=timeout)


def migrate(url: str) -> None:
    done = cli(url, "db", "migrate")
    if done.returncode != 0:
        raise RuntimeError(f"jobctl db migrate failed: {done.stderr.strip()}")


# Only the worker group of the defaults (2 processes x 3 threads), no dispatcher: isolates what
# idle worker processes cost the database.
WORKERS_ONLY = """\
workers:
  - queues: "*"
    threads: 3
    processes: 2
"""


@contextlib.contextmanager
def running(url: str, workdir: Path, config: str | None = None,
            args: Sequence[str] = ()) -> Iterator[subprocess.Popen[bytes]]:
    """`jobctl start` (default config unless `config` is given; `args` added), stopped with TERM (then KILL)."""
    if config is not None:
        (workdir / "config").mkdir(exist_ok=True)
        (workdir / "config" / "queue.yml").write_text(config)
    logfile = open(workdir / "jobctl-start.log", "ab")
    proc = subprocess.Popen([sys.executable, "-m", "jobctl.cli", *START_ARGS, *args], cwd=workdir, env=jobctl_env(url),
                            stdout=logfile, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        logfile.close()


def _log_tail(workdir: Path, lines: int = 15) -> str:
    try:
        return "\n".join((workdir / "jobctl-start.log").read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


# -- enqueue -----------------------------------------------------------------------------------


def enqueue(url: str, single: int, bulk: int, batch: int) -> dict[str, Any]:
    """`single` jobs by `Noop.perform_later()` (one transaction each), then `bulk` by `perform_all_later`."""
    jobctl.configure(database_url=url)
    try:
        jobctl.count()  # connected before the clock starts, as in an application that is running
        t0 = time.perf_counter()
        for _ in range(single):
            Noop.perform_later()
        t_single = time.perf_counter() - t0
        t0 = time.perf_counter()
        done = 0
        while done < bulk:
            m = min(batch, bulk - done)
            jobctl.perform_all_later([Noop() for _ in range(m)])
            done += m
        t_bulk = time.perf_counter() - t0
    finally:
        jobctl.configure()
    return {
        "enqueue_single_n": single,
        "enqueue_single_per_s": round(single / t_single, 1) if single else None,
        "enqueue_bulk_n": bulk,
        "enqueue_bulk_per_s": round(bulk / t_bulk, 1) if bulk else None,
        "batch_size": batch,
    }


def bulk_one_call(url: str, n: int) -> dict[str, Any]:
    """`n` jobs in one `perform_all_later` call (job objects built inside the timing)."""
    jobctl.configure(database_url=url)
    try:
        jobctl.count()  # connected before the clock starts (the ceiling trial connects first too)
        t0 = time.perf_counter()
        created = jobctl.perform_all_later([Noop() for _ in range(n)])
        dt = time.perf_counter() - t0
    finally:
        jobctl.configure()
    return {"n": n, "created": created, "per_s": round(n / dt, 1)}


def copy_ceiling(url: str, n: int) -> dict[str, Any]:
    """PostgreSQL's own bulk rate into jobctl's table: `n` no-op job rows as prebuilt COPY text, one
    transaction (what any client could reach with this schema and its indexes; no Python per job)."""
    from jobctl.arguments import dump_arguments
    from jobctl.job import job_class_path

    line = f"{Noop.queue}\t{job_class_path(Noop)}\t{Noop.priority}\tready\t{dump_arguments((), {})}\n"
    text = (line * n).encode()
    with psycopg.connect(url) as conn:
        t0 = time.perf_counter()
        with conn.cursor() as cur, cur.copy(
                "COPY jobctl_jobs (queue, class, priority, state, arguments) FROM STDIN") as copy:
            for start in range(0, len(text), 1 << 18):
                copy.write(text[start:start + (1 << 18)])
        conn.commit()
        dt = time.perf_counter() - t0
    return {"n": n, "per_s": round(n / dt, 1)}


# -- drain -------------------------------------------------------------------------------------


class Db:
    """The few reads a drain needs, on either backend."""

    def __init__(self, url: str) -> None:
        self.sqlite = url.startswith("sqlite:")
        if self.sqlite:
            self.conn: Any = sqlite3.connect(url.split(":///", 1)[1], timeout=30, isolation_level=None)
        else:
            self.conn = psycopg.connect(url, autocommit=True)
            # The completion poll must stay a partial-index probe: with a 1M-row table a planner-chosen
            # seq scan for "any ready row left" costs up to 200 ms of the server's CPU per poll.
            self.conn.execute("SET enable_seqscan = off")
            self.conn.execute("SET enable_bitmapscan = off")

    def one(self, sql: str) -> tuple[Any, ...]:
        return tuple(self.conn.execute(sql).fetchone())

    def left(self) -> bool:
        """Whether any job is still ready, claimed or blocked (all partial-index lookups)."""
        row = self.one("SELECT EXISTS (SELECT 1 FROM jobctl_jobs WHERE state = 'ready') "
                       "OR EXISTS (SELECT 1 FROM jobctl_jobs WHERE state = 'claimed') "
                       "OR EXISTS (SELECT 1 FROM jobctl_jobs WHERE state = 'blocked')")
        return bool(row[0])

    def spans(self) -> dict[str, Any]:
        """Counts by outcome and the first/last claim and finish times (epoch seconds)."""
        if self.sqlite:
            sql = ("SELECT count(*), min(claimed_at), min(finished_at), max(finished_at), "
                   "(SELECT count(*) FROM jobctl_jobs WHERE state <> 'finished') "
                   "FROM jobctl_jobs WHERE state = 'finished'")
        else:
            sql = ("SELECT count(*), extract(epoch FROM min(claimed_at))::float8, "
                   "extract(epoch FROM min(finished_at))::float8, extract(epoch FROM max(finished_at))::float8, "
                   "(SELECT count(*) FROM jobctl_jobs WHERE state <> 'finished') "
                   "FROM jobctl_jobs WHERE state = 'finished'")
        finished, first_claim, first_finish, last_finish, other = self.one(sql)
        return {"finished": finished, "first_claim": first_claim, "first_finish": first_finish,
                "last_finish": last_finish, "not_finished": other}

    def close(self) -> None:
        self.conn.close()


def drain(url: str, n: int, timeout_s: float, *, profile: Path | None = None,
          args: Sequence[str] = ()) -> dict[str, Any]:
    """Start `jobctl start` (with `args`) on a pre-filled queue of `n` no-op jobs; rate from first to last
    finished_at."""
    db = Db(url)
    workdir = Path(tempfile.mkdtemp(prefix="jobctl-bench-run-"))
    timed_out = False
    spy = None
    try:
        t_launch = time.time()
        with running(url, workdir, args=args) as proc:
            deadline = time.monotonic() + timeout_s
            if profile is not None:
                spy = _start_profile(proc.pid, profile)
            while db.left():
                if proc.poll() is not None:
                    raise RuntimeError(f"jobctl start exited with {proc.returncode}:\n{_log_tail(workdir)}")
                if time.monotonic() > deadline:
                    timed_out = True
                    break
                time.sleep(0.1)
            t_done = time.time()
            if spy is not None:
                spy.send_signal(signal.SIGINT)
        rc = proc.returncode
        if spy is not None:
            spy.wait(60)
        s = db.spans()
    finally:
        db.close()
    ok = not timed_out and s["finished"] == n and s["not_finished"] == 0 and rc == 0
    if not ok:
        log(f"drain not ok: {s}, rc={rc}, timed_out={timed_out}\n{_log_tail(workdir)}")
    span = (s["last_finish"] or 0) - (s["first_finish"] or 0)
    claim_span = (s["last_finish"] or 0) - (s["first_claim"] or 0)
    return {
        "n": n,
        "drain_db_per_s": round((s["finished"] - 1) / span, 1) if span > 0 else None,
        "drain_claim_to_finish_per_s": round(s["finished"] / claim_span, 1) if claim_span > 0 else None,
        "drain_wall_s": round(t_done - t_launch, 3),
        "drain_wall_per_s": round(s["finished"] / (t_done - t_launch), 1),
        "startup_to_first_claim_s": round(s["first_claim"] - t_launch, 3) if s["first_claim"] else None,
        "finished": s["finished"],
        "not_finished": s["not_finished"],
        "exit_code": rc,
        "ok": ok,
    }


def _start_profile(pid: int, out: Path) -> subprocess.Popen[bytes] | None:
    """py-spy on the first worker process of `jobctl start` (pid), raw collapsed stacks."""
    deadline = time.monotonic() + 10
    children: list[psutil.Process] = []
    while time.monotonic() < deadline and len(children) < 3:
        with contextlib.suppress(psutil.NoSuchProcess):
            children = psutil.Process(pid).children()
        time.sleep(0.02)
    if not children:
        return None
    spy = Path(sys.executable).parent / "py-spy"
    return subprocess.Popen([str(spy), "record", "-p", str(children[0].pid), "-r", "200", "-f", "raw",
                             "-o", str(out), "--nonblocking"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


# -- idle cost and pickup latency --------------------------------------------------------------


def _worker_pids(db: Db) -> dict[str, list[int]]:
    rows = db.conn.execute("SELECT kind, pid FROM jobctl_processes").fetchall()
    kinds: dict[str, list[int]] = {}
    for kind, pid in rows:
        kinds.setdefault(kind, []).append(int(pid))
    return kinds


def _xacts(admin: psycopg.Connection[Any], dbname: str) -> int:
    row = admin.execute("SELECT xact_commit + xact_rollback FROM pg_stat_database WHERE datname = %s",
                        (dbname,)).fetchone()
    return int(row[0]) if row else 0


def _wait_registered(db: Db, proc: subprocess.Popen[bytes], workdir: Path, *, dispatcher: bool) -> None:
    deadline = time.monotonic() + 30
    while True:
        kinds = _worker_pids(db)
        if len(kinds.get("worker", [])) >= 2 and (kinds.get("dispatcher") or not dispatcher):
            return
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"jobctl start did not come up:\n{_log_tail(workdir)}")
        time.sleep(0.05)


def _idle_rate(admin: psycopg.Connection[Any], dbname: str, idle_s: float,
               pgss: bool) -> tuple[float, float, list[dict[str, Any]] | None]:
    """After a warm-up, committed transactions/s over `idle_s`: (rate, seconds measured, top statements)."""
    time.sleep(IDLE_WARMUP_S)
    if pgss:
        admin.execute("SELECT pg_stat_statements_reset()")
    x0, t0 = _xacts(admin, dbname), time.monotonic()
    time.sleep(idle_s)
    x1, t1 = _xacts(admin, dbname), time.monotonic()
    return (x1 - x0) / (t1 - t0), t1 - t0, _top_calls(admin, dbname) if pgss else None


def _top_calls(admin: psycopg.Connection[Any], dbname: str) -> list[dict[str, Any]]:
    rows = admin.execute(
        "SELECT s.calls, s.query FROM pg_stat_statements s JOIN pg_database d ON d.oid = s.dbid "
        "WHERE d.datname = %s ORDER BY s.calls DESC LIMIT 8", (dbname,)).fetchall()
    return [{"calls": int(c), "query": " ".join(q.split())[:160]} for c, q in rows]


def idle_workers_only(url: str, admin_url: str, dbname: str, *, idle_s: float, pgss: bool = False) -> dict[str, Any]:
    """Transactions/s of `jobctl start` running only its 2 worker processes (and the supervisor), idle."""
    db = Db(url)
    admin = psycopg.connect(admin_url, autocommit=True)
    workdir = Path(tempfile.mkdtemp(prefix="jobctl-bench-idle-workers-"))
    try:
        with running(url, workdir, WORKERS_ONLY) as proc:
            _wait_registered(db, proc, workdir, dispatcher=False)
            per_s, _, top = _idle_rate(admin, dbname, idle_s, pgss)
    finally:
        db.close()
        admin.close()
    out: dict[str, Any] = {"idle_workers_only_xact_per_s": round(per_s, 2),
                           "idle_xact_per_s_per_worker": round(per_s / 2, 2)}
    if top is not None:
        out["idle_workers_only_statements"] = top
    return out


def read_stamps(stamps: Path, count: int, timeout: float = 30) -> list[str]:
    """The lines `Stamp` jobs wrote to `stamps`, once there are `count` of them (or what there is after `timeout`)."""
    deadline = time.monotonic() + timeout
    lines: list[str] = []
    while time.monotonic() < deadline:
        lines = stamps.read_text().splitlines() if stamps.exists() else []
        if len(lines) >= count:
            break
        time.sleep(0.05)
    return lines


def idle_and_latency(url: str, admin_url: str, dbname: str, *, idle_s: float, count: int, gap_s: float,
                     pgss: bool) -> dict[str, Any]:
    """With `jobctl start` idle: transactions/s it costs, worker RSS, then pickup latency of single jobs."""
    db = Db(url)
    admin = psycopg.connect(admin_url, autocommit=True)
    workdir = Path(tempfile.mkdtemp(prefix="jobctl-bench-idle-"))
    stamps = workdir / "stamps.txt"
    out: dict[str, Any] = {}
    try:
        with running(url, workdir) as proc:
            _wait_registered(db, proc, workdir, dispatcher=True)
            per_s, measured_s, top = _idle_rate(admin, dbname, idle_s, pgss)
            kinds = _worker_pids(db)
            procs = sum(len(v) for v in kinds.values())
            out.update({
                "idle_s": round(measured_s, 2),
                "idle_xact_per_s": round(per_s, 2),
                "idle_processes": {k: len(v) for k, v in kinds.items()},
                "idle_xact_per_s_per_process": round(per_s / max(procs, 1), 2),
                "idle_xact_per_s_per_worker_upper": round(per_s / max(len(kinds.get("worker", [])), 1), 2),
                "idle_connections": admin.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = %s", (dbname,)).fetchone()[0],
            })
            if top is not None:
                out["idle_statements"] = top
            rss: dict[str, list[float]] = {}
            uss: dict[str, list[float]] = {}
            for kind, pids in kinds.items():
                for pid in pids:
                    with contextlib.suppress(psutil.Error):
                        mem = psutil.Process(pid).memory_full_info()
                        rss.setdefault(kind, []).append(round(mem.rss / 2**20, 1))
                        uss.setdefault(kind, []).append(round(mem.uss / 2**20, 1))
            out["rss_mb"] = rss
            out["uss_mb"] = uss
            out["worker_rss_mb_max"] = max(rss.get("worker", [0.0]))

            # Pickup latency: one job at a time, spaced, to an idle worker.
            jobctl.configure(database_url=url)
            after: dict[int, float] = {}
            enqueue_ms: list[float] = []  # each perform_later call alone
            try:
                for _ in range(count):
                    sent = time.time()
                    handle = Stamp.perform_later(sent, str(stamps))
                    after[handle.id] = time.time()
                    enqueue_ms.append((after[handle.id] - sent) * 1000)
                    time.sleep(gap_s)
            finally:
                jobctl.configure()
            # The floor under the enqueue at this spacing: a bare INSERT and commit on a warm connection.
            floor: list[float] = []
            with psycopg.connect(url, autocommit=True) as conn:
                conn.execute("CREATE TABLE IF NOT EXISTS bench_floor (at float8)")
                for _ in range(count):
                    t0 = time.perf_counter()
                    conn.execute("INSERT INTO bench_floor VALUES (%s)", (t0,))
                    floor.append((time.perf_counter() - t0) * 1000)
                    time.sleep(gap_s)
                conn.execute("DROP TABLE bench_floor")
            lines = read_stamps(stamps, count)
    finally:
        db.close()
        admin.close()
    from_call: list[float] = []
    from_commit: list[float] = []
    for line in lines:
        job_id, sent, started = line.split()
        from_call.append((float(started) - float(sent)) * 1000)
        from_commit.append((float(started) - after[int(job_id)]) * 1000)
    out.update({
        "latency_n": len(from_call),
        "latency_p50_ms": round(percentile(from_call, 50), 3),
        "latency_p99_ms": round(percentile(from_call, 99), 3),
        "latency_max_ms": round(max(from_call), 3) if from_call else None,
        "latency_from_commit_p50_ms": round(percentile(from_commit, 50), 3),
        "latency_from_commit_p99_ms": round(percentile(from_commit, 99), 3),
        "latency_ok": len(from_call) == count,
        "enqueue_call_p50_ms": round(percentile(enqueue_ms, 50), 3),
        "bare_insert_p50_ms": round(percentile(floor, 50), 3),
    })
    return out


def stats_time(url: str) -> dict[str, Any] | None:
    """Wall time of `jobctl stats --json`, or None when the command does not exist (yet)."""
    if cli(url, "stats", "--help").returncode != 0:
        return None
    t0 = time.perf_counter()
    done = cli(url, "stats", "--json")
    wall = time.perf_counter() - t0
    t0 = time.perf_counter()
    cli(url, "--version")
    startup = time.perf_counter() - t0
    return {"stats_wall_s": round(wall, 3), "cli_startup_s": round(startup, 3), "rc": done.returncode,
            "stderr": done.stderr.strip()[:300]}
