"""Loading and validating `config/queue.yml` (pure: no database); every error is one line."""

from __future__ import annotations

import math
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import yaml

from jobctl.errors import ConfigError

__all__ = [
    "DEFAULT_CONFIG_PATH",
    "DEFAULT_ENVIRONMENT",
    "DispatcherConfig",
    "QueueConfig",
    "WorkerConfig",
    "load_queue_config",
    "load_yaml_sections",
    "parse_duration",
    "parse_queue_selector",
]

DEFAULT_CONFIG_PATH = "config/queue.yml"
DEFAULT_ENVIRONMENT = "development"

# The longest duration anything accepts (a wait, a timeout, a retention): longer is surely a typo,
# and every clock and SQL interval jobctl hands it to still holds it.
MAX_DURATION_S = 100 * 365.25 * 86400  # 100 years: 3,155,760,000 s
_DURATION_BOUND = f"of at most 100 years ({MAX_DURATION_S:.0f} seconds)"
# The runtime's counts meet SQL as int4 (LIMIT ...::integer, the crashes column): none may exceed it.
INT32_MAX = 2**31 - 1
_UNITS = {"": 1.0, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}
_DURATION = re.compile(r"(\d+(?:\.\d*)?|\.\d+)\s*([smhdw]?)")
_QUEUES_EXPECTED = 'a queue name, a list of names, "a,b", "*" or a prefix like "staging*"'


