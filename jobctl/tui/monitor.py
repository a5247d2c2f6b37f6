"""The monitor screen: renders snapshots, refreshed by a timer it owns, read by a worker thread.

One fetch at a time: a tick that comes while a fetch is in flight is skipped (and counted), so a slow
database never stacks reads up; the UI thread never touches the database.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, ClassVar

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.message import Message
from textual.screen import Screen
from textual.timer import Timer
from textual.widgets import DataTable, Footer, Input, Static, TabbedContent, TabPane

from jobctl.tui.filtering import Filter
from jobctl.tui.keys import VIEW_KEYS, Key, bindings, help_lines
from jobctl.tui.panels import PANELS, Panel, sync_table
from jobctl.tui.screens import HelpScreen, JobScreen, one_line
from jobctl.tui.snapshot import Snapshot
from jobctl.tui.source import Source
from jobctl.tui.widgets import Banner, Rates, banner_text, counts_text, header_text

Clock = Callable[[], float]


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
        self.filters: dict[str, Filter] = {panel.id: Filter() for panel in PANELS}
        """Each panel's own filter (`R` / `D` act on the Failures panel's)."""
        self.fetching = False
        """A fetch is in flight: ticks are skipped until it lands."""
        self.fetches = 0
        """Fetches started."""
        self.skipped = 0
        """Ticks skipped because a fetch was in flight."""
        self.last_message: str | None = None
        """The last action's outcome, as notified."""
        self._refetch = False
        self._editing: str | None = None
        """The panel whose filter the open filter box edits."""
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
        yield Input(placeholder="queue:NAME class:NAME error:TEXT or free text — enter keeps, escape clears",
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

    @property
    def filter(self) -> Filter:
        """The filter of the panel on show."""
        return self.filters[self.active_panel]

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
        panel = next(p for p in PANELS if p.id == self.active_panel)
        self.query_one("#header", Static).update(header_text(
            self.source.label, self.interval, age, frozen=self.frozen, disconnected=self.error is not None,
            filter_text=self.filters[panel.id].text, filter_panel=panel.title, read_only=self.read_only))
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
            flt = self.filters[panel.id]
            rows = panel.rows(snap, flt)
            sync_table(self.table(panel.id), rows)
            self.query_one(f"#{panel.id}-caption", Static).update(caption(panel, snap, len(rows), flt))

    # -- view keys ------------------------------------------------------------------------

    def action_panel(self, panel_id: str) -> None:
        self.query_one("#panels", TabbedContent).active = panel_id
        self.table(panel_id).focus()

    @on(TabbedContent.TabActivated)
    def _tab_changed(self, event: TabbedContent.TabActivated) -> None:
        if self._editing is not None and self._editing != event.pane.id:
            self._close_filter()  # the box edits one panel's filter: keep what was typed there, and close
        if event.pane.id:
            self.table(event.pane.id).focus()
        self.render_header()  # the header names the filter of the panel on show
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
        self._editing = self.active_panel
        box.value = self.filter.text
        box.display = True
        box.focus()

    @on(Input.Changed, "#filter")
    def _filter_changed(self, event: Input.Changed) -> None:
        if event.input.display and self._editing is not None:
            self.apply_filter(event.value, self._editing)

    @on(Input.Submitted, "#filter")
    def _filter_submitted(self, event: Input.Submitted) -> None:
        if self._editing is not None:
            self.apply_filter(event.value, self._editing)
        self._close_filter()

    def action_escape(self) -> None:
        """Escape clears the filter of the panel on show, while editing it or after."""
        panel = self._editing or self.active_panel
        if self._editing is not None:
            self._close_filter()
        if self.filters[panel].text:
            self.apply_filter("", panel)

    def _close_filter(self) -> None:
        self._editing = None
        self.query_one("#filter", Input).display = False
        self.table(self.active_panel).focus()

    def apply_filter(self, text: str, panel_id: str | None = None) -> None:
        """Narrow one panel's table, the one on show by default (no database read: the snapshot on
        screen is filtered)."""
        self.filters[panel_id or self.active_panel] = Filter.parse(text)
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
