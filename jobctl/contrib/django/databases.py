"""jobctl's database is Django's: its URL built from a `DATABASES` entry, and the driver connection under
Django's own connection (psycopg 3 or sqlite3), so enqueues join Django's transaction."""

from __future__ import annotations

import os
from typing import Any
from urllib.parse import quote

from django.core.exceptions import ImproperlyConfigured
from django.db import connections

# OPTIONS of a PostgreSQL DATABASES entry that are Django's own, not libpq connection parameters.
_DJANGO_ONLY_OPTIONS = frozenset({"pool", "server_side_binding", "assume_role", "isolation_level", "cursor_factory",
                                  "prepare_threshold", "context"})


def database_url(alias: str) -> str:
    """The jobctl URL of Django's database `alias` (the test database while tests run), password included:
    never print it (jobctl prints URLs redacted)."""
    connection = _connection(alias)
    settings = connection.settings_dict
    if connection.vendor == "sqlite":
        return "sqlite:///" + _sqlite_file(alias, settings.get("NAME"))
    if connection.vendor == "postgresql":
        return _postgres_url(settings)
    raise ImproperlyConfigured(f"jobctl works with Django's PostgreSQL and SQLite backends; DATABASES[{alias!r}] "
                               f"is {connection.vendor} ({settings.get('ENGINE')})")


def _connection(alias: str) -> Any:
    if alias not in connections.settings:
        raise ImproperlyConfigured(f"jobctl: DATABASES has no {alias!r} entry (TASKS OPTIONS DATABASE names it)")
    return connections[alias]


def _sqlite_file(alias: str, name: Any) -> str:
    text = str(name or "")
    if text.startswith("file:"):  # a URI filename: file:/path/db.sqlite3?mode=rwc
        path, _, query = text[len("file:"):].partition("?")
        if "mode=memory" in query:
            text = ":memory:"
        else:
            text = path
    if not text or text == ":memory:" or text.startswith(":memory:"):
        raise ImproperlyConfigured(
            f"jobctl needs DATABASES[{alias!r}] to be a SQLite file its worker processes can open, not an in-memory "
            "database (for tests, set its TEST NAME to a file)")
    return os.path.abspath(text)


def _postgres_url(settings: dict[str, Any]) -> str:
    user = settings.get("USER") or ""
    password = settings.get("PASSWORD") or ""
    host = str(settings.get("HOST") or "")
    port = str(settings.get("PORT") or "")
    name = settings.get("NAME") or ""
    params: list[tuple[str, str]] = []
    userinfo = quote(str(user), safe="")
    if password:
        userinfo += ":" + quote(str(password), safe="")
    if host.startswith("/"):  # a Unix socket directory
        params.append(("host", host))
        host = ""
    elif ":" in host:  # an IPv6 address
        host = f"[{host}]"
    netloc = (userinfo + "@" if userinfo else "") + host + (":" + port if port else "")
    for key, value in (settings.get("OPTIONS") or {}).items():
        if key in _DJANGO_ONLY_OPTIONS or not isinstance(value, str | int | float) or isinstance(value, bool):
            continue
        params.append((key, str(value)))
    query = "&".join(f"{quote(k, safe='')}={quote(v, safe='')}" for k, v in params)
    return f"postgresql://{netloc}/{quote(str(name), safe='')}" + (f"?{query}" if query else "")


def driver_connection(alias: str) -> Any:
    """The DB-API connection under Django's connection `alias`, connected: psycopg 3 or sqlite3. psycopg2 is
    refused in one line (jobctl speaks psycopg 3 only)."""
    connection = _connection(alias)
    connection.ensure_connection()
    raw = connection.connection
    if type(raw).__module__.startswith("psycopg2"):
        raise ImproperlyConfigured(
            f"jobctl needs psycopg 3 for Django's PostgreSQL backend, but DATABASES[{alias!r}] runs on psycopg2: "
            "pip install 'psycopg[binary]' (Django prefers psycopg 3 when both are installed)")
    return raw
