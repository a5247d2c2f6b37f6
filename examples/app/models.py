"""The example app's models: small classes over its own tables. They do the work; jobs only call them.

Each method takes an optional `conn`: given one, it works inside the caller's transaction;
without, it opens its own and commits. Records travel to jobs by id (`jobctl.register_locator`).
"""

from __future__ import annotations

import csv
import json
import os
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import jobctl
from examples.app import db
from examples.app.db import Connection, execute


@dataclass
class User:
    id: int
    email: str
    name: str

    @classmethod
    def find_or_create(cls, email: str, name: str, conn: Connection | None = None) -> User:
        with db.transaction(conn) as c:
            row = execute(c, "INSERT INTO app_users (email, name) VALUES (?, ?) "
                             "ON CONFLICT (email) DO UPDATE SET name = excluded.name RETURNING id, email, name",
                          (email, name)).fetchone()
        return cls(*row)

    @classmethod
    def find_by(cls, user_id: int, conn: Connection | None = None) -> User | None:
        with db.transaction(conn) as c:
            row = execute(c, "SELECT id, email, name FROM app_users WHERE id = ?", (user_id,)).fetchone()
        return cls(*row) if row else None

    @classmethod
    def find(cls, user_id: int) -> User:
        """The user, or `jobctl.RecordNotFound`."""
        user = cls.find_by(user_id)
        if user is None:
            raise jobctl.RecordNotFound(f"User {user_id} not found")
        return user

    @classmethod
    def find_each(cls, batch_size: int = 500) -> Iterator[User]:
        """Every user, by id, read in batches (a short query each, never one long-lived cursor)."""
        last_id = 0
        while True:
            with db.transaction() as c:
                rows = execute(c, "SELECT id, email, name FROM app_users WHERE id > ? ORDER BY id LIMIT ?",
                               (last_id, batch_size)).fetchall()
            yield from (cls(*row) for row in rows)
            if len(rows) < batch_size:
                return
            last_id = rows[-1][0]

    def notifications(self, conn: Connection | None = None) -> list[Notification]:
        with db.transaction(conn) as c:
            rows = execute(c, f"SELECT {Notification.COLUMNS} FROM app_notifications WHERE recipient_id = ? "
                              "ORDER BY id", (self.id,)).fetchall()
        return [Notification(*row) for row in rows]

    def deliveries(self, conn: Connection | None = None) -> list[Delivery]:
        with db.transaction(conn) as c:
            rows = execute(c, f"SELECT {Delivery.COLUMNS} FROM app_deliveries WHERE user_id = ? ORDER BY id",
                           (self.id,)).fetchall()
        return [Delivery(*row) for row in rows]

    def exports(self, conn: Connection | None = None) -> list[Export]:
        with db.transaction(conn) as c:
            rows = execute(c, f"SELECT {Export.COLUMNS} FROM app_exports WHERE user_id = ? ORDER BY id",
                           (self.id,)).fetchall()
        return [Export(*row) for row in rows]

    def export_data_later(self, export_type: str) -> jobctl.JobHandle:
        """Pattern 5: export this user's `entities` or `submissions` as CSV, in the background."""
        from examples.app.jobs import ExportDataJob

        return ExportDataJob.perform_later(self.id, export_type)


