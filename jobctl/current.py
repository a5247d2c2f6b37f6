"""`jobctl.current`: per-job context that application code may set while a job runs.

Backed by a ContextVar holding an immutable-by-convention dict (copied on write), so a
value set in one thread or task never shows in another, and the runtime resets it before
every job so nothing leaks from one job to the next.
"""

from __future__ import annotations

from contextvars import ContextVar
from typing import Any

_values: ContextVar[dict[str, Any]] = ContextVar("jobctl_current")


class Current:
    """A namespace: `jobctl.current.user = u`, then `jobctl.current.user` anywhere in the same job."""

    __slots__ = ()

    def __getattr__(self, name: str) -> Any:
        try:
            return _values.get({})[name]
        except KeyError:
            raise AttributeError(f"jobctl.current has no attribute {name!r}") from None

    def __setattr__(self, name: str, value: Any) -> None:
        _values.set({**_values.get({}), name: value})

    def __delattr__(self, name: str) -> None:
        values = dict(_values.get({}))
        if values.pop(name, _MISSING) is _MISSING:
            raise AttributeError(name)
        _values.set(values)

    def __contains__(self, name: str) -> bool:
        return name in _values.get({})

    def as_dict(self) -> dict[str, Any]:
        """A copy of everything set."""
        return dict(_values.get({}))

    def reset(self) -> None:
        """Forget everything (the runtime calls this before each job)."""
        _values.set({})

    def __repr__(self) -> str:
        return f"jobctl.current({_values.get({})!r})"


_MISSING = object()
current = Current()
