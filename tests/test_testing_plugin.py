"""The pytest plugin as a user's project meets it: a separate pytest run with only `pip install jobctl`."""

from __future__ import annotations

import pytest

pytest_plugins = ["pytester"]

APP = '''
import jobctl

NOTIFIED = []


class Comment:
    table = {}

    def __init__(self, id, creator):
        self.id, self.creator = id, creator
        Comment.table[id] = self

    @classmethod
    def find(cls, id):
        return cls.table[id]

    def recipients(self):
        return ["ann", "bob", self.creator]

    @jobctl.later
    def notify_recipients_now(self):
        for r in self.recipients():
            if r != self.creator:
                NOTIFIED.append((self.id, r))


jobctl.register_locator(Comment, dump=lambda c: c.id, load=Comment.find)


class NotifyRecipientsJob(jobctl.Job):
    queue = "default"

    def perform(self, comment):
        comment.notify_recipients_now()


class Flaky(jobctl.Job):
    retry_on = (jobctl.RetryOn(ConnectionError, wait=3600, attempts=3),)
    runs = 0

    def perform(self):
        Flaky.runs += 1
        if Flaky.runs < 3:
            raise ConnectionError("down")


class Chain(jobctl.Job):
    def perform(self, n):
        if n > 0:
            Chain.perform_later(n - 1)


class Broken(jobctl.Job):
    def perform(self):
        raise ValueError("broken for real")
'''

TESTS = '''
import pytest
import jobctl
from jobctl.testing import assert_enqueued, enqueued_jobs, perform_enqueued_jobs
from app import NOTIFIED, Broken, Chain, Comment, Flaky, NotifyRecipientsJob


def test_calls_notify_recipients_now():
    NOTIFIED.clear()
    before = len(NOTIFIED)
    NotifyRecipientsJob.perform_now(Comment(1, "cat"))
    assert len(NOTIFIED) - before == 2


def test_uses_the_default_queue():
    assert NotifyRecipientsJob.queue == "default"


def test_can_be_enqueued(jobctl_queue):
    comment = Comment(2, "cat")
    NotifyRecipientsJob.perform_later(comment)
    assert_enqueued(NotifyRecipientsJob, args=(comment,), queue="default")
    assert_enqueued(NotifyRecipientsJob, args=[comment], count=1)
    with pytest.raises(AssertionError, match="expected 1 NotifyRecipientsJob"):
        assert_enqueued(NotifyRecipientsJob, args=[Comment(3, "x")], count=1)
    with pytest.raises(AssertionError):
        assert_enqueued(NotifyRecipientsJob, queue="mailers")


def test_later_then_perform(jobctl_queue):
    NOTIFIED.clear()
    Comment(4, "ann").notify_recipients_later()
    assert len(enqueued_jobs()) == 1 and NOTIFIED == []
    assert perform_enqueued_jobs() == 1
    assert NOTIFIED == [(4, "bob")]  # not the creator
    assert enqueued_jobs() == [] and jobctl.count(state="finished") == 1


def test_real_retry_rules_with_waits_skipped(jobctl_queue):
    Flaky.runs = 0
    handle = Flaky.perform_later()
    assert perform_enqueued_jobs() == 3
    assert handle.state == "finished" and len(jobctl.get_job(handle.id).errors) == 2


def test_jobs_enqueued_by_jobs_run_too(jobctl_queue):
    Chain.perform_later(3)
    assert perform_enqueued_jobs() == 4
    assert jobctl.count(state="finished") == 4


def test_a_failing_job_raises(jobctl_queue):
    handle = Broken.perform_later()
    with pytest.raises(ValueError, match="broken for real"):
        perform_enqueued_jobs()
    assert handle.state == "failed"


def test_isolated_between_tests(jobctl_queue):
    assert jobctl.count() == 0
'''


def _run(pytester: pytest.Pytester, env: dict[str, str]) -> pytest.RunResult:
    pytester.makepyfile(app=APP, test_user_jobs=TESTS)
    for key, value in env.items():
        pytester._monkeypatch.setenv(key, value)
    return pytester.runpytest_subprocess("-q", "-p", "no:cacheprovider")


@pytest.mark.slow
def test_plugin_on_sqlite(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("JOBCTL_TEST_DATABASE_URL", raising=False)
    monkeypatch.delenv("JOBCTL_DATABASE_URL", raising=False)
    result = _run(pytester, {})
    result.assert_outcomes(passed=8)
    assert not list(pytester.path.glob("*.sqlite3"))  # nothing leaked into the project


@pytest.mark.slow
def test_plugin_on_postgres(pytester: pytest.Pytester, pg_server: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("JOBCTL_DATABASE_URL", raising=False)
    result = _run(pytester, {"JOBCTL_TEST_DATABASE_URL": pg_server})
    result.assert_outcomes(passed=8)


def test_plugin_is_inert_without_its_fixture(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("JOBCTL_TEST_DATABASE_URL", raising=False)
    pytester.makepyfile(test_plain="""
import sys

def test_nothing():
    assert 'jobctl.testing' in sys.modules      # loaded by its entry point
    from jobctl import database
    assert database._store is None and database._configured_url is None   # but it touched nothing
""")
    result = pytester.runpytest_subprocess("-q", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    assert not list(pytester.path.glob("*.sqlite3"))

