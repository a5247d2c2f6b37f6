"""SPEC 13's two drain figures, on their own (not part of `make bench`'s rounds):

* 10,000 no-op jobs in one batch (with on_success / on_finish callbacks) against the same 10,000 jobs
  without one (target ≥ 0.9×);
* 10,000 jobs outside any batch on this checkout against the same on another checkout of jobctl, e.g.
  the commit before batches (`--before DIR`, a tree made by `git archive`; target ≥ 0.97×).

    .venv/bin/python bench/batch_drain.py [--before DIR] [--rounds 5] [--n 10000]

Each trial: a fresh database on one throwaway PostgreSQL cluster, the jobs enqueued by the code under
test (`perform_all_later`, inside `jobctl.batch()` for the batched trial), `ANALYZE`, then `jobctl start`
(defaults: 2 worker processes × 3 threads) until none is left; the rate is from the first to the last
`finished_at`. Trials are interleaved round by round; medians are printed as JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
from pgcluster import Cluster  # noqa: E402

ENQUEUE = """
import sys, jobctl
from bench.jobs import Noop
n, batched = int(sys.argv[1]), sys.argv[2] == "1"
if batched:
    from bench.jobs import BatchDone
    with jobctl.batch(on_success=BatchDone(), on_finish=BatchDone(), description="bench"):
        for start in range(0, n, 1000):
            jobctl.perform_all_later([Noop() for _ in range(min(1000, n - start))])
else:
    for start in range(0, n, 1000):
        jobctl.perform_all_later([Noop() for _ in range(min(1000, n - start))])
"""


def _env(code: Path, url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JOBCTL_", "DATABASE_URL", "BENCH_"))}
    env["JOBCTL_DATABASE_URL"] = url
    env["PYTHONPATH"] = str(code)  # ahead of the editable install: this tree's jobctl runs
    return env


def trial(code: Path, url: str, n: int, batched: bool) -> float:
    """Drain rate (jobs/s) of `n` jobs enqueued and run by the jobctl in `code`."""
    env = _env(code, url)
    with tempfile.TemporaryDirectory(prefix="jobctl-batch-bench-") as cwd:
        subprocess.run([sys.executable, "-m", "jobctl.cli", "db", "migrate"], cwd=cwd, env=env, check=True,
                       capture_output=True)
        subprocess.run([sys.executable, "-c", ENQUEUE, str(n), "1" if batched else "0"], cwd=cwd, env=env,
                       check=True)
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("ANALYZE jobctl_jobs")
            proc = subprocess.Popen([sys.executable, "-m", "jobctl.cli", "start", "--skip-recurring", "--log-level",
                                     "warning"], cwd=cwd, env=env, start_new_session=True)
            try:
                deadline = time.monotonic() + 300
                expected = n + (2 if batched else 0)  # the callbacks run too
                ended = "SELECT count(*) FROM jobctl_jobs WHERE state IN ('finished', 'failed')"
                while conn.execute(ended).fetchone()[0] < expected:  # type: ignore[index]
                    if time.monotonic() > deadline or proc.poll() is not None:
                        raise RuntimeError("drain did not complete")
                    time.sleep(0.05)
            finally:
                proc.send_signal(signal.SIGTERM)
                proc.wait(60)
            first, last = conn.execute(
                "SELECT extract(epoch FROM min(finished_at))::float8, extract(epoch FROM max(finished_at))::float8 "
                "FROM jobctl_jobs WHERE class = 'bench.jobs:Noop' AND id <= %s", (n,)).fetchone()  # type: ignore[misc]
    return (n - 1) / (last - first)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--before", type=Path, help="another jobctl tree whose unbatched drain to compare with")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--n", type=int, default=10_000)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="jobctl-batch-bench-pg-"))
    os.chmod(root, 0o755)
    cluster = Cluster(root / "cluster")
    base = cluster.start()
    kinds = [("unbatched", ROOT, False), ("batched", ROOT, True)]
    if args.before is not None:
        kinds.append(("unbatched_before", args.before.resolve(), False))
    rates: dict[str, list[float]] = {k: [] for k, _, _ in kinds}
    try:
        with psycopg.connect(base, autocommit=True) as admin:
            for r in range(args.rounds):
                for name, code, batched in kinds:
                    db = f"bench_{name}_{r}"
                    admin.execute(f"CREATE DATABASE {db}")
                    url = base.rsplit("/", 1)[0] + "/" + db
                    rates[name].append(trial(code, url, args.n, batched))
                    admin.execute(f"DROP DATABASE {db}")
                    print(f"round {r + 1}: {name} {rates[name][-1]:,.0f} jobs/s", file=sys.stderr)
    finally:
        cluster.destroy()
    med = {k: round(statistics.median(v)) for k, v in rates.items()}
    out: dict[str, object] = {"n": args.n, "rounds": args.rounds, "median_jobs_per_s": med,
                              "all": {k: [round(x) for x in v] for k, v in rates.items()},
                              "batched_vs_unbatched": round(statistics.median(
                                  b / u for b, u in zip(rates["batched"], rates["unbatched"], strict=True)), 3)}
    if args.before is not None:
        out["unbatched_vs_before"] = round(statistics.median(
            a / b for a, b in zip(rates["unbatched"], rates["unbatched_before"], strict=True)), 3)
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
