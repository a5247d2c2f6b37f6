"""Concurrency limits on both backends: slots, blocking, unblocking in priority order, discards."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

import jobctl
from jobctl import database, operations
from jobctl.records import RunError, Selector

pytestmark = pytest.mark.usefixtures("configured")


class Export(jobctl.Job):
    limits_concurrency = jobctl.ConcurrencyLimit(to=2, key=lambda account, *_: account)

    def perform(self, account: int, n: int = 0) -> None:
        pass


class Singleton(jobctl.Job):
    limits_concurrency = jobctl.ConcurrencyLimit(to=1, on_conflict="discard")

    def perform(self) -> None:
        pass


class Grouped(jobctl.Job):
    limits_concurrency = jobctl.ConcurrencyLimit(to=1, group="billing")

    def perform(self) -> None:
        pass


class GroupedToo(jobctl.Job):
    limits_concurrency = jobctl.ConcurrencyLimit(to=1, group="billing")

    def perform(self) -> None:
        pass


def states(handles: list[jobctl.JobHandle]) -> list[str]:
    return [h.state for h in handles]


class Session:
    """Claims and ends jobs through the runtime's own statements, as a worker would."""

    def __init__(self) -> None:
        self.s = database.get_store().session()
        self.token = 99

    def claim(self, n: int = 100) -> list[Any]:
        return self.s.claim(Selector("any"), n, token=self.token, process_id=1)

    def finish(self, ids: list[int]) -> None:
        self.s.finish(ids, token=self.token, process_id=1)

    def close(self) -> None:
        self.s.close()


def test_extra_jobs_wait_blocked_and_run_in_priority_order() -> None:
    jobs = [Export.perform_later(7, i) for i in range(3)]
    urgent = Export.set(priority=-5).perform_later(7, 99)
    other = Export.perform_later(8)
    assert states(jobs) == ["ready", "ready", "blocked"] and urgent.state == "blocked"
    assert other.state == "ready"  # another key has its own slots
    s = Session()
    try:
        claimed = s.claim()
        assert sorted(j.id for j in claimed) == sorted([jobs[0].id, jobs[1].id, other.id])
        assert s.claim() == []  # nothing more may run for key 7
        s.finish([jobs[0].id])
        assert urgent.state == "ready" and jobs[2].state == "blocked"  # best priority first
        s.finish([jobs[1].id])
        assert jobs[2].state == "ready"
    finally:
        s.close()


def test_discard_on_conflict() -> None:
    first = Singleton.perform_later()
    second = Singleton.perform_later()
    assert first.state == "ready" and second.state == "discarded"
    info = jobctl.get_job(second.id)
    assert info.errors[0].error_class == "jobctl.ConcurrencyLimitReached"
    assert "concurrency limit reached" in info.errors[0].message


def test_group_shares_slots_across_classes() -> None:
    a = Grouped.perform_later()
    b = GroupedToo.perform_later()
    assert (a.state, b.state) == ("ready", "blocked")


def test_failure_retry_and_discard_free_the_slot() -> None:
    a, b, c = (Export.perform_later(1, i) for i in range(3))
    d = Export.perform_later(1, 3)
    assert states([a, b, c, d]) == ["ready", "ready", "blocked", "blocked"]
    s = Session()
    try:
        s.claim()
        s.s.end(a.id, token=s.token, process_id=1, state="failed", error=RunError("E", "m"))
        assert c.state == "ready"
        # A retry that waits gives its slot away; it queues again as blocked when due.
        assert s.s.retry(b.id, token=s.token, process_id=1, delay=3600, queue=None, priority=None,
                         error=RunError("E", "m")) == "scheduled"
        assert d.state == "ready"
    finally:
        s.close()
    # An operator retrying the failed one finds no free slot: it waits.
    operations.retry(database.get_store(), [a.id])
    assert a.state == "blocked"
    operations.discard(database.get_store(), [c.id])
    assert a.state == "ready"


def test_released_claim_keeps_its_slot_and_deletion_frees_it() -> None:
    a, b = Export.perform_later(5), Export.perform_later(5)
    c = Export.perform_later(5)
    s = Session()
    try:
        s.claim()
        assert s.s.deregister([1]) == 2  # the worker vanished: claims back to ready, still holding slots
        assert states([a, b, c]) == ["ready", "ready", "blocked"]
    finally:
        s.close()
    operations.clear(database.get_store(), [a.id])
    assert c.state == "ready"


def test_scheduled_limited_job_blocks_when_due(configured: str) -> None:
    a, b = Export.perform_later(3), Export.perform_later(3)
    later = Export.set(wait_until=dt.datetime.now(dt.UTC) + dt.timedelta(milliseconds=50)).perform_later(3)
    assert later.state == "scheduled"
    import time

    time.sleep(0.1)
    s = database.get_store().session()
    try:
        assert s.dispatch_due(100) == 1
        assert later.state == "blocked"
        assert s.unblock_all() == 0  # no free slot: stays blocked
    finally:
        s.close()
    assert {a.state, b.state} == {"ready"}


def test_unblock_all_repairs_a_free_slot_with_waiters(configured: str, backend: str) -> None:
    a = Export.perform_later(9)
    b = Export.perform_later(9)
    c = Export.perform_later(9)
    assert c.state == "blocked"
    # A slot that is free while a job waits, with no event to hand it over (as after a rolled-back
    # transaction that had taken it): the dispatcher's maintenance must find it.
    from tests.runtime_helpers import connection

    with connection(configured) as conn:
        conn.execute("INSERT INTO jobctl_slots (key, slot) SELECT concurrency_key, 3 FROM jobctl_jobs "
                     f"WHERE id = {int(c.id)}")
    s = database.get_store().session()
    try:
        assert c.state == "blocked"
        assert s.unblock_all() == 1
        assert c.state == "ready" and b.state == "ready" and a.state == "ready"
        assert s.unblock_all() == 0
    finally:
        s.close()


def test_bulk_enqueue_respects_limits() -> None:
    created = jobctl.perform_all_later([Export(4, i) for i in range(5)] + [Singleton(), Singleton()])
    assert created == 7
    assert jobctl.count(state="ready") == 3 and jobctl.count(state="blocked") == 3
    assert jobctl.count(state="discarded") == 1


def test_limit_key_must_be_a_string_or_number() -> None:
    class Bad(jobctl.Job):
        limits_concurrency = jobctl.ConcurrencyLimit(key=lambda x: [x])

        def perform(self, x: int) -> None: ...

    with pytest.raises(TypeError, match="expected a string or a number"):
        Bad.perform_later(1)
    with pytest.raises(ValueError, match="to=0"):
        jobctl.ConcurrencyLimit(to=0)
    assert jobctl.count() == 0
