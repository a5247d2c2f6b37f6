"""How verbs print for people: rich tables on stdout (times and durations read as `jobctl.formatting` says)."""

from __future__ import annotations

import json
import sys

from rich.console import Console
from rich.table import Table

from jobctl.formatting import ago
from jobctl.records import JobInfo, iso

# Piped output is read by people too (`| less`, `| grep`): keep rows on one line there.
console = Console(highlight=False, soft_wrap=False, width=None if sys.stdout.isatty() else 240)


def table(*columns: str, title: str | None = None) -> Table:
    """A plain table; numeric-looking columns right-aligned."""
    t = Table(title=title, title_justify="left", box=None, header_style="bold", pad_edge=False)
    for name in columns:
        t.add_column(name, justify="right" if name in {"id", "ready", "scheduled", "claimed", "blocked", "failed",
                                                        "attempts", "pid", "threads", "busy", "priority"} else "left",
                     overflow="fold")
    return t


def jobs_table(jobs: list[JobInfo]) -> Table:
    """Jobs, newest first."""
    t = table("id", "state", "class", "queue", "priority", "attempts", "enqueued", "finished")
    for j in jobs:
        t.add_row(str(j.id), j.state, j.class_path, j.queue, str(j.priority), str(j.attempts), ago(j.enqueued_at),
                  ago(j.finished_at))
    return t


def show_job(job: JobInfo) -> None:
    """Everything about one job, errors with their tracebacks last."""
    out = console
    out.print(f"[bold]job {job.id}[/bold]  {job.state}")
    rows = [("class", job.class_path), ("queue", job.queue), ("priority", str(job.priority)),
            ("arguments", json.dumps(job.arguments, ensure_ascii=False)), ("attempts", str(job.attempts)),
            ("crashes", str(job.crashes)), ("key", job.key or "-"),
            ("enqueued", f"{iso(job.enqueued_at)} ({ago(job.enqueued_at)})"),
            ("scheduled", f"{iso(job.scheduled_at)} ({ago(job.scheduled_at)})"),
            ("claimed", f"{iso(job.claimed_at)} ({ago(job.claimed_at)})" if job.claimed_at else "-"),
            ("finished", f"{iso(job.finished_at)} ({ago(job.finished_at)})" if job.finished_at else "-")]
    if job.progress is not None:
        p = job.progress
        total = f"/{p.to_dict()['total']}" if p.total is not None else ""
        pct = f" ({100 * p.done / p.total:.0f}%)" if p.total else ""
        rows.append(("progress", f"{p.to_dict()['done']}{total}{pct}{' ' + p.message if p.message else ''} "
                                 f"({ago(p.at)})"))
    t = table("", "")
    t.show_header = False
    for k, v in rows:
        t.add_row(k, v)
    out.print(t)
    for e in job.errors:
        out.print(f"\n[bold]attempt {e.attempt}[/bold] {iso(e.at)}  {e.error_class}: {e.message}")
        if e.traceback:
            out.print(e.traceback.rstrip(), markup=False)
