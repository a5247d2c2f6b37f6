"""Schedules: every accepted form, every rejection, and tick times across DST and seconds."""

from __future__ import annotations

import dataclasses
import re
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from jobctl.errors import ConfigError
from jobctl.schedule import Schedule, describe_forms, parse_schedule

# A Wednesday, mid-morning, at an odd second, so every form's next tick is distinct.
START = datetime(2025, 1, 1, 10, 17, 23, tzinfo=UTC)


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


ACCEPTED = [
    # natural forms: text, cron, time zone, next tick after START (UTC)
    ("every second", "* * * * * *", None, utc(2025, 1, 1, 10, 17, 24)),
    ("every 1 second", "* * * * * *", None, utc(2025, 1, 1, 10, 17, 24)),
    ("every 2 seconds", "*/2 * * * * *", None, utc(2025, 1, 1, 10, 17, 24)),
    ("every 15 seconds", "*/15 * * * * *", None, utc(2025, 1, 1, 10, 17, 30)),
    ("every 60 seconds", "* * * * *", None, utc(2025, 1, 1, 10, 18)),
    ("every minute", "* * * * *", None, utc(2025, 1, 1, 10, 18)),
    ("every 1 minutes", "* * * * *", None, utc(2025, 1, 1, 10, 18)),
    ("every 30 minutes", "*/30 * * * *", None, utc(2025, 1, 1, 10, 30)),
    ("every 60 minutes", "0 * * * *", None, utc(2025, 1, 1, 11)),
    ("every hour", "0 * * * *", None, utc(2025, 1, 1, 11)),
    ("every 1 hour", "0 * * * *", None, utc(2025, 1, 1, 11)),
    ("every 6 hours", "0 */6 * * *", None, utc(2025, 1, 1, 12)),
    ("every 24 hours", "0 0 * * *", None, utc(2025, 1, 2)),
    ("every hour at minute 12", "12 * * * *", None, utc(2025, 1, 1, 11, 12)),
    ("every day", "0 0 * * *", None, utc(2025, 1, 2)),
    ("every day at 3am", "0 3 * * *", None, utc(2025, 1, 2, 3)),
    ("every day at 4:30pm", "30 16 * * *", None, utc(2025, 1, 1, 16, 30)),
    ("every day at 4:30 PM", "30 16 * * *", None, utc(2025, 1, 1, 16, 30)),
    ("every day at 12am", "0 0 * * *", None, utc(2025, 1, 2)),
    ("every day at 12pm", "0 12 * * *", None, utc(2025, 1, 1, 12)),
    ("every day at noon", "0 12 * * *", None, utc(2025, 1, 1, 12)),
    ("every day at midnight", "0 0 * * *", None, utc(2025, 1, 2)),
    ("every day at 00:40 and 15:40", "40 0,15 * * *", None, utc(2025, 1, 1, 15, 40)),
    ("every day at 3am and 3pm", "0 3,15 * * *", None, utc(2025, 1, 1, 15)),
    ("every day at 9am, 1pm and 5pm", "0 9,13,17 * * *", None, utc(2025, 1, 1, 13)),
    ("every sunday at 9am", "0 9 * * 0", None, utc(2025, 1, 5, 9)),
    ("every Thursday at 1 AM", "0 1 * * 4", None, utc(2025, 1, 2, 1)),
    ("every thursday at 1am", "0 1 * * 4", None, utc(2025, 1, 2, 1)),
    ("every Thursday", "0 0 * * 4", None, utc(2025, 1, 2)),
    ("every fri at 6pm", "0 18 * * 5", None, utc(2025, 1, 3, 18)),
    ("every weekday at 9am", "0 9 * * 1-5", None, utc(2025, 1, 2, 9)),
    ("every monday, wednesday at 9am", "0 9 * * 1,3", None, utc(2025, 1, 6, 9)),
    ("every monday and friday at 9am", "0 9 * * 1,5", None, utc(2025, 1, 3, 9)),
    ("every week", "0 0 * * 0", None, utc(2025, 1, 5)),
    ("every week at 9am", "0 9 * * 0", None, utc(2025, 1, 5, 9)),
    ("every month", "0 0 1 * *", None, utc(2025, 2, 1)),
    ("every month on the 1st at noon", "0 12 1 * *", None, utc(2025, 1, 1, 12)),
    ("every month on the 15th", "0 0 15 * *", None, utc(2025, 1, 15)),
    ("  EVERY   Day  AT 3 a.m.  ", "0 3 * * *", None, utc(2025, 1, 2, 3)),
    # Paris is UTC+1 and New York UTC-5 in January.
    ("every day at 3am Europe/Paris", "0 3 * * *", "Europe/Paris", utc(2025, 1, 2, 2)),
    ("every hour America/New_York", "0 * * * *", "America/New_York", utc(2025, 1, 1, 11)),
    ("every day at noon UTC", "0 12 * * *", "UTC", utc(2025, 1, 1, 12)),
    # cron: 5 fields, 6 with seconds first, optional trailing zone
    ("*/5 * * * *", "*/5 * * * *", None, utc(2025, 1, 1, 10, 20)),
    ("0 9 * * MON-FRI", "0 9 * * MON-FRI", None, utc(2025, 1, 2, 9)),
    ("0  9 *  * *", "0 9 * * *", None, utc(2025, 1, 2, 9)),
    ("0 9 * * * Europe/Paris", "0 9 * * *", "Europe/Paris", utc(2025, 1, 2, 8)),
    ("*/10 * * * * *", "*/10 * * * * *", None, utc(2025, 1, 1, 10, 17, 30)),
    ("30 0 12 * * *", "30 0 12 * * *", None, utc(2025, 1, 1, 12, 0, 30)),
    ("0 */5 * * * *", "*/5 * * * *", None, utc(2025, 1, 1, 10, 20)),
    ("0 0 9 * * * America/New_York", "0 9 * * *", "America/New_York", utc(2025, 1, 1, 14)),
]


