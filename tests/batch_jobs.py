"""Jobs the batch and workflow tests run, inline and in real worker processes; runs go to `test_runs`."""

from __future__ import annotations

import os
import time

import jobctl
from tests.runtime_jobs import record


class Part(jobctl.Job):
    """A member: records its run (tag = its label); `fail` raises, `spawn` enqueues that many more."""

    def perform(self, label: str, fail: bool = False, spawn: int = 0) -> None:
        record(self, label, time.time(), time.time())
        for i in range(spawn):
            Part.perform_later(f"{label}.{i}")
        if fail:
            raise ValueError(f"part {label} failed")


class FlakyPart(jobctl.Job):
    """Fails its first two runs, then finishes (retried at once)."""

    retry_on = (jobctl.RetryOn(ValueError, wait=0, attempts=3),)

    def perform(self, label: str) -> None:
        record(self, label, time.time(), time.time())
        if self.executions < 3:
            raise ValueError(f"flaky run {self.executions}")


class GonePart(jobctl.Job):
    """Discarded by its discard_on rule."""

    discard_on = (LookupError,)

    def perform(self, label: str) -> None:
        record(self, label, time.time(), time.time())
        raise LookupError("row is gone")


class WaitingPart(jobctl.Job):
    """Runs until a file exists (lets a test kill its worker mid-job)."""

    def perform(self, path: str) -> None:
        record(self, "waiting", time.time())
        deadline = time.monotonic() + 60
        while not os.path.exists(path) and time.monotonic() < deadline:
            time.sleep(0.02)
        record(self, "done", time.time(), time.time())


class Callback(jobctl.Job):
    """A batch callback: records the event with the batch's counts as it saw them."""

    def perform(self, batch: jobctl.BatchInfo, event: str) -> None:
        record(self, f"{event}:{batch.id}:{batch.state}:{batch.finished}/{batch.failed}/{batch.total}",
               time.time(), time.time())


class LimitedPart(jobctl.Job):
    """At most one at a time."""

    limits_concurrency = jobctl.ConcurrencyLimit(to=1)

    def perform(self, label: str) -> None:
        start = time.time()
        time.sleep(0.01)
        record(self, label, start, time.time())


def callbacks() -> dict[str, jobctl.Job]:
    """One Callback per event."""
    return {f"on_{e}": Callback.set(queue="callbacks")(e) for e in ("success", "failure", "finish")}
