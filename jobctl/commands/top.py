"""`jobctl top`: the live monitor (Textual is imported only when the verb runs)."""

from __future__ import annotations

from typing import Annotated

import typer

from jobctl import db
from jobctl.commands.common import GLOBALS
from jobctl.commands.inspect import alive_threshold
from jobctl.config import parse_duration
from jobctl.errors import ConfigError, UsageError


def top(
    interval: Annotated[str, typer.Option(metavar="DURATION", help="Time between refreshes: seconds (0.5) or "
                                          "2s, 1m.")] = "1",
    read_only: Annotated[bool, typer.Option("--read-only", help="No actions: retry, discard, pause, resume and "
                                            "run-now are not offered.")] = False,
) -> None:
    """Live monitor: counts, throughput, queues, claimed jobs, failures, recurring tasks, processes."""
    try:
        seconds = parse_duration(interval, where="--interval", positive=True)
    except ConfigError as exc:
        raise UsageError(str(exc)) from None
    if GLOBALS.config is not None or GLOBALS.database is not None:
        db.configure(database_url=GLOBALS.database, config=GLOBALS.config)
    url = db.resolve_url()
    threshold = alive_threshold()
    # Fail like every verb (one line, exit 69) when the database cannot be reached at all; once the
    # monitor runs, losing the database shows the DISCONNECTED banner instead.
    probe = db.open_store(url)
    try:
        probe.run("throughput_totals")
    finally:
        probe.close()

    from jobctl.tui.app import TopApp
    from jobctl.tui.source import DatabaseSource

    source = DatabaseSource(url, alive_threshold=threshold)
    try:
        TopApp(source, interval=seconds, read_only=read_only).run()
    finally:
        source.close()