@pytest.mark.parametrize(("text", "cron", "zone", "next_tick"), ACCEPTED, ids=[a[0] for a in ACCEPTED])
def test_accepted_form_gives_its_cron_and_next_tick(
    text: str, cron: str, zone: str | None, next_tick: datetime
) -> None:
    schedule = parse_schedule(text, key="task")
    assert schedule == Schedule(text=text, cron=cron, timezone=zone)
    assert schedule.next_after(START) == next_tick


REJECTED = [
    ("every day at 00:40 and 15:20", "times 00:40 and 15:20 have different minutes"),
    ("every 61 minutes", "61 does not divide 60"),
    ("every 7 minutes", "7 does not divide 60"),
    ("every 7 seconds", "7 does not divide 60"),
    ("every 0 minutes", "0 does not divide 60"),
    ("every 5 hours", "5 does not divide 24"),
    ("tomorrow", "expected 5 cron fields, or 6 with seconds first, got 1"),
    ("once a year", "expected 5 cron fields, or 6 with seconds first, got 3"),
    ("", "empty schedule"),
    ("   ", "empty schedule"),
    ("every", "not a cron expression nor a known 'every …' form"),
    ("every 2 hours at 3am", "not a cron expression nor a known 'every …' form"),
    ("every fortnight", "'fortnight' is not day, weekday, week, month or a day's name"),
    ("every day at 3", "'3' is ambiguous: write 3am, 3pm or 03:00"),
    ("every day at 13pm", "'13pm' is not a time of day (hours 1-12 with am/pm)"),
    ("every day at 25:00", "'25:00' is not a time of day"),
    ("every day at teatime", "'teatime' is not a time of day"),
    ("every hour at minute 60", "minute 60 is not between 0 and 59"),
    ("every month on the 31st", "day 31 is not in every month"),
    ("every month on the first", "'first' is not a day of the month"),
    ("every week on the 2nd", "'on the …' goes only with 'every month'"),
    ("every day at 3am Mars/Olympus", "unknown time zone 'Mars/Olympus'"),
    ("every day at 3am Paris", "unknown time zone 'Paris'"),
    ("every day at 3am paris", "'3am paris' is not a time of day"),
    ("0 9 * * * localtime", "unknown time zone 'localtime'"),
    ("0 9 * * * Europe/Pariss", "unknown time zone 'Europe/Pariss'"),
    ("0 9 * * * ../etc", "invalid cron"),
    ("* * * *", "got 4"),
    ("0 0 1 1 * 2030 UTC", "invalid cron: out of range"),
    ("* * * * * * *", "got 7"),
    ("61 * * * *", "invalid cron: out of range"),
    ("x * * * *", "invalid cron"),
    ("*/0 * * * *", "invalid cron: step '0' in field 0 is not acceptable"),
    ("0 0 30 2 *", "invalid cron: Day(s) [30] can never occur in month(s) [2]"),
    ("R * * * *", "random (R) and hashed (H) cron fields are not supported"),
    ("H * * * *", "random (R) and hashed (H) cron fields are not supported"),
]


