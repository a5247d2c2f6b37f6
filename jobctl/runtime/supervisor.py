"""The supervisor: forks workers and dispatchers, beats for them, counts crashes, restarts them.

It holds no threads and no connection pool when it forks (a plain connection, never used
by the children, which also never close it: they leave with os._exit).
"""

from __future__ import annotations

import contextlib
import logging
import os
import select
import signal
import time
import traceback
from dataclasses import dataclass, field

from jobctl.config import DispatcherConfig, QueueConfig, WorkerConfig
from jobctl.errors import DatabaseError
from jobctl.recurring import RecurringTask
from jobctl.runtime import logs

# Imported here, in the supervisor, so every forked child shares these pages instead of each
# importing them (psutil included) after the fork.
from jobctl.runtime.dispatcher import Dispatcher
from jobctl.runtime.process import HOSTNAME, Death, SlotTable, pid_alive
from jobctl.runtime.scheduler import Scheduler
from jobctl.runtime.worker import Worker
from jobctl.store import Session, Store

RESTART_BACKOFF_MAX_S = 30.0
# A child that lived this long before crashing starts its backoff over.
STABLE_AFTER_S = 30.0


@dataclass
class Child:
    """One configured child process and its current incarnation."""

    kind: str
    """`worker`, `dispatcher` or `scheduler`."""
    name: str
    """Stable name for logs, e.g. `worker 1.2` (group 1, process 2)."""
    config: WorkerConfig | DispatcherConfig | None
    """Its section of queue.yml."""
    slots: SlotTable
    """Shared memory with the child: its process id and the jobs it executes."""
    pid: int = 0
    """OS pid of the running incarnation (0 when not running)."""
    started: float = 0.0
    """When it was forked (monotonic)."""
    signalled: bool = False
    """We sent it a stop signal: its death is not a crash."""
    crashes_in_row: int = 0
    """Crashes without a stable run in between (for the restart backoff)."""
    restart_at: float | None = field(default=None)
    """When to fork it again (monotonic), if it is down."""