@dataclass
class Entity:
    """Something users rate (submissions) and discuss (comments); its metrics are computed by a job."""

    id: int
    user_id: int
    name: str
    average_score: float = 0.0
    submissions_count: int = 0

    COLUMNS = "id, user_id, name, average_score, submissions_count"

    @classmethod
    def find_or_create(cls, owner: User, name: str, conn: Connection | None = None) -> Entity:
        with db.transaction(conn) as c:
            row = execute(c, "INSERT INTO app_entities (user_id, name) VALUES (?, ?) "
                             f"ON CONFLICT (name) DO UPDATE SET name = excluded.name RETURNING {cls.COLUMNS}",
                          (owner.id, name)).fetchone()
        return cls(*row)

    @classmethod
    def find_by(cls, entity_id: int, conn: Connection | None = None) -> Entity | None:
        with db.transaction(conn) as c:
            row = execute(c, f"SELECT {cls.COLUMNS} FROM app_entities WHERE id = ?", (entity_id,)).fetchone()
        return cls(*row) if row else None

    def add_submission(self, user: User, rating: int, content: str = "", conn: Connection | None = None) -> int:
        """Record a rating; returns the submission's id. Metrics catch up through `calculate_metrics_later`."""
        with db.transaction(conn) as c:
            row = execute(c, "INSERT INTO app_submissions (entity_id, user_id, rating, content) VALUES (?, ?, ?, ?) "
                             "RETURNING id", (self.id, user.id, rating, content)).fetchone()
        return int(row[0])

    def calculate_metrics_later(self) -> jobctl.JobHandle:
        from examples.app.jobs import CalculateMetricsJob

        return CalculateMetricsJob.perform_later(self.id)

    def calculate_metrics_now(self, conn: Connection | None = None) -> None:
        """Recompute average rating and count from the submissions: one statement, so running it twice
        (at-least-once delivery) gives the same row."""
        with db.transaction(conn) as c:
            row = execute(c, "UPDATE app_entities SET "
                             "average_score = COALESCE((SELECT round(avg(rating), 1) FROM app_submissions "
                             "WHERE entity_id = app_entities.id), 0), "
                             "submissions_count = (SELECT count(*) FROM app_submissions "
                             "WHERE entity_id = app_entities.id), "
                             "metrics_updated_at = CURRENT_TIMESTAMP "
                             "WHERE id = ? RETURNING average_score, submissions_count", (self.id,)).fetchone()
        if row is not None:
            self.average_score, self.submissions_count = float(row[0]), int(row[1])

    def destroy(self, conn: Connection | None = None) -> None:
        with db.transaction(conn) as c:
            execute(c, "DELETE FROM app_entities WHERE id = ?", (self.id,))


@dataclass
class Notification:
    id: int
    recipient_id: int
    comment_id: int
    action: str
    read_at: Any = None
    """When the recipient read it (a datetime, or UTC text on SQLite); None while unread."""
    bundled_at: Any = None
    """When a `Bundle` delivered it; None until then."""

    COLUMNS = "id, recipient_id, comment_id, action, read_at, bundled_at"

    @classmethod
    def create(cls, recipient: User, comment: Comment, action: str, conn: Connection | None = None) -> bool:
        """Notify `recipient` once about `comment`: False when that notification already exists."""
        with db.transaction(conn) as c:
            cur = execute(c, "INSERT INTO app_notifications (recipient_id, comment_id, action) VALUES (?, ?, ?) "
                             "ON CONFLICT (recipient_id, comment_id) DO NOTHING", (recipient.id, comment.id, action))
        return bool(cur.rowcount == 1)

    @classmethod
    def for_comment(cls, comment_id: int, conn: Connection | None = None) -> list[Notification]:
        with db.transaction(conn) as c:
            rows = execute(c, f"SELECT {cls.COLUMNS} FROM app_notifications WHERE comment_id = ? ORDER BY id",
                           (comment_id,)).fetchall()
        return [cls(*row) for row in rows]

    def mark_as_read(self, conn: Connection | None = None) -> None:
        with db.transaction(conn) as c:
            execute(c, "UPDATE app_notifications SET read_at = CURRENT_TIMESTAMP WHERE id = ? AND read_at IS NULL",
                    (self.id,))


