"""Job results (SPEC 11): stored return values, `handle.result()`, `get_job().result`, `show`, and what
cannot be stored — through the testing helpers, and through a real `jobctl start` on both backends."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest

import jobctl
from jobctl.testing import perform_enqueued_jobs
from tests.jobs_for_tests import Echo, Fails, Gone, Report, ReturnsSet, ReturnsTooMuch
from tests.runtime_helpers import ROOT, env_for, start, stop, write_config

EXPECTED = {"rows": 3, "at": dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC), "total": Decimal("1.50")}


@pytest.mark.usefixtures("jobctl_queue")
def test_the_testing_helpers_store_results_as_the_worker_would() -> None:
    report, echo, nothing = Report.perform_later(3), Echo.perform_later("a", n=1), Echo.perform_later()
    perform_enqueued_jobs()
    assert report.result(timeout=0) == EXPECTED
    assert echo.result(timeout=0) == (("a",), {"n": 1})  # tuples come back as tuples
    assert jobctl.get_job(report.id).result == {"rows": 3, "at": {"__jobctl__": "datetime",
                                                                  "value": "2026-01-02T03:04:05+00:00"},
                                                "total": {"__jobctl__": "decimal", "value": "1.50"}}
    assert nothing.result() == ((), {})
    assert Report.perform_now(3) == EXPECTED  # perform_now returns the value itself


@pytest.mark.usefixtures("jobctl_queue")
def test_failed_discarded_and_unstorable_results() -> None:
    failed, gone = Fails.perform_later(), Gone.perform_later()
    unstorable, big = ReturnsSet.perform_later(), ReturnsTooMuch.perform_later()
    for error in (ValueError, jobctl.SerializationError, jobctl.SerializationError):
        with pytest.raises(error):  # perform_enqueued_jobs re-raises what failed each job, in turn
            perform_enqueued_jobs()
    with pytest.raises(jobctl.JobFailed) as err:
        failed.result()
    assert (err.value.error_class, err.value.message) == ("ValueError", "no such customer")
    assert err.value.traceback is not None and "raise ValueError" in err.value.traceback
    with pytest.raises(jobctl.JobDiscarded, match="comment 7 is gone"):
        gone.result()
    with pytest.raises(jobctl.JobFailed) as err:
        unstorable.result()
    assert err.value.error_class == "jobctl.errors.SerializationError"
    assert err.value.message == f"job {unstorable.id} (tests.jobs_for_tests:ReturnsSet) returned a set that cannot " \
                                "be stored: result: builtins.set is not a supported type (JSON types, datetime, " \
                                "date, time, timedelta, Decimal, UUID, Enum, tuple, or a record with a registered " \
                                "locator)"
    with pytest.raises(jobctl.JobFailed, match="of 202 bytes as JSON, over its max_result_bytes \\(100\\)"):
        big.result()
    assert jobctl.get_job(unstorable.id).attempts == 1  # not retried


@pytest.mark.usefixtures("configured")
def test_waiting_times_out_and_needs_a_committed_job(database_url: str) -> None:
    handle = Report.perform_later(1)
    with pytest.raises(TimeoutError, match=f"job {handle.id} is still ready after 0.05 s"):
        handle.result(timeout=0.05)
    from tests.conftest import raw_connect

    conn = raw_connect(database_url)
    try:
        with jobctl.using(conn):
            pending = Report.perform_later(2)
        with pytest.raises(jobctl.JobNotFound, match="not committed yet"):
            pending.result(timeout=0.05)
    finally:
        conn.rollback()  # type: ignore[attr-defined]
        conn.close()  # type: ignore[attr-defined]


@pytest.mark.slow
def test_results_through_jobctl_start(database_url: str, tmp_path: Path) -> None:
    jobctl.configure(database_url=database_url)
    try:
        report, failed, plain = Report.perform_later(3), Fails.perform_later(), Echo.perform_later(1)
        proc = start(database_url, write_config(tmp_path / "queue.yml"), log=tmp_path / "log")
        try:
            assert report.result(timeout=30) == EXPECTED
            with pytest.raises(jobctl.JobFailed, match="no such customer"):
                failed.result(timeout=30)
            assert plain.result(timeout=30) == ((1,), {})
            many = [Report.perform_later(i) for i in range(50)]
            assert [h.result(timeout=30)["rows"] for h in many] == list(range(50))
        finally:
            assert stop(proc) == 0, (tmp_path / "log").read_text()
        shown = subprocess.run([sys.executable, "-m", "jobctl.cli", "show", str(report.id), "--json"], cwd=ROOT,
                               env=env_for(database_url), capture_output=True, text=True, timeout=60)
        assert json.loads(shown.stdout)["result"]["rows"] == 3
        text = subprocess.run([sys.executable, "-m", "jobctl.cli", "show", str(report.id)], cwd=ROOT,
                              env=env_for(database_url), capture_output=True, text=True, timeout=60).stdout
        assert '"rows": 3' in text and "result" in text
        assert jobctl.get_job(plain.id).result == {"__jobctl__": "tuple", "value": [{"__jobctl__": "tuple",
                                                                                      "value": [1]}, {}]}
    finally:
        jobctl.configure(database_url=None)


@pytest.mark.usefixtures("jobctl_queue")
def test_one_attempt_numbering_in_logs_show_and_top_after_a_manual_retry(caplog: pytest.LogCaptureFixture) -> None:
    from jobctl import database, operations

    failed = Fails.perform_later()
    with pytest.raises(ValueError):
        perform_enqueued_jobs()
    assert operations.retry(database.get_store(), [failed.id]).changed == 1
    with caplog.at_level("WARNING", logger="jobctl"), pytest.raises(ValueError):
        perform_enqueued_jobs()
    assert [e.attempt for e in jobctl.get_job(failed.id).errors] == [1, 2]
    lines = [r.getMessage() for r in caplog.records if "failed after attempt" in r.getMessage()]
    assert "failed after attempt 2:" in lines[-1]  # the log counts the job's runs as show does, not since the retry
