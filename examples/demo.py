"""`make demo`: the example app at work on the embedded SQLite file, run by `jobctl start` until Ctrl-C.

    python examples/demo.py [--database URL]     # from the repository root; make demo DATABASE=… does this

The database is --database, else $DATABASE, else sqlite:///examples/demo.sqlite3. The demo migrates
jobctl's schema, creates the app's tables, starts a local webhook receiver, seeds a few users,
entities, comments and webhooks, enqueues one of each example job, then runs
`jobctl start --config examples/config/queue.yml --recurring-schedule-file examples/config/recurring.yml`
in the foreground. Meanwhile a thread of its own plays the app's users (examples/traffic.py): a comment
every few seconds (notifications, and a webhook the receiver fails once, so it retries), ratings
(metrics), an export always running (progress), and now and then an export that fails for good; the
recurring bundled delivery runs every 5 seconds. So `jobctl top` always has queues, claimed jobs,
failures, recurring runs and processes to show and act on. Ctrl-C (or SIGINT/SIGTERM to this process)
stops the trickle and `jobctl start` together; a second Ctrl-C stops it at once.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script: make `examples` importable
    sys.path.insert(0, str(ROOT))

import jobctl  # noqa: E402
import jobctl.database  # noqa: E402
import jobctl.store  # noqa: E402
from examples.app import db  # noqa: E402
from examples.app.jobs import CalculateMetricsJob, DeliverBundledNotificationsJob, NotifyRecipientsJob  # noqa: E402
from examples.app.models import Comment, Entity, Export, Notification, User, Webhook  # noqa: E402
from examples.receiver import Receiver  # noqa: E402
from examples.traffic import PACE, UNKNOWN_EXPORT_TYPE, Pace, Traffic  # noqa: E402
from jobctl import urls  # noqa: E402

DEFAULT_DATABASE = ROOT / "examples" / "demo.sqlite3"
CONFIG = "examples/config/queue.yml"
RECURRING = "examples/config/recurring.yml"
EXPORT_ROWS = 3000
"""Entities the demo's export writes (created once: running the demo again adds none)."""
EXPORT_ROW_DELAY = "0.002"
"""Seconds the demo's workers sleep per exported row (Export.ROW_DELAY_ENV): a few seconds of progress to watch."""
BUNDLE_WAIT = 3.0
"""Seconds before the demo's own bundled delivery runs: after the notification jobs it bundles."""
STOP_GRACE = 10.0
"""Seconds `jobctl start` gets to stop after a Ctrl-C (its shutdown_timeout is 5 s) before the demo stops it
at once (SIGQUIT)."""


class _Rollback(Exception):
    """Raised to abandon a transaction on purpose."""


@dataclass
class Enqueued:
    """What `enqueue_examples` created, for the printout and the tests."""

    people: list[User] = field(default_factory=list)
    comments: list[Comment] = field(default_factory=list)
    duplicate_notify_job: int = 0
    jobs_before_rollback: int = 0
    jobs_after_rollback: int = 0
    entities: list[Entity] = field(default_factory=list)
    deleted_entity: Entity | None = None
    metrics_jobs: int = 0
    webhook: Webhook | None = None
    webhook_jobs: list[int] = field(default_factory=list)
    deleted_webhook_job: int = 0
    bundle_job: int = 0
    export_user: User | None = None
    export_job: int = 0
    export_rows: int = 0


def database_url(given: str | None) -> str:
    """The URL to use, with an SQLite path made absolute (the runtime may run elsewhere)."""
    raw = given or os.environ.get("DATABASE") or f"sqlite:///{DEFAULT_DATABASE}"
    parsed = urls.parse(raw)
    return f"sqlite:///{parsed.target}" if parsed.backend == "sqlite" else raw


def prepare(url: str) -> list[str]:
    """Point jobctl (and so the app) at `url`, migrate jobctl's schema, create the app's tables."""
    jobctl.configure(database_url=url)
    store = jobctl.store.open_store(jobctl.database.resolve_url())
    try:
        applied = store.migrate()
    finally:
        store.close()
    db.create_tables()
    return applied


