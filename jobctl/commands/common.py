"""What every verb shares: global options, the store they select, shared options, output on stdout and
messages on stderr."""

from __future__ import annotations

import datetime as dt
import json
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any

import typer

from jobctl import database
from jobctl.errors import UsageError
from jobctl.records import STATES, iso
from jobctl.store import Store
from jobctl.urls import DatabaseURL

if TYPE_CHECKING:
    from jobctl.config import QueueConfig


@dataclass
class Globals:
    """Options accepted before or after any verb."""

    database: str | None = None
    """--database URL."""
    config: str | None = None
    """--config PATH (the queue config)."""
    debug: bool = False
    """--debug: tracebacks instead of one-line errors."""


GLOBALS = Globals()

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON on stdout (UTC ISO-8601 times, no colour).")]
MAX_ID = 2**63 - 1
"""Job ids are positive 64-bit integers on both backends: larger ones are refused as usage errors."""


def duration_option(text: str, where: str) -> float:
    """A duration option's seconds; a bad one is a usage error (exit 2) naming the option."""
    from jobctl.config import parse_duration
    from jobctl.errors import ConfigError

    try:
        return parse_duration(text, where=where)
    except ConfigError as exc:
        raise UsageError(str(exc)) from None


def apply_globals() -> None:
    """Make --database and --config win over the environment and the config file, for this command."""
    if GLOBALS.config is not None or GLOBALS.database is not None:
        database.override(database_url=GLOBALS.database, config=GLOBALS.config)


def resolve_url() -> DatabaseURL:
    """The database URL the global options, environment and config select."""
    apply_globals()
    return database.resolve_url()


def store() -> Store:
    """The store for the URL the global options, environment and config select."""
    apply_globals()
    return database.get_store()


def queue_config() -> QueueConfig:
    """The queue config the global options and environment select (built-in defaults without a file)."""
    from jobctl.config import load_queue_config

    return load_queue_config(GLOBALS.config, explicit=GLOBALS.config is not None)


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


def emit_json(data: Any) -> None:
    """Data on stdout as JSON, no colour; datetimes as UTC ISO-8601."""
    sys.stdout.write(json.dumps(data, ensure_ascii=False, indent=2, default=_jsonable) + "\n")


def _jsonable(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return iso(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def say(message: str) -> None:
    """A message for people, on stderr."""
    sys.stderr.write(message + "\n")
