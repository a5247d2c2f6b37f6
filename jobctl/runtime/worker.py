"""A worker process: claims batches, hands them to its threads, batches completions.

The main thread talks to the database; N executor threads run jobs. Claimed jobs wait in
a SimpleQueue (no future per job), finished ids come back in a deque, and the next claim
statement carries the previous batch's completions, so a busy worker commits once per batch.
"""

from __future__ import annotations

import json
import logging
import os
import queue
import random
import threading
import time
from collections import deque

import psutil

from jobctl import database, hooks, tracing
from jobctl.config import QueueConfig, WorkerConfig
from jobctl.errors import DatabaseError
from jobctl.formatting import plural
from jobctl.records import ClaimedJob, Selector
from jobctl.runtime import logs, metrics
from jobctl.runtime.execution import Executor, Outcome, error_of, record_outcome
from jobctl.runtime.process import ChildProcess, SlotTable
from jobctl.runtime.progress import ProgressReporter
from jobctl.store import Store

# Adaptive prefetch keeps about this many seconds of work in hand per thread, up to MAX_PREFETCH
# jobs: the cap binds only for jobs shorter than ~0.15 ms, where bigger claims mean fewer
# statements per job (50,000 no-op jobs, 2 processes: 48k/s with a cap of 500, 58k/s with 4,000).
PREFETCH_HORIZON_S = 0.2
MAX_PREFETCH = 4000
FLUSH_AFTER_S = 0.05
FLUSH_AT = 500
HINT_RESET_S = 1.0
ASYNC_GRACE_S = 1.0
"""An async job past its timeout is cancelled by its own thread; the main thread steps in only this much later."""
INFO = logging.INFO


