"""Job classes the benchmark enqueues (importable as `bench.jobs` with the repo root on sys.path)."""

from __future__ import annotations

import os
import time

import jobctl


class Noop(jobctl.Job):
    """Does nothing: what a drain measures is the queue itself."""

    def perform(self) -> None:
        pass


class Stamp(jobctl.Job):
    """Pickup latency: appends `job_id enqueue_time start_time` to a file as soon as it runs."""

    def perform(self, sent: float, path: str) -> None:
        started = time.time()
        line = f"{self.job_id} {sent!r} {started!r}\n".encode()
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, line)  # one write with O_APPEND: whole lines even from several processes
        finally:
            os.close(fd)


class BatchDone(jobctl.Job):
    """A batch callback doing nothing (the batched drain's on_success and on_finish)."""

    def perform(self, batch: jobctl.BatchInfo) -> None:
        pass


class Limited(jobctl.Job):
    """A no-op limited to one run at a time per key (the concurrency-keys curve, bench/curves.py)."""

    limits_concurrency = jobctl.ConcurrencyLimit(to=1, key=lambda key: key)

    def perform(self, key: int) -> None:
        pass
