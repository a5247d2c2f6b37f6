"""The example app (examples/): its models tested directly, as the Rails guide tests them; its jobs enqueued
and performed with jobctl's pytest plugin (`jobctl_queue`, `assert_enqueued`, `perform_enqueued_jobs`,
the guide's `have_enqueued_job` and `perform_now`); then every example job run end to end by a real
`jobctl start` against the local webhook receiver."""

from __future__ import annotations

import csv
import os
import re
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psutil
import pytest

import jobctl
import jobctl.database
from examples import demo
from examples.app import db
from examples.app.jobs import (
    CalculateMetricsJob,
    DeliverBundledNotificationsJob,
    DispatchWebhookJob,
    ExportDataJob,
    NotifyRecipientsJob,
)
from examples.app.models import Bundle, Comment, Delivery, Entity, Export, Notification, User, Webhook, WebhookError
from examples.receiver import Receiver
from examples.traffic import UNKNOWN_EXPORT_TYPE, Pace, Traffic
from jobctl.later import LaterJob
from jobctl.recurring import RecurringCommandJob, check_tasks, load_recurring, register_tasks
from jobctl.testing import TestQueue, assert_enqueued, enqueued_jobs, perform_enqueued_jobs
from tests.runtime_helpers import ROOT, start, stop, wait_for, write_config

RECURRING_YML = ROOT / "examples" / "config" / "recurring.yml"


@pytest.fixture
def app(configured: str) -> str:
    """jobctl configured for a fresh database that also holds the app's tables (each backend in turn)."""
    db.create_tables()
    return configured


@pytest.fixture
def queue(jobctl_queue: TestQueue) -> TestQueue:
    """The plugin's isolated queue, its database also holding the app's tables."""
    db.create_tables()
    return jobctl_queue


@pytest.fixture(autouse=True)
def exports_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Exports go to this test's directory (a runtime started by the test inherits it)."""
    path = tmp_path / "exports"
    monkeypatch.setenv(Export.DIRECTORY_ENV, str(path))
    monkeypatch.delenv(Export.ROW_DELAY_ENV, raising=False)
    return path


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver(log=None)
    server.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def people() -> tuple[User, User, User]:
    return (User.find_or_create("alice@example.com", "Alice"), User.find_or_create("bob@example.com", "Bob"),
            User.find_or_create("carol@example.com", "Carol"))


def carols_comment() -> tuple[Comment, User, User, User]:
    """Carol comments on Alice's entity, which Bob commented on before: Alice and Bob are told."""
    alice, bob, carol = people()
    cafe = Entity.find_or_create(alice, "Corner Café")
    Comment.create(cafe, bob, "Slow wifi.")
    return Comment.create(cafe, carol, "Agreed."), alice, bob, carol


def notified(comment: Comment) -> set[int]:
    return {n.recipient_id for n in Notification.for_comment(comment.id)}


# -- pattern 1: notifications -------------------------------------------------------------------


def test_notify_recipients_now_creates_notifications(app: str) -> None:
    comment, alice, bob, _ = carols_comment()
    assert comment.notify_recipients_now() == 2
    assert notified(comment) == {alice.id, bob.id}
    assert {n.action for n in Notification.for_comment(comment.id)} == {"comment_created"}


def test_notify_recipients_now_does_not_notify_the_creator(app: str) -> None:
    comment, _, _, carol = carols_comment()
    comment.notify_recipients_now()
    assert carol.id not in notified(comment)
    assert carol.id == comment.creator_id


def test_notify_recipients_now_twice_notifies_once(app: str) -> None:
    comment, *_ = carols_comment()
    comment.notify_recipients_now()
    assert comment.notify_recipients_now() == 0
    assert len(Notification.for_comment(comment.id)) == 2


def test_the_job_performed_now_creates_the_notifications(app: str) -> None:
    comment, alice, bob, _ = carols_comment()
    NotifyRecipientsJob.perform_now(comment.id)
    assert notified(comment) == {alice.id, bob.id}


def test_the_job_can_be_enqueued_on_the_default_queue(queue: TestQueue) -> None:
    comment, *_ = carols_comment()
    NotifyRecipientsJob.perform_later(comment.id)
    assert_enqueued(NotifyRecipientsJob, args=[comment.id], queue="default", count=1)


