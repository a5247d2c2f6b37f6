"""Read verbs: stats, jobs, show, processes, recurring."""

from __future__ import annotations

from typing import Annotated

import typer

from jobctl import operations
from jobctl.commands.common import MAX_ID, JsonOpt, check_state, class_path, emit_json, queue_config, say, store
from jobctl.commands.render import cell, emit, jobs_table, show_job, table
from jobctl.errors import JobNotFound
from jobctl.formatting import ago, duration, estimate
from jobctl.records import STATES


def stats(json_out: JsonOpt = False) -> None:
    """Counts by state and queue, throughput and failures (last minute, hour), latency per queue, processes.

    Queues are those with jobs, the paused ones and those the queue config's workers name. The last minute
    and hour are read from per-minute counters, the oldest minute prorated: estimates, shown as ≈3/min.
    """
    config = queue_config()
    result = operations.stats(store(), alive_threshold=config.process_alive_threshold, named_queues=config.named_queues)
    if json_out:
        emit_json(result.to_dict())
        return
    emit("  ".join(f"[bold]{s}[/bold] {n:,}" for s, n in result.states.items()))
    emit(f"[bold]finished[/bold] {estimate(result.finished_last_minute)}/min "
         f"{estimate(result.finished_last_hour)}/h   "
         f"[bold]failed[/bold] {estimate(result.failed_last_minute)}/min {estimate(result.failed_last_hour)}/h   "
         f"[bold]processes[/bold] {result.processes}")
    if not result.queues:
        say("0 queues (none has jobs, is paused or is named by the queue config's workers)")
        return
    t = table("queue", "ready", "scheduled", "claimed", "blocked", "failed", "latency", "paused")
    for q in result.queues:
        t.add_row(cell(q.name), f"{q.ready:,}", f"{q.scheduled:,}", f"{q.claimed:,}", f"{q.blocked:,}",
                  f"{q.failed:,}", "-" if q.latency_s is None else duration(q.latency_s), "paused" if q.paused else "")
    emit(t)


def jobs(
    state: Annotated[str | None, typer.Option(metavar="STATE", help=f"Only jobs in STATE ({', '.join(STATES)}).")]
    = None,
    queue: Annotated[str | None, typer.Option(metavar="QUEUE", help="Only jobs on QUEUE.")] = None,
    job_class: Annotated[str | None, typer.Option("--class", metavar="CLASS", help="Only jobs of CLASS.")] = None,
    limit: Annotated[int, typer.Option(metavar="N", min=1, max=10000, help="Jobs per page.")] = 50,
    after: Annotated[int | None, typer.Option(metavar="ID", min=1, max=MAX_ID,
                                              help="The page after job ID (older jobs).")] = None,
    json_out: JsonOpt = False,
) -> None:
    """List jobs, newest first, one page at a time."""
    found = store().list_jobs(state=check_state(state), queue=queue, class_path=class_path(job_class),
                              limit=limit, after=after)
    if json_out:
        emit_json([j.to_dict() for j in found])
        return
    if not found:
        say("0 jobs")
        return
    emit(jobs_table(found))
    if len(found) == limit:
        say(f"more: --after {found[-1].id}")


def show(
    job_id: Annotated[int, typer.Argument(metavar="ID", min=1, max=MAX_ID, help="The job's id.")],
    json_out: JsonOpt = False,
) -> None:
    """One job: state, arguments, attempts, errors with tracebacks, progress, timings."""
    found = store().get_jobs([job_id])
    if not found:
        raise JobNotFound(f"job {job_id} does not exist")
    if json_out:
        emit_json(found[0].to_dict())
    else:
        show_job(found[0])


def processes(json_out: JsonOpt = False) -> None:
    """Supervisors, workers, dispatchers and schedulers, with their heartbeats."""
    rows = store().processes()
    if json_out:
        emit_json([r.to_dict() for r in rows])
        return
    if not rows:
        say("0 processes")
        return
    t = table("id", "kind", "hostname", "pid", "supervisor", "queues", "threads", "busy", "wakeup", "heartbeat",
              "started")
    for r in rows:
        queues = ",".join(r.queues) if r.queues else "-"
        t.add_row(str(r.id), cell(r.kind), cell(r.hostname), str(r.pid), str(r.supervisor_id or "-"), cell(queues),
                  str(r.threads or "-"), str(r.busy), cell(r.wakeup or "-"), ago(r.last_heartbeat_at),
                  ago(r.started_at))
    emit(t)


def recurring(json_out: JsonOpt = False) -> None:
    """Recurring tasks: schedule as written and as cron, what runs, last and next run."""
    tasks = store().recurring_tasks()
    if json_out:
        emit_json([r.to_dict() for r in tasks])
        return
    if not tasks:
        say("0 recurring tasks (schedulers register them when `jobctl start` runs with a recurring.yml)")
        return
    t = table("key", "schedule", "cron", "runs", "queue", "last run", "next run")
    for r in tasks:
        t.add_row(cell(r.key), cell(r.schedule), cell(r.cron), cell(r.command or r.class_path or ""),
                  cell(r.queue or "-"), ago(r.last_run_at), ago(r.next_run_at))
    emit(t)
