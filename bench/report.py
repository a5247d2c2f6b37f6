"""The markdown report: medians [min-max] over clean trials, per-round ratios, jobctl against SPEC §8."""

from __future__ import annotations

import datetime as dt
import platform
from collections.abc import Callable
from typing import Any

from bench.common import NCPU, Settings, median

Records = list[dict[str, Any]]


def _clean(records: Records, trial: str, max_foreign: float) -> tuple[Records, bool]:
    """The ok trials of a kind without foreign CPU above the limit (all ok ones if none is clean)."""
    ok = [r for r in records if r["trial"] == trial and r.get("ok", True) is not False]
    clean = [r for r in ok if r.get("foreign_cpu_pct", 0) <= max_foreign]
    return (clean, True) if clean else (ok, False)


def _values(records: Records, trial: str, key: str | Callable[[dict[str, Any]], Any],
            max_foreign: float) -> tuple[list[float], bool]:
    rows, clean = _clean(records, trial, max_foreign)
    get = key if callable(key) else (lambda r: r.get(key))
    return [float(v) for v in (get(r) for r in rows) if v is not None], clean


def fmt(values: list[float], clean: bool = True, digits: int = 0, unit: str = "") -> str:
    if not values:
        return "–"
    mark = "" if clean else " (noisy)"
    f = f"{{:,.{digits}f}}"
    med = median(values)
    assert med is not None
    if len(values) == 1:
        return f.format(med) + unit + mark
    return f"{f.format(med)}{unit} [{f.format(min(values))}–{f.format(max(values))}]" + mark


def _by_round(records: Records, trial: str, key: str, max_foreign: float) -> dict[int, float]:
    rows, _ = _clean(records, trial, max_foreign)
    return {r["round"]: float(r[key]) for r in rows if r.get(key) is not None}


def ratio(records: Records, a: tuple[str, str], b: tuple[str, str], max_foreign: float) -> list[float]:
    """a/b per round where both were measured (the machine drifts between rounds)."""
    ra, rb = _by_round(records, *a, max_foreign), _by_round(records, *b, max_foreign)
    return [ra[k] / rb[k] for k in sorted(ra) if rb.get(k)]


def fmt_ratio(values: list[float], digits: int = 1) -> str:
    if not values:
        return "–"
    med = median(values)
    assert med is not None
    if len(values) == 1:
        return f"{med:.{digits}f}×"
    return f"{med:.{digits}f}× [{min(values):.{digits}f}–{max(values):.{digits}f}]"


def _first(records: Records, trial: str, key: str) -> Any:
    for r in records:
        if r["trial"] == trial and r.get(key) is not None:
            return r[key]
    return None


