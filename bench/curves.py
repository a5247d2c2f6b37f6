"""How jobctl's cost grows with work (SPEC §16): the curves of `make bench`, each a small table, medians of rounds.

- backlog: drain of a 10k / 100k / 1M ready backlog, then, with the same `jobctl start` idle right
  after the drain, pickup latency of single jobs (the table then holds that many finished rows and
  the drain's dead index entries, not yet vacuumed);
- queues: drain of BENCH_CURVE_QUEUES_N jobs spread evenly over 1 / 10 / 100 / 1,000 queues, workers on `*`;
- scheduled: idle cost of `jobctl start` (transactions/s; CPU of the dispatcher, the workers and
  PostgreSQL) with no jobs and with 1M jobs scheduled a day ahead;
- limited: drain of 100,000 jobs without a limit, and of `bench.jobs:Limited` (to=1 per key) over 100,000
  keys (one job each) and over 10,000 keys (10 jobs each: 9 of 10 wait as blocked); then the rate of
  one `perform_all_later` of 2,000 such jobs;
- history: `jobctl stats --json` (whole CLI) and one `top` snapshot fetch (jobctl.tui.snapshot.fetch,
  in process) with 1M and with 10M finished jobs.

Backlogs and history are written straight in SQL (INSERT ... SELECT generate_series), as the COPY
path of `perform_all_later` would leave them (limited ones as its per-job path does, the slot handed
over by the database's own trigger: `perform_all_later` inserts limited jobs one statement at a time,
~2k/s, too slow to fill 100,000). Every drain is `jobctl start` with the default config.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psutil
import psycopg

import jobctl
from bench import jobctl_trials as jt
from bench.common import BENCH, cluster_cpu_s, log, median, percentile
from bench.jobs import Limited, Noop, Stamp


def _int(name: str, default: int) -> int:
    return int(os.environ.get(name, default))


def _sizes(name: str, default: str) -> list[int]:
    return [int(x.replace("_", "")) for x in os.environ.get(name, default).split(",") if x.strip()]


def _noop_args() -> tuple[str, str, str]:
    from jobctl.arguments import dump_arguments
    from jobctl.job import job_class_path

    return Noop.queue, job_class_path(Noop), dump_arguments((), {})


def fill_ready(url: str, n: int, queues: int = 1) -> float:
    """`n` ready no-op jobs, round-robin over `queues` queues (q0, q1, ...; one queue: Noop's own), in SQL."""
    queue, cls, args = _noop_args()
    qexpr = "%(queue)s" if queues == 1 else "'q' || (i %% %(queues)s)"
    t0 = time.perf_counter()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"INSERT INTO jobctl_jobs (queue, class, priority, state, arguments) "
                     f"SELECT {qexpr}, %(cls)s, 0, 'ready', %(args)s::json FROM generate_series(1, %(n)s) i",
                     {"queue": queue, "queues": queues, "cls": cls, "args": args, "n": n})
        conn.execute("ANALYZE jobctl_jobs")
    return time.perf_counter() - t0


def fill_finished(url: str, n: int) -> float:
    """`n` finished no-op jobs, finished over the last 10 days, in SQL (one statement per million)."""
    queue, cls, args = _noop_args()
    t0 = time.perf_counter()
    with psycopg.connect(url, autocommit=True) as conn:
        done = 0
        while done < n:
            m = min(1_000_000, n - done)
            conn.execute("INSERT INTO jobctl_jobs (queue, class, priority, state, arguments, attempts, enqueued_at, "
                         "scheduled_at, claimed_at, finished_at) "
                         "SELECT %(queue)s, %(cls)s, 0, 'finished', %(args)s::json, 1, t, t, t, t FROM "
                         "(SELECT now() - (i * interval '86400 ms') AS t FROM generate_series(%(a)s, %(b)s) i) s",
                         {"queue": queue, "cls": cls, "args": args, "a": done + 1, "b": done + m})
            done += m
        conn.execute("VACUUM ANALYZE jobctl_jobs")  # as autovacuum would have, long before anyone looks
    return time.perf_counter() - t0


