"""Batches and workflows through the library, on both backends: callbacks once, dependencies, `using()`."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

import jobctl
from jobctl import database, operations, urls
from jobctl.testing import TestQueue
from tests import batch_jobs as bj
from tests import runtime_jobs as rj
from tests.runtime_helpers import connection, query

pytestmark = pytest.mark.usefixtures("configured")


@pytest.fixture(autouse=True)
def runs_table(configured: str, backend: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """Jobs run inline here record their runs in this test's database."""
    with connection(configured) as conn:
        conn.execute(rj.RUNS_DDL[backend])
    monkeypatch.setenv("JOBCTL_TEST_RECORD_URL", configured)
    yield configured
    conn = getattr(rj._local, "conn", None)
    if conn is not None:
        conn.close()
        rj._local.conn = None


def drain(url: str) -> None:
    """Run everything enqueued inline (failures included) until nothing is left."""
    queue = TestQueue(url)
    for _ in range(50):
        try:
            if queue.perform_enqueued_jobs() == 0:
                return
        except Exception:  # a job that failed: its batch counts it; run the rest
            continue
    raise AssertionError("jobs still enqueued after 50 rounds")


def tags(url: str, prefix: str = "") -> list[str]:
    return [r[0] for r in query(url, "SELECT tag FROM test_runs ORDER BY started, job_id") if r[0].startswith(prefix)]


def events(url: str) -> list[str]:
    """The callbacks that ran, as `event:batch:state:finished/failed/total` as they saw their batch (an
    on_failure only `failure:batch`: it runs while the other members go on), in run order."""
    found = [t for t in tags(url) if t.split(":")[0] in ("success", "failure", "finish")]
    return [":".join(t.split(":")[:2]) if t.startswith("failure:") else t for t in found]


def test_a_bulk_batch_calls_on_success_and_on_finish_once(configured: str) -> None:
    with jobctl.batch(**bj.callbacks(), description="import", metadata={"file": "rows.csv"}) as batch:
        bj.Part.perform_later("first")
        assert jobctl.perform_all_later([bj.Part(f"row{i}") for i in range(20)]) == 20
    info = batch.info()
    assert (info.state, info.total, info.description, info.metadata) == ("running", 21, "import", {"file": "rows.csv"})
    drain(configured)
    b = batch.id
    assert sorted(events(configured)) == [f"finish:{b}:finished:21/0/21", f"success:{b}:finished:21/0/21"]
    info = jobctl.get_batch(b)
    assert (info.state, info.states, info.pending) == ("finished", {"finished": 21}, 0)
    callback_jobs = [jobctl.get_job(c.job_id) for c in info.callbacks if c.job_id]
    assert [(j.queue, j.batch_id) for j in callback_jobs] == [("callbacks", None)] * 2
    assert info.callback("failure") is not None and info.callback("failure").job_id is None  # type: ignore[union-attr]


def test_an_empty_batch_finishes_at_once(configured: str) -> None:
    with jobctl.batch(**bj.callbacks()) as batch:
        pass
    assert batch.info().state == "finished"
    drain(configured)
    assert sorted(events(configured)) == [f"finish:{batch.id}:finished:0/0/0", f"success:{batch.id}:finished:0/0/0"]


def test_a_batch_waits_for_the_jobs_its_jobs_enqueue(configured: str) -> None:
    with jobctl.batch(**bj.callbacks()) as batch:
        bj.Part.perform_later("parent", spawn=3)
    drain(configured)
    assert sorted(tags(configured, "parent")) == ["parent", "parent.0", "parent.1", "parent.2"]
    assert sorted(events(configured)) == [f"finish:{batch.id}:finished:4/0/4", f"success:{batch.id}:finished:4/0/4"]
    assert jobctl.get_batch(batch.id).total == 4


def test_failure_retry_and_discard(configured: str) -> None:
    with jobctl.batch(**bj.callbacks()) as batch:
        bad = bj.Part.perform_later("bad", fail=True)
        bj.FlakyPart.perform_later("flaky")  # two failed runs, then finished: retries end nothing
        bj.Part.perform_later("good")
    drain(configured)
    b = batch.id
    assert sorted(events(configured)) == [f"failure:{b}", f"finish:{b}:failed:2/1/3"]
    assert tags(configured, "flaky") == ["flaky"] * 3
    assert operations.retry(database.get_store(), [bad.id]).ids == [bad.id]  # `jobctl retry`: it reopens
    assert jobctl.get_batch(b).state == "running"
    drain(configured)  # it fails again: nothing is enqueued twice
    assert sorted(events(configured)) == [f"failure:{b}", f"finish:{b}:failed:2/1/3"]
    with jobctl.batch(**bj.callbacks()) as gone:
        bj.GonePart.perform_later("gone")
    drain(configured)
    assert sorted(e for e in events(configured) if e.split(":")[1] == str(gone.id)) == [
        f"failure:{gone.id}", f"finish:{gone.id}:failed:0/1/1"]