def test_the_enqueued_job_calls_notify_recipients_now(queue: TestQueue) -> None:
    comment, alice, bob, _ = carols_comment()
    NotifyRecipientsJob.perform_later(comment.id)
    before = len(Notification.for_comment(comment.id))
    assert perform_enqueued_jobs() == 1
    assert len(Notification.for_comment(comment.id)) == before + 2  # the guide's change(Notification, :count).by(2)
    assert notified(comment) == {alice.id, bob.id}
    assert enqueued_jobs() == []


def test_the_job_discards_a_deleted_comment(app: str) -> None:
    comment, *_ = carols_comment()
    comment.destroy()
    with pytest.raises(jobctl.RecordNotFound):
        NotifyRecipientsJob.perform_now(comment.id)
    assert jobctl.RecordNotFound in NotifyRecipientsJob.discard_on


def test_notify_recipients_later_enqueues_a_job_on_the_default_queue(queue: TestQueue) -> None:
    comment, alice, bob, _ = carols_comment()
    handle = comment.notify_recipients_later()
    (info,) = assert_enqueued(LaterJob, queue="default", count=1)
    assert (info.id, info.state) == (handle.id, "ready")
    record, method = info.arguments["args"]
    assert record == {"__jobctl__": "record", "class": "examples.app.models:Comment", "id": comment.id}
    assert method == "notify_recipients_now"
    assert Notification.for_comment(comment.id) == []  # nothing happens until a worker runs it
    assert NotifyRecipientsJob.queue == "default"

    assert perform_enqueued_jobs() == 1
    assert notified(comment) == {alice.id, bob.id}


def test_posting_a_comment_enqueues_its_job_in_the_same_transaction(queue: TestQueue) -> None:
    alice, bob, _ = people()
    cafe = Entity.find_or_create(alice, "Corner Café")
    comments = Comment.count()
    comment = Comment.post(cafe, bob, "Great coffee.")
    assert Comment.count() == comments + 1
    assert Comment.find(comment.id) == comment
    assert_enqueued(LaterJob, queue="default", count=1)

    with pytest.raises(RuntimeError), db.transaction() as conn, jobctl.using(conn):
        Comment.create(cafe, bob, "Never saved.", conn=conn).notify_recipients_later()
        raise RuntimeError("the request failed")
    assert Comment.count() == comments + 1  # neither the comment nor its job
    assert_enqueued(LaterJob, queue="default", count=1)

    assert perform_enqueued_jobs() == 1
    assert notified(comment) == {alice.id}  # the entity's owner; not Bob, who wrote it


# -- pattern 3: idempotent metrics --------------------------------------------------------------


def test_calculate_metrics_is_idempotent(app: str) -> None:
    alice, bob, carol = people()
    entity = Entity.find_or_create(alice, "Corner Café")
    for user, rating in ((alice, 5), (bob, 4), (carol, 4)):
        entity.add_submission(user, rating)
    for _ in range(2):  # at-least-once: a second run changes nothing
        CalculateMetricsJob.perform_now(entity.id)
        fresh = Entity.find_by(entity.id)
        assert fresh is not None and (fresh.average_score, fresh.submissions_count) == (4.3, 3)


def test_calculate_metrics_of_an_entity_without_submissions(app: str) -> None:
    entity = Entity.find_or_create(people()[0], "Empty")
    entity.calculate_metrics_now()
    assert (entity.average_score, entity.submissions_count) == (0.0, 0)


def test_calculate_metrics_ignores_a_deleted_entity(app: str) -> None:
    entity = Entity.find_or_create(people()[0], "Closed Bakery")
    entity.destroy()
    assert CalculateMetricsJob.perform_now(entity.id) is None  # returns early, no error
    assert Entity.find_by(entity.id) is None


def test_calculate_metrics_later_enqueues_the_id_and_a_deleted_entity_finishes(queue: TestQueue) -> None:
    entity = Entity.find_or_create(people()[0], "Closed Bakery")
    handle = entity.calculate_metrics_later()
    assert_enqueued(CalculateMetricsJob, args=[entity.id], queue="default", count=1)
    entity.destroy()
    assert perform_enqueued_jobs() == 1
    assert jobctl.get_job(handle.id).state == "finished"


# -- pattern 4: webhook with retries ------------------------------------------------------------


