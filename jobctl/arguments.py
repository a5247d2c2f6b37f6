"""Job arguments as JSON, with a documented tagged form for non-JSON types and records.

Plain JSON values (None, bool, int, float, str, lists, dicts with string keys) are stored
as they are. Other supported values are stored as an object with the reserved key
``"__jobctl__"`` naming the type:

=========== ==================================================================
tag         form
=========== ==================================================================
tuple       ``{"__jobctl__": "tuple", "value": [...]}``
datetime    ``{"__jobctl__": "datetime", "value": "2026-01-02T03:04:05+00:00"}``
date        ``{"__jobctl__": "date", "value": "2026-01-02"}``
time        ``{"__jobctl__": "time", "value": "03:04:05"}``
timedelta   ``{"__jobctl__": "timedelta", "value": [days, seconds, microseconds]}``
decimal     ``{"__jobctl__": "decimal", "value": "1.10"}``
uuid        ``{"__jobctl__": "uuid", "value": "…"}``
enum        ``{"__jobctl__": "enum", "class": "module:Name", "value": <JSON value>}``
record      ``{"__jobctl__": "record", "class": "module:Name", "id": <JSON value>}``
=========== ==================================================================

A record is any instance of a class registered with :func:`register_locator` (or one a locator
provider knows, such as a Django model: :func:`register_locator_provider`); only its id travels,
and the worker re-loads it (a missing one raises ``RecordNotFound``).

Limits: lists, dicts and tuples nest at most ``MAX_DEPTH`` (100) levels, so a value that
contains itself is refused too; text must be valid Unicode (UTF-8 cannot store a lone
surrogate such as ``"\\ud800"``). Both raise ``SerializationError`` naming the argument.
Stored data that is not this form raises ``SerializationError`` saying what is wrong.
"""

from __future__ import annotations

import datetime as dt
import enum
import importlib
import json
import math
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from jobctl.errors import ArgumentTooDeep, JobClassError, RecordNotFound, SerializationError
from jobctl.imports import resolve_path

TAG = "__jobctl__"
MAX_DEPTH = 100
"""How deep lists, dicts and tuples may nest in an argument (well within Python's recursion limit)."""
_PLAIN = (str, int, bool, type(None))
_TOO_DEEP = f"nested more than {MAX_DEPTH} levels deep, or it contains itself"


@dataclass(frozen=True)
class Locator:
    """How records of one class travel: `dump` gives the id, `load` finds the record again."""

    cls: type
    dump: Callable[[Any], Any]
    load: Callable[[Any], Any]


_locators: dict[type, Locator] = {}
LocatorProvider = Callable[[type | str], "Locator | None"]
_providers: list[LocatorProvider] = []


def class_path(cls: type) -> str:
    """The import path of a class, `module:QualName`."""
    return f"{cls.__module__}:{cls.__qualname__}"


def import_path(path: str) -> Any:
    """Import `module:QualName` (or `module.QualName`) without evaluating anything."""
    module_name, sep, qualname = path.partition(":")
    if not sep:
        module_name, _, qualname = path.rpartition(".")
    if not module_name or not qualname:
        raise ImportError(f"{path!r} is not an import path (expected module:Name)")
    obj: Any = importlib.import_module(module_name)
    for part in qualname.split("."):
        obj = getattr(obj, part)
    return obj


def register_locator(cls: type, *, dump: Callable[[Any], Any], load: Callable[[Any], Any]) -> None:
    """Let instances of `cls` be passed to jobs as references: `dump(record)` → id, `load(id)` → record.

    `load` may return None or raise for a missing record; either becomes `RecordNotFound`.
    """
    _locators[cls] = Locator(cls, dump, load)


def register_locator_provider(provider: LocatorProvider) -> None:
    """Let an integration supply locators for classes nobody registered (Django models, by primary key).

    `provider(cls)` is asked when encoding an instance of `cls`, `provider(path)` when decoding a record
    of class path `path`; either returns a Locator or None. It must import nothing a row names: a path
    names only classes the provider already knows.
    """
    if provider not in _providers:
        _providers.append(provider)


def locator_for(cls: type) -> Locator | None:
    """The locator registered for `cls` or its nearest registered base class, else a provider's."""
    for base in cls.__mro__:
        found = _locators.get(base)
        if found is not None:
            return found
    return _provided(cls)


