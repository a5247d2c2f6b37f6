"""Shared bits of the bench: settings from the environment, CPU accounting, the throwaway cluster."""

from __future__ import annotations

import importlib.util
import os
import resource
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
PG_BIN = Path(os.environ.get("PG_BIN", "/usr/lib/postgresql/15/bin"))
HZ = os.sysconf("SC_CLK_TCK")
NCPU = os.cpu_count() or 1


def log(message: str) -> None:
    print(f"bench: {message}", file=sys.stderr, flush=True)


def _int(name: str, default: int) -> int:
    return int(os.environ.get(name, default))


def _float(name: str, default: float) -> float:
    return float(os.environ.get(name, default))


@dataclass(frozen=True)
class Settings:
    """Every knob, from BENCH_* variables; BENCH_QUICK=1 changes the defaults to a ~2-minute smoke run."""

    quick: bool
    rounds: int
    n: int                 # jobctl drain, PostgreSQL
    peer_n: int            # PgQueuer / procrastinate drain
    single: int            # jobs enqueued one transaction each (jobctl and peers)
    batch: int             # jobs per bulk-enqueue call (jobctl and peers)
    sqlite_n: int
    pgbench_s: int
    latency_n: int
    latency_gap_s: float
    idle_s: float
    drain_timeout_s: float
    quiet_pct: float
    quiet_max_wait_s: float
    max_foreign_pct: float
    retries: int           # runs again of a trial that other processes disturbed
    retry_budget_s: float  # no retries once the run is this old
    big: bool
    big_n: int
    retained_pairs: int    # interleaved (none retained, 1M retained) drain pairs
    retained_n: int        # jobs drained in each of those drains
    pgss: bool             # pg_stat_statements on the cluster, top statements of each jobctl drain reported
    curves: bool           # the SPEC §16 curves (bench/curves.py) after the rounds
    ceiling_batch: int     # jobs per claim of the bare ceiling loop (bench/ceiling.py)
    only: frozenset[str]   # run only these trials (BENCH_ONLY=jobctl_pg,latency,...); empty = all

    @classmethod
    def from_env(cls) -> Settings:
        quick = os.environ.get("BENCH_QUICK", "") not in ("", "0")
        n = _int("BENCH_N", 10_000 if quick else 50_000)
        only = frozenset(x.strip() for x in os.environ.get("BENCH_ONLY", "").split(",") if x.strip())
        return cls(
            quick=quick,
            rounds=_int("BENCH_ROUNDS", 1 if quick else 3),
            n=n,
            peer_n=_int("BENCH_PEER_N", 3_000 if quick else 20_000),
            single=_int("BENCH_SINGLE", 500 if quick else 2_000),
            batch=_int("BENCH_BATCH", 1_000),
            sqlite_n=_int("BENCH_SQLITE_N", n),
            pgbench_s=_int("BENCH_PGBENCH_S", 5 if quick else 15),
            latency_n=_int("BENCH_LATENCY_N", 50 if quick else 200),
            latency_gap_s=_float("BENCH_LATENCY_GAP_S", 0.02),
            idle_s=_float("BENCH_IDLE_S", 5 if quick else 10),
            drain_timeout_s=_float("BENCH_DRAIN_TIMEOUT_S", 300),
            quiet_pct=_float("BENCH_QUIET_PCT", 15),
            quiet_max_wait_s=_float("BENCH_QUIET_MAX_WAIT_S", 5 if quick else 10),
            max_foreign_pct=_float("BENCH_MAX_FOREIGN_PCT", 10),
            retries=_int("BENCH_RETRIES", 1 if quick else 2),
            retry_budget_s=_float("BENCH_RETRY_BUDGET_S", 90 if quick else 600),
            big=os.environ.get("BENCH_BIG", "") not in ("", "0"),
            big_n=_int("BENCH_BIG_N", 1_000_000),
            retained_pairs=_int("BENCH_RETAINED_PAIRS", 3),
            retained_n=_int("BENCH_RETAINED_N", 200_000),
            pgss=os.environ.get("BENCH_PGSS", "") not in ("", "0"),
            curves=os.environ.get("BENCH_CURVES", "1") not in ("", "0"),
            ceiling_batch=_int("BENCH_CEILING_BATCH", 200),
            only=only,
        )

    def wants(self, trial: str) -> bool:
        """Whether BENCH_ONLY lets `trial` run: its name, or a prefix ending in `*` (`curve_*`, `curve_backlog*`)."""
        return not self.only or trial in self.only or any(
            o.endswith("*") and trial.startswith(o[:-1]) for o in self.only)


