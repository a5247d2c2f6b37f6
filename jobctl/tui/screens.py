"""Screens over the monitor: confirmation dialogs, the help listing, one job's details. What they show
from the database is `Text` made printable, never markup."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from typing import ClassVar

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.message import Message
from textual.screen import ModalScreen, Screen
from textual.widgets import Button, Footer, Static

from jobctl.formatting import ago, printable, shortened
from jobctl.records import JobInfo, iso
from jobctl.tui.source import Source


class ConfirmScreen(ModalScreen[bool]):
    """A yes/no question that states what will change; `y` confirms, `n` or `escape` cancels. The
    question is shown as plain text (callers make the data in it printable)."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("y", "answer(True)", "yes"),
        Binding("n,escape", "answer(False)", "no"),
    ]

    def __init__(self, question: str, confirm_label: str) -> None:
        super().__init__()
        self.question = question
        self.confirm_label = confirm_label

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Static(Text(self.question), id="question")
            with Horizontal(id="buttons"):
                yield Button(f"{self.confirm_label} (y)", variant="error", id="yes")
                yield Button("Cancel (n)", variant="primary", id="no")

    def on_mount(self) -> None:
        self.query_one("#no", Button).focus()  # enter on the default button changes nothing

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "yes")

    def action_answer(self, yes: bool) -> None:
        self.dismiss(yes)


class HelpScreen(ModalScreen[None]):
    """Every key of the monitor, one per line; `escape` or `?` closes it."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape,question_mark", "close", "close")]

    def __init__(self, lines: Sequence[tuple[str, str]]) -> None:
        super().__init__()
        self.lines = list(lines)

    def compose(self) -> ComposeResult:
        table = Table(box=None, show_header=False, pad_edge=False)
        table.add_column(style="bold cyan", no_wrap=True)
        table.add_column()
        for keys, what in self.lines:
            table.add_row(keys, what)
        with VerticalScroll(id="help"):
            yield Static(Text("Keys", style="bold"))
            yield Static(table, id="help-keys")

    def action_close(self) -> None:
        self.dismiss(None)


class JobLoaded(Message):
    """A job read for the detail screen (None when it no longer exists) or the error reading it."""

    def __init__(self, job: JobInfo | None, error: str | None = None) -> None:
        super().__init__()
        self.job = job
        self.error = error


class JobScreen(Screen[None]):
    """One job: arguments, attempts and every error with its traceback. Read once, off the UI thread."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "close", "back"), Binding("q", "app.quit", "quit")]

    def __init__(self, source: Source, job_id: int) -> None:
        super().__init__()
        self.source = source
        self.job_id = job_id

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="job"):
            yield Static(f"job {self.job_id}: loading…", id="job-body")
        yield Footer()

    def on_mount(self) -> None:
        self.load()

    @work(thread=True, exclusive=True, group="job")
    def load(self) -> None:
        try:
            self.post_message(JobLoaded(self.source.job(self.job_id)))
        except Exception as exc:
            self.post_message(JobLoaded(None, one_line(exc)))

    def on_job_loaded(self, message: JobLoaded) -> None:
        body = self.query_one("#job-body", Static)
        if message.error is not None:
            body.update(Text(f"job {self.job_id}: cannot read it: {printable(message.error)}", style="red"))
        elif message.job is None:
            body.update(f"job {self.job_id} no longer exists")
        else:
            body.update(job_details(message.job, dt.datetime.now(dt.UTC)))

    def action_close(self) -> None:
        self.dismiss(None)


def job_details(job: JobInfo, now: dt.datetime) -> RenderableType:
    """What `jobctl show` prints, as one renderable (long values cut as there)."""
    facts = Table(box=None, show_header=False, pad_edge=False)
    facts.add_column(style="bold", no_wrap=True)
    facts.add_column()

    def when(value: dt.datetime | None) -> str:
        return f"{iso(value)} ({ago(value, now)})" if value else "-"

    def long(text: str, *, keep_end: bool = False) -> str:
        cut = shortened(text, hint=f"`jobctl show {job.id} --json` has all of it", keep_end=keep_end)
        return printable(cut, lines=True)

    rows = [("state", job.state), ("class", job.class_path), ("queue", job.queue), ("priority", str(job.priority)),
            ("attempts", str(job.attempts)), ("crashes", str(job.crashes)), ("key", job.key or "-"),
            ("enqueued", when(job.enqueued_at)), ("scheduled", when(job.scheduled_at)),
            ("claimed", when(job.claimed_at)), ("finished", when(job.finished_at))]
    if job.progress is not None:
        p = job.progress.to_dict()
        total = f"/{p['total']}" if p["total"] is not None else ""
        note = shortened(p["message"] or "", limit=200, hint="--json has all of it")
        rows.append(("progress", f"{p['done']}{total} {note} ({ago(job.progress.at, now)})"))
    for name, value in rows:
        facts.add_row(name, Text(printable(value)))
    parts: list[RenderableType] = [
        Text(f"job {job.id}", style="bold"), facts, Text("\narguments", style="bold"),
        Text(long(json.dumps(job.arguments, indent=2, ensure_ascii=False))),
        Text(f"\nerrors ({len(job.errors)})" if job.errors else "\nno errors", style="bold")]
    for e in job.errors:
        parts.append(Text.assemble((f"\nattempt {e.attempt}", "bold"), f"  {iso(e.at)}  ",
                                   (long(f"{e.error_class}: {e.message}"), "red")))
        if e.traceback:
            parts.append(Text(long(e.traceback.rstrip(), keep_end=True), style="dim"))
    return Group(*parts)


def one_line(exc: BaseException) -> str:
    """An exception as one line for the screen."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
