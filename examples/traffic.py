"""The demo's users, simulated: a steady trickle of the example app's work until the demo stops.

`make demo` runs one `Traffic` thread beside `jobctl start`. It does what the app's web requests
would do, through the app's models and jobctl's public API (`perform_later`, the `_later` methods):

- every 3 s someone comments on an entity: `Comment.post` enqueues its notifications (queue
  `default`), and the app sends the event to its webhook (`DispatchWebhookJob`, queue `webhooks`),
  whose first try the receiver fails, so the job is retried about 3 s later;
- every 4 s someone rates an entity, and its metrics are recalculated (`CalculateMetricsJob`, `default`);
- an export of the Parks Department's entities is always running (`ExportDataJob`, queue `exports`,
  reporting progress): the next one is asked for when the last one is done, and only the demo's last
  few exports are kept (file and row), so a demo left running does not fill the disk;
- at once, then every minute, someone asks for an export type the app does not have: that job fails
  for good (a `ValueError`), so `jobctl top` has failures to retry (`r`) or discard (`d`).

Bundled deliveries come from `config/recurring.yml` (every 5 seconds in development), not from here.
"""

from __future__ import annotations

import random
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TextIO

import jobctl
from examples.app.models import Comment, Entity, User, Webhook

COMMENTS = ("Busy today.", "Lovely in the morning.", "The bins need emptying.", "New paint looks great.",
            "Too loud at night.", "Best spot in town.", "Closed again?", "Friendly staff.")
"""What the simulated users say."""
UNKNOWN_EXPORT_TYPE = "invoices"
"""An export type the app does not have: `ExportDataJob` raises ValueError and fails for good."""
DONE_STATES = frozenset({"finished", "failed", "discarded"})


@dataclass(frozen=True)
class Pace:
    """How often the simulated users act, in seconds."""

    comment: float = 3.0
    """A comment: its notifications job and a webhook job."""
    rating: float = 4.0
    """A rating: a metrics job."""
    bad_export: float = 60.0
    """An export of an unknown type: a job that fails for good (the first one at once)."""
    export_check: float = 1.0
    """How often the running export is looked at, to ask for the next one when it is done."""
    exports_kept: int = 3
    """How many of the demo's own exports are kept; older ones are deleted with their files."""


PACE = Pace()
"""The demo's pace: under two jobs a second in all."""


class Traffic:
    """A daemon thread acting as the app's users: `start()`, then `stop()` (also safe before start)."""

    def __init__(self, people: Sequence[User], entities: Sequence[Entity], webhook: Webhook, exporter: User, *,
                 running_export: int | None = None, pace: Pace = PACE, log: TextIO = sys.stderr,
                 seed: int | None = None) -> None:
        self.people, self.entities, self.webhook, self.exporter = list(people), list(entities), webhook, exporter
        self.pace = pace
        self.log = log
        self.counts: Counter[str] = Counter()
        """What it did, by action: comments, ratings, exports, bad exports, errors."""
        self._export_job = running_export  # the export to wait for before asking for the next one
        self._my_exports: list[int] = []  # job ids of the exports it asked for, oldest first
        self._random = random.Random(seed)
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="demo-traffic", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def request_stop(self) -> None:
        """Ask the thread to stop after the action under way; returns at once."""
        self._stopping.set()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop after the action under way (an enqueue takes milliseconds) and wait for the thread."""
        self._stopping.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    # -- what the users do ----------------------------------------------------------------------

    def comment(self) -> None:
        """Someone comments on an entity: its notifications job, then the event to the app's webhook."""
        entity, author = self._random.choice(self.entities), self._random.choice(self.people)
        comment = Comment.post(entity, author, self._random.choice(COMMENTS))
        self.webhook.dispatch_later({"type": "comment.created", "comment_id": comment.id,
                                     "entity_id": comment.entity_id, "body": comment.body})
        self.counts["comments"] += 1

    def rate(self) -> None:
        """Someone rates an entity, and its metrics are recalculated in the background."""
        entity, user = self._random.choice(self.entities), self._random.choice(self.people)
        rating = self._random.randint(1, 5)
        entity.add_submission(user, rating, f"{user.name} rates {entity.name} {rating}/5")
        entity.calculate_metrics_later()
        self.counts["ratings"] += 1

    def keep_exporting(self) -> None:
        """Ask for the next export once the last one is done; delete the demo's exports beyond the last few."""
        if self._export_job is not None:
            try:
                if jobctl.get_job(self._export_job).state not in DONE_STATES:
                    return
            except jobctl.JobNotFound:
                pass  # cleared meanwhile (`jobctl clear`): done too
        self._export_job = self.exporter.export_data_later("entities").id
        self._my_exports.append(self._export_job)
        self.counts["exports"] += 1
        old = set(self._my_exports[:-self.pace.exports_kept])
        if old:
            self._my_exports = self._my_exports[-self.pace.exports_kept:]
            for export in self.exporter.exports():
                if export.job_id in old:
                    export.destroy()

    def ask_for_an_unknown_export(self) -> None:
        """Someone asks for an export type the app does not have: the job fails for good."""
        self._random.choice(self.people).export_data_later(UNKNOWN_EXPORT_TYPE)
        self.counts["bad exports"] += 1

    # -- the loop -------------------------------------------------------------------------------

    def _run(self) -> None:
        actions: list[tuple[str, float, Callable[[], None]]] = [
            ("bad export", self.pace.bad_export, self.ask_for_an_unknown_export),
            ("export", self.pace.export_check, self.keep_exporting),
            ("comment", self.pace.comment, self.comment),
            ("rating", self.pace.rating, self.rate),
        ]
        due = dict.fromkeys((name for name, _, _ in actions), time.monotonic())
        while not self._stopping.is_set():
            for name, every, act in actions:
                if self._stopping.is_set():
                    return
                if time.monotonic() >= due[name]:
                    due[name] = time.monotonic() + every
                    self._attempt(name, act)
            self._stopping.wait(max(min(due.values()) - time.monotonic(), 0.0))

    def _attempt(self, name: str, act: Callable[[], None]) -> None:
        try:
            act()
        except Exception as exc:  # the database restarting, a lock timeout: say so, and carry on
            self.counts["errors"] += 1
            self.log.write(f"{time.strftime('%H:%M:%S')} demo traffic: {name} failed: "
                           f"{type(exc).__name__}: {exc}\n")
            self.log.flush()
