"""The supervisor: forks workers and dispatchers, beats for them, counts crashes, restarts them.

It holds no threads and no connection pool when it forks (a plain connection, never used
by the children, which also never close it: they leave with os._exit).

On PostgreSQL it also takes LISTEN for its host, on that same connection, and relays each
notification to the workers whose queues it names, over a pipe per worker: a host holds one
listening connection, not one per worker. At start (and after losing it) it checks by a round trip
of its own NOTIFY that notifications arrive; when they do not (a transaction pooler in between),
its workers poll, and `jobctl processes` says so.
"""

from __future__ import annotations

import contextlib
import logging
import os
import random
import secrets
import select
import signal
import socket
import time
import traceback
from collections.abc import Sequence
from dataclasses import dataclass, field

from jobctl import hooks
from jobctl.config import DispatcherConfig, QueueConfig, WorkerConfig
from jobctl.errors import DatabaseError, WorkerCrashed
from jobctl.formatting import plural
from jobctl.records import JobSummary, Selector
from jobctl.recurring import RecurringTask
from jobctl.runtime import logs, metrics

# Imported here, in the supervisor, so every forked child shares these pages instead of each
# importing them (psutil included) after the fork.
from jobctl.runtime.dispatcher import Dispatcher
from jobctl.runtime.host import HOSTNAME, host_id
from jobctl.runtime.process import REPORT_EVERY_S, RETRY_DELAY_MAX_S, Death, SlotTable, pid_alive
from jobctl.runtime.scheduler import Scheduler
from jobctl.runtime.worker import Worker
from jobctl.store import PROBE_PREFIX, Listener, Session, Store

RESTART_BACKOFF_MAX_S = 30.0
# A child that lived this long before crashing starts its backoff over.
STABLE_AFTER_S = 30.0
PROBE_TIMEOUT_S = 2.0
"""How long our own NOTIFY may take to come back before we decide notifications do not arrive."""
RELISTEN_EVERY_S = 60.0
"""How often to try listening again after a probe failed (or the listening connection was lost)."""


class _BackingOff(DatabaseError):
    """The database failed a moment ago and the next try is not due yet."""


@dataclass(frozen=True)
class MetricsSetup:
    """The metrics endpoint of `jobctl start --metrics-port`."""

    sock: socket.socket
    """Bound and listening (by `jobctl start`, before anything forks)."""
    directory: str
    """PROMETHEUS_MULTIPROC_DIR: every process's counters."""


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
    selectors: tuple[Selector, ...] = ()
    """A worker's queues, to relay it the notifications that name them."""
    wake_w: int = -1
    """Our end of the worker's wake-up pipe (-1: none)."""