def test_discard_and_clear_by_hand_end_members_once(configured: str) -> None:
    with jobctl.batch(**bj.callbacks()) as batch:
        waiting = bj.Part.set(wait=3600).perform_later("later")
        ready = bj.Part.perform_later("now")
    store = database.get_store()
    assert operations.discard(store, [waiting.id]).ids == [waiting.id]
    assert operations.clear(store, [waiting.id]).ids == [waiting.id]  # an ended member: counted already
    drain(configured)
    b = batch.id
    assert sorted(events(configured)) == [f"failure:{b}", f"finish:{b}:failed:1/1/2"]
    assert jobctl.get_job(ready.id).state == "finished"


def test_a_chain_of_three_runs_in_order(configured: str) -> None:
    handles = jobctl.chain(bj.Part("a"), bj.Part("b"), bj.Part("c")).perform_later()
    assert [h.state for h in handles] == ["ready", "waiting", "waiting"]
    drain(configured)
    assert tags(configured) == ["a", "b", "c"]
    runs = {r[0]: r[1] for r in query(configured, "SELECT tag, started FROM test_runs")}
    assert runs["a"] <= runs["b"] <= runs["c"]
    assert jobctl.get_job(handles[1].id).dependencies == (jobctl.Dependency(handles[0].id, None, "finished"),)
    assert jobctl.get_job(handles[1].id).dependents == (handles[2].id,)


def test_the_testing_helpers_list_waiting_jobs_as_enqueued(configured: str) -> None:
    first, second = jobctl.chain(bj.Part("a"), bj.Part("b")).perform_later()
    queue = TestQueue(configured)
    assert [(j.id, j.state) for j in queue.enqueued_jobs()] == [(first.id, "ready"), (second.id, "waiting")]
    assert [j.id for j in queue.enqueued_jobs(bj.Part)] == [first.id, second.id]
    assert queue.perform_enqueued_jobs() == 2 and queue.enqueued_jobs() == []


def test_a_group_in_a_chain_waits_for_all_its_members(configured: str) -> None:
    handles = jobctl.chain(bj.Part("start"), jobctl.group([bj.Part("g1"), bj.Part("g2"), bj.Part("g3")]),
                           bj.Part("end")).perform_later()
    end = jobctl.get_job(handles[-1].id)
    assert {d.job_id for d in end.dependencies} == {h.id for h in handles[1:4]}
    store = database.get_store()
    session = store.session()
    try:  # run the start and two of the group: the end still waits for the third
        from jobctl.records import Selector

        first = session.claim(Selector("any"), 1, token=3, process_id=0)
        session.finish([first[0].id], token=3, process_id=0)
        two = session.claim(Selector("any"), 2, token=3, process_id=0)
        session.finish([j.id for j in two], token=3, process_id=0)
        assert handles[-1].state == "waiting"
    finally:
        session.close()
    drain(configured)
    assert handles[-1].state == "finished"


def test_a_failed_dependency_discards_its_dependents_with_the_reason(configured: str) -> None:
    bad, after, later = jobctl.chain(bj.Part("bad", fail=True), bj.Part("after"), bj.Part("later")).perform_later()
    anyway = bj.Part.set(after=[bad], on_dependency_failure="run").perform_later("anyway")
    drain(configured)
    assert tags(configured) == ["bad", "anyway"]
    for dependent in (after, later):
        info = jobctl.get_job(dependent.id)
        assert info.state == "discarded" and info.errors[-1].error_class == "jobctl.DependencyFailed"
    assert jobctl.get_job(after.id).errors[-1].message == f"dependency job {bad.id} failed or was discarded"
    assert jobctl.get_job(later.id).errors[-1].message == f"dependency job {after.id} failed or was discarded"
    assert anyway.state == "finished"


def test_a_job_can_wait_for_a_batch(configured: str) -> None:
    with jobctl.batch() as batch:
        jobctl.perform_all_later([bj.Part(f"m{i}") for i in range(3)])
    report = bj.Part.set(after=[batch]).perform_later("report")
    assert report.state == "waiting"
    drain(configured)
    assert tags(configured)[-1] == "report" and report.state == "finished"
    assert jobctl.get_job(report.id).dependencies == (jobctl.Dependency(None, batch.id, "finished"),)