def _latency(url: str, workdir: Path, count: int, gap_s: float) -> dict[str, Any]:
    """Pickup latency of `count` single Stamp jobs, `gap_s` apart, from the enqueue's commit to the job starting."""
    stamps = workdir / "stamps.txt"
    jobctl.configure(database_url=url)
    after: dict[int, float] = {}
    try:
        jobctl.count()
        for _ in range(count):
            handle = Stamp.perform_later(time.time(), str(stamps))
            after[handle.id] = time.time()
            time.sleep(gap_s)
    finally:
        jobctl.configure()
    lines = jt.read_stamps(stamps, count)
    ms = [(float(started) - after[int(job_id)]) * 1000 for job_id, _, started in (x.split() for x in lines)]
    return {"latency_n": len(ms), "latency_p50_ms": round(percentile(ms, 50), 3),
            "latency_p99_ms": round(percentile(ms, 99), 3), "latency_ok": len(ms) == count}


def drain_then_latency(url: str, n: int, timeout_s: float, count: int, gap_s: float) -> dict[str, Any]:
    """`jobctl start` on the pre-filled backlog of `n`; when it is drained, pickup latency with the same runtime."""
    db = jt.Db(url)
    workdir = Path(tempfile.mkdtemp(prefix="jobctl-bench-curve-"))
    try:
        t_launch = time.time()
        with jt.running(url, workdir) as proc:
            deadline = time.monotonic() + timeout_s
            while db.left():
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"drain of {n} did not finish:\n{jt._log_tail(workdir)}")
                time.sleep(0.05)
            t_done = time.time()
            s = db.spans()
            result = _latency(url, workdir, count, gap_s)
    finally:
        db.close()
    span = (s["last_finish"] or 0) - (s["first_finish"] or 0)
    result.update({
        "n": n, "finished": s["finished"], "drain_db_per_s": round((s["finished"] - 1) / span, 1) if span else None,
        "drain_wall_s": round(t_done - t_launch, 3), "ok": s["finished"] == n and result["latency_ok"],
    })
    return result


def _cpu_s(pids: list[int]) -> float:
    total = 0.0
    for pid in pids:
        with contextlib.suppress(psutil.Error):
            t = psutil.Process(pid).cpu_times()
            total += t.user + t.system
    return total


def idle_cost(url: str, admin_url: str, dbname: str, postmaster: int, windows: int, window_s: float) -> dict[str, Any]:
    """`jobctl start` (defaults) idle: per window, transactions/s and CPU % of one core of each process kind."""
    db = jt.Db(url)
    admin = psycopg.connect(admin_url, autocommit=True)
    workdir = Path(tempfile.mkdtemp(prefix="jobctl-bench-curve-idle-"))
    samples: dict[str, list[float]] = {"xact_per_s": [], "dispatcher_cpu_pct": [], "workers_cpu_pct": [],
                                       "supervisor_cpu_pct": [], "postgres_cpu_pct": []}
    try:
        with jt.running(url, workdir) as proc:
            jt._wait_registered(db, proc, workdir, dispatcher=True)
            time.sleep(jt.IDLE_WARMUP_S)
            kinds = jt._worker_pids(db)
            workers, dispatchers = kinds.get("worker", []), kinds.get("dispatcher", [])
            start = (time.monotonic(), _cpu_s(dispatchers), _cpu_s(workers), _cpu_s([proc.pid]),
                     cluster_cpu_s(postmaster))
            for _ in range(windows):
                x0, t0 = jt._xacts(admin, dbname), time.monotonic()
                c0 = (_cpu_s(dispatchers), _cpu_s(workers), _cpu_s([proc.pid]), cluster_cpu_s(postmaster))
                time.sleep(window_s)
                x1, t1 = jt._xacts(admin, dbname), time.monotonic()
                c1 = (_cpu_s(dispatchers), _cpu_s(workers), _cpu_s([proc.pid]), cluster_cpu_s(postmaster))
                dt = t1 - t0
                samples["xact_per_s"].append((x1 - x0) / dt)
                for key, a, b in zip(("dispatcher_cpu_pct", "workers_cpu_pct", "supervisor_cpu_pct",
                                      "postgres_cpu_pct"), c0, c1, strict=True):
                    samples[key].append(100 * (b - a) / dt)
            # CPU over all the windows together as well: per window it is a few 10 ms clock ticks at most.
            end = (time.monotonic(), _cpu_s(dispatchers), _cpu_s(workers), _cpu_s([proc.pid]),
                   cluster_cpu_s(postmaster))
    finally:
        db.close()
        admin.close()
    out: dict[str, Any] = {k: round(median(v) or 0.0, 3) for k, v in samples.items()}
    span = end[0] - start[0]
    for i, key in enumerate(("dispatcher_cpu_pct", "workers_cpu_pct", "supervisor_cpu_pct", "postgres_cpu_pct"), 1):
        out[key] = round(100 * (end[i] - start[i]) / span, 3)  # the whole span: finer than a window's ticks
    out.update({"windows": windows, "window_s": window_s, "samples": {k: [round(x, 3) for x in v]
                                                                      for k, v in samples.items()}, "ok": True})
    return out


