"""The SQLite backend (stdlib sqlite3, WAL): the only package that talks to SQLite."""

from jobctl.store.sqlite.store import SqliteStore

__all__ = ["SqliteStore"]
