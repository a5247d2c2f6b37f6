"""The monitor: a screen that renders snapshots, refreshed by a timer it owns, read by a worker thread.

One fetch at a time: a tick that comes while a fetch is in flight is skipped (and counted), so a slow
database never stacks reads up; the UI thread never touches the database. Actions (retry, discard,
pause, run now) are confirmed in a dialog that states the count, then run in a worker too.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from rich.text import Text
from textual import on, work
from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType
from textual.message import Message
from textual.screen import Screen
from textual.timer import Timer
from textual.widgets import DataTable, Footer, Input, Static, TabbedContent, TabPane

from jobctl.admin import WriteResult
from jobctl.tui.filtering import Filter
from jobctl.tui.panels import PANELS, Panel, selected_key, sync_table
from jobctl.tui.screens import ConfirmScreen, HelpScreen, JobScreen, one_line
from jobctl.tui.source import FailureRow, QueueRow, Snapshot, Source, TaskRow
from jobctl.tui.widgets import Banner, Rates, banner_text, counts_text, header_text

Clock = Callable[[], float]


@dataclass(frozen=True)
class Key:
    """One key of the monitor: its binding, and how help and the footer show it."""

    binding: str
    """Textual key name(s), comma-separated."""
    action: str
    """The screen action it runs."""
    shown: str
    """The key as help shows it."""
    help: str
    """Its help line."""
    footer: str = ""
    """Its footer label (empty: not in the footer)."""


VIEW_KEYS = (
    *(Key(p.key, f"panel('{p.id}')", p.key, f"{p.title} panel") for p in PANELS),
    Key("slash", "filter", "/", "filter the tables: queue:NAME class:NAME error:TEXT or free text "
        "(enter keeps it, escape reverts)", "filter"),
    Key("space", "freeze", "space", "freeze or resume refreshing", "freeze"),
    Key("question_mark", "help", "?", "this help (escape closes it and any dialog)", "help"),
    Key("q", "quit", "q", "quit", "quit"),
)
"""Keys of the read-only monitor."""

ACTION_KEYS = (
    Key("r", "retry", "r", "retry the selected failure (Failures)", "retry"),
    Key("d", "discard", "d", "discard the selected failure (Failures)", "discard"),
    Key("R,shift+r", "retry_matching", "R", "retry every failure matching the filter (Failures)", "retry all"),
    Key("D,shift+d", "discard_matching", "D", "discard every failure matching the filter (Failures)", "discard all"),
    Key("p", "toggle_pause", "p", "pause or resume the selected queue (Queues)", "pause/resume"),
    Key("n", "run_now", "n", "run the selected recurring task now (Recurring)", "run now"),
)
"""Keys that change the database; `--read-only` has none of them."""

MOVE_HELP = (
    ("↑ ↓ PgUp PgDn", "move in the table (home, end: first, last row)"),
    ("enter", "open the job under the cursor: arguments, attempts, tracebacks (Claimed, Failures)"),
    ("escape", "close help, a dialog or a job; leave the filter"),
)

ACTION_PANEL = {"retry": "failures", "discard": "failures", "retry_matching": "failures",
                "discard_matching": "failures", "toggle_pause": "queues", "run_now": "recurring"}
"""The panel each action works on: its key is active (and in the footer) only there."""


def bindings(keys: Sequence[Key]) -> list[BindingType]:
    """Textual bindings for keys."""
    return [Binding(k.binding, k.action, k.footer, show=bool(k.footer), key_display=k.shown) for k in keys]


def help_lines(keys: Sequence[Key]) -> list[tuple[str, str]]:
    """Help lines: the keys bound, then moving around."""
    return [(k.shown, k.help) for k in keys] + list(MOVE_HELP)


class SnapshotFetched(Message):
    """A fetch finished with a snapshot."""

    def __init__(self, snapshot: Snapshot) -> None:
        super().__init__()
        self.snapshot = snapshot


class FetchFailed(Message):
    """A fetch failed: the database is unreachable (or worse); the last snapshot stays on screen."""

    def __init__(self, error: str) -> None:
        super().__init__()
        self.error = error


class ActionDone(Message):
    """An action finished: what to tell the operator."""

    def __init__(self, text: str, *, error: bool = False) -> None:
        super().__init__()
        self.text = text
        self.error = error


class FailuresMatched(Message):
    """Every failure matching a filter, looked up for `R` / `D`."""

    def __init__(self, verb: str, flt: Filter, ids: list[int]) -> None:
        super().__init__()
        self.verb = verb
        self.filter = flt
        self.ids = ids


class MonitorScreen(Screen[None]):
    """The read-only monitor: header, counts, throughput, five panels."""

    BINDINGS: ClassVar[list[BindingType]] = [*bindings(VIEW_KEYS), Binding("escape", "escape", show=False)]
    KEYS: ClassVar[tuple[Key, ...]] = VIEW_KEYS
    """Every key bound on this screen (help lists exactly these)."""
    read_only = True

    def __init__(self, source: Source, *, interval: float = 1.0, clock: Clock = time.monotonic) -> None:
        super().__init__()
        self.source = source
        self.interval = interval
        self.clock = clock
        self.snapshot: Snapshot | None = None
        """The last good snapshot (kept while disconnected)."""
        self.refreshed_at: float | None = None
        """clock() when `snapshot` arrived."""
        self.error: str | None = None
        """Why the last fetch failed; None while connected."""
        self.frozen = False
        self.filter = Filter()
        self.fetching = False
        """A fetch is in flight: ticks are skipped until it lands."""
        self.fetches = 0
        """Fetches started."""
        self.skipped = 0
        """Ticks skipped because a fetch was in flight."""
        self.last_message: str | None = None
        """The last action's outcome, as notified."""
        self._refetch = False
        self._filter_before = ""
        self._timer: Timer | None = None

    # -- layout ---------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        yield Static(id="header")
        yield Banner(id="banner")
        yield Static(id="counts")
        yield Rates(id="rates")
        with TabbedContent(initial=PANELS[0].id, id="panels"):
            for panel in PANELS:
                with TabPane(f"{panel.key} {panel.title}", id=panel.id):
                    yield Static(classes="caption", id=f"{panel.id}-caption")
                    yield DataTable(id=f"{panel.id}-table", cursor_type="row", zebra_stripes=True)
        yield Input(placeholder="queue:NAME class:NAME error:TEXT or free text — enter keeps, escape reverts",
                    id="filter")
        yield Footer(show_command_palette=False)

    def on_mount(self) -> None:
        for panel in PANELS:
            table = self.table(panel.id)
            for column in panel.columns:
                table.add_column(Text(column.label, justify="right") if column.numeric else column.label,
                                 key=column.key)
        self.query_one("#banner", Banner).display = False
        self.query_one("#filter", Input).display = False
        self.table(PANELS[0].id).focus()
        self.render_header()
        self._timer = self.set_interval(self.interval, self.tick)
        self.set_interval(1.0, self.render_header)
        self.refresh_now()

    def table(self, panel_id: str) -> DataTable[Any]:
        """A panel's table."""
        return self.query_one(f"#{panel_id}-table", DataTable)

    @property
    def active_panel(self) -> str:
        """The id of the panel on show."""
        return self.query_one("#panels", TabbedContent).active

    # -- fetching -------------------------------------------------------------------------

    def tick(self) -> None:
        """The refresh timer: fetch, unless frozen or a fetch is still in flight."""
        if not self.frozen:
            self.refresh_now()

    def refresh_now(self) -> bool:
        """Start a fetch; False (and counted in `skipped`) when one is in flight already."""
        if self.fetching:
            self.skipped += 1
            return False
        self.fetching = True
        self.fetches += 1
        self.fetch(self.snapshot)
        return True

    @work(thread=True, exclusive=True, group="fetch")
    def fetch(self, previous: Snapshot | None) -> None:
        """Read a snapshot on a worker thread and post it back; never raises."""
        try:
            snapshot = self.source.fetch(previous)
        except Exception as exc:
            self.post_message(FetchFailed(one_line(exc)))
        else:
            self.post_message(SnapshotFetched(snapshot))

    def on_snapshot_fetched(self, message: SnapshotFetched) -> None:
        self.fetching = False
        self.snapshot = message.snapshot
        self.refreshed_at = self.clock()
        self.error = None
        self.show()
        self._fetch_again()

    def on_fetch_failed(self, message: FetchFailed) -> None:
        self.fetching = False
        self.error = message.error
        self.render_header()
        self._fetch_again()

    def _fetch_again(self) -> None:
        """An action finished while a fetch was in flight: that fetch may predate it, read again."""
        if self._refetch:
            self._refetch = False
            self.refresh_now()

    # -- rendering ------------------------------------------------------------------------

    def render_header(self) -> None:
        """Header and banner (also every second, so the ages move while frozen or disconnected)."""
        age = None if self.refreshed_at is None else self.clock() - self.refreshed_at
        self.query_one("#header", Static).update(header_text(
            self.source.label, self.interval, age, frozen=self.frozen, disconnected=self.error is not None,
            filter_text=self.filter.text, read_only=self.read_only))
        banner = self.query_one("#banner", Banner)
        banner.display = self.error is not None
        if self.error is not None:
            banner.update(banner_text(self.error, age, self.interval))

    def show(self) -> None:
        """Render the current snapshot through the current filter."""
        self.render_header()
        snap = self.snapshot
        if snap is None:
            return
        self.query_one("#counts", Static).update(counts_text(snap.counts))
        self.query_one("#rates", Rates).show(snap.rates, snap.at)
        for panel in PANELS:
            rows = panel.rows(snap, self.filter)
            sync_table(self.table(panel.id), rows)
            self.query_one(f"#{panel.id}-caption", Static).update(caption(panel, snap, len(rows), self.filter))

    # -- view keys ------------------------------------------------------------------------

    def action_panel(self, panel_id: str) -> None:
        self.query_one("#panels", TabbedContent).active = panel_id
        self.table(panel_id).focus()

    @on(TabbedContent.TabActivated)
    def _tab_changed(self, event: TabbedContent.TabActivated) -> None:
        if event.pane.id:
            self.table(event.pane.id).focus()
        self.refresh_bindings()

    def action_freeze(self) -> None:
        self.frozen = not self.frozen
        self.render_header()

    def action_help(self) -> None:
        self.app.push_screen(HelpScreen(help_lines(self.KEYS)))

    def action_quit(self) -> None:
        self.app.exit()

    def action_filter(self) -> None:
        box = self.query_one("#filter", Input)
        self._filter_before = self.filter.text
        box.value = self.filter.text
        box.display = True
        box.focus()

    @on(Input.Changed, "#filter")
    def _filter_changed(self, event: Input.Changed) -> None:
        if event.input.display:
            self.apply_filter(event.value)

    @on(Input.Submitted, "#filter")
    def _filter_submitted(self, event: Input.Submitted) -> None:
        self.apply_filter(event.value)
        self._close_filter()

    def action_escape(self) -> None:
        box = self.query_one("#filter", Input)
        if box.display:
            self.apply_filter(self._filter_before)
            self._close_filter()

    def _close_filter(self) -> None:
        self.query_one("#filter", Input).display = False
        self.table(self.active_panel).focus()

    def apply_filter(self, text: str) -> None:
        """Narrow every table (no database read: the snapshot on screen is filtered)."""
        self.filter = Filter.parse(text)
        self.show()

    @on(DataTable.RowSelected)
    def _open_job(self, event: DataTable.RowSelected) -> None:
        panel = next(p for p in PANELS if event.data_table.id == f"{p.id}-table")
        if panel.jobs and event.row_key.value is not None:
            self.app.push_screen(JobScreen(self.source, int(event.row_key.value)))


