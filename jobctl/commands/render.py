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

from jobctl.formatting import ago, printable, progress_bar, shortened
from jobctl.records import BatchInfo, JobInfo, iso

# Piped output is read by people too (`| less`, `| grep`): keep rows on one line there.
console = Console(highlight=False, soft_wrap=False, width=None if sys.stdout.isatty() else 240)

NUMERIC = {"id", "ready", "scheduled", "claimed", "blocked", "failed", "attempts", "pid", "threads", "busy",
           "priority", "total", "finished", "pending"}


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
    if job.batch_id is not None:
        rows.append(("batch", cell(f"{job.batch_id} (`jobctl batch {job.batch_id}`)")))
    if job.dependencies:
        rows.append(("waits for", cell(", ".join(_dependency(d.job_id, d.batch_id, d.outcome)
                                                 for d in job.dependencies))))
    if job.dependents:
        rows.append(("dependents", cell(", ".join(f"job {i}" for i in job.dependents))))
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


def _dependency(job_id: int | None, batch_id: int | None, outcome: str | None) -> str:
    what = f"job {job_id}" if job_id is not None else f"batch {batch_id}"
    return f"{what} ({outcome or 'not ended'})"


def batches_table(found: list[BatchInfo]) -> None:
    """Batches, newest first."""
    t = table("id", "state", "progress", "total", "finished", "failed", "pending", "description", "created",
              "ended")
    for b in found:
        t.add_row(str(b.id), cell(b.state), cell(progress_bar(b.finished + b.failed, b.total)), f"{b.total:,}",
                  f"{b.finished:,}", f"{b.failed:,}", f"{b.pending:,}", cell(b.description or "-"),
                  ago(b.created_at), ago(b.finished_at))
    emit(t)


def show_batch(b: BatchInfo, holding: list[int]) -> None:
    """One batch: counts, members by state, callbacks, timing, and what holds it open."""
    states = "  ".join(f"{s} {n:,}" for s, n in sorted(b.states.items())) or "-"
    rows: list[tuple[str, Text]] = [
        ("description", cell(b.description or "-")),
        ("metadata", cell("-" if b.metadata is None else json.dumps(b.metadata, ensure_ascii=False))),
        ("progress", cell(f"{progress_bar(b.finished + b.failed, b.total)}  {b.finished + b.failed:,} of "
                          f"{b.total:,} ended ({b.finished:,} finished, {b.failed:,} failed or discarded, "
                          f"{b.pending:,} active)")),
        ("members", cell(states)),
        ("created", cell(f"{iso(b.created_at)} ({ago(b.created_at)})")),
        ("ended", cell(f"{iso(b.finished_at)} ({ago(b.finished_at)})" if b.finished_at else "-"))]
    if b.parent_job_id is not None:
        rows.append(("opened by", cell(f"job {b.parent_job_id}")))
    for event in ("success", "failure", "finish"):
        cb = b.callback(event)
        if cb is not None:
            if cb.job_id:
                became = f"enqueued as job {cb.job_id}"
            elif b.state == "finished":
                became = "not enqueued: every member finished"
            elif b.state == "failed" and event == "success":
                became = "not enqueued: a member failed (retrying it reopens the batch)"
            else:
                became = "not enqueued yet"
            rows.append((f"on_{event}", cell(f"{cb.class_path} on {cb.queue}: {became}")))
    if not b.sealed:
        rows.append(("note", cell("its `with jobctl.batch()` block has not ended: it cannot finish until it does")))
    elif holding:
        more = ", …" if b.pending > len(holding) else ""
        rows.append(("held by", cell(", ".join(f"job {i}" for i in holding) + more + " (`jobctl show ID`)")))
    t = table("", "")
    t.show_header = False
    for k, v in rows:
        t.add_row(k, v)
    emit(Text.assemble((f"batch {b.id}", "bold"), "  ", printable(b.state)), t)
