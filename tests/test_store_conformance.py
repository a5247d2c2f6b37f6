"""The store's behaviour contract: every method of `Store`, `Session` and `Listener`, run on both backends
with the same inputs and the same expected results (states, counts, ordering, fencing, slots).

A rule changed on one backend and not the other fails here. Each test names the methods it covers
(`@covers`), and `test_every_store_method_is_covered` fails when a method of the interface has no test.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import inspect
import json
import select
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import psycopg
import pytest

from jobctl import urls
from jobctl.errors import SchemaOutdated
from jobctl.records import (
    STATES,
    BatchCallback,
    ClaimedJob,
    Dependency,
    Limit,
    NewJob,
    ReadyJobs,
    RecurringRow,
    RunError,
    Selector,
)
from jobctl.store import PROBE_PREFIX, Listener, Session, Store, open_store, scratch_database

F = TypeVar("F", bound=Callable[..., Any])
COVERED: set[str] = set()
TOKEN = 7
PID = 1
ERR = RunError("app.Boom", "it broke", "Traceback: ...")


def covers(*names: str) -> Callable[[F], F]:
    """Record which interface methods a test exercises (`Store.insert_job`, `Session.claim`, …)."""
    COVERED.update(names)
    return lambda test: test


@pytest.fixture
def store(database_url: str) -> Iterator[Store]:
    s = open_store(urls.parse(database_url))
    try:
        yield s
    finally:
        s.close()


@pytest.fixture
def session(store: Store) -> Iterator[Session]:
    s = store.session()
    try:
        yield s
    finally:
        s.close()


def job(queue: str = "default", priority: int = 0, *, key: str | None = None, delay: float = 0.0,
        limit: Limit | None = None, args: list[Any] | None = None, cls: str = "app.jobs:Work") -> NewJob:
    return NewJob(class_path=cls, queue=queue, priority=priority, arguments=json.dumps({"args": args or []}),
                  key=key, delay=delay, limit=limit)


def add(store: Store, *jobs: NewJob) -> list[int]:
    return [store.insert_job(j).id for j in jobs]


def claim_all(session: Session, selector: Selector | None = None, limit: int = 100) -> list[ClaimedJob]:
    return session.claim(selector or Selector("any"), limit, token=TOKEN, process_id=PID)


def states(store: Store, ids: list[int]) -> list[str | None]:
    return [store.job_state(i) for i in ids]


# -- schema and connections ----------------------------------------------------------------------


@covers("Store.migrate", "Store.schema_version", "Store.ensure_schema", "Store.close")
def test_schema(backend: str, database_url: str, tmp_path: Path, pg_server: str) -> None:
    store = open_store(urls.parse(database_url))
    version, latest = store.schema_version()
    assert version == latest >= 4
    assert store.migrate() == []
    store.ensure_schema()
    store.close()
    store.close()  # twice is fine
    # A database without jobctl's tables: one line naming `jobctl db migrate` (SQLite files get theirs).
    (tmp_path / "empty").mkdir()
    with scratch_database(pg_server if backend == "postgresql" else None, tmp_path / "empty") as empty_url:
        empty = open_store(urls.parse(empty_url))
        try:
            assert empty.schema_version() == (0, latest)
            if backend == "postgresql":
                with pytest.raises(SchemaOutdated, match=r"has no jobctl schema; this jobctl needs schema \d+: "
                                                         r"run `jobctl db migrate`"):
                    empty.ensure_schema()
                with pytest.raises(SchemaOutdated):
                    empty.count()
                assert len(empty.migrate()) == latest
            empty.ensure_schema()
            assert empty.count() == 0
        finally:
            empty.close()


@covers("Store.check_connection")
def test_check_connection(backend: str, database_url: str, store: Store, tmp_path: Path) -> None:
    target = urls.parse(database_url).target
    own: Any = psycopg.connect(target) if backend == "postgresql" else sqlite3.connect(target)
    wrong: Any = sqlite3.connect(tmp_path / "other.db") if backend == "postgresql" else psycopg
    try:
        store.check_connection(own)
        with pytest.raises(ValueError, match="using\\(\\) needs a"):
            store.check_connection(wrong)
        if backend == "sqlite":
            other = sqlite3.connect(tmp_path / "other.db")
            with pytest.raises(ValueError, match="not to jobctl's database"):
                store.check_connection(other)
            other.close()
    finally:
        own.close()
        if backend == "postgresql":
            wrong.close()


# -- enqueueing ----------------------------------------------------------------------------------


@covers("Store.insert_job", "Store.job_state", "Store.count")
def test_insert_job_states_and_unique_keys(store: Store) -> None:
    ready = store.insert_job(job())
    later = store.insert_job(job("mail", delay=3600))
    assert (ready.state, ready.created, later.state) == ("ready", True, "scheduled")
    first = store.insert_job(job(key="k1"))
    again = store.insert_job(job(key="k1", queue="other"))
    assert again == type(again)(first.id, "ready", False)
    assert store.job_state(first.id) == "ready" and store.job_state(10**9) is None
    assert store.count() == 3 and store.count(state="ready") == 2 and store.count(queue="mail") == 1
    assert store.count(state="scheduled", queue="mail") == 1 and store.count(state="failed") == 0


@covers("Store.insert_job", "Session.finish")
def test_a_key_is_free_again_once_its_job_ended(store: Store, session: Session) -> None:
    first = store.insert_job(job(key="once"))
    claim_all(session)
    session.finish([first.id], token=TOKEN, process_id=PID)
    second = store.insert_job(job(key="once"))
    assert second.created and second.id != first.id


@covers("Store.insert_job")
def test_concurrency_limits_block_and_discard(store: Store) -> None:
    two = Limit("acct/1", 2, 180.0, False)
    a, b, c = (store.insert_job(job(limit=two)) for _ in range(3))
    assert [a.state, b.state, c.state] == ["ready", "ready", "blocked"]
    one = Limit("singleton", 1, 180.0, True)
    kept, dropped = store.insert_job(job(limit=one)), store.insert_job(job(limit=one))
    assert (kept.state, dropped.state) == ("ready", "discarded")
    [info] = store.get_jobs([dropped.id])
    assert [(e.attempt, e.error_class) for e in info.errors] == [(0, "jobctl.ConcurrencyLimitReached")]
    assert info.errors[0].message == one.conflict_reason


@covers("Store.insert_jobs")
def test_insert_jobs_in_one_call(store: Store) -> None:
    ready = ReadyJobs(kinds=[("default", "app.jobs:Work", 0), ("mail", "app.jobs:Mail", 3)], kind=[0, 1, 0],
                      arguments=['{"args": [1]}', '{"args": [2]}', '{"args": ["tab\\there"]}'])
    held = store.insert_job(job(key="dup"))
    other = [job(key="dup"), job(key="fresh"), job(delay=600.0), job(limit=Limit("bulk", 1, 180.0, False)),
             job(limit=Limit("bulk", 1, 180.0, False))]
    assert store.insert_jobs(ready, other) == 3 + 4
    assert store.count() == 1 + 3 + 4
    assert store.count(state="ready") == 1 + 3 + 1 + 1 and store.count(state="scheduled") == 1
    assert store.count(state="blocked") == 1 and store.count(queue="mail") == 1
    waiting = store.waiting_jobs()
    assert [j.arguments for j in waiting[1:4]] == [{"args": [1]}, {"args": [2]}, {"args": ["tab\there"]}]
    assert held.id == waiting[0].id
    assert store.insert_jobs(ReadyJobs(), [job(key="dup")]) == 0


@covers("Store.insert_job", "Store.insert_jobs", "Store.job_state", "Store.get_jobs")
def test_enqueue_through_the_callers_transaction(backend: str, database_url: str, store: Store) -> None:
    target = urls.parse(database_url).target
    conn: Any = psycopg.connect(target) if backend == "postgresql" else sqlite3.connect(target)
    try:
        if backend == "sqlite":
            conn.execute("BEGIN")
        one = store.insert_job(job(), conn)
        assert store.insert_jobs(ReadyJobs([("default", "app.jobs:Work", 0)], [0], ["{}"]), [job(key="x")], conn) == 2
        assert store.job_state(one.id, conn) == "ready" and store.get_jobs([one.id], conn)[0].id == one.id
        assert store.job_state(one.id) is None  # not committed: invisible to everyone else
        conn.rollback()
        assert store.count() == 0
        if backend == "sqlite":
            conn.execute("BEGIN")
        kept = store.insert_job(job(), conn)
        conn.commit()
        assert store.job_state(kept.id) == "ready" and store.count() == 1
    finally:
        conn.close()


# -- claiming and ending runs --------------------------------------------------------------------


@covers("Session.claim")
def test_claim_order_selectors_and_hint(store: Store, session: Session) -> None:
    ids = add(store, job("b", 5), job("a", 0), job("a", 5), job("a_x%", 1), job("ab", 2), job("a", 0))
    assert [j.id for j in session.claim(Selector("queue", "a"), 2, token=TOKEN, process_id=PID)] == [ids[1], ids[5]]
    # Prefixes match literally: `a_x%` is no pattern.
    assert [j.queue for j in claim_all(session, Selector("prefix", "a_x%"))] == ["a_x%"]
    rest = claim_all(session, Selector("prefix", "a"))
    assert [j.id for j in rest] == [ids[4], ids[2]]  # priority, then age
    assert [j.id for j in claim_all(session)] == [ids[0]]
    c = rest[0]
    assert (c.class_path, c.arguments, c.attempts, c.attempts_base, c.executions) == ("app.jobs:Work", '{"args": []}',
                                                                                      0, 0, 1)
    more = add(store, job("h", 1), job("h", 1), job("h", 2))
    after = session.claim(Selector("any"), 100, token=TOKEN, process_id=PID, after=(1, more[0]))
    assert [j.id for j in after] == [more[1], more[2]]  # the keyset hint skips what it already passed
    assert claim_all(session, limit=0) == [] and states(store, more) == ["ready", "claimed", "claimed"]


@covers("Session.claim", "Store.insert_jobs")
def test_a_jobs_own_timeout_travels_with_its_claim(store: Store, session: Session) -> None:
    timed = store.insert_job(NewJob("app:W", "default", 0, "{}", timeout=2.5)).id
    plain = store.insert_job(job()).id
    assert store.insert_jobs(ReadyJobs(), [NewJob("app:W", "default", 0, "{}", timeout=7.0)]) == 1
    got = {c.id: c.timeout for c in claim_all(session)}
    assert got[timed] == 2.5 and got[plain] is None and sorted(got.values(), key=str) == [2.5, 7.0, None]


@covers("Session.claim", "Store.pause_queue", "Store.resume_queue", "Store.paused_queues")
def test_paused_queues_are_not_claimed(store: Store, session: Session) -> None:
    a, b = add(store, job("a"), job("b"))
    assert store.pause_queue("a") and not store.pause_queue("a") and store.pause_queue("never-used")
    assert store.paused_queues() == ["a", "never-used"]
    assert [j.id for j in claim_all(session)] == [b]
    assert claim_all(session, Selector("queue", "a")) == [] and claim_all(session, Selector("prefix", "")) == []
    assert store.resume_queue("a") and not store.resume_queue("a")
    assert [j.id for j in claim_all(session, Selector("prefix", ""))] == [a]


@covers("Session.claim", "Session.finish", "Session.retry", "Session.end", "Store.throughput",
        "Store.throughput_totals")
def test_completions_are_fenced_by_the_claim_token(store: Store, session: Session) -> None:
    a, b, c, d = add(store, job(), job(), job(), job())
    claim_all(session)
    session.finish([a], token=TOKEN + 1, process_id=PID)
    assert session.retry(b, token=TOKEN + 1, process_id=PID, delay=0, queue=None, priority=None, error=ERR) is None
    assert not session.end(c, token=TOKEN + 1, process_id=PID, state="failed", error=ERR)
    assert states(store, [a, b, c, d]) == ["claimed"] * 4
    totals = store.throughput_totals()
    assert (totals.finished, totals.failed) == (0, 0)
    # The next claim statement carries the previous batch's completions.
    assert session.claim(Selector("any"), 10, token=TOKEN, process_id=PID, done=[a, d]) == []
    assert session.end(c, token=TOKEN, process_id=PID, state="failed", error=ERR)
    assert not session.end(c, token=TOKEN, process_id=PID, state="failed", error=ERR)  # only once
    assert states(store, [a, b, c, d]) == ["finished", "claimed", "failed", "finished"]
    totals = store.throughput_totals()
    assert (totals.finished, totals.failed) == (2, 1)
    assert abs((totals.at - dt.datetime.now(dt.UTC)).total_seconds()) < 60
    minutes = store.throughput()  # one minute, or two when the test crossed into the next
    assert (sum(m.finished for m in minutes), sum(m.failed for m in minutes)) == (2, 1)
    assert all(m.minute <= totals.at and m.minute.second == 0 for m in minutes)


@covers("Session.finish_with_results", "Store.get_jobs", "Store.list_jobs")
def test_results_are_kept_with_finished_jobs_and_go_with_them(store: Store, session: Session) -> None:
    a, b, c, d = add(store, job(), job(), job(), job())
    claim_all(session)
    assert session.finish_with_results([(a, '{"rows": 3}'), (b, '[1, "two"]')], token=TOKEN + 1, process_id=PID) == 0
    assert session.finish_with_results([(a, '{"rows": 3}'), (b, '[1, "two"]')], token=TOKEN, process_id=PID) == 2
    assert session.finish_with_results([(a, '"again"')], token=TOKEN, process_id=PID) == 0  # fenced: ended already
    session.finish([c], token=TOKEN, process_id=PID)  # returned None: no result
    by_id = {j.id: j for j in store.get_jobs([a, b, c, d])}
    assert [by_id[i].result for i in (a, b, c, d)] == [{"rows": 3}, [1, "two"], None, None]
    assert by_id[a].state == "finished" and by_id[a].to_dict()["result"] == {"rows": 3}
    assert {j.id: j.result for j in store.list_jobs(state="finished")} == {a: {"rows": 3}, b: [1, "two"], c: None}
    totals = store.throughput_totals()
    assert totals.finished == 3
    assert store.delete_jobs([a]) == [a]
    fresh = store.insert_job(job()).id
    claim_all(session)
    session.finish([fresh], token=TOKEN, process_id=PID)
    assert session.prune_finished(-1, 10) == 3
    assert store.get_jobs([a, b, fresh]) == []


@covers("Session.retry", "Session.end", "Store.get_jobs")
def test_retries_and_final_ends_keep_each_runs_error(store: Store, session: Session) -> None:
    a, b, c = add(store, job(), job(), job())
    claim_all(session)
    assert session.retry(a, token=TOKEN, process_id=PID, delay=0, queue="retries", priority=9, error=ERR) == "ready"
    assert session.retry(b, token=TOKEN, process_id=PID, delay=3600, queue=None, priority=None,
                         error=ERR) == "scheduled"
    assert session.end(c, token=TOKEN, process_id=PID, state="discarded", error=RunError("app.Gone", "no row"))
    [again] = claim_all(session)
    assert (again.id, again.queue, again.priority, again.attempts, again.executions) == (a, "retries", 9, 1, 2)
    assert session.end(a, token=TOKEN, process_id=PID, state="failed", error=RunError("app.Boom", "twice"))
    ja, jb, jc = sorted(store.get_jobs([a, b, c]), key=lambda j: j.id)
    assert [e.process_id for e in ja.errors] == [PID, PID] and ja.process_id == PID  # every run names its process
    assert (ja.state, ja.attempts, [(e.attempt, e.message) for e in ja.errors]) == (
        "failed", 2, [(1, "it broke"), (2, "twice")])
    assert ja.errors[0].traceback == "Traceback: ..." and ja.finished_at is not None
    assert (jb.state, jb.attempts, jb.scheduled_at > jb.enqueued_at + dt.timedelta(seconds=3000)) == (
        "scheduled", 1, True)
    assert (jc.state, jc.errors[0].error_class) == ("discarded", "app.Gone")
    totals = store.throughput_totals()
    assert (totals.finished, totals.failed) == (0, 3)  # retried and failed runs count; a discard does not


@covers("Session.crash_jobs")
def test_crashes_count_and_fail_after_max_crashes(store: Store, session: Session) -> None:
    a, b = add(store, job(), job())
    claim_all(session)
    assert session.crash_jobs(PID + 1, [a], 2, "SIGKILL (signal 9)") == []  # another process's claim
    assert session.crash_jobs(PID, [a], 2, "SIGKILL (signal 9)") == [(a, "ready")]
    claim_all(session)
    assert sorted(session.crash_jobs(PID, [a, b], 2, "SIGKILL (signal 9)")) == [(a, "failed"), (b, "ready")]
    [info] = store.get_jobs([a])
    assert (info.state, info.attempts, info.crashes) == ("failed", 2, 2)
    assert [(e.attempt, e.error_class, e.message) for e in info.errors] == [
        (1, "jobctl.WorkerCrashed", "SIGKILL (signal 9)"), (2, "jobctl.WorkerCrashed", "SIGKILL (signal 9)")]
    assert store.throughput_totals().failed == 3


# -- processes -----------------------------------------------------------------------------------


def register(session: Session, kind: str = "worker", hostname: str = "host-a", pid: int = 100,
             supervisor_id: int | None = None, namespace: str = "1") -> int:
    return session.register_process(kind=kind, hostname=hostname, host_id=f"{hostname}/boot/{namespace}", pid=pid,
                                    supervisor_id=supervisor_id, queues="a,b" if kind == "worker" else None,
                                    threads=3 if kind == "worker" else None, wakeup="listening",
                                    metadata='{"prefetch": null}')


@covers("Session.register_process", "Session.heartbeat", "Session.stale_processes", "Session.host_processes",
        "Store.processes", "Store.live_process_count", "Session.set_wakeup")
def test_registration_heartbeats_and_liveness(store: Store, session: Session) -> None:
    sup = register(session, "supervisor", pid=100)
    worker = register(session, "worker", pid=101, supervisor_id=sup)
    elsewhere = register(session, "dispatcher", hostname="host-b", pid=7, supervisor_id=sup)
    twin = register(session, "supervisor", pid=100, namespace="2")  # same hostname, another PID namespace
    assert [p.id for p in session.host_processes("host-a/boot/2")] == [twin]
    session.deregister([twin])
    assert session.heartbeat([(sup, 0), (worker, 2), (10**9, 0)]) == {sup, worker}
    procs = store.processes()
    assert [(p.id, p.kind, p.hostname, p.pid, p.supervisor_id) for p in procs] == [
        (sup, "supervisor", "host-a", 100, None), (worker, "worker", "host-a", 101, sup),
        (elsewhere, "dispatcher", "host-b", 7, sup)]
    w = procs[1]
    assert (w.queues, w.threads, w.busy) == (("a", "b"), 3, 2) and procs[0].queues is None
    assert w.to_dict()["queues"] == ["a", "b"] and w.started_at <= w.last_heartbeat_at
    assert sorted(p.id for p in session.host_processes("host-a/boot/1")) == [sup, worker]
    assert [(p.pid, p.hostname, p.host_id) for p in session.host_processes("host-b/boot/1")] == [
        (7, "host-b", "host-b/boot/1")]
    assert [p.wakeup for p in procs] == ["listening"] * 3 and w.to_dict()["wakeup"] == "listening"
    session.set_wakeup([sup, worker], "polling")
    assert [p.wakeup for p in store.processes()] == ["polling", "polling", "listening"]
    assert session.stale_processes(3600) == [] and store.live_process_count(3600) == 3
    assert sorted(p.id for p in session.stale_processes(-1)) == [sup, worker, elsewhere]
    assert store.live_process_count(-1) == 0


@covers("Session.deregister", "Session.release_claims", "Store.claimed_executions", "Session.set_progress",
        "Store.set_progress")
def test_claims_return_to_ready_uncounted(store: Store, session: Session) -> None:
    me = register(session)
    a, b, c = add(store, job(), job(), job())
    session.claim(Selector("any"), 3, token=TOKEN, process_id=me)
    session.set_progress(a, 4, 10, "rows")
    store.set_progress(a, 5, 10, "rows")  # the last report wins, whichever connection sent it
    executions = store.claimed_executions(10)
    assert [(e.id, e.process_id, e.hostname, e.pid, e.process_kind) for e in executions] == [
        (a, me, "host-a", 100, "worker"), (b, me, "host-a", 100, "worker"), (c, me, "host-a", 100, "worker")]
    p = executions[0].progress
    assert p is not None and (p.done, p.total, p.message) == (5.0, 10.0, "rows")
    assert executions[1].progress is None and len(store.claimed_executions(1)) == 1
    assert session.release_claims(me, [a]) == 2
    assert states(store, [a, b, c]) == ["claimed", "ready", "ready"]
    assert session.deregister([me]) == 1
    assert states(store, [a, b, c]) == ["ready"] * 3 and store.processes() == []
    assert [j.attempts for j in store.get_jobs([a, b, c])] == [0, 0, 0]
    assert store.claimed_executions(10) == []


# -- the dispatcher ------------------------------------------------------------------------------


@covers("Session.dispatch_due", "Session.dispatch_and_unblock", "Store.make_scheduled_due", "Session.now")
def test_due_jobs_move_to_ready_in_batches(store: Store, session: Session) -> None:
    ids = add(store, *(job(delay=3600) for _ in range(5)))
    assert session.dispatch_due(10) == 0
    assert store.make_scheduled_due() == 5
    assert session.dispatch_due(2) == 2
    assert session.dispatch_and_unblock(2) == (2, 0)
    assert session.dispatch_and_unblock(10) == (1, 0)
    assert states(store, ids) == ["ready"] * 5
    now = session.now()
    assert now.tzinfo is not None and abs((now - dt.datetime.now(dt.UTC)).total_seconds()) < 60


@covers("Session.unblock_all", "Session.dispatch_and_unblock", "Store.discard_jobs")
def test_slots_free_when_holders_leave_and_blocked_jobs_run_best_first(store: Store, session: Session) -> None:
    lim = Limit("acct/9", 1, 180.0, False)
    holder = store.insert_job(job(limit=lim)).id
    low = store.insert_job(job(priority=5, limit=lim)).id
    high = store.insert_job(job(priority=-5, limit=lim)).id
    assert states(store, [holder, low, high]) == ["ready", "blocked", "blocked"]
    assert session.unblock_all() == 0  # no free slot
    claim_all(session)
    session.finish([holder], token=TOKEN, process_id=PID)
    assert states(store, [low, high]) == ["blocked", "ready"]  # handed over at once, best priority first
    assert store.discard_jobs([high]) == [high]
    assert states(store, [low]) == ["ready"]
    assert session.dispatch_and_unblock(10) == (0, 0)


# -- pruning -------------------------------------------------------------------------------------


@covers("Session.prune_finished", "Session.prune_throughput")
def test_pruning(store: Store, session: Session) -> None:
    ids = add(store, job(), job(), job(), job())
    claim_all(session)
    session.set_progress(ids[0], 1, None, None)
    session.finish(ids[:3], token=TOKEN, process_id=PID)
    assert session.prune_finished(3600, 10) == 0
    assert session.prune_finished(-1, 2) == 2 and session.prune_finished(-1, 10) == 1
    assert store.count() == 1 and store.count_in_state("finished") == 0
    session.prune_throughput(3600)
    assert store.throughput_totals().finished == 3
    session.prune_throughput(-120)
    assert store.throughput_totals().finished == 0 and store.throughput() == []


# -- recurring tasks -----------------------------------------------------------------------------


def task_row(key: str = "nightly", command: str | None = None) -> RecurringRow:
    return RecurringRow(key=key, schedule="every day at 3am", cron="0 3 * * *", class_path="app.jobs:Nightly",
                        command=command, arguments='{"args": [30], "kwargs": {}}', queue="maintenance", priority=5,
                        description="clean up", next_run_at=dt.datetime(2030, 1, 1, 3, tzinfo=dt.UTC))


@covers("Session.upsert_recurring_task", "Session.enqueue_tick", "Session.set_next_run", "Store.recurring_tasks",
        "Store.recurring_task", "Session.prune_recurring_runs")
def test_recurring_tasks_enqueue_each_tick_once(store: Store, session: Session) -> None:
    row = task_row()
    session.upsert_recurring_task(row)
    session.upsert_recurring_task(task_row("commanded", command="app.tasks:collect"))
    tick = dt.datetime(2020, 12, 31, 3, tzinfo=dt.UTC)
    first = session.enqueue_tick(row, tick)
    assert first is not None and session.enqueue_tick(row, tick) is None
    [info] = store.get_jobs([first])
    assert (info.class_path, info.queue, info.priority, info.state, info.arguments) == (
        "app.jobs:Nightly", "maintenance", 5, "ready", {"args": [30], "kwargs": {}})
    session.set_next_run("nightly", dt.datetime(2030, 1, 2, 3, tzinfo=dt.UTC))
    commanded, nightly = store.recurring_tasks()
    assert (nightly.key, nightly.class_path, nightly.command, nightly.args, nightly.last_run_at,
            nightly.next_run_at) == ("nightly", "app.jobs:Nightly", None, [30], tick,
                                     dt.datetime(2030, 1, 2, 3, tzinfo=dt.UTC))
    assert (commanded.class_path, commanded.command, commanded.args, commanded.last_run_at) == (
        None, "app.tasks:collect", None, None)
    assert store.recurring_task("nightly") == RecurringRow(**{**row.__dict__,
                                                               "next_run_at": dt.datetime(2030, 1, 2, 3,
                                                                                          tzinfo=dt.UTC)})
    assert store.recurring_task("missing") is None
    session.prune_recurring_runs(3600 * 24 * 365 * 100)
    assert store.recurring_tasks()[1].last_run_at == tick
    session.prune_recurring_runs(-1)
    assert store.recurring_tasks()[1].last_run_at is None


# -- operators -----------------------------------------------------------------------------------


@covers("Store.queue_counts", "Store.count_in_state")
def test_queue_counts(store: Store, session: Session) -> None:
    assert store.queue_counts().counts == ()
    a, _b, _c, d = add(store, job("a"), job("a"), job("a", delay=600), job("b"))
    claim_all(session, Selector("queue", "b"))
    session.end(d, token=TOKEN, process_id=PID, state="failed", error=ERR)
    reading = store.queue_counts()
    got = sorted((c.queue, c.state, c.count, c.oldest_ready_at is not None) for c in reading.counts)
    assert got == [("a", "ready", 2, True), ("a", "scheduled", 1, False), ("b", "failed", 1, False)]
    oldest = next(c.oldest_ready_at for c in reading.counts if c.state == "ready")
    assert oldest == store.get_jobs([a])[0].scheduled_at and oldest <= reading.at
    assert [store.count_in_state(s) for s in STATES] == [1, 2, 0, 0, 0, 0, 1, 0]


@covers("Store.metrics_reading", "Session.job_summaries")
def test_metrics_reading_and_job_summaries(store: Store, session: Session) -> None:
    empty = store.metrics_reading(60)
    assert (empty.counts, empty.processes) == ((), ()) and empty.at is not None
    a, _b, _c, d = add(store, job("a"), job("a"), job("a", delay=600), job("b", cls="app:B"))
    claim_all(session, Selector("queue", "b"))
    session.end(d, token=TOKEN, process_id=PID, state="failed", error=ERR)
    register(session, "supervisor", pid=100)
    register(session, "worker", pid=101)
    register(session, "worker", pid=102)
    reading = store.metrics_reading(3600)
    assert sorted((c.queue, c.state, c.count) for c in reading.counts) == [
        ("a", "ready", 2), ("a", "scheduled", 1), ("b", "failed", 1)]
    oldest = next(c.oldest_ready_at for c in reading.counts if c.state == "ready")
    assert oldest == store.get_jobs([a])[0].scheduled_at and oldest <= reading.at
    assert sorted((p.kind, p.hostname, p.alive) for p in reading.processes) == [
        ("supervisor", "host-a", 1), ("worker", "host-a", 2)]
    assert all(0 <= p.oldest_heartbeat_age < 60 for p in reading.processes)
    assert [(p.kind, p.alive) for p in sorted(store.metrics_reading(-1).processes, key=lambda p: p.kind)] == [
        ("supervisor", 0), ("worker", 0)]  # registered, no longer beating within the threshold
    summaries = session.job_summaries([a, d, 10**9])
    assert sorted(summaries) == [a, d] and json.loads(summaries[a].arguments) == {"args": []}
    assert [(s.queue, s.class_path, s.attempt) for s in (summaries[a], summaries[d])] == [
        ("a", "app.jobs:Work", 0), ("b", "app:B", 1)]


@covers("Store.get_jobs", "Store.list_jobs", "Store.waiting_jobs")
def test_listing_jobs(store: Store, session: Session) -> None:
    ids = add(store, job("a", cls="app:A"), job("b", cls="app:B"), job("a", cls="app:B", key="k"),
              job("a", delay=60, cls="app:A"))
    assert [j.id for j in store.list_jobs()] == ids[::-1]
    assert [j.id for j in store.list_jobs(limit=2)] == [ids[3], ids[2]]
    assert [j.id for j in store.list_jobs(limit=2, after=ids[2])] == [ids[1], ids[0]]
    assert [j.id for j in store.list_jobs(queue="a", class_path="app:B")] == [ids[2]]
    assert [j.id for j in store.list_jobs(state="scheduled")] == [ids[3]]
    assert [j.id for j in store.get_jobs([ids[0], 10**9, ids[2]])] == [ids[2], ids[0]]
    claim_all(session, Selector("queue", "b"))
    assert [j.id for j in store.waiting_jobs()] == [ids[0], ids[2], ids[3]]
    j = store.get_jobs([ids[2]])[0]
    assert (j.class_path, j.queue, j.priority, j.state, j.key, j.arguments, j.attempts, j.crashes) == (
        "app:B", "a", 0, "ready", "k", {"args": []}, 0, 0)
    assert j.enqueued_at.tzinfo is not None and j.claimed_at is None and j.finished_at is None
    assert store.get_jobs([]) == [] and store.list_jobs(state="failed") == []


@covers("Store.match_jobs", "Store.failed_page")
def test_matching_and_failure_pages(store: Store, session: Session) -> None:
    ids = add(store, job("a", cls="app:A"), job("b", cls="app:B"), job("a", cls="app:B"), job("a", cls="app:A"))
    claim_all(session)
    for i in ids[:3]:
        session.end(i, token=TOKEN, process_id=PID, state="failed", error=RunError("app.E", f"error of {i}"))
    assert store.match_jobs(states=["failed"]) == ids[:3]
    assert store.match_jobs(states=["failed", "claimed"], queue="a") == [ids[0], ids[2], ids[3]]
    assert store.match_jobs(states=["failed"], class_path="app:B") == [ids[1], ids[2]]
    assert store.match_jobs(states=["failed"], older_than=3600) == []
    assert store.match_jobs(states=["failed", "claimed"], older_than=-1) == ids
    page = store.failed_page(after=0, limit=2)
    assert [(f.id, f.queue, f.class_path, f.attempts, f.error) for f in page] == [
        (ids[0], "a", "app:A", 1, f"app.E: error of {ids[0]}"), (ids[1], "b", "app:B", 1, f"app.E: error of {ids[1]}")]
    assert all(f.failed_at is not None for f in page)
    assert [f.id for f in store.failed_page(after=page[-1].id)] == [ids[2]]


@covers("Store.queues_used")
def test_queues_used_lately(store: Store, session: Session) -> None:
    a, b, _c = add(store, job("mail"), job("reports"), job("idle"))
    claim_all(session, limit=2)
    session.finish([a], token=TOKEN, process_id=PID)
    assert store.queues_used(3600) == ["mail"]
    assert session.retry(b, token=TOKEN, process_id=PID, delay=0, queue="elsewhere", priority=None, error=ERR)
    assert store.queues_used(3600) == ["mail", "reports"]  # a run counts on the queue it ran on
    session.prune_throughput(-120)
    assert store.queues_used(3600) == []


@covers("Store.enqueue_recurring_now")
def test_a_recurring_task_run_by_hand_is_its_last_run(store: Store, session: Session) -> None:
    assert store.enqueue_recurring_now("nightly") is None
    row = task_row()
    session.upsert_recurring_task(row)
    session.enqueue_tick(row, dt.datetime(2020, 12, 31, 3, tzinfo=dt.UTC))
    assert store.recurring_tasks()[0].last_run_manual is False
    job_id = store.enqueue_recurring_now("nightly")
    assert job_id is not None
    [info] = store.get_jobs([job_id])
    assert (info.class_path, info.queue, info.priority, info.state, info.arguments) == (
        "app.jobs:Nightly", "maintenance", 5, "ready", {"args": [30], "kwargs": {}})
    [task] = store.recurring_tasks()
    assert task.last_run_manual is True and task.last_run_at is not None
    assert abs((task.last_run_at - dt.datetime.now(dt.UTC)).total_seconds()) < 60
    assert task.to_dict()["last_run_manual"] is True


@covers("Store.retry_failed", "Store.discard_jobs", "Store.delete_jobs")
def test_operator_changes(store: Store, session: Session) -> None:
    keyed, plain, waiting, scheduled = add(store, job(key="report"), job(), job(), job(delay=600))
    claim_all(session, limit=2)
    for i in (keyed, plain):
        session.end(i, token=TOKEN, process_id=PID, state="failed", error=ERR)
    holder = store.insert_job(job(key="report")).id  # the key is free again, and taken
    assert store.retry_failed([keyed, plain, waiting, 10**9]) == [plain]  # a held key, or not failed: left
    [again] = claim_all(session, limit=1)
    assert (again.id, again.attempts, again.attempts_base, again.executions) == (plain, 1, 1, 1)  # a fresh budget
    assert store.discard_jobs([keyed, waiting, scheduled, plain, holder]) == sorted([keyed, waiting, scheduled,
                                                                                     holder])
    session.set_progress(plain, 1, 2, None)
    assert store.delete_jobs([plain, keyed, 10**9]) == sorted([plain, keyed])
    assert store.get_jobs([plain, keyed]) == [] and store.count() == 3
    with_errors = store.insert_job(job()).id  # ids are never reused, and no error or progress carried over
    assert store.get_jobs([with_errors])[0].errors == () and store.get_jobs([with_errors])[0].progress is None


# -- wake-ups ------------------------------------------------------------------------------------


@covers("Store.listener", "Listener.wait", "Listener.close", "Store.session", "Session.close", "Listener.drain",
        "Listener.fileno", "Session.send_probe")
def test_listener(backend: str, store: Store, session: Session) -> None:
    session.send_probe("nobody-listens")  # fine when nobody listens
    listener = store.listener()
    assert store.listens == (listener is not None) == (backend == "postgresql")
    if listener is None:
        assert store.listener(share=session) is None
        return
    shared = store.listener(share=session)  # LISTEN on the session's own connection: no connection more
    try:
        assert listener.wait(0.01) == [] and listener.drain() == []
        store.insert_job(job("wake-me"))
        got: list[str] = []
        for _ in range(50):
            got += listener.wait(0.1)
            if got:
                break
        assert got == ["wake-me"]
        assert shared is not None and isinstance(shared.fileno(), int)
        other = store.session()
        other.send_probe("t1")
        other.close()
        heard: list[str] = []
        for _ in range(50):
            select.select([shared.fileno()], [], [], 0.1)
            heard += shared.drain()
            if f"{PROBE_PREFIX}t1" in heard:
                break
        assert heard == ["wake-me", f"{PROBE_PREFIX}t1"]
        assert session.now() is not None  # the session still works after its listener drained
        shared.close()  # does not close the session's connection
        assert session.now() is not None
    finally:
        listener.close()


# -- the contract covers the whole interface -----------------------------------------------------


# -- batches and dependencies ---------------------------------------------------------------------


def callbacks(*events: str) -> list[BatchCallback]:
    return [BatchCallback(e, f"app.jobs:On{e.title()}", "mail", 3, json.dumps({"args": [e]})) for e in events]


def member(batch_id: int, queue: str = "default", **kw: Any) -> NewJob:
    return dataclasses.replace(job(queue, **kw), batch_id=batch_id)


def callback_jobs(store: Store, batch_id: int) -> dict[str, int]:
    [info] = store.get_batches([batch_id])
    return {c.event: c.job_id for c in info.callbacks if c.job_id is not None}


@covers("Store.create_batch", "Store.seal_batch", "Store.get_batches", "Store.batch_active_members")
def test_a_batch_counts_its_members_and_enqueues_each_callback_once(store: Store, session: Session) -> None:
    b = store.create_batch(description="import", metadata=json.dumps({"rows": 3}), parent_job_id=None)
    a, c = add(store, member(b), member(b))
    store.insert_jobs(ReadyJobs(), [member(b), job()])  # bulk too; the plain job is no member
    [opened] = store.get_batches([b], states=True)
    assert (opened.state, opened.total, opened.pending, opened.states, opened.metadata) == (
        "open", 3, 3, {"ready": 3}, {"rows": 3})
    assert store.batch_active_members(b, 2) == [a, c]
    claimed = claim_all(session)
    session.finish([a], token=TOKEN, process_id=PID)  # the claim path's finish leaves members claimed
    assert store.job_state(a) == "claimed"
    session.finish([j.id for j in claimed], token=TOKEN, process_id=PID, members=True)  # before the block ended
    assert callback_jobs(store, b) == {}  # not sealed: it cannot finish yet
    store.seal_batch(b, callbacks("success", "failure", "finish"))
    [done] = store.get_batches([b], states=True)
    assert (done.state, done.finished, done.failed, done.states, done.finished_at is not None) == (
        "finished", 3, 0, {"finished": 3}, True)
    ids = callback_jobs(store, b)
    assert set(ids) == {"success", "finish"}
    [cb] = store.get_jobs([ids["success"]])
    assert (cb.class_path, cb.queue, cb.priority, cb.state, cb.arguments, cb.batch_id) == (
        "app.jobs:OnSuccess", "mail", 3, "ready", {"args": ["success"]}, None)
    store.seal_batch(b, callbacks("success"))  # sealing twice changes nothing
    assert callback_jobs(store, b) == ids and store.count() == 6


@covers("Store.list_batches")
def test_failures_retries_discards_and_deletes_count_once(store: Store, session: Session) -> None:
    b = store.create_batch(description=None, metadata=None, parent_job_id=None)
    a, c, d, e = add(store, member(b), member(b), member(b), member(b))
    store.seal_batch(b, callbacks("success", "failure", "finish"))
    claim_all(session)
    assert session.retry(a, token=TOKEN, process_id=PID, delay=0, queue=None, priority=None, error=ERR) == "ready"
    assert session.crash_jobs(PID, [c], 3, "SIGKILL (signal 9)") == [(c, "ready")]  # re-runs end nothing
    assert callback_jobs(store, b) == {}
    claim_all(session)
    assert session.end(a, token=TOKEN, process_id=PID, state="failed", error=ERR)
    assert set(callback_jobs(store, b)) == {"failure"}  # at the first failure
    session.finish([c, d], token=TOKEN, process_id=PID, members=True)
    assert store.list_batches(state="running")[0].id == b
    session.release_claims(PID, [])
    assert store.discard_jobs([e]) == [e]
    ended = callback_jobs(store, b)
    assert set(ended) == {"failure", "finish"}
    assert [x.id for x in store.list_batches(state="failed")] == [b] and store.list_batches(state="running") == []
    assert store.retry_failed([a]) == [a]  # reopens the batch
    [reopened] = store.get_batches([b])
    assert (reopened.state, reopened.failed, reopened.pending) == ("running", 1, 1)
    claim_all(session)
    session.finish([a], token=TOKEN, process_id=PID, members=True)
    assert callback_jobs(store, b) == ended  # e was discarded: no success, and nothing twice
    assert store.delete_jobs([a, c, d, e]) == [a, c, d, e]  # clearing ended members changes nothing
    [cleared] = store.get_batches([b], states=True)
    assert (cleared.total, cleared.finished, cleared.failed, cleared.states, cleared.state) == (4, 3, 1, {}, "failed")
    assert store.list_batches(state="finished") == [] and [x.id for x in store.list_batches()] == [b]


def test_an_empty_batch_finishes_when_sealed_and_deleting_an_active_member_ends_it(store: Store) -> None:
    empty = store.create_batch(description=None, metadata=None, parent_job_id=None)
    store.seal_batch(empty, callbacks("success", "finish"))
    assert set(callback_jobs(store, empty)) == {"success", "finish"}
    b = store.create_batch(description=None, metadata=None, parent_job_id=None)
    [a] = add(store, member(b))
    store.seal_batch(b, callbacks("failure", "finish"))
    store.delete_jobs([a])  # a ready member deleted by hand: it will not finish
    assert set(callback_jobs(store, b)) == {"failure", "finish"}


@covers("Store.insert_workflow")
def test_dependencies_wait_then_run_or_are_discarded(store: Store, session: Session) -> None:
    def after(*refs: int, run: bool = False, **kw: Any) -> NewJob:
        return dataclasses.replace(job(**kw), after_jobs=refs, run_on_dependency_failure=run)

    got = store.insert_workflow([job(), after(-1), after(-1), after(-2, -3, key="k")])  # -1 - i: the i-th
    a, b, c, d = (i.id for i in got)
    assert [i.state for i in got] == ["ready", "waiting", "waiting", "waiting"]
    assert store.insert_job(job(key="k")).id == d  # a waiting job holds its key
    [jd] = store.get_jobs([d])
    assert jd.dependencies == (Dependency(b, None, None), Dependency(c, None, None))
    assert store.get_jobs([a])[0].dependents == (b, c)
    assert [j.id for j in claim_all(session)] == [a]
    session.finish([a], token=TOKEN, process_id=PID)
    assert states(store, [b, c, d]) == ["ready", "ready", "waiting"]
    claim_all(session)
    assert session.end(b, token=TOKEN, process_id=PID, state="failed", error=ERR)
    [jd] = store.get_jobs([d])
    assert jd.state == "discarded" and jd.errors[-1].error_class == "jobctl.DependencyFailed"
    assert jd.errors[-1].message == f"dependency job {b} failed or was discarded"
    assert jd.dependencies[0] == Dependency(b, None, "failed")
    # Already ended when enqueued: resolved at once; a failure runs a job that says so.
    assert store.insert_workflow([after(b)])[0].state == "discarded"
    assert store.insert_workflow([after(b, run=True)])[0].state == "ready"
    assert store.insert_workflow([after(a, delay=3600)])[0].state == "scheduled"
    session.finish([c], token=TOKEN, process_id=PID)
    batch = store.create_batch(description=None, metadata=None, parent_job_id=None)
    add(store, member(batch))
    waits = store.insert_job(dataclasses.replace(job(), after_batches=(batch,)))
    store.seal_batch(batch, [])
    assert waits.state == "waiting"
    [m] = [j for j in claim_all(session) if j.batch_id == batch]
    assert session.finish_with_results([(m.id, "1")], token=TOKEN, process_id=PID) == 0  # a member: not here
    assert session.finish_with_results([(m.id, "1")], token=TOKEN, process_id=PID, members=True) == 1
    assert store.job_state(waits.id) == "ready"


def test_a_workflow_in_the_callers_transaction_exists_iff_it_commits(backend: str, database_url: str,
                                                                    store: Store) -> None:
    target = urls.parse(database_url).target
    for commit in (False, True):
        conn: Any = psycopg.connect(target) if backend == "postgresql" else sqlite3.connect(target)
        try:
            if backend == "sqlite":
                conn.execute("BEGIN")
            b = store.create_batch(description=None, metadata=None, parent_job_id=None, conn=conn)
            got = store.insert_workflow([member(b), dataclasses.replace(member(b), after_jobs=(-1,))], conn=conn)
            store.seal_batch(b, callbacks("finish"), conn=conn)
            conn.commit() if commit else conn.rollback()
        finally:
            conn.close()
        assert bool(store.get_batches([b])) is commit
        assert states(store, [i.id for i in got]) == (["ready", "waiting"] if commit else [None, None])


def test_every_store_method_is_covered() -> None:
    declared = {f"{cls.__name__}.{name}" for cls in (Store, Session, Listener)
                for name, member in inspect.getmembers(cls, inspect.isfunction) if not name.startswith("_")}
    assert declared - COVERED == set(), "store methods without a conformance test"
    assert COVERED - declared == set(), "conformance tests naming methods that do not exist"
