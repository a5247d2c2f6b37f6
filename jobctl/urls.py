"""Database URLs: which backend, how to connect, and how to print one without its password."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from urllib.parse import unquote, unquote_plus

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


# Keys whose values are secrets, in a URL's query or a libpq keyword/value string (any case).
_SECRET_KEYS = ("password", "sslpassword")
# `password=value` or `password = 'quoted \\' value'` in a libpq keyword/value string.
_KEYWORD_SECRET = re.compile(r"(?i)\b(?:ssl)?password\s*=\s*('(?:[^'\\]|\\.)*'?|[^\s'][^\s]*|(?=\s|$))")
# `user:secret@` anywhere in text that is not a well-formed URL (`postgresql:/u:p@h`).
_LOOSE_USERINFO = re.compile(r"[^\s:/@]*:([^\s@]*)@")
_EMBEDDED_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^\s\"'<>]+")


def _secret_spans(text: str) -> list[tuple[int, int]]:
    """Where the passwords of `text` (a URL, or a libpq keyword/value string) are, malformed or not.

    Parsed by hand rather than by urlsplit, which refuses a malformed URL (`[bad`, a bad port)
    that the driver may still echo.
    """
    _scheme, sep, rest = text.partition("://")
    if not sep:
        keywords = [m.span(1) for m in _KEYWORD_SECRET.finditer(text)]
        return keywords + [m.span(1) for m in _LOOSE_USERINFO.finditer(text) if not _inside(m.span(1), keywords)]
    start = len(text) - len(rest)
    end = min([i for i in (rest.find("?"), rest.find("#")) if i >= 0] or [len(rest)])
    spans: list[tuple[int, int]] = []
    # No userinfo when the authority is empty (sqlite:////path/a:b@c.db); the last @ ends it, as in
    # urlsplit, so a password holding an unencoded @ or / is hidden whole.
    userinfo, at, _host = rest[:end].rpartition("@")
    if at and not rest.startswith("/") and ":" in userinfo:
        spans.append((start + userinfo.index(":") + 1, start + len(userinfo)))
    if end < len(rest) and rest[end] == "?":
        offset = start + end + 1
        query = rest[end + 1 :].split("#", 1)[0]
        for part in query.split("&"):
            key, eq, _value = part.partition("=")
            if eq and unquote(key).strip().lower() in _SECRET_KEYS:
                spans.append((offset + len(key) + 1, offset + len(part)))
            offset += len(part) + 1
    return spans


def _inside(span: tuple[int, int], spans: list[tuple[int, int]]) -> bool:
    return any(lo <= span[0] and span[1] <= hi for lo, hi in spans)


def redact(url: str) -> str:
    """Hide every password of a URL or libpq keyword/value string: userinfo, `password=` query
    parameters (any case), `password=` keywords, in malformed URLs too."""
    out, last = [], 0
    for lo, hi in sorted(_secret_spans(url)):
        if lo >= last:
            out += [url[last:lo], "***"]
        last = max(last, hi)  # overlapping spans: hidden as one
    return "".join(out) + url[last:]


def parse(url: str) -> DatabaseURL:
    """Parse a URL by SQLAlchemy's rules; an unusable URL raises DatabaseError (exit 69)."""
    if "\0" in url:
        raise DatabaseError(f"database URL {redact(url)!r} contains a NUL character")
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


def _secrets(url: str) -> set[str]:
    """Every spelling of the passwords in `url` a driver might echo: as written, percent-decoded, unquoted."""
    found = set()
    for lo, hi in _secret_spans(url):
        raw = url[lo:hi]
        found |= {raw, unquote(raw), unquote_plus(raw)}
        if len(raw) >= 2 and raw[0] == raw[-1] == "'":  # a quoted keyword value
            found |= {raw[1:-1], re.sub(r"\\(.)", r"\1", raw[1:-1])}
    return {secret for secret in found if secret}


def scrub(message: str, url: DatabaseURL) -> str:
    """The first line of a driver's message, without the URL's password in any form it may echo."""
    first = message.strip().splitlines()[0] if message.strip() else message
    for secret in sorted(_secrets(url.raw), key=len, reverse=True):
        first = first.replace(secret, "***")
    # A URL or keyword string quoted back in the message (as the driver re-spelled it, maybe).
    first = _EMBEDDED_URL.sub(lambda m: redact(m.group()), first)
    return _KEYWORD_SECRET.sub(lambda m: m.group()[: m.start(1) - m.start()] + "***", first)