def _provided(key: type | str) -> Locator | None:
    for provider in _providers:
        found = provider(key)
        if found is not None:
            return found
    return None


def _locator_by_path(path: str) -> Locator:
    for loc in _locators.values():
        if class_path(loc.cls) == path:
            return loc
    found = _provided(path)
    if found is not None:
        return found
    raise RecordNotFound(f"no locator is registered for record class {path!r}")


def encode(value: Any, where: str, depth: int = 0) -> Any:
    """Turn one argument into its JSON form; `where` names it in errors (`args[0]['items'][2]`).

    `depth` is how many lists, dicts and tuples enclose `value` (at most MAX_DEPTH).
    """
    if type(value) in _PLAIN:
        return value
    if isinstance(value, enum.Enum):
        return {TAG: "enum", "class": class_path(type(value)), "value": encode(value.value, f"{where}.value", depth)}
    if isinstance(value, _PLAIN):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise SerializationError(f"cannot serialise argument {where}: {value!r} is not a finite number")
        return value
    if isinstance(value, list | dict | tuple):
        depth += 1
        if depth > MAX_DEPTH:
            raise ArgumentTooDeep(f"cannot serialise argument {where}: {_TOO_DEEP}")
    if isinstance(value, list):
        return [encode(v, f"{where}[{i}]", depth) for i, v in enumerate(value)]
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for k, v in value.items():
            if not isinstance(k, str):
                raise SerializationError(
                    f"cannot serialise argument {where}: dict key {k!r} is a {type(k).__name__}, keys must be str"
                )
            if k == TAG:
                raise SerializationError(f"cannot serialise argument {where}: the key {TAG!r} is reserved")
            out[k] = encode(v, f"{where}[{k!r}]", depth)
        return out
    if isinstance(value, tuple):
        return {TAG: "tuple", "value": [encode(v, f"{where}[{i}]", depth) for i, v in enumerate(value)]}
    if isinstance(value, dt.datetime):
        return {TAG: "datetime", "value": value.isoformat()}
    if isinstance(value, dt.date):
        return {TAG: "date", "value": value.isoformat()}
    if isinstance(value, dt.time):
        return {TAG: "time", "value": value.isoformat()}
    if isinstance(value, dt.timedelta):
        return {TAG: "timedelta", "value": [value.days, value.seconds, value.microseconds]}
    if isinstance(value, Decimal):
        return {TAG: "decimal", "value": str(value)}
    if isinstance(value, uuid.UUID):
        return {TAG: "uuid", "value": str(value)}
    loc = locator_for(type(value))
    if loc is not None:
        return {TAG: "record", "class": class_path(loc.cls), "id": encode(loc.dump(value), f"{where}.id", depth)}
    raise SerializationError(
        f"cannot serialise argument {where}: {type(value).__module__}.{type(value).__qualname__} is not a "
        "supported type (JSON types, datetime, date, time, timedelta, Decimal, UUID, Enum, tuple, "
        "or a record with a registered locator)"
    )


def _encode_argument(value: Any, where: str) -> Any:
    """`encode` one perform argument; an error for nesting names the argument itself, not the 101st level."""
    try:
        return encode(value, where)
    except (ArgumentTooDeep, RecursionError):  # RecursionError: called with most of the stack already used
        raise ArgumentTooDeep(f"cannot serialise argument {where}: {_TOO_DEEP}") from None


_NO_ARGUMENTS = '{"args":[],"kwargs":{}}'
# One encoder for every call: json.dumps with options builds a new encoder each time.
_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def dump_arguments(args: Sequence[Any], kwargs: Mapping[str, Any]) -> str:
    """Serialise perform arguments to the stored JSON text `{"args": [...], "kwargs": {...}}`."""
    if not args and not kwargs:
        return _NO_ARGUMENTS
    if not kwargs and all(type(v) in _PLAIN for v in args):  # the common case: ids and strings
        text = '{"args":' + _ENCODER.encode(list(args)) + ',"kwargs":{}}'
    else:
        data = {
            "args": [_encode_argument(v, f"args[{i}]") for i, v in enumerate(args)],
            "kwargs": {k: _encode_argument(v, f"kwargs[{k!r}]") for k, v in kwargs.items()},
        }
        text = _ENCODER.encode(data)
    if not text.isascii() and _has_surrogate(text):
        raise _surrogate_error(args, kwargs)
    return text