def test_dispatch_now_counts_a_failure_and_raises_then_succeeds(app: str, receiver: Receiver) -> None:
    hook = Webhook.register("test", f"{receiver.url}/hooks/test")
    with pytest.raises(WebhookError, match="HTTP 500"):
        hook.dispatch_now({"type": "ping", "n": 1})
    hook.dispatch_now({"type": "ping", "n": 1})  # the same delivery again, as a retry sends it
    with pytest.raises(WebhookError, match="HTTP 500"):
        hook.dispatch_now({"type": "ping", "n": 2})  # a new delivery: its first try fails too
    fresh = hook.reload()
    assert (fresh.successful_deliveries, fresh.failed_deliveries) == (1, 2)
    assert [(d.path, d.attempt, d.status, d.body) for d in receiver.received] == [
        ("/hooks/test", 1, 500, {"type": "ping", "n": 1}), ("/hooks/test", 2, 200, {"type": "ping", "n": 1}),
        ("/hooks/test", 1, 500, {"type": "ping", "n": 2})]


def test_dispatch_now_to_nowhere_raises_webhook_error(app: str) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens there once closed
    hook = Webhook.register("gone", f"http://127.0.0.1:{port}/")
    with pytest.raises(WebhookError, match="unreachable"):
        hook.dispatch_now({"type": "ping"})
    assert hook.reload().failed_deliveries == 1


def test_dispatch_webhook_job_retries_webhook_errors_and_discards_missing_webhooks(app: str) -> None:
    (rule,) = DispatchWebhookJob.retry_on
    assert rule.matches(WebhookError("HTTP 500")) and not rule.matches(ValueError())
    assert rule.exhausted(5) and not rule.exhausted(4)
    assert DispatchWebhookJob.discard_on == (jobctl.RecordNotFound,)
    hook = Webhook.register("test", "http://127.0.0.1:9/")
    hook.destroy()
    with pytest.raises(jobctl.RecordNotFound):
        DispatchWebhookJob.perform_now(hook, {"type": "ping"})


def test_dispatch_later_is_retried_until_delivered(queue: TestQueue, receiver: Receiver) -> None:
    hook = Webhook.register("test", f"{receiver.url}/hooks/test")
    handle = hook.dispatch_later({"type": "ping"})
    (info,) = assert_enqueued(DispatchWebhookJob, args=[hook, {"type": "ping"}], queue="webhooks", count=1)
    assert info.arguments["args"][0] == {"__jobctl__": "record", "class": "examples.app.models:Webhook",
                                         "id": hook.id}  # the webhook travels as its id, never its URL
    assert perform_enqueued_jobs() == 2  # a 500, then (its wait skipped) a 200
    done = jobctl.get_job(handle.id)
    assert (done.state, done.attempts, len(done.errors)) == ("finished", 2, 1)
    assert (hook.reload().successful_deliveries, hook.reload().failed_deliveries) == (1, 1)


def test_dispatch_later_to_a_deleted_webhook_is_discarded(queue: TestQueue) -> None:
    hook = Webhook.register("gone", "http://127.0.0.1:9/")
    handle = hook.dispatch_later({"type": "ping"})
    hook.destroy()
    assert perform_enqueued_jobs() == 1  # no exception: discarded, not failed
    assert jobctl.get_job(handle.id).state == "discarded"


# -- pattern 2: bundled notifications -----------------------------------------------------------


def comments_notified() -> tuple[User, User, User]:
    """Bob, then Carol, comment on Alice's entity: Alice is told twice, Bob once, Carol never."""
    alice, bob, carol = people()
    cafe = Entity.find_or_create(alice, "Corner Café")
    Comment.create(cafe, bob, "Slow wifi.").notify_recipients_now()
    Comment.create(cafe, carol, "Agreed.").notify_recipients_now()
    return alice, bob, carol


def test_bundle_delivers_each_users_unread_notifications_once(app: str) -> None:
    alice, bob, carol = comments_notified()
    assert Bundle(alice).has_notifications() and not Bundle(carol).has_notifications()
    assert Bundle.deliver_all_now() == 2
    (to_alice,) = alice.deliveries()
    assert (to_alice.kind, to_alice.subject, to_alice.notifications_count) == (
        "bundled_notifications", "2 new notifications", 2)
    assert "Bob commented on Corner Café: Slow wifi." in to_alice.body
    assert "Carol commented on Corner Café: Agreed." in to_alice.body
    assert [(d.subject, d.notifications_count) for d in bob.deliveries()] == [("1 new notification", 1)]
    assert carol.deliveries() == []
    assert all(n.bundled_at is not None for user in (alice, bob) for n in user.notifications())

    assert Bundle.deliver_all_now() == 0  # idempotent: nothing is delivered twice
    assert Bundle(alice).deliver() is None
    assert len(Delivery.all()) == 2


