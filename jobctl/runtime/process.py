"""What the supervisor and its children share: a slot table in shared memory, and process basics.

A worker writes the id of the job each thread is executing into its slot (a plain store
into shared memory: no syscall, no database write). When a worker dies, its supervisor
reads the slots to know which jobs were executing — those count a crash — while every
other claimed job goes back to ready uncounted.
"""

from __future__ import annotations

import contextlib
import json
import logging
import mmap
import os
import random
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from jobctl import hooks
from jobctl.errors import DatabaseError
from jobctl.runtime import logs
from jobctl.runtime.host import HOSTNAME, host_id
from jobctl.store import Session, Store

RETRY_DELAY_MAX_S = 5.0
"""Longest wait between two tries while the database keeps failing a child."""
REPORT_EVERY_S = 60.0
"""While the database keeps failing with the same error, one log line this often."""


class SlotTable:
    """Shared memory: word 0 is the child's process id (database row), then one word per thread."""

    def __init__(self, threads: int) -> None:
        self.threads = threads
        self._map = mmap.mmap(-1, 8 * (threads + 1))  # anonymous and MAP_SHARED: survives fork
        self._words = memoryview(self._map).cast("q")

    @property
    def process_id(self) -> int:
        """The child's row in jobctl_processes (0 until it registered)."""
        return int(self._words[0])

    @process_id.setter
    def process_id(self, value: int) -> None:
        self._words[0] = value

    def set(self, thread: int, job_id: int) -> None:
        """Thread `thread` now executes `job_id` (0: nothing)."""
        self._words[thread + 1] = job_id

    def executing(self) -> list[int]:
        """Ids of the jobs being executed right now."""
        return [j for j in self._words[1:] if j]

    def busy(self) -> int:
        """How many threads are executing a job."""
        return sum(1 for j in self._words[1:] if j)

    def clear(self) -> None:
        """Forget everything (before a restarted child reuses the table)."""
        for i in range(len(self._words)):
            self._words[i] = 0


@dataclass(frozen=True)
class Death:
    """How a child process ended, as its supervisor saw it."""

    exit_code: int | None
    """The exit code, when it exited."""
    signal_number: int | None
    """The signal that killed it, when one did."""

    @classmethod
    def from_status(cls, status: int) -> Death:
        """From a `waitpid` status."""
        code = os.waitstatus_to_exitcode(status)
        return cls(None, -code) if code < 0 else cls(code, None)

    @property
    def clean(self) -> bool:
        """Exited with code 0."""
        return self.exit_code == 0

    def describe(self) -> str:
        """`SIGKILL (signal 9)` or `exit code 3`."""
        if self.signal_number is not None:
            try:
                name = signal.Signals(self.signal_number).name
            except ValueError:
                name = f"signal {self.signal_number}"
            return f"{name} (signal {self.signal_number})"
        return f"exit code {self.exit_code}"


