"""How verbs print for people: rich tables on stdout (times and durations read as `jobctl.formatting` says).

Everything that comes from the database or the application goes in as `Text` made `printable`, never
as markup: a queue named `[/]` is a name, and `\\x1b[2J` is shown, not sent to the terminal.
"""

from __future__ import annotations

import json
import sys

from rich.console import Console, Group, RenderableType
from rich.table import Table
from rich.text import Text

from jobctl.formatting import ago, printable, shortened
from jobctl.records import JobInfo, iso

# Piped output is read by people too (`| less`, `| grep`): keep rows on one line there.
console = Console(highlight=False, soft_wrap=False, width=None if sys.stdout.isatty() else 240)

NUMERIC = {"id", "ready", "scheduled", "claimed", "blocked", "failed", "attempts", "pid", "threads", "busy",
           "priority"}


def emit(*renderables: RenderableType) -> None:
    """Print to stdout, each renderable on lines of its own: as rich renders it on a terminal; elsewhere
    (a pipe, a file) without the trailing spaces that pad every row of a table to its widest."""
    if console.is_terminal:
        console.print(Group(*renderables))
        return
    with console.capture() as captured:
        console.print(Group(*renderables))
    sys.stdout.write("".join(line.rstrip() + "\n" for line in captured.get().splitlines()))


def cell(value: object, *, style: str = "") -> Text:
    """A value from the database as a table cell: plain text, control characters made visible."""
    return Text(printable(str(value)), style=style)


def table(*columns: str, title: str | None = None) -> Table:
    """A plain table; numeric-looking columns right-aligned."""
    t = Table(title=title, title_justify="left", box=None, header_style="bold", pad_edge=False)
    for name in columns:
        t.add_column(name, justify="right" if name in NUMERIC else "left", overflow="fold")
    return t


def jobs_table(jobs: list[JobInfo]) -> Table:
    """Jobs, newest first."""
    t = table("id", "state", "class", "queue", "priority", "attempts", "enqueued", "finished")
    for j in jobs:
        t.add_row(str(j.id), cell(j.state), cell(j.class_path), cell(j.queue), str(j.priority), str(j.attempts),
                  ago(j.enqueued_at), ago(j.finished_at))
    return t


def long_text(text: str, job_id: int, *, keep_end: bool = False, lines: bool = False) -> Text:
    """A long value (arguments, an error message, a traceback), cut beyond `formatting.LONG_TEXT`."""
    cut = shortened(text, hint=f"`jobctl show {job_id} --json` has all of it", keep_end=keep_end)
    return Text(printable(cut, lines=lines))


def show_job(job: JobInfo) -> None:
    """Everything about one job, errors with their tracebacks last."""
    arguments = json.dumps(job.arguments, ensure_ascii=False)
    rows: list[tuple[str, Text]] = [
        ("class", cell(job.class_path)), ("queue", cell(job.queue)), ("priority", cell(job.priority)),
        ("arguments", long_text(arguments, job.id)), ("attempts", cell(job.attempts)),
        ("crashes", cell(job.crashes)), ("key", cell(job.key or "-")),
        ("enqueued", cell(f"{iso(job.enqueued_at)} ({ago(job.enqueued_at)})")),
        ("scheduled", cell(f"{iso(job.scheduled_at)} ({ago(job.scheduled_at)})")),
        ("claimed", cell(f"{iso(job.claimed_at)} ({ago(job.claimed_at)})" if job.claimed_at else "-")),
        ("finished", cell(f"{iso(job.finished_at)} ({ago(job.finished_at)})" if job.finished_at else "-"))]
    if job.state == "finished":
        rows.append(("result", cell("-") if job.result is None
                     else long_text(json.dumps(job.result, ensure_ascii=False), job.id)))
    if job.progress is not None:
        p = job.progress
        total = f"/{p.to_dict()['total']}" if p.total is not None else ""
        pct = f" ({100 * p.done / p.total:.0f}%)" if p.total else ""
        note = f" {shortened(p.message, limit=200, hint='--json has all of it')}" if p.message else ""
        rows.append(("progress", cell(f"{p.to_dict()['done']}{total}{pct}{note} ({ago(p.at)})")))
    t = table("", "")
    t.show_header = False
    for k, v in rows:
        t.add_row(k, v)
    parts: list[RenderableType] = [Text.assemble((f"job {job.id}", "bold"), "  ", printable(job.state)), t]
    for e in job.errors:
        parts.append(Text.assemble("\n", (f"attempt {e.attempt}", "bold"), f" {iso(e.at)}  ",
                                   long_text(f"{e.error_class}: {e.message}", job.id, lines=True)))
        if e.traceback:
            parts.append(long_text(e.traceback.rstrip(), job.id, keep_end=True, lines=True))
    emit(*parts)