def render(records: Records, s: Settings, *, elapsed: float, server_version: str, discarded: int = 0,
           skipped312: str = "") -> str:
    mf = s.max_foreign_pct
    v = lambda trial, key: _values(records, trial, key, mf)  # noqa: E731
    pgq_version = _first(records, "pgqueuer", "version") or "1.6.0"
    pro_version = _first(records, "procrastinate", "version") or "3.10.0"
    out: list[str] = []
    w = out.append
    w(f"# jobctl benchmark — {dt.datetime.now().strftime('%Y-%m-%d %H:%M')}")
    w("")
    w(f"{NCPU} cores, {platform.python_implementation()} {platform.python_version()}, PostgreSQL "
      f"{server_version} (fresh throwaway cluster, server defaults, durable commits), "
      f"{s.rounds} interleaved round(s){' (BENCH_QUICK)' if s.quick else ''}, run took {elapsed / 60:.1f} min. "
      f"Figures: median [min–max] over rounds; ratios are medians of per-round ratios. "
      f"Trials with more than {mf:g}% CPU used by other processes are left out of the medians "
      f"(\"noisy\": no clean trial was left); {discarded} disturbed attempt(s) were discarded and run again.")
    w("")
    foreign_all = [float(r.get("foreign_cpu_pct", 0)) for r in records]
    if discarded or any(f > 1 for f in foreign_all):
        kept = [float(r.get("foreign_cpu_pct", 0)) for r in records if r.get("foreign_cpu_pct", 0) <= mf]
        w(f"**The machine was shared** during this run (other engineers' test suites and benchmarks on the same "
          f"2 cores): other processes used a median {median(foreign_all) or 0:.1f}% (max {max(foreign_all):.1f}%) "
          f"of its CPU over the trials, {median(kept) or 0:.1f}% over those counted; {discarded} disturbed "
          f"attempt(s) were run again. Their disk flushes are not counted as CPU but slow every durable commit "
          f"(see pgbench's spread): compare figures within this run only.")
        w("")
    w("## Against the peers and the bare ceiling (same cluster, same run)")
    w("")
    if skipped312:
        w(f"**oban and chancy were skipped: {skipped312}.**")
        w("")
    w("| system | drain, no-op jobs/s | bulk enqueue, jobs/s | single enqueue, jobs/s | jobctl drain ÷ this "
      "| foreign CPU % (drain trial, median) |")
    w("|---|---|---|---|---|---|")
    mine = ("jobctl_pg", "drain_db_per_s")

    def foreign(trial: str) -> str:
        vals = [float(r.get("foreign_cpu_pct", 0)) for r in _clean(records, trial, mf)[0]]
        return "–" if not vals else f"{median(vals):.1f}"

    w(f"| jobctl (default config) | {fmt(*v(*mine))} | {fmt(*v('jobctl_pg', 'enqueue_bulk_per_s'))} "
      f"| {fmt(*v('jobctl_pg', 'enqueue_single_per_s'))} | 1× | {foreign('jobctl_pg')} |")
    peers = [("pgqueuer", f"PgQueuer {pgq_version}"), ("procrastinate", f"procrastinate {pro_version}"),
             ("oban", f"oban {_first(records, 'oban', 'version') or '0.7.0'}"),
             ("chancy", f"chancy {_first(records, 'chancy', 'version') or '0.26.0'}")]
    for trial, label in peers:
        if skipped312 and trial in ("oban", "chancy"):
            w(f"| {label} | skipped | | | | |")
            continue
        w(f"| {label} | {fmt(*v(trial, 'drain_per_s'))} | {fmt(*v(trial, 'enqueue_batch_per_s'))} "
          f"| {fmt(*v(trial, 'enqueue_single_per_s'))} | {fmt_ratio(ratio(records, mine, (trial, 'drain_per_s'), mf))} "
          f"| {foreign(trial)} |")
    w(f"| bare ceiling (bench/ceiling.py: 2 procs, claims of {s.ceiling_batch}) "
      f"| {fmt(*v('bare_ceiling', 'drain_db_per_s'))} | | | "
      f"{fmt_ratio(ratio(records, mine, ('bare_ceiling', 'drain_db_per_s'), mf), 2)} | {foreign('bare_ceiling')} |")
    w(f"| … the same bare loop on jobctl's own table (every index and trigger; diagnosis) "
      f"| {fmt(*v('bare_on_jobctl_schema', 'drain_db_per_s'))} | | | "
      f"{fmt_ratio(ratio(records, mine, ('bare_on_jobctl_schema', 'drain_db_per_s'), mf), 2)} "
      f"| {foreign('bare_on_jobctl_schema')} |")
    w("")
    w(f"Drain: jobctl {s.n:,} jobs by `jobctl start --skip-recurring --log-level warning` with the default "
      f"config (2 worker processes × 3 threads, 1 dispatcher), rate from the first to the last `finished_at` "
      f"in the database; the bare ceiling the same {s.n:,} jobs, right after jobctl's drain, by a minimal psycopg "
      f"claim/ack loop (bench/ceiling.py: 2 processes, one statement and one durable commit per batch that "
      f"finishes the previous batch and claims the next with FOR UPDATE SKIP LOCKED; no product semantics), "
      f"rate from its `finished_at`s. The peers {s.peer_n:,} jobs (they are slow), 2 worker processes each, at "
      f"the reference harness's settings (../shared/bench-peers, vendored in bench/peers: PgQueuer batch_size=10 "
      f"on uvloop, procrastinate concurrency=10 with a pool of 11, oban queue limit 10 with a pool of 10 on "
      f"uvloop, chancy AsyncExecutor concurrency 100 with eager_polling on; oban and chancy on Python 3.12 in "
      f".bench-venv312, and with no exit-when-empty mode, so a watcher stops them), rate from their handlers' "
      f"completion stamps. Everyone's table is ANALYZEd between enqueue and drain. Enqueue: the first "
      f"{s.single:,} jobs one at a time, the rest in calls of {s.batch:,} (jobctl: `perform_later()` and "
      f"`perform_all_later()`). Ratios: medians of per-round ratios.")
    w("")

    w("## jobctl against its targets (SPEC §8)")
    w("")
    w("| figure | measured | target | met |")
    w("|---|---|---|---|")

    def row(label: str, values: tuple[list[float], bool], target: str, ok: Callable[[float], bool] | None,
            digits: int = 0, unit: str = "") -> None:
        vals, clean = values
        med = median(vals)
        met = "–" if med is None or ok is None else ("yes" if ok(med) else "**no**")
        w(f"| {label} | {fmt(vals, clean, digits, unit)} | {target} | {met} |")

    drain = v("jobctl_pg", "drain_db_per_s")
    row(f"drain of {s.n:,} no-op jobs, PostgreSQL, jobs/s", drain, "≥ 50,000 (stretch 100,000)",
        lambda m: m >= 50_000)
    # The best peer of each round (the machine drifts between rounds): jobctl ÷ the fastest peer drain.
    mine_by = _by_round(records, "jobctl_pg", "drain_db_per_s", mf)
    peer_by = [_by_round(records, t, "drain_per_s", mf) for t in ("pgqueuer", "procrastinate", "oban", "chancy")]
    vs_best = [mine_by[k] / max(p[k] for p in peer_by if p.get(k)) for k in sorted(mine_by)
               if any(p.get(k) for p in peer_by)]
    w(f"| … ÷ best peer of the round | {fmt_ratio(vs_best)} | ≥ 5× | "
      f"{'–' if not vs_best else ('yes' if (median(vs_best) or 0) >= 5 else '**no**')} |")
    vs_bare = ratio(records, ("jobctl_pg", "drain_db_per_s"), ("bare_ceiling", "drain_db_per_s"), mf)
    w(f"| … ÷ the bare ceiling in the same round (SPEC §16) | {fmt_ratio(vs_bare, 2)} | ≥ 0.80× | "
      f"{'–' if not vs_bare else ('yes' if (median(vs_bare) or 0) >= 0.8 else '**no**')} |")
    row("… same drain, wall time from `jobctl start` to the last job, s", v("jobctl_pg", "drain_wall_s"), "", None,
        digits=2)
    row("… same drain, first claim to last finish, jobs/s", v("jobctl_pg", "drain_claim_to_finish_per_s"), "", None)
    row(f"bulk enqueue, one `perform_all_later` of {s.n:,}, jobs/s", v("jobctl_bulk_one_call", "per_s"),
        "≥ 200,000", lambda m: m >= 200_000)
    row(f"bulk enqueue, calls of {s.batch:,}, jobs/s", v("jobctl_pg", "enqueue_bulk_per_s"), "≥ 200,000",
        lambda m: m >= 200_000)
    row(f"… the ceiling: PostgreSQL's COPY of {s.n:,} prebuilt rows into jobctl's table, jobs/s",
        v("copy_ceiling", "per_s"), "", None)
    to_ceiling = ratio(records, ("jobctl_bulk_one_call", "per_s"), ("copy_ceiling", "per_s"), mf)
    w(f"| … one `perform_all_later` ÷ that ceiling | {fmt_ratio(to_ceiling, 2)} | | – |")
    single_vs = ratio(records, ("jobctl_pg", "enqueue_single_per_s"), ("pgbench", "tps"), mf)
    w(f"| single enqueue ÷ pgbench 1-client tps | {fmt_ratio(single_vs, 2)} | ≥ 0.90× | "
      f"{'–' if not single_vs else ('yes' if (median(single_vs) or 0) >= 0.9 else '**no**')} |")
    row("pgbench 1 client, insert + update, tps (the ceiling)", v("pgbench", "tps"), "", None)
    row("pickup latency p50, idle worker, ms (from the enqueue's commit returning to the job starting)",
        v("jobctl_idle", "latency_from_commit_p50_ms"), "≤ 2", lambda m: m <= 2, digits=2)
    row("pickup latency p99, ms", v("jobctl_idle", "latency_from_commit_p99_ms"), "≤ 10", lambda m: m <= 10,
        digits=2)
    row("… p50 counted from the `perform_later` call (adds the enqueue itself), ms",
        v("jobctl_idle", "latency_p50_ms"), "", None, digits=2)
    row("… p99 counted from the `perform_later` call, ms", v("jobctl_idle", "latency_p99_ms"), "", None, digits=2)
    row("… the enqueue alone: `perform_later` p50, ms", v("jobctl_idle", "enqueue_call_p50_ms"), "", None, digits=2)
    row("… its floor: a bare psycopg INSERT + commit at the same spacing, p50, ms",
        v("jobctl_idle", "bare_insert_p50_ms"), "", None, digits=2)
    row("idle transactions/s, whole `jobctl start` (supervisor, 2 workers, dispatcher)",
        v("jobctl_idle", "idle_xact_per_s"), "", None, digits=2)
    row("idle transactions/s per worker process (`jobctl start` with only its 2 workers, ÷ 2; "
        "supervisor included)", v("jobctl_idle", "idle_xact_per_s_per_worker"), "≤ 1", lambda m: m <= 1, digits=2)
    row("idle worker process RSS, MB (max of the 2; bench.jobs imported, no example app)",
        v("jobctl_idle", "worker_rss_mb_max"), "≤ 60", lambda m: m <= 60, digits=1)
    row(f"SQLite drain of {s.sqlite_n:,} no-op jobs, synchronous=FULL, jobs/s", v("jobctl_sqlite", "drain_db_per_s"),
        "≥ 30,000", lambda m: m >= 30_000)
    if s.big:
        row(f"sustained drain of a {s.big_n:,}-job backlog, jobs/s", v("big_backlog", "drain_db_per_s"),
            "≥ 40,000", lambda m: m >= 40_000)
        kept = ratio(records, ("big_retained", "drain_db_per_s"), ("big_none_retained", "drain_db_per_s"), mf)
        row(f"drain of {s.retained_n:,} with {s.big_n:,}+ finished retained, jobs/s ({s.retained_pairs} pairs)",
            v("big_retained", "drain_db_per_s"), "", None)
        row(f"drain of {s.retained_n:,} with none retained (each just before its pair), jobs/s",
            v("big_none_retained", "drain_db_per_s"), "", None)
        w(f"| … retained ÷ none | {fmt_ratio(kept, 2)} | ≥ 0.90× | "
          f"{'–' if not kept else ('yes' if (median(kept) or 0) >= 0.9 else '**no**')} |")
        row(f"idle transactions/s, whole `jobctl start`, {s.big_n:,} finished retained",
            v("big_latency_retained", "idle_xact_per_s"), "", None, digits=2)
        row(f"pickup latency p50 with {s.big_n:,} finished retained, ms (from the commit)",
            v("big_latency_retained", "latency_from_commit_p50_ms"), "≤ 2", lambda m: m <= 2, digits=2)
        row("… p99, ms", v("big_latency_retained", "latency_from_commit_p99_ms"), "≤ 10", lambda m: m <= 10,
            digits=2)
        stats, _ = v("big_stats", "stats_wall_s")
        if stats:
            row(f"`jobctl stats --json` with {s.big_n:,} finished jobs, s (whole CLI)", (stats, True), "< 1",
                lambda m: m < 1, digits=3)
        else:
            w(f"| `jobctl stats --json` with {s.big_n:,} finished jobs | not measured: "
              f"`jobctl stats --help` fails | < 1 s | – |")
    else:
        w("| 1M backlog, 1M retained, `jobctl stats` | not run (BENCH_BIG=1) | SPEC §8 | – |")
    w("")

    from bench import curves

    curve_text = curves.render(records, mf)
    if curve_text:
        w(curve_text)
    problems = [r for r in records if r.get("ok") is False]
    noisy = [r for r in records if r.get("foreign_cpu_pct", 0) > mf]
    if problems or noisy:
        w("## Trials not counted")
        w("")
        for r in problems:
            why = r.get("error") or ", ".join(f"{k}={r.get(k)}" for k in ("finished", "not_finished", "exit_code")
                                               if k in r)
            w(f"- round {r['round']} {r['trial']}: not ok ({why})")
        for r in noisy:
            w(f"- round {r['round']} {r['trial']}: {r['foreign_cpu_pct']}% foreign CPU")
        w("")
    w("Raw trials: bench/results/latest.jsonl (one JSON line each, with CPU: machine, PostgreSQL, foreign).")
    w("")
    return "\n".join(out)


def main() -> int:
    """Re-render bench/results/latest.md from latest.jsonl (same BENCH_* settings as the run)."""
    import argparse
    import json
    import sys

    from bench.common import BENCH

    p = argparse.ArgumentParser(description=main.__doc__)
    p.add_argument("--elapsed-min", type=float, required=True, help="the run's duration, as its log said")
    p.add_argument("--server-version", default="15")
    a = p.parse_args()
    results = BENCH / "results"
    rows = [json.loads(line) for line in (results / "latest.jsonl").read_text().splitlines() if line.strip()]
    records = [r for r in rows if not r.get("discarded")]
    text = render(records, Settings.from_env(), elapsed=a.elapsed_min * 60, server_version=a.server_version,
                  discarded=sum(1 for r in rows if r.get("discarded")))
    (results / "latest.md").write_text(text)
    sys.stdout.write(text)
    return 0


if __name__ == "__main__":  # .bench-venv/bin/python -m bench.report --elapsed-min M (from the repo's root)
    import sys

    sys.exit(main())
