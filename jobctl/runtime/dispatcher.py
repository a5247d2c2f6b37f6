"""The dispatcher: due scheduled jobs (and retries) to ready in batches, unblocks jobs waiting for a
concurrency slot that is free, prunes expired history."""

from __future__ import annotations

import logging
import time

from jobctl.config import DispatcherConfig, QueueConfig
from jobctl.runtime import logs
from jobctl.runtime.process import ChildProcess, SlotTable
from jobctl.store import Store

PRUNE_BATCH = 500
PRUNE_BATCHES_PER_TICK = 10
PRUNE_EVERY_S = 10.0
THROUGHPUT_KEPT_S = 2 * 86400
THROUGHPUT_PRUNE_EVERY_S = 600


class Dispatcher(ChildProcess):
    """One dispatcher process."""

    kind = "dispatcher"

    def __init__(self, store: Store, config: DispatcherConfig, queue_config: QueueConfig, slots: SlotTable,
                 *, supervisor_pid: int, supervisor_id: int | None, name: str = "dispatcher") -> None:
        super().__init__(store, slots, supervisor_pid=supervisor_pid, supervisor_id=supervisor_id, name=name)
        self.config = config
        self.queue_config = queue_config
        # Not preserving finished jobs means keeping them for no time at all.
        self.retention = queue_config.clear_finished_jobs_after if queue_config.preserve_finished_jobs else 0.0
        self.next_prune = 0.0
        self.next_throughput_prune = 0.0

    def run(self) -> int:
        """Dispatch and prune every polling_interval until stopped."""
        self.install_signals()
        self.register(queues=None, threads=None,
                      metadata={"polling_interval": self.config.polling_interval, "batch_size": self.config.batch_size})
        logs.event(logging.INFO, "dispatcher_started", f"{self.label} started (process {self.process_id})")
        return self.run_rounds(self.round)

    def round(self) -> float:
        """A tick, and now and then forgetting old throughput counters; returns seconds to wait."""
        self.tick()
        if time.monotonic() >= self.next_throughput_prune:
            self.db().prune_throughput(THROUGHPUT_KEPT_S)
            self.next_throughput_prune = time.monotonic() + THROUGHPUT_PRUNE_EVERY_S
        return self.config.polling_interval

    def tick(self) -> None:
        """One round: every due job to ready, blocked jobs to free slots, and now and then pruning."""
        session = self.db()
        moved, unblocked = session.dispatch_and_unblock(self.config.batch_size)
        if unblocked:
            logs.event(logging.INFO, "unblocked", f"{self.label}: {unblocked} blocked jobs got "
                       "a free concurrency slot")
        while moved == self.config.batch_size and not self.stopping:
            moved = session.dispatch_due(self.config.batch_size)
        # Pruning is not urgent: every PRUNE_EVERY_S, or at once while a backlog of expired jobs remains.
        now = time.monotonic()
        if now < self.next_prune:
            return
        pruned = PRUNE_BATCH
        for _ in range(PRUNE_BATCHES_PER_TICK):
            if self.stopping:
                return
            pruned = session.prune_finished(self.retention, PRUNE_BATCH)
            if pruned < PRUNE_BATCH:
                break
        self.next_prune = now if pruned == PRUNE_BATCH else now + PRUNE_EVERY_S
