"""`jobctl enqueue`: one job of a class, from the command line."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

from jobctl import arguments
from jobctl.commands.common import duration_option, emit_json, say, store
from jobctl.errors import ConfigError, OptionError, UsageError
from jobctl.job import load_job_class


def enqueue(
    job_class: Annotated[str, typer.Argument(metavar="CLASS", help="Job class, module:QualName.")],
    args_json: Annotated[
        str | None,
        typer.Argument(metavar="[ARGS_JSON]", help="A JSON list (positional) or object (keyword arguments)."),
    ] = None,
    queue: Annotated[str | None, typer.Option(help="Queue (default: the class's).")] = None,
    priority: Annotated[int | None, typer.Option(help="Priority, lower runs first (default: the class's).")] = None,
    wait: Annotated[str | None, typer.Option(help="Run after this delay: seconds or 30s, 5m, 2h, 1d.")] = None,
    key: Annotated[str | None, typer.Option(help="Unique key: no second active job with it.")] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Enqueue one job of CLASS with ARGS_JSON."""
    args, kwargs = _parse_args_json(args_json)
    delay = duration_option(wait, "--wait") if wait is not None else None
    try:
        cls = load_job_class(job_class)
    except Exception as exc:
        raise UsageError(str(exc).splitlines()[0]) from None
    store()  # resolve the database before importing anything else of the user's
    try:
        configured = cls.set(queue=queue, priority=priority, wait=delay, key=key)
    except OptionError as exc:  # say it with the option's name as typed
        text = str(exc)
        for name in ("queue", "priority", "wait", "key"):
            text = text.replace(f"{name}= ", f"--{name}: ", 1) if text.startswith(f"{name}= ") else text
        raise UsageError(text) from None
    handle = configured.perform_later(*args, **kwargs)
    if json_out:
        emit_json({"matched": 1, "changed": int(handle.created), "ids": [handle.id], "state": handle.state})
    elif handle.created:
        say(f"enqueued job {handle.id} ({handle.state})")
    else:
        say(f"job {handle.id} already holds key {key!r}; nothing enqueued")


def _parse_args_json(text: str | None) -> tuple[list[Any], dict[str, Any]]:
    if text is None:
        return [], {}
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UsageError(f"ARGS_JSON: not JSON ({exc.msg} at column {exc.colno})") from None
    try:
        decoded = arguments.decode(value)
    except Exception as exc:
        raise ConfigError(f"ARGS_JSON: {exc}") from None
    if isinstance(decoded, list):
        return decoded, {}
    if isinstance(decoded, dict):
        return [], decoded
    raise UsageError(f"ARGS_JSON: expected a JSON list or object, got {type(value).__name__}")
