"""Database URLs: which backend, how to connect, and how to print one without its password."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

from jobctl.errors import DatabaseError

DEFAULT_URL = "sqlite:///jobctl.sqlite3"
_POSTGRES_SCHEMES = ("postgresql", "postgres", "postgresql+psycopg")


@dataclass(frozen=True)
class DatabaseURL:
    """A parsed database URL."""

    raw: str
    """The URL as given (may hold a password: never print it, print `redacted`)."""
    backend: str
    """`postgresql` or `sqlite`."""
    target: str
    """A psycopg conninfo URL for PostgreSQL; an absolute file path for SQLite."""

    @property
    def redacted(self) -> str:
        """The URL with any password replaced by `***`."""
        return redact(self.raw)

    def __repr__(self) -> str:
        return f"DatabaseURL({self.redacted!r})"


def redact(url: str) -> str:
    """Hide the password of a URL; leaves a string that is not a URL as it is, minus anything after `:` in userinfo."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return re.sub(r"//([^:/@]*):[^@]*@", r"//\1:***@", url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)
    user = netloc[0].split(":", 1)[0]
    return urlunsplit(parts._replace(netloc=f"{user}:***@{netloc[1]}"))


def parse(url: str) -> DatabaseURL:
    """Parse a URL by SQLAlchemy's rules; an unusable URL raises DatabaseError (exit 69)."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        raise DatabaseError(f"database URL {redact(url)!r} is not a URL (expected postgresql://… or sqlite:///…)")
    scheme = scheme.lower()
    if scheme in _POSTGRES_SCHEMES:
        return DatabaseURL(url, "postgresql", "postgresql://" + rest)
    if scheme == "sqlite":
        # SQLAlchemy: sqlite:///relative.db, sqlite:////absolute.db.
        if not rest.startswith("/") or rest in ("/", "/:memory:"):
            raise DatabaseError(
                f"database URL {redact(url)!r} names no file (expected sqlite:///relative.db or sqlite:////abs/path.db)"
            )
        path = rest[1:].split("?", 1)[0]
        return DatabaseURL(url, "sqlite", os.path.abspath(path))
    raise DatabaseError(
        f"database URL {redact(url)!r} has unknown scheme {scheme!r} (expected postgresql, postgres or sqlite)"
    )


def scrub(message: str, url: DatabaseURL) -> str:
    """Remove the URL's password from a driver's message, in case the driver echoed it."""
    try:
        password = urlsplit(url.raw).password
    except ValueError:
        password = None
    first = message.strip().splitlines()[0] if message.strip() else message
    return first.replace(password, "***") if password else first
