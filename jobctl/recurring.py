"""Loading and validating `config/recurring.yml` (pure: no database); every error is one line.

The file has Solid Queue's shape: environment sections (or one flat section) mapping task
keys to `schedule` plus exactly one of `class` (a `jobctl.Job` subclass) or `command` (an
import path of a callable; nothing is ever evaluated), and optionally `args`, `kwargs`,
`queue`, `priority` and `description`. Loading checks shapes, schedules and that the
arguments can be stored; `resolve_task` / `check_tasks` import what tasks run.
"""

from __future__ import annotations

import inspect
import json
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from jobctl.arguments import dump_arguments, import_path
from jobctl.config import _At, load_yaml_sections, locate
from jobctl.errors import ArgumentTooDeep, ConfigError, JobClassError, SerializationError
from jobctl.job import Job, _checked_priority, _checked_text, load_job_class
from jobctl.records import RecurringRow
from jobctl.schedule import Schedule, parse_schedule

__all__ = [
    "DEFAULT_RECURRING_PATH",
    "RecurringCommandJob",
    "RecurringTask",
    "check_tasks",
    "load_recurring",
    "register_tasks",
    "resolve_task",
    "row_for",
]

DEFAULT_RECURRING_PATH = "config/recurring.yml"

_TASK_KEYS = ("schedule", "class", "command", "args", "kwargs", "queue", "priority", "description")
_SCHEDULE_EXPECTED = 'a cron like "0 3 * * *" or a form like "every day at 3am"'
_CLASS_EXPECTED = "an import path of a jobctl.Job subclass like myapp.jobs:CleanupJob"
_COMMAND_EXPECTED = "an import path of a callable like myapp.notifications:Bundle.deliver_all_later"
_ARGS_EXPECTED = "a list of arguments or a single argument (keyword arguments go under kwargs)"
# Priorities are stored in a 32-bit integer column.
_PRIORITY_RANGE = (-(2**31), 2**31 - 1)


@dataclass(frozen=True)
class RecurringTask:
    """One task of `config/recurring.yml`: what runs, with which arguments, and when."""

    key: str
    """The task's name in the file; runs store it, and the worker finds the task by it."""
    schedule: Schedule
    """When it runs (the text as written, its cron and time zone)."""
    class_path: str | None = None
    """`module:QualName` of the `jobctl.Job` subclass enqueued; None for a command."""
    command: str | None = None
    """`module:attr.path` of the callable run (called with args and kwargs); None for a class."""
    args: tuple[Any, ...] = field(default=(), hash=False)
    """Positional arguments (a single scalar in the file is one argument, as in Solid Queue)."""
    kwargs: dict[str, Any] = field(default_factory=dict, hash=False)
    """Keyword arguments (a jobctl addition: Solid Queue only has args)."""
    queue: str | None = None
    """Queue of each run; None is the class's own queue, or "default" for a command."""
    priority: int | None = None
    """Priority of each run; None is the class's own priority, or 0 for a command."""
    description: str | None = None
    """Free text for operators."""
    where: str = field(default="", compare=False, repr=False)
    """Where the task was read, as error messages spell it (`FILE: ENV.KEY`); "" when built in code."""

    def __post_init__(self) -> None:
        if (self.class_path is None) == (self.command is None):
            raise ValueError(f"recurring task {self.key!r}: give exactly one of class_path or command")

    def to_dict(self) -> dict[str, Any]:
        """The static keys of `jobctl recurring --json` (callers add `last_run_at`, `next_run_at`).

        `args` and `kwargs` are in their stored JSON form; queue and priority are as configured
        (null: the class's own).
        """
        stored = json.loads(dump_arguments(self.args, self.kwargs))
        return {
            "key": self.key,
            "schedule": self.schedule.text,
            "cron": self.schedule.cron,
            "class": self.class_path,
            "command": self.command,
            "args": stored["args"],
            "queue": self.queue,
            "priority": self.priority,
            "kwargs": stored["kwargs"],
            "timezone": self.schedule.timezone,
            "description": self.description,
        }


