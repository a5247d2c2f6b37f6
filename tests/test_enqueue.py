"""The library API on both backends: enqueue, unique keys, transactions, inspection."""

from __future__ import annotations

import datetime as dt
import re
import time
from pathlib import Path
from typing import Any

import psycopg
import pytest

import jobctl
from jobctl import database, urls
from jobctl.job import build_job
from jobctl.store import open_store
from tests.conftest import raw_connect
from tests.jobs_for_tests import AsyncDouble, Echo, Mailer

pytestmark = pytest.mark.usefixtures("configured")


def test_perform_later_stores_a_ready_job() -> None:
    handle = Echo.perform_later(1, "two", flag=True)
    assert isinstance(handle.id, int)
    assert handle.state == "ready"
    info = jobctl.get_job(handle.id)
    assert info.to_dict() == {
        "id": handle.id,
        "class": "tests.jobs_for_tests:Echo",
        "queue": "default",
        "priority": 0,
        "state": "ready",
        "arguments": {"args": [1, "two"], "kwargs": {"flag": True}},
        "attempts": 0,
        "errors": [],
        "key": None,
        "progress": None,
        "enqueued_at": info.to_dict()["enqueued_at"],
        "scheduled_at": info.to_dict()["scheduled_at"],
        "claimed_at": None,
        "finished_at": None,
        "crashes": 0,
        "result": None,
        "batch": None,
        "dependencies": [],
        "dependents": [],
    }
    assert info.enqueued_at.tzinfo is not None
    assert info.to_dict()["enqueued_at"].endswith("Z")


def test_class_defaults_and_set_overrides() -> None:
    a = jobctl.get_job(Mailer.perform_later("x").id)
    assert (a.queue, a.priority) == ("mailers", 5)
    b = jobctl.get_job(Mailer.set(queue="urgent", priority=-1).perform_later("x").id)
    assert (b.queue, b.priority) == ("urgent", -1)


def test_wait_and_wait_until_schedule_the_job() -> None:
    later = Echo.set(wait=dt.timedelta(minutes=5)).perform_later()
    assert later.state == "scheduled"
    info = jobctl.get_job(later.id)
    assert dt.timedelta(minutes=4) < info.scheduled_at - info.enqueued_at <= dt.timedelta(minutes=5, seconds=1)
    until = dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)
    at = Echo.set(wait_until=until).perform_later()
    assert at.state == "scheduled"
    assert abs(jobctl.get_job(at.id).scheduled_at - until) < dt.timedelta(milliseconds=1)
    past = Echo.set(wait_until=dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)).perform_later()
    assert past.state == "ready"
    assert Echo.set(wait=0).perform_later().state == "ready"


def test_set_rejects_bad_options() -> None:
    with pytest.raises(TypeError, match="aware datetime"):
        Echo.set(wait_until=dt.datetime(2030, 1, 1))
    with pytest.raises(TypeError, match="timedelta or a number"):
        Echo.set(wait="soon")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="queue"):
        Echo.set(queue="")
    assert jobctl.count() == 0


WAIT_BOUND = "wait= expects a finite number of seconds within 100 years (3155760000 seconds either way), got "


@pytest.mark.parametrize(
    "wait", [float("nan"), float("inf"), -float("inf"), 99999999999 * 604800, 10**400, dt.timedelta.max]
)
def test_set_refuses_a_wait_no_clock_can_hold(wait: Any) -> None:
    with pytest.raises(ValueError) as caught:
        Echo.set(wait=wait)
    assert str(caught.value).startswith(WAIT_BOUND) and "\n" not in str(caught.value)
    assert jobctl.count() == 0


def test_the_longest_wait_is_accepted() -> None:
    assert Echo.set(wait=3155760000).perform_later().state == "scheduled"
    assert Echo.set(wait=-5).perform_later().state == "ready"


@pytest.mark.parametrize("priority", [2**31, -(2**31) - 1, 1099511627776])
def test_set_refuses_a_priority_outside_32_bits(priority: int) -> None:
    with pytest.raises(ValueError) as caught:
        Echo.set(priority=priority)
    assert str(caught.value) == (
        f"priority= expects an integer from -2147483648 to 2147483647 (stored in 32 bits), got {priority}"
    )
    assert jobctl.get_job(Echo.set(priority=2**31 - 1).perform_later().id).priority == 2**31 - 1
    assert jobctl.get_job(Echo.set(priority=-(2**31)).perform_later().id).priority == -(2**31)


