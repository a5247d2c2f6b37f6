"""`@jobctl.later`: a `_now` method gets a `_later` twin that enqueues a job calling it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, overload

from jobctl.arguments import class_path
from jobctl.errors import JobClassError
from jobctl.job import Job, JobHandle, register_job_adapter

# (class path, method name) of every method registered by @later: the only ones a row can call.
_registered: set[tuple[str, str]] = set()
_LATER = "__jobctl_later__"
"""Set on a `_now` function registered by @later: a row naming the function's path runs it as a LaterJob."""


class LaterJob(Job):
    """The built-in job behind every `_later` method: re-loads the record and calls its `_now` method.

    Its rows name the method (`myapp.models:Comment.notify_recipients_now`), so logs, `jobctl jobs
    --class` and the monitor say what runs; rows written as `jobctl.later:LaterJob` still run.
    """

    def perform(self, record: Any, method: str, *args: Any, **kwargs: Any) -> Any:
        if _owner(type(record), method) is None:
            raise JobClassError(
                f"{type(record).__qualname__}.{method} is not registered with @jobctl.later; it will not be called"
            )
        return getattr(record, method)(*args, **kwargs)

    def stored_class_path(self) -> str:
        record, method = (*self._args, None, None)[:2]
        owner = _owner(type(record), method) if isinstance(method, str) else None
        return f"{owner}.{method}" if owner else super().stored_class_path()


def _owner(cls: type, method: str) -> str | None:
    """The class path of the class in `cls`'s MRO that registered `method` with @later, or None."""
    return next((path for base in cls.__mro__ if ((path := class_path(base)), method) in _registered), None)


def _later_job(obj: Any) -> type[Job] | None:
    return LaterJob if getattr(obj, _LATER, False) is True else None


register_job_adapter(_later_job)


class _LaterMethod:
    def __init__(self, fn: Callable[..., Any], queue: str | None, priority: int | None) -> None:
        if not fn.__name__.endswith("_now"):
            raise TypeError(f"@jobctl.later needs a method named *_now, got {fn.__name__!r}")
        self.fn = fn
        self.queue = queue
        self.priority = priority

    def __set_name__(self, owner: type, name: str) -> None:
        fn, queue, priority = self.fn, self.queue, self.priority
        setattr(fn, _LATER, True)
        setattr(owner, name, fn)
        _registered.add((class_path(owner), name))

        def enqueue_later(record: Any, *args: Any, **kwargs: Any) -> JobHandle:
            return LaterJob.set(queue=queue, priority=priority).perform_later(record, name, *args, **kwargs)

        later_name = name[: -len("_now")] + "_later"
        enqueue_later.__name__ = enqueue_later.__qualname__ = later_name
        enqueue_later.__doc__ = f"Enqueue a job that calls {name}() on this record."
        setattr(owner, later_name, enqueue_later)


@overload
def later(fn: Callable[..., Any], /) -> Any: ...
@overload
def later(*, queue: str | None = None, priority: int | None = None) -> Callable[[Callable[..., Any]], Any]: ...


def later(
    fn: Callable[..., Any] | None = None, /, *, queue: str | None = None, priority: int | None = None
) -> Any:
    """Decorate `name_now(self, ...)` to add `name_later(self, ...)`; the class needs a registered locator.

    Usable as `@jobctl.later`, `@jobctl.later()` or `@jobctl.later(queue="mailers", priority=5)`.
    """
    if fn is not None:
        return _LaterMethod(fn, queue, priority)
    return lambda f: _LaterMethod(f, queue, priority)
