"""Job classes and records used by the tests (importable by path, as workers need)."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any, ClassVar

import jobctl


class Echo(jobctl.Job):
    """Returns its arguments."""

    def perform(self, *args: Any, **kwargs: Any) -> Any:
        return args, kwargs


class AsyncDouble(jobctl.Job):
    """An async perform."""

    async def perform(self, x: int) -> int:
        return x * 2


class Mailer(jobctl.Job):
    """A job with class-level queue and priority."""

    queue = "mailers"
    priority = 5

    def perform(self, to: str) -> str:
        return to


class Color(enum.Enum):
    RED = "red"
    BLUE = "blue"


@dataclass
class Comment:
    """A record: lives in an in-memory table, travels by id."""

    id: int
    body: str
    table: ClassVar[dict[int, Comment]] = {}
    notified: ClassVar[list[tuple[int, str]]] = []

    @classmethod
    def find(cls, comment_id: int) -> Comment:
        try:
            return cls.table[comment_id]
        except KeyError:
            raise jobctl.RecordNotFound(f"Comment {comment_id} not found") from None

    @jobctl.later
    def notify_recipients_now(self, suffix: str = "") -> str:
        Comment.notified.append((self.id, suffix))
        return f"notified {self.id}{suffix}"

    @jobctl.later(queue="mailers", priority=3)
    def mail_now(self) -> None:
        Comment.notified.append((self.id, "mail"))

    def delete_everything_now(self) -> None:
        """Not registered with @later: a row must never be able to call it."""
        raise AssertionError("must not be called")


jobctl.register_locator(Comment, dump=lambda c: c.id, load=Comment.find)


class NotAJob:
    """Named in a row, must never run."""

    def perform(self) -> None:
        raise AssertionError("must not run")


class Report(jobctl.Job):
    """Returns a value with a datetime and a Decimal in it (stored in the tagged JSON form)."""

    def perform(self, rows: int) -> dict[str, Any]:
        import datetime as dt
        from decimal import Decimal

        return {"rows": rows, "at": dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC), "total": Decimal("1.50")}


class ReturnsSet(jobctl.Job):
    """Returns what cannot be stored."""

    def perform(self) -> set[int]:
        return {1, 2}


class ReturnsTooMuch(jobctl.Job):
    """Returns more than its max_result_bytes."""

    max_result_bytes = 100

    def perform(self) -> str:
        return "x" * 200


class Fails(jobctl.Job):
    """Raises ValueError."""

    def perform(self) -> None:
        raise ValueError("no such customer")


class Gone(jobctl.Job):
    """Discarded: what it needs is gone."""

    discard_on = (jobctl.RecordNotFound,)

    def perform(self) -> None:
        raise jobctl.RecordNotFound("comment 7 is gone")