def test_bundle_leaves_read_and_older_notifications_alone(app: str) -> None:
    alice, _, _ = comments_notified()
    older, read = alice.notifications()
    read.mark_as_read()
    with db.transaction() as conn:
        db.execute(conn, "UPDATE app_notifications SET created_at = ? WHERE id = ?",
                   (db.timestamp(conn, datetime.now(UTC) - Bundle.WINDOW - timedelta(minutes=1)), older.id))
    assert Bundle(alice).unread_notifications() == []
    assert Bundle.deliver_all_now() == 1  # Bob's only
    assert alice.deliveries() == []
    assert all(n.bundled_at is None for n in alice.notifications())


def test_deliver_all_later_enqueues_the_job(queue: TestQueue) -> None:
    alice, bob, _ = comments_notified()
    Bundle.deliver_all_later()
    assert_enqueued(DeliverBundledNotificationsJob, args=[], queue="default", count=1)
    assert perform_enqueued_jobs() == 1
    assert [len(alice.deliveries()), len(bob.deliveries())] == [1, 1]


def test_recurring_yml_runs_deliver_all_later(queue: TestQueue) -> None:
    (task,) = load_recurring(RECURRING_YML, env="development", explicit=True)
    assert (task.key, task.command, task.schedule.text, task.schedule.cron) == (
        "deliver_bundled_notifications", "examples.app.models:Bundle.deliver_all_later", "every 5 seconds",
        "*/5 * * * * *")  # every few seconds: `make demo` shows it tick
    (production,) = load_recurring(RECURRING_YML, env="production", explicit=True)
    assert (production.command, production.schedule.text) == (task.command, "every 30 minutes")
    assert check_tasks([task]) == {task.key: Bundle.deliver_all_later}

    # A tick, as the scheduler enqueues it and a worker runs it: the command enqueues the job, which delivers.
    alice, _, _ = comments_notified()
    register_tasks([task])
    try:
        RecurringCommandJob.perform_later(task.key)
        assert perform_enqueued_jobs() == 2
    finally:
        register_tasks([])
    assert len(alice.deliveries()) == 1


# -- pattern 5: export with progress ------------------------------------------------------------


def parks_with_benches(n: int) -> User:
    parks = User.find_or_create("parks@example.com", "Parks Department")
    with db.transaction() as conn:
        for i in range(1, n + 1):
            Entity.find_or_create(parks, f"Bench #{i:04d}", conn=conn)
    return parks


def read_csv(path: str | None) -> list[list[str]]:
    assert path is not None
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.reader(f))


def test_export_writes_a_csv_reporting_progress(app: str, exports_dir: Path) -> None:
    parks = parks_with_benches(3)
    export = Export.start(parks, "entities")
    reports: list[tuple[int, int, str]] = []
    path = export.generate_now(progress=lambda done, total, message: reports.append((done, total, message)))
    assert reports == [(0, 3, "rows"), (1, 3, "rows"), (2, 3, "rows"), (3, 3, "rows")]
    assert path.parent == exports_dir and path.name.endswith(f"_{export.id}.csv")
    fresh = Export.find_by(export.id)
    assert fresh is not None and (fresh.status, fresh.rows_count, fresh.file_path) == ("completed", 3, str(path))
    rows = read_csv(fresh.file_path)
    assert rows[0] == ["ID", "Name", "Average Score", "Submissions", "Created At"]
    assert [r[1] for r in rows[1:]] == ["Bench #0001", "Bench #0002", "Bench #0003"]
    assert [p.name for p in exports_dir.iterdir()] == [path.name]  # no partial file left