def enqueue_examples(receiver_url: str, export_rows: int = EXPORT_ROWS) -> Enqueued:
    """Seed the app and enqueue one of everything the example jobs show."""
    out = Enqueued()
    alice = User.find_or_create("alice@example.com", "Alice")
    bob = User.find_or_create("bob@example.com", "Bob")
    carol = User.find_or_create("carol@example.com", "Carol")
    cafe = Entity.find_or_create(alice, "Corner Café")
    park = Entity.find_or_create(bob, "River Park")
    out.people = [alice, bob, carol]

    # Pattern 1, notifications: each comment and its job are written in one transaction of the app's.
    for entity, author, body in ((cafe, bob, "Great coffee, slow wifi."),
                                 (cafe, carol, "Agreed about the wifi."),
                                 (park, alice, "The new benches are nice.")):
        out.comments.append(Comment.post(entity, author, body))
    # At-least-once delivery: the same notifications requested again add none.
    out.duplicate_notify_job = NotifyRecipientsJob.perform_later(out.comments[0].id).id
    # A transaction that rolls back takes its job with it.
    out.jobs_before_rollback = jobctl.count()
    try:
        with db.transaction() as conn, jobctl.using(conn):
            Comment.create(park, carol, "This comment is never saved.", conn=conn).notify_recipients_later()
            raise _Rollback
    except _Rollback:
        pass
    out.jobs_after_rollback = jobctl.count()

    # Pattern 3, idempotent metrics: new ratings, then every entity's metrics in one bulk enqueue;
    # the café twice (safe), and an entity deleted before its job runs (the job returns early).
    for entity, user, rating in ((cafe, bob, 5), (cafe, carol, 4), (cafe, bob, 4), (park, alice, 3), (park, carol, 5)):
        entity.add_submission(user, rating, f"{user.name} rates {entity.name} {rating}/5")
    closing = Entity.find_or_create(carol, "Closed Bakery")
    closing.add_submission(alice, 2)
    out.entities = [cafe, park]
    out.deleted_entity = closing
    out.metrics_jobs = jobctl.perform_all_later([CalculateMetricsJob(e.id) for e in (cafe, park, cafe, closing)])
    closing.destroy()

    # Pattern 4, webhook with retries: the receiver fails each delivery's first POST, the job retries it.
    out.webhook = Webhook.register("demo", f"{receiver_url}/hooks/demo")
    for comment in out.comments[:2]:
        event = {"type": "comment.created", "comment_id": comment.id, "entity_id": comment.entity_id,
                 "body": comment.body}
        out.webhook_jobs.append(out.webhook.dispatch_later(event).id)
    removed = Webhook.register("removed", f"{receiver_url}/hooks/removed")
    out.deleted_webhook_job = removed.dispatch_later({"type": "ping"}).id
    removed.destroy()  # before the job runs: discarded (RecordNotFound), not retried

    # Pattern 2, bundled notifications: config/recurring.yml runs Bundle.deliver_all_later every 5 seconds
    # (development); the demo also asks for one a few seconds in, once the notification jobs above have run.
    out.bundle_job = DeliverBundledNotificationsJob.set(wait=BUNDLE_WAIT).perform_later().id

    # Pattern 5, export with progress: a user with many records, exported as CSV by one long job.
    parks = User.find_or_create("parks@example.com", "Parks Department")
    with db.transaction() as conn:
        for i in range(1, export_rows + 1):
            Entity.find_or_create(parks, f"Bench #{i:04d}", conn=conn)
    out.export_user, out.export_rows = parks, export_rows
    out.export_job = parks.export_data_later("entities").id
    return out