def dump_result(value: Any, *, what: str, max_bytes: int) -> str:
    """A job's return value as the stored JSON text (the argument forms); `SerializationError` naming `what`
    (the job) and the value's type when it cannot be stored, or its JSON is over `max_bytes`."""
    kind = f"{type(value).__module__}.{type(value).__qualname__}" if type(value).__module__ != "builtins" \
        else type(value).__qualname__
    try:
        text = _ENCODER.encode(encode(value, "result"))
    except (ArgumentTooDeep, RecursionError):
        raise SerializationError(f"{what} returned a {kind} that cannot be stored: {_TOO_DEEP}") from None
    except SerializationError as exc:
        detail = str(exc).removeprefix("cannot serialise argument ")  # `result['items'][0]: …`
        raise SerializationError(f"{what} returned a {kind} that cannot be stored: {detail}") from None
    if not text.isascii():
        if _has_surrogate(text):
            raise SerializationError(f"{what} returned a {kind} whose text holds a lone surrogate, which UTF-8 "
                                     "cannot store")
        size = len(text.encode("utf-8"))
    else:
        size = len(text)
    if size > max_bytes:
        raise SerializationError(f"{what} returned a {kind} of {size:,} bytes as JSON, over its max_result_bytes "
                                 f"({max_bytes:,})")
    return text