def test_export_data_job_exports_submissions_reporting_progress(app: str) -> None:
    alice, bob, _ = people()
    cafe = Entity.find_or_create(alice, "Corner Café")
    for rating in (5, 3):
        cafe.add_submission(bob, rating, f"{rating} stars")
    job = ExportDataJob(bob.id, "submissions")  # perform_now, keeping the job to read its progress
    job.execute()
    assert job.last_progress == (2, 2, "rows")
    (export,) = bob.exports()
    assert (export.export_type, export.status, export.rows_count, export.job_id) == ("submissions", "completed", 2,
                                                                                        None)
    rows = read_csv(export.file_path)
    assert rows[0] == ["ID", "Entity", "Rating", "Content", "Date"]
    assert [r[1:4] for r in rows[1:]] == [["Corner Café", "5", "5 stars"], ["Corner Café", "3", "3 stars"]]


def test_an_unknown_export_type_fails_the_export_and_the_job(app: str, exports_dir: Path) -> None:
    alice = people()[0]
    with pytest.raises(ValueError, match="Unknown export type: everything"):
        ExportDataJob.perform_now(alice.id, "everything")
    (export,) = alice.exports()
    assert (export.status, export.error_message, export.file_path) == (
        "failed", "Unknown export type: everything", None)
    assert not exports_dir.exists() or not any(exports_dir.iterdir())
    assert ExportDataJob.retry_on == () and ExportDataJob.discard_on == ()  # as in the guide: it fails
    with pytest.raises(jobctl.RecordNotFound):
        ExportDataJob.perform_now(alice.id + 1000, "entities")


def test_a_retried_export_job_reuses_its_export(app: str) -> None:
    parks = parks_with_benches(1)
    first = Export.start(parks, "entities", job_id=42)
    first.generate_now()
    again = Export.start(parks, "entities", job_id=42)
    assert (again.id, again.status, again.file_path) == (first.id, "processing", None)
    assert len(parks.exports()) == 1


def test_export_data_later_runs_on_the_exports_queue(queue: TestQueue) -> None:
    parks = parks_with_benches(5)
    handle = parks.export_data_later("entities")
    assert_enqueued(ExportDataJob, args=[parks.id, "entities"], queue="exports", count=1)
    assert perform_enqueued_jobs() == 1
    (export,) = parks.exports()
    assert (export.job_id, export.status, export.rows_count) == (handle.id, "completed", 5)
    assert len(read_csv(export.file_path)) == 6

    parks.export_data_later("everything")
    with pytest.raises(ValueError, match="Unknown export type"):
        perform_enqueued_jobs()  # a failed job re-raises here
    assert [e.status for e in parks.exports()] == ["completed", "failed"]


# -- everything, run by a real `jobctl start` ---------------------------------------------------


def active_jobs() -> int:
    """Jobs not yet ended, read in one statement: counts of each state read one after another can all miss a
    job moving between them (a retry made ready by the dispatcher between the ready and the scheduled count)."""
    return sum(c.count for c in jobctl.database.get_store().queue_counts().counts if c.state != "failed")


