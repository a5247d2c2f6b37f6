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
    assert info.class_path == "tests.jobs_for_tests:Comment.notify_recipients_now"  # what runs, not an adapter
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


# -- hostile arguments and stored data (issue 19) ---------------------------------------------

TOO_DEEP = "nested more than 100 levels deep, or it contains itself"


def _nested(depth: int) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = [value]
    return value


def _self_list() -> Any:
    loop: list[Any] = []
    loop.append(loop)
    return loop


def _self_dict() -> Any:
    loop: dict[str, Any] = {}
    loop["me"] = [loop]
    return loop


@pytest.mark.parametrize(
    ("args", "kwargs", "name"),
    [
        ([_self_list()], {}, "args[0]"),
        ([1, (2, _self_dict())], {}, "args[1]"),
        ([], {"tree": _nested(10_000)}, "kwargs['tree']"),
        ([_nested(101)], {}, "args[0]"),
    ],
)
def test_too_deep_or_self_referencing_arguments_are_serialization_errors(
    args: list[Any], kwargs: dict[str, Any], name: str
) -> None:
    with pytest.raises(jobctl.SerializationError) as caught:
        arguments.dump_arguments(args, kwargs)
    assert str(caught.value) == f"cannot serialise argument {name}: {TOO_DEEP}"


def test_arguments_100_levels_deep_still_travel() -> None:
    text = arguments.dump_arguments([_nested(100)], {"t": (((1,),),)})
    assert arguments.load_arguments(text) == ([_nested(100)], {"t": (((1,),),)})


@pytest.mark.parametrize(
    ("args", "kwargs", "name"),
    [
        (["\ud800"], {}, "args[0]"),
        ([1, ["ok", {"k": "x\udfff"}]], {}, "args[1][1]['k']"),
        ([], {"pair": ("a", "\udc80")}, "kwargs['pair'][1]"),
        ([{"\ud800": 1}], {}, "args[0]"),
        ([], {"\ud800": 1}, "kwargs['\\ud800']"),
    ],
)
def test_a_lone_surrogate_is_a_serialization_error(args: list[Any], kwargs: dict[str, Any], name: str) -> None:
    with pytest.raises(jobctl.SerializationError) as caught:
        arguments.dump_arguments(args, kwargs)
    assert str(caught.value).startswith(f"cannot serialise argument {name}: ")
    assert str(caught.value).endswith("contains a lone surrogate, which UTF-8 cannot store")


def test_valid_non_ascii_text_is_stored_as_before() -> None:
    assert arguments.dump_arguments(["ünï 😀"], {}) == '{"args":["ünï 😀"],"kwargs":{}}'
    assert arguments.dump_arguments([("é",)], {}) == '{"args":[{"__jobctl__":"tuple","value":["é"]}],"kwargs":{}}'


@pytest.mark.parametrize(
    ("stored", "message"),
    [
        ('{"args": [{"__jobctl__": "tuple", "value": 5}]}', "a stored 'tuple' argument: expected a list, got 5"),
        ('{"args": [{"__jobctl__": "datetime", "value": 5}]}', "a stored 'datetime' argument: expected an ISO"),
        ('{"args": [{"__jobctl__": "datetime", "value": "noon"}]}', "a stored 'datetime' argument: expected an ISO"),
        ('{"args": [{"__jobctl__": "timedelta", "value": []}]}', "a stored 'timedelta' argument: expected [days"),
        ('{"args": [{"__jobctl__": "timedelta", "value": [1e300, 0, 0]}]}', "a stored 'timedelta' argument"),
        ('{"args": [{"__jobctl__": "decimal", "value": "abc"}]}', "a stored 'decimal' argument: expected a decimal"),
        ('{"args": [{"__jobctl__": "uuid", "value": "x"}]}', "a stored 'uuid' argument: expected a UUID"),
        ('{"args": [{"__jobctl__": "enum", "value": 1}]}', "a stored 'enum' argument: expected a class"),
        ('{"args": [{"__jobctl__": "enum", "class": "nope.nothing:E", "value": 1}]}', "a stored 'enum' argument: "),
        ('{"args": [{"__jobctl__": "enum", "class": "tests.jobs_for_tests:Color", "value": "green"}]}',
         "a stored 'enum' argument: "),
        ('{"args": [{"__jobctl__": "record", "id": 1}]}', "a stored 'record' argument: expected a class"),
        ('{"args": [{"__jobctl__": ["x"]}]}', "unknown argument tag ['x']"),
        ("[1, 2]", "stored arguments: expected an object with args and kwargs, got a list"),
        ('{"args": 5, "kwargs": {}}', "stored arguments: expected args to be a list, got 5"),
        ('{"args": [], "kwargs": [1]}', "stored arguments: expected kwargs to be an object, got [1]"),
        ("{not json", "stored arguments: not JSON (Expecting property name enclosed in double quotes"),
        ('{"args": ' + "[" * 100_000 + "]" * 100_000 + "}", "stored arguments: nested too deep to read"),
        ('{"args": [' + '{"__jobctl__": "tuple", "value": [' * 2000 + "]}" * 2000 + "]}",
         "stored arguments: nested too deep to read"),
    ],
)
def test_hostile_stored_arguments_are_one_clear_error(stored: str, message: str) -> None:
    with pytest.raises(jobctl.SerializationError) as caught:
        arguments.load_arguments(stored)
    assert str(caught.value).startswith(message) and "\n" not in str(caught.value)


