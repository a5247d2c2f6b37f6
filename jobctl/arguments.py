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

A record is any instance of a class registered with :func:`register_locator`; only its
id travels, and the worker re-loads it (a missing one raises ``RecordNotFound``).
"""

from __future__ import annotations

import datetime as dt
import enum
import importlib
import json
import math
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from jobctl.errors import RecordNotFound, SerializationError

TAG = "__jobctl__"
_PLAIN = (str, int, bool, type(None))


@dataclass(frozen=True)
class Locator:
    """How records of one class travel: `dump` gives the id, `load` finds the record again."""

    cls: type
    dump: Callable[[Any], Any]
    load: Callable[[Any], Any]


_locators: dict[type, Locator] = {}


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


def locator_for(cls: type) -> Locator | None:
    """The locator registered for `cls` or its nearest registered base class."""
    for base in cls.__mro__:
        found = _locators.get(base)
        if found is not None:
            return found
    return None


def _locator_by_path(path: str) -> Locator:
    for loc in _locators.values():
        if class_path(loc.cls) == path:
            return loc
    raise RecordNotFound(f"no locator is registered for record class {path!r}")


def encode(value: Any, where: str) -> Any:
    """Turn one argument into its JSON form; `where` names it in errors (`args[0]['items'][2]`)."""
    if type(value) in _PLAIN:
        return value
    if isinstance(value, enum.Enum):
        return {TAG: "enum", "class": class_path(type(value)), "value": encode(value.value, f"{where}.value")}
    if isinstance(value, _PLAIN):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise SerializationError(f"cannot serialise argument {where}: {value!r} is not a finite number")
        return value
    if isinstance(value, list):
        return [encode(v, f"{where}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for k, v in value.items():
            if not isinstance(k, str):
                raise SerializationError(
                    f"cannot serialise argument {where}: dict key {k!r} is a {type(k).__name__}, keys must be str"
                )
            if k == TAG:
                raise SerializationError(f"cannot serialise argument {where}: the key {TAG!r} is reserved")
            out[k] = encode(v, f"{where}[{k!r}]")
        return out
    if isinstance(value, tuple):
        return {TAG: "tuple", "value": [encode(v, f"{where}[{i}]") for i, v in enumerate(value)]}
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
        return {TAG: "record", "class": class_path(loc.cls), "id": encode(loc.dump(value), f"{where}.id")}
    raise SerializationError(
        f"cannot serialise argument {where}: {type(value).__module__}.{type(value).__qualname__} is not a "
        "supported type (JSON types, datetime, date, time, timedelta, Decimal, UUID, Enum, tuple, "
        "or a record with a registered locator)"
    )


_NO_ARGUMENTS = '{"args":[],"kwargs":{}}'
# One encoder for every call: json.dumps with options builds a new encoder each time.
_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def dump_arguments(args: Sequence[Any], kwargs: Mapping[str, Any]) -> str:
    """Serialise perform arguments to the stored JSON text `{"args": [...], "kwargs": {...}}`."""
    if not args and not kwargs:
        return _NO_ARGUMENTS
    if not kwargs and all(type(v) in _PLAIN for v in args):  # the common case: ids and strings
        return '{"args":' + _ENCODER.encode(list(args)) + ',"kwargs":{}}'
    data = {
        "args": [encode(v, f"args[{i}]") for i, v in enumerate(args)],
        "kwargs": {k: encode(v, f"kwargs[{k!r}]") for k, v in kwargs.items()},
    }
    return _ENCODER.encode(data)


def decode(value: Any) -> Any:
    """Inverse of `encode`; records are re-loaded through their locator."""
    if isinstance(value, list):
        return [decode(v) for v in value]
    if not isinstance(value, dict):
        return value
    tag = value.get(TAG)
    if tag is None:
        return {k: decode(v) for k, v in value.items()}
    raw: Any = value.get("value")
    match tag:
        case "tuple":
            return tuple(decode(v) for v in raw)
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
            cls = import_path(value["class"])
            if not (isinstance(cls, type) and issubclass(cls, enum.Enum)):
                raise SerializationError(f"{value['class']!r} is not an Enum class")
            return cls(decode(raw))
        case "record":
            return load_record(value["class"], decode(value["id"]))
    raise SerializationError(f"unknown argument tag {tag!r}")


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
    """Parse stored arguments back into (args, kwargs)."""
    if isinstance(text, str):
        if text == _NO_ARGUMENTS:
            return [], {}
        data = json.loads(text)
        if TAG not in text:  # plain JSON all through: nothing to decode
            return data.get("args", []), data.get("kwargs", {})
    else:
        data = text
    return decode(data.get("args", [])), decode(data.get("kwargs", {}))