@pytest.mark.parametrize(("text", "why"), REJECTED, ids=[r[0] or "empty" for r in REJECTED])
def test_rejected_schedule_names_key_text_and_reason(text: str, why: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_schedule(text, key="cleanup")
    message = str(caught.value)
    assert message.startswith(f"recurring task 'cleanup': schedule {text!r}: ")
    assert why in message
    assert "\n" not in message


def test_rejection_message_matches_the_documented_example() -> None:
    with pytest.raises(
        ConfigError,
        match=r"^recurring task 'cleanup': schedule 'every 61 minutes': "
        r"61 does not divide 60$",
    ):
        parse_schedule("every 61 minutes", key="cleanup")


def test_rejection_without_a_key_starts_with_the_schedule() -> None:
    with pytest.raises(ConfigError, match=r"^schedule 'tomorrow': "):
        parse_schedule("tomorrow")


def ticks(schedule: Schedule, after: datetime, count: int) -> list[datetime]:
    found: list[datetime] = []
    for _ in range(count):
        after = schedule.next_after(after)
        found.append(after)
    return found


def test_spring_forward_gap_tick_runs_once_at_the_end_of_the_gap() -> None:
    # 2025-03-30 02:00 does not exist in Paris (clocks jump 02:00 CET → 03:00 CEST).
    schedule = parse_schedule("0 2 * * * Europe/Paris")
    assert ticks(schedule, utc(2025, 3, 29, 12), 3) == [
        utc(2025, 3, 30, 1),  # 03:00 CEST, the first instant after the gap
        utc(2025, 3, 31, 0),  # 02:00 CEST
        utc(2025, 4, 1, 0),
    ]


def test_fall_back_repeated_time_runs_once() -> None:
    # 2025-11-02 01:30 happens twice in New York: 05:30Z (EDT), then 06:30Z (EST).
    schedule = parse_schedule("30 1 * * * America/New_York")
    assert ticks(schedule, utc(2025, 11, 1, 12), 2) == [utc(2025, 11, 2, 5, 30), utc(2025, 11, 3, 6, 30)]
    # Asked from inside the repeated hour, the second 01:30 is still skipped.
    assert schedule.next_after(utc(2025, 11, 2, 6)) == utc(2025, 11, 3, 6, 30)


def test_fall_back_in_paris_runs_a_seconds_schedule_once_per_wall_clock_second() -> None:
    # 02:00:30 happens at 00:00:30Z (CEST) and 01:00:30Z (CET) on 2025-10-26.
    schedule = parse_schedule("30 0 2 * * * Europe/Paris")
    assert ticks(schedule, utc(2025, 10, 25, 12), 2) == [
        utc(2025, 10, 26, 0, 0, 30),
        utc(2025, 10, 27, 1, 0, 30),
    ]


def test_interval_schedule_keeps_ticking_through_the_repeated_hour() -> None:
    schedule = parse_schedule("every hour Europe/Paris")
    assert ticks(schedule, utc(2025, 10, 25, 23, 30), 3) == [
        utc(2025, 10, 26, 0),  # 02:00 CEST
        utc(2025, 10, 26, 1),  # 02:00 CET, one real hour later
        utc(2025, 10, 26, 2),  # 03:00 CET
    ]


@pytest.mark.parametrize("text", ["30 1 * * * America/New_York", "30 2 * * * America/New_York"])
def test_a_daily_schedule_ticks_once_a_day_over_a_year_with_two_dst_changes(text: str) -> None:
    schedule = parse_schedule(text)
    found = ticks(schedule, utc(2024, 12, 31, 12), 400)
    in_2025 = [tick for tick in found if tick.astimezone(ZoneInfo("America/New_York")).year == 2025]
    days = {tick.astimezone(ZoneInfo("America/New_York")).date() for tick in in_2025}
    assert len(in_2025) == len(days) == 365


def test_previous_at_or_before_includes_the_tick_itself() -> None:
    schedule = parse_schedule("every 30 minutes")
    assert schedule.previous_at_or_before(utc(2025, 1, 1, 10, 30)) == utc(2025, 1, 1, 10, 30)
    assert schedule.previous_at_or_before(utc(2025, 1, 1, 10, 29, 59)) == utc(2025, 1, 1, 10)


def test_previous_at_or_before_skips_the_repeated_wall_clock_tick() -> None:
    schedule = parse_schedule("30 1 * * * America/New_York")
    assert schedule.previous_at_or_before(utc(2025, 11, 2, 6, 45)) == utc(2025, 11, 2, 5, 30)


def test_previous_at_or_before_agrees_with_the_spring_forward_shift() -> None:
    schedule = parse_schedule("0 2 * * * Europe/Paris")
    assert schedule.previous_at_or_before(utc(2025, 3, 30, 2)) == utc(2025, 3, 30, 1)


def test_six_field_cron_has_seconds_first() -> None:
    schedule = parse_schedule("*/20 * * * * *")
    after = datetime(2025, 1, 1, 10, 17, 23, 500000, tzinfo=UTC)
    assert ticks(schedule, after, 3) == [
        utc(2025, 1, 1, 10, 17, 40),
        utc(2025, 1, 1, 10, 18),
        utc(2025, 1, 1, 10, 18, 20),
    ]
    assert schedule.previous_at_or_before(utc(2025, 1, 1, 10, 17, 40)) == utc(2025, 1, 1, 10, 17, 40)
    assert schedule.previous_at_or_before(utc(2025, 1, 1, 10, 17, 40) - timedelta(microseconds=1)) == utc(
        2025, 1, 1, 10, 17, 20
    )


def test_next_after_is_strict_and_returns_utc_for_any_aware_input() -> None:
    schedule = parse_schedule("0 9 * * * Europe/Paris")
    paris_nine = datetime(2025, 1, 2, 9, tzinfo=ZoneInfo("Europe/Paris"))
    tick = schedule.next_after(paris_nine)
    assert tick == utc(2025, 1, 3, 8)
    assert tick.tzinfo is UTC
    assert schedule.next_after(paris_nine - timedelta(microseconds=1)) == paris_nine


def test_naive_datetime_is_refused() -> None:
    with pytest.raises(ValueError, match="aware"):
        parse_schedule("every minute").next_after(datetime(2025, 1, 1))


def test_schedule_is_immutable_and_keeps_the_text_as_written() -> None:
    schedule = parse_schedule("Every DAY at 3 AM")
    assert schedule.text == "Every DAY at 3 AM"
    with pytest.raises(dataclasses.FrozenInstanceError):
        schedule.cron = "* * * * *"  # type: ignore[misc]


def test_describe_forms_lines_are_single_lines_whose_examples_parse() -> None:
    lines = describe_forms()
    assert len(lines) >= 10
    assert all(line and "\n" not in line for line in lines)
    examples = [example for line in lines for example in re.findall(r"'([^']+)'", line.partition("e.g.")[2])]
    assert "every day at 3am Europe/Paris" in examples
    for example in examples:
        parse_schedule(example)
