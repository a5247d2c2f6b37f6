"""Read verbs: stats, jobs, show, processes, recurring."""

from __future__ import annotations

from typing import Annotated

import typer

from jobctl import admin
from jobctl.commands.common import GLOBALS, emit_json, say, store
from jobctl.commands.render import ago, console, duration, jobs_table, show_job, table
from jobctl.errors import JobNotFound, UsageError
from jobctl.info import STATES

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON on stdout (UTC ISO-8601 times, no colour).")]


def class_path(text: str | None) -> str | None:
    """`module.QualName` accepted as `module:QualName`, the stored form."""
    if text is None or ":" in text:
        return text
    module, _, name = text.rpartition(".")
    return f"{module}:{name}" if module else text


def check_state(state: str | None, allowed: tuple[str, ...] = STATES) -> str | None:
    """A state name, or a usage error listing the valid ones."""
    if state is not None and state not in allowed:
        raise UsageError(f"--state: {state!r} is not one of {', '.join(allowed)}")
    return state


def alive_threshold() -> float:
    """process_alive_threshold from the queue config (60 s without one)."""
    from jobctl.config import load_queue_config

    return load_queue_config(GLOBALS.config, explicit=GLOBALS.config is not None).process_alive_threshold


def stats(json_out: JsonOpt = False) -> None:
    """Counts by state and queue, throughput and failures (last minute, hour), latency per queue, processes."""
    result = admin.stats(store(), alive_threshold=alive_threshold())
    if json_out:
        emit_json(result.to_dict())
        return
    console.print("  ".join(f"[bold]{s}[/bold] {n:,}" for s, n in result.states.items()))
    console.print(f"[bold]finished[/bold] {result.finished_last_minute:,}/min {result.finished_last_hour:,}/h   "
                  f"[bold]failed[/bold] {result.failed_last_minute:,}/min {result.failed_last_hour:,}/h   "
                  f"[bold]processes[/bold] {result.processes}")
    if not result.queues:
        console.print("no queues with waiting, running or failed jobs")
        return
    t = table("queue", "ready", "scheduled", "claimed", "blocked", "failed", "latency", "paused")
    for q in result.queues:
        t.add_row(q.name, f"{q.ready:,}", f"{q.scheduled:,}", f"{q.claimed:,}", f"{q.blocked:,}", f"{q.failed:,}",
                  "-" if q.latency_s is None else duration(q.latency_s), "paused" if q.paused else "")
    console.print(t)


def jobs(
    state: Annotated[str | None, typer.Option(metavar="STATE", help=f"Only jobs in STATE ({', '.join(STATES)}).")]
    = None,
    queue: Annotated[str | None, typer.Option(metavar="QUEUE", help="Only jobs on QUEUE.")] = None,
    job_class: Annotated[str | None, typer.Option("--class", metavar="CLASS", help="Only jobs of CLASS.")] = None,
    limit: Annotated[int, typer.Option(metavar="N", min=1, max=10000, help="Jobs per page.")] = 50,
    after: Annotated[int | None, typer.Option(metavar="ID", help="The page after job ID (older jobs).")] = None,
    json_out: JsonOpt = False,
) -> None:
    """List jobs, newest first, one page at a time."""
    found = admin.list_jobs(store(), state=check_state(state), queue=queue, class_path=class_path(job_class),
                            limit=limit, after=after)
    if json_out:
        emit_json([j.to_dict() for j in found])
        return
    if not found:
        say("0 jobs")
        return
    console.print(jobs_table(found))
    if len(found) == limit:
        say(f"more: --after {found[-1].id}")


def show(
    job_id: Annotated[int, typer.Argument(metavar="ID", help="The job's id.")],
    json_out: JsonOpt = False,
) -> None:
    """One job: state, arguments, attempts, errors with tracebacks, progress, timings."""
    found = admin.get_jobs(store(), [job_id])
    if not found:
        raise JobNotFound(f"job {job_id} does not exist")
    if json_out:
        emit_json(found[0].to_dict())
    else:
        show_job(found[0])


def processes(json_out: JsonOpt = False) -> None:
    """Supervisors, workers, dispatchers and schedulers, with their heartbeats."""
    rows = admin.processes(store())
    if json_out:
        emit_json(rows)
        return
    if not rows:
        say("0 processes")
        return
    t = table("id", "kind", "hostname", "pid", "supervisor", "queues", "threads", "busy", "heartbeat", "started")
    for r in rows:
        queues = ",".join(r["queues"]) if r["queues"] else "-"
        t.add_row(str(r["id"]), r["kind"], r["hostname"], str(r["pid"]), str(r["supervisor_id"] or "-"), queues,
                  str(r["threads"] or "-"), str(r["busy"]), ago(r["last_heartbeat_at"]), ago(r["started_at"]))
    console.print(t)


def recurring(json_out: JsonOpt = False) -> None:
    """Recurring tasks: schedule as written and as cron, what runs, last and next run."""
    tasks = admin.recurring(store())
    if json_out:
        emit_json(tasks)
        return
    if not tasks:
        say("0 recurring tasks (schedulers register them when `jobctl start` runs with a recurring.yml)")
        return
    t = table("key", "schedule", "cron", "runs", "queue", "last run", "next run")
    for r in tasks:
        t.add_row(r["key"], r["schedule"], r["cron"], r["command"] or r["class"], r["queue"] or "-",
                  ago(r["last_run_at"]), ago(r["next_run_at"]))
    console.print(t)
