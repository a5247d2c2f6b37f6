"""Recurring-task schedules: cron or Fugit-style text → one cron, and its ticks (pure).

Time zones and DST: ticks are computed on the schedule's wall clock (UTC when no zone is
given) by croniter, which already moves a tick that falls in a spring-forward gap to the
first instant after the gap (`0 2 * * *` runs at 03:00 that day, once). On fall-back,
croniter would return a fixed-hour tick twice (01:30 EDT, then 01:30 EST); we keep only the
first, so an appointment such as `30 1 * * *` runs once per day. Schedules whose hour
field is a wildcard (`0 * * * *`, `*/15 * * * *`) are intervals, not appointments: they
keep ticking through both copies of the repeated hour, as Vixie cron and cronie do, rather
than leaving an hour-long hole.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import CroniterError, croniter

from jobctl.errors import ConfigError

__all__ = ["Schedule", "describe_forms", "parse_schedule"]


@dataclass(frozen=True)
class Schedule:
    """A recurring task's schedule, reduced to one cron expression and a time zone."""

    text: str
    """The schedule exactly as written in the config."""
    cron: str
    """Normalised cron: 5 fields, or 6 with seconds first when seconds are needed."""
    timezone: str | None = None
    """IANA time zone the cron is read in; None means UTC."""

    def next_after(self, dt: datetime) -> datetime:
        """The first tick strictly after the aware datetime `dt`, in UTC."""
        return next(self._ticks(dt, backwards=False))

    def previous_at_or_before(self, dt: datetime) -> datetime:
        """The last tick at or before the aware datetime `dt`, in UTC."""
        # croniter's get_prev is strictly-before; its resolution is one second.
        return next(self._ticks(dt + timedelta(microseconds=1), backwards=True))

    def _ticks(self, dt: datetime, *, backwards: bool) -> Iterator[datetime]:
        if dt.tzinfo is None or dt.utcoffset() is None:
            raise ValueError(f"schedule ticks need an aware datetime, got {dt!r}")
        zone = ZoneInfo(self.timezone) if self.timezone else UTC
        has_seconds = len(self.cron.split()) == 6
        it = croniter(self.cron, dt.astimezone(zone), ret_type=datetime, second_at_beginning=has_seconds)
        hour_is_fixed = not self.cron.split()[2 if has_seconds else 1].startswith("*")
        while True:
            tick = it.get_prev() if backwards else it.get_next()
            if hour_is_fixed and _is_second_occurrence(tick):
                continue  # the same wall-clock tick already came an offset-change earlier
            yield tick.astimezone(UTC)


def _is_second_occurrence(tick: datetime) -> bool:
    """True for the later copy of a wall-clock time repeated by a fall-back."""
    return tick.fold == 1 and tick.replace(fold=0).utcoffset() != tick.utcoffset()


class _Rejected(ValueError):
    """Why a schedule text is refused; parse_schedule adds the key and the text."""


def parse_schedule(text: str, *, key: str | None = None) -> Schedule:
    """Turn a cron or natural-language schedule into a Schedule, or raise ConfigError."""
    try:
        cron, zone = _parse(text)
    except _Rejected as exc:
        where = f"recurring task {key!r}: " if key is not None else ""
        raise ConfigError(f"{where}schedule {text!r}: {exc}") from None
    return Schedule(text=text, cron=cron, timezone=zone)


def _parse(text: str) -> tuple[str, str | None]:
    tokens = text.split()
    if not tokens:
        raise _Rejected("empty schedule")
    if tokens[0].lower() == "every":
        words, zone = _split_zone(tokens, natural=True)
        cron = _natural_cron(_normalise(" ".join(words[1:])))
    else:
        words, zone = _split_zone(tokens, natural=False)
        cron = " ".join(words)
    return _checked_cron(cron), _checked_zone(zone)


