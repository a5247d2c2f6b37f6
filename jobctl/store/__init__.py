"""The store: jobctl's tables in PostgreSQL or SQLite behind one typed interface (`interface.Store`).

Only this package knows which database it is on; it imports nothing from the runtime, the monitor or
the CLI. `open_store` picks the backend for a URL; `scratch_database` makes an isolated, empty one
for a test.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import quote

from jobctl import urls
from jobctl.store.interface import PROBE_PREFIX, Listener, Session, Store, StoreOptions

__all__ = ["PROBE_PREFIX", "Listener", "Session", "Store", "StoreOptions", "open_store", "scratch_database"]


def open_store(url: urls.DatabaseURL, options: StoreOptions | None = None) -> Store:
    """A new store for a URL (the caller owns and closes it); the backend's driver is imported here."""
    if url.backend == "postgresql":
        from jobctl.store.postgres import PostgresStore

        return PostgresStore(url, options or StoreOptions())
    from jobctl.store.sqlite import SqliteStore

    return SqliteStore(url)


@contextmanager
def scratch_database(server: str | None, folder: Path) -> Iterator[str]:
    """The URL of a new, empty database, removed afterwards: a fresh schema on the PostgreSQL server at
    `server` (through search_path), or an SQLite file in `folder` when `server` is None."""
    if not server:
        yield f"sqlite:///{folder / 'jobctl-test.sqlite3'}"
        return
    from jobctl.store.postgres.connection import create_schema, drop_schema

    parsed = urls.parse(server)
    schema = f"jobctl_test_{uuid.uuid4().hex[:12]}"
    create_schema(parsed, schema)
    sep = "&" if "?" in server else "?"
    try:
        yield f"{server}{sep}options={quote(f'-csearch_path={schema}')}"
    finally:
        drop_schema(parsed, schema)