@dataclass
class Comment:
    """A comment on an entity. Posting one notifies the people watching the entity."""

    id: int
    entity_id: int
    creator_id: int
    body: str

    COLUMNS = "id, entity_id, creator_id, body"

    @classmethod
    def create(cls, entity: Entity, creator: User, body: str, conn: Connection | None = None) -> Comment:
        with db.transaction(conn) as c:
            row = execute(c, f"INSERT INTO app_comments (entity_id, creator_id, body) VALUES (?, ?, ?) "
                             f"RETURNING {cls.COLUMNS}", (entity.id, creator.id, body)).fetchone()
        return cls(*row)

    @classmethod
    def post(cls, entity: Entity, creator: User, body: str) -> Comment:
        """Create a comment and enqueue its notifications in one transaction of the app's own.

        The job is written through the same connection (`jobctl.using`), so it exists if and only
        if the comment commits: no job for a rolled-back comment, no comment without its job.
        """
        with db.transaction() as conn, jobctl.using(conn):
            comment = cls.create(entity, creator, body, conn=conn)
            comment.notify_recipients_later()
        return comment

    @classmethod
    def find_by(cls, comment_id: int, conn: Connection | None = None) -> Comment | None:
        with db.transaction(conn) as c:
            row = execute(c, f"SELECT {cls.COLUMNS} FROM app_comments WHERE id = ?", (comment_id,)).fetchone()
        return cls(*row) if row else None

    @classmethod
    def find(cls, comment_id: int) -> Comment:
        """The comment, or `jobctl.RecordNotFound`."""
        comment = cls.find_by(comment_id)
        if comment is None:
            raise jobctl.RecordNotFound(f"Comment {comment_id} not found")
        return comment

    @classmethod
    def count(cls) -> int:
        with db.transaction() as c:
            return int(execute(c, "SELECT count(*) FROM app_comments").fetchone()[0])

    def recipients(self, conn: Connection | None = None) -> list[User]:
        """The entity's owner and everyone who commented on it (the Rails guide's watchers, assignees and creator)."""
        with db.transaction(conn) as c:
            rows = execute(c, "SELECT id, email, name FROM app_users WHERE id IN ("
                              "SELECT user_id FROM app_entities WHERE id = ? "
                              "UNION SELECT creator_id FROM app_comments WHERE entity_id = ?) ORDER BY id",
                           (self.entity_id, self.entity_id)).fetchall()
        return [User(*row) for row in rows]

    @jobctl.later(queue="default")
    def notify_recipients_now(self) -> int:
        """Notify every recipient but the comment's creator; returns how many notifications were new.

        Idempotent: a recipient is notified once per comment (a unique index), so a second run adds nothing.
        """
        created = 0
        with db.transaction() as conn:
            for recipient in self.recipients(conn):
                if recipient.id == self.creator_id:
                    continue
                created += Notification.create(recipient, self, "comment_created", conn=conn)
        return created

    if TYPE_CHECKING:  # written by @jobctl.later at class creation; declared for type checkers
        def notify_recipients_later(self) -> jobctl.JobHandle: ...

    def destroy(self, conn: Connection | None = None) -> None:
        with db.transaction(conn) as c:
            execute(c, "DELETE FROM app_comments WHERE id = ?", (self.id,))


class WebhookError(Exception):
    """A delivery that did not get a 2xx answer: worth retrying."""


@dataclass
class Webhook:
    """An endpoint that receives the app's events as JSON POSTs, with delivery counters."""

    id: int
    name: str
    url: str
    successful_deliveries: int = 0
    failed_deliveries: int = 0

    COLUMNS = "id, name, url, successful_deliveries, failed_deliveries"
    TIMEOUT = 10.0

    @classmethod
    def register(cls, name: str, url: str, conn: Connection | None = None) -> Webhook:
        """Create the webhook, or point the existing one of that name at `url`."""
        with db.transaction(conn) as c:
            row = execute(c, "INSERT INTO app_webhooks (name, url) VALUES (?, ?) "
                             f"ON CONFLICT (name) DO UPDATE SET url = excluded.url RETURNING {cls.COLUMNS}",
                          (name, url)).fetchone()
        return cls(*row)

    @classmethod
    def find_by(cls, webhook_id: int, conn: Connection | None = None) -> Webhook | None:
        with db.transaction(conn) as c:
            row = execute(c, f"SELECT {cls.COLUMNS} FROM app_webhooks WHERE id = ?", (webhook_id,)).fetchone()
        return cls(*row) if row else None

    def reload(self) -> Webhook:
        fresh = self.find_by(self.id)
        if fresh is None:
            raise jobctl.RecordNotFound(f"Webhook {self.id} not found")
        return fresh

    def dispatch_later(self, event: dict[str, Any]) -> jobctl.JobHandle:
        from examples.app.jobs import DispatchWebhookJob

        return DispatchWebhookJob.perform_later(self, event)  # the webhook travels as its id

    def dispatch_now(self, event: dict[str, Any]) -> None:
        """POST `event` as JSON; a non-2xx answer (or no answer) counts a failure and raises WebhookError."""
        request = urllib.request.Request(
            self.url, data=json.dumps(event).encode(), method="POST",
            headers={"Content-Type": "application/json", "User-Agent": "jobctl-example"})
        try:
            with urllib.request.urlopen(request, timeout=self.TIMEOUT) as response:
                status = response.status
        except urllib.error.HTTPError as exc:
            status = exc.code
        except OSError as exc:  # refused, timed out, DNS: URLError is an OSError
            self._count(success=False)
            raise WebhookError(f"webhook {self.name} ({self.url}) unreachable: {exc}") from exc
        if 200 <= status < 300:
            self._count(success=True)
        else:
            self._count(success=False)
            raise WebhookError(f"webhook {self.name} delivery failed: HTTP {status}")

    def _count(self, *, success: bool) -> None:
        column = "successful_deliveries" if success else "failed_deliveries"
        with db.transaction() as c:
            execute(c, f"UPDATE app_webhooks SET {column} = {column} + 1 WHERE id = ?", (self.id,))
        setattr(self, column, getattr(self, column) + 1)

    def destroy(self, conn: Connection | None = None) -> None:
        with db.transaction(conn) as c:
            execute(c, "DELETE FROM app_webhooks WHERE id = ?", (self.id,))


