"""The scheduler process: enqueues recurring tasks, one job per task and tick.

Ticks are computed from the database's clock each time round the loop, never from timers
that could go stale (a laptop's sleep, a paused VM): after a wake-up, the tick that is due
now is enqueued and older ones are skipped. Any number of schedulers may run; the primary
key of jobctl_recurring_runs lets exactly one of them enqueue each tick.
"""

from __future__ import annotations

import datetime as dt
import logging
import time

from jobctl.formatting import plural
from jobctl.records import RecurringRow
from jobctl.recurring import RecurringTask, row_for
from jobctl.runtime import logs
from jobctl.runtime.process import ChildProcess, SlotTable
from jobctl.store import Store

# A tick later than this when we get to it counts as missed (the host slept, or nobody ran).
MISSED_AFTER_S = 60.0
RUNS_KEPT_S = 7 * 86400
PRUNE_EVERY_S = 3600.0
MAX_SLEEP_S = 5.0


class Scheduler(ChildProcess):
    """One scheduler process for every task of recurring.yml."""

    kind = "scheduler"

    def __init__(self, store: Store, tasks: tuple[RecurringTask, ...], slots: SlotTable,
                 *, supervisor_pid: int, supervisor_id: int | None, name: str = "scheduler") -> None:
        super().__init__(store, slots, supervisor_pid=supervisor_pid, supervisor_id=supervisor_id, name=name)
        self.tasks = tasks
        self.rows: dict[str, RecurringRow] = {}
        self.next_runs: dict[str, dt.datetime] = {}
        self.next_prune = 0.0

    def run(self) -> int:
        """Enqueue ticks until stopped."""
        self.install_signals()
        self.register(queues=None, threads=None, metadata={"tasks": [t.key for t in self.tasks]})
        logs.event(logging.INFO, "scheduler_started",
                   f"{self.label} started (process {self.process_id}) with {len(self.tasks)} recurring "
                   f"{plural(len(self.tasks), 'task')}")
        return self.run_rounds(self.round)

    def round(self) -> float:
        """Register the tasks (first time), enqueue due ticks, now and then prune old ticks."""
        if not self.rows:
            self._load()
        wait = self.tick()
        if time.monotonic() >= self.next_prune:
            self.db().prune_recurring_runs(RUNS_KEPT_S)
            self.next_prune = time.monotonic() + PRUNE_EVERY_S
        return wait

    def _load(self) -> None:
        now = self.db().now()
        for task in self.tasks:
            next_run = task.schedule.next_after(now)
            row = row_for(task, next_run)
            self.db().upsert_recurring_task(row)
            self.rows[task.key] = row
            self.next_runs[task.key] = next_run

    def tick(self) -> float:
        """Enqueue every task whose tick is due; return seconds until the next one."""
        session = self.db()
        now = session.now()
        for task in self.tasks:
            due = self.next_runs[task.key]
            if due > now:
                continue
            row = self.rows[task.key]
            if (now - due).total_seconds() <= MISSED_AFTER_S:
                job_id = session.enqueue_tick(row, due)
                if job_id is not None:
                    logs.event(logging.INFO, "recurring_enqueued",
                               f"recurring task {task.key} ({row.schedule}) enqueued job {job_id} for "
                               f"{due.isoformat()}", job_id=job_id, class_=row.class_path, queue=row.queue)
            else:
                logs.event(logging.WARNING, "recurring_missed",
                           f"recurring task {task.key}: tick {due.isoformat()} missed; skipped")
            self.next_runs[task.key] = task.schedule.next_after(now)
            session.set_next_run(task.key, self.next_runs[task.key])
        soonest = min(self.next_runs.values(), default=now + dt.timedelta(seconds=MAX_SLEEP_S))
        return min(max((soonest - now).total_seconds(), 0.0), MAX_SLEEP_S)
