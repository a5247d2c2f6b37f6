"""Opening an SQLite file (WAL), the backend's named SQL, its schema, and times as stored (epoch seconds)."""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from typing import Any, TypeGuard

from jobctl.errors import DatabaseError
from jobctl.store import sqlfiles
from jobctl.store.common import schema_outdated
from jobctl.urls import DatabaseURL

BUSY_TIMEOUT_S = 5.0
FILE_MODE = 0o600
"""Mode of a database file jobctl creates (less if the umask says so); SQLite gives its -wal and -shm
files the database's mode. Jobs' arguments and errors are the application's data."""
PACKAGE = "jobctl.store.sqlite"
Q = sqlfiles.load(PACKAGE)
"""The backend's named queries."""


def latest_version() -> int:
    """The newest schema version this jobctl knows."""
    return sqlfiles.migrations(PACKAGE)[-1][0]


def utc(value: float | None) -> dt.datetime | None:
    """Epoch seconds as stored, as an aware UTC datetime."""
    return None if value is None else dt.datetime.fromtimestamp(value, dt.UTC)


def at(value: float) -> dt.datetime:
    """A stored time that is never NULL, as an aware UTC datetime."""
    return dt.datetime.fromtimestamp(value, dt.UTC)


def connect(url: DatabaseURL, *, synchronous: str = "FULL") -> sqlite3.Connection:
    """Open the file in WAL mode, autocommit (explicit BEGIN), usable from any thread of this process.

    A file that does not exist yet is created here with FILE_MODE first: SQLite would create it
    0644 (less the umask), readable by every user of the host.
    """
    folder = os.path.dirname(url.target)
    if folder and not os.path.isdir(folder):
        raise DatabaseError(f"cannot open {url.redacted}: directory {folder} does not exist")
    with contextlib.suppress(OSError):  # it exists already, or SQLite will say why it cannot be opened
        os.close(os.open(url.target, os.O_RDWR | os.O_CREAT | os.O_EXCL, FILE_MODE))
    try:
        conn = sqlite3.connect(url.target, timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute(f"PRAGMA synchronous={synchronous}")
        # A dependent discarded because its dependency failed may have dependents of its own (schema 9).
        conn.execute("PRAGMA recursive_triggers=ON")
    except sqlite3.Error as exc:
        raise DatabaseError(f"cannot open {url.redacted}: {unavailable_reason(exc)}") from None
    return conn


def is_busy(exc: sqlite3.Error) -> bool:
    """SQLITE_BUSY or SQLITE_LOCKED: another connection holds the lock we need."""
    return "locked" in str(exc) or "busy" in str(exc)


def unavailable(exc: BaseException) -> TypeGuard[sqlite3.Error]:
    """Whether an SQLite error means the file cannot be used right now (locked, full, unreadable, read-only),
    rather than a mistake in the statement: these become DatabaseError."""
    return isinstance(exc, sqlite3.OperationalError) or type(exc) is sqlite3.DatabaseError


def unavailable_reason(exc: sqlite3.Error) -> str:
    """SQLite's message, with what to do about the usual causes."""
    text = " ".join(str(exc).split())
    if is_busy(exc):
        return f"{text} (another connection held its write lock for over {BUSY_TIMEOUT_S:.0f}s); try again"
    if "full" in text:
        return f"{text} (free space on the file's disk)"
    return text


def database_error(exc: sqlite3.Error, url: DatabaseURL) -> DatabaseError:
    """An SQLite failure as one line naming the file."""
    return DatabaseError(f"database {url.target}: {unavailable_reason(exc)}")


@contextmanager
def mapped(url: DatabaseURL) -> Iterator[None]:
    """Inside: SQLite errors that mean the file is unusable right now are raised as DatabaseError."""
    try:
        yield
    except sqlite3.Error as exc:
        if unavailable(exc):
            raise database_error(exc, url) from None
        raise


def split_script(text: str) -> list[str]:
    """Split SQL text into statements (executescript would commit our transaction)."""
    statements, buf = [], ""
    for line in text.splitlines(keepends=True):
        buf += line
        if sqlite3.complete_statement(buf):
            statements.append(buf.strip())
            buf = ""
    if buf.strip() and not all(ln.strip().startswith("--") or not ln.strip() for ln in buf.splitlines()):
        statements.append(buf.strip())
    return statements


@cache
def statements(name: str) -> list[str]:
    """The statements of a named query that holds several."""
    return split_script(Q[name])


def script(conn: sqlite3.Connection, name: str, params: dict[str, Any]) -> list[Any]:
    """Run every statement of a named query (inside the caller's transaction); the last one's rows."""
    found = statements(name)
    for statement in found[:-1]:
        conn.execute(statement, params).fetchall()
    return conn.execute(found[-1], params).fetchall()


@contextmanager
def write(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """A write transaction taken up front, so two writers queue instead of deadlocking."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
        conn.execute("COMMIT")
    except BaseException:
        # SQLite may have rolled back already (a full disk, an I/O error); a COMMIT that failed
        # leaves the transaction open, and the connection unusable until it is rolled back.
        if conn.in_transaction:
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
        raise


def schema_version(conn: sqlite3.Connection) -> int:
    """The schema version of the file (0 without jobctl's tables)."""
    row = conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'jobctl_migrations'").fetchone()
    if row is None:
        return 0
    return int(conn.execute("SELECT COALESCE(max(version), 0) FROM jobctl_migrations").fetchone()[0])


def migrate(conn: sqlite3.Connection) -> list[str]:
    """Apply pending migrations in one write transaction; return the names applied."""
    applied: list[str] = []
    with write(conn):
        conn.execute("CREATE TABLE IF NOT EXISTS jobctl_migrations (version INTEGER PRIMARY KEY, "
                     "name TEXT NOT NULL, applied_at REAL NOT NULL)")
        done = {row[0] for row in conn.execute("SELECT version FROM jobctl_migrations")}
        for version, name, text in sqlfiles.migrations(PACKAGE):
            if version in done:
                continue
            for statement in split_script(text):
                conn.execute(statement)
            if "writable_schema" in text:  # the table's schema text was rewritten: make every connection reread it
                bumped = int(conn.execute("PRAGMA schema_version").fetchone()[0]) + 1
                conn.execute(f"PRAGMA schema_version = {bumped}")
            conn.execute("INSERT INTO jobctl_migrations (version, name, applied_at) VALUES (?, ?, ?)",
                         (version, name, time.time()))
            applied.append(f"{version:04d}_{name}")
    return applied


def require_schema(conn: sqlite3.Connection, url: DatabaseURL) -> None:
    """Give a new, empty file its schema; raise SchemaOutdated for a file with an older one."""
    version, latest = schema_version(conn), latest_version()
    if version == 0:
        migrate(conn)
    elif version < latest:
        raise schema_outdated(url, version, latest)
