"""The example app's models: small classes over its own tables. They do the work; jobs only call them.

Each method takes an optional `conn`: given one, it works inside the caller's transaction;
without, it opens its own and commits. Records travel to jobs by id (`jobctl.register_locator`).
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from dataclasses import dataclass
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

    def notifications(self, conn: Connection | None = None) -> list[Notification]:
        with db.transaction(conn) as c:
            rows = execute(c, f"SELECT {Notification.COLUMNS} FROM app_notifications WHERE recipient_id = ? "
                              "ORDER BY id", (self.id,)).fetchall()
        return [Notification(*row) for row in rows]


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

    COLUMNS = "id, recipient_id, comment_id, action"

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
        """The entity's owner and everyone who commented on it (the seed's watchers, assignees and creator)."""
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


# How records travel to jobs: by id, re-loaded in the worker (a missing one is RecordNotFound).
jobctl.register_locator(Comment, dump=lambda comment: comment.id, load=Comment.find)
jobctl.register_locator(Webhook, dump=lambda webhook: webhook.id, load=Webhook.find_by)