@pytest.mark.slow
def test_the_demo_jobs_run_end_to_end(app: str, receiver: Receiver, tmp_path: Path) -> None:
    done = demo.enqueue_examples(receiver.url, export_rows=300)
    assert done.jobs_after_rollback == done.jobs_before_rollback
    config = write_config(tmp_path / "queue.yml", processes=1, extra="imports: [examples.app]\n")
    proc = start(app, config, "--recurring-schedule-file", str(RECURRING_YML), log=tmp_path / "log")
    try:
        wait_for(lambda: active_jobs() == 0, timeout=20, what="every example job to be done")
        (task,) = jobctl.database.get_store().recurring_tasks()
    finally:
        assert stop(proc) == 0
    assert jobctl.count(state="failed") == 0, (tmp_path / "log").read_text()
    assert (task.key, task.schedule, task.command) == (
        "deliver_bundled_notifications", "every 5 seconds", "examples.app.models:Bundle.deliver_all_later")

    alice, bob, carol = people()
    assert [notified(c) for c in done.comments] == [{alice.id, carol.id}, {alice.id, bob.id}, {bob.id}]
    assert jobctl.get_job(done.duplicate_notify_job).state == "finished"

    cafe, park = (Entity.find_by(e.id) for e in done.entities)
    assert cafe is not None and (cafe.average_score, cafe.submissions_count) == (4.3, 3)
    assert park is not None and (park.average_score, park.submissions_count) == (4.0, 2)

    webhook_jobs = [jobctl.get_job(i) for i in done.webhook_jobs]
    assert {j.state for j in webhook_jobs} == {"finished"}
    for job in webhook_jobs:  # the receiver fails each delivery's first POST: every job retried once
        assert job.attempts == 2 and len(job.errors) == 1
        assert job.errors[0].error_class == "examples.app.models.WebhookError"
        assert "HTTP 500" in job.errors[0].message
    assert done.webhook is not None
    hook = done.webhook.reload()
    assert (hook.successful_deliveries, hook.failed_deliveries) == (2, 2)
    assert sorted(d.status for d in receiver.received) == [200, 200, 500, 500]
    assert jobctl.get_job(done.deleted_webhook_job).state == "discarded"

    # Bundles: the demo's delivery ran after the notifications (normally: it waits 3 s); one more run
    # delivers whatever it may have missed, and never anything twice.
    assert jobctl.get_job(done.bundle_job).state == "finished"
    Bundle.deliver_all_now()
    deliveries = Delivery.all()
    assert sum(d.notifications_count for d in deliveries) == 5  # every notification, once
    assert {d.user_id for d in deliveries} == {alice.id, bob.id, carol.id}

    export_job = jobctl.get_job(done.export_job)
    assert export_job.state == "finished"
    assert export_job.progress is not None
    assert (export_job.progress.done, export_job.progress.total, export_job.progress.message) == (300, 300, "rows")
    assert done.export_user is not None
    (export,) = done.export_user.exports()
    assert (export.status, export.rows_count, export.job_id) == ("completed", 300, done.export_job)
    assert len(read_csv(export.file_path)) == 301

    printed = demo.describe(app, ["0001_init"], receiver, done) + demo.results(done)
    assert ("$ jobctl start --config examples/config/queue.yml --recurring-schedule-file "
            "examples/config/recurring.yml") in printed
    assert f"comment #{done.comments[1].id} by Carol: notified Alice, Bob" in printed
    assert "Corner Café: average 4.3 over 3 submissions" in printed
    assert f"export #{export.id} of entities: completed: 300 rows in {export.file_path}" in printed


# -- the demo that stays alive: its simulated users, then `make demo` itself --------------------


def test_destroying_an_export_deletes_its_file(app: str, exports_dir: Path) -> None:
    parks = parks_with_benches(2)
    export = Export.start(parks, "entities")
    path = export.generate_now()
    export.destroy()
    assert parks.exports() == [] and not path.exists()
    Export.start(parks, "everything").destroy()  # a failed export has no file: nothing else to delete
    assert parks.exports() == []


def test_traffic_acts_as_the_apps_users(queue: TestQueue, receiver: Receiver) -> None:
    alice, bob, carol = people()
    cafe = Entity.find_or_create(alice, "Corner Café")
    hook = Webhook.register("demo", f"{receiver.url}/hooks/demo")
    traffic = Traffic([alice, bob, carol], [cafe], hook, alice, seed=1)
    traffic.comment()
    traffic.rate()
    assert_enqueued(LaterJob, queue="default", count=1)  # the comment's notifications
    (dispatch,) = assert_enqueued(DispatchWebhookJob, queue="webhooks", count=1)
    assert dispatch.arguments["args"][1]["type"] == "comment.created"
    assert_enqueued(CalculateMetricsJob, args=[cafe.id], queue="default", count=1)
    assert perform_enqueued_jobs() == 4  # the webhook twice: the receiver fails its first try
    assert len(jobctl.get_job(dispatch.id).errors) == 1

    traffic.ask_for_an_unknown_export()
    (bad,) = assert_enqueued(ExportDataJob, queue="exports", count=1)
    assert bad.arguments["args"][1] == UNKNOWN_EXPORT_TYPE
    with pytest.raises(ValueError, match=f"Unknown export type: {UNKNOWN_EXPORT_TYPE}"):
        perform_enqueued_jobs()
    assert jobctl.get_job(bad.id).state == "failed"  # for good: r / d in top have something to act on
    assert (traffic.counts["comments"], traffic.counts["ratings"], traffic.counts["bad exports"]) == (1, 1, 1)


