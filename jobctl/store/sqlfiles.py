"""A backend's SQL: named queries and migrations, loaded from the `.sql` files of its package's `sql/`.

Each query starts with `-- name: NAME` and a one-line description; a name defined twice is an error.
Only the backend's own modules read these: nothing outside `jobctl.store` names a query.
"""

from __future__ import annotations

import re
from functools import cache
from importlib import resources

_NAME = re.compile(r"^-- name: (\w+)\s*$", re.MULTILINE)


@cache
def load(package: str) -> dict[str, str]:
    """Every named query of `package`'s `sql/*.sql` files, by name (comment lines removed)."""
    queries: dict[str, str] = {}
    folder = resources.files(package) / "sql"
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if not entry.name.endswith(".sql"):
            continue
        parts = _NAME.split(entry.read_text())
        for name, body in zip(parts[1::2], parts[2::2], strict=True):
            if name in queries:
                raise ValueError(f"query {name!r} is defined twice in {package}")
            sql = "\n".join(line for line in body.splitlines() if not line.startswith("--")).strip()
            queries[name] = sql.rstrip(";")
    return queries


@cache
def migrations(package: str) -> tuple[tuple[int, str, str], ...]:
    """`package`'s migrations as (version, name, sql), in version order."""
    folder = resources.files(package) / "sql" / "migrations"
    found = []
    for entry in folder.iterdir():
        match = re.fullmatch(r"(\d+)_(\w+)\.sql", entry.name)
        if match:
            found.append((int(match[1]), match[2], entry.read_text()))
    return tuple(sorted(found))
