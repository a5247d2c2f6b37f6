"""Argument serialisation (pure) and records travelling by reference."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from decimal import Decimal
from typing import Any

import pytest

import jobctl
from jobctl import arguments
from jobctl.job import build_job
from tests.jobs_for_tests import Color, Comment

VALUES: list[Any] = [
    None, True, 0, -5, 1.5, "text", "ünïcödé", [1, [2, 3]], {"a": {"b": [None]}},
    (1, "x", (2,)), dt.datetime(2026, 3, 4, 5, 6, 7, 890, tzinfo=dt.UTC), dt.datetime(2026, 3, 4, 5, 6),
    dt.date(2026, 3, 4), dt.time(5, 6, 7), dt.timedelta(days=-1, seconds=5, microseconds=7),
    Decimal("1.10"), uuid.UUID("12345678-1234-5678-1234-567812345678"), Color.RED,
    {"nested": (Decimal("2"), [Color.BLUE])},
]


@pytest.mark.parametrize("value", VALUES, ids=lambda v: type(v).__name__)
def test_round_trip(value: Any) -> None:
    text = arguments.dump_arguments([value], {"kw": value})
    assert json.loads(text)  # always valid JSON
    args, kwargs = arguments.load_arguments(text)
    assert args == [value] and kwargs == {"kw": value}
    assert type(args[0]) is type(value)


def test_tagged_form_is_documented_json() -> None:
    text = arguments.dump_arguments([(1, 2), Decimal("3.5"), Color.BLUE], {})
    assert json.loads(text) == {"args": [
        {"__jobctl__": "tuple", "value": [1, 2]},
        {"__jobctl__": "decimal", "value": "3.5"},
        {"__jobctl__": "enum", "class": "tests.jobs_for_tests:Color", "value": "blue"},
    ], "kwargs": {}}


def test_reserved_key_is_refused() -> None:
    with pytest.raises(jobctl.SerializationError, match="reserved"):
        arguments.dump_arguments([{"__jobctl__": "tuple"}], {})


def test_enum_tag_only_loads_enum_classes() -> None:
    bad = json.dumps({"args": [{"__jobctl__": "enum", "class": "os:system", "value": "x"}], "kwargs": {}})
    with pytest.raises(jobctl.SerializationError, match="not an Enum class"):
        arguments.load_arguments(bad)


def test_record_travels_as_reference() -> None:
    Comment.table[7] = Comment(7, "hello")
    text = arguments.dump_arguments([Comment.table[7]], {})
    assert json.loads(text)["args"] == [{"__jobctl__": "record", "class": "tests.jobs_for_tests:Comment", "id": 7}]
    Comment.table[7] = Comment(7, "edited")  # the worker sees the record as it is now
    assert arguments.load_arguments(text)[0][0].body == "edited"
    del Comment.table[7]
    with pytest.raises(jobctl.RecordNotFound, match="Comment 7 not found"):
        arguments.load_arguments(text)


def test_unregistered_record_class_is_refused_at_enqueue() -> None:
    class Thing:
        pass

    with pytest.raises(jobctl.SerializationError, match=r"args\[0\]: .*Thing is not a supported type"):
        arguments.dump_arguments([Thing()], {})


@pytest.mark.usefixtures("configured")
def test_later_enqueues_a_reference_and_calls_the_now_method() -> None:
    Comment.table[1] = Comment(1, "hi")
    Comment.notified.clear()
    handle = Comment.table[1].notify_recipients_later("!")
    info = jobctl.get_job(handle.id)
    assert info.class_path == "jobctl.later:LaterJob"
    assert info.queue == "default"
    assert info.arguments["args"] == [
        {"__jobctl__": "record", "class": "tests.jobs_for_tests:Comment", "id": 1}, "notify_recipients_now", "!",
    ]
    assert Comment.notified == []  # nothing ran at enqueue
    assert build_job(info.class_path, info.arguments).execute() == "notified 1!"
    assert Comment.notified == [(1, "!")]

    mail = jobctl.get_job(Comment.table[1].mail_later().id)
    assert (mail.queue, mail.priority) == ("mailers", 3)

    del Comment.table[1]
    with pytest.raises(jobctl.RecordNotFound):
        build_job(info.class_path, info.arguments)


@pytest.mark.usefixtures("configured")
def test_a_row_cannot_call_an_unregistered_method() -> None:
    Comment.table[2] = Comment(2, "x")
    from jobctl.later import LaterJob

    handle = LaterJob.perform_later(Comment.table[2], "delete_everything_now")
    info = jobctl.get_job(handle.id)
    with pytest.raises(jobctl.JobClassError, match=r"not registered with @jobctl\.later"):
        build_job(info.class_path, info.arguments).execute()


def test_later_needs_a_now_name() -> None:
    with pytest.raises(TypeError, match=r"named \*_now"):
        class Bad:
            @jobctl.later
            def notify(self) -> None: ...


def test_later_without_locator_fails_at_enqueue() -> None:
    class Unregistered:
        @jobctl.later()
        def ping_now(self) -> None: ...

    with pytest.raises(jobctl.SerializationError, match="Unregistered is not a supported type"):
        Unregistered().ping_later()  # type: ignore[attr-defined]


def test_a_row_naming_a_non_job_class_never_runs() -> None:
    with pytest.raises(jobctl.JobClassError, match=r"is not a subclass of jobctl\.Job"):
        build_job("tests.jobs_for_tests:NotAJob", {"args": [], "kwargs": {}})
    with pytest.raises(jobctl.JobClassError, match=r"is not a subclass of jobctl\.Job"):
        build_job("os.system", {"args": ["true"], "kwargs": {}})
    with pytest.raises(jobctl.JobClassError, match="cannot be imported"):
        build_job("nope.nothing:Job", {"args": [], "kwargs": {}})
