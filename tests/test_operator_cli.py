"""The operator verbs as a user runs them, on both backends."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import jobctl
from jobctl import database
from jobctl.records import RunError, Selector
from tests import runtime_helpers as helpers
from tests import runtime_jobs as rj
from tests.jobs_for_tests import Echo, Mailer
from tests.runtime_helpers import cli, connection, scalar, start, stop, wait_for, write_config

pytestmark = pytest.mark.usefixtures("configured")


def fail_jobs(queue: str, n: int, *, attempts: int = 2) -> list[int]:
    """Failed jobs with a retried run before the final failure."""
    return helpers.fail_jobs(queue, n, attempts=attempts)


def test_retry_all_dry_run_then_yes(configured: str) -> None:
    failed_q = fail_jobs("reports", 3)
    other = fail_jobs("mail", 2)
    out = cli("retry", "--all", "--queue", "reports", "--dry-run", url=configured)
    assert out.returncode == 0 and "3 jobs would change" in out.stderr
    assert jobctl.count(state="failed") == 5
    refused = cli("retry", "--all", "--queue", "reports", url=configured)
    assert refused.returncode == 1 and refused.stderr.count("\n") == 1 and "without --yes" in refused.stderr
    assert jobctl.count(state="failed") == 5
    done = cli("retry", "--all", "--queue", "reports", "--yes", "--json", url=configured)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["matched"] == 3 and result["changed"] == 3 and sorted(result["ids"]) == sorted(failed_q)
    assert {jobctl.get_job(i).state for i in failed_q} == {"ready"}
    assert {jobctl.get_job(i).state for i in other} == {"failed"}
    info = jobctl.get_job(failed_q[0])
    assert info.attempts == 2 and len(info.errors) == 2  # history kept; budget starts afresh


def test_retry_ids_and_wrong_states(configured: str) -> None:
    [failed] = fail_jobs("q", 1)
    ready = Echo.perform_later().id
    out = cli("retry", str(failed), str(ready), "--json", url=configured)
    assert out.returncode == 1
    result = json.loads(out.stdout)
    assert result["ids"] == [failed] and result["skipped"][0]["id"] == ready
    assert f"job {ready} is ready; only failed jobs are retried" in out.stderr
    missing = cli("retry", "424242", url=configured)
    assert missing.returncode == 3 and missing.stderr == "jobctl: job 424242 does not exist\n"
    both = cli("retry", "1", "--all", url=configured)
    assert both.returncode == 2 and both.stderr.count("\n") == 1


def test_retry_skips_a_job_whose_key_is_held(configured: str) -> None:
    handle = Echo.set(key="nightly").perform_later()
    session = database.get_store().session()
    try:
        [job] = session.claim(Selector("any"), 1, token=7, process_id=1)
        session.end(job.id, token=7, process_id=1, state="failed", error=RunError("E", "m"))
    finally:
        session.close()
    holder = Echo.set(key="nightly").perform_later()
    assert holder.created and holder.id != handle.id
    out = cli("retry", "--all", "--yes", url=configured)
    assert out.returncode == 0
    assert "another active job holds its key 'nightly'" in out.stderr
    assert handle.state == "failed"


def test_show_has_every_attempt(configured: str) -> None:
    [job_id] = fail_jobs("q", 1, attempts=3)
    out = cli("show", str(job_id), url=configured)
    assert out.returncode == 0
    assert "attempt 1" in out.stdout and "attempt 2" in out.stdout and "attempt 3" in out.stdout
    assert "ValueError: bad input" in out.stdout and "boom" in out.stdout
    data = json.loads(cli("show", str(job_id), "--json", url=configured).stdout)
    assert data == jobctl.get_job(job_id).to_dict() | {"errors": data["errors"]}
    assert [e["attempt"] for e in data["errors"]] == [1, 2, 3]
    assert set(data["errors"][0]) == {"attempt", "class", "message", "traceback", "at"}


def test_discard_by_filter_and_state(configured: str) -> None:
    failed = fail_jobs("q", 2)
    ready = [Mailer.perform_later("x").id for _ in range(3)]
    scheduled = Echo.set(wait=3600).perform_later().id
    out = cli("discard", "--state", "ready", "--yes", "--json", url=configured)
    assert json.loads(out.stdout)["ids"] == sorted(ready)
    assert {jobctl.get_job(i).state for i in failed} == {"failed"}
    out = cli("discard", str(scheduled), url=configured)
    assert out.returncode == 0 and jobctl.get_job(scheduled).state == "discarded"
    bad = cli("discard", "--state", "finished", "--yes", url=configured)
    assert bad.returncode == 2 and "is not one of failed, ready, scheduled, blocked" in bad.stderr


def test_clear_older_than_deletes_only_old_finished_jobs(configured: str) -> None:
    ids = [Echo.perform_later(i).id for i in range(4)]
    with connection(configured) as conn:
        is_pg = not hasattr(conn, "total_changes")
        old = "now() - interval '2 days'" if is_pg else "strftime('%s','now') - 2 * 86400"
        recent = "now()" if is_pg else "strftime('%s','now')"
        conn.execute(f"UPDATE jobctl_jobs SET state = 'finished', finished_at = {old} WHERE id IN ({ids[0]}, {ids[1]})")
        conn.execute(f"UPDATE jobctl_jobs SET state = 'finished', finished_at = {recent} WHERE id = {ids[2]}")
        conn.execute(f"UPDATE jobctl_jobs SET state = 'failed', finished_at = {old} WHERE id = {ids[3]}")
    dry = cli("clear", "--older-than", "1d", "--dry-run", url=configured)
    assert dry.returncode == 0 and "2 jobs would change" in dry.stderr
    out = cli("clear", "--older-than", "1d", "--yes", "--json", url=configured)
    assert json.loads(out.stdout)["ids"] == ids[:2]
    assert jobctl.count() == 2 and jobctl.count(state="failed") == 1
    everything = cli("clear", "--all", "--yes", url=configured)
    assert everything.returncode == 0 and jobctl.count() == 0
    nothing = cli("clear", "--yes", url=configured)
    assert nothing.returncode == 0 and "0 of 0" in nothing.stderr


def test_stats_json_shape(configured: str) -> None:
    fail_jobs("reports", 1)
    Echo.perform_later()
    Echo.set(wait=60).perform_later()
    cli("pause", "idle-queue", url=configured)
    data = json.loads(cli("stats", "--json", url=configured).stdout)
    assert set(data["states"]) == {"scheduled", "ready", "claimed", "blocked", "finished", "failed", "discarded"}
    assert data["states"]["failed"] == 1 and data["states"]["ready"] == 1 and data["states"]["scheduled"] == 1
    queues = {q["name"]: q for q in data["queues"]}
    assert set(queues) == {"default", "reports", "idle-queue"}
    assert queues["idle-queue"]["paused"] is True and queues["idle-queue"]["latency_s"] is None
    assert queues["default"]["latency_s"] is not None and queues["default"]["ready"] == 1
    assert data["failed_last_hour"] == 2  # the retried run and the final failure
    for key in ("processes", "finished_last_minute", "failed_last_minute", "finished_last_hour"):
        assert isinstance(data[key], int)


def test_jobs_lists_newest_first_and_paginates(configured: str) -> None:
    ids = [Echo.perform_later(i).id for i in range(5)]
    page = json.loads(cli("jobs", "--limit", "2", "--json", url=configured).stdout)
    assert [j["id"] for j in page] == [ids[4], ids[3]]
    nxt = json.loads(cli("jobs", "--limit", "2", "--after", str(ids[3]), "--json", url=configured).stdout)
    assert [j["id"] for j in nxt] == [ids[2], ids[1]]
    human = cli("jobs", "--limit", "2", url=configured)
    assert f"more: --after {ids[3]}" in human.stderr
    none = cli("jobs", "--state", "failed", url=configured)
    assert none.returncode == 0 and none.stderr == "0 jobs\n"
    by_class = json.loads(cli("jobs", "--class", "tests.jobs_for_tests.Echo", "--json", url=configured).stdout)
    assert len(by_class) == 5


@pytest.mark.slow
def test_pause_stops_claiming_and_resume_restarts(configured: str, backend: str, tmp_path: Path) -> None:
    from tests.runtime_helpers import connection as conn_to

    with conn_to(configured) as conn:
        conn.execute(rj.RUNS_DDL[backend])
    assert cli("pause", "reports", url=configured).returncode == 0
    proc = start(configured, write_config(tmp_path / "queue.yml", processes=1), log=tmp_path / "log")
    try:
        other = rj.Record.perform_later("other")
        held = rj.Record.set(queue="reports").perform_later("held")
        wait_for(lambda: other.state == "finished", what="the unpaused queue to run")
        # A claim loop later (polling 0.05 s, and a NOTIFY per enqueue), the paused job is still waiting.
        extra = rj.Record.perform_later("later")
        wait_for(lambda: extra.state == "finished", what="another claim round")
        assert held.state == "ready"
        assert cli("resume", "reports", url=configured).returncode == 0
        wait_for(lambda: held.state == "finished", timeout=15, what="the resumed queue to run")
    finally:
        assert stop(proc) == 0
    assert scalar(configured, "SELECT count(*) FROM jobctl_pauses") == 0


def test_processes_and_recurring_json(configured: str) -> None:
    assert json.loads(cli("processes", "--json", url=configured).stdout) == []
    assert json.loads(cli("recurring", "--json", url=configured).stdout) == []


def test_processes_lists_registered_processes(configured: str) -> None:
    session = database.get_store().session()
    try:
        sup = session.register_process(kind="supervisor", hostname="web-1", pid=11, supervisor_id=None, queues=None,
                                       threads=None, metadata="{}")
        session.register_process(kind="worker", hostname="web-1", pid=12, supervisor_id=sup,
                                 queues="mail,default", threads=3, metadata="{}")
    finally:
        session.close()
    human = cli("processes", url=configured)
    assert human.returncode == 0, human.stderr
    assert "worker" in human.stdout and "mail,default" in human.stdout and "web-1" in human.stdout
    rows = json.loads(cli("processes", "--json", url=configured).stdout)
    worker = next(r for r in rows if r["kind"] == "worker")
    assert worker["queues"] == ["mail", "default"] and worker["supervisor_id"] == sup and worker["threads"] == 3
    assert set(worker) == {"id", "kind", "hostname", "pid", "supervisor_id", "queues", "threads", "busy",
                           "last_heartbeat_at", "started_at"}
