"""Batch verbs: `jobctl batches` (a page of them) and `jobctl batch ID` (one, with what holds it open)."""

from __future__ import annotations

from typing import Annotated

import typer

from jobctl.commands.common import MAX_ID, JsonOpt, check_state, emit_json, say, store
from jobctl.commands.render import batches_table, show_batch
from jobctl.errors import JobNotFound
from jobctl.records import BATCH_STATES

HOLDING_SHOWN = 10
"""Active members `jobctl batch ID` names: the oldest, those most likely to hold the batch open."""


def batches(
    state: Annotated[str | None, typer.Option(metavar="STATE",
                                              help=f"Only batches in STATE ({', '.join(BATCH_STATES)}).")] = None,
    limit: Annotated[int, typer.Option(metavar="N", min=1, max=10000, help="Batches per page.")] = 50,
    after: Annotated[int | None, typer.Option(metavar="ID", min=1, max=MAX_ID,
                                              help="The page after batch ID (older batches).")] = None,
    json_out: JsonOpt = False,
) -> None:
    """List batches, newest first: state, progress, callbacks."""
    found = store().list_batches(state=check_state(state, BATCH_STATES), limit=limit, after=after)
    if json_out:
        emit_json([b.to_dict() for b in found])
        return
    if not found:
        say("0 batches")
        return
    batches_table(found)
    if len(found) == limit:
        say(f"more: --after {found[-1].id}")


def batch(
    batch_id: Annotated[int, typer.Argument(metavar="ID", min=1, max=MAX_ID, help="The batch's id.")],
    json_out: JsonOpt = False,
) -> None:
    """One batch: members by state, callbacks (and the jobs they became), timing, and the oldest active
    members (what holds it open)."""
    s = store()
    found = s.get_batches([batch_id], states=True)
    if not found:
        raise JobNotFound(f"batch {batch_id} does not exist")
    info = found[0]
    holding = s.batch_active_members(batch_id, HOLDING_SHOWN) if info.pending else []
    if json_out:
        emit_json({**info.to_dict(), "active_members": holding})
    else:
        show_batch(info, holding)