# Words a schedule itself uses, so a trailing one is never mistaken for a time zone.
_DAY_NAMES = ("sunday", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday")
_DAY_NUMBERS = {name: n for n, name in enumerate(_DAY_NAMES)} | {
    name[:3]: n for n, name in enumerate(_DAY_NAMES)
}
_OWN_WORDS = frozenset(
    "every second seconds minute minutes hour hours day days week weeks month months year "
    "years weekday weekdays at on the and noon midnight am pm a.m. p.m.".split()
)
_CRON_DAY_FIELD = re.compile(r"(sun|mon|tue|wed|thu|fri|sat)\b", re.IGNORECASE)


def _split_zone(tokens: list[str], *, natural: bool) -> tuple[list[str], str | None]:
    """Split off a trailing time-zone name; a cron field or a word of the schedule is not one."""
    last = tokens[-1]
    if natural:
        # IANA names have a capital or a slash; a lower-case word is a mistyped form, not a zone.
        looks_like_zone = (
            len(tokens) >= 3
            and (last != last.lower() or "/" in last)
            and last.lower() not in _OWN_WORDS | _DAY_NUMBERS.keys()
        )
    else:
        looks_like_zone = len(tokens) >= 6 and last[:1].isalpha() and not _CRON_DAY_FIELD.match(last)
    return (tokens[:-1], last) if looks_like_zone else (tokens, None)


def _checked_zone(zone: str | None) -> str | None:
    if zone is None:
        return None
    # zoneinfo also finds `localtime`, the host's own zone: schedulers on two hosts could
    # then disagree on the ticks. Every IANA name has a capital letter.
    if zone == zone.lower():
        raise _Rejected(f"unknown time zone {zone!r}")
    try:
        ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise _Rejected(f"unknown time zone {zone!r}") from None
    return zone


def _checked_cron(cron: str) -> str:
    """Validate with croniter; drop a seconds field of 0 so that seconds appear only when needed."""
    fields = cron.split()
    if len(fields) not in (5, 6):
        raise _Rejected(
            f"expected 5 cron fields, or 6 with seconds first, got {len(fields)} "
            "(natural forms start with 'every')"
        )
    # `R` picks a random value per process, so schedulers would disagree on the ticks;
    # `H` needs a hash id jobctl does not supply.
    if re.search(r"(?<![a-z])[hr](?![a-z])", cron, re.IGNORECASE):
        raise _Rejected("random (R) and hashed (H) cron fields are not supported")
    try:
        croniter.expand(cron, second_at_beginning=len(fields) == 6, strict=True)
    except CroniterError as exc:
        raise _Rejected(f"invalid cron: {_croniter_reason(exc)}") from None
    if len(fields) == 6 and fields[0] in ("0", "00"):
        fields = fields[1:]
    return " ".join(fields)


def _croniter_reason(exc: CroniterError) -> str:
    # croniter sometimes wraps a whole traceback; its last line is the reason. The
    # "[expr] is not acceptable" prefix repeats the text our message already shows.
    lines = [line for line in str(exc).splitlines() if line.strip()]
    reason = lines[-1] if lines else type(exc).__name__
    reason = re.sub(r"^\[[^\]]*\]\s*(?:is not acceptable[.,]?\s*)?", "", reason)
    return reason or "not acceptable"


def _normalise(words: str) -> str:
    """Lower-case, one space between words, `1 AM`/`1 a.m.` → `1am`, `a ,b` → `a, b`."""
    text = " ".join(words.lower().split())
    text = re.sub(r"\b([ap])\.m\.", r"\1m", text)
    text = re.sub(r"(\d) (am|pm)\b", r"\1\2", text)
    return re.sub(r"\s*,\s*", ", ", text)


def _natural_cron(words: str) -> str:
    """The cron for what follows `every`; the first form that matches decides."""
    for pattern, build in _FORMS:
        match = pattern.fullmatch(words)
        if match:
            return build(match)
    raise _Rejected("not a cron expression nor a known 'every …' form")


def _interval(match: re.Match[str]) -> str:
    count, unit = int(match["count"]), match["unit"]
    whole = 24 if unit == "hour" else 60
    if count == 0 or whole % count:
        raise _Rejected(f"{count} does not divide {whole}")
    if count == whole:  # every 60 minutes is every hour, every 24 hours is every day
        return {"second": "* * * * *", "minute": "0 * * * *", "hour": "0 0 * * *"}[unit]
    step = "*" if count == 1 else f"*/{count}"
    return {"second": f"{step} * * * * *", "minute": f"{step} * * * *", "hour": f"0 {step} * * *"}[unit]


def _hourly(match: re.Match[str]) -> str:
    minute = int(match["minute"] or 0)
    if minute > 59:
        raise _Rejected(f"minute {minute} is not between 0 and 59")
    return f"{minute} * * * *"


def _calendar(match: re.Match[str]) -> str:
    """`every <day|weekday|week|month|day names> [on the Nth] [at times]`."""
    period = match["period"]
    if match["dom"] is not None and period != "month":
        raise _Rejected("'on the …' goes only with 'every month'")
    day_of_month, day_of_week = "*", "*"
    if period == "month":
        day_of_month = str(_day_of_month(match["dom"] or "1st"))
    elif period == "week":
        day_of_week = "0"
    elif period == "weekday":
        day_of_week = "1-5"
    elif period != "day":
        day_of_week = _day_names(period)
    minute, hours = _times(match["times"] or "midnight")
    return f"{minute} {hours} {day_of_month} * {day_of_week}"


def _day_names(period: str) -> str:
    numbers: set[int] = set()
    for name in re.split(r", (?:and )?| and ", period):
        if name not in _DAY_NUMBERS:
            raise _Rejected(f"{name!r} is not day, weekday, week, month or a day's name")
        numbers.add(_DAY_NUMBERS[name])
    return ",".join(str(n) for n in sorted(numbers))


def _day_of_month(ordinal: str) -> int:
    match = re.fullmatch(r"(\d{1,2})(?:st|nd|rd|th)?", ordinal)
    if not match:
        raise _Rejected(f"{ordinal!r} is not a day of the month")
    day = int(match[1])
    # Days 29-31 are missing from some months, where the task would silently not run.
    if not 1 <= day <= 28:
        raise _Rejected(f"day {day} is not in every month; use 1st to 28th, or a cron")
    return day


def _times(text: str) -> tuple[int, str]:
    """One minute and the hours it applies to; several minutes are not one cron."""
    parsed = [_time_of_day(part) for part in re.split(r", (?:and )?| and ", text)]
    minutes = {minute for _, minute in parsed}
    if len(minutes) > 1:
        raise _Rejected(f"times {text} have different minutes, which one cron cannot express")
    hours = sorted({hour for hour, _ in parsed})
    return minutes.pop(), ",".join(str(hour) for hour in hours)


def _time_of_day(text: str) -> tuple[int, int]:
    if text in ("noon", "midnight"):
        return (12 if text == "noon" else 0), 0
    match = re.fullmatch(r"(\d{1,2})(?::(\d{2}))?(am|pm)?", text)
    if not match:
        raise _Rejected(f"{text!r} is not a time of day (3am, 4:30pm, 15:40, noon)")
    hour, minute, half = int(match[1]), int(match[2] or 0), match[3]
    if half is None and match[2] is None:
        raise _Rejected(f"{text!r} is ambiguous: write {hour}am, {hour}pm or {hour:02}:00")
    if half is not None:
        if not 1 <= hour <= 12:
            raise _Rejected(f"{text!r} is not a time of day (hours 1-12 with am/pm)")
        hour = hour % 12 + (12 if half == "pm" else 0)
    if hour > 23 or minute > 59:
        raise _Rejected(f"{text!r} is not a time of day")
    return hour, minute


_FORMS: list[tuple[re.Pattern[str], Callable[[re.Match[str]], str]]] = [
    (re.compile(r"second"), lambda _: "* * * * * *"),
    (re.compile(r"(?P<count>\d+) (?P<unit>second|minute|hour)s?"), _interval),
    (re.compile(r"minute"), lambda _: "* * * * *"),
    (re.compile(r"hour(?: at minute (?P<minute>\d+))?"), _hourly),
    (re.compile(r"(?P<period>[a-z, ]+?)(?: on the (?P<dom>\S+))?(?: at (?P<times>.+))?"), _calendar),
]


def describe_forms() -> list[str]:
    """The accepted schedule forms, one documentation line each (for the man page)."""
    return [
        "MIN HOUR DOM MON DOW - a 5-field cron, e.g. '*/5 * * * *'",
        "SEC MIN HOUR DOM MON DOW - a 6-field cron with seconds first, e.g. '*/10 * * * * *'",
        "every second",
        "every N seconds, every N minutes - N divides 60, e.g. 'every 15 minutes'",
        "every N hours - N divides 24, e.g. 'every 6 hours'",
        "every minute, every hour, every hour at minute M",
        "every day [at TIMES] - at midnight when no time is given",
        "every weekday [at TIMES] - Monday to Friday",
        "every DAY[, DAY...] [at TIMES] - e.g. 'every sunday at 9am', 'every monday, wednesday at 9am'",
        "every week [at TIMES] - on Sundays",
        "every month [on the Nth] [at TIMES] - N from 1st to 28th, the 1st by default",
        "TIMES: 3am, 1 AM, 4:30pm, 15:40, noon or midnight; several joined by 'and' or "
        "commas when they share the minute, e.g. 'every day at 00:40 and 15:40'",
        "Any form may end with an IANA time zone, e.g. 'every day at 3am Europe/Paris'; without one, UTC",
    ]
