"""`make bench`: jobctl against PgQueuer, procrastinate, oban and chancy on one fresh PostgreSQL, with
PostgreSQL's ceiling (pgbench), a bare claim/ack drain ceiling in the same rounds, and the curves.

    python bench/run.py                 # 3 interleaved rounds, then the curves; about 20-25 minutes
    BENCH_QUICK=1 python bench/run.py   # 1 round, small N, small curves: a smoke run of a few minutes
    BENCH_CURVES=0 python bench/run.py  # the rounds only
    BENCH_BIG=1 python bench/run.py     # also the 1M-job figures (sustained drain, retained history, stats)

Creates (once) the bench virtualenv `.bench-venv` (jobctl from this repo, procrastinate 3.10.0, PgQueuer
1.6.0) and re-runs itself with its python; oban 0.7.0 and chancy 0.26.0 run from `.bench-venv312`
(bench/benchenv312.py: the first Python >= 3.12 found; none: they are skipped, saying why). Starts one
throwaway PostgreSQL 15 cluster (tests/pgcluster.py, server defaults) and removes it at the end. Each
round runs, in this order: the pgbench ceiling, jobctl on PostgreSQL (enqueue + drain), the bare drain
ceiling (bench/ceiling.py), jobctl's bulk enqueue and the COPY ceiling, PgQueuer, procrastinate, oban,
chancy, jobctl on SQLite, and jobctl idle (queries/s, RSS, pickup latency); then the curves
(bench/curves.py). Results: a markdown table on stdout and in bench/results/latest.md, one JSON line per
trial in bench/results/latest.jsonl. Knobs: see bench/README.md.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import benchenv, benchenv312
from bench.common import BENCH, PG_BIN, CpuMeter, Settings, load_pgcluster, log, wait_quiet

RESULTS = BENCH / "results"
PEERS = BENCH / "peers"
CEILING_SQL = """\
BEGIN;
INSERT INTO ceiling_jobs (payload) VALUES ('{}') RETURNING id \\gset
UPDATE ceiling_jobs SET status = 'done' WHERE id = :id;
END;
"""


def in_bench_venv() -> bool:
    return Path(sys.prefix).resolve() == benchenv.VENV.resolve()


class Bench:
    def __init__(self, settings: Settings) -> None:
        self.s = settings
        self.records: list[dict[str, Any]] = []
        self.discarded = 0
        # Retries stop once the run has lasted this long, so a busy machine cannot stretch it much.
        self.retry_deadline = time.monotonic() + settings.retry_budget_s
        self.jsonl = RESULTS / "latest.jsonl"
        self.tmp = Path(tempfile.mkdtemp(prefix="jobctl-bench-"))
        os.chmod(self.tmp, 0o755)
        self.cluster = load_pgcluster().Cluster(self.tmp / "pg")
        self.postmaster = 0
        # The peers that need Python >= 3.12 (oban, chancy): their venv's python, or why they are skipped.
        self.python312: Path | None = None
        self.skipped312 = ""

    # -- cluster -----------------------------------------------------------------------------

    def start_cluster(self) -> None:
        extra = ("shared_preload_libraries=pg_stat_statements",) if self.s.pgss else ()
        # Diagnosis only (the figures are taken at server defaults): BENCH_PG_SETTINGS="name=value;name=value".
        extra += tuple(x.strip() for x in os.environ.get("BENCH_PG_SETTINGS", "").split(";") if x.strip())
        self.admin_url = self.cluster.start(extra)
        self.postmaster = int((self.cluster.data / "postmaster.pid").read_text().split()[0])
        import psycopg

        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            version = conn.execute("SHOW server_version").fetchone()[0]
            if self.s.pgss:
                conn.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
            conn.execute("CREATE DATABASE ceiling")
        with psycopg.connect(self.url_for("ceiling"), autocommit=True) as conn:
            conn.execute("CREATE TABLE ceiling_jobs (id bigserial PRIMARY KEY, status text NOT NULL DEFAULT "
                         "'todo', payload jsonb, created_at timestamptz NOT NULL DEFAULT now())")
        self.server_version = version
        log(f"PostgreSQL {version} at {self.admin_url} (data in {self.tmp})")

    def url_for(self, dbname: str) -> str:
        return self.admin_url.rsplit("/", 1)[0] + "/" + dbname

    def fresh_db(self, dbname: str) -> str:
        import psycopg

        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {dbname} WITH (FORCE)")
            conn.execute(f"CREATE DATABASE {dbname}")
            if self.s.pgss:
                conn.execute("SELECT pg_stat_statements_reset()")
        return self.url_for(dbname)

    def sql(self, url: str, *statements: str) -> None:
        import psycopg

        with psycopg.connect(url, autocommit=True) as conn:
            for statement in statements:
                conn.execute(statement)

    def top_statements(self, dbname: str, limit: int = 6) -> list[dict[str, Any]]:
        import psycopg

        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            rows = conn.execute(
                "SELECT s.calls, s.rows, round(s.total_exec_time::numeric, 1), round(s.mean_exec_time::numeric, 3),"
                " s.shared_blks_hit + s.shared_blks_read, s.query FROM pg_stat_statements s "
                "JOIN pg_database d ON d.oid = s.dbid WHERE d.datname = %s "
                "ORDER BY s.total_exec_time DESC LIMIT %s", (dbname, limit)).fetchall()
        return [{"calls": c, "rows": r, "total_ms": float(t), "mean_ms": float(m), "blocks": int(b),
                 "query": " ".join(q.split())[:200]} for c, r, t, m, b, q in rows]

    # -- trials ------------------------------------------------------------------------------

    def trial(self, name: str, rnd: int, body: Any) -> dict[str, Any] | None:
        """Run one trial after a CHECKPOINT and a (bounded) wait for a quiet machine; record it.

        A trial during which other processes used more than BENCH_MAX_FOREIGN_PCT of the CPU is
        recorded as discarded and run again, up to BENCH_RETRIES times (the machine is shared),
        while the run is younger than BENCH_RETRY_BUDGET_S; after that it is kept and marked noisy.
        """
        if not self.s.wants(name):
            return None
        for attempt in range(1, self.s.retries + 2):
            self.sql(self.admin_url, "CHECKPOINT")
            wait_quiet(self.s.quiet_pct, self.s.quiet_max_wait_s)
            log(f"round {rnd}: {name}" + (f" (attempt {attempt})" if attempt > 1 else ""))
            try:
                with CpuMeter(self.postmaster) as meter:
                    result = body()
            except Exception as exc:  # one broken trial must not lose the others
                log(f"round {rnd}: {name} failed: {type(exc).__name__}: {exc}")
                result = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
            else:
                result.update(meter.result)
            record = {"trial": name, "round": rnd, "attempt": attempt, **result}
            noisy = result.get("foreign_cpu_pct", 0) > self.s.max_foreign_pct
            budget_left = time.monotonic() < self.retry_deadline
            if noisy and attempt <= self.s.retries and budget_left:
                record["discarded"] = True
                self.discarded += 1
                log(f"round {rnd}: {name} discarded: other processes used {result['foreign_cpu_pct']}% CPU")
            with self.jsonl.open("a") as f:
                f.write(json.dumps(record) + "\n")
            if not record.get("discarded"):
                self.records.append(record)
                return record
        return None

    def ceiling(self) -> dict[str, Any]:
        script = self.tmp / "insert_update.sql"
        script.write_text(CEILING_SQL)
        self.sql(self.url_for("ceiling"), "TRUNCATE ceiling_jobs", "CHECKPOINT")
        port = str(self.cluster.port)
        out = subprocess.run([str(PG_BIN / "pgbench"), "-n", "-T", str(self.s.pgbench_s), "-c", "1", "-j", "1",
                              "-f", str(script), "-h", "127.0.0.1", "-p", port, "-U", "postgres", "ceiling"],
                             capture_output=True, text=True, timeout=self.s.pgbench_s + 60)
        tps = lat = None
        for line in out.stdout.splitlines():
            if line.startswith("tps = ") and "without initial connection time" in line:
                tps = float(line.split()[2])
            if line.startswith("latency average = "):
                lat = float(line.split()[3])
        if tps is None:
            raise RuntimeError(f"pgbench failed: {out.stderr.strip()[-500:]}")
        return {"clients": 1, "seconds": self.s.pgbench_s, "tps": tps, "latency_ms": lat, "ok": True}

    def jobctl_pg(self, rnd: int) -> dict[str, Any]:
        from bench import jobctl_trials as jt

        url = self.fresh_db("jobctl_bench")
        jt.migrate(url)
        single = min(self.s.single, self.s.n)
        result = jt.enqueue(url, single, self.s.n - single, self.s.batch)
        self.sql(url, "ANALYZE jobctl_jobs")
        profile = None
        if os.environ.get("BENCH_PROFILE") and rnd == 1:
            profile = RESULTS / "profile-worker.txt"
        result.update(jt.drain(url, self.s.n, self.s.drain_timeout_s, profile=profile))
        if self.s.pgss:
            result["top_statements"] = self.top_statements("jobctl_bench")
        return result

    def jobctl_bulk(self) -> dict[str, Any]:
        from bench import jobctl_trials as jt

        url = self.fresh_db("jobctl_bulk")
        jt.migrate(url)
        result = jt.bulk_one_call(url, self.s.n)
        result["ok"] = result["created"] == self.s.n
        return result

    def copy_ceiling(self) -> dict[str, Any]:
        from bench import jobctl_trials as jt

        url = self.fresh_db("jobctl_copy")
        jt.migrate(url)
        return jt.copy_ceiling(url, self.s.n)

    def peer(self, name: str, python: Path | None = None) -> dict[str, Any]:
        env = {**os.environ, "DATABASE_URL": self.admin_url}
        for key in ("BENCH_N", "BENCH_SINGLE", "BENCH_BATCH", "BENCH_PROCS", "BENCH_ANALYZE", "BENCH_LOOP"):
            env.pop(key, None)
        cmd = [str(python or sys.executable), str(PEERS / f"bench_{name}.py"), "--procs", "2", "--analyze", "1",
               "--n", str(self.s.peer_n), "--single", str(min(self.s.single, self.s.peer_n)),
               "--batch-size", str(self.s.batch)]
        out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900)
        lines = [json.loads(line) for line in out.stdout.splitlines() if line.startswith("{")]
        if out.returncode != 0 or not lines:
            raise RuntimeError(f"{name} exited {out.returncode}: {out.stderr.strip()[-800:]}")
        return lines[-1]

    def bare_ceiling(self, schema: str = "bare") -> dict[str, Any]:
        """The bare claim/ack loop of bench/ceiling.py (2 processes, batched claim and ack, durable commits);
        schema "jobctl": the same loop on a migrated jobctl_jobs (what the schema costs, without the runtime)."""
        url = self.fresh_db("bare_ceiling")
        if schema == "jobctl":
            from bench import jobctl_trials as jt

            jt.migrate(url)
        out = subprocess.run([sys.executable, str(BENCH / "ceiling.py"), url, str(self.s.n), "--procs", "2",
                              "--batch", str(self.s.ceiling_batch), "--schema", schema],
                             capture_output=True, text=True, timeout=self.s.drain_timeout_s + 60)
        lines = [json.loads(line) for line in out.stdout.splitlines() if line.startswith("{")]
        if out.returncode != 0 or not lines:
            raise RuntimeError(f"ceiling.py exited {out.returncode}: {out.stderr.strip()[-800:]}")
        return dict(lines[-1])

    def jobctl_sqlite(self) -> dict[str, Any]:
        from bench import jobctl_trials as jt

        folder = self.tmp / "sqlite"
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir()
        url = f"sqlite:///{folder / 'bench.sqlite3'}"
        result = jt.enqueue(url, 0, self.s.sqlite_n, self.s.batch)
        result.update(jt.drain(url, self.s.sqlite_n, self.s.drain_timeout_s))
        result["synchronous"] = "FULL (jobctl default)"
        return result

    def jobctl_idle(self) -> dict[str, Any]:
        from bench import jobctl_trials as jt

        url = self.fresh_db("jobctl_idle")
        jt.migrate(url)
        result = jt.idle_and_latency(url, self.admin_url, "jobctl_idle", idle_s=self.s.idle_s,
                                     count=self.s.latency_n, gap_s=self.s.latency_gap_s, pgss=self.s.pgss)
        result.update(jt.idle_workers_only(url, self.admin_url, "jobctl_idle", idle_s=self.s.idle_s,
                                           pgss=self.s.pgss))
        return result

    def big(self) -> None:
        """Once, after the rounds: 1M backlog drain, drain with 1M finished retained vs none, stats time."""
        from bench import jobctl_trials as jt

        big_n, timeout = self.s.big_n, max(self.s.drain_timeout_s, 900)
        kept_n = self.s.retained_n  # longer than the 50k drains: the pairs compare steady rates

        def none_retained() -> dict[str, Any]:
            url = self.fresh_db("jobctl_bench")
            jt.migrate(url)
            result = jt.enqueue(url, 0, kept_n, self.s.batch)
            self.sql(url, "ANALYZE jobctl_jobs")
            result.update(jt.drain(url, kept_n, self.s.drain_timeout_s))
            return result

        def backlog() -> dict[str, Any]:
            url = self.fresh_db("jobctl_big")
            jt.migrate(url)
            result = jt.enqueue(url, 0, big_n, 10_000)
            self.sql(url, "ANALYZE jobctl_jobs")
            result.update(jt.drain(url, big_n, timeout))
            if self.s.pgss:
                result["top_statements"] = self.top_statements("jobctl_big")
            return result

        def retained() -> dict[str, Any]:
            url = self.url_for("jobctl_big")  # still holds the 1M finished jobs of the backlog trial
            self.sql(url, "VACUUM ANALYZE jobctl_jobs")  # as autovacuum would have, long after the burst
            import psycopg

            with psycopg.connect(url, autocommit=True) as conn:
                before = conn.execute("SELECT count(*) FROM jobctl_jobs").fetchone()[0]  # a retry adds more
            result = jt.enqueue(url, 0, kept_n, self.s.batch)
            self.sql(url, "ANALYZE jobctl_jobs")
            drained = jt.drain(url, before + kept_n, self.s.drain_timeout_s)
            # Only the new jobs count: their rate from their own timestamps.
            with psycopg.connect(url, autocommit=True) as conn:
                cnt, span = conn.execute(
                    "SELECT count(*), extract(epoch FROM max(finished_at) - min(finished_at))::float8 "
                    "FROM (SELECT finished_at FROM jobctl_jobs ORDER BY id DESC LIMIT %s) t", (kept_n,)).fetchone()
            drained["drain_db_per_s"] = round((cnt - 1) / span, 1) if span else None
            drained["drain_wall_per_s"] = round(kept_n / drained["drain_wall_s"], 1)
            drained["drain_claim_to_finish_per_s"] = None  # min(claimed_at) would include the old jobs
            drained["startup_to_first_claim_s"] = None
            drained["n"] = kept_n
            result.update(drained)
            result["retained_finished"] = before
            return result

        def stats() -> dict[str, Any]:
            result = jt.stats_time(self.url_for("jobctl_big"))
            if result is None:
                log("`jobctl stats --help` fails: stats not measured")
                return {"skipped": "jobctl stats does not exist yet", "ok": False}
            result["ok"] = result["rc"] == 0
            return result

        self.trial("big_backlog", 0, backlog)
        # Retained vs none in interleaved pairs (the machine drifts; one sample each was too noisy).
        for pair in range(1, self.s.retained_pairs + 1):
            self.trial("big_none_retained", pair, none_retained)
            self.trial("big_retained", pair, retained)
        def latency_retained() -> dict[str, Any]:
            return jt.idle_and_latency(self.url_for("jobctl_big"), self.admin_url, "jobctl_big",
                                       idle_s=self.s.idle_s, count=min(self.s.latency_n, 100),
                                       gap_s=self.s.latency_gap_s, pgss=False)

        # The retained drains left ~300k dead row versions: vacuum, as autovacuum would have long
        # before a real operator's `jobctl stats` (otherwise it runs during the measurements).
        self.sql(self.url_for("jobctl_big"), "VACUUM ANALYZE jobctl_jobs")
        self.trial("big_stats", 0, stats)
        self.trial("big_latency_retained", 0, latency_retained)

    # -- the whole run ---------------------------------------------------------------------

    def run(self) -> int:
        RESULTS.mkdir(exist_ok=True)
        self.jsonl.write_text("")
        t0 = time.monotonic()
        try:
            if self.s.wants("oban") or self.s.wants("chancy"):
                self.python312, self.skipped312 = benchenv312.ensure()
                if self.python312 is None:
                    log(f"oban and chancy skipped: {self.skipped312}")
            self.start_cluster()
            for rnd in range(1, self.s.rounds + 1):
                self.trial("pgbench", rnd, self.ceiling)
                self.trial("jobctl_pg", rnd, lambda r=rnd: self.jobctl_pg(r))
                self.trial("bare_ceiling", rnd, self.bare_ceiling)
                self.trial("bare_on_jobctl_schema", rnd, lambda: self.bare_ceiling("jobctl"))
                self.trial("jobctl_bulk_one_call", rnd, self.jobctl_bulk)
                self.trial("copy_ceiling", rnd, self.copy_ceiling)
                self.trial("pgqueuer", rnd, lambda: self.peer("pgqueuer"))
                self.trial("procrastinate", rnd, lambda: self.peer("procrastinate"))
                if self.python312 is not None:
                    self.trial("oban", rnd, lambda: self.peer("oban", self.python312))
                    self.trial("chancy", rnd, lambda: self.peer("chancy", self.python312))
                self.trial("jobctl_sqlite", rnd, self.jobctl_sqlite)
                self.trial("jobctl_idle", rnd, self.jobctl_idle)
            if self.s.curves:
                from bench.curves import Curves

                Curves(self).run()
            if self.s.big:
                self.big()
        finally:
            if os.environ.get("BENCH_KEEP_LOG"):
                shutil.copy(self.cluster.root / "server.log", RESULTS / "server.log")
            self.cluster.destroy()
            shutil.rmtree(self.tmp, ignore_errors=True)
        elapsed = time.monotonic() - t0
        from bench import report

        text = report.render(self.records, self.s, elapsed=elapsed, server_version=self.server_version,
                             discarded=self.discarded, skipped312=self.skipped312)
        (RESULTS / "latest.md").write_text(text)
        print(text)
        log(f"done in {elapsed / 60:.1f} min: {RESULTS / 'latest.md'}, {self.jsonl}")
        return 0


def main() -> int:
    if not in_bench_venv():
        python = benchenv.ensure()
        os.execv(str(python), [str(python), os.path.abspath(__file__), *sys.argv[1:]])
    return Bench(Settings.from_env()).run()


if __name__ == "__main__":
    sys.exit(main())