def pid_alive(pid: int) -> bool:
    """Whether a process with this pid exists on this host."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class ChildProcess:
    """What every forked child shares: stop signals, a connection that retries, its registration."""

    kind = "child"

    def __init__(self, store: Store, slots: SlotTable, *, supervisor_pid: int, supervisor_id: int | None,
                 name: str | None = None) -> None:
        self.name = name or self.kind
        """Its name among its supervisor's children (`worker 1.2`: group 1, process 2), as every log line says."""
        self.store = store
        self.slots = slots
        self.supervisor_pid = supervisor_pid
        self.supervisor_id = supervisor_id
        self.stopping = False
        self.wake = threading.Event()
        self.process_id = 0
        self.session: Session | None = None
        self.outage_since: float | None = None
        """When the database started failing this process (monotonic); None while it works."""
        self._retry_delay = 0.0
        self._last_failure = 0.0
        self._reported = ("", 0.0)
        self._hooks_started = False

    @property
    def label(self) -> str:
        """`worker 1.2 (pid 8219)`: how this process's log lines, and its supervisor's, name it."""
        return f"{self.name} (pid {os.getpid()})"

    def runtime_process(self) -> hooks.RuntimeProcess:
        """This process as its hooks see it."""
        return hooks.RuntimeProcess(self.kind, self.name, os.getpid(), self.process_id)

    def started(self) -> None:
        """Run the on_start hooks (registered, no work taken yet)."""
        self._hooks_started = True
        hooks.run_hooks("start", self.runtime_process())

    def stopped(self) -> None:
        """Run the on_stop hooks, when the on_start ones ran (its work is over, it exits next)."""
        if self._hooks_started:
            self._hooks_started = False
            hooks.run_hooks("stop", self.runtime_process())

    def request_stop(self, *_: Any) -> None:
        """Stop taking new work; finish what runs within shutdown_timeout."""
        self.stopping = True
        self.wake.set()

    def install_signals(self) -> None:
        """TERM/INT: graceful stop. QUIT: exit at once."""
        signal.signal(signal.SIGTERM, self.request_stop)
        signal.signal(signal.SIGINT, self.request_stop)
        signal.signal(signal.SIGQUIT, lambda *_: os._exit(0))

    def parent_gone(self) -> bool:
        """The supervisor that forked us is no longer our parent."""
        return os.getppid() != self.supervisor_pid

    def connect(self) -> Session:
        """A runtime session, retrying while the database is away (unless we are stopping).

        Each failed try counts towards the outage `reconnect` reports (one line when it starts,
        then one when the error changes or a minute has passed), and waits double up to
        RETRY_DELAY_MAX_S with a quarter of jitter, so a host's processes do not retry in step.
        """
        while True:
            try:
                return self.store.session()
            except DatabaseError as exc:
                if self.stopping or self.parent_gone():
                    raise
                self._failed(str(exc))
                self._pause(self._retry_delay * (1 + 0.25 * random.random()))

    def reconnect(self, exc: DatabaseError) -> None:
        """Drop a broken session and open a new one.

        The first failure reconnects at once (a restarted server is back); while failures repeat
        (the database is down, locked, or its disk is full, so a fresh connection fails again) the
        waits double up to RETRY_DELAY_MAX_S. One log line when it starts, then one when the error
        changes or a minute has passed; `recovered` logs the end.
        """
        self._failed(str(exc))
        if self.session is not None:
            with contextlib.suppress(Exception):
                self.session.close()
            self.session = None
        self._pause(self._retry_delay * (1 + 0.25 * random.random()))
        self.session = self.connect()

    def _failed(self, message: str) -> None:
        """Count one failed try of an outage (starting one if none is going on), logging per the rule above."""
        now = time.monotonic()
        if self.outage_since is None or now - self._last_failure > REPORT_EVERY_S:
            self.outage_since, self._retry_delay = now, 0.0
            self._reported = (message, now)
            logs.event(logging.WARNING, "database_unavailable",
                       f"{self.label}: {message}; retrying until it works")
        else:
            self._retry_delay = min(max(self._retry_delay * 2, 0.1), RETRY_DELAY_MAX_S)
            if message != self._reported[0] or now - self._reported[1] >= REPORT_EVERY_S:
                self._reported = (message, now)
                logs.event(logging.WARNING, "database_unavailable",
                           f"{self.label}: {message}; still retrying after "
                           f"{now - self.outage_since:.0f}s")
        self._last_failure = now

    def recovered(self) -> None:
        """The database works again (after `reconnect`): say so once."""
        if self.outage_since is not None:
            logs.event(logging.INFO, "database_available", f"{self.label}: database works again "
                       f"after {time.monotonic() - self.outage_since:.1f}s")
            self.outage_since = None

    def _pause(self, seconds: float) -> None:
        """Wait `seconds`, or less when asked to stop."""
        deadline = time.monotonic() + seconds
        while not self.stopping and (left := deadline - time.monotonic()) > 0:
            self.wake.wait(left)
            self.wake.clear()

    def db(self) -> Session:
        """The current session (DatabaseError when a reconnect during a stop left none)."""
        session = self.session
        if session is None:
            raise DatabaseError(f"{self.label}: not connected to the database")
        return session

    def run_rounds(self, round_: Callable[[], float]) -> int:
        """Call `round_` (returning seconds to wait) until stopped or orphaned, reconnecting after a
        lost connection; then deregister. The loop of the dispatcher and the scheduler."""
        while not self.stopping and not self.parent_gone():
            self.wake.clear()
            try:
                wait = round_()
            except DatabaseError as exc:
                try:
                    self.reconnect(exc)
                except DatabaseError:
                    break  # stopping or orphaned while the database is away
                continue
            if self.outage_since is not None:
                self.recovered()
            self.wake.wait(wait)
        self.leave()
        self.stopped()
        return 0

    def leave(self) -> None:
        """Deregister on the way out (returning any claims); a database error is logged, not raised."""
        try:
            self.db().deregister([self.process_id])
        except DatabaseError as exc:
            logs.event(logging.ERROR, f"{self.kind}_stop_failed", f"{self.label}: {exc}")

    def register(self, *, queues: str | None, threads: int | None, metadata: dict[str, Any],
                 wakeup: str | None = None) -> int:
        """Open the session and register this process."""
        self.session = self.connect()
        self.process_id = self.db().register_process(
            kind=self.kind, hostname=HOSTNAME, host_id=host_id(), pid=os.getpid(), supervisor_id=self.supervisor_id,
            queues=queues, threads=threads, wakeup=wakeup, metadata=json.dumps(metadata))
        self.slots.process_id = self.process_id  # tells the supervisor which row to beat for
        self.recovered()  # a database that was away when we started: say it works now
        self.started()
        return self.process_id
