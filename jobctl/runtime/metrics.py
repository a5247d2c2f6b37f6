"""Prometheus metrics: `jobctl start --metrics-port` and `jobctl metrics`.

Runs are counted where they happen, in the worker processes, with prometheus-client's multiprocess
mode: each process writes its counters to its own memory-mapped file in a directory the supervisor
makes (PROMETHEUS_MULTIPROC_DIR) before it forks, and the endpoint sums the files. Chosen over
summing in the supervisor because a counter must survive its process: a worker recycled by
`max_jobs_per_process`, or killed, leaves its file behind and its runs stay counted, with no
protocol of our own between the processes and no thread in the supervisor (it forks; a thread
serving HTTP there could deadlock a child). The endpoint is a child of its own (kind `metrics`)
on a socket the supervisor bound, so a bad port fails `jobctl start` at once and a restarted
server keeps the port.

A worker counts a run once the database has its outcome (its main thread, one write per label set
per completion batch, right after the statement), so the counters say what the database says even
when a worker is killed. Its executor threads tally run durations in plain dicts and write them
at most once a second, or when their queue of claimed jobs runs dry: a histogram write per job
would cost a lock and an mmap store per bucket, several µs at tens of thousands of jobs a second
(a worker killed meanwhile takes its last second of durations with it; never a count).

The database-derived gauges (jobs per queue and state, latency, processes) come from one statement
(`metrics_reading`), reused for `metrics_interval` seconds, whatever the number of scrapers.

prometheus_client is imported only here, and only when metrics are on: `import jobctl` never loads it.
"""

from __future__ import annotations

import bisect
import contextlib
import datetime as dt
import logging
import math
import os
import signal
import socket
import time
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

from jobctl import hooks
from jobctl.errors import DatabaseError, UsageError
from jobctl.records import MetricsReading
from jobctl.runtime import logs

if TYPE_CHECKING:
    from jobctl.store import Store

BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 1800.0)
"""Run-duration histogram bounds in seconds (and +Inf)."""
FLUSH_EVERY_S = 1.0
"""A busy executor thread writes its tallies this often."""
OUTCOMES = {"finished": "finished", "retry": "retried", "failed": "failed", "discarded": "discarded"}
"""A run's outcome state -> the `outcome` label of jobctl_runs_total (and `crashed`, counted by the supervisor)."""

ENABLED = False
"""Whether this process counts runs (set by `enable`, before the supervisor forks)."""
_runs: Any = None
_durations: Any = None


def enable(directory: str) -> None:
    """Count runs into `directory` (the supervisor, before forking: its children inherit it)."""
    global ENABLED, _runs, _durations
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = directory  # read by prometheus_client when it is imported
    import prometheus_client
    from prometheus_client import values

    if not getattr(values.ValueClass, "_multiprocess", False):  # imported before the variable was set
        values.ValueClass = values.get_value_class()  # type: ignore[no-untyped-call]
    _runs = prometheus_client.Counter("jobctl_runs", "Runs that ended, by queue, class and outcome "
                                      "(finished, retried, failed, discarded, crashed).",
                                      ["queue", "class", "outcome"], registry=None)
    _durations = prometheus_client.Histogram("jobctl_run_duration_seconds", "How long runs took, by queue and class.",
                                             ["queue", "class"], buckets=BUCKETS, registry=None)
    ENABLED = True