# -- pattern 2: bundled notifications -----------------------------------------------------------


@dataclass
class Delivery:
    """A message the app sent a user (the Rails guide's `NotificationMailer.bundled(...).deliver_now`): the
    app's outbox, written in the same transaction that marks what it delivered."""

    id: int
    user_id: int
    kind: str
    subject: str
    body: str
    notifications_count: int

    COLUMNS = "id, user_id, kind, subject, body, notifications_count"

    @classmethod
    def create(cls, user: User, kind: str, subject: str, body: str, notifications_count: int = 0,
               conn: Connection | None = None) -> Delivery:
        with db.transaction(conn) as c:
            row = execute(c, "INSERT INTO app_deliveries (user_id, kind, subject, body, notifications_count) "
                             f"VALUES (?, ?, ?, ?, ?) RETURNING {cls.COLUMNS}",
                          (user.id, kind, subject, body, notifications_count)).fetchone()
        return cls(*row)

    @classmethod
    def all(cls, conn: Connection | None = None) -> list[Delivery]:
        with db.transaction(conn) as c:
            rows = execute(c, f"SELECT {cls.COLUMNS} FROM app_deliveries ORDER BY id").fetchall()
        return [cls(*row) for row in rows]


class Bundle:
    """Pattern 2: a user's unread, not yet bundled notifications of the last 30 minutes, delivered as one
    message. `config/recurring.yml` runs `Bundle.deliver_all_later` every 30 minutes (every 5 seconds in
    development).

    Idempotent: delivering marks the notifications `bundled_at` in the transaction that writes the
    delivery, and only notifications not yet bundled are taken, so a second run (or two at once)
    delivers nothing twice.
    """

    WINDOW = timedelta(minutes=30)
    """How far back a bundle looks: older unread notifications are left alone."""
    _UNBUNDLED = ("recipient_id = ? AND read_at IS NULL AND bundled_at IS NULL AND created_at > ?")

    @classmethod
    def deliver_all_later(cls) -> jobctl.JobHandle:
        from examples.app.jobs import DeliverBundledNotificationsJob

        return DeliverBundledNotificationsJob.perform_later()

    @classmethod
    def deliver_all_now(cls) -> int:
        """Deliver every user's bundle; returns how many were delivered."""
        delivered = 0
        for user in User.find_each():
            bundle = cls(user)
            if bundle.has_notifications():
                delivered += bundle.deliver() is not None
        return delivered

    def __init__(self, user: User) -> None:
        self.user = user

    def unread_notifications(self, conn: Connection | None = None) -> list[Notification]:
        with db.transaction(conn) as c:
            rows = execute(c, f"SELECT {Notification.COLUMNS} FROM app_notifications WHERE {self._UNBUNDLED} "
                              "ORDER BY id", (self.user.id, self._since(c))).fetchall()
        return [Notification(*row) for row in rows]

    def has_notifications(self) -> bool:
        return bool(self.unread_notifications())

    def deliver(self) -> Delivery | None:
        """Mark the notifications bundled and write their delivery, in one transaction; None when there
        were none left (another run took them)."""
        with db.transaction() as conn:
            # Taking them first makes concurrent runs disjoint: SQLite serialises writers, and PostgreSQL
            # re-checks `bundled_at IS NULL` on rows another transaction updated meanwhile.
            taken = execute(conn, f"UPDATE app_notifications SET bundled_at = CURRENT_TIMESTAMP "
                                  f"WHERE {self._UNBUNDLED} RETURNING id",
                            (self.user.id, self._since(conn))).fetchall()
            if not taken:
                return None
            ids = sorted(row[0] for row in taken)
            lines = execute(conn, "SELECT author.name, e.name, c.body FROM app_notifications n "
                                  "JOIN app_comments c ON c.id = n.comment_id "
                                  "JOIN app_users author ON author.id = c.creator_id "
                                  "JOIN app_entities e ON e.id = c.entity_id "
                                  f"WHERE n.id IN ({', '.join('?' * len(ids))}) ORDER BY n.id", ids).fetchall()
            body = "\n".join([f"Hi {self.user.name},", "",
                              *(f"- {author} commented on {entity}: {text}" for author, entity, text in lines)])
            subject = f"{len(ids)} new notification{'s' if len(ids) != 1 else ''}"
            return Delivery.create(self.user, "bundled_notifications", subject, body, len(ids), conn=conn)

    def _since(self, conn: Connection) -> Any:
        return db.timestamp(conn, datetime.now(UTC) - self.WINDOW)