def load_recurring(
    path: str | os.PathLike[str] | None = None, *, env: str | None = None, explicit: bool = False
) -> tuple[RecurringTask, ...]:
    """The tasks of `path` or `$JOBCTL_RECURRING_SCHEDULE` or `config/recurring.yml`, in file order.

    The default file may be absent (no tasks); a file named explicitly, by `explicit=True` or
    `$JOBCTL_RECURRING_SCHEDULE`, must exist. The section is `env`, else `$JOBCTL_ENV`, else
    development; an empty section has no tasks.
    """
    found, environment = locate(path, env_var="JOBCTL_RECURRING_SCHEDULE", default=DEFAULT_RECURRING_PATH,
                                explicit=explicit, env=env)
    if found is None:
        return ()
    section, prefix = load_yaml_sections(found, environment, kind="recurring")
    at = _At(found, prefix)
    return tuple(_read_task(key, raw, at) for key, raw in section.items())


def _read_task(key: object, raw: object, section: _At) -> RecurringTask:
    if not isinstance(key, str) or not key.strip():
        raise section.key(key).error("a task name (a non-empty string)", key)
    if "\0" in key:  # runs store the key; PostgreSQL text cannot hold NUL
        raise section.key(key.replace("\0", "\\x00")).error("a task name without NUL characters", key)
    at = section.key(key)
    if not isinstance(raw, dict):
        raise at.error("a mapping of task settings (schedule, and class or command)", raw)
    for name in raw:
        if name not in _TASK_KEYS:
            raise ConfigError(f"{at.key(name)}: unknown key (expected one of: {', '.join(_TASK_KEYS)})")
    if ("class" in raw) == ("command" in raw):
        got = "both" if "class" in raw else "neither"
        raise ConfigError(f"{at}: expected exactly one of class (a job class) or command (a callable), got {got}")
    if "schedule" not in raw:
        raise ConfigError(f"{at.key('schedule')}: expected {_SCHEDULE_EXPECTED}, got nothing (the key is missing)")
    schedule = _schedule(raw["schedule"], key, at.key("schedule"))
    class_path = _import_path(raw["class"], at.key("class"), _CLASS_EXPECTED) if "class" in raw else None
    command = _import_path(raw["command"], at.key("command"), _COMMAND_EXPECTED) if "command" in raw else None
    args = _args(raw.get("args"), at.key("args"))
    kwargs = _kwargs(raw.get("kwargs"), at.key("kwargs"))
    return RecurringTask(
        key=key,
        schedule=schedule,
        class_path=class_path,
        command=command,
        args=args,
        kwargs=kwargs,
        queue=_queue(raw.get("queue"), at.key("queue")),
        priority=_priority(raw.get("priority"), at.key("priority")),
        description=_description(raw.get("description"), at.key("description")),
        where=str(at),
    )


def _schedule(value: object, key: str, at: _At) -> Schedule:
    if not isinstance(value, str):
        raise at.error(_SCHEDULE_EXPECTED, value)
    try:
        return parse_schedule(value, key=key)
    except ConfigError as exc:
        # parse_schedule says "recurring task 'KEY': schedule 'TEXT': WHY"; the key path here
        # already names the task, so keep WHY after the usual expected/got.
        message = str(exc)
        lead = f"recurring task {key!r}: schedule {value!r}: "
        if not message.startswith(lead):
            raise ConfigError(f"{at}: {message}") from None
        why = message[len(lead) :]
        raise ConfigError(f"{at}: expected {_SCHEDULE_EXPECTED}, got {value!r} ({why})") from None


def _import_path(value: object, at: _At, expected: str) -> str:
    """`module:QualName` from `module:QualName` or `module.QualName` (the last dot splits, as import_path)."""
    if not isinstance(value, str):
        raise at.error(expected, value)
    if "::" in value:
        raise ConfigError(
            f"{at}: expected {expected}, got {value!r} (a Ruby constant path; name a Python module and attribute)"
        )
    module, sep, qualname = value.partition(":")
    if not sep:
        module, _, qualname = value.rpartition(".")
    parts = [*module.split("."), *qualname.split(".")]
    if not (module and qualname and all(part.isidentifier() for part in parts)):
        raise at.error(expected, value)
    return f"{module}:{qualname}"