class Supervisor:
    """`jobctl start`: the parent of every runtime process on this host."""

    def __init__(self, store: Store, config: QueueConfig, tasks: tuple[RecurringTask, ...] = ()) -> None:
        self.store = store
        self.config = config
        self.children: list[Child] = []
        for g, worker in enumerate(config.workers, 1):
            for p in range(1, worker.processes + 1):
                self.children.append(Child("worker", f"worker {g}.{p}", worker, SlotTable(worker.threads)))
        for d, dispatcher in enumerate(config.dispatchers, 1):
            self.children.append(Child("dispatcher", f"dispatcher {d}", dispatcher, SlotTable(0)))
        self.tasks = tasks
        if tasks:
            self.children.append(Child("scheduler", "scheduler", None, SlotTable(0)))
        self.session: Session | None = None
        self.process_id = 0
        self.stopping = False
        self.quitting = False
        self.pending_deaths: list[tuple[Child, int, Death, list[int]]] = []
        self._wake_r, self._wake_w = os.pipe()

    # -- lifecycle ---------------------------------------------------------------------------

    def run(self) -> int:
        """Register, fork every child, supervise until TERM/INT (graceful) or QUIT (at once)."""
        for fd in (self._wake_r, self._wake_w):
            os.set_blocking(fd, False)
        signal.set_wakeup_fd(self._wake_w)
        signal.signal(signal.SIGTERM, self._on_stop)
        signal.signal(signal.SIGINT, self._on_stop)
        signal.signal(signal.SIGQUIT, self._on_quit)
        signal.signal(signal.SIGCHLD, lambda *_: None)  # only to wake the loop through the wakeup fd
        self.session = self.store.session()
        self.process_id = self.session.register_process(
            kind="supervisor", hostname=HOSTNAME, pid=os.getpid(), supervisor_id=None, queues=None, threads=None,
            metadata="{}")
        logs.event(logging.INFO, "supervisor_started",
                   f"supervisor {self.process_id} (pid {os.getpid()}) on {self.store.url.redacted}: "
                   f"{sum(c.kind == 'worker' for c in self.children)} workers, "
                   f"{sum(c.kind == 'dispatcher' for c in self.children)} dispatchers, "
                   f"{len(self.tasks)} recurring tasks")
        self._prune()
        for child in self.children:
            self._spawn(child)
        next_beat = time.monotonic() + self.config.process_heartbeat_interval
        while not self.stopping:
            self._reap()
            self._settle_deaths()
            now = time.monotonic()
            for child in self.children:
                if child.pid == 0 and child.restart_at is not None and now >= child.restart_at:
                    self._spawn(child)
            if now >= next_beat:
                self._heartbeat()
                self._prune()
                next_beat = now + self.config.process_heartbeat_interval
            self._sleep(min([next_beat - now, 1.0] + [c.restart_at - now for c in self.children
                                                       if c.pid == 0 and c.restart_at is not None]))
        return self._stop()

    def _on_stop(self, *_: object) -> None:
        self.stopping = True

    def _on_quit(self, *_: object) -> None:
        self.stopping = self.quitting = True

    def _sleep(self, timeout: float) -> None:
        with contextlib.suppress(InterruptedError):
            select.select([self._wake_r], [], [], max(timeout, 0.0))
        with contextlib.suppress(BlockingIOError):
            while os.read(self._wake_r, 512):
                pass

    def _db(self) -> Session:
        if self.session is None:
            self.session = self.store.session()
        return self.session

    def _db_failed(self, exc: DatabaseError) -> None:
        logs.event(logging.WARNING, "database_unavailable", f"supervisor {self.process_id}: {exc}")
        if self.session is not None:
            with contextlib.suppress(Exception):
                self.session.close()
        self.session = None

    # -- children ----------------------------------------------------------------------------

    def _spawn(self, child: Child) -> None:
        child.slots.clear()
        child.restart_at = None
        child.signalled = False
        pid = os.fork()
        if pid == 0:
            self._child_main(child)
        child.pid = pid
        child.started = time.monotonic()
        logs.event(logging.DEBUG, "child_started", f"supervisor: {child.name} started (pid {pid})")

    def _child_main(self, child: Child) -> None:
        """Runs in the forked child; never returns."""
        code = 1
        try:
            signal.set_wakeup_fd(-1)
            signal.signal(signal.SIGCHLD, signal.SIG_DFL)
            os.close(self._wake_r)
            os.close(self._wake_w)
            self.session = None  # the parent's connection: never used here, never closed (os._exit below)
            code = self._run_child(child)
        except BaseException:
            traceback.print_exc()
        finally:
            for handler in logs.LOGGER.handlers:
                with contextlib.suppress(Exception):
                    handler.flush()
            os._exit(code)

    def _run_child(self, child: Child) -> int:
        supervisor_pid = os.getppid()
        if child.kind == "worker":
            assert isinstance(child.config, WorkerConfig)
            return Worker(self.store, child.config, self.config, child.slots,
                          supervisor_pid=supervisor_pid, supervisor_id=self.process_id).run()
        if child.kind == "dispatcher":
            assert isinstance(child.config, DispatcherConfig)
            return Dispatcher(self.store, child.config, self.config, child.slots,
                              supervisor_pid=supervisor_pid, supervisor_id=self.process_id).run()
        return Scheduler(self.store, self.tasks, child.slots, supervisor_pid=supervisor_pid,
                         supervisor_id=self.process_id).run()

    def _reap(self) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            child = next((c for c in self.children if c.pid == pid), None)
            if child is None:
                continue
            death = Death.from_status(status)
            crashed = not child.signalled and not death.clean
            executing = child.slots.executing() if crashed else []
            self.pending_deaths.append((child, child.slots.process_id, death, executing))
            lived = time.monotonic() - child.started
            child.pid = 0
            if crashed:
                logs.event(logging.ERROR, "child_crashed",
                           f"supervisor: {child.name} (pid {pid}) died: {death.describe()}"
                           + (f" while executing jobs {executing}" if executing else ""))
                child.crashes_in_row = child.crashes_in_row + 1 if lived < STABLE_AFTER_S else 1
                backoff = 0.0 if child.crashes_in_row <= 1 else min(
                    RESTART_BACKOFF_MAX_S, 0.5 * 2 ** (child.crashes_in_row - 2))
            else:
                logs.event(logging.INFO, "child_exited", f"supervisor: {child.name} (pid {pid}) exited")
                child.crashes_in_row = 0
                backoff = 0.0
            if not self.stopping:
                child.restart_at = time.monotonic() + backoff

    def _settle_deaths(self) -> None:
        """Count crashes of the jobs dead children were executing; return everything else they held."""
        while self.pending_deaths:
            child, process_id, death, executing = self.pending_deaths[0]
            if process_id:
                try:
                    db = self._db()
                    if executing:
                        results = db.crash_jobs(process_id, executing, self.config.max_crashes,
                                                f"worker process died: {death.describe()}")
                        for job_id, state in results:
                            logs.event(logging.ERROR if state == "failed" else logging.WARNING, "job_crashed",
                                       f"job {job_id} was running when {child.name} died ({death.describe()}); "
                                       + ("failed after max_crashes" if state == "failed" else "back to ready"),
                                       job_id=job_id, error=death.describe())
                    db.deregister([process_id])
                except DatabaseError as exc:
                    self._db_failed(exc)
                    return  # try again on the next loop
            self.pending_deaths.pop(0)

    # -- heartbeats and pruning --------------------------------------------------------------

    def _heartbeat(self) -> None:
        beats = [(self.process_id, 0)] + [(c.slots.process_id, c.slots.busy()) for c in self.children
                                          if c.pid and c.slots.process_id]
        try:
            alive = self._db().heartbeat(beats)
        except DatabaseError as exc:
            self._db_failed(exc)
            return
        if self.process_id not in alive:
            logs.event(logging.ERROR, "supervisor_pruned",
                       f"supervisor {self.process_id} was pruned by another host; registering again")
            try:
                self.process_id = self._db().register_process(
                    kind="supervisor", hostname=HOSTNAME, pid=os.getpid(), supervisor_id=None, queues=None,
                    threads=None, metadata="{}")
            except DatabaseError as exc:
                self._db_failed(exc)
        for child in self.children:
            if child.pid and child.slots.process_id and child.slots.process_id not in alive and not child.signalled:
                # Its claims were released by a pruner: restart it so it registers afresh.
                logs.event(logging.WARNING, "child_pruned", f"supervisor: {child.name} was pruned; restarting it")
                child.signalled = True
                with contextlib.suppress(ProcessLookupError):
                    os.kill(child.pid, signal.SIGTERM)

    def _prune(self) -> None:
        """Release the claims of processes that are gone: dead on this host, or silent anywhere."""
        mine = {self.process_id} | {c.slots.process_id for c in self.children if c.slots.process_id}
        try:
            db = self._db()
            gone = {p.id for p in db.stale_processes(self.config.process_alive_threshold)}
            rows = db.host_processes(HOSTNAME)
            dead_supervisors = {p.id for p in rows if p.kind == "supervisor" and not pid_alive(p.pid)}
            known = {p.id for p in rows}
            for p in rows:
                sup = p.supervisor_id
                orphan = sup is None or sup in dead_supervisors or sup not in known
                if (p.id in dead_supervisors or orphan) and not pid_alive(p.pid):
                    gone.add(p.id)
            gone -= mine
            if gone:
                released = db.deregister(sorted(gone))
                logs.event(logging.WARNING, "processes_pruned",
                           f"supervisor: pruned {len(gone)} vanished processes, {released} jobs back to ready")
        except DatabaseError as exc:
            self._db_failed(exc)

    # -- stopping ----------------------------------------------------------------------------

    def _stop(self) -> int:
        sig = signal.SIGQUIT if self.quitting else signal.SIGTERM
        for child in self.children:
            child.restart_at = None
            if child.pid:
                child.signalled = True
                with contextlib.suppress(ProcessLookupError):
                    os.kill(child.pid, sig)
        grace = 1.0 if self.quitting else self.config.shutdown_timeout + 2.0
        deadline = time.monotonic() + grace
        while any(c.pid for c in self.children) and time.monotonic() < deadline:
            self._reap()
            self._sleep(0.05)
        for child in self.children:
            if child.pid:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(child.pid, signal.SIGKILL)
                os.waitpid(child.pid, 0)
                self.pending_deaths.append((child, child.slots.process_id, Death(None, 9), []))
                child.pid = 0
        self._reap()
        self._settle_deaths()
        try:
            self._db().deregister([self.process_id])
        except DatabaseError as exc:
            logs.event(logging.ERROR, "supervisor_stop_failed", f"supervisor {self.process_id}: {exc}")
            return 1
        logs.event(logging.INFO, "supervisor_stopped", f"supervisor {self.process_id} stopped")
        return 0