def test_decode_of_hostile_json_is_a_serialization_error() -> None:
    with pytest.raises(jobctl.SerializationError, match=r"^a stored 'uuid' argument: expected a UUID"):
        arguments.decode([{"__jobctl__": "uuid", "value": 7}])
    with pytest.raises(jobctl.SerializationError, match=r"^stored arguments: nested too deep to read"):
        arguments.decode(_nested(100_000))


@pytest.mark.usefixtures("configured")
def test_later_jobs_are_named_by_the_method_they_run_everywhere() -> None:
    from jobctl import database
    from jobctl.tui.panels import short_class

    Comment.table[3] = Comment(3, "hello")
    handle = Comment.table[3].notify_recipients_later()
    path = "tests.jobs_for_tests:Comment.notify_recipients_now"
    [listed] = database.get_store().list_jobs(class_path=path)  # `jobctl jobs --class` finds it by that name
    assert listed.id == handle.id and short_class(listed.class_path) == "Comment.notify_recipients_now"
    # A worker resolves the row's path to the built-in job, reading the class statically.
    from jobctl.job import resolve_job_class
    from jobctl.later import LaterJob

    assert resolve_job_class(path) is LaterJob
    with pytest.raises(jobctl.JobClassError, match=r"not a subclass of jobctl\.Job"):
        resolve_job_class("tests.jobs_for_tests:Comment.delete_everything_now")  # not registered with @later


def test_a_locator_provider_supplies_locators_nobody_registered() -> None:
    """register_locator_provider (what Django models use): asked by class when encoding, by path when decoding."""
    class Widget:
        def __init__(self, wid: int) -> None:
            self.wid = wid

    path = arguments.class_path(Widget)
    asked: list[object] = []

    def provider(key: type | str) -> arguments.Locator | None:
        asked.append(key)
        if key is Widget or key == path:
            return arguments.Locator(Widget, lambda w: w.wid, lambda wid: Widget(wid) if wid != 404 else None)
        return None

    arguments.register_locator_provider(provider)
    try:
        text = arguments.dump_arguments([Widget(7)], {})
        assert json.loads(text)["args"] == [{"__jobctl__": "record", "class": path, "id": 7}]
        [loaded], _ = arguments.load_arguments(text)
        assert isinstance(loaded, Widget) and loaded.wid == 7
        assert asked == [Widget, path]
        with pytest.raises(jobctl.RecordNotFound):
            arguments.load_arguments(arguments.dump_arguments([Widget(404)], {}))
        with pytest.raises(jobctl.SerializationError):
            arguments.dump_arguments([object()], {})  # the provider knows no object: still refused
    finally:
        arguments._providers.remove(provider)


def test_an_enum_argument_imports_nothing_a_row_should_not_make_us_import(capsys: pytest.CaptureFixture[str]) -> None:
    import sys

    assert "this" not in sys.modules
    stored = '{"args": [{"__jobctl__": "enum", "class": "this:X", "value": 1}], "kwargs": {}}'
    with pytest.raises(jobctl.SerializationError, match="enum class 'this:X' not imported"):
        arguments.load_arguments(stored)
    assert "this" not in sys.modules and "Zen of Python" not in capsys.readouterr().out
    assert arguments.decode(arguments.encode(Color.RED, "x")) is Color.RED  # an application's Enum still works