class Tally:
    """One executor thread's run durations not yet written to the metrics files (that thread only)."""

    def __init__(self) -> None:
        self.durations: dict[tuple[str, str], list[float]] = {}
        """Per (queue, class): [sum, count in bucket 0, 1, ..., +Inf]."""
        self.since = time.monotonic()

    def add(self, queue: str, class_path: str, duration: float) -> None:
        """One run that took `duration` seconds."""
        key = (queue, class_path)
        spread = self.durations.get(key)
        if spread is None:
            spread = self.durations[key] = [0.0] * (len(BUCKETS) + 2)
        spread[0] += duration
        spread[1 + bisect.bisect_left(BUCKETS, duration)] += 1

    def due(self, idle: bool) -> bool:
        """Whether to write now: something is tallied and the thread goes idle or a second has passed."""
        return bool(self.durations) and (idle or time.monotonic() - self.since >= FLUSH_EVERY_S)

    def flush(self) -> None:
        """Write the tallies to this process's metrics file and start afresh."""
        for (queue, class_path), spread in self.durations.items():
            child = _durations.labels(queue, class_path)
            # Histogram.observe() adds one run: per bucket counts go through its (non-cumulative)
            # bucket values directly, one write per bucket used instead of one per run.
            child._sum.inc(spread[0])
            for index, runs in enumerate(spread[1:]):
                if runs:
                    child._buckets[index].inc(runs)
        self.durations.clear()
        self.since = time.monotonic()


def observe(queue: str, class_path: str, duration: float) -> None:
    """One run's duration written at once (a timeout the worker's main thread decided)."""
    if ENABLED:
        _durations.labels(queue, class_path).observe(duration)


def count_runs(labels: Iterable[tuple[str, str]], state: str) -> None:
    """Runs of (queue, class) the database now has as ended in `state` (an Outcome's, or `crashed`)."""
    outcome = OUTCOMES.get(state, state)
    for (queue, class_path), n in Counter(labels).items():
        _runs.labels(queue, class_path, outcome).inc(n)


# -- the database-derived gauges -------------------------------------------------------------


def reading_families(reading: MetricsReading | None, *, named_queues: Sequence[str] = ()) -> list[Any]:
    """The gauges of one database reading (None: the database could not be read) as metric families."""
    from prometheus_client.core import GaugeMetricFamily

    up = GaugeMetricFamily("jobctl_database_up", "1 when the last reading of the database worked, else 0.")
    up.add_metric([], 0.0 if reading is None else 1.0)
    if reading is None:
        return [up]
    jobs = GaugeMetricFamily("jobctl_queue_jobs", "Jobs per queue and state (scheduled, ready, claimed, blocked, "
                             "waiting, failed).", labels=["queue", "state"])
    depth = GaugeMetricFamily("jobctl_queue_depth", "Jobs ready to run and waiting for a worker, per queue.",
                              labels=["queue"])
    latency = GaugeMetricFamily("jobctl_queue_latency_seconds", "How long the oldest ready job of a queue has "
                                "been due (0 when none is ready).", labels=["queue"])
    processes = GaugeMetricFamily("jobctl_processes", "Processes whose heartbeat is recent, per kind and host.",
                                  labels=["kind", "hostname"])
    heartbeat = GaugeMetricFamily("jobctl_heartbeat_age_seconds", "Seconds since the least recent heartbeat of a "
                                  "registered process, per kind and host.", labels=["kind", "hostname"])
    ready: dict[str, int] = dict.fromkeys(named_queues, 0)
    oldest: dict[str, dt.datetime] = {}
    for count in sorted(reading.counts, key=lambda c: (c.queue, c.state)):
        jobs.add_metric([count.queue, count.state], count.count)
        ready.setdefault(count.queue, 0)
        if count.state == "ready":
            ready[count.queue] = count.count
            if count.oldest_ready_at is not None:
                oldest[count.queue] = count.oldest_ready_at
    for queue in sorted(ready):
        depth.add_metric([queue], ready[queue])
        due = oldest.get(queue)
        latency.add_metric([queue], max((reading.at - due).total_seconds(), 0.0) if due is not None else 0.0)
    for p in sorted(reading.processes, key=lambda p: (p.kind, p.hostname)):
        processes.add_metric([p.kind, p.hostname], p.alive)
        heartbeat.add_metric([p.kind, p.hostname], p.oldest_heartbeat_age)
    return [up, jobs, depth, latency, processes, heartbeat]


def render(families: Sequence[Any]) -> bytes:
    """Families in Prometheus' text format."""
    from prometheus_client import CollectorRegistry, generate_latest

    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Fixed(families))
    return generate_latest(registry)


