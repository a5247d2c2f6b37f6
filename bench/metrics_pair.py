"""Drain with metrics off, then on (`--metrics-port`), interleaved: what counting runs costs (SPEC 15).

Not part of `make bench` (it is a pair of its own, run on demand):

    .venv/bin/python tests/pgcluster.py run -- .venv/bin/python bench/metrics_pair.py

Each trial: a fresh database, BENCH_N no-op jobs (50,000) by `perform_all_later`, ANALYZE, then the
bench's own drain (`jobctl start` defaults: 2 workers x 3 threads), rate from the database's
finished_at. Prints one JSON line per trial and the medians.
"""

from __future__ import annotations

import json
import os
import socket
import statistics
import sys
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import psycopg

from bench import jobctl_trials as jt


def fresh_db(server: str) -> str:
    name = f"metrics_pair_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    return server.rsplit("/", 1)[0] + "/" + name


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def main() -> None:
    server = os.environ["JOBCTL_TEST_DATABASE_URL"]
    n = int(os.environ.get("BENCH_N", 50_000))
    rounds = int(os.environ.get("BENCH_ROUNDS", 3))
    rates: dict[str, list[float]] = {"off": [], "on": []}
    for rnd in range(rounds):
        for mode in ("off", "on") if rnd % 2 == 0 else ("on", "off"):
            url = fresh_db(server)
            jt.migrate(url)
            jt.enqueue(url, 0, n, 1000)
            with psycopg.connect(url, autocommit=True) as conn:
                conn.execute("ANALYZE jobctl_jobs")
            args = ["--metrics-port", str(free_port())] if mode == "on" else []
            result = jt.drain(url, n, 300, args=args)
            print(json.dumps({"round": rnd + 1, "metrics": mode, **result}), flush=True)
            if result["ok"] and result["drain_db_per_s"]:
                rates[mode].append(result["drain_db_per_s"])
    off, on = statistics.median(rates["off"]), statistics.median(rates["on"])
    print(json.dumps({"median_off_per_s": off, "median_on_per_s": on, "on_over_off": round(on / off, 3)}))


if __name__ == "__main__":
    main()