@pytest.mark.parametrize("option", ["queue", "key"])
def test_set_refuses_a_nul_in_queue_or_key(option: str) -> None:
    with pytest.raises(ValueError) as caught:
        Echo.set(**{option: "a\0b"})
    assert str(caught.value) == f"{option}= cannot hold a NUL character (the database cannot store it), got 'a\\x00b'"
    assert jobctl.count() == 0


class _NulQueue(Echo):
    queue = "mail\0ers"


class _HugePriority(Echo):
    priority = 2**40


class _NoQueue(Echo):
    queue = ""


def test_class_level_queue_and_priority_are_checked_at_enqueue() -> None:
    with pytest.raises(ValueError, match=r"test_enqueue:_NulQueue\.queue cannot hold a NUL character"):
        _NulQueue.perform_later()
    with pytest.raises(ValueError, match=r"test_enqueue:_HugePriority\.priority expects an integer from "
                       r"-2147483648 to 2147483647 \(stored in 32 bits\), got 1099511627776$"):
        _HugePriority.perform_later()
    with pytest.raises(ValueError, match=r"test_enqueue:_NoQueue\.queue expects a non-empty string, got ''$"):
        _NoQueue.perform_later()
    assert jobctl.count() == 0


def test_serialization_error_names_the_argument_and_writes_nothing() -> None:
    with pytest.raises(jobctl.SerializationError, match=r"args\[1\]: builtins.object is not a supported type"):
        Echo.perform_later(1, object())
    with pytest.raises(jobctl.SerializationError, match=r"kwargs\['data'\]\['when'\]\[0\]"):
        Echo.perform_later(data={"when": [{1, 2}]})
    with pytest.raises(jobctl.SerializationError, match="keys must be str"):
        Echo.perform_later({1: "a"})
    with pytest.raises(jobctl.SerializationError, match="not a finite number"):
        Echo.perform_later(float("nan"))
    with pytest.raises(jobctl.SerializationError):
        jobctl.perform_all_later([Echo(1), Echo(object())])
    assert jobctl.count() == 0


def test_same_key_leaves_one_job() -> None:
    first = Echo.set(key="report:7").perform_later(1)
    second = Echo.set(key="report:7").perform_later(2)
    assert first.created and not second.created
    assert second.id == first.id
    assert jobctl.count() == 1
    assert jobctl.get_job(first.id).arguments["args"] == [1]
    other = Echo.set(key="report:8").perform_later(3)
    assert other.id != first.id
    assert jobctl.count() == 2


def test_key_frees_when_the_job_is_no_longer_active(database_url: str) -> None:
    first = Echo.set(key="k").perform_later()
    conn: Any = raw_connect(database_url)
    conn.execute("UPDATE jobctl_jobs SET state = 'finished' WHERE id = " + str(int(first.id)))
    conn.commit()
    conn.close()
    again = Echo.set(key="k").perform_later()
    assert again.created and again.id != first.id


def test_bulk_with_keys_skips_duplicates_in_batch_and_in_table() -> None:
    Echo.set(key="a").perform_later()
    created = jobctl.perform_all_later(
        [Echo.set(key="a")(1), Echo.set(key="b")(2), Echo.set(key="b")(3), Echo(4), Echo(5)]
    )
    assert created == 3
    assert jobctl.count() == 4


def test_perform_all_later_mixes_plain_scheduled_and_queues() -> None:
    created = jobctl.perform_all_later(
        [Echo(1), Mailer("a"), Echo.set(wait=3600)(2), Echo.set(queue="other", priority=9)(3)]
    )
    assert created == 4
    assert jobctl.count(state="ready") == 3
    assert jobctl.count(state="scheduled") == 1
    assert jobctl.count(queue="mailers") == 1
    assert jobctl.count(state="ready", queue="other") == 1
    assert jobctl.perform_all_later([]) == 0


class Routed(Echo):
    """Routes itself by argument, as an application may by overriding to_new_job."""

    def to_new_job(self) -> Any:
        import dataclasses

        return dataclasses.replace(super().to_new_job(), queue=f"tenant-{self._args[0]}")