def _args(value: object, at: _At) -> tuple[Any, ...]:
    if value is None:
        return ()
    if isinstance(value, dict):
        raise at.error(_ARGS_EXPECTED, value)
    args = tuple(value) if isinstance(value, list) else (value,)
    _check_storable(lambda: dump_arguments(args, {}), at)
    return args


def _kwargs(value: object, at: _At) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise at.error("a mapping of keyword arguments", value)
    for name in value:
        if not (isinstance(name, str) and name.isidentifier()):
            raise at.error("keyword argument names (identifiers)", name)
    kwargs = dict(value)
    _check_storable(lambda: dump_arguments((), kwargs), at)
    return kwargs


def _check_storable(dump: Callable[[], str], at: _At) -> None:
    """Arguments are stored as JSON with each run: refuse at load what could not be."""
    try:
        dump()
    except ArgumentTooDeep:
        # The YAML loader bounds nesting below MAX_DEPTH, so only an alias inside itself gets here.
        raise ConfigError(
            f"{at}: expected arguments that can be stored as JSON, got a value that contains itself"
        ) from None
    except SerializationError as exc:
        raise ConfigError(f"{at}: {exc}") from None


def _queue(value: object, at: _At) -> str | None:
    if value is None:
        return None
    if isinstance(value, str) and "\0" in value:
        raise at.error("a queue name without NUL characters", value)
    if isinstance(value, str) and value and not any(c.isspace() or c in ",*" for c in value):
        return value
    raise at.error("a queue name (no spaces, commas or *) or null", value)


def _priority(value: object, at: _At) -> int | None:
    low, high = _PRIORITY_RANGE
    if value is None or (isinstance(value, int) and not isinstance(value, bool) and low <= value <= high):
        return value
    raise at.error(f"an integer from {low} to {high} or null", value)


def _description(value: object, at: _At) -> str | None:
    if isinstance(value, str) and "\0" in value:
        raise at.error("a text without NUL characters", value)
    if value is None or isinstance(value, str):
        return value
    raise at.error("a text or null", value)


# -- resolving what tasks run (imports application code) ------------------------------------


def resolve_task(task: RecurringTask) -> object:
    """Import what `task` runs: its `jobctl.Job` subclass, or its callable; ConfigError otherwise.

    Also checks that the task's arguments fit the signature (of `perform` for a class).
    """
    if task.class_path is not None:
        return _resolve_class(task, task.class_path)
    assert task.command is not None  # RecurringTask has exactly one of the two
    return _resolve_command(task, task.command)


def check_tasks(tasks: Iterable[RecurringTask]) -> dict[str, object]:
    """Resolve every task (for `jobctl start --check`); the first problem raises ConfigError."""
    return {task.key: resolve_task(task) for task in tasks}


def _at(task: RecurringTask, name: str) -> str:
    return f"{task.where}.{name}" if task.where else f"recurring task {task.key!r}: {name}"


