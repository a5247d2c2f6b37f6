"""The example app (examples/): its models tested directly, as the seed tests them, then every
example job run end to end by a real `jobctl start` against the local webhook receiver."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

import jobctl
from examples import demo
from examples.app import db
from examples.app.jobs import CalculateMetricsJob, DispatchWebhookJob, NotifyRecipientsJob
from examples.app.models import Comment, Entity, Notification, User, Webhook, WebhookError
from examples.receiver import Receiver
from tests.runtime_helpers import start, stop, wait_for, write_config


@pytest.fixture
def app(configured: str) -> str:
    """jobctl configured for a fresh database that also holds the app's tables."""
    db.create_tables()
    return configured


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


def test_the_job_discards_a_deleted_comment(app: str) -> None:
    comment, *_ = carols_comment()
    comment.destroy()
    with pytest.raises(jobctl.RecordNotFound):
        NotifyRecipientsJob.perform_now(comment.id)
    assert jobctl.RecordNotFound in NotifyRecipientsJob.discard_on


def test_notify_recipients_later_enqueues_a_job_on_the_default_queue(app: str) -> None:
    comment, *_ = carols_comment()
    handle = comment.notify_recipients_later()
    info = jobctl.get_job(handle.id)
    assert (info.class_path, info.queue, info.state) == ("jobctl.later:LaterJob", "default", "ready")
    record = info.arguments["args"][0]
    assert record == {"__jobctl__": "record", "class": "examples.app.models:Comment", "id": comment.id}
    assert Notification.for_comment(comment.id) == []  # nothing happens until a worker runs it
    assert NotifyRecipientsJob.queue == "default"


def test_posting_a_comment_enqueues_its_job_in_the_same_transaction(app: str) -> None:
    alice, bob, _ = people()
    cafe = Entity.find_or_create(alice, "Corner Café")
    comments, jobs = Comment.count(), jobctl.count()
    comment = Comment.post(cafe, bob, "Great coffee.")
    assert (Comment.count(), jobctl.count(state="ready")) == (comments + 1, jobs + 1)
    assert Comment.find(comment.id) == comment

    with pytest.raises(RuntimeError), db.transaction() as conn, jobctl.using(conn):
        Comment.create(cafe, bob, "Never saved.", conn=conn).notify_recipients_later()
        raise RuntimeError("the request failed")
    assert (Comment.count(), jobctl.count()) == (comments + 1, jobs + 1)  # neither the comment nor its job


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
    handle = entity.calculate_metrics_later()
    assert jobctl.get_job(handle.id).arguments["args"] == [entity.id]
    entity.destroy()
    assert CalculateMetricsJob.perform_now(entity.id) is None  # returns early, no error
    assert Entity.find_by(entity.id) is None


# -- pattern 4: webhook with retries ------------------------------------------------------------


def test_dispatch_now_counts_a_failure_and_raises_then_succeeds(app: str, receiver: Receiver) -> None:
    hook = Webhook.register("test", f"{receiver.url}/hooks/test")
    with pytest.raises(WebhookError, match="HTTP 500"):
        hook.dispatch_now({"type": "ping", "n": 1})
    hook.dispatch_now({"type": "ping", "n": 2})
    fresh = hook.reload()
    assert (fresh.successful_deliveries, fresh.failed_deliveries) == (1, 1)
    assert [(d.path, d.status, d.body) for d in receiver.received] == [
        ("/hooks/test", 500, {"type": "ping", "n": 1}), ("/hooks/test", 200, {"type": "ping", "n": 2})]


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
    handle = hook.dispatch_later({"type": "ping"})
    info = jobctl.get_job(handle.id)
    assert info.queue == "webhooks"
    assert "127.0.0.1:9" not in json.dumps(info.arguments)  # the webhook travels as its id
    hook.destroy()
    with pytest.raises(jobctl.RecordNotFound):
        DispatchWebhookJob.perform_now(hook, {"type": "ping"})


# -- everything, run by a real `jobctl start` ---------------------------------------------------


@pytest.mark.slow
def test_the_demo_jobs_run_end_to_end(app: str, receiver: Receiver, tmp_path: Path) -> None:
    done = demo.enqueue_examples(receiver.url)
    assert done.jobs_after_rollback == done.jobs_before_rollback
    config = write_config(tmp_path / "queue.yml", processes=1, extra="imports: [examples.app]\n")
    proc = start(app, config, log=tmp_path / "log")
    try:
        wait_for(lambda: jobctl.count(state="ready") + jobctl.count(state="scheduled") + jobctl.count(state="claimed")
                 == 0, timeout=20, what="every example job to be done")
    finally:
        assert stop(proc) == 0
    assert jobctl.count(state="failed") == 0, (tmp_path / "log").read_text()

    alice, bob, carol = people()
    assert [notified(c) for c in done.comments] == [{alice.id, carol.id}, {alice.id, bob.id}, {bob.id}]
    assert jobctl.get_job(done.duplicate_notify_job).state == "finished"

    cafe, park = (Entity.find_by(e.id) for e in done.entities)
    assert cafe is not None and (cafe.average_score, cafe.submissions_count) == (4.3, 3)
    assert park is not None and (park.average_score, park.submissions_count) == (4.0, 2)

    webhook_jobs = [jobctl.get_job(i) for i in done.webhook_jobs]
    assert {j.state for j in webhook_jobs} == {"finished"}
    retried = [j for j in webhook_jobs if j.errors]
    assert len(retried) == 1  # the receiver fails only the first POST on its path
    assert retried[0].attempts == 2 and len(retried[0].errors) == 1
    assert retried[0].errors[0].error_class == "examples.app.models.WebhookError"
    assert "HTTP 500" in retried[0].errors[0].message
    assert done.webhook is not None
    hook = done.webhook.reload()
    assert (hook.successful_deliveries, hook.failed_deliveries) == (2, 1)
    assert sorted(d.status for d in receiver.received) == [200, 200, 500]
    assert jobctl.get_job(done.deleted_webhook_job).state == "discarded"

    printed = demo.describe(app, ["0001_init"], receiver, done) + demo.results(done)
    assert "$ jobctl start --config examples/config/queue.yml" in printed
    assert f"comment #{done.comments[1].id} by Carol: notified Alice, Bob" in printed
    assert "Corner Café: average 4.3 over 3 submissions" in printed