def load_pgcluster() -> Any:
    """tests/pgcluster.py, imported by path (tests/ is not a package)."""
    spec = importlib.util.spec_from_file_location("jobctl_bench_pgcluster", ROOT / "tests" / "pgcluster.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# -- CPU accounting (after ../shared/bench-peers/cpu_guard.py) ---------------------------------


def machine_busy_s() -> float:
    """Whole-machine busy CPU seconds so far (all cores)."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:9]]
    return (sum(v) - v[3] - v[4]) / HZ


def _stat(pid: int) -> list[str] | None:
    try:
        with open(f"/proc/{pid}/stat") as f:
            data = f.read()
    except OSError:
        return None
    return data[data.rindex(")") + 2:].split()


def cluster_cpu_s(postmaster: int) -> float:
    """CPU seconds of the postmaster, its reaped children and its live children."""
    st = _stat(postmaster)
    if st is None:
        return 0.0
    total = sum(int(st[i]) for i in (11, 12, 13, 14))
    for name in os.listdir("/proc"):
        if name.isdigit():
            s = _stat(int(name))
            if s is not None and int(s[1]) == postmaster:
                total += int(s[11]) + int(s[12])
    return total / HZ


def own_cpu_s() -> float:
    """This process plus every child it has waited for."""
    total = 0.0
    for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN):
        ru = resource.getrusage(who)
        total += ru.ru_utime + ru.ru_stime
    return total


def _processes() -> dict[int, tuple[int, int, int]]:
    """pid -> (ppid, starttime, CPU ticks) of every live process."""
    out = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            s = _stat(int(name))
            if s is not None:
                out[int(name)] = (int(s[1]), int(s[19]), int(s[11]) + int(s[12]))
    return out


class CpuMeter:
    """CPU over a trial: the machine, PostgreSQL, ours, other user processes (foreign), the kernel's threads.

    Foreign is the CPU of live user-space processes that are neither ours (descendants of this
    process) nor the cluster's: another workload on the shared machine. Kernel threads (block I/O,
    journal, softirq) work for us too, so they are reported apart and never called foreign.
    """

    def __init__(self, postmaster: int) -> None:
        self.postmaster = postmaster

    def __enter__(self) -> CpuMeter:
        self.t0 = time.monotonic()
        self.m0 = machine_busy_s()
        self.c0 = cluster_cpu_s(self.postmaster)
        self.o0 = own_cpu_s()
        self.p0 = _processes()
        return self

    def _foreign_and_kernel(self, p1: dict[int, tuple[int, int, int]]) -> tuple[float, float]:
        me = os.getpid()
        foreign = kernel = 0
        for pid, (ppid, start, ticks) in p1.items():
            before = self.p0.get(pid)
            delta = ticks - (before[2] if before and before[1] == start else 0)
            if delta <= 0:
                continue
            if pid == 2 or ppid == 2:
                kernel += delta
                continue
            walk, seen = pid, 0
            while walk not in (0, 1, me, self.postmaster) and seen < 64:
                walk, seen = p1.get(walk, (0, 0, 0))[0], seen + 1
            if walk in (0, 1):
                foreign += delta
        return foreign / HZ, kernel / HZ

    def __exit__(self, *exc: object) -> None:
        wall = time.monotonic() - self.t0
        machine = machine_busy_s() - self.m0
        cluster = cluster_cpu_s(self.postmaster) - self.c0
        ours = own_cpu_s() - self.o0
        foreign, kernel = self._foreign_and_kernel(_processes())
        cap = NCPU * max(wall, 1e-9)
        self.result = {
            "trial_wall_s": round(wall, 2),
            "machine_busy_pct": round(100 * machine / cap, 1),
            "postgres_cpu_pct": round(100 * cluster / cap, 1),
            "ours_cpu_pct": round(100 * ours / cap, 1),
            "kernel_threads_cpu_pct": round(100 * kernel / cap, 1),
            "foreign_cpu_pct": round(100 * foreign / cap, 1),
            "unattributed_cpu_pct": round(100 * max(0.0, machine - cluster - ours - kernel - foreign) / cap, 1),
        }


def wait_quiet(threshold_pct: float, max_wait_s: float) -> float:
    """Wait (bounded) until the machine is below `threshold_pct` busy over 1 s; returns the last reading."""
    deadline = time.monotonic() + max_wait_s
    while True:
        b0, t0 = machine_busy_s(), time.monotonic()
        time.sleep(1.0)
        busy = 100 * (machine_busy_s() - b0) / (NCPU * (time.monotonic() - t0))
        if busy < threshold_pct:
            return busy
        if time.monotonic() > deadline:
            log(f"machine still {busy:.0f}% busy after {max_wait_s:.0f}s; going ahead")
            return busy
        log(f"machine {busy:.0f}% busy; waiting")


# -- statistics --------------------------------------------------------------------------------


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank-interpolated percentile (q in 0..100)."""
    s = sorted(values)
    if not s:
        return float("nan")
    k = (len(s) - 1) * q / 100
    lo, hi = int(k), min(int(k) + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (k - lo)


def median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None