class _Fixed:
    """A collector of families read already."""

    def __init__(self, families: Sequence[Any]) -> None:
        self.families = families

    def collect(self) -> Iterator[Any]:
        yield from self.families


class DatabaseCollector:
    """The database-derived gauges, read at most once per `interval` seconds (any number of scrapers)."""

    def __init__(self, store: Store, *, interval: float, alive_threshold: float,
                 named_queues: Sequence[str] = ()) -> None:
        self.store = store
        self.interval = interval
        self.alive_threshold = alive_threshold
        self.named_queues = tuple(named_queues)
        self.reading: MetricsReading | None = None
        self.read_at = -math.inf
        self.failed = False

    def collect(self) -> Iterator[Any]:
        now = time.monotonic()
        if now - self.read_at >= self.interval:
            self.read_at = now
            try:
                self.reading = self.store.metrics_reading(self.alive_threshold)
                self.failed = False
            except DatabaseError as exc:
                if not self.failed:
                    logs.event(logging.WARNING, "metrics_database", f"metrics (pid {os.getpid()}): {exc}")
                self.failed = True
                self.reading = None
        yield from reading_families(self.reading, named_queues=self.named_queues)


# -- the endpoint ----------------------------------------------------------------------------


def listen(host: str, port: int) -> socket.socket:
    """The endpoint's socket, bound by the supervisor before it forks; a port that cannot be had is a usage
    error naming it."""
    try:
        return socket.create_server((host, port), family=socket.AF_INET6 if ":" in host else socket.AF_INET,
                                    reuse_port=False)
    except OSError as exc:
        reason = (os.strerror(exc.errno) if exc.errno and exc.errno > 0 else exc.strerror) or str(exc)
        reason = reason.split(" (while attempting")[0]  # create_server's addition: the address, said already
        raise UsageError(f"--metrics-port {port}: cannot listen on {host}:{port} ({reason})") from None


class MetricsServer:
    """The `metrics` child: serves GET /metrics on the supervisor's socket, one request at a time."""

    kind = "metrics"

    def __init__(self, store: Store, sock: socket.socket, *, directory: str, interval: float,
                 alive_threshold: float, named_queues: Sequence[str], supervisor_pid: int) -> None:
        self.store = store
        self.sock = sock
        self.directory = directory
        self.database = DatabaseCollector(store, interval=interval, alive_threshold=alive_threshold,
                                          named_queues=named_queues)
        self.supervisor_pid = supervisor_pid
        self.stopping = False

    def run(self) -> int:
        """Serve until TERM/INT or the supervisor is gone."""
        from http.server import BaseHTTPRequestHandler, HTTPServer

        from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
        from prometheus_client.multiprocess import MultiProcessCollector

        def stop(*_: object) -> None:
            self.stopping = True

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        registry = CollectorRegistry(auto_describe=False)
        MultiProcessCollector(registry, path=self.directory)  # type: ignore[no-untyped-call]
        registry.register(self.database)
        exposed = registry

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path.split("?")[0] not in ("/metrics", "/"):
                    self.send_error(404, "only /metrics is here")
                    return
                body = generate_latest(exposed)
                self.send_response(200)
                self.send_header("Content-Type", CONTENT_TYPE_LATEST)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass  # a scrape every few seconds is not worth a log line

        server = HTTPServer(self.sock.getsockname()[:2], Handler, bind_and_activate=False)
        server.socket.close()
        server.socket = self.sock
        server.timeout = 0.5
        process = hooks.RuntimeProcess(self.kind, "metrics", os.getpid(), 0)
        hooks.run_hooks("start", process)
        host, port = self.sock.getsockname()[:2]
        logs.event(logging.INFO, "metrics_started", f"metrics (pid {os.getpid()}) serving http://{host}:{port}/metrics")
        while not self.stopping and os.getppid() == self.supervisor_pid:
            with contextlib.suppress(InterruptedError):
                server.handle_request()
        hooks.run_hooks("stop", process)
        return 0