def _show(value: object) -> str:
    """How a bad value appears after `got`: YAML spelling for scalars, the kind for collections."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    text = repr(value)
    text = text if len(text) <= 60 else text[:57] + "..."
    if isinstance(value, str) and "<%" in value:
        text += " (ERB is not evaluated in jobctl; write the value itself)"
    return text


def parse_duration(value: object, *, where: str, positive: bool = False) -> float:
    """Seconds from a number or a string like `10`, `30s`, `5m`, `1.5h`, `1d`, `1w`; errors name `where`.

    At most MAX_DURATION_S (100 years); nan and infinities are refused.
    """
    seconds: float | None = None
    if isinstance(value, int) and not isinstance(value, bool):
        seconds = float(value) if abs(value) <= MAX_DURATION_S else math.inf  # 10**400 cannot be a float
    elif isinstance(value, float):
        seconds = value
    elif isinstance(value, str) and (match := _DURATION.fullmatch(value.strip())):
        seconds = float(match[1]) * _UNITS[match[2]]
    kind = "a positive duration" if positive else "a duration"
    if seconds is None or seconds < 0 or (positive and seconds == 0):
        raise ConfigError(f"{where}: expected {kind} (seconds, or 30s, 5m, 2h, 1d, 1w), got {_show(value)}")
    if not seconds <= MAX_DURATION_S:  # also nan
        raise ConfigError(
            f"{where}: expected {kind} (seconds, or 30s, 5m, 2h, 1d, 1w) {_DURATION_BOUND}, got {_show(value)}"
        )
    return seconds


def parse_queue_selector(queues: object, *, where: str = "queues") -> tuple[str, ...]:
    """Queue names and prefixes in the given order, from a name, a list, `a,b`, `*` or `staging*`."""
    items = [queues] if isinstance(queues, str) else queues if isinstance(queues, list | tuple) else []
    if not items:
        raise ConfigError(f"{where}: expected {_QUEUES_EXPECTED}, got {_show(queues)}")
    names: list[str] = []
    for item in items:
        if not isinstance(item, str):
            raise ConfigError(f"{where}: expected {_QUEUES_EXPECTED}, got {_show(item)}")
        for name in (part.strip() for part in item.split(",")):
            if not name:
                raise ConfigError(f"{where}: expected non-empty queue names, got {_show(queues)}")
            if "\0" in name:  # PostgreSQL text cannot hold it
                raise ConfigError(f"{where}: expected queue names without NUL characters, got {name!r}")
            # Only a trailing `*` means anything (a prefix); elsewhere it is surely a typo.
            if "*" in name[:-1] or any(char.isspace() for char in name):
                raise ConfigError(f'{where}: expected a queue name or a prefix ending in "*", got {name!r}')
            if name not in names:
                names.append(name)
    return tuple(names)


@dataclass(frozen=True)
class WorkerConfig:
    """One group of worker processes serving the same queues."""

    queues: tuple[str, ...] = ("*",)
    """Queue names or `prefix*`, claimed in this order; `*` is every queue."""
    threads: int = 3
    """Jobs executing at once per process (1 to 10,000)."""
    processes: int = 2
    """Processes the supervisor forks for this group (1 to 1,000)."""
    polling_interval: float = 0.1
    """Seconds between polls on SQLite, and on PostgreSQL while not listening."""
    fallback_polling_interval: float = 5.0
    """Seconds between polls on PostgreSQL while LISTEN is healthy."""
    prefetch: int | None = None
    """Jobs claimed beyond the idle threads (at most 1,000,000); None is adaptive (about 0.2 s of work per
    thread, up to 4,000)."""
    max_memory_mb: int | None = None
    """Recycle a process gracefully once its memory exceeds this; None never."""
    max_jobs_per_process: int | None = None
    """Recycle a process gracefully after this many jobs; None never."""


@dataclass(frozen=True)
class DispatcherConfig:
    """One dispatcher process: promotes due scheduled jobs, unblocks blocked ones, prunes finished ones."""

    polling_interval: float = 1.0
    """Seconds between passes."""
    batch_size: int = 500
    """Jobs moved per statement (at most 2,147,483,647: SQL's int4)."""
    concurrency_maintenance: bool = True
    """Whether this dispatcher also releases expired concurrency semaphores (as Solid Queue's)."""
    concurrency_maintenance_interval: float = 600.0
    """Seconds between concurrency maintenance passes."""


@dataclass(frozen=True)
class QueueConfig:
    """The runtime's whole configuration for one environment."""

    workers: tuple[WorkerConfig, ...] = (WorkerConfig(),)
    """Worker groups; empty when the file lists none."""
    dispatchers: tuple[DispatcherConfig, ...] = (DispatcherConfig(),)
    """Dispatchers; empty when the file lists workers but no dispatchers."""
    shutdown_timeout: float = 5.0
    """Seconds running jobs get to finish on TERM/INT before they go back to ready."""
    process_heartbeat_interval: float = 10.0
    """Seconds between process heartbeats."""
    process_alive_threshold: float = 60.0
    """A process whose heartbeat is older than this is pruned and its claims released."""
    preserve_finished_jobs: bool = True
    """Whether finished jobs are kept (until `clear_finished_jobs_after`)."""
    clear_finished_jobs_after: float = 86400.0
    """Seconds a finished job is kept before the dispatcher prunes it."""
    max_crashes: int = 2
    """Crashes in a row after which a child is restarted with backoff."""
    database: str | None = None
    """Database URL from the file (may hold a password: never print it)."""
    pooler: str | None = None
    """`transaction` when the database URL goes through a transaction-pooling PgBouncer (no server-side
    prepared statements; LISTEN only through `listen_database`), `session` or None otherwise."""
    listen_database: str | None = None
    """A direct URL (past the pooler) for LISTEN; without one, workers behind a pooler poll."""
    imports: tuple[str, ...] = ()
    """Modules imported before forking, so job classes are registered."""
    metrics_port: int | None = None
    """Serve Prometheus metrics on this TCP port (`jobctl start --metrics-port` wins); None serves none."""
    metrics_host: str = "127.0.0.1"
    """The address the metrics endpoint listens on (loopback unless changed)."""
    metrics_interval: float = 5.0
    """Seconds a database reading of the metrics endpoint is reused: at most one query this often per host."""
    otel: bool = False
    """OpenTelemetry spans for enqueues and runs (needs opentelemetry-api; JOBCTL_OTEL and
    `jobctl.configure(otel=)` win)."""
    source: str | None = None
    """The file this came from; None for built-in defaults."""
    environment: str = DEFAULT_ENVIRONMENT
    """The environment section that was read."""
    warnings: tuple[str, ...] = ()
    """One-line notes for `jobctl start --check` (valid but probably unintended)."""

    @property
    def named_queues(self) -> tuple[str, ...]:
        """Queues the workers name exactly (not `*` or a `prefix*`), in order: operators see them even while
        empty, and can pause them before any job arrives."""
        return tuple(dict.fromkeys(name for worker in self.workers for name in worker.queues
                                   if not name.endswith("*")))


@dataclass(frozen=True)
class _At:
    """Where a value sits: the file and the key path, as error messages spell them."""

    file: str
    path: str = ""

    def key(self, name: object) -> _At:
        return _At(self.file, f"{self.path}.{name}" if self.path else str(name))

    def item(self, index: int) -> _At:
        return _At(self.file, f"{self.path}[{index}]")

    def __str__(self) -> str:
        return f"{self.file}: {self.path}" if self.path else self.file

    def error(self, expected: str, value: object) -> ConfigError:
        return ConfigError(f"{self}: expected {expected}, got {_show(value)}")


_Convert = Callable[[object, _At], Any]


def _integer(minimum: int, maximum: int, *, nullable: bool = False) -> _Convert:
    """An integer from `minimum` to `maximum` (booleans are not integers); null too when `nullable`."""
    or_null = " or null" if nullable else ""
    expected = ("a positive integer" if minimum > 0 else "a non-negative integer") + or_null
    in_range = f"an integer from {minimum} to {maximum}{or_null}"

    def convert(value: object, at: _At) -> int | None:
        if value is None and nullable:
            return None
        if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
            raise at.error(expected, value)
        if value > maximum:
            raise at.error(in_range, value)
        return value

    return convert


def _duration(*, positive: bool) -> _Convert:
    return lambda value, at: parse_duration(value, where=str(at), positive=positive)


def _flag(value: object, at: _At) -> bool:
    if isinstance(value, bool):
        return value
    raise at.error("true or false", value)


def _queues(value: object, at: _At) -> tuple[str, ...]:
    return parse_queue_selector(value, where=str(at))


def _database(value: object, at: _At) -> str | None:
    if isinstance(value, str) and "\0" in value:  # the URL may hold a password: never shown
        raise ConfigError(f"{at}: expected a database URL without NUL characters, got a text with a NUL character")
    if value is None or (isinstance(value, str) and value.strip()):
        return value
    raise at.error("a database URL", value)


POOLER_MODES = ("transaction", "session")


def _pooler(value: object, at: _At) -> str | None:
    if value is None or value in POOLER_MODES:
        return value
    raise at.error(f"one of {', '.join(POOLER_MODES)} (the PgBouncer pool_mode in front of the database), or null",
                   value)


def _port(value: object, at: _At) -> int | None:
    if value is None or (isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= 65535):
        return value
    raise at.error("a TCP port from 1 to 65535, or null", value)


def _host(value: object, at: _At) -> str:
    if isinstance(value, str) and value.strip() and not any(c.isspace() or c == "\0" for c in value):
        return value
    raise at.error("a host name or address to listen on, like 127.0.0.1 or 0.0.0.0", value)


def _imports(value: object, at: _At) -> tuple[str, ...]:
    items = [] if value is None else [value] if isinstance(value, str) else value
    if not isinstance(items, list):
        raise at.error("a module name or a list of module names", value)
    for index, item in enumerate(items):
        if not (isinstance(item, str) and all(part.isidentifier() for part in item.split("."))):
            raise at.item(index).error("a module name like myapp.jobs", item)
    return tuple(items)


def _read(raw: object, at: _At, what: str, converters: Mapping[str, _Convert]) -> dict[str, Any]:
    """Convert each key of a mapping; unknown keys are errors listing the known ones."""
    if not isinstance(raw, dict):
        raise at.error(f"a mapping of {what}", raw)
    values: dict[str, Any] = {}
    for key, value in raw.items():
        if key not in converters:
            raise ConfigError(f"{at.key(key)}: unknown key (expected one of: {', '.join(converters)})")
        values[key] = converters[key](value, at.key(key))
    return values


def _groups(make: Callable[..., Any], what: str, converters: Mapping[str, _Convert]) -> _Convert:
    """A list of mappings, each converted and made into one config object."""

    def convert(raw: object, at: _At) -> tuple[Any, ...]:
        if raw is None:  # `workers:` with every entry commented out: none, as in Solid Queue
            return ()
        if not isinstance(raw, list):
            raise at.error(f"a list of {what}", raw)
        return tuple(make(**_read(item, at.item(i), what, converters)) for i, item in enumerate(raw))

    return convert


# Upper bounds: what one host can run (threads are OS threads, each process a fork), what a
# worker can hold in memory (prefetched jobs), and elsewhere what SQL's int4 holds.
_THREADS_MAX = 10_000
_PROCESSES_MAX = 1_000
_PREFETCH_MAX = 1_000_000
_WORKER_KEYS: dict[str, _Convert] = {
    "queues": _queues,
    "threads": _integer(1, _THREADS_MAX),
    "processes": _integer(1, _PROCESSES_MAX),
    "polling_interval": _duration(positive=True),
    "fallback_polling_interval": _duration(positive=True),
    "prefetch": _integer(0, _PREFETCH_MAX, nullable=True),
    "max_memory_mb": _integer(1, INT32_MAX, nullable=True),
    "max_jobs_per_process": _integer(1, INT32_MAX, nullable=True),
}
_DISPATCHER_KEYS: dict[str, _Convert] = {
    "polling_interval": _duration(positive=True),
    "batch_size": _integer(1, INT32_MAX),
    "concurrency_maintenance": _flag,
    "concurrency_maintenance_interval": _duration(positive=True),
}
_SECTION_KEYS: dict[str, _Convert] = {
    "workers": _groups(WorkerConfig, "worker settings", _WORKER_KEYS),
    "dispatchers": _groups(DispatcherConfig, "dispatcher settings", _DISPATCHER_KEYS),
    "shutdown_timeout": _duration(positive=False),
    "process_heartbeat_interval": _duration(positive=True),
    "process_alive_threshold": _duration(positive=True),
    "preserve_finished_jobs": _flag,
    "clear_finished_jobs_after": _duration(positive=False),
    "max_crashes": _integer(0, INT32_MAX),
    "database": _database,
    "pooler": _pooler,
    "listen_database": _database,
    "imports": _imports,
    "metrics_port": _port,
    "metrics_host": _host,
    "metrics_interval": _duration(positive=True),
    "otel": _flag,
}

_TASK_KEYS = frozenset({"schedule", "class", "command"})
# Per kind of file: what its settings are called, and whether a top-level mapping is already one
# flat section rather than environment sections (a queue file: it has settings keys; a recurring
# file: some top-level value looks like a task).
_KINDS: dict[str, tuple[str, Callable[[dict[Any, Any]], bool]]] = {
    "queue": ("queue settings", lambda data: not data or any(key in _SECTION_KEYS for key in data)),
    "recurring": (
        "recurring tasks",
        lambda data: not data or any(isinstance(v, dict) and _TASK_KEYS & v.keys() for v in data.values()),
    ),
}


# Bounds on a config file as YAML builds it: aliases count each time they are used, so a
# "billion laughs" file stops here instead of expanding into gigabytes, and nesting stops long
# before Python's recursion limit (PyYAML composes recursively).
MAX_YAML_VALUES = 100_000
MAX_YAML_DEPTH = 100


class _BoundedLoader(yaml.SafeLoader):
    """SafeLoader that counts values (aliases expanded) and nesting (through aliases too) while composing."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._values = 0
        self._open: list[int] = []  # per collection being composed: the height of its tallest child so far
        self._sizes: dict[int, tuple[int, int]] = {}  # id(node) -> (values, height) once composed

    def compose_node(self, parent: yaml.Node | None, index: int) -> yaml.Node | None:
        mark: yaml.Mark = self.peek_event().start_mark  # type: ignore[no-untyped-call]  # untyped in the stubs
        if self.check_event(yaml.AliasEvent):
            node = super().compose_node(parent, index)
            # A node still being composed is an alias inside itself: counted once, left to the
            # consumer (arguments refuse a value that contains itself).
            values, height = self._sizes.get(id(node), (1, 1))
            self._values += values
        else:
            if len(self._open) >= MAX_YAML_DEPTH:
                raise self._bound(f"nested more than {MAX_YAML_DEPTH} levels deep", mark)
            before = self._values
            self._open.append(0)
            node = super().compose_node(parent, index)
            height = self._open.pop() + 1
            self._values += 1
            self._sizes[id(node)] = (self._values - before, height)
        if self._values > MAX_YAML_VALUES:
            raise self._bound(
                f"more than {MAX_YAML_VALUES} values once aliases are expanded (the bound for a config file)", mark
            )
        if len(self._open) + height > MAX_YAML_DEPTH:
            raise self._bound(f"nested more than {MAX_YAML_DEPTH} levels deep", mark)
        if self._open:
            self._open[-1] = max(self._open[-1], height)
        return node

    def construct_object(self, node: yaml.Node, deep: bool = False) -> Any:
        try:
            return super().construct_object(node, deep)
        except ValueError as exc:  # a scalar PyYAML resolves but cannot build: 2026-13-45, a 5,000-digit int
            raise yaml.constructor.ConstructorError(None, None, str(exc), node.start_mark) from None

    @staticmethod
    def _bound(problem: str, mark: yaml.Mark) -> yaml.YAMLError:
        return yaml.composer.ComposerError(None, None, problem, mark)


def _parse_yaml(text: str, label: str) -> object:
    loader = _BoundedLoader(text)
    try:
        return loader.get_single_data()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"line {mark.line + 1}: " if mark is not None else ""
        problem = exc.problem or exc.context or "invalid YAML"
        if exc.context == "while scanning an alias":  # `queues: *` unquoted reads as an alias
            problem += ' (a bare * starts a YAML alias: write "*" in quotes)'
        raise ConfigError(f"{label}: {where}{' '.join(problem.split())}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{label}: {' '.join(str(exc).split())}") from None
    finally:
        loader.dispose()


def load_yaml_sections(path: str | os.PathLike[str], env: str, *, kind: str) -> tuple[dict[str, Any], str]:
    """The section for `env` of a YAML file of `kind` ("queue" or "recurring") and its key-path prefix.

    A file without environment sections is one flat section, returned with the prefix "".
    """
    what, is_flat = _KINDS[kind]
    label = os.fspath(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{label}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise ConfigError(f"{label}: cannot read ({reason})") from None
    data = _parse_yaml(text, label)
    data = {} if data is None else data
    if not isinstance(data, dict):
        raise _At(label).error(f"a mapping of environment sections or {what}", data)
    if is_flat(data):
        return data, ""
    if env not in data:
        present = ", ".join(str(key) for key in data)
        raise ConfigError(
            f"{label}: no section for environment {env!r} (JOBCTL_ENV); sections present: {present}"
        )
    section = {} if data[env] is None else data[env]
    if not isinstance(section, dict):
        raise _At(label, env).error(f"a mapping of {what}", section)
    return section, env


def _warnings(config: QueueConfig, at: _At) -> tuple[str, ...]:
    notes = []
    if not config.dispatchers:
        notes.append(
            f"{at}: no dispatchers: scheduled jobs, retries and blocked jobs need a dispatcher elsewhere"
        )
    if not config.workers:
        notes.append(f"{at}: no workers: jobs run only where a worker runs elsewhere")
    return tuple(notes)


def locate(path: str | os.PathLike[str] | None, *, env_var: str, default: str, explicit: bool,
           env: str | None) -> tuple[str | None, str]:
    """(the file to read, or None when the default file is absent; the environment section).

    `path`, else `$env_var`, else `default`; a file named explicitly (by `explicit=True` or the
    variable) must exist, the default one may be absent. The section is `env`, `$JOBCTL_ENV` or
    development.
    """
    environment = env or os.environ.get("JOBCTL_ENV") or DEFAULT_ENVIRONMENT
    if path is None:
        named = os.environ.get(env_var)
        explicit = explicit or bool(named)
        path = named or default
    if not explicit and not os.path.exists(path):
        return None, environment
    return os.fspath(path), environment


def load_queue_config(
    path: str | os.PathLike[str] | None = None, *, env: str | None = None, explicit: bool = False
) -> QueueConfig:
    """Load and validate the queue config: `path` or `$JOBCTL_CONFIG` or `config/queue.yml`.

    The default file may be absent (built-in defaults run); a file named explicitly, by
    `explicit=True` or `$JOBCTL_CONFIG`, must exist.
    """
    found, environment = locate(path, env_var="JOBCTL_CONFIG", default=DEFAULT_CONFIG_PATH, explicit=explicit,
                                env=env)
    if found is None:
        return QueueConfig(environment=environment)
    section, prefix = load_yaml_sections(found, environment, kind="queue")
    at = _At(found, prefix)
    values = _read(section, at, "queue settings", _SECTION_KEYS)
    # As Solid Queue: a section naming neither workers nor dispatchers (empty included) runs the
    # defaults, while naming only one kind runs only that kind.
    if "workers" in values or "dispatchers" in values:
        values = {"workers": (), "dispatchers": (), **values}
    config = QueueConfig(**values, source=found, environment=environment)
    if config.process_alive_threshold <= config.process_heartbeat_interval:
        raise ConfigError(
            f"{at.key('process_alive_threshold')}: expected more than process_heartbeat_interval "
            f"({config.process_heartbeat_interval:g}s), got {config.process_alive_threshold:g}s"
        )
    return replace(config, warnings=_warnings(config, at))
