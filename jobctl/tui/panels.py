"""The six panels: their columns, the rows a snapshot gives them (pure), and keeping a DataTable in
step with those rows in place.

Every cell is a `Text` (a DataTable reads a `str` cell as markup): what comes from the database is
shown as it is, control characters made visible by `formatting.printable`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from rich.console import JustifyMethod
from rich.text import Text
from textual.widgets import DataTable

from jobctl.formatting import ago, duration, printable, progress_bar
from jobctl.tui.filtering import Filter
from jobctl.tui.snapshot import Snapshot, failure_matches

Cell = Text
Row = tuple[str, tuple[Cell, ...]]
"""(row key, cells); the first cell is always the key's text, made printable (rows are ordered by it)."""

ERROR_WIDTH = 60
"""Characters of an error shown in the Failures panel (the detail screen has all of it)."""


@dataclass(frozen=True)
class Column:
    """One column of a panel's table."""

    key: str
    """Column key."""
    label: str
    """Header text."""
    numeric: bool = False
    """Right-aligned."""


@dataclass(frozen=True)
class Panel:
    """One tab of the monitor."""

    id: str
    """Pane id (`queues`, `claimed`, …); its table is `#<id>-table`."""
    key: str
    """The digit that opens it."""
    title: str
    """Tab title."""
    columns: tuple[Column, ...]
    """Its table's columns."""
    rows: Callable[[Snapshot, Filter], list[Row]]
    """The rows a snapshot gives it, after the filter."""
    total: Callable[[Snapshot], int]
    """How many items exist (may exceed what the snapshot holds)."""
    nouns: tuple[str, str]
    """What one row is, singular and plural."""
    jobs: bool = False
    """Rows are jobs: `enter` opens the job."""


def txt(value: str | None, *, style: str = "", justify: JustifyMethod | None = None) -> Text:
    """A cell showing a value from the database as plain text (`-` for None)."""
    return Text("-" if value is None else printable(value), style=style, justify=justify)


def num(value: int | float | None, *, style: str = "") -> Text:
    """A right-aligned number with thousands separators."""
    text = "-" if value is None else f"{value:,}" if isinstance(value, int) else f"{value:,.1f}"
    return Text(text, style=style if value else "", justify="right")


def short_class(path: str) -> str:
    """`module:QualName` → `QualName` (the detail screen shows the full path)."""
    return path.rpartition(":")[2] or path.rpartition(".")[2] or path


def clip(text: str, width: int) -> str:
    """One printable line of at most `width` characters (runs of whitespace read as one space)."""
    # Only the start can show: a 10 MB message costs no more than a short one.
    start = text[: 8 * width]
    line = printable(" ".join(start.split()))
    return line if len(line) <= width and len(start) == len(text) else line[: width - 1] + "…"


def since(value: dt.datetime | None, now: dt.datetime) -> str:
    """How long ago, relative to the snapshot's clock."""
    return ago(value, now)


def size(value: int | None) -> Text:
    """Bytes as `12.3M`."""
    if value is None:
        return Text("-", justify="right")
    amount = float(value)
    for unit in ("B", "K", "M", "G"):
        if amount < 1024 or unit == "G":
            return Text(f"{amount:.0f}{unit}" if unit == "B" else f"{amount:.1f}{unit}", justify="right")
        amount /= 1024
    raise AssertionError("unreachable")


def progress(done: float | None, total: float | None, message: str | None) -> Text:
    """`40/100 40% message`."""
    if done is None:
        return Text("-")
    text = f"{done:g}"
    if total:
        text += f"/{total:g} {100 * done / total:.0f}%"
    return Text(f"{text} {clip(message, 30)}" if message else text)


def queue_rows(snap: Snapshot, flt: Filter) -> list[Row]:
    rows: list[Row] = []
    for q in snap.queues:
        cells: tuple[Cell, ...] = (
            txt(q.name), num(q.ready), num(q.scheduled), num(q.claimed), num(q.blocked), num(q.failed, style="red"),
            Text("-" if q.latency_s is None else duration(q.latency_s), justify="right"),
            Text("paused", style="bold yellow") if q.paused else Text(""))
        if flt.matches({"queue": q.name}, ()):
            rows.append((q.name, cells))
    return rows


def claimed_rows(snap: Snapshot, flt: Filter) -> list[Row]:
    rows: list[Row] = []
    for c in snap.claimed:
        running = "-" if c.claimed_at is None else duration(max((snap.at - c.claimed_at).total_seconds(), 0.0))
        cells: tuple[Cell, ...] = (
            Text(str(c.id), justify="right"), txt(short_class(c.class_path)), txt(c.queue), txt(c.process),
            Text(running, justify="right"), progress(c.progress_done, c.progress_total, c.progress_message))
        if flt.matches({"queue": c.queue, "class": c.class_path}, tuple(map(str, cells))):
            rows.append((str(c.id), cells))
    return rows


def failure_rows(snap: Snapshot, flt: Filter) -> list[Row]:
    return [(str(f.id), (Text(str(f.id), justify="right"), txt(short_class(f.class_path)), txt(f.queue),
                         Text(clip(f.error, ERROR_WIDTH), style="red"), num(f.attempts),
                         Text(since(f.failed_at, snap.at))))
            for f in snap.failures if failure_matches(flt, f)]


def recurring_rows(snap: Snapshot, flt: Filter) -> list[Row]:
    rows: list[Row] = []
    for t in snap.recurring:
        cells: tuple[Cell, ...] = (txt(t.key), txt(t.schedule), txt(short_class(t.runs)), txt(t.queue or None),
                                   Text(since(t.last_run_at, snap.at)), Text(since(t.next_run_at, snap.at)))
        if flt.matches({"queue": t.queue, "class": t.runs}, tuple(map(str, cells))):
            rows.append((t.key, cells))
    return rows


