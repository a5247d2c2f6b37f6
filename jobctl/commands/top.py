"""`jobctl top`: the live monitor (Textual is imported only when the verb runs)."""

from __future__ import annotations

from typing import Annotated

import typer

from jobctl import database
from jobctl.commands.common import queue_config, resolve_url
from jobctl.config import parse_duration
from jobctl.errors import ConfigError, UsageError
from jobctl.store import open_store


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
    url = resolve_url()
    options = database.resolve_options()
    config = queue_config()
    # Fail like every verb (one line, exit 69; exit 1 without this jobctl's schema) when the database
    # cannot be used at all; once the monitor runs, losing the database shows the DISCONNECTED banner.
    probe = open_store(url, options)
    try:
        probe.ensure_schema()
    finally:
        probe.close()

    from jobctl.tui.app import TopApp
    from jobctl.tui.source import DatabaseSource

    source = DatabaseSource(url, alive_threshold=config.process_alive_threshold, named_queues=config.named_queues,
                            open_store=lambda u: open_store(u, options))
    try:
        TopApp(source, interval=seconds, read_only=read_only).run()
    finally:
        source.close()