def test_perform_all_later_goes_through_an_overridden_to_new_job() -> None:
    assert jobctl.perform_all_later([Routed(1), Routed(2), Echo(3)]) == 3
    assert jobctl.count(queue="tenant-1") == 1 and jobctl.count(queue="tenant-2") == 1
    assert jobctl.count(queue=Echo.queue) == 1


def test_perform_all_later_refuses_what_is_not_a_job_and_writes_nothing() -> None:
    with pytest.raises(TypeError, match="perform_all_later expects Job instances, got 42"):
        jobctl.perform_all_later([Echo(1), 42])  # type: ignore[list-item]
    assert jobctl.count() == 0


def test_count_rejects_unknown_state() -> None:
    with pytest.raises(ValueError, match="expected one of scheduled, ready"):
        jobctl.count(state="done")


def test_get_job_unknown_id_raises() -> None:
    with pytest.raises(jobctl.JobNotFound, match="job 999999 does not exist"):
        jobctl.get_job(999999)


def test_using_rollback_leaves_no_job_and_commit_leaves_one(database_url: str) -> None:
    conn: Any = raw_connect(database_url)
    with jobctl.using(conn):
        handle = Echo.perform_later("in tx")
        assert handle.state == "ready"  # visible through the caller's own connection
    assert jobctl.count() == 0  # not committed: invisible to everyone else
    conn.rollback()
    assert jobctl.count() == 0
    with pytest.raises(jobctl.JobNotFound):
        jobctl.get_job(handle.id)

    with jobctl.using(conn):
        handle = Echo.perform_later("committed")
        assert jobctl.perform_all_later([Echo(1), Echo.set(key="u")(2)]) == 2
    conn.commit()
    assert jobctl.count() == 3
    assert jobctl.get_job(handle.id).arguments["args"] == ["committed"]
    conn.close()


def test_using_rejects_a_connection_of_the_wrong_kind(backend: str, tmp_path: Any) -> None:
    import sqlite3

    wrong: Any = sqlite3.connect(tmp_path / "x.db") if backend == "postgresql" else object()
    with pytest.raises(ValueError, match="using\\(\\) needs a"), jobctl.using(wrong):
        pass


def test_using_rejects_another_sqlite_file(sqlite_url: str, tmp_path: Any) -> None:
    import sqlite3

    jobctl.configure(database_url=sqlite_url)
    other = sqlite3.connect(tmp_path / "other.db")
    with pytest.raises(ValueError, match="not to jobctl's database"), jobctl.using(other):
        pass
    other.close()


def test_using_rejects_another_postgres_database(pg_server: str, pg_url: str) -> None:
    import psycopg

    jobctl.configure(database_url=pg_url)
    database.get_store().migrate()
    with psycopg.connect(pg_server, autocommit=True) as admin:
        admin.execute("DROP DATABASE IF EXISTS jobctl_other")
        admin.execute("CREATE DATABASE jobctl_other")
    try:
        other = psycopg.connect(pg_server.rsplit("/", 1)[0] + "/jobctl_other")
        with pytest.raises(ValueError, match="not to jobctl's database"):
            with jobctl.using(other):
                pass
        other.close()
    finally:
        with psycopg.connect(pg_server, autocommit=True) as admin:
            admin.execute("DROP DATABASE jobctl_other")


def test_perform_now_runs_inline_with_the_same_argument_rules() -> None:
    when = dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
    args, kwargs = Echo.perform_now((1, 2), when=when)
    assert args == ((1, 2),) and kwargs == {"when": when}
    assert AsyncDouble.perform_now(21) == 42
    with pytest.raises(jobctl.SerializationError):
        Echo.perform_now(object())
    assert jobctl.count() == 0


def test_current_is_reset_before_each_job() -> None:
    seen: list[Any] = []

    class Peek(jobctl.Job):
        def perform(self, value: int) -> None:
            seen.append(getattr(jobctl.current, "user", None))
            jobctl.current.user = value

    Peek.perform_now(1)
    Peek.perform_now(2)
    assert seen == [None, None]


def test_a_stored_job_rebuilds_and_runs() -> None:
    handle = Echo.perform_later(dt.date(2026, 1, 1), n=3)
    info = jobctl.get_job(handle.id)
    job = build_job(info.class_path, info.arguments)
    assert job.execute() == ((dt.date(2026, 1, 1),), {"n": 3})