def history_reads(url: str, repeat: int) -> dict[str, Any]:
    """`jobctl stats --json` (whole CLI, start-up included) and one in-process top snapshot fetch, `repeat` times."""
    from jobctl import urls
    from jobctl.store import open_store
    from jobctl.tui.snapshot import fetch

    stats_s: list[float] = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        done = jt.cli(url, "stats", "--json")
        stats_s.append(time.perf_counter() - t0)
        if done.returncode != 0:
            raise RuntimeError(f"jobctl stats --json failed: {done.stderr.strip()[-300:]}")
    t0 = time.perf_counter()
    jt.cli(url, "--version")
    startup = time.perf_counter() - t0
    fetch_s: list[float] = []
    store = open_store(urls.parse(url))
    try:
        previous = fetch(store)  # connects (the monitor's store stays open between refreshes)
        for _ in range(repeat):
            t0 = time.perf_counter()
            previous = fetch(store, previous)
            fetch_s.append(time.perf_counter() - t0)
    finally:
        store.close()
    return {"stats_wall_s": round(median(stats_s) or 0, 3), "stats_samples_s": [round(x, 3) for x in stats_s],
            "cli_startup_s": round(startup, 3), "top_fetch_s": round(median(fetch_s) or 0, 4),
            "top_fetch_samples_s": [round(x, 4) for x in fetch_s], "ok": True}


def fill_limited(url: str, n: int, keys: int) -> float:
    """`n` `bench.jobs:Limited` jobs round-robin over `keys` keys (to=1), in SQL, as jobctl's enqueue leaves them:
    each key's slot row, the jobs inserted blocked, then the first of each key made ready (the database's
    trigger hands it the key's slot); ANALYZEd."""
    from jobctl.arguments import dump_arguments
    from jobctl.job import job_class_path

    cls = job_class_path(Limited)
    limit = Limited.limits_concurrency
    assert limit is not None
    prefix = limit.for_arguments(Limited, (0,), {}).key[:-1]  # "bench.jobs:Limited/"
    duration = limit.for_arguments(Limited, (0,), {}).duration
    head, tail = dump_arguments((7,), {}).split("7", 1)  # the stored text around the key argument
    t0 = time.perf_counter()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("INSERT INTO jobctl_slots (key, slot, duration_s) SELECT %s || k, 1, %s "
                     "FROM generate_series(0, %s - 1) k", (prefix, duration, keys))
        conn.execute("INSERT INTO jobctl_jobs (queue, class, priority, state, arguments, concurrency_key) "
                     "SELECT %(queue)s, %(cls)s, 0, 'blocked', (%(head)s || (i %% %(keys)s) || %(tail)s)::json, "
                     "%(prefix)s || (i %% %(keys)s) FROM generate_series(0, %(n)s - 1) i",
                     {"queue": Limited.queue, "cls": cls, "head": head, "tail": tail, "keys": keys,
                      "prefix": prefix, "n": n})
        conn.execute("UPDATE jobctl_jobs SET state = 'ready' WHERE id IN (SELECT DISTINCT ON (concurrency_key) id "
                     "FROM jobctl_jobs WHERE state = 'blocked' ORDER BY concurrency_key, priority, id)")
        conn.execute("ANALYZE jobctl_jobs")
        conn.execute("ANALYZE jobctl_slots")
    return time.perf_counter() - t0


