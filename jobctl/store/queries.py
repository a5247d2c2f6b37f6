"""Named SQL queries, loaded from the `.sql` files shipped in the package."""

from __future__ import annotations

import re
from functools import cache
from importlib import resources

_NAME = re.compile(r"^-- name: (\w+)\s*$", re.MULTILINE)


@cache
def load(backend: str) -> dict[str, str]:
    """Every named query of a backend's `.sql` files (runtime, operator), by name."""
    queries: dict[str, str] = {}
    folder = resources.files("jobctl.store") / "sql" / backend
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if not entry.name.endswith(".sql"):
            continue
        parts = _NAME.split(entry.read_text())
        for name, body in zip(parts[1::2], parts[2::2], strict=True):
            if name in queries:
                raise ValueError(f"query {name!r} is defined twice in {backend}")
            sql = "\n".join(line for line in body.splitlines() if not line.startswith("--")).strip()
            queries[name] = sql.rstrip(";")
    return queries


@cache
def migrations(backend: str) -> tuple[tuple[int, str, str], ...]:
    """The backend's migrations as (version, name, sql), in version order."""
    folder = resources.files("jobctl.store") / "sql" / backend / "migrations"
    found = []
    for entry in folder.iterdir():
        match = re.fullmatch(r"(\d+)_(\w+)\.sql", entry.name)
        if match:
            found.append((int(match[1]), match[2], entry.read_text()))
    return tuple(sorted(found))
