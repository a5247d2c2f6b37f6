"""How times, durations and data read for people, the same in the CLI's tables and the monitor (pure)."""

from __future__ import annotations

import datetime as dt
import re

LONG_TEXT = 10_000
"""Characters of one long value (arguments, an error message, a traceback) that the text views show;
`--json` has all of it."""

# Every character a terminal may act on rather than print: C0 controls, DEL and C1 controls (ESC and
# CSI among them), the line and paragraph separators, and the bidirectional overrides and isolates
# that reorder what follows them on the line ("Trojan Source").
_UNPRINTABLE = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
_UNPRINTABLE_BUT_LINES = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e"
                                    "\u2066-\u2069]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _visible(match: re.Match[str]) -> str:
    char = match.group()
    if char in _NAMED:
        return _NAMED[char]
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def printable(text: str, *, lines: bool = False) -> str:
    """Text from the database or the application made safe for a terminal: every control character
    shown as its Python escape (ESC as `\\x1b`, a newline as `\\n`, U+202E as `\\u202e`); with `lines`,
    newlines and tabs are kept (tracebacks, indented JSON). Rich markup is not this function's concern:
    callers hand the result to rich or Textual as `Text`, never as markup."""
    pattern = _UNPRINTABLE_BUT_LINES if lines else _UNPRINTABLE
    return pattern.sub(_visible, text)


def shortened(text: str, *, limit: int = LONG_TEXT, hint: str, keep_end: bool = False) -> str:
    """`text`, or at most `limit` of its characters and a note saying how many were cut and where the
    rest is (`hint`). With `keep_end` the first and last halves are kept (a traceback's last lines
    name the error)."""
    cut = len(text) - limit
    if cut <= 0:
        return text
    note = f"… ({cut:,} characters cut; {hint})"
    if keep_end:
        head = limit // 2
        return f"{text[:head]}\n{note}\n{text[len(text) - (limit - head):]}"
    return f"{text[:limit]}{note}"


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


def estimate(count: int) -> str:
    """A count read from per-minute counters with the oldest minute prorated: `≈1,234`."""
    return f"≈{count:,}"


def plural(n: int, noun: str) -> str:
    """`noun` for one, its plural otherwise (`1 worker`, `2 workers`, `3 processes`)."""
    return noun if n == 1 else noun + ("es" if noun.endswith("s") else "s")


def progress_bar(done: int, total: int, width: int = 20) -> str:
    """`[########------------]  40%`: a batch's ended members of its total (an empty batch is done)."""
    share = 1.0 if total <= 0 else min(max(done / total, 0.0), 1.0)
    filled = round(share * width)
    return f"[{'#' * filled}{'-' * (width - filled)}] {share * 100:3.0f}%"