def describe(url: str, applied: list[str], receiver: Receiver, done: Enqueued, pace: Pace = PACE) -> str:
    """What the demo did, for the terminal."""
    default = url == f"sqlite:///{DEFAULT_DATABASE}"
    shown = "sqlite:///examples/demo.sqlite3" if default else urls.redact(url)
    assert done.webhook is not None and done.deleted_entity is not None and done.export_user is not None
    comments = ", ".join(f"#{c.id}" for c in done.comments)
    return "\n".join([
        f"jobctl demo on {shown}",
        f"  jobctl schema: {'migrated: ' + ', '.join(applied) if applied else 'up to date'}",
        f"  app tables:    {', '.join(db.TABLES)}",
        f"  receiver:      {receiver.url} (answers 500 to each delivery's first POST, 200 to its retry)",
        "",
        "Enqueued, for the workers started below:",
        f"  notifications  comments {comments}: Comment.post() wrote each comment and its",
        "                 notify_recipients_later() job in one transaction (jobctl.using)",
        f"                 job {done.duplicate_notify_job}: NotifyRecipientsJob for comment {done.comments[0].id} "
        "again (a duplicate: adds no notification)",
        f"                 a comment whose transaction rolled back took its job along ({done.jobs_before_rollback} "
        f"jobs before, {done.jobs_after_rollback} after)",
        f"  metrics        {done.metrics_jobs} CalculateMetricsJob in one perform_all_later: "
        f"{done.entities[0].name} twice (idempotent),",
        f"                 {done.deleted_entity.name} deleted before its job runs (the job returns early)",
        f"  webhooks       jobs {', '.join(str(i) for i in done.webhook_jobs)}: DispatchWebhookJob to "
        f"{done.webhook.url}",
        "                 (each first POST gets a 500 and is retried ~3 s later)",
        f"                 job {done.deleted_webhook_job}: its webhook was deleted meanwhile: discarded "
        "(RecordNotFound)",
        f"  bundles        job {done.bundle_job}: DeliverBundledNotificationsJob in {BUNDLE_WAIT:g} s: each user's "
        "unread notifications",
        f"                 as one delivery; {RECURRING} runs it every 5 seconds (jobctl recurring)",
        f"  export         job {done.export_job}: ExportDataJob of {done.export_user.name}'s {done.export_rows} "
        f"entities to CSV in {Export.directory()},",
        f"                 reporting progress as it goes (jobctl show {done.export_job})",
        "",
        "Then, until Ctrl-C, the demo plays the app's users (examples/traffic.py), under two jobs a second:",
        *(f"  {when:<15}{what}" for when, what in (
            (f"every {pace.comment:g} s", "a comment: its notifications (queue default) and a webhook (webhooks),"),
            ("", "which the receiver fails once, so it retries"),
            (f"every {pace.rating:g} s", "a rating: its entity's metrics (default)"),
            ("always", f"an export of {done.export_user.name}'s entities (exports), reporting progress;"),
            ("", f"the next starts when it is done, only the last {pace.exports_kept} are kept"),
            (f"every {pace.bad_export:g} s", f"an export of a type the app does not have ({UNKNOWN_EXPORT_TYPE!r}): "
                                             "fails for good,"),
            ("", "for r (retry) and d (discard) in top"),
            ("every 5 s", f"{RECURRING} runs the bundled delivery (n in top runs it now)"))),
        "",
        "Watch it from another terminal: make top" + ("" if default else f" DATABASE={shown}"),
        "Ctrl-C stops the users, the workers and the receiver.",
        "",
        f"$ jobctl start --config {CONFIG} --recurring-schedule-file {RECURRING}",
    ])