def process_rows(snap: Snapshot, flt: Filter) -> list[Row]:
    rows: list[Row] = []
    for p in snap.processes:
        busy = f"{p.busy}/{p.threads}" if p.threads else str(p.busy or "-")
        cells: tuple[Cell, ...] = (
            Text(str(p.id), justify="right"), txt(p.kind), txt(p.hostname), Text(str(p.pid), justify="right"),
            txt(p.queues or None), Text(busy, justify="right"), txt(p.wakeup),
            Text(since(p.last_heartbeat_at, snap.at)),
            size(p.rss_bytes),
            Text("-" if p.cpu_percent is None else f"{p.cpu_percent:.0f}%", justify="right"))
        if flt.matches({"queue": p.queues}, tuple(map(str, cells))):
            rows.append((str(p.id), cells))
    return rows


BATCH_STYLES = {"open": "yellow", "running": "", "finished": "green", "failed": "red"}


def batch_rows(snap: Snapshot, flt: Filter) -> list[Row]:
    rows: list[Row] = []
    for b in snap.batches:
        ended = b.finished + b.failed
        cells: tuple[Cell, ...] = (
            Text(str(b.id), justify="right"), txt(b.state, style=BATCH_STYLES.get(b.state, "")),
            Text(progress_bar(ended, b.total), style="red" if b.failed else ""), num(b.total), num(b.finished),
            num(b.failed, style="red"), txt(b.description), Text(since(b.created_at, snap.at)),
            Text(since(b.finished_at, snap.at)))
        if flt.matches({}, tuple(map(str, cells))):
            rows.append((str(b.id), cells))
    return rows


PANELS = (
    Panel("queues", "1", "Queues", (
        Column("queue", "queue"), Column("ready", "ready", True), Column("scheduled", "scheduled", True),
        Column("claimed", "claimed", True), Column("blocked", "blocked", True), Column("failed", "failed", True),
        Column("latency", "latency", True), Column("paused", "paused")),
        queue_rows, lambda s: len(s.queues), ("queue", "queues")),
    Panel("claimed", "2", "Claimed", (
        Column("job", "job", True), Column("class", "class"), Column("queue", "queue"), Column("process", "process"),
        Column("running", "running for", True), Column("progress", "progress")),
        claimed_rows, lambda s: s.counts.claimed, ("claimed job", "claimed jobs"), jobs=True),
    Panel("failures", "3", "Failures", (
        Column("job", "job", True), Column("class", "class"), Column("queue", "queue"), Column("error", "error"),
        Column("attempts", "attempts", True), Column("when", "when")),
        failure_rows, lambda s: s.counts.failed, ("failure", "failures"), jobs=True),
    Panel("recurring", "4", "Recurring", (
        Column("key", "key"), Column("schedule", "schedule"), Column("runs", "runs"), Column("queue", "queue"),
        Column("last", "last run"), Column("next", "next run")),
        recurring_rows, lambda s: len(s.recurring), ("recurring task", "recurring tasks")),
    Panel("processes", "5", "Processes", (
        Column("id", "id", True), Column("kind", "kind"), Column("host", "host"), Column("pid", "pid", True),
        Column("queues", "queues"), Column("busy", "busy", True), Column("wakeup", "wakeup"),
        Column("heartbeat", "heartbeat"),
        Column("memory", "memory", True), Column("cpu", "cpu", True)),
        process_rows, lambda s: len(s.processes), ("process", "processes")),
    Panel("batches", "6", "Batches", (
        Column("id", "id", True), Column("state", "state"), Column("progress", "progress"),
        Column("total", "total", True), Column("finished", "finished", True), Column("failed", "failed", True),
        Column("description", "description"), Column("created", "created"), Column("ended", "ended")),
        batch_rows, lambda s: len(s.batches), ("batch", "batches")),
)
"""The tabs, in order."""


def selected_key(table: DataTable[Any]) -> str | None:
    """The key of the row under the cursor, or None for an empty table."""
    if table.row_count == 0:
        return None
    return table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value


def sync_table(table: DataTable[Any], rows: Sequence[Row]) -> None:
    """Bring a table to `rows` in place, by row key: changed cells updated, gone rows removed, new rows
    added, order fixed. The cursor stays on the row it was on (or on the same line when that row went)."""
    cursor = selected_key(table)
    wanted = dict(rows)
    for gone in [key.value for key in table.rows if key.value not in wanted]:
        table.remove_row(gone)  # type: ignore[arg-type]
    columns = [c.key for c in table.ordered_columns]
    for key, cells in rows:
        if key in table.rows:
            for column, old, new in zip(columns, table.get_row(key), cells, strict=True):
                if old != new:
                    table.update_cell(key, column, new, update_width=True)
        else:
            table.add_row(*cells, key=key)
    order = [key for key, _ in rows]
    if [row.key.value for row in table.ordered_rows] != order:
        # The sort sees cells, not keys: the first cell shows its key made printable.
        position: dict[str, int] = {}
        for i, (_, cells) in enumerate(rows):
            position.setdefault(str(cells[0]), i)
        table.sort(columns[0], key=lambda first: position.get(str(first), len(position)))
    if cursor is not None and cursor in wanted:
        index = table.get_row_index(cursor)
        if index != table.cursor_row:
            table.move_cursor(row=index, animate=False)