def caption(panel: Panel, snap: Snapshot, shown: int, flt: Filter) -> str:
    """`3 queues`, `12 of 40 failures match the filter`, `200 of 1,500 failures (the most recent)`."""
    total = panel.total(snap)
    noun = panel.nouns[0] if total == 1 else panel.nouns[1]
    if flt:
        return f"{shown:,} of {total:,} {noun} match the filter"
    if shown < total:
        most = " (the most recent)" if panel.id == "failures" else " (the oldest claims)" if panel.id == "claimed" \
            else ""
        return f"{shown:,} of {total:,} {noun}{most}"
    return f"{total:,} {noun}"


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

    def selected_failure(self) -> FailureRow | None:
        """The failure under the Failures cursor."""
        key = self._selected("failures")
        return next((f for f in self.snapshot.failures if str(f.id) == key), None) if self.snapshot else None

    def selected_queue(self) -> QueueRow | None:
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
        question = (f"{verb.capitalize()} 1 failed job?\n\n#{row.id} {row.class_path} on {row.queue}\n"
                    f"{row.error}")
        self.confirm(question, f"{verb.capitalize()} 1 job", lambda: self.write(verb, [row.id]))

    def action_retry_matching(self) -> None:
        self.match_failures("retry", self.filter)

    def action_discard_matching(self) -> None:
        self.match_failures("discard", self.filter)

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
        scope = f"matching “{message.filter.text}”" if message.filter else "(no filter: every failure)"
        noun = "job" if len(ids) == 1 else "jobs"
        self.confirm(f"{verb.capitalize()} {len(ids):,} failed {noun} {scope}?",
                     f"{verb.capitalize()} {len(ids):,} {noun}", lambda: self.write(verb, ids))

    def action_toggle_pause(self) -> None:
        q = self.selected_queue()
        if q is None:
            self.notify("no queue selected", severity="warning")
            return
        if q.paused:
            question = f"Resume queue {q.name}?\n\nWorkers claim its {q.ready:,} ready jobs again."
            self.confirm(question, "Resume", lambda: self.act(
                lambda s: f"resumed {q.name}" if s.resume(q.name) else f"{q.name} was not paused"))
        else:
            question = (f"Pause queue {q.name}?\n\nIts {q.ready:,} ready jobs wait until it is resumed; "
                        f"its {q.claimed:,} claimed jobs finish.")
            self.confirm(question, "Pause", lambda: self.act(
                lambda s: f"paused {q.name}" if s.pause(q.name) else f"{q.name} was already paused"))

    def action_run_now(self) -> None:
        t = self.selected_task()
        if t is None:
            self.notify("no recurring task selected", severity="warning")
            return
        question = f"Run recurring task {t.key} now?\n\nThis enqueues 1 job ({t.runs}) on {t.queue or 'its queue'}."
        self.confirm(question, "Enqueue 1 job", lambda: self.act(
            lambda s: f"{t.key}: enqueued job {s.run_recurring_now(t.key)}"))

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
                text += f" ({next(iter(result.skipped.values()))}" + \
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
        """Tell the operator (a notification; also kept in `last_message`)."""
        self.last_message = text
        self.notify(text, severity="error" if error else "information")


class TopApp(App[None]):
    """`jobctl top`."""

    CSS_PATH = "jobctl.tcss"
    TITLE = "jobctl top"
    ENABLE_COMMAND_PALETTE = False

    def __init__(self, source: Source, *, interval: float = 1.0, read_only: bool = False,
                 clock: Clock = time.monotonic) -> None:
        super().__init__()
        self.source = source
        self.interval = interval
        self.read_only = read_only
        self.clock = clock

    def get_default_screen(self) -> Screen[Any]:
        kind = MonitorScreen if self.read_only else ActionMonitorScreen
        return kind(self.source, interval=self.interval, clock=self.clock)

    @property
    def monitor(self) -> MonitorScreen:
        """The monitor screen (the bottom of the stack)."""
        screen = self.screen_stack[0]
        assert isinstance(screen, MonitorScreen)
        return screen
