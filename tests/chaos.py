"""Chaos: kill -9 workers, dispatchers and a supervisor, restart PostgreSQL, and check that nothing is lost.

    python tests/chaos.py [--jobs 20000] [--seconds 300]

Runs its own throwaway PostgreSQL (loopback only), two supervisors, and a chaos loop; then checks
SPEC 9: every job ran at least once and ended finished (or failed after max_crashes with a crash
error); extra runs only for jobs in flight at a kill or the restart; nothing left claimed; none
lost. Prints the counts; exits 1 when a check fails.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import psutil
import psycopg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT))

from pgcluster import Cluster  # noqa: E402

CONFIG = """\
shutdown_timeout: 3
process_heartbeat_interval: 1
process_alive_threshold: 6
max_crashes: 3
dispatchers:
  - polling_interval: 0.2
workers:
  - queues: "*"
    threads: 3
    processes: 2
"""
# A job whose extra run starts within this long after a disruption counts as "in flight" then
# (claimed before it, released by it, re-run after); anything else is a duplicate run.
IN_FLIGHT_WINDOW_S = 15.0


@dataclass
class Report:
    jobs: int
    seconds: float = 0.0
    events: list[tuple[float, str]] = field(default_factory=list)
    states: dict[str, int] = field(default_factory=dict)
    ran: int = 0
    never_ran: list[int] = field(default_factory=list)
    extra_runs: int = 0
    unexplained_extra: list[int] = field(default_factory=list)
    details: list[str] = field(default_factory=list)
    claimed_left: int = 0
    failed_without_crash: list[int] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        finished_or_crashed = self.states.get("finished", 0) + self.states.get("failed", 0) == self.jobs
        return (finished_or_crashed and not self.never_ran and not self.unexplained_extra
                and self.claimed_left == 0 and not self.failed_without_crash)

    def lines(self) -> list[str]:
        kinds = Counter(e for _, e in self.events)
        return [
            f"jobs enqueued        {self.jobs}",
            f"wall time            {self.seconds:.1f} s",
            "disruptions          " + ", ".join(f"{n}x {k}" for k, n in sorted(kinds.items())),
            f"final states         {json.dumps(self.states, sort_keys=True)}",
            f"jobs that ran        {self.ran} (never ran: {len(self.never_ran)})",
            f"extra runs           {self.extra_runs} (not explained by a disruption: {len(self.unexplained_extra)})",
            f"left claimed         {self.claimed_left}",
            f"failed, not crashes  {len(self.failed_without_crash)}",
            "RESULT               " + ("ok" if self.ok else "FAILED"),
            *self.details,
        ]


def supervisor(url: str, config: Path, log: Path) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("JOBCTL_")}
    env.update(JOBCTL_DATABASE_URL=url, CHAOS_RECORD_URL=url,
               PYTHONPATH=os.pathsep.join([str(ROOT / "tests"), str(ROOT)]))
    return subprocess.Popen([sys.executable, "-m", "jobctl.cli", "start", "--config", str(config),
                             "--log-level", "warning"], cwd=config.parent, env=env,
                            stdout=open(log, "ab"), stderr=subprocess.STDOUT)


def children(proc: subprocess.Popen[bytes]) -> list[psutil.Process]:
    try:
        return psutil.Process(proc.pid).children()
    except psutil.NoSuchProcess:
        return []


def kinds_by_pid(url: str) -> dict[int, str]:
    try:
        with psycopg.connect(url, connect_timeout=2) as conn:
            return dict(conn.execute("SELECT pid, kind FROM jobctl_processes").fetchall())
    except psycopg.Error:
        return {}


def remaining(url: str) -> int | None:
    try:
        with psycopg.connect(url, connect_timeout=2) as conn:
            row = conn.execute("SELECT count(*) FROM jobctl_jobs WHERE state NOT IN ('finished', 'failed')").fetchone()
            return int(row[0]) if row else None
    except psycopg.Error:
        return None


def run(jobs: int, seconds: float, job_seconds: float, seed: int, workdir: Path) -> Report:
    rng = random.Random(seed)
    cluster = Cluster(workdir / "pg")
    url = cluster.start()
    report = Report(jobs)
    procs: list[subprocess.Popen[bytes]] = []
    try:
        env = {**os.environ, "JOBCTL_DATABASE_URL": url}
        subprocess.run([sys.executable, "-m", "jobctl.cli", "db", "migrate"], env=env, check=True,
                       capture_output=True)
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("CREATE TABLE chaos_runs (job_id bigint, pid int, at double precision)")
        import jobctl

        jobctl.configure(database_url=url)
        from chaos_jobs import ChaosJob

        jobctl.perform_all_later([ChaosJob(rng.uniform(0, job_seconds)) for _ in range(jobs)])
        config = workdir / "queue.yml"
        config.write_text(CONFIG)
        procs = [supervisor(url, config, workdir / f"supervisor{i}.log") for i in range(2)]
        start = time.monotonic()
        restarted_pg = killed_supervisor = False
        deadline = start + seconds
        while time.monotonic() < deadline:
            time.sleep(rng.uniform(1.5, 3.0))
            left = remaining(url)
            if left == 0:
                break
            elapsed = time.monotonic() - start
            if not killed_supervisor and elapsed > 3:
                victim = rng.randrange(len(procs))
                procs[victim].kill()
                procs[victim].wait()
                report.events.append((time.time(), "supervisor kill -9"))
                time.sleep(0.5)
                procs[victim] = supervisor(url, config, workdir / f"supervisor{victim}.log")
                killed_supervisor = True
                continue
            if not restarted_pg and elapsed > 7:
                cluster.stop(mode="immediate")
                # The moment the server is gone (not when the stop began): a job that started while it
                # was going down was in flight at the restart.
                report.events.append((time.time(), "PostgreSQL restart"))
                time.sleep(1.0)
                cluster.start()
                restarted_pg = True
                continue
            by_pid = kinds_by_pid(url)
            targets = [c for p in procs for c in children(p) if by_pid.get(c.pid) in ("worker", "dispatcher")]
            if targets:
                victim_proc = rng.choice(targets)
                kind = by_pid[victim_proc.pid]
                try:
                    victim_proc.send_signal(signal.SIGKILL)
                    report.events.append((time.time(), f"{kind} kill -9"))
                except psutil.NoSuchProcess:
                    pass
        while time.monotonic() < deadline and remaining(url) != 0:
            time.sleep(0.5)
        report.seconds = time.monotonic() - start
        for p in procs:
            p.send_signal(signal.SIGTERM)
        for p in procs:
            p.wait(60)
        check(url, report)
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
        cluster.destroy()
    return report


def check(url: str, report: Report) -> None:
    with psycopg.connect(url) as conn:
        report.states = dict(conn.execute("SELECT state, count(*) FROM jobctl_jobs GROUP BY state").fetchall())
        report.claimed_left = report.states.get("claimed", 0)
        runs: dict[int, list[float]] = {}
        for job_id, at in conn.execute("SELECT job_id, at FROM chaos_runs ORDER BY at"):
            runs.setdefault(job_id, []).append(at)
        all_ids = [r[0] for r in conn.execute("SELECT id FROM jobctl_jobs")]
        failed = [r[0] for r in conn.execute(
            "SELECT j.id FROM jobctl_jobs j WHERE j.state = 'failed' AND NOT EXISTS ("
            "SELECT 1 FROM jobctl_errors e WHERE e.job_id = j.id AND e.class = 'jobctl.WorkerCrashed')")]
    report.failed_without_crash = failed
    report.ran = sum(1 for i in all_ids if i in runs)
    report.never_ran = [i for i in all_ids if i not in runs]
    events = [t for t, _ in report.events]
    for job_id, times in runs.items():
        for later in times[1:]:
            report.extra_runs += 1
            if not any(e - IN_FLIGHT_WINDOW_S <= times[0] <= e <= later for e in events):
                report.unexplained_extra.append(job_id)
                t0 = min([*events, *times])
                report.details.append(f"job {job_id}: runs at {[round(t - t0, 3) for t in times]}, disruptions at "
                                      f"{[(round(t - t0, 3), k) for t, k in report.events]}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=20_000)
    parser.add_argument("--seconds", type=float, default=300.0, help="time limit for the drain")
    parser.add_argument("--job-seconds", type=float, default=0.004, help="longest no-op sleep of a job")
    parser.add_argument("--seed", type=int, default=int(time.time()))
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="jobctl-chaos-") as tmp:
        os.chmod(tmp, 0o755)
        report = run(args.jobs, args.seconds, args.job_seconds, args.seed, Path(tmp))
    print(f"chaos (seed {args.seed}):")
    for line in report.lines():
        print("  " + line)
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