def _reason(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _import(task: RecurringTask, path: str, name: str, expected: str) -> object:
    try:
        return import_path(path)
    except Exception as exc:  # application code may raise anything while being imported
        reason = _reason(exc)
        module, _, qualname = path.partition(":")
        parent, dot, last = module.rpartition(".")
        if isinstance(exc, ModuleNotFoundError) and exc.name == module and dot:
            # `a.B.method` reads as module `a.B`, attribute `method` (the last dot splits).
            reason += f"; if {last} is an attribute of {parent}, write {parent}:{last}.{qualname}"
        raise ConfigError(f"{_at(task, name)}: expected {expected}, got {path!r} ({reason})") from None


def _resolve_class(task: RecurringTask, path: str) -> type[Job]:
    expected = "an importable jobctl.Job subclass"
    obj = _import(task, path, "class", expected)
    try:
        job_class = load_job_class(path)
    except JobClassError:
        kind = "a class not derived from jobctl.Job" if isinstance(obj, type) else f"of type {type(obj).__name__}"
        raise ConfigError(f"{_at(task, 'class')}: expected a jobctl.Job subclass, got {path!r} ({kind})") from None
    # row_for stores the class's own queue and priority unless the task names its own.
    try:
        if task.queue is None:
            _checked_text(job_class.queue, f"{path}.queue")
        if task.priority is None:
            _checked_priority(job_class.priority, f"{path}.priority")
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{_at(task, 'class')}: {exc}") from None
    perform = job_class.perform
    # A plain `def perform(self, ...)` is unbound here: something stands in for self.
    needs_self = inspect.isfunction(inspect.getattr_static(job_class, "perform", None))
    _check_signature(task, perform, f"{path}.perform", (None,) if needs_self else ())
    return job_class


def _resolve_command(task: RecurringTask, path: str) -> object:
    expected = "an importable callable"
    obj = _import(task, path, "command", expected)
    if isinstance(obj, type) and issubclass(obj, Job):
        raise ConfigError(
            f"{_at(task, 'command')}: expected a callable, got {path!r} "
            "(a jobctl.Job subclass: name it with class instead of command)"
        )
    if not callable(obj):
        raise ConfigError(f"{_at(task, 'command')}: expected a callable, got {path!r} (of type {type(obj).__name__})")
    _check_signature(task, obj, path, ())
    return obj


def _check_signature(task: RecurringTask, func: Callable[..., Any], name: str, leading: tuple[Any, ...]) -> None:
    try:
        signature = inspect.signature(func)
    except (TypeError, ValueError):  # some builtins have none: nothing to check
        return
    try:
        signature.bind(*leading, *task.args, **task.kwargs)
    except TypeError as exc:
        got = f"args {_show_args(task.args)}" + (f" and kwargs {_show_args(task.kwargs)}" if task.kwargs else "")
        raise ConfigError(f"{_at(task, 'args')}: expected arguments {name} accepts, got {got} ({exc})") from None


def _show_args(value: object) -> str:
    if isinstance(value, tuple):
        value = list(value)
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


# -- running tasks (the scheduler enqueues, the worker runs) ----------------------------------

_loaded: dict[str, RecurringTask] = {}


def register_tasks(tasks: Iterable[RecurringTask]) -> None:
    """Make these tasks' commands runnable in this process (`jobctl start` does it before forking)."""
    _loaded.clear()
    _loaded.update({task.key: task for task in tasks})


class RecurringCommandJob(Job):
    """What a `command` task's tick enqueues: only the task key travels, the command comes from the
    worker's own recurring config, so a row can never name an arbitrary callable."""

    def perform(self, key: str) -> None:
        task = _loaded.get(key)
        if task is None or task.command is None:
            raise JobClassError(f"recurring task {key!r} is not a command task in this worker's recurring config")
        func = resolve_task(task)
        assert callable(func)
        func(*task.args, **task.kwargs)  # a command's return value (often a handle) is not kept


def row_for(task: RecurringTask, next_run_at: Any = None) -> RecurringRow:
    """The stored form of a task: what its ticks enqueue and how operators see it."""
    if task.class_path is not None:
        job_class = load_job_class(task.class_path)
        class_path = task.class_path
        arguments = dump_arguments(task.args, task.kwargs)
        queue = task.queue or job_class.queue
        priority = job_class.priority if task.priority is None else task.priority
    else:
        class_path = f"{RecurringCommandJob.__module__}:{RecurringCommandJob.__qualname__}"
        arguments = dump_arguments([task.key], {})
        queue = task.queue or "default"
        priority = task.priority or 0
    return RecurringRow(key=task.key, schedule=task.schedule.text, cron=task.schedule.cron, class_path=class_path,
                        command=task.command, arguments=arguments, queue=queue, priority=priority,
                        description=task.description, next_run_at=next_run_at)
