"""`jobctl batches`, `jobctl batch ID` (`--json`) and `jobctl show` naming batches and dependencies."""

from __future__ import annotations

import json

import pytest

import jobctl
from jobctl import database
from jobctl.records import Selector
from tests.jobs_for_tests import Echo
from tests.runtime_helpers import cli

pytestmark = pytest.mark.usefixtures("configured")


def _finish_one() -> int:
    session = database.get_store().session()
    try:
        [job] = session.claim(Selector("any"), 1, token=9, process_id=0)
        session.finish([job.id], token=9, process_id=0, members=True)
        return job.id
    finally:
        session.close()


def test_batches_and_batch_show_counts_callbacks_and_what_holds_it(configured: str) -> None:
    with jobctl.batch(on_success=Echo.set(queue="mail")("done"), description="import rows",
                      metadata={"file": "a.csv"}) as b:
        jobctl.perform_all_later([Echo(i) for i in range(3)])
    with jobctl.batch() as empty:
        pass
    done = _finish_one()
    listed = cli("batches", url=configured)
    assert listed.returncode == 0, listed.stderr
    lines = listed.stdout.splitlines()
    assert lines[0].split()[:3] == ["id", "state", "progress"]
    assert lines[1].split()[:2] == [str(empty.id), "finished"] and "[####################] 100%" in lines[1]
    assert lines[2].split()[:2] == [str(b.id), "running"] and "[#######-------------]  33%" in lines[2]
    assert "import rows" in lines[2]
    running = json.loads(cli("batches", "--state", "running", "--json", url=configured).stdout)
    assert [x["id"] for x in running] == [b.id]
    shown = cli("batch", str(b.id), url=configured)
    assert shown.returncode == 0, shown.stderr
    assert f"batch {b.id}  running" in shown.stdout
    assert "1 of 3 ended (1 finished, 0 failed or discarded, 2 active)" in shown.stdout
    assert "finished 1  ready 2" in shown.stdout
    assert "on_success   tests.jobs_for_tests:Echo on mail: not enqueued yet" in shown.stdout
    held = [i for i in range(1, 4) if i != done]
    assert f"held by      job {held[0]}, job {held[1]} (`jobctl show ID`)" in shown.stdout
    data = json.loads(cli("batch", str(b.id), "--json", url=configured).stdout)
    assert data["states"] == {"finished": 1, "ready": 2} and data["active_members"] == held
    assert (data["state"], data["total"], data["pending"], data["metadata"]) == ("running", 3, 2, {"file": "a.csv"})
    assert data["callbacks"] == [{"event": "success", "class": "tests.jobs_for_tests:Echo", "queue": "mail",
                                  "priority": 0, "job": None}]
    assert set(data) == {"id", "state", "description", "metadata", "total", "finished", "failed", "pending",
                         "states", "callbacks", "parent_job", "created_at", "finished_at", "active_members"}


def test_batch_says_why_a_callback_of_an_ended_batch_was_not_enqueued(configured: str) -> None:
    with jobctl.batch(on_success=Echo.set(queue="mail")("ok"), on_failure=Echo.set(queue="mail")("bad")) as b:
        Echo.perform_later(1)
    _finish_one()
    shown = cli("batch", str(b.id), url=configured)
    assert shown.returncode == 0, shown.stderr
    assert f"batch {b.id}  finished" in shown.stdout
    assert "on_success   tests.jobs_for_tests:Echo on mail: enqueued as job" in shown.stdout
    assert "on_failure   tests.jobs_for_tests:Echo on mail: not enqueued: every member finished" in shown.stdout


def test_stats_and_metrics_count_waiting_jobs(configured: str) -> None:
    jobctl.chain(Echo(1), Echo(2), Echo(3)).perform_later()
    stats = json.loads(cli("stats", "--json", url=configured).stdout)
    assert stats["states"]["waiting"] == 2 and stats["states"]["ready"] == 1
    assert "waiting 2" in cli("stats", url=configured).stdout
    metrics = cli("metrics", url=configured).stdout
    assert 'jobctl_queue_jobs{queue="default",state="waiting"} 2.0' in metrics, metrics


def test_show_names_the_batch_the_dependencies_and_the_dependents(configured: str) -> None:
    with jobctl.batch() as b:
        first, second = jobctl.chain(Echo(1), Echo(2)).perform_later()
    shown = cli("show", str(second.id), url=configured).stdout
    assert f"batch      {b.id} (`jobctl batch {b.id}`)" in shown
    assert f"waits for  job {first.id} (not ended)" in shown and "waiting" in shown.splitlines()[0]
    assert f"dependents  job {second.id}" in cli("show", str(first.id), url=configured).stdout
    data = json.loads(cli("show", str(second.id), "--json", url=configured).stdout)
    assert (data["batch"], data["dependencies"], data["dependents"]) == (
        b.id, [{"job": first.id, "batch": None, "outcome": None}], [])
    assert json.loads(cli("jobs", "--state", "waiting", "--json", url=configured).stdout)[0]["id"] == second.id


@pytest.mark.parametrize(("args", "message"), [
    (("batch", "12345"), "jobctl: batch 12345 does not exist"),
    (("batches", "--state", "nope"), "jobctl: --state: 'nope' is not one of open, running, finished, failed"),
    (("batch", "x"), "jobctl: Invalid value for 'ID': Input should be a valid integer, unable to parse string "
                     "as an integer"),
])
def test_bad_batch_input_is_one_line(configured: str, args: tuple[str, ...], message: str) -> None:
    done = cli(*args, url=configured)
    assert done.returncode != 0 and done.stdout == ""
    assert done.stderr.strip().splitlines() == [message]


def test_discard_takes_waiting_jobs_and_their_dependents_follow(configured: str) -> None:
    first, second, third = jobctl.chain(Echo(1), Echo(2), Echo(3)).perform_later()
    done = cli("discard", "--state", "waiting", "--yes", "--json", url=configured)
    assert done.returncode == 0, done.stderr
    assert sorted(json.loads(done.stdout)["ids"]) in ([second.id, third.id], [second.id])
    assert (first.state, second.state, third.state) == ("ready", "discarded", "discarded")
