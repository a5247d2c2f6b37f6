"""Jobs and hooks the observability tests run in a real `jobctl start` (named in `imports:`).

Every hook and every report appends one line to $OBSERVE_LOG (O_APPEND: lines from the supervisor and
its children never interleave), so the test sees which process ran what, in which order.
"""

from __future__ import annotations

import os
import signal

import jobctl
from jobctl.hooks import ReportedJob, RuntimeProcess


def _write(line: str) -> None:
    path = os.environ.get("OBSERVE_LOG")
    if path:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, (line + "\n").encode())
        finally:
            os.close(fd)


@jobctl.on_start
def _started(process: RuntimeProcess) -> None:
    _write(f"start {process.kind} {process.pid} {os.getppid()} {process.process_id} {process.name}")


@jobctl.on_start("dispatcher")
def _broken(process: RuntimeProcess) -> None:
    raise RuntimeError(f"broken hook in {process.name}")


@jobctl.on_start("worker", "dispatcher")
def _second(process: RuntimeProcess) -> None:
    _write(f"second {process.kind} {process.pid}")


@jobctl.on_stop
def _stopped(process: RuntimeProcess) -> None:
    _write(f"stop {process.kind} {process.pid} {os.getppid()} {process.process_id} {process.name}")


def _report(exc: BaseException, job: ReportedJob | None) -> None:
    where = f"job {job.id} {job.class_path} {job.queue} {job.attempt} {job.outcome}" if job else "jobctl"
    _write(f"report {os.getpid()} {type(exc).__name__} {exc} | {where}")


jobctl.configure(error_reporter=_report)


class Ok(jobctl.Job):
    """Finishes."""

    def perform(self, n: int = 0) -> int:
        return n


class Boom(jobctl.Job):
    """Fails at once (no retry rule)."""

    queue = "risky"

    def perform(self, n: int = 0) -> None:
        raise ValueError(f"boom {n}")


class Flaky(jobctl.Job):
    """Raises on its first run and is retried at once; its second run finishes."""

    queue = "risky"
    retry_on = (jobctl.RetryOn(ConnectionError, wait=0, attempts=3),)

    def perform(self, n: int = 0) -> None:
        if self.executions == 1:
            raise ConnectionError(f"flaky {n}")


class Crashy(jobctl.Job):
    """Kills its worker on its first run; its second run finishes."""

    queue = "crashy"

    def perform(self, n: int = 0) -> None:
        if self.executions == 1:
            os.kill(os.getpid(), signal.SIGKILL)
