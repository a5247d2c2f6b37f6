"""Shared fixtures: every backend test runs on a real SQLite file and a real PostgreSQL.

PostgreSQL comes from JOBCTL_TEST_DATABASE_URL (set by `make test`, which starts a throwaway
cluster); without it, a cluster is started here for the session. Each test gets its own
schema (PostgreSQL, through search_path) or its own file (SQLite).
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import psycopg
import pytest

import jobctl
from jobctl import urls
from jobctl.store import open_store

sys.path.insert(0, str(Path(__file__).parent))
from pgcluster import Cluster

BACKENDS = ("sqlite", "postgresql")


@pytest.fixture(scope="session")
def pg_server() -> Iterator[str]:
    """The URL of a PostgreSQL server for this test session."""
    url = os.environ.get("JOBCTL_TEST_DATABASE_URL")
    if url:
        yield url
        return
    # Not under pytest's basetemp: pytest keeps /tmp/pytest-of-USER at mode 0700 (and re-applies
    # it when another session starts), and the postgres user must reach the data directory.
    root = Path(tempfile.mkdtemp(prefix="jobctl-test-pg-"))
    os.chmod(root, 0o755)
    cluster = Cluster(root / "cluster")
    try:
        yield cluster.start()
    finally:
        cluster.destroy()
        shutil.rmtree(root, ignore_errors=True)


def _with_schema(url: str, schema: str) -> str:
    sep = "&" if "?" in url else "?"
    return f"{url}{sep}options={quote(f'-csearch_path={schema}')}"


@pytest.fixture
def pg_url(pg_server: str) -> Iterator[str]:
    """A PostgreSQL URL whose search_path is a fresh, empty schema (dropped afterwards)."""
    schema = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(pg_server, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    try:
        yield _with_schema(pg_server, schema)
    finally:
        with psycopg.connect(pg_server, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA {schema} CASCADE")


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """A URL for a new SQLite file."""
    return f"sqlite:///{tmp_path / 'jobs.sqlite3'}"


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    """The backend under test: each test using it runs on both."""
    return str(request.param)


@pytest.fixture
def database_url(backend: str, request: pytest.FixtureRequest) -> str:
    """A fresh, migrated database of the backend under test."""
    url = str(request.getfixturevalue("pg_url" if backend == "postgresql" else "sqlite_url"))
    store = open_store(urls.parse(url))
    store.migrate()
    store.close()
    return url


@pytest.fixture
def configured(database_url: str) -> Iterator[str]:
    """jobctl configured for a fresh database of the backend under test."""
    jobctl.configure(database_url=database_url)
    try:
        yield database_url
    finally:
        jobctl.configure(database_url=None)


def raw_connect(url: str) -> object:
    """A plain driver connection (not autocommit) to the database behind a jobctl URL."""
    import sqlite3

    parsed = urls.parse(url)
    if parsed.backend == "postgresql":
        return psycopg.connect(parsed.target)
    return sqlite3.connect(parsed.target)
