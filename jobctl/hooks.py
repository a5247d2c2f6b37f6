"""Lifecycle hooks (`jobctl.on_start`, `jobctl.on_stop`) and the error reporter, as Solid Queue's.

Light on purpose (`import jobctl` loads it): plain lists of callables, nothing imported. A hook or a
reporter that raises is logged (and the exception passed to the reporter), never fatal: a broken
Sentry setup must not stop a worker.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any, overload

__all__ = ["KINDS", "ReportedJob", "RuntimeProcess", "on_start", "on_stop", "report", "reporting",
           "run_hooks", "set_error_reporter"]

KINDS = ("supervisor", "worker", "dispatcher", "scheduler", "metrics")
"""The runtime's process kinds: every hook names some of them, or all."""
LOGGER = logging.getLogger("jobctl")


@dataclass(frozen=True)
class RuntimeProcess:
    """The process a hook runs in."""

    kind: str
    """One of KINDS."""
    name: str
    """Its name in logs: `supervisor`, `worker 1.2` (group 1, process 2), `dispatcher 1`, ..."""
    pid: int
    """Its OS process id."""
    process_id: int
    """Its row in jobctl_processes (0 for a process that registers none, as the metrics server)."""


@dataclass(frozen=True)
class ReportedJob:
    """The job of a failed run, as the error reporter receives it."""

    id: int
    """The job's id."""
    class_path: str
    """Its class, `module:QualName`."""
    queue: str
    """The queue it ran from."""
    attempt: int
    """Which run this was (1 for the first)."""
    outcome: str
    """`retry` (it runs again) or `failed` (it ran for the last time)."""
    arguments: str
    """Its stored arguments, as JSON text."""

    def as_dict(self) -> dict[str, Any]:
        """Its fields as a plain dict (for `sentry_sdk.set_context("job", ...)` and the like)."""
        return asdict(self)


Hook = Callable[[RuntimeProcess], object]
Reporter = Callable[[BaseException, "ReportedJob | None"], object]

_hooks: dict[str, list[tuple[frozenset[str], Hook]]] = {"start": [], "stop": []}
_reporter: Reporter | None = None
_lock = threading.Lock()


def _kinds(names: tuple[str, ...], decorator: str) -> frozenset[str]:
    unknown = [k for k in names if k not in KINDS]
    if unknown:
        raise ValueError(f"{decorator}({', '.join(map(repr, unknown))}): expected process kinds among "
                         f"{', '.join(KINDS)}")
    return frozenset(names or KINDS)


def _register(event: str, decorator: str, target: Any, kinds: tuple[str, ...]) -> Any:
    if callable(target):  # bare `@jobctl.on_start`, or `jobctl.on_start(fn)`: every kind
        _hooks[event].append((_kinds(kinds, decorator), target))
        return target
    checked = _kinds((target, *kinds) if target is not None else kinds, decorator)

    def decorate(fn: Hook) -> Hook:
        _hooks[event].append((checked, fn))
        return fn

    return decorate


@overload
def on_start(fn: Hook, /) -> Hook: ...
@overload
def on_start(*kinds: str) -> Callable[[Hook], Hook]: ...
def on_start(*args: Any) -> Any:
    """Run `fn(process)` when a runtime process starts: `@jobctl.on_start` in every process,
    `@jobctl.on_start("worker")` (or several kinds) only there. Hooks run in the order registered,
    after the process registered and before it takes work; the supervisor's before it forks any child."""
    return _register("start", "on_start", args[0] if args else None, tuple(args[1:]))


@overload
def on_stop(fn: Hook, /) -> Hook: ...
@overload
def on_stop(*kinds: str) -> Callable[[Hook], Hook]: ...
def on_stop(*args: Any) -> Any:
    """Run `fn(process)` when a runtime process stops, after its last job and before it exits
    (`@jobctl.on_stop` everywhere, `@jobctl.on_stop("worker")` per kind); the supervisor's after
    every child has stopped. Not run when a process is killed."""
    return _register("stop", "on_stop", args[0] if args else None, tuple(args[1:]))


def run_hooks(event: str, process: RuntimeProcess) -> None:
    """Call the `event` ("start" or "stop") hooks for `process`'s kind, in order; one that raises is
    logged and reported, and the others still run."""
    for kinds, hook in list(_hooks[event]):
        if process.kind not in kinds:
            continue
        try:
            hook(process)
        except Exception as exc:
            name = getattr(hook, "__qualname__", repr(hook))
            LOGGER.error("%s (pid %d): on_%s hook %s raised %s: %s", process.name, process.pid, event, name,
                         type(exc).__name__, exc, exc_info=True, extra={"event": "hook_failed"})
            report(exc)


def set_error_reporter(reporter: Reporter | None) -> None:
    """Call `reporter(exception, job)` for every failed run and every unexpected error of jobctl's own
    (`job` None); None removes it."""
    global _reporter
    if reporter is not None and not callable(reporter):
        raise TypeError(f"error_reporter must be callable, got {reporter!r}")
    with _lock:
        _reporter = reporter


def report(exc: BaseException, job: ReportedJob | None = None) -> None:
    """Hand `exc` to the error reporter, if one is set; an error inside it is logged, never raised."""
    reporter = _reporter
    if reporter is None:
        return
    try:
        reporter(exc, job)
    except Exception as failure:
        LOGGER.error("the error reporter raised %s: %s (reporting %s)", type(failure).__name__, failure,
                     type(exc).__name__, exc_info=True, extra={"event": "reporter_failed"})


def reporting() -> bool:
    """Whether an error reporter is set (the worker builds a ReportedJob only then)."""
    return _reporter is not None