def _has_surrogate(text: str) -> bool:
    """True when `text` holds a lone surrogate (`"\\ud800"`), which UTF-8, and so both databases, cannot store."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _surrogate_error(args: Sequence[Any], kwargs: Mapping[str, Any]) -> SerializationError:
    """The error for the first argument holding a lone surrogate, naming where inside it."""
    for k in kwargs:
        if _has_surrogate(k):
            return SerializationError(f"cannot serialise argument kwargs[{k!r}]: its name contains a lone surrogate, "
                                      "which UTF-8 cannot store")
    named = [(f"args[{i}]", v) for i, v in enumerate(args)] + [(f"kwargs[{k!r}]", v) for k, v in kwargs.items()]
    for where, value in named:
        found = _find_surrogate(value, where)
        if found is not None:
            return SerializationError(f"cannot serialise argument {found[0]}: {found[1]} contains a lone surrogate, "
                                      "which UTF-8 cannot store")
        if _has_surrogate(_ENCODER.encode(encode(value, where))):  # inside an Enum's value, a record's id, …
            return SerializationError(f"cannot serialise argument {where}: it contains a lone surrogate, "
                                      "which UTF-8 cannot store")
    return SerializationError("cannot serialise the arguments: they contain a lone surrogate, "
                              "which UTF-8 cannot store")


def _find_surrogate(value: Any, where: str) -> tuple[str, str] | None:
    """(where, what) of the first text or dict key in `value` holding a lone surrogate; None if none does."""
    if isinstance(value, str):
        return (where, f"the text {_short(value)}") if _has_surrogate(value) else None
    if isinstance(value, list | tuple):
        items: Iterable[tuple[str, Any]] = ((f"{where}[{i}]", v) for i, v in enumerate(value))
    elif isinstance(value, dict):
        for k in value:
            if isinstance(k, str) and _has_surrogate(k):
                return where, f"the dict key {_short(k)}"
        items = ((f"{where}[{k!r}]", v) for k, v in value.items())
    else:
        return None
    for inner, v in items:
        found = _find_surrogate(v, inner)
        if found is not None:
            return found
    return None


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


_DECODE_TOO_DEEP = "stored arguments: nested too deep to read"
# What each tag's stored form must be, for errors about data that is not it.
_TAGGED_FORMS = {
    "tuple": "a list",
    "datetime": "an ISO 8601 text",
    "date": "an ISO 8601 text",
    "time": "an ISO 8601 text",
    "timedelta": "[days, seconds, microseconds]",
    "decimal": "a decimal number as text",
    "uuid": "a UUID as text",
    "enum": 'a class path of an Enum in "class" and its value',
    "record": 'a class path in "class" and an id',
}


def decode(value: Any) -> Any:
    """Inverse of `encode`; records are re-loaded through their locator.

    Data that is not in the stored form raises SerializationError saying what is wrong.
    """
    try:
        return _decode(value)
    except RecursionError:
        raise SerializationError(_DECODE_TOO_DEEP) from None


def _decode(value: Any) -> Any:
    if isinstance(value, list):
        return [_decode(v) for v in value]
    if not isinstance(value, dict):
        return value
    tag = value.get(TAG)
    if tag is None:
        return {k: _decode(v) for k, v in value.items()}
    if not isinstance(tag, str) or tag not in _TAGGED_FORMS:
        raise SerializationError(f"unknown argument tag {_short(tag)}")
    try:
        return _decode_tagged(tag, value)
    except (SerializationError, RecordNotFound):
        raise
    except (TypeError, ValueError, LookupError, ArithmeticError, ImportError, AttributeError) as exc:
        reason = " ".join(str(exc).split()) or type(exc).__name__
        shown = value if tag in ("enum", "record") else value.get("value")
        raise SerializationError(
            f"a stored {tag!r} argument: expected {_TAGGED_FORMS[tag]}, got {_short(shown)} ({reason})"
        ) from None


def _decode_tagged(tag: str, value: dict[str, Any]) -> Any:
    raw: Any = value.get("value")
    match tag:
        case "tuple":
            if not isinstance(raw, list):
                raise TypeError("not a list")
            return tuple(_decode(v) for v in raw)
        case "datetime":
            return dt.datetime.fromisoformat(raw)
        case "date":
            return dt.date.fromisoformat(raw)
        case "time":
            return dt.time.fromisoformat(raw)
        case "timedelta":
            return dt.timedelta(days=raw[0], seconds=raw[1], microseconds=raw[2])
        case "decimal":
            return Decimal(raw)
        case "uuid":
            return uuid.UUID(raw)
        case "enum":
            # A stored argument names its Enum: it resolves as a row's job class does, importing nothing
            # a row should not make us import (`jobctl.imports`).
            try:
                cls = resolve_path(value["class"], what="enum class")
            except JobClassError as exc:  # said as every other bad stored argument is, below
                raise ImportError(str(exc)) from None
            if not (isinstance(cls, type) and issubclass(cls, enum.Enum)):
                raise SerializationError(f"{value['class']!r} is not an Enum class")
            return cls(_decode(raw))
    return load_record(value["class"], _decode(value["id"]))  # "record"


def load_record(path: str, record_id: Any) -> Any:
    """Load a record by class path and id; RecordNotFound when it is gone."""
    loc = _locator_by_path(path)
    try:
        record = loc.load(record_id)
    except RecordNotFound:
        raise
    except (LookupError, ValueError) as exc:
        raise RecordNotFound(f"{path} with id {record_id!r} not found ({exc})") from exc
    if record is None:
        raise RecordNotFound(f"{path} with id {record_id!r} not found")
    return record


def load_arguments(text: str | Mapping[str, Any]) -> tuple[list[Any], dict[str, Any]]:
    """Parse stored arguments back into (args, kwargs); data not in the stored form raises SerializationError."""
    if isinstance(text, str):
        if text == _NO_ARGUMENTS:
            return [], {}
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise SerializationError(
                f"stored arguments: not JSON ({exc.msg} at line {exc.lineno} column {exc.colno})"
            ) from None
        except RecursionError:
            raise SerializationError(_DECODE_TOO_DEEP) from None
        if not isinstance(data, dict):
            raise SerializationError(
                f"stored arguments: expected an object with args and kwargs, got {_json_kind(data)}"
            )
        if TAG not in text:  # plain JSON all through: nothing to decode
            return _checked(data.get("args", []), data.get("kwargs", {}))
    else:
        data = text
    return _checked(decode(data.get("args", [])), decode(data.get("kwargs", {})))


def _checked(args: Any, kwargs: Any) -> tuple[list[Any], dict[str, Any]]:
    if not isinstance(args, list):
        raise SerializationError(f"stored arguments: expected args to be a list, got {_short(args)}")
    if not isinstance(kwargs, dict):
        raise SerializationError(f"stored arguments: expected kwargs to be an object, got {_short(kwargs)}")
    return args, kwargs


def _json_kind(value: Any) -> str:
    kinds = {list: "a list", str: "a string", int: "a number", float: "a number", bool: "a boolean"}
    return "null" if value is None else kinds.get(type(value), type(value).__name__)
