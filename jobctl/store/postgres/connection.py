"""Connecting to PostgreSQL (psycopg 3), the backend's named SQL, and its errors as jobctl's."""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from jobctl.errors import DatabaseError
from jobctl.store import sqlfiles
from jobctl.store.common import schema_outdated
from jobctl.urls import DatabaseURL, scrub

CONNECT_TIMEOUT = 5
PACKAGE = "jobctl.store.postgres"
Q = sqlfiles.load(PACKAGE)
"""The backend's named queries."""
CHANNEL = "jobctl"
"""The NOTIFY channel; payloads are queue names."""


def latest_version() -> int:
    """The newest schema version this jobctl knows."""
    return sqlfiles.migrations(PACKAGE)[-1][0]


# A silently dropped link (a dead peer, a cut network) must become an error within ~15 s, not hang for
# the kernel's two hours: TCP keepalives while idle, and a timeout on unacknowledged data in flight.
# A URL that sets any of these keeps its own value.
LINK_DEFAULTS = {"keepalives": "1", "keepalives_idle": "5", "keepalives_interval": "2", "keepalives_count": "3",
                 "tcp_user_timeout": "10000"}


def connection_options(url: DatabaseURL) -> dict[str, str]:
    """The link defaults the URL does not set itself."""
    try:
        given = conninfo_to_dict(url.target)
    except psycopg.ProgrammingError:
        given = {}
    return {k: v for k, v in LINK_DEFAULTS.items() if k not in given}


def connect(url: DatabaseURL, *, autocommit: bool = True, prepare: bool = True) -> psycopg.Connection[Any]:
    """Open a connection, turning every failure into one line without the password. `prepare=False`
    (behind a transaction pooler) sends no server-side prepared statements: PgBouncer in transaction
    mode hands each transaction to any server connection, where another client's statement may sit."""
    try:
        conninfo = make_conninfo(url.target, **connection_options(url))
        conn = psycopg.connect(conninfo, autocommit=autocommit, connect_timeout=CONNECT_TIMEOUT)
    except (psycopg.Error, ValueError) as exc:
        raise DatabaseError(f"cannot connect to {url.redacted}: {scrub(str(exc), url)}") from None
    if not prepare:
        conn.prepare_threshold = None
    return conn


def lost(exc: psycopg.Error, url: DatabaseURL) -> DatabaseError:
    """A lost or unusable connection as one line naming the database (never the password)."""
    return DatabaseError(f"database {url.redacted}: {scrub(str(exc), url)}")


def schema_version(conn: psycopg.Connection[Any]) -> int:
    """The schema version of the database behind `conn` (0 without jobctl's tables)."""
    row = conn.execute("SELECT to_regclass('jobctl_migrations') IS NOT NULL").fetchone()
    if not row or not row[0]:
        return 0
    found = conn.execute("SELECT COALESCE(max(version), 0) FROM jobctl_migrations").fetchone()
    return int(found[0]) if found else 0


def require_schema(conn: psycopg.Connection[Any], url: DatabaseURL) -> None:
    """Raise SchemaOutdated unless the database has this jobctl's schema (or a newer one)."""
    version, latest = schema_version(conn), latest_version()
    if version < latest:
        raise schema_outdated(url, version, latest)


def create_schema(server: DatabaseURL, name: str) -> None:
    """Create an empty PostgreSQL schema (for an isolated test database)."""
    with connect(server) as conn:
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(name)))


def drop_schema(server: DatabaseURL, name: str) -> None:
    """Drop a schema and everything in it."""
    with connect(server) as conn:
        conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(name)))