def limited_drain(url: str, n: int, keys: int, timeout_s: float) -> dict[str, Any]:
    """`n` jobs (keys == 0: Noop, no limit; else bench.jobs:Limited over `keys` keys) written in SQL, drained;
    then the rate of `perform_all_later` for 2,000 such jobs (limited ones are inserted one by one)."""
    fill_s = fill_ready(url, n) if not keys else fill_limited(url, n, keys)
    with psycopg.connect(url, autocommit=True) as conn:
        blocked = conn.execute("SELECT count(*) FROM jobctl_jobs WHERE state = 'blocked'").fetchone()[0]
        conn.execute("CHECKPOINT")
    result = jt.drain(url, n, timeout_s)
    jobctl.configure(database_url=url)
    try:
        jobctl.count()
        m = 2_000
        t0 = time.perf_counter()
        jobctl.perform_all_later([Noop() for _ in range(m)] if not keys else
                                 [Limited(keys + i) for i in range(m)])
        enqueue_s = time.perf_counter() - t0
    finally:
        jobctl.configure()
    result.update({"keys": keys, "blocked_at_start": blocked, "fill_s": round(fill_s, 2),
                   "enqueue_2000_per_s": round(m / enqueue_s, 1)})
    return result


class Curves:
    """The curves, run by bench/run.py after the rounds (each trial through Bench.trial: CPU, retries, JSON)."""

    def __init__(self, bench: Any) -> None:
        self.b = bench
        s = bench.s
        self.rounds = max(3, s.rounds) if not s.quick else 1
        self.backlogs = _sizes("BENCH_CURVE_BACKLOGS", "10000,100000" if s.quick else "10000,100000,1000000")
        self.queues = _sizes("BENCH_CURVE_QUEUES", "1,10,100,1000")
        self.queues_n = _int("BENCH_CURVE_QUEUES_N", 10_000 if s.quick else 50_000)
        self.scheduled_n = _int("BENCH_CURVE_SCHEDULED_N", 100_000 if s.quick else 1_000_000)
        self.limited_n = _int("BENCH_CURVE_LIMITED_N", 10_000 if s.quick else 100_000)
        self.history = _sizes("BENCH_CURVE_HISTORY", "100000,1000000" if s.quick else "1000000,10000000")

    def run(self) -> None:
        b = self.b
        # Interleaved: each round visits every size, so a drift of the machine spreads over all of them.
        for rnd in range(1, self.rounds + 1):
            for n in self.backlogs:
                b.trial(f"curve_backlog_{n}", rnd, lambda n=n: self.backlog(n))
                # The bare loop of bench/ceiling.py on the same backlog: what PostgreSQL alone does at that size.
                b.trial(f"curve_ceiling_{n}", rnd, lambda n=n: self.ceiling(n))
            for q in self.queues:
                b.trial(f"curve_queues_{q}", rnd, lambda q=q: self.spread(q))
            for keys in (0, self.limited_n, self.limited_n // 10):
                b.trial(f"curve_limited_{keys}", rnd, lambda k=keys: self.limited(k))
        for n in (0, self.scheduled_n):
            b.trial(f"curve_scheduled_{n}", 0, lambda n=n: self.scheduled(n))
        if b.s.wants("curve_history"):
            url = b.fresh_db("jobctl_history")
            jt.migrate(url)
            have = 0
            for n in self.history:
                log(f"curves: filling {n - have:,} finished jobs")
                fill_s = fill_finished(url, n - have)
                have = n
                b.trial(f"curve_history_{n}", 0, lambda n=n, f=fill_s: {**history_reads(url, 3), "finished": n,
                                                                         "fill_s": round(f, 1)})

    def backlog(self, n: int) -> dict[str, Any]:
        url = self.b.fresh_db("jobctl_curve")
        jt.migrate(url)
        fill_s = fill_ready(url, n)
        self.b.sql(url, "CHECKPOINT")
        result = drain_then_latency(url, n, max(self.b.s.drain_timeout_s, 900), 50, self.b.s.latency_gap_s)
        result["fill_s"] = round(fill_s, 2)
        return result

    def ceiling(self, n: int) -> dict[str, Any]:
        url = self.b.fresh_db("jobctl_curve")
        out = subprocess.run([sys.executable, str(BENCH / "ceiling.py"), url, str(n), "--procs", "2",
                              "--batch", str(self.b.s.ceiling_batch)],
                             capture_output=True, text=True, timeout=max(self.b.s.drain_timeout_s, 900) + 60)
        lines = [json.loads(line) for line in out.stdout.splitlines() if line.startswith("{")]
        if out.returncode != 0 or not lines:
            raise RuntimeError(f"ceiling.py exited {out.returncode}: {out.stderr.strip()[-800:]}")
        return dict(lines[-1])

    def spread(self, queues: int) -> dict[str, Any]:
        url = self.b.fresh_db("jobctl_curve")
        jt.migrate(url)
        fill_ready(url, self.queues_n, queues)
        self.b.sql(url, "CHECKPOINT")
        result = jt.drain(url, self.queues_n, self.b.s.drain_timeout_s)
        result["queues"] = queues
        return result

    def limited(self, keys: int) -> dict[str, Any]:
        url = self.b.fresh_db("jobctl_curve")
        jt.migrate(url)
        return limited_drain(url, self.limited_n, keys, self.b.s.drain_timeout_s)

    def scheduled(self, n: int) -> dict[str, Any]:
        url = self.b.fresh_db("jobctl_curve_idle")
        jt.migrate(url)
        queue, cls, args = _noop_args()
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("INSERT INTO jobctl_jobs (queue, class, priority, state, arguments, scheduled_at) "
                         "SELECT %s, %s, 0, 'scheduled', %s::json, now() + interval '1 day' + i * interval '1 ms' "
                         "FROM generate_series(1, %s) i", (queue, cls, args, n))
            conn.execute("VACUUM ANALYZE jobctl_jobs")
        self.b.sql(url, "CHECKPOINT")
        result = idle_cost(url, self.b.admin_url, "jobctl_curve_idle", self.b.postmaster, 3,
                           max(self.b.s.idle_s / 2, 3.0))
        result["scheduled"] = n
        return result


# -- the report's curve tables -----------------------------------------------------------------


def _rows(records: list[dict[str, Any]], trial: str, max_foreign: float) -> tuple[list[dict[str, Any]], bool]:
    ok = [r for r in records if r["trial"] == trial and r.get("ok", True) is not False]
    clean = [r for r in ok if r.get("foreign_cpu_pct", 0) <= max_foreign]
    return (clean, True) if clean else (ok, False)


def _cell(rows: list[dict[str, Any]], clean: bool, key: str, digits: int = 0) -> str:
    vals = [float(r[key]) for r in rows if r.get(key) is not None]
    med = median(vals)
    if med is None:
        return "–"
    f = f"{{:,.{digits}f}}"
    text = f.format(med) if len(vals) == 1 else f"{f.format(med)} [{f.format(min(vals))}–{f.format(max(vals))}]"
    return text + ("" if clean else " (noisy)")


def _med(rows: list[dict[str, Any]], key: str) -> float | None:
    return median([float(r[key]) for r in rows if r.get(key) is not None])


def _flat(values: list[float | None], higher_is_better: bool = True) -> str:
    """Worst point ÷ best point of a curve, and whether it is within 20% (SPEC §16)."""
    vals = [v for v in values if v]
    if len(vals) < 2:
        return "–"
    worst = (min(vals) / max(vals)) if higher_is_better else (max(vals) / min(vals))
    ok = worst >= 0.8 if higher_is_better else worst <= 1.25
    return f"{worst:.2f}× ({'flat within 20%' if ok else '**not flat within 20%**'})"


def _foreign(rows: list[dict[str, Any]]) -> str:
    vals = [float(r.get("foreign_cpu_pct", 0)) for r in rows]
    return "–" if not vals else f"{median(vals):.1f}"


def render(records: list[dict[str, Any]], max_foreign: float) -> str:
    if not any(r["trial"].startswith("curve_") for r in records):
        return ""
    out: list[str] = []
    w = out.append
    w("## How cost grows with work (SPEC §16 curves)")
    w("")
    w("Each cell: median [min–max] over rounds (medians of ≥ 3 outside BENCH_QUICK). \"flat\": worst point ÷ "
      "best point of the curve. Foreign CPU: median % of the machine used by other processes during the trials. "
      "Why each curve that is not flat is not, with its profile: bench/README.md, \"What the curves and the "
      "ceiling show\".")
    w("")

    def sizes(prefix: str) -> list[int]:
        return sorted({int(r["trial"][len(prefix):]) for r in records if r["trial"].startswith(prefix)})

    backlog = sizes("curve_backlog_")
    if backlog:
        w("**Backlog.** A ready backlog of N no-op jobs written in SQL, ANALYZEd; `jobctl start` (defaults) drains "
          "it; then, with the same runtime idle, 50 single `Stamp` jobs 20 ms apart: pickup latency from the "
          "enqueue's commit to the job starting (the table now holds N finished rows and the drain's dead index "
          "entries). The bare ceiling (bench/ceiling.py) drains the same backlog in the same round: where it "
          "falls too, PostgreSQL itself does.")
        w("")
        w("| backlog | drain, jobs/s | wall from launch, s | bare ceiling on the same backlog, jobs/s "
          "| jobctl ÷ ceiling | pickup p50, ms | pickup p99, ms | foreign CPU % |")
        w("|---|---|---|---|---|---|---|---|")
        drains, p50s, bare = [], [], []
        for n in backlog:
            rows, clean = _rows(records, f"curve_backlog_{n}", max_foreign)
            crows, cclean = _rows(records, f"curve_ceiling_{n}", max_foreign)
            drains.append(_med(rows, "drain_db_per_s"))
            bare.append(_med(crows, "drain_db_per_s"))
            p50s.append(_med(rows, "latency_p50_ms"))
            by_round = {r["round"]: r["drain_db_per_s"] for r in crows if r.get("drain_db_per_s")}
            ratios = [r["drain_db_per_s"] / by_round[r["round"]] for r in rows
                      if r.get("drain_db_per_s") and r["round"] in by_round]
            ratio = f"{median(ratios):.2f}×" if ratios else "–"
            w(f"| {n:,} | {_cell(rows, clean, 'drain_db_per_s')} | {_cell(rows, clean, 'drain_wall_s', 2)} "
              f"| {_cell(crows, cclean, 'drain_db_per_s')} | {ratio} "
              f"| {_cell(rows, clean, 'latency_p50_ms', 2)} | {_cell(rows, clean, 'latency_p99_ms', 2)} "
              f"| {_foreign(rows + crows)} |")
        w(f"| flat? | {_flat(drains)} | | {_flat(bare)} | | {_flat(p50s, higher_is_better=False)} | | |")
        w("")
    queues = sizes("curve_queues_")
    if queues:
        n = next((r.get("n") for r in records if r["trial"].startswith("curve_queues_") and r.get("n")), 0)
        w(f"**Queues.** {n:,} ready no-op jobs spread round-robin over Q queues, `jobctl start` (defaults: workers "
          "on `*`).")
        w("")
        w("| queues | drain, jobs/s | foreign CPU % |")
        w("|---|---|---|")
        drains = []
        for q in queues:
            rows, clean = _rows(records, f"curve_queues_{q}", max_foreign)
            drains.append(_med(rows, "drain_db_per_s"))
            w(f"| {q:,} | {_cell(rows, clean, 'drain_db_per_s')} | {_foreign(rows)} |")
        w(f"| flat? | {_flat(drains)} | |")
        w("")
    limited = sizes("curve_limited_")
    if limited:
        n = next((r.get("n") for r in records if r["trial"].startswith("curve_limited_") and r.get("n")), 0)
        w(f"**Concurrency keys.** {n:,} jobs written in SQL as jobctl's enqueue leaves them (limited ones: a slot per "
          "key, the first job of each key ready and holding it, the others blocked), drained by `jobctl start` "
          "(defaults): `bench.jobs:Noop` (no limit) against `bench.jobs:Limited` (`ConcurrencyLimit(to=1)`, key = "
          "the job's argument) over K keys. Then one `perform_all_later` of 2,000 more such jobs, timed.")
        w("")
        w("| keys | jobs blocked at start | drain, jobs/s | `perform_all_later` of 2,000, jobs/s | foreign CPU % |")
        w("|---|---|---|---|---|")
        drains = []
        for k in limited:
            rows, clean = _rows(records, f"curve_limited_{k}", max_foreign)
            drains.append(_med(rows, "drain_db_per_s"))
            label = "none (no limit)" if k == 0 else f"{k:,}"
            w(f"| {label} | {_cell(rows, clean, 'blocked_at_start')} | {_cell(rows, clean, 'drain_db_per_s')} "
              f"| {_cell(rows, clean, 'enqueue_2000_per_s')} | {_foreign(rows)} |")
        w(f"| flat? | | {_flat(drains)} | | |")
        w("")
    scheduled = sizes("curve_scheduled_")
    if scheduled:
        w("**Scheduled jobs, idle.** `jobctl start` (defaults: supervisor, 2 workers, dispatcher) with nothing due: "
          "no jobs, then N jobs scheduled a day ahead (written in SQL, VACUUM ANALYZEd). After a 12 s warm-up, 3 "
          "windows: transactions/s of the database (pg_stat_database), median of the windows; CPU as % of one "
          "core over all the windows (psutil: 10 ms clock ticks).")
        w("")
        w("| scheduled | transactions/s | dispatcher CPU % | workers CPU % (both) | supervisor CPU % "
          "| PostgreSQL CPU % | foreign CPU % |")
        w("|---|---|---|---|---|---|---|")
        for n in scheduled:
            rows, clean = _rows(records, f"curve_scheduled_{n}", max_foreign)
            w(f"| {n:,} | {_cell(rows, clean, 'xact_per_s', 2)} | {_cell(rows, clean, 'dispatcher_cpu_pct', 2)} "
              f"| {_cell(rows, clean, 'workers_cpu_pct', 2)} | {_cell(rows, clean, 'supervisor_cpu_pct', 2)} "
              f"| {_cell(rows, clean, 'postgres_cpu_pct', 2)} | {_foreign(rows)} |")
        w("")
    history = sizes("curve_history_")
    if history:
        w("**Finished history.** N finished jobs written in SQL (then VACUUM ANALYZE, as autovacuum would); "
          "`jobctl stats --json` wall time (whole CLI, start-up included; median of 3) and one `top` refresh "
          "(`jobctl.tui.snapshot.fetch` on an open store, median of 3).")
        w("")
        w("| finished jobs | `jobctl stats --json`, s | CLI start-up alone, s | top snapshot fetch, s "
          "| foreign CPU % |")
        w("|---|---|---|---|---|")
        for n in history:
            rows, clean = _rows(records, f"curve_history_{n}", max_foreign)
            w(f"| {n:,} | {_cell(rows, clean, 'stats_wall_s', 3)} | {_cell(rows, clean, 'cli_startup_s', 3)} "
              f"| {_cell(rows, clean, 'top_fetch_s', 4)} | {_foreign(rows)} |")
        w("")
    return "\n".join(out)