def test_bulk_enqueue_is_much_faster_than_single(backend: str) -> None:
    """Bulk must be one call and at least 3× the single-insert rate (a wide ratio, not a time)."""
    singles = 300
    start = time.perf_counter()
    for i in range(singles):
        Echo.perform_later(i)
    single_rate = singles / (time.perf_counter() - start)
    start = time.perf_counter()
    assert jobctl.perform_all_later([Echo(i) for i in range(10_000)]) == 10_000
    bulk_rate = 10_000 / (time.perf_counter() - start)
    assert jobctl.count() == singles + 10_000
    assert bulk_rate >= 3 * single_rate, (backend, single_rate, bulk_rate)


def test_a_failed_wake_up_does_not_fail_a_committed_bulk_enqueue(backend: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """On jobctl's own connection the COPY commits by itself; the NOTIFY after it is best effort."""
    from jobctl.store.postgres import connection as postgres

    if backend != "postgresql":
        pytest.skip("NOTIFY is PostgreSQL's")
    monkeypatch.setitem(postgres.Q, "notify_queues", "SELECT no_such_function()")
    assert jobctl.perform_all_later([Echo(1), Echo(2)]) == 2
    assert jobctl.count(state="ready") == 2
    assert Echo.perform_later(3).state == "ready"  # the connection still works


def test_bulk_enqueue_keeps_awkward_text_intact() -> None:
    awkward = ["tab\there", "back\\slash", "new\nline", "cr\rx", 'quote"s', "ünï\\tcode", "\\N"]
    assert jobctl.perform_all_later([Echo(text, key=text) for text in awkward]) == len(awkward)
    from jobctl import database

    jobs = database.get_store().list_jobs(limit=100)
    assert sorted((j.arguments["args"][0], j.arguments["kwargs"]["key"]) for j in jobs) == sorted(
        (t, t) for t in awkward)


def test_readme_using_example_runs_as_written(pg_url: str) -> None:
    """README's "Inside your own transaction" block, run with only its URL pointed at the test database."""
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    section = readme[readme.index("**Inside your own transaction.**"):]
    start = section.index("```python\n") + len("```python\n")
    code = section[start:section.index("\n```", start)]
    code = re.sub(r'^URL = "[^"]*"', f"URL = {pg_url!r}", code, count=1, flags=re.M)
    s = open_store(urls.parse(pg_url))
    s.migrate()
    s.close()
    with psycopg.connect(urls.parse(pg_url).target, autocommit=True) as conn:
        conn.execute("CREATE TABLE users (id serial PRIMARY KEY, email text NOT NULL)")
    try:
        exec(compile(code, "README.md", "exec"), {"__name__": "readme_example"})
        assert jobctl.count() == 1
        with psycopg.connect(urls.parse(pg_url).target) as conn:
            assert conn.execute("SELECT count(*) FROM users").fetchone() == (1,)
    finally:
        jobctl.configure(database_url=None)


def test_option_errors_are_value_errors_the_cli_prints_as_one_line() -> None:
    with pytest.raises(jobctl.JobctlError) as caught:
        Echo.set(priority=2**40)
    assert isinstance(caught.value, ValueError) and caught.value.exit_code == 2


def test_bulk_enqueue_checks_a_class_queue_and_priority_too() -> None:
    class BadQueue(jobctl.Job):
        queue = "a\x00b"

        def perform(self) -> None: ...

    class BadPriority(jobctl.Job):
        priority = 2**40

        def perform(self) -> None: ...

    for cls, text in ((BadQueue, "queue"), (BadPriority, "priority")):
        with pytest.raises(jobctl.JobctlError, match=text):
            jobctl.perform_all_later([Echo(1), cls()])
    assert jobctl.count() == 0  # nothing written


def test_around_job_hooks_wrap_every_run() -> None:
    from contextlib import contextmanager

    from jobctl.records import Selector
    from jobctl.runtime import execution

    seen: list[tuple[str, int | None]] = []

    @contextmanager
    def around(job: jobctl.Job) -> Any:
        seen.append(("enter", job.job_id))
        yield
        seen.append(("exit", job.job_id))

    execution.register_around_job(around)
    session = database.get_store().session()
    try:
        handle = Echo.perform_later(1)
        [claimed] = session.claim(Selector("any"), 1, token=5, process_id=1)
        outcome = execution.Executor().run(claimed, executions=1)
        assert outcome.state == "finished" and seen == [("enter", handle.id), ("exit", handle.id)]
    finally:
        execution._around_job.remove(around)
        session.close()
