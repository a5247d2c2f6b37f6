"""How times and durations read for people, the same in the CLI's tables and the monitor (pure)."""

from __future__ import annotations

import datetime as dt


def duration(seconds: float) -> str:
    """`850ms`, `12s`, `5m`, `3h`, `2d`."""
    if seconds < 1:
        return f"{seconds * 1000:.0f}ms"
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds / size:.0f}{unit}"
    return f"{seconds:.0f}s"


def ago(value: dt.datetime | None, now: dt.datetime | None = None) -> str:
    """`3s ago`, `in 5m`, `2h ago`, `-`."""
    if value is None:
        return "-"
    now = now or dt.datetime.now(dt.UTC)
    seconds = (now - value).total_seconds()
    text = duration(abs(seconds))
    return f"{text} ago" if seconds >= 0 else f"in {text}"
