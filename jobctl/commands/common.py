"""What every verb shares: global options, the store, output on stdout, messages on stderr."""

from __future__ import annotations

import datetime as dt
import json
import sys
from dataclasses import dataclass
from typing import Any

from jobctl import db
from jobctl.info import iso
from jobctl.store.base import Store


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


def store() -> Store:
    """The store for the URL the global options and environment select."""
    if GLOBALS.config is not None or GLOBALS.database is not None:
        db.configure(database_url=GLOBALS.database, config=GLOBALS.config)
    return db.get_store()


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