class Supervisor:
    """`jobctl start`: the parent of every runtime process on this host."""

    def __init__(self, store: Store, config: QueueConfig, tasks: tuple[RecurringTask, ...] = (),
                 metrics_setup: MetricsSetup | None = None) -> None:
        self.store = store
        self.config = config
        self.metrics_setup = metrics_setup
        self.children: list[Child] = []
        for g, worker in enumerate(config.workers, 1):
            for p in range(1, worker.processes + 1):
                self.children.append(Child("worker", f"worker {g}.{p}", worker, SlotTable(worker.threads),
                                           selectors=tuple(Selector.parse(q) for q in worker.queues)))
        for d, dispatcher in enumerate(config.dispatchers, 1):
            self.children.append(Child("dispatcher", f"dispatcher {d}", dispatcher, SlotTable(0)))
        self.tasks = tasks
        if tasks:
            self.children.append(Child("scheduler", "scheduler", None, SlotTable(0)))
        if metrics_setup is not None:
            self.children.append(Child("metrics", "metrics", None, SlotTable(0)))
        self.session: Session | None = None
        self.process_id = 0
        self.stopping = False
        self.quitting = False
        self.pending_deaths: list[tuple[Child, int, Death, list[int]]] = []
        self._wake_r, self._wake_w = os.pipe()
        self.listener: Listener | None = None
        """LISTEN for this host's workers (on `session`'s connection, or the listen URL's); None: they poll."""
        self.wakeup = "polling"
        """How our workers wake: `listening` (we relay NOTIFY) or `polling`."""
        self._relisten_at = 0.0
        self._outage_since: float | None = None
        self._retry_delay = 0.0
        self._next_try = 0.0
        self._reported = ("", 0.0)

    @property
    def label(self) -> str:
        """`supervisor (pid 8219)`, as its log lines name it."""
        return f"supervisor (pid {os.getpid()})"

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
        self._listen()
        self.process_id = self._register()
        workers = sum(c.kind == "worker" for c in self.children)
        dispatchers = sum(c.kind == "dispatcher" for c in self.children)
        logs.event(logging.INFO, "supervisor_started",
                   f"{self.label} started (process {self.process_id}) on {self.store.url.redacted}: "
                   f"{workers} {plural(workers, 'worker')}, {dispatchers} {plural(dispatchers, 'dispatcher')}, "
                   f"{len(self.tasks)} recurring {plural(len(self.tasks), 'task')}; workers {self.wakeup}")
        hooks.run_hooks("start", self._runtime_process())
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
            if self.listener is None and self.store.listens and self._outage_since is None \
                    and now >= self._relisten_at:
                self._listen()
            self._sleep(min([next_beat - now, 1.0] + [c.restart_at - now for c in self.children
                                                       if c.pid == 0 and c.restart_at is not None]))
        return self._stop()

    def _runtime_process(self) -> hooks.RuntimeProcess:
        return hooks.RuntimeProcess("supervisor", "supervisor", os.getpid(), self.process_id)

    def _on_stop(self, *_: object) -> None:
        self.stopping = True

    def _on_quit(self, *_: object) -> None:
        self.stopping = self.quitting = True

    def _sleep(self, timeout: float) -> None:
        """Wait for a signal, a child's death or a notification to relay, at most `timeout` seconds."""
        if self._relay_pending():
            timeout = 0.0  # notifications came in during our own statements: relay them, then go on
        fds = [self._wake_r] if self.listener is None else [self._wake_r, self.listener.fileno()]
        with contextlib.suppress(InterruptedError):
            select.select(fds, [], [], max(timeout, 0.0))
        with contextlib.suppress(BlockingIOError):
            while os.read(self._wake_r, 512):
                pass
        self._relay_pending()

    # -- the database, with one log line per outage ------------------------------------------

    def _db(self) -> Session:
        if self.session is None:
            if time.monotonic() < self._next_try:
                raise _BackingOff(self._reported[0] or "the database is unavailable")
            self.session = self.store.session()
        return self.session

    def _db_failed(self, exc: DatabaseError) -> None:
        """Drop the session (and the listener on it); the next try waits, doubling up to RETRY_DELAY_MAX_S.
        One log line when an outage starts, then one a minute while the error stays the same."""
        if isinstance(exc, _BackingOff):
            return  # not a try: the wait until the next one stays as it is
        now = time.monotonic()
        message = str(exc)
        if self._outage_since is None:
            self._outage_since, self._retry_delay, self._reported = now, 0.0, (message, now)
            logs.event(logging.WARNING, "database_unavailable", f"{self.label}: {message}; retrying until it works")
        else:
            self._retry_delay = min(max(self._retry_delay * 2, 0.1), RETRY_DELAY_MAX_S)
            if message != self._reported[0] or now - self._reported[1] >= REPORT_EVERY_S:
                self._reported = (message, now)
                logs.event(logging.WARNING, "database_unavailable",
                           f"{self.label}: {message}; still retrying after {now - self._outage_since:.0f}s")
        self._next_try = now + self._retry_delay * (1 + 0.25 * random.random())
        if self.listener is not None:
            self._listener_lost(close=True)
        if self.session is not None:
            with contextlib.suppress(Exception):
                self.session.close()
        self.session = None

    def _db_ok(self) -> None:
        """A statement worked: an outage, if there was one, is over (said once)."""
        if self._outage_since is not None:
            logs.event(logging.INFO, "database_available",
                       f"{self.label}: database works again after {time.monotonic() - self._outage_since:.1f}s")
            self._outage_since = None
            self._retry_delay = 0.0
            self._next_try = 0.0

    def _register(self) -> int:
        return self._db().register_process(
            kind="supervisor", hostname=HOSTNAME, host_id=host_id(), pid=os.getpid(), supervisor_id=None,
            queues=None, threads=None, wakeup=self.wakeup, metadata="{}")

    # -- wake-ups: LISTEN for the host, relayed to the workers -------------------------------

    def _listen(self) -> None:
        """Take LISTEN for our workers and check that notifications arrive; else they poll."""
        self._relisten_at = time.monotonic() + RELISTEN_EVERY_S
        why = ""
        try:
            listener = self.store.listener(share=self._db())
            if listener is not None and not self._probe(listener):
                listener.close()
                listener = None
                why = (f"our own NOTIFY did not come back within {PROBE_TIMEOUT_S:.0f}s (a transaction pooler in "
                       "between? see `pooler:` and `listen_database:`)")
        except DatabaseError as exc:
            listener, why = None, str(exc)
        if listener is None and not why and self.store.options.pooler == "transaction":
            why = "behind a transaction pooler (pooler: transaction) without listen_database"
        self.listener = listener
        self._set_wakeup("listening" if listener is not None else "polling", why)

    def _probe(self, listener: Listener) -> bool:
        """A round trip of our own: a NOTIFY sent from another connection reaches `listener`."""
        token = secrets.token_hex(8)
        sender = self.store.session()
        try:
            sender.send_probe(token)
        finally:
            sender.close()
        deadline = time.monotonic() + PROBE_TIMEOUT_S
        while True:
            payloads = listener.drain()
            self._relay(payloads)
            if PROBE_PREFIX + token in payloads:
                return True
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            with contextlib.suppress(InterruptedError):
                select.select([listener.fileno()], [], [], left)

    def _set_wakeup(self, wakeup: str, why: str = "") -> None:
        """Tell our workers (and the processes table) how they wake now; log a change once."""
        changed, self.wakeup = wakeup != self.wakeup, wakeup
        if changed or why:
            polling = min((c.config.polling_interval for c in self.children if isinstance(c.config, WorkerConfig)),
                          default=0.0)
            logs.event(logging.INFO if wakeup == "listening" else logging.WARNING, "wakeup",
                       f"{self.label}: workers listen for new jobs (NOTIFY)" if wakeup == "listening" else
                       f"{self.label}: workers poll every {polling:g}s" + (f": {why}" if why else ""))
        self._tell_workers(b"l" if wakeup == "listening" else b"p", self.children)
        ids = [self.process_id] + [c.slots.process_id for c in self.children if c.pid and c.slots.process_id]
        if self.process_id:
            with contextlib.suppress(DatabaseError):
                self._db().set_wakeup(ids, wakeup)

    def _listener_lost(self, *, close: bool) -> None:
        listener, self.listener = self.listener, None
        if close and listener is not None:
            with contextlib.suppress(Exception):
                listener.close()
        self._relisten_at = 0.0  # listen again as soon as the database works
        self._set_wakeup("polling", "the listening connection was lost")

    def _relay_pending(self) -> bool:
        """Relay what the listener has received; True when there was something."""
        if self.listener is None:
            return False
        try:
            payloads = self.listener.drain()
        except DatabaseError as exc:
            if self._shares_session():
                self._db_failed(exc)  # the listener was on the session: both are gone
            else:
                self._listener_lost(close=True)
            return False
        self._relay(payloads)
        return bool(payloads)

    def _shares_session(self) -> bool:
        return self.listener is not None and getattr(self.listener, "owns", True) is False

    def _relay(self, payloads: Sequence[str]) -> None:
        """Wake the workers whose queues a notification names (probes are ours, never relayed)."""
        for payload in payloads:
            if payload.startswith(PROBE_PREFIX):
                continue
            self._tell_workers(b"w", [c for c in self.children if any(s.matches(payload) for s in c.selectors)])

    @staticmethod
    def _tell_workers(message: bytes, children: Sequence[Child]) -> None:
        for child in children:
            if child.wake_w >= 0 and child.pid:
                # A full pipe means the worker has wake-ups waiting already.
                with contextlib.suppress(BlockingIOError, BrokenPipeError):
                    os.write(child.wake_w, message)

    # -- children ----------------------------------------------------------------------------

    def _spawn(self, child: Child) -> None:
        child.slots.clear()
        child.restart_at = None
        child.signalled = False
        self._close_pipe(child)
        wake_r = -1
        if child.kind == "worker" and self.store.listens:
            wake_r, child.wake_w = os.pipe()
        pid = os.fork()
        if pid == 0:
            self._child_main(child, wake_r)
        if wake_r >= 0:
            os.close(wake_r)
            os.set_blocking(child.wake_w, False)
        child.pid = pid
        child.started = time.monotonic()
        logs.event(logging.DEBUG, "child_started", f"{self.label}: {child.name} started (pid {pid})")

    @staticmethod
    def _close_pipe(child: Child) -> None:
        if child.wake_w >= 0:
            with contextlib.suppress(OSError):
                os.close(child.wake_w)
            child.wake_w = -1

    def _child_main(self, child: Child, wake_r: int) -> None:
        """Runs in the forked child; never returns."""
        code = 1
        try:
            signal.set_wakeup_fd(-1)
            signal.signal(signal.SIGCHLD, signal.SIG_DFL)
            os.close(self._wake_r)
            os.close(self._wake_w)
            for other in self.children:  # only the supervisor writes to wake-up pipes
                self._close_pipe(other)
            if self.metrics_setup is not None and child.kind != "metrics":
                self.metrics_setup.sock.close()  # the port is the metrics server's alone
            self.session = None  # the parent's connection: never used here, never closed (os._exit below)
            self.listener = None  # on that connection, or the parent's own: never used here either
            code = self._run_child(child, wake_r)
        except BaseException as exc:
            traceback.print_exc()
            if not isinstance(exc, SystemExit | KeyboardInterrupt):
                hooks.report(exc)  # a bug of jobctl's own (or of a hook's caller): the reporter hears of it
        finally:
            for handler in logs.LOGGER.handlers:
                with contextlib.suppress(Exception):
                    handler.flush()
            os._exit(code)

    def _run_child(self, child: Child, wake_r: int) -> int:
        supervisor_pid = os.getppid()
        if child.kind == "worker":
            assert isinstance(child.config, WorkerConfig)
            return Worker(self.store, child.config, self.config, child.slots, supervisor_pid=supervisor_pid,
                          supervisor_id=self.process_id, name=child.name, wake_fd=wake_r if wake_r >= 0 else None,
                          wakeup=self.wakeup).run()
        if child.kind == "dispatcher":
            assert isinstance(child.config, DispatcherConfig)
            return Dispatcher(self.store, child.config, self.config, child.slots, supervisor_pid=supervisor_pid,
                              supervisor_id=self.process_id, name=child.name).run()
        if child.kind == "metrics":
            assert self.metrics_setup is not None
            return metrics.MetricsServer(
                self.store, self.metrics_setup.sock, directory=self.metrics_setup.directory,
                interval=self.config.metrics_interval, alive_threshold=self.config.process_alive_threshold,
                named_queues=self.config.named_queues, supervisor_pid=supervisor_pid).run()
        return Scheduler(self.store, self.tasks, child.slots, supervisor_pid=supervisor_pid,
                         supervisor_id=self.process_id, name=child.name).run()

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
            self._close_pipe(child)
            crashed = not child.signalled and not death.clean
            executing = child.slots.executing() if crashed else []
            self.pending_deaths.append((child, child.slots.process_id, death, executing))
            lived = time.monotonic() - child.started
            child.pid = 0
            if crashed:
                logs.event(logging.ERROR, "child_crashed",
                           f"{self.label}: {child.name} (pid {pid}) died: {death.describe()}"
                           + (f" while executing jobs {executing}" if executing else ""))
                child.crashes_in_row = child.crashes_in_row + 1 if lived < STABLE_AFTER_S else 1
                backoff = 0.0 if child.crashes_in_row <= 1 else min(
                    RESTART_BACKOFF_MAX_S, 0.5 * 2 ** (child.crashes_in_row - 2))
            else:
                logs.event(logging.INFO, "child_exited", f"{self.label}: {child.name} (pid {pid}) exited")
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
                        if results and (metrics.ENABLED or hooks.reporting()):
                            self._crashed(db.job_summaries([job_id for job_id, _ in results]), results, death)
                        for job_id, state in results:
                            logs.event(logging.ERROR if state == "failed" else logging.WARNING, "job_crashed",
                                       f"job {job_id} was running when {child.name} died ({death.describe()}); "
                                       + ("failed after max_crashes" if state == "failed" else "back to ready"),
                                       job_id=job_id, error=death.describe())
                    db.deregister([process_id])
                except DatabaseError as exc:
                    self._db_failed(exc)
                    return  # try again on the next loop
                self._db_ok()
            self.pending_deaths.pop(0)

    @staticmethod
    def _crashed(jobs: dict[int, JobSummary], results: Sequence[tuple[int, str]], death: Death) -> None:
        """Count the crashed runs, and hand each to the error reporter as a WorkerCrashed."""
        if metrics.ENABLED:
            metrics.count_runs([(jobs[j].queue, jobs[j].class_path) for j, _ in results if j in jobs], "crashed")
        for job_id, state in results:
            job = jobs.get(job_id)
            if job is not None and hooks.reporting():
                hooks.report(WorkerCrashed(f"job {job_id} was running when its worker process died: "
                                           f"{death.describe()}"),
                             hooks.ReportedJob(job.id, job.class_path, job.queue, job.attempt,
                                               "failed" if state == "failed" else "retry", job.arguments))

    # -- heartbeats and pruning --------------------------------------------------------------

    def _heartbeat(self) -> None:
        beats = [(self.process_id, 0)] + [(c.slots.process_id, c.slots.busy()) for c in self.children
                                          if c.pid and c.slots.process_id]
        try:
            alive = self._db().heartbeat(beats)
        except DatabaseError as exc:
            self._db_failed(exc)
            return
        self._db_ok()
        if self.process_id not in alive:
            logs.event(logging.ERROR, "supervisor_pruned",
                       f"{self.label}: its row (process {self.process_id}) was pruned by another host; "
                       "registering again")
            try:
                self.process_id = self._register()
            except DatabaseError as exc:
                self._db_failed(exc)
        for child in self.children:
            if child.pid and child.slots.process_id and child.slots.process_id not in alive and not child.signalled:
                # Its claims were released by a pruner: restart it so it registers afresh.
                logs.event(logging.WARNING, "child_pruned", f"{self.label}: {child.name} was pruned; restarting it")
                child.signalled = True
                with contextlib.suppress(ProcessLookupError):
                    os.kill(child.pid, signal.SIGTERM)

    def _prune(self) -> None:
        """Release the claims of processes that are gone: dead on this host, or silent anywhere."""
        mine = {self.process_id} | {c.slots.process_id for c in self.children if c.slots.process_id}
        try:
            db = self._db()
            gone = {p.id for p in db.stale_processes(self.config.process_alive_threshold)}
            rows = db.host_processes(host_id())
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
                           f"{self.label}: pruned {len(gone)} vanished {plural(len(gone), 'process')}, {released} "
                           f"{plural(released, 'job')} back to ready")
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
        hooks.run_hooks("stop", self._runtime_process())
        try:
            self._db().deregister([self.process_id])
        except DatabaseError as exc:
            logs.event(logging.ERROR, "supervisor_stop_failed", f"{self.label}: {exc}")
            return 1
        logs.event(logging.INFO, "supervisor_stopped", f"{self.label} stopped")
        return 0