def results(done: Enqueued, traffic: Traffic | None = None) -> str:
    """What the demo's users did, and what the jobs did, read back from the app's tables."""
    lines = [""]
    if traffic is not None:
        did = traffic.counts
        lines += ["The demo's users meanwhile: " + ", ".join([
            _count(did["comments"], "comment"), _count(did["ratings"], "rating"), _count(did["exports"], "export"),
            f"{_count(did['bad exports'], 'export')} of an unknown type (failed)"])
            + (f"; {_count(did['errors'], 'action')} failed (see above)" if did["errors"] else ""), ""]
    lines.append("The app's tables now:")
    for comment in done.comments:
        notified = [User.find_by(n.recipient_id) for n in Notification.for_comment(comment.id)]
        names = ", ".join(user.name for user in notified if user is not None) or "nobody"
        lines.append(f"  comment #{comment.id} by {_name(comment.creator_id)}: notified {names}")
    for entity in done.entities:
        fresh = Entity.find_by(entity.id)
        if fresh is not None:
            lines.append(f"  {fresh.name}: average {fresh.average_score:.1f} over {fresh.submissions_count} "
                         "submissions")
    if done.webhook is not None:
        hook = done.webhook.reload()
        lines.append(f"  webhook {hook.name}: {hook.successful_deliveries} delivered, {hook.failed_deliveries} "
                     "failed (in total, over every run)")
    recipients = sorted({n.recipient_id for c in done.comments for n in Notification.for_comment(c.id)})
    for user in filter(None, map(User.find_by, recipients)):
        deliveries = user.deliveries()
        bundled = sum(d.notifications_count for d in deliveries)
        lines.append(f"  {user.name}: {_count(len(deliveries), 'bundle')} of {_count(bundled, 'notification')} "
                     "delivered (in total, over every run)")
    if done.export_user is not None:
        for export in done.export_user.exports():
            if export.job_id == done.export_job:
                outcome = {"completed": f"{export.rows_count} rows in {export.file_path}",
                           "failed": f"{export.error_message}",
                           "processing": "stopped before it finished (runs again with the next jobctl start)"}
                lines.append(f"  export #{export.id} of {export.export_type}: {export.status}: "
                             f"{outcome.get(export.status, '')}")
    return "\n".join(lines)


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def _name(user_id: int) -> str:
    user = User.find_by(user_id)
    return user.name if user else f"user {user_id}"


def run_runtime(url: str, on_interrupt: Callable[[], None] = lambda: None) -> int:
    """`jobctl start` in the foreground until it exits. A Ctrl-C stops it gracefully and calls `on_interrupt`
    (which must return at once); a second Ctrl-C, or STOP_GRACE later, stops it at once."""
    env = dict(os.environ)
    env["JOBCTL_DATABASE_URL"] = url
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), *filter(None, [env.get("PYTHONPATH")])])
    env.setdefault("JOBCTL_ENV", "development")
    env.setdefault(Export.ROW_DELAY_ENV, EXPORT_ROW_DELAY)
    proc = subprocess.Popen([sys.executable, "-m", "jobctl.cli", "start", "--config", CONFIG,
                             "--recurring-schedule-file", RECURRING], cwd=ROOT, env=env)
    interrupts, deadline = 0, None
    while True:
        try:
            return proc.wait(None if deadline is None else max(deadline - time.monotonic(), 0))
        except KeyboardInterrupt:
            interrupts += 1
            if interrupts == 1:
                # A terminal's Ctrl-C reaches jobctl start too (same process group), a `kill -INT` of the demo
                # does not: ask it here as well. A second INT changes nothing for a supervisor already stopping
                # (its handler stays until it exits), and Popen does not signal a process it has reaped.
                proc.send_signal(signal.SIGINT)
                deadline = time.monotonic() + STOP_GRACE
                on_interrupt()
            elif proc.poll() is None:
                proc.send_signal(signal.SIGQUIT)  # asked twice: stop at once
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGQUIT)  # still running STOP_GRACE after the interrupt: stop at once
            deadline = None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--database", metavar="URL",
                        help="database URL (default: $DATABASE, else sqlite:///examples/demo.sqlite3)")
    args = parser.parse_args(argv)
    try:
        url = database_url(args.database)
        applied = prepare(url)
    except jobctl.DatabaseError as exc:
        print(f"demo: {exc}", file=sys.stderr)
        return 69
    # Ctrl-C, and a `kill` too, stop the demo as one: even started in the background, where SIGINT is ignored.
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, signal.default_int_handler)
    receiver = Receiver(0)
    receiver.start()
    traffic: Traffic | None = None
    try:
        done = enqueue_examples(receiver.url)
        assert done.webhook is not None and done.export_user is not None
        traffic = Traffic(done.people, done.entities, done.webhook, done.export_user, running_export=done.export_job)
        print(describe(url, applied, receiver, done, traffic.pace), flush=True)
        traffic.start()
        code = run_runtime(url, on_interrupt=traffic.request_stop)
        print(results(done, traffic), flush=True)
        return code
    finally:
        if traffic is not None:
            traffic.stop()
        receiver.shutdown()
        receiver.server_close()


if __name__ == "__main__":
    sys.exit(main())