def test_traffic_keeps_one_export_running_and_only_its_last_few(queue: TestQueue, exports_dir: Path) -> None:
    parks = parks_with_benches(2)
    first = parks.export_data_later("entities")  # the demo's own export, running when the traffic starts
    traffic = Traffic(people(), [], Webhook.register("demo", "http://127.0.0.1:9/"), parks,
                      running_export=first.id, pace=Pace(exports_kept=2))
    traffic.keep_exporting()
    assert traffic.counts["exports"] == 0  # the first is not done yet
    for _ in range(4):
        assert perform_enqueued_jobs() == 1
        traffic.keep_exporting()
        traffic.keep_exporting()  # one at a time: the new one is not done yet
    assert traffic.counts["exports"] == 4
    perform_enqueued_jobs()
    kept = parks.exports()
    assert kept[0].job_id == first.id  # not the traffic's own export: never deleted
    assert len(kept) == 3 and {e.status for e in kept} == {"completed"}
    assert sorted(p.name for p in exports_dir.iterdir()) == sorted(Path(str(e.file_path)).name for e in kept)


def _demo_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JOBCTL_", "DATABASE"))}
    env[Export.ROW_DELAY_ENV] = "0.0005"  # the export reports progress for a second or two, not seven
    return env


@pytest.mark.slow
def test_make_demo_keeps_the_app_busy_until_ctrl_c(backend: str, request: pytest.FixtureRequest,
                                                   tmp_path: Path) -> None:
    url = str(request.getfixturevalue("pg_url" if backend == "postgresql" else "sqlite_url"))
    log = tmp_path / "demo.log"
    with open(log, "wb") as out:
        # Its own session, so a failure below can stop every process it started (and nothing else).
        proc = subprocess.Popen([sys.executable, "examples/demo.py", "--database", url], cwd=ROOT, env=_demo_env(),
                                stdout=out, stderr=subprocess.STDOUT, start_new_session=True)

    def printed() -> str:
        return log.read_text(errors="replace")

    try:
        started = wait_for(lambda: re.search(r"export +job (\d+):", printed()), timeout=30,
                           what="the demo to enqueue its examples")
        last_of_burst = int(started.group(1))  # the export is the last job enqueue_examples makes
        jobctl.configure(database_url=url)
        store = jobctl.database.get_store()
        claimed_with_progress: set[str] = set()
        burst_done_at: list[int] = []  # the newest job id once every job of the initial burst is done
        pids: set[int] = set()

        def alive_and_busy() -> bool:
            assert proc.poll() is None, printed()
            claimed_with_progress.update(c.class_path for c in store.claimed_executions(200) if c.progress is not None)
            pids.update(p.pid for p in store.processes())
            newest = store.list_jobs(limit=200)
            if not burst_done_at:
                burst = store.get_jobs(range(1, last_of_burst + 1))
                if {j.state for j in burst} <= {"finished", "discarded"}:
                    burst_done_at.append(newest[0].id)
                return False
            later = {j.queue for j in newest if j.id > burst_done_at[0]}
            ticks = store.list_jobs(class_path="jobctl.recurring:RecurringCommandJob")
            return (later >= {"default", "webhooks", "exports"} and jobctl.count(state="failed") >= 1
                    and "examples.app.jobs:ExportDataJob" in claimed_with_progress and len(ticks) >= 2)

        wait_for(alive_and_busy, timeout=40, what="new work on every queue, a failure, an export's progress and "
                                                  "two recurring ticks")
        (failed,) = store.list_jobs(state="failed")[-1:]
        assert (failed.class_path, failed.arguments["args"][1]) == ("examples.app.jobs:ExportDataJob",
                                                                     UNKNOWN_EXPORT_TYPE)

        proc.send_signal(signal.SIGINT)  # Ctrl-C, to the demo alone: it stops jobctl start itself
        assert proc.wait(30) == 0, printed()
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        jobctl.configure(database_url=None)
    jobctl.configure(database_url=url)
    try:
        assert jobctl.database.get_store().processes() == []
        assert jobctl.count(state="claimed") == 0
    finally:
        jobctl.configure(database_url=None)
    assert len(pids) >= 5 and not [pid for pid in pids if psutil.pid_exists(pid)]  # supervisor and its children
    out = printed()
    assert re.search(r"supervisor \(pid \d+\) stopped", out), out
    assert re.search(r"The demo's users meanwhile: [1-9]\d* comments?, ", out), out
    assert "demo traffic:" not in out, out  # no action of the simulated users failed