def _open(url: str) -> Any:
    target = urls.parse(url).target
    if urls.parse(url).backend == "postgresql":
        return psycopg.connect(target)
    conn = sqlite3.connect(target, isolation_level=None)
    conn.execute("BEGIN")
    return conn


@pytest.mark.parametrize("commit", [False, True])
def test_a_workflow_and_batch_inside_using_exist_iff_the_transaction_commits(configured: str, commit: bool) -> None:
    conn = _open(configured)
    try:
        with jobctl.using(conn):
            with jobctl.batch(**bj.callbacks()) as batch:
                handles = jobctl.chain(bj.Part("a"), jobctl.group([bj.Part("b"), bj.Part("c")])).perform_later()
            assert batch.info().total == 3
        conn.commit() if commit else conn.rollback()
    finally:
        conn.close()
    assert jobctl.count() == (3 if commit else 0)
    if not commit:
        with pytest.raises(jobctl.JobNotFound):
            jobctl.get_batch(batch.id or 0)
        return
    drain(configured)
    assert tags(configured)[0] == "a" and sorted(events(configured)) == [
        f"finish:{batch.id}:finished:3/0/3", f"success:{batch.id}:finished:3/0/3"]
    assert all(jobctl.get_job(h.id).state == "finished" for h in handles)  # (the handles name a closed conn)


def test_limits_keys_and_priorities_hold_for_members(configured: str) -> None:
    with jobctl.batch(**bj.callbacks()) as batch:
        first = bj.Part.set(key="only-one").perform_later("keyed")
        again = bj.Part.set(key="only-one").perform_later("keyed-again")
        limited = [bj.LimitedPart.perform_later(f"l{i}") for i in range(3)]
        low = bj.Part.set(priority=10).perform_later("low")
        high = bj.Part.set(priority=-10).perform_later("high")
    assert again.id == first.id and not again.created
    assert [h.state for h in limited] == ["ready", "blocked", "blocked"]
    assert batch.info().total == 6
    chained = jobctl.chain(bj.Part.set(key="wf")("wf"), bj.LimitedPart("wl")).perform_later()
    assert bj.Part.set(key="wf").perform_later("dup").id == chained[0].id
    drain(configured)
    order = tags(configured)
    assert order.index("high") < order.index("low")
    assert jobctl.get_batch(batch.id).state == "finished"
    assert all(h.state == "finished" for h in (*limited, low, high, *chained))


def test_bad_batch_and_dependency_input_is_refused_in_one_line() -> None:
    with pytest.raises(TypeError, match="on_success= expects a job"):
        jobctl.batch(on_success="app.jobs:Done")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="batch callback is enqueued ready"):
        jobctl.batch(on_finish=bj.Callback.set(wait=5)("x"))
    with pytest.raises(ValueError, match="metadata= must be JSON"):
        jobctl.batch(metadata={"when": object()})
    with pytest.raises(TypeError, match="after= expects job handles"):
        bj.Part.set(after=[42])
    with pytest.raises(ValueError, match="on_dependency_failure="):
        bj.Part.set(on_dependency_failure="ignore")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="a workflow step is a job"):
        jobctl.chain(bj.Part, bj.Part("x"))  # type: ignore[arg-type]
    with pytest.raises(jobctl.JobNotFound):
        jobctl.get_batch(999_999)


def test_a_block_that_raises_seals_what_it_enqueued_and_its_exception_propagates(configured: str) -> None:
    with pytest.raises(ZeroDivisionError), jobctl.batch(**bj.callbacks()) as batch:
        bj.Part.perform_later("before the error")
        1 / 0  # noqa: B018
    assert batch.info().state == "running" and batch.info().total == 1  # sealed: it ends when its job does
    drain(configured)
    assert jobctl.get_batch(batch.id).state == "finished"
    conn = _open(configured)
    try:
        with pytest.raises(ZeroDivisionError), jobctl.using(conn), jobctl.batch():
            bj.Part.perform_later("rolled back")
            if urls.parse(configured).backend == "postgresql":
                with pytest.raises(psycopg.errors.DivisionByZero):
                    conn.execute("SELECT 1 / 0")  # the caller's transaction is aborted: nothing can be sealed
            1 / 0  # noqa: B018
        conn.rollback()
    finally:
        conn.close()
    assert [b.id for b in database.get_store().list_batches()] == [batch.id]
