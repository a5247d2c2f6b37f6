"""The monitor with actions (retry, discard, pause, run now): each confirmed in a dialog that states the
count, then run against the source on a worker thread."""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar

from textual import work
from textual.binding import BindingType

from jobctl.formatting import printable
from jobctl.records import FailureSummary, QueueStats, WriteResult
from jobctl.tui.filtering import Filter
from jobctl.tui.keys import ACTION_KEYS, ACTION_PANEL, VIEW_KEYS, Key, bindings
from jobctl.tui.monitor import ActionDone, FailuresMatched, MonitorScreen
from jobctl.tui.panels import clip, selected_key
from jobctl.tui.screens import ConfirmScreen, one_line
from jobctl.tui.snapshot import TaskRow
from jobctl.tui.source import Source

QUESTION_WIDTH = 200
"""Characters of an error shown in a confirmation dialog."""


class ActionMonitorScreen(MonitorScreen):
    """The monitor with actions: each confirmed in a dialog that states what will change."""

    BINDINGS: ClassVar[list[BindingType]] = bindings(ACTION_KEYS)
    KEYS: ClassVar[tuple[Key, ...]] = (*VIEW_KEYS, *ACTION_KEYS)
    read_only = False

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        needs = ACTION_PANEL.get(action)
        return needs is None or self.active_panel == needs

    # -- what is selected -----------------------------------------------------------------

    def _selected(self, panel_id: str) -> str | None:
        return selected_key(self.table(panel_id)) if self.snapshot is not None else None

    def selected_failure(self) -> FailureSummary | None:
        """The failure under the Failures cursor."""
        key = self._selected("failures")
        return next((f for f in self.snapshot.failures if str(f.id) == key), None) if self.snapshot else None

    def selected_queue(self) -> QueueStats | None:
        """The queue under the Queues cursor."""
        key = self._selected("queues")
        return next((q for q in self.snapshot.queues if q.name == key), None) if self.snapshot else None

    def selected_task(self) -> TaskRow | None:
        """The recurring task under the Recurring cursor."""
        key = self._selected("recurring")
        return next((t for t in self.snapshot.recurring if t.key == key), None) if self.snapshot else None

    # -- actions --------------------------------------------------------------------------

    def action_retry(self) -> None:
        self._one_failure("retry")

    def action_discard(self) -> None:
        self._one_failure("discard")

    def _one_failure(self, verb: str) -> None:
        row = self.selected_failure()
        if row is None:
            self.notify("no failure selected", severity="warning")
            return
        question = (f"{verb.capitalize()} 1 failed job?\n\n#{row.id} {printable(row.class_path)} on "
                    f"{printable(row.queue)}\n{clip(row.error, QUESTION_WIDTH)}")
        self.confirm(question, f"{verb.capitalize()} 1 job", lambda: self.write(verb, [row.id]))

    def action_retry_matching(self) -> None:
        self.match_failures("retry", self.filters["failures"])

    def action_discard_matching(self) -> None:
        self.match_failures("discard", self.filters["failures"])

    @work(thread=True, group="action")
    def match_failures(self, verb: str, flt: Filter) -> None:
        """Every failure matching the filter, from the database (not only the ones on screen)."""
        try:
            self.post_message(FailuresMatched(verb, flt, self.source.failure_ids(flt)))
        except Exception as exc:
            self.post_message(ActionDone(f"{verb}: {one_line(exc)}", error=True))

    def on_failures_matched(self, message: FailuresMatched) -> None:
        verb, ids = message.verb, message.ids
        if not ids:
            self.report(f"{verb}: no failures match" + (f" “{message.filter.text}”" if message.filter else ""))
            return
        scope = f"matching “{printable(message.filter.text)}”" if message.filter else "(no filter: every failure)"
        noun = "job" if len(ids) == 1 else "jobs"
        self.confirm(f"{verb.capitalize()} {len(ids):,} failed {noun} {scope}?",
                     f"{verb.capitalize()} {len(ids):,} {noun}", lambda: self.write(verb, ids))

    def action_toggle_pause(self) -> None:
        q = self.selected_queue()
        if q is None:
            self.notify("no queue selected", severity="warning")
            return
        name = printable(q.name)
        if q.paused:
            question = f"Resume queue {name}?\n\nWorkers claim its {q.ready:,} ready jobs again."
            self.confirm(question, "Resume", lambda: self.act(
                lambda s: f"resumed {name}" if s.resume(q.name) else f"{name} was not paused"))
        else:
            question = (f"Pause queue {name}?\n\nIts {q.ready:,} ready jobs wait until it is resumed; "
                        f"its {q.claimed:,} claimed jobs finish.")
            self.confirm(question, "Pause", lambda: self.act(
                lambda s: f"paused {name}" if s.pause(q.name) else f"{name} was already paused"))

    def action_run_now(self) -> None:
        t = self.selected_task()
        if t is None:
            self.notify("no recurring task selected", severity="warning")
            return
        key = printable(t.key)
        question = (f"Run recurring task {key} now?\n\nThis enqueues 1 job ({printable(t.runs)}) on "
                    f"{printable(t.queue) if t.queue else 'its queue'}.")
        self.confirm(question, "Enqueue 1 job", lambda: self.act(
            lambda s: f"{key}: enqueued job {s.run_recurring_now(t.key)}"))

    # -- confirm, then write off the UI thread --------------------------------------------

    def confirm(self, question: str, label: str, then: Callable[[], object]) -> None:
        """Ask; run `then` only on yes."""

        def answered(yes: bool | None) -> None:
            if yes:
                then()
            else:
                self.report("cancelled: nothing changed")

        self.app.push_screen(ConfirmScreen(question, label), answered)

    def write(self, verb: str, ids: list[int]) -> None:
        """Retry or discard jobs and say what changed."""

        def do(s: Source) -> str:
            result: WriteResult = s.retry(ids) if verb == "retry" else s.discard(ids)
            text = f"{verb}: {result.changed:,} of {result.matched:,} jobs changed"
            if result.skipped:
                text += f" ({printable(next(iter(result.skipped.values())))}" + \
                        (f" and {len(result.skipped) - 1} more)" if len(result.skipped) > 1 else ")")
            return text

        self.act(do)

    @work(thread=True, group="action")
    def act(self, do: Callable[[Source], str]) -> None:
        """Run one change against the source on a worker thread."""
        try:
            self.post_message(ActionDone(do(self.source)))
        except Exception as exc:
            self.post_message(ActionDone(f"failed: {one_line(exc)}", error=True))

    def on_action_done(self, message: ActionDone) -> None:
        self.report(message.text, error=message.error)
        # Show the change at once, frozen or not.
        if not self.refresh_now():
            self._refetch = True

    def report(self, text: str, *, error: bool = False) -> None:
        """Tell the operator (a notification, never read as markup; also kept in `last_message`)."""
        text = printable(text)
        self.last_message = text
        self.notify(text, severity="error" if error else "information", markup=False)
