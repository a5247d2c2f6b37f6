"""The operator verbs as a user runs them, on both backends."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pytest

import jobctl
from jobctl import database
from jobctl.records import NewJob, RecurringRow, RunError, Selector
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
    assert set(data["states"]) == {"scheduled", "ready", "claimed", "blocked", "waiting", "finished", "failed",
                                   "discarded"}
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
                           "last_heartbeat_at", "started_at", "wakeup"}


# --- what operators see: hostile text, long values, piped output, named queues, estimates -------

HOSTILE = "[/] [bold]x[/bold] \x1b[2J"
"""Rich markup that crashes (`[/]`) or styles (`[bold]`) when read as markup, and a terminal escape."""
SHOWN = "[/] [bold]x[/bold] \\x1b[2J"
"""HOSTILE as the text views must show it: literally, the escape made visible."""


@dataclass(frozen=True)
class Hostile:
    """Ids of rows whose every operator-visible field holds HOSTILE."""

    ready: int
    failed: int
    process: int


def insert_hostile_rows() -> Hostile:
    """A ready and a failed job, a paused queue, a process and a recurring task, all named HOSTILE: queue,
    class, arguments, key, error class, message and traceback, hostname, schedule."""
    store = database.get_store()
    job = NewJob(f"tests.jobs_for_tests:Echo{HOSTILE}", HOSTILE, 0,
                 json.dumps({"args": [HOSTILE], "kwargs": {"note": HOSTILE}}), key=HOSTILE)
    ready = store.insert_job(job).id
    failing = store.insert_job(NewJob(f"app{HOSTILE}:Job", f"q{HOSTILE}", 0, json.dumps({"args": [HOSTILE]}))).id
    store.pause_queue(f"paused{HOSTILE}")
    session = store.session()
    try:
        process = session.register_process(kind="worker", hostname=f"host{HOSTILE}", pid=7, supervisor_id=None,
                                           queues=f"q{HOSTILE}", threads=1, metadata=None)
        [claimed] = session.claim(Selector("queue", f"q{HOSTILE}"), 1, token=5, process_id=process)
        assert claimed.id == failing
        session.end(failing, token=5, process_id=process, state="failed",
                    error=RunError(f"Err{HOSTILE}", f"message {HOSTILE}\nsecond line",
                                   f"Traceback (most recent call last):\n  {HOSTILE}\nErr: {HOSTILE}"))
        session.upsert_recurring_task(RecurringRow(
            f"task{HOSTILE}", f"every {HOSTILE}", "0 3 * * *", f"app{HOSTILE}:Job", None, '{"args":[],"kwargs":{}}',
            f"q{HOSTILE}", 0, None, None))
    finally:
        session.close()
    return Hostile(ready, failing, process)


def test_hostile_text_is_shown_as_text(configured: str) -> None:
    rows = insert_hostile_rows()
    for args in (("stats",), ("jobs",), ("show", str(rows.ready)), ("show", str(rows.failed)), ("processes",),
                 ("recurring",)):
        out = cli(*args, url=configured)
        assert out.returncode == 0, (args, out.stderr)
        assert "\x1b" not in out.stdout + out.stderr, args
        assert SHOWN in out.stdout, (args, out.stdout)  # the markup as typed, not read as markup
    shown = cli("show", str(rows.failed), url=configured).stdout
    assert f"Err{SHOWN}: message {SHOWN}" in shown and f"Err: {SHOWN}" in shown
    # Messages on stderr too: what a bulk change skipped, and a queue named in an argument.
    paused = cli("pause", HOSTILE, url=configured)
    assert paused.returncode == 0 and paused.stderr == f"paused {SHOWN}\n"
    # The JSON is the data itself (JSON escapes control characters).
    data = json.loads(cli("show", str(rows.failed), "--json", url=configured).stdout)
    assert data["queue"] == f"q{HOSTILE}" and data["errors"][0]["message"].startswith(f"message {HOSTILE}")


def test_text_output_has_no_trailing_spaces_without_a_terminal(configured: str) -> None:
    [failed] = fail_jobs("reports", 1)
    Mailer.perform_later("a-much-longer-address-than-the-others@example.com")
    for args in (("show", str(failed)), ("jobs",), ("stats",)):
        out = cli(*args, url=configured)  # stdout is a pipe
        assert out.returncode == 0, out.stderr
        padded = [line for line in out.stdout.splitlines() if line != line.rstrip()]
        assert not padded, (args, padded)


def test_show_cuts_long_values_and_json_has_them_all(configured: str) -> None:
    big = "x" * 10_000_000
    job_id = Echo.perform_later(big).id
    frames = "".join(f'  File "app.py", line {i}, in f\n' for i in range(50_000))
    failing = NewJob("app:Job", "q", 0, json.dumps({"args": []}))
    store = database.get_store()
    failed = store.insert_job(failing).id
    session = store.session()
    try:
        session.claim(Selector("queue", "q"), 1, token=3, process_id=1)
        session.end(failed, token=3, process_id=1, state="failed",
                    error=RunError("RecursionError", "m" * 50_000,
                                   f"Traceback (most recent call last):\n{frames}RecursionError: too deep"))
    finally:
        session.close()
    out = cli("show", str(job_id), url=configured)
    assert out.returncode == 0, out.stderr
    assert len(out.stdout) < 50_000
    assert "characters cut" in out.stdout and f"jobctl show {job_id} --json" in out.stdout
    assert json.loads(cli("show", str(job_id), "--json", url=configured).stdout)["arguments"]["args"] == [big]
    shown = cli("show", str(failed), url=configured).stdout
    assert len(shown) < 50_000 and shown.count("characters cut") == 2  # the message and the traceback
    # A traceback keeps both ends: where it started and the error it ended with.
    assert "Traceback (most recent call last):" in shown and shown.rstrip().endswith("RecursionError: too deep")


def test_stats_shows_the_queues_the_config_names(configured: str, tmp_path: Path) -> None:
    config = tmp_path / "queue.yml"
    config.write_text('workers:\n  - queues: [mail, "staging*"]\n  - queues: "*"\n  - queues: [reports, mail]\n')
    fail_jobs("reports", 1)
    data = json.loads(cli("stats", "--json", "--config", str(config), url=configured).stdout)
    queues = {q["name"]: q for q in data["queues"]}
    assert sorted(queues) == ["mail", "reports"]  # not the prefix, not `*`; reports once
    assert queues["mail"] == {"name": "mail", "ready": 0, "scheduled": 0, "claimed": 0, "blocked": 0, "failed": 0,
                              "latency_s": None, "paused": False}
    assert queues["reports"]["failed"] == 1
    text = cli("stats", "--config", str(config), url=configured).stdout
    assert [line.split()[0] for line in text.splitlines()[3:]] == ["mail", "reports"]
    assert json.loads(cli("stats", "--json", url=configured).stdout)["queues"][0]["name"] == "reports"


def test_stats_says_recent_counts_are_estimates(configured: str) -> None:
    fail_jobs("reports", 3, attempts=1)
    text = cli("stats", url=configured).stdout.splitlines()[1]
    assert text.startswith("finished ≈0/min ≈0/h") and "failed ≈3/min ≈3/h" in text, text
    data = json.loads(cli("stats", "--json", url=configured).stdout)
    assert data["failed_last_minute"] == 3 and data["failed_last_hour"] == 3  # the JSON keys stay numbers
