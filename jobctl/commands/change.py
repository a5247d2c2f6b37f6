"""Write verbs: retry, discard, clear, pause, resume. Bulk changes show the count and ask first."""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from typing import Annotated

import typer

from jobctl import operations
from jobctl.commands.common import MAX_ID, JsonOpt, check_state, class_path, duration_option, emit_json, say, store
from jobctl.errors import JobNotFound, Refused, UsageError
from jobctl.formatting import printable
from jobctl.records import STATES, WriteResult
from jobctl.store import Store

YesOpt = Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")]
DryRunOpt = Annotated[bool, typer.Option("--dry-run", help="Only count what would change; change nothing.")]
AllOpt = Annotated[bool, typer.Option("--all", help="Every matching job (narrow with the filters).")]
QueueOpt = Annotated[str | None, typer.Option(metavar="QUEUE", help="Only jobs on QUEUE.")]
ClassOpt = Annotated[str | None, typer.Option("--class", metavar="CLASS", help="Only jobs of CLASS.")]
IdsArg = Annotated[list[int] | None, typer.Argument(metavar="ID", help="Job ids.", show_default=False, min=1,
                                                    max=MAX_ID)]
DISCARDABLE = ("failed", "ready", "scheduled", "blocked", "waiting")


def _confirm(action: str, count: int, *, yes: bool) -> None:
    """Ask on the terminal; without one (and without --yes) refuse."""
    if yes or count == 0:
        return
    if not sys.stdin.isatty():
        raise Refused(f"refusing to {action} {count} jobs without --yes (no terminal to ask)")
    if not typer.confirm(f"{action.capitalize()} {count} jobs?", default=False, err=True):
        raise Refused(f"not confirmed: {count} jobs left as they were")


def _existing(s: Store, ids: Sequence[int]) -> None:
    missing = sorted(set(ids) - set(operations.states_of(s, ids)))
    if missing:
        raise JobNotFound(f"job {missing[0]} does not exist" if len(missing) == 1
                          else f"jobs {', '.join(map(str, missing))} do not exist")


def _apply(verb: str, ids: list[int] | None, every: bool, states: Sequence[str], queue: str | None,
           job_class: str | None, older_than: float | None, yes: bool, dry_run: bool, json_out: bool,
           change: Callable[[Store, Sequence[int]], WriteResult]) -> None:
    """The shared shape of retry, discard and clear: ids, or a confirmed bulk filter."""
    s = store()
    filtered = every or queue is not None or job_class is not None or older_than is not None
    if ids and filtered:
        raise UsageError(f"{verb}: give job IDs or --all/filters, not both")
    if ids:
        _existing(s, ids)
        if dry_run:
            _report(verb, WriteResult(matched=len(ids)), json_out, dry_run=True)
            return
        result = change(s, ids)
        _report(verb, result, json_out)
        if result.skipped:
            raise typer.Exit(1)
        return
    if not filtered:
        raise UsageError(f"{verb}: give job IDs, or --all (narrowed by the filters)")
    matched = s.match_jobs(states=states, queue=queue, class_path=class_path(job_class), older_than=older_than)
    if dry_run:
        _report(verb, WriteResult(matched=len(matched)), json_out, dry_run=True)
        return
    _confirm(verb, len(matched), yes=yes)
    _report(verb, change(s, matched) if matched else WriteResult(), json_out)


def _report(verb: str, result: WriteResult, json_out: bool, *, dry_run: bool = False) -> None:
    if json_out:
        emit_json({**result.to_dict(), "dry_run": dry_run} if dry_run else result.to_dict())
    for reason in result.skipped.values():
        say(printable(reason))
    if dry_run:
        say(f"{verb}: {result.matched} jobs would change (dry run; nothing changed)")
    elif not json_out:
        say(f"{verb}: {result.changed} of {result.matched} jobs changed")


def retry(
    ids: IdsArg = None, every: AllOpt = False, queue: QueueOpt = None, job_class: ClassOpt = None,
    yes: YesOpt = False, dry_run: DryRunOpt = False, json_out: JsonOpt = False,
) -> None:
    """Move failed jobs back to ready, with a fresh retry budget."""
    _apply("retry", ids, every, ("failed",), queue, job_class, None, yes, dry_run, json_out, operations.retry)


def discard(
    ids: IdsArg = None, every: AllOpt = False,
    state: Annotated[str | None, typer.Option(metavar="STATE", help=f"Only jobs in STATE "
                                              f"({', '.join(DISCARDABLE)}; default: all of them).")] = None,
    queue: QueueOpt = None, job_class: ClassOpt = None,
    yes: YesOpt = False, dry_run: DryRunOpt = False, json_out: JsonOpt = False,
) -> None:
    """Discard failed, ready, scheduled, blocked or waiting jobs."""
    check_state(state, DISCARDABLE)
    states = (state,) if state else DISCARDABLE
    every = every or state is not None
    _apply("discard", ids, every, states, queue, job_class, None, yes, dry_run, json_out, operations.discard)


def clear(
    state: Annotated[str, typer.Option(metavar="STATE", help="Only jobs in STATE.")] = "finished",
    older_than: Annotated[str | None, typer.Option(metavar="DURATION", help="Only jobs finished (or enqueued, "
                                                   "if unfinished) longer ago than DURATION: 30s, 5m, 2h, 1d, 1w.")]
    = None,
    queue: QueueOpt = None,
    every: Annotated[bool, typer.Option("--all", help="Every state, not only --state.")] = False,
    yes: YesOpt = False, dry_run: DryRunOpt = False, json_out: JsonOpt = False,
) -> None:
    """Delete jobs: finished ones by default, or of the state asked for, or of every state."""
    check_state(state)
    states = STATES if every else (state,)
    age = duration_option(older_than, "--older-than") if older_than is not None else None
    _apply("clear", None, True, states, queue, None, age, yes, dry_run, json_out, operations.clear)


def pause(queue: Annotated[str, typer.Argument(metavar="QUEUE", help="Queue name.")], json_out: JsonOpt = False
          ) -> None:
    """Stop claiming from QUEUE (running jobs finish; works before the queue has jobs)."""
    changed = store().pause_queue(queue)
    if json_out:
        emit_json({"queue": queue, "paused": True, "changed": changed})
    else:
        say(f"paused {printable(queue)}" if changed else f"{printable(queue)} was already paused")


def resume(queue: Annotated[str, typer.Argument(metavar="QUEUE", help="Queue name.")], json_out: JsonOpt = False
           ) -> None:
    """Claim from QUEUE again."""
    changed = store().resume_queue(queue)
    if json_out:
        emit_json({"queue": queue, "paused": False, "changed": changed})
    else:
        say(f"resumed {printable(queue)}" if changed else f"{printable(queue)} was not paused")