# -- pattern 5: exports with progress -----------------------------------------------------------

ProgressCallback = Callable[[int, int, str], None]
"""Called as `progress(done, total, message)`: a job passes its own `self.progress`."""


@dataclass(frozen=True)
class ExportType:
    """What an export of one kind reads: its CSV headers and its rows, a user's own."""

    headers: tuple[str, ...]
    table: str
    select: str
    """The row's columns, over the table aliased `r`, joined as needed (`FROM` clause onwards)."""


EXPORT_TYPES = {
    "entities": ExportType(("ID", "Name", "Average Score", "Submissions", "Created At"), "app_entities",
                           "r.id, r.name, r.average_score, r.submissions_count, r.created_at FROM app_entities r"),
    "submissions": ExportType(("ID", "Entity", "Rating", "Content", "Date"), "app_submissions",
                              "r.id, e.name, r.rating, r.content, r.created_at FROM app_submissions r "
                              "JOIN app_entities e ON e.id = r.entity_id"),
}


@dataclass
class Export:
    """A CSV export of a user's records, made by `ExportDataJob`: processing, then completed (with its
    file) or failed (with the error)."""

    id: int
    user_id: int
    export_type: str
    status: str
    job_id: int | None = None
    file_path: str | None = None
    rows_count: int | None = None
    error_message: str | None = None

    COLUMNS = "id, user_id, export_type, status, job_id, file_path, rows_count, error_message"
    BATCH_SIZE = 500
    ROW_DELAY_ENV = "EXAMPLES_EXPORT_ROW_DELAY"
    """Seconds to sleep after each row (the demo sets it, so progress can be watched); unset: none."""
    DIRECTORY_ENV = "EXAMPLES_EXPORTS_DIR"

    @classmethod
    def start(cls, user: User, export_type: str, job_id: int | None = None,
              conn: Connection | None = None) -> Export:
        """A new export, processing. A job passes its id: its retries then reuse the same export."""
        with db.transaction(conn) as c:
            row = execute(c, "INSERT INTO app_exports (user_id, export_type, status, job_id) "
                             "VALUES (?, ?, 'processing', ?) ON CONFLICT (job_id) DO UPDATE SET status = 'processing', "
                             f"file_path = NULL, rows_count = NULL, error_message = NULL RETURNING {cls.COLUMNS}",
                          (user.id, export_type, job_id)).fetchone()
        return cls(*row)

    @classmethod
    def find_by(cls, export_id: int, conn: Connection | None = None) -> Export | None:
        with db.transaction(conn) as c:
            row = execute(c, f"SELECT {cls.COLUMNS} FROM app_exports WHERE id = ?", (export_id,)).fetchone()
        return cls(*row) if row else None

    def destroy(self, conn: Connection | None = None) -> None:
        """Delete the export and its file (an export nobody needs any more)."""
        with db.transaction(conn) as c:
            execute(c, "DELETE FROM app_exports WHERE id = ?", (self.id,))
        if self.file_path:
            Path(self.file_path).unlink(missing_ok=True)

    @classmethod
    def directory(cls) -> Path:
        """Where exports are written: $EXAMPLES_EXPORTS_DIR, else `exports/` next to the SQLite file, else
        a directory under the system's temporary one."""
        if configured := os.environ.get(cls.DIRECTORY_ENV):
            return Path(configured)
        url = jobctl.database.resolve_url()
        if url.backend == "sqlite" and url.target not in ("", ":memory:"):
            return Path(url.target).resolve().parent / "exports"
        return Path(tempfile.gettempdir()) / "jobctl-examples-exports"

    def generate_now(self, progress: ProgressCallback | None = None) -> Path:
        """Write the CSV, reporting `progress(rows written, rows in all, "rows")` as it goes; the export
        ends completed with its file, or failed with the error, which is raised again."""
        delay = float(os.environ.get(self.ROW_DELAY_ENV) or 0)
        partial: Path | None = None
        try:
            kind = EXPORT_TYPES.get(self.export_type)
            if kind is None:
                raise ValueError(f"Unknown export type: {self.export_type}")
            # Named once the type is known: never a path made of an arbitrary argument.
            path = self.directory() / f"export_{self.export_type}_{date.today().isoformat()}_{self.id}.csv"
            partial = path.with_name(path.name + ".part")
            total, last_id = self._count(kind)
            path.parent.mkdir(parents=True, exist_ok=True)
            processed = 0
            with open(partial, "w", newline="", encoding="utf-8") as out:
                writer = csv.writer(out)
                writer.writerow(kind.headers)
                if progress is not None:
                    progress(0, total, "rows")
                for record in self._records(kind, last_id):
                    writer.writerow(record)
                    processed += 1
                    if progress is not None:
                        progress(processed, total, "rows")  # jobctl throttles what it writes
                    if delay:
                        time.sleep(delay)
            os.replace(partial, path)
        except Exception as exc:
            if partial is not None:
                partial.unlink(missing_ok=True)
            self._end("failed", error_message=str(exc) or type(exc).__name__)
            raise
        self._end("completed", file_path=str(path), rows_count=processed)
        return path

    def _count(self, kind: ExportType) -> tuple[int, int]:
        """How many rows the export has, and the last id: rows added while it runs are left out."""
        with db.transaction() as c:
            count, last_id = execute(c, f"SELECT count(*), COALESCE(max(id), 0) FROM {kind.table} WHERE user_id = ?",
                                     (self.user_id,)).fetchone()
        return int(count), int(last_id)

    def _records(self, kind: ExportType, last_id: int) -> Iterator[tuple[Any, ...]]:
        """The rows in id order, read in batches (Rails' `find_each`)."""
        after = 0
        while True:
            with db.transaction() as c:
                rows = execute(c, f"SELECT {kind.select} WHERE r.user_id = ? AND r.id > ? AND r.id <= ? "
                                  "ORDER BY r.id LIMIT ?", (self.user_id, after, last_id, self.BATCH_SIZE)).fetchall()
            yield from (tuple(row) for row in rows)
            if len(rows) < self.BATCH_SIZE:
                return
            after = rows[-1][0]

    def _end(self, status: str, *, file_path: str | None = None, rows_count: int | None = None,
             error_message: str | None = None) -> None:
        completed_at = "CURRENT_TIMESTAMP" if status == "completed" else "NULL"
        with db.transaction() as c:
            execute(c, "UPDATE app_exports SET status = ?, file_path = ?, rows_count = ?, error_message = ?, "
                       f"completed_at = {completed_at} WHERE id = ?",
                    (status, file_path, rows_count, error_message, self.id))
        self.status, self.file_path, self.rows_count, self.error_message = status, file_path, rows_count, error_message


# How records travel to jobs: by id, re-loaded in the worker (a missing one is RecordNotFound).
jobctl.register_locator(Comment, dump=lambda comment: comment.id, load=Comment.find)
jobctl.register_locator(Webhook, dump=lambda webhook: webhook.id, load=Webhook.find_by)