class Worker(ChildProcess):
    """One worker process of a worker group."""

    kind = "worker"

    def __init__(self, store: Store, config: WorkerConfig, queue_config: QueueConfig, slots: SlotTable,
                 *, supervisor_pid: int, supervisor_id: int | None, name: str = "worker",
                 wake_fd: int | None = None, wakeup: str = "polling") -> None:
        super().__init__(store, slots, supervisor_pid=supervisor_pid, supervisor_id=supervisor_id, name=name)
        self.wake_fd = wake_fd
        """The pipe on which the supervisor relays notifications (None: poll)."""
        self.config = config
        self.queue_config = queue_config
        self.selectors = [Selector.parse(q) for q in config.queues]
        self.threads = config.threads
        self.token = random.getrandbits(62) + 1
        self.jobs: queue.SimpleQueue[ClaimedJob | None] = queue.SimpleQueue()
        self.done: deque[int] = deque()
        self.members_done: deque[int] = deque()
        """Finished batch members: written by their own statement, which counts them in their batch, at
        most every FLUSH_AFTER_S (their batch's row is locked until it commits: claims never wait on it)."""
        self.outcomes: deque[tuple[ClaimedJob, Outcome]] = deque()
        self.maybe_more = True
        self.listening = wakeup == "listening" and wake_fd is not None
        """The supervisor relays NOTIFY: poll only at fallback_polling_interval."""
        self.avg_duration: float | None = None
        self.completed = [0] * self.threads
        self.claimed_total = 0
        self.pending: list[int] = []
        """Finished jobs whose completion the database has not been told yet (main thread only)."""
        self.counting = metrics.ENABLED
        """Metrics are on: count each run once the database has its outcome."""
        self.labels: dict[int, tuple[str, str]] = {}
        """(queue, class) of the jobs in hand, while counting."""
        self.members_pending: list[int] = []
        """Finished batch members whose completion the database has not been told yet (main thread only)."""
        self.in_hand: set[int] = set()
        """Jobs this worker holds claims for, as far as it knows (main thread only): claimed and not yet
        recorded as finished, retried, failed or discarded."""
        self.hints: dict[Selector, tuple[int, int]] = {}
        self.executor = Executor(imports=queue_config.imports)
        self.deadlines: dict[int, tuple[ClaimedJob, float, float, float]] = {}
        """Per executor thread running a job with a timeout: (job, deadline, timeout, started), monotonic."""
        self.abandoned: set[int] = set()
        """Jobs whose run went past its timeout: their outcome was recorded here, their thread's is dropped."""
        self.recycle_reason: str | None = None
        """Why this worker stops claiming and is replaced (a job's thread is stuck past its timeout)."""
        self._watch_lock = threading.Lock()
        self.progress = ProgressReporter(store)
        self.log_info = logs.LOGGER.isEnabledFor(INFO)

    # -- lifecycle -------------------------------------------------------------------------

    def run(self) -> int:
        """The process's main: register, run until asked to stop, return jobs, deregister."""
        self.install_signals()
        self.register(queues=",".join(self.config.queues), threads=self.threads,
                      metadata={"prefetch": self.config.prefetch, "polling_interval": self.config.polling_interval},
                      wakeup="listening" if self.listening else "polling")
        database.adopt(self.store)  # its jobs' enqueues and progress share one connection
        logs.event(INFO, "worker_started", f"{self.label} started on {','.join(self.config.queues)} with "
                   f"{self.threads} {plural(self.threads, 'thread')} (process {self.process_id}, "
                   f"{'listening' if self.listening else 'polling'})", queue=",".join(self.config.queues))
        for index in range(self.threads):
            threading.Thread(target=self._execute_loop, args=(index,), name=f"jobctl-exec-{index}", daemon=True).start()
        if self.wake_fd is not None:
            threading.Thread(target=self._relay_loop, name="jobctl-wake", daemon=True).start()
        try:
            self._main_loop()
        finally:
            self._shutdown()
            self.stopped()
        return 0

    # -- main thread: claims and completions ---------------------------------------------

    def _main_loop(self) -> None:
        pending = self.pending
        pending_since = 0.0
        members = self.members_pending
        members_since = 0.0
        next_poll = 0.0
        next_checks = 0.0
        hints_reset = time.monotonic()
        while not self.stopping:
            self.wake.clear()
            now = time.monotonic()
            try:
                if now >= next_checks:
                    next_checks = now + 1.0
                    if self._should_stop():
                        break
                if self.deadlines:
                    self._watch_deadlines(now)
                if self.outcomes:
                    self._apply_outcomes()
                if self.recycle_reason is not None and not self.outcomes:
                    break
                if self.done and not pending:
                    pending_since = now
                while self.done:
                    pending.append(self.done.popleft())
                if self.members_done and not members:
                    members_since = now
                while self.members_done:
                    members.append(self.members_done.popleft())
                if now >= next_poll:
                    self.maybe_more = True
                    interval = (self.config.fallback_polling_interval if self.listening
                                else self.config.polling_interval)
                    next_poll = now + interval
                if now - hints_reset >= HINT_RESET_S:
                    self.hints.clear()
                    hints_reset = now
                capacity = self.threads + self._prefetch()
                holding = self.jobs.qsize() + self.slots.busy()
                want = capacity - holding
                if self.config.max_jobs_per_process is not None:
                    budget = self.config.max_jobs_per_process - self.claimed_total
                    if budget <= 0 and holding == 0 and not self.done and not self.members_done \
                            and not self.outcomes:
                        logs.event(INFO, "worker_recycle", f"{self.label}: ran {sum(self.completed)} "
                                   "jobs (max_jobs_per_process); recycling")
                        break
                    want = min(want, budget)
                if members and (len(members) >= FLUSH_AT or holding == 0 or now - members_since >= FLUSH_AFTER_S):
                    self._finish_members()
                if self.maybe_more and want > 0 and (holding <= capacity // 2 or holding < self.threads):
                    self.maybe_more = False  # a notify during the claim sets it again
                    got = self._claim(want, pending)
                    self.claimed_total += got
                    pending.clear()
                    if self.outage_since is not None:
                        self.recovered()
                    if got == want:
                        self.maybe_more = True
                    continue
                if pending and (len(pending) >= FLUSH_AT or holding == 0 or now - pending_since >= FLUSH_AFTER_S):
                    self._finish_pending()
                    if self.outage_since is not None:
                        self.recovered()
                    continue
            except DatabaseError as exc:
                self._recover(exc)
                continue
            timeout = min(next_poll - now, next_checks - now, *(d[1] - now for d in list(self.deadlines.values())))
            if pending or members:
                timeout = min(timeout, FLUSH_AFTER_S)
            self.wake.wait(max(timeout, 0.0))
        # Completions not yet written go out with the shutdown.
        self.done.extendleft(reversed(pending))
        pending.clear()
        self.members_done.extendleft(reversed(members))
        members.clear()

    def _recover(self, exc: DatabaseError) -> None:
        """Reconnect; a claim statement cut off after its commit may have claimed jobs we never heard
        of: give back every claim we do not know we hold. Jobs that finished meanwhile are recorded
        first: they ran, and must not run again. While the database keeps failing (down, locked,
        its disk full), `reconnect` backs off; running jobs go on, their outcomes wait in memory."""
        while True:
            try:
                self.reconnect(exc)
            except DatabaseError:
                return  # stopping (or orphaned) while the database is away: the shutdown copes
            self.hints.clear()
            try:
                self._finish_done()
                if self.outcomes:
                    self._apply_outcomes()
                released = self.db().release_claims(self.process_id, sorted(self.in_hand))
                if self.counting:
                    self.labels = {i: self.labels[i] for i in self.in_hand if i in self.labels}
            except DatabaseError as again:
                if self.stopping or self.parent_gone():
                    return  # the main loop stops; the shutdown tries once more, the supervisor does the rest
                exc = again
                continue
            if released:
                logs.event(logging.INFO, "claims_released", f"{self.label}: {released} claimed jobs "
                           "back to ready after the database connection was lost")
            return

    def _finish_done(self) -> None:
        """Write every finished run the executor threads left, batch members by their own statement."""
        while self.done:
            self.pending.append(self.done.popleft())
        if self.pending:
            self._finish_pending()
        while self.members_done:
            self.members_pending.append(self.members_done.popleft())
        if self.members_pending:
            self._finish_members()

    def _finish_pending(self) -> None:
        self.db().finish(self.pending, token=self.token, process_id=self.process_id)
        self.in_hand.difference_update(self.pending)
        self._count(self.pending, "finished")
        self.pending.clear()

    def _finish_members(self) -> None:
        self.db().finish(self.members_pending, token=self.token, process_id=self.process_id, members=True)
        self.in_hand.difference_update(self.members_pending)
        self._count(self.members_pending, "finished")
        self.members_pending.clear()

    def _drop_prefetched(self) -> None:
        """Forget claimed jobs no thread has started (their claims are released by the caller)."""
        while True:
            try:
                self.jobs.get_nowait()
            except queue.Empty:
                return

    def _prefetch(self) -> int:
        if self.config.prefetch is not None:
            return self.config.prefetch
        avg = self.avg_duration
        if avg is None:
            return 0  # nothing known yet: claim only for idle threads, so long jobs spread out
        return min(MAX_PREFETCH, int(self.threads * PREFETCH_HORIZON_S / max(avg, 1e-6)))

    def _claim(self, want: int, done: list[int]) -> int:
        remaining = want
        session = self.db()
        for selector in self.selectors:
            jobs = session.claim(selector, remaining, token=self.token, process_id=self.process_id,
                                 done=done, after=self.hints.get(selector))
            self.in_hand.difference_update(done)
            self._count(done, "finished")
            done = []  # flushed with the first statement
            for job in jobs:
                self.in_hand.add(job.id)
                if self.counting:
                    self.labels[job.id] = (job.queue, job.class_path)
                self.jobs.put(job)
            if len(jobs) < remaining:
                self.hints.pop(selector, None)
            else:
                self.hints[selector] = (jobs[-1].priority, jobs[-1].id)
            remaining -= len(jobs)
            if remaining == 0:
                break
        if done:
            session.finish(done, token=self.token, process_id=self.process_id)
            self.in_hand.difference_update(done)
            self._count(done, "finished")
        return want - remaining

    def _count(self, ids: list[int], state: str) -> None:
        """The database has these runs ended in `state`: count them (when metrics are on)."""
        if self.counting and ids:
            pop = self.labels.pop
            metrics.count_runs([label for i in ids if (label := pop(i, None)) is not None], state)

    def _apply_outcomes(self) -> None:
        """Write the outcomes executor threads left: runs that returned a value in one statement per batch,
        the others (retries, failures, discards) one by one. Each is removed only once written."""
        session = self.db()
        outcomes = self.outcomes
        while outcomes:
            returned = 0
            while returned < len(outcomes) and outcomes[returned][1].state == "finished":
                returned += 1
            if returned:
                batch = [outcomes[i] for i in range(returned)]
                for members in (False, True):  # batch members apart: their statement counts them
                    results = [(job.id, outcome.result or "null") for job, outcome in batch
                               if (job.batch_id is not None) is members]
                    if results:
                        session.finish_with_results(results, token=self.token, process_id=self.process_id,
                                                    members=members)
                for _ in range(returned):
                    self.in_hand.discard(outcomes.popleft()[0].id)
                self._count([job.id for job, _ in batch], "finished")
                continue
            job, outcome = outcomes[0]
            if record_outcome(session, job, outcome, token=self.token, process_id=self.process_id):
                self._count([job.id], outcome.state)
            outcomes.popleft()
            self.in_hand.discard(job.id)

    def _watch_deadlines(self, now: float) -> None:
        """Record JobTimeout for runs past their timeout (main thread), and start this worker's replacement."""
        with self._watch_lock:
            expired = [(i, d) for i, d in self.deadlines.items() if d[1] <= now and d[0].id not in self.abandoned]
            for _index, (job, _deadline, _timeout, _started) in expired:
                self.abandoned.add(job.id)
        for _index, (job, _deadline, timeout, started) in expired:
            outcome = self.executor.timed_out(job, job.executions, timeout, now - started)
            self.outcomes.append((job, outcome))
            metrics.observe(job.queue, job.class_path, outcome.duration)
            report_failure(job, outcome)
            if self.recycle_reason is None:
                self.recycle_reason = f"job {job.id} ran past its timeout of {timeout:g}s"
                logs.event(logging.WARNING, "worker_recycle",
                           f"{self.label}: {self.recycle_reason} and its thread cannot be stopped; stops claiming, "
                           "lets its other jobs finish and is replaced", job_id=job.id, class_=job.class_path,
                           queue=job.queue)

    def _should_stop(self) -> bool:
        if self.parent_gone():
            logs.event(logging.WARNING, "supervisor_gone", f"{self.label}: supervisor is gone; stopping")
            return True
        if self.config.max_memory_mb is not None:
            rss_mb = psutil.Process().memory_info().rss / 2**20
            if rss_mb > self.config.max_memory_mb:
                logs.event(logging.WARNING, "worker_recycle",
                           f"{self.label}: {rss_mb:.0f} MB > max_memory_mb; recycling")
                return True
        return False

    def _shutdown(self) -> None:
        """Return jobs not started, let running ones finish within shutdown_timeout, deregister."""
        self.stopping = True
        self._drop_prefetched()  # returned by deregister below, uncounted
        deadline = time.monotonic() + self.queue_config.shutdown_timeout
        # A thread stuck past its job's timeout is not waited for: its outcome is recorded already.
        while any(j not in self.abandoned for j in self.slots.executing()) and time.monotonic() < deadline:
            self.wake.wait(0.01)
            self.wake.clear()
        try:
            self._apply_outcomes()
            self._finish_done()
            released = self.db().deregister([self.process_id])
        except DatabaseError as exc:
            logs.event(logging.ERROR, "worker_stop_failed", f"{self.label}: {exc}")
            return
        for _ in range(self.threads):
            self.jobs.put(None)
        logs.event(INFO, "worker_stopped",
                   f"{self.label} stopped ({sum(self.completed)} jobs run, {released} returned to ready)")

    # -- executor threads ----------------------------------------------------------------

    def _execute_loop(self, index: int) -> None:
        jobs, slots, wake, run = self.jobs, self.slots, self.wake, self.executor.run
        tally = metrics.Tally() if metrics.ENABLED else None
        traced = tracing.active()
        while True:
            if tally is not None and tally.durations:
                if tally.due(jobs.empty()):
                    tally.flush()
                    job = jobs.get()
                else:
                    try:  # another thread may take the last job: write the tallies within a second anyway
                        job = jobs.get(timeout=metrics.FLUSH_EVERY_S)
                    except queue.Empty:
                        tally.flush()
                        continue
            else:
                job = jobs.get()
            if job is None:
                if tally is not None:
                    tally.flush()
                return
            executions = job.executions
            slots.set(index, job.id)
            watch = self.executor.timeout_of(job)
            if watch is not None:
                started = time.monotonic()
                self.deadlines[index] = (job, started + watch[0] + (ASYNC_GRACE_S if watch[1] else 0.0), watch[0],
                                         started)
            try:
                if self.log_info:
                    logs.event(INFO, "job_start", f"job {job.id} {job.class_path} on {job.queue} started "
                               f"(attempt {job.attempt})", job_id=job.id, class_=job.class_path, queue=job.queue,
                               attempt=job.attempt)
                if traced:
                    with tracing.processing(job.id, job.queue, job.class_path, job.attempt, job.arguments) as span:
                        outcome = run(job, executions=executions, setup=self.progress.attach)
                        tracing.ended(span, outcome.state, outcome.exception)
                else:
                    outcome = run(job, executions=executions, setup=self.progress.attach)
            except BaseException as exc:  # run() turns every error into an outcome; this is the last
                # guard, since a dead executor thread would hold its job claimed for good
                outcome = Outcome("failed", 0.0, error_of(exc), exception=exc)
            if watch is not None:
                with self._watch_lock:
                    self.deadlines.pop(index, None)
                    late = job.id in self.abandoned
                    self.abandoned.discard(job.id)
                if late:  # the main thread recorded its timeout: this outcome comes too late to count
                    slots.set(index, 0)
                    continue
            if outcome.state == "finished":
                if outcome.result is None:
                    if job.batch_id is None:
                        self.done.append(job.id)  # rides on the next claim
                    else:
                        self.members_done.append(job.id)
                else:
                    self.outcomes.append((job, outcome))  # its value goes with its completion
                if self.log_info:
                    logs.event(INFO, "job_finished", f"job {job.id} {job.class_path} on {job.queue} finished in "
                               f"{outcome.duration * 1000:.1f} ms", job_id=job.id, class_=job.class_path,
                               queue=job.queue, attempt=job.attempt, duration_ms=round(outcome.duration * 1000, 3))
            else:
                self.outcomes.append((job, outcome))
                report_failure(job, outcome)
            slots.set(index, 0)
            if tally is not None:
                tally.add(job.queue, job.class_path, outcome.duration)
            self.completed[index] += 1
            avg = self.avg_duration
            self.avg_duration = outcome.duration if avg is None else avg * 0.9 + outcome.duration * 0.1
            if not wake.is_set():
                wake.set()

    # -- wake-ups relayed by the supervisor (PostgreSQL) ---------------------------------

    def _relay_loop(self) -> None:
        """Read the supervisor's pipe: `w` new jobs for our queues, `l` / `p` it is listening / polling now.
        The supervisor listens once for its host (one connection, not one per worker) and writes here."""
        assert self.wake_fd is not None
        while True:
            try:
                data = os.read(self.wake_fd, 512)
            except InterruptedError:
                continue
            except OSError:
                return
            if not data:  # the supervisor is gone: the main loop notices and stops
                return
            if b"p" in data:
                self.listening = False
            elif b"l" in data:
                self.listening = True
            self.maybe_more = True
            self.wake.set()


def report_failure(job: ClaimedJob, outcome: Outcome) -> None:
    """Hand a run that raised (to be retried, or failed for good) to the error reporter, if one is set."""
    if outcome.exception is not None and outcome.state in ("retry", "failed") and hooks.reporting():
        arguments = job.arguments if isinstance(job.arguments, str) else json.dumps(job.arguments)
        hooks.report(outcome.exception, hooks.ReportedJob(job.id, job.class_path, job.queue, job.attempt,
                                                          outcome.state, arguments))
