"""`jobctl.using()` with SQLAlchemy 2 (an optional dependency): a Session or a Connection on psycopg 3 or
pysqlite; the job exists iff SQLAlchemy's transaction commits, seen from a second connection."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

import jobctl
import jobctl.database
from jobctl import urls
from tests.jobs_for_tests import Echo

sqlalchemy = pytest.importorskip("sqlalchemy")
from sqlalchemy import text  # noqa: E402
from sqlalchemy.orm import Session  # noqa: E402

pytestmark = pytest.mark.usefixtures("configured")


@pytest.fixture
def engine(configured: str) -> Iterator[Any]:
    parsed = urls.parse(configured)
    if parsed.backend == "postgresql":
        url = "postgresql+psycopg://" + configured.split("://", 1)[1]
    else:
        url = f"sqlite:///{parsed.target}"
    eng = sqlalchemy.create_engine(url)
    with eng.begin() as c:
        c.execute(text("CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT NOT NULL)"))
    try:
        yield eng
    finally:
        eng.dispose()


def users(engine: Any) -> int:
    with engine.connect() as c:
        return int(c.execute(text("SELECT count(*) FROM users")).scalar_one())


def test_session_commit_and_rollback(engine: Any) -> None:
    with Session(engine) as session:
        session.execute(text("INSERT INTO users (id, email) VALUES (1, 'a@example.com')"))
        with jobctl.using(session) as given:
            assert given is session
            handle = Echo.perform_later(1)
            assert handle.state == "ready"  # read through the session's own transaction
        assert jobctl.count() == 0  # not committed yet: invisible to jobctl's own connection
        session.rollback()
    assert (users(engine), jobctl.count()) == (0, 0)
    with Session(engine) as session, session.begin():
        session.execute(text("INSERT INTO users (id, email) VALUES (2, 'b@example.com')"))
        with jobctl.using(session):
            jobctl.perform_all_later([Echo(2), Echo(3)])
            Echo.perform_later(4)
    assert (users(engine), jobctl.count()) == (1, 3)


def test_connection_commit_and_rollback(engine: Any) -> None:
    with engine.connect() as conn:
        with jobctl.using(conn):
            Echo.perform_later(1)
        conn.rollback()
        with jobctl.using(conn):
            Echo.perform_later(2)
        conn.commit()
    [job] = jobctl.database.get_store().list_jobs()
    assert job.arguments["args"] == [2]


def test_another_database_is_refused(engine: Any, tmp_path: Any, backend: str) -> None:
    other = sqlalchemy.create_engine(f"sqlite:///{tmp_path / 'other.db'}")
    with Session(other) as session, pytest.raises(ValueError, match="using"):
        with jobctl.using(session):
            pass
    other.dispose()
