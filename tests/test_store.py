"""Schema, migrations and database URLs on both backends."""

from __future__ import annotations

import re
import sqlite3
import threading
from pathlib import Path
from typing import Any

import psycopg
import pytest

import jobctl
from jobctl import database, urls
from jobctl.errors import DatabaseError
from jobctl.store import open_store, sqlfiles

PACKAGE = {"postgresql": "jobctl.store.postgres", "sqlite": "jobctl.store.sqlite"}


def test_migrate_is_idempotent(backend: str, request: pytest.FixtureRequest) -> None:
    url = request.getfixturevalue("pg_url" if backend == "postgresql" else "sqlite_url")
    store = open_store(urls.parse(url))
    latest = sqlfiles.migrations(PACKAGE[backend])[-1][0]
    if backend == "postgresql":
        assert store.schema_version() == (0, latest)
        assert store.migrate() == [f"{v:04d}_{name}" for v, name, _ in sqlfiles.migrations(PACKAGE["postgresql"])]
    else:
        store.migrate()  # SQLite creates the schema on first use; migrate then finds nothing to do
    assert store.migrate() == []
    assert store.schema_version() == (latest, latest)
    store.close()


def test_two_hosts_migrating_at_once_both_succeed(pg_url: str) -> None:
    results: list[Any] = []

    def run() -> None:
        store = open_store(urls.parse(pg_url))
        try:
            results.append(store.migrate())
        except Exception as exc:  # pragma: no cover - the failure we test against
            results.append(exc)
        finally:
            store.close()

    threads = [threading.Thread(target=run) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    applied = [f"{v:04d}_{name}" for v, name, _ in sqlfiles.migrations(PACKAGE["postgresql"])]
    assert sorted(results, key=len) == [[], [], [], applied]


def test_new_sqlite_file_gets_its_schema(tmp_path: Path) -> None:
    path = tmp_path / "fresh.sqlite3"
    jobctl.configure(database_url=f"sqlite:///{path}")
    try:
        assert jobctl.count() == 0
    finally:
        jobctl.configure(database_url=None)
    tables = {r[0] for r in sqlite3.connect(path).execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"jobctl_jobs", "jobctl_errors", "jobctl_processes", "jobctl_migrations"} <= tables
    assert all(t.startswith(("jobctl_", "sqlite_")) for t in tables)
    assert sqlite3.connect(path).execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_postgres_tables_are_prefixed(pg_url: str) -> None:
    open_store(urls.parse(pg_url)).migrate()
    with psycopg.connect(pg_url) as conn:
        names = [r[0] for r in conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = current_schema()")]
    assert names and all(n.startswith("jobctl_") for n in names)


def test_claim_index_is_partial_on_ready_rows(pg_url: str) -> None:
    open_store(urls.parse(pg_url)).migrate()
    with psycopg.connect(pg_url) as conn:
        defs = dict(conn.execute(
            "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = current_schema()").fetchall())
    assert "WHERE (state = 'ready'::text)" in defs["jobctl_jobs_ready_queue"]
    assert "UNIQUE" in defs["jobctl_jobs_active_key"]


@pytest.mark.parametrize(("url", "backend", "target_end"), [
    ("postgresql://u:p@h:5432/d", "postgresql", "postgresql://u:p@h:5432/d"),
    ("postgres://h/d", "postgresql", "postgresql://h/d"),
    ("postgresql+psycopg://h/d", "postgresql", "postgresql://h/d"),
    ("sqlite:///rel.db", "sqlite", "/rel.db"),
    ("sqlite:////abs/path.db", "sqlite", "/abs/path.db"),
])
def test_url_forms(url: str, backend: str, target_end: str) -> None:
    parsed = urls.parse(url)
    assert parsed.backend == backend
    assert parsed.target.endswith(target_end)


@pytest.mark.parametrize("url", ["mysql://u:hunter2@h/d", "sqlite://", "sqlite:///:memory:", "nonsense"])
def test_bad_urls_are_one_line_without_password(url: str) -> None:
    with pytest.raises(DatabaseError) as err:
        urls.parse(url)
    assert "hunter2" not in str(err.value)
    assert "\n" not in str(err.value)


def test_redact_hides_passwords() -> None:
    assert urls.redact("postgresql://bob:s3cret@db:5432/app") == "postgresql://bob:***@db:5432/app"
    assert urls.redact("postgresql://db/app") == "postgresql://db/app"
    assert "s3cret" not in repr(urls.parse("postgresql://bob:s3cret@db/app"))


@pytest.mark.parametrize(("url", "redacted"), [
    ("postgresql://user@host/db?password=SECRET", "postgresql://user@host/db?password=***"),
    ("postgresql://u@h/d?sslmode=require&PassWord=SECRET&x=1", "postgresql://u@h/d?sslmode=require&PassWord=***&x=1"),
    ("postgresql://u@h/d?pass%77ord=SECRET", "postgresql://u@h/d?pass%77ord=***"),
    ("postgresql://u@h/d?sslpassword=SECRET", "postgresql://u@h/d?sslpassword=***"),
    ("postgresql://u:SECRET@h/d?password=SECRET", "postgresql://u:***@h/d?password=***"),
    ("postgresql://u:SECRET@[bad", "postgresql://u:***@[bad"),
    ("postgresql://u:SECRET@h:notaport/d", "postgresql://u:***@h:notaport/d"),
    ("postgresql://u:SE@C/RET@h/d", "postgresql://u:***@h/d"),
    ("postgresql://u:@h/d", "postgresql://u:***@h/d"),
    ("password=SECRET host=h", "password=*** host=h"),
    ("host=h password = 'SE CR\\'ET' dbname=d", "host=h password = *** dbname=d"),
    ("postgresql:/u:SECRET@h/d", "postgresql:***@h/d"),
    ("postgresql://bob@db/app?sslmode=require", "postgresql://bob@db/app?sslmode=require"),
    ("sqlite:////tmp/a:b@c.db", "sqlite:////tmp/a:b@c.db"),
])
def test_redact_hides_every_form_of_password(url: str, redacted: str) -> None:
    assert urls.redact(url) == redacted
    assert "SECRET" not in repr(urls.DatabaseURL(url, "postgresql", url))


@pytest.mark.parametrize("url", [
    "password=SECRET host=h", "mysql://u@h/d?password=SECRET", "mysql://u:SECRET@[bad", "postgresql:/u:SECRET@h",
    "sqlite://?password=SECRET", "postgresql://u:SECRET@h/d\0",
])
def test_parse_errors_never_echo_a_password(url: str) -> None:
    with pytest.raises(DatabaseError) as err:
        urls.parse(url)
    assert "SECRET" not in str(err.value) and "\n" not in str(err.value)


def test_a_nul_in_a_url_is_refused() -> None:
    with pytest.raises(DatabaseError) as err:
        urls.parse("postgresql://u:SECRET@h/d\0")
    assert str(err.value) == "database URL 'postgresql://u:***@h/d\\x00' contains a NUL character"


@pytest.mark.parametrize(("url", "message"), [
    ("postgresql://u:SECRET@[bad/d", 'in URI: "postgresql://u:SECRET@[bad/d"'),
    ("postgresql://u@h/d?password=SEC%2FRET", "password SEC/RET and SEC%2FRET"),
    ("password='SE CRET' host=h", "bad: SE CRET"),
    ("postgresql://u@h/d?password=SECRET", "see postgresql://x:SECRET@y and password=SECRET"),
])
def test_scrub_removes_the_password_whatever_its_form(url: str, message: str) -> None:
    scrubbed = urls.scrub(message + "\nsecond line", urls.DatabaseURL(url, "postgresql", url))
    assert "SECRET" not in scrubbed and "SE CRET" not in scrubbed and "SEC/RET" not in scrubbed
    assert "***" in scrubbed and "\n" not in scrubbed


@pytest.mark.parametrize("url", [
    "postgresql://u:SECRET@[bad/d",
    "postgresql://u@127.0.0.1:1/d?password=SECRET&bogus=1",
    "postgresql://u@127.0.0.1:1/d?password=SECRET&sslmode=bogus",
    "postgresql://u@127.0.0.1:1/d?password=SECRET",
    "postgresql://u:SECRET@127.0.0.1:notaport/d",
])
def test_driver_errors_never_show_a_password(url: str) -> None:
    store = open_store(urls.parse(url))
    with pytest.raises(DatabaseError) as err:
        store.count()
    assert "SECRET" not in str(err.value) and "\n" not in str(err.value)


def test_unreachable_database_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    store = open_store(urls.parse("postgresql://bob:s3cret@127.0.0.1:1/app"))
    with pytest.raises(DatabaseError) as err:
        store.count()
    assert "s3cret" not in str(err.value) and "postgresql://bob:***@127.0.0.1:1/app" in str(err.value)


def test_url_resolution_order(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    for var in ("JOBCTL_DATABASE_URL", "DATABASE_URL", "JOBCTL_CONFIG", "JOBCTL_ENV"):
        monkeypatch.delenv(var, raising=False)
    assert database.resolve_url().target == str(tmp_path / "jobctl.sqlite3")
    monkeypatch.setenv("DATABASE_URL", "sqlite:///from_database_url.db")
    assert database.resolve_url().target.endswith("from_database_url.db")
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "queue.yml").write_text("development:\n  database: sqlite:///from_config.db\n")
    assert database.resolve_url().target.endswith("from_config.db")
    monkeypatch.setenv("JOBCTL_DATABASE_URL", "sqlite:///from_env.db")
    assert database.resolve_url().target.endswith("from_env.db")
    jobctl.configure(database_url="sqlite:///from_configure.db")
    try:
        assert database.resolve_url().target.endswith("from_configure.db")
        assert database.resolve_url("sqlite:///from_cli.db").target.endswith("from_cli.db")
    finally:
        jobctl.configure(database_url=None)


@pytest.mark.parametrize("package", sorted(PACKAGE.values()))
def test_every_named_query_is_used_by_its_backend(package: str) -> None:
    """No dead SQL ships, and no query exists only for tests: each one is named by its backend's code."""
    folder = Path(__file__).resolve().parent.parent / package.replace(".", "/")
    code = "\n".join(p.read_text() for p in folder.glob("*.py"))
    named = set(re.findall(r'"(\w+)"', code)) | {f"claim_{kind}{suffix}" for kind in ("any", "queue", "prefix")
                                                 for suffix in ("", "_paused")
                                                 if 'f"claim_{selector.kind}' in code}
    assert sorted(set(sqlfiles.load(package)) - named) == []


def test_postgres_connections_notice_a_dead_link(pg_url: str) -> None:
    """Keepalives and tcp_user_timeout unless the URL sets its own: a dropped link errors within ~15 s."""
    from jobctl.store.postgres.connection import connect

    with connect(urls.parse(pg_url)) as conn:
        dsn = dict(item.split("=", 1) for item in conn.info.dsn.split())
    assert {k: dsn.get(k) for k in ("keepalives", "keepalives_idle", "keepalives_interval", "keepalives_count",
                                    "tcp_user_timeout")} == {"keepalives": "1", "keepalives_idle": "5",
                                                             "keepalives_interval": "2", "keepalives_count": "3",
                                                             "tcp_user_timeout": "10000"}
    own = f"{pg_url}&keepalives_idle=30&tcp_user_timeout=2500"
    with connect(urls.parse(own)) as conn:
        dsn = dict(item.split("=", 1) for item in conn.info.dsn.split())
    assert (dsn["keepalives_idle"], dsn["tcp_user_timeout"], dsn["keepalives_count"]) == ("30", "2500", "3")
