"""`jobctl top`: the real Textual app driven by Pilot, against a real database on both backends, plus
pure parts and SVG screenshots from fixed snapshots (JOBCTL_UPDATE_SNAPSHOTS=1 rewrites them)."""

from __future__ import annotations

import asyncio
import datetime as dt
import io
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console
from textual.pilot import Pilot
from textual.widgets import Input, Label, Static

import jobctl
from jobctl import database, operations, urls
from jobctl.errors import DatabaseError
from jobctl.records import ErrorInfo, FailureSummary, JobInfo, NewJob, QueueStats, RecurringRow, RunError, Selector
from jobctl.store import open_store
from jobctl.tui.actions import ActionMonitorScreen
from jobctl.tui.app import TopApp
from jobctl.tui.filtering import Filter
from jobctl.tui.keys import ACTION_KEYS, VIEW_KEYS
from jobctl.tui.monitor import MonitorScreen
from jobctl.tui.panels import selected_key
from jobctl.tui.screens import ConfirmScreen, HelpScreen, JobScreen
from jobctl.tui.snapshot import (
    ClaimedRow,
    Counts,
    ProcessRow,
    RateSample,
    Snapshot,
    TaskRow,
    advance_rates,
    failure_matches,
    failure_row,
)
from jobctl.tui.source import DatabaseSource
from jobctl.tui.widgets import RateLine, spark
from tests.fakes import FakeSource
from tests.jobs_for_tests import Echo
from tests.runtime_helpers import fail_jobs
from tests.test_operator_cli import HOSTILE, SHOWN, insert_hostile_rows

SNAPSHOTS = Path(__file__).parent / "snapshots"
SIZE = (120, 36)
LONG = 3600.0
"""A refresh interval that never ticks during a test: refreshes come from the test or from actions."""

Scenario = Callable[[Pilot[None]], Awaitable[None]]


# --- helpers -------------------------------------------------------------------------------


def state(job_id: int) -> str:
    return jobctl.get_job(job_id).state


def run(app: TopApp, scenario: Scenario, size: tuple[int, int] = SIZE) -> None:
    """Run the app headless and drive it."""

    async def main() -> None:
        async with app.run_test(size=size) as pilot:
            await scenario(pilot)

    asyncio.run(main())


async def until(pilot: Pilot[None], check: Callable[[], object], what: str, timeout: float = 15.0) -> None:
    """Let the app run until `check()` is true, or fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await pilot.pause(0.02)
    await pilot.pause()


def monitor(pilot: Pilot[None]) -> MonitorScreen:
    screen = pilot.app.screen_stack[0]
    assert isinstance(screen, MonitorScreen)
    return screen


async def loaded(pilot: Pilot[None]) -> MonitorScreen:
    """The monitor once its first snapshot is on screen."""
    screen = monitor(pilot)
    await until(pilot, lambda: screen.snapshot is not None and not screen.fetching, "the first snapshot")
    return screen


async def refreshed(pilot: Pilot[None]) -> MonitorScreen:
    """The monitor after one more fetch has landed."""
    screen = monitor(pilot)
    await until(pilot, lambda: not screen.fetching, "the fetch in flight")
    before = screen.fetches
    assert screen.refresh_now()
    await until(pilot, lambda: screen.fetches > before and not screen.fetching, "a refresh")
    return screen


def keys(screen: MonitorScreen, panel: str) -> list[str]:
    table = screen.table(panel)
    return [str(row.key.value) for row in table.ordered_rows]


def text(pilot: Pilot[None], selector: str) -> str:
    return str(monitor(pilot).query_one(selector, Static).render())


async def confirm(pilot: Pilot[None], answer: str) -> str:
    """Answer the confirmation dialog that must be showing; returns its question."""
    await until(pilot, lambda: isinstance(pilot.app.screen, ConfirmScreen), "the confirmation dialog")
    dialog = pilot.app.screen
    assert isinstance(dialog, ConfirmScreen)
    await pilot.press(answer)
    await until(pilot, lambda: not isinstance(pilot.app.screen, ConfirmScreen), "the dialog to close")
    return dialog.question


async def acted(pilot: Pilot[None], screen: MonitorScreen, previous: str | None = None) -> str:
    """Wait for an action's outcome and the refresh that follows it."""
    await until(pilot, lambda: screen.last_message not in (None, previous), "the action's outcome")
    await until(pilot, lambda: not screen.fetching, "the refresh after the action")
    assert screen.last_message is not None
    return screen.last_message


def source_for(url: str) -> DatabaseSource:
    return DatabaseSource(urls.parse(url))


# --- pure parts ----------------------------------------------------------------------------


def test_filter_terms_and_free_text() -> None:
    flt = Filter.parse('queue:mail class:Invoice error:"timed out" urgent')
    assert flt.terms == (("queue", "mail"), ("class", "invoice"), ("error", "timed out"), ("", "urgent"))
    fields = {"queue": "mailers", "class": "billing:InvoiceJob", "error": "TimeoutError: timed out"}
    assert flt.matches(fields, ("urgent",))
    assert not flt.matches(fields, ("normal",))
    assert not flt.matches({**fields, "queue": "reports"}, ("urgent",))
    assert Filter.parse("class:Invoice").matches({"queue": "mail"}, ())  # a field the row lacks is ignored
    assert not Filter.parse("") and Filter.parse("queue:").terms == ()
    assert Filter.parse('error:"unbalanced').terms == (("error", '"unbalanced'),)


def test_rates_are_deltas_of_the_cumulative_counters() -> None:
    t0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    first = Snapshot(t0, finished_total=100, failed_total=4, rates=advance_rates(None, t0, 100, 4))
    assert first.rates == ()  # one reading measures nothing: nothing to draw
    t1 = t0 + dt.timedelta(seconds=2)
    rates = advance_rates(first, t1, 130, 4)
    assert rates == (RateSample(t0, t1, 15.0, 0.0),)
    assert advance_rates(first, t1, 50, 4)[-1].finished_per_s == 0.0  # counters pruned: never negative
    second = Snapshot(t1, finished_total=130, failed_total=4, rates=rates)
    late = t1 + dt.timedelta(seconds=1000)
    assert advance_rates(second, late, 130, 4) == (RateSample(t1, late, 0.0, 0.0),)  # older ones leave the window


def test_spark_lays_samples_on_a_time_axis() -> None:
    now = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)

    def t(seconds_ago: float) -> dt.datetime:
        return now - dt.timedelta(seconds=seconds_ago)

    # Spans of 100 s at 0, then 4, then 8 per second fill three columns of 100 s each.
    assert spark([(t(300), t(200), 0.0), (t(200), t(100), 4.0), (t(100), now, 8.0)], now, 3, window=300) == "▁▅█"
    assert spark([], now, 4) == "    "
    assert spark([(t(150), now, 0.0)], now, 4, window=300) == "  ▁▁"  # nothing before the first span
    # A column gets the time-weighted mean of the spans it overlaps: 2 s at 10/s and 8 s at 0/s → 2/s.
    assert spark([(t(20), t(10), 0.0), (t(10), t(8), 10.0), (t(8), now, 0.0)], now, 2, window=20) == "▁█"


def test_database_source_reopens_and_hides_the_password_in_driver_errors(tmp_path: Path) -> None:
    url = urls.parse(f"sqlite:///{tmp_path / 'jobs.sqlite3'}")
    opened: list[Any] = []

    class Broken:
        """A store whose every read fails with a driver error the store did not wrap."""

        def __getattr__(self, name: str) -> Any:
            def fail(*args: Any, **kwargs: Any) -> Any:
                raise RuntimeError("server closed the connection for postgresql://ops:s3cret@db/app")

            return fail

        def close(self) -> None:
            opened.append("closed")

    def opener(u: urls.DatabaseURL) -> Any:
        opened.append("opened")
        return Broken() if len(opened) == 1 else open_store(u)

    source = DatabaseSource(url, open_store=opener)
    source.url = urls.parse("postgresql://ops:s3cret@db/app")  # what scrub() hides
    with pytest.raises(DatabaseError) as err:
        source.fetch(None)
    assert "s3cret" not in str(err.value) and "server closed the connection" in str(err.value)
    assert opened == ["opened", "closed"]
    source.url = url
    assert source.fetch(None).counts.ready == 0  # a fresh store after the failure
    assert opened == ["opened", "closed", "opened"]
    source.close()


# --- against a real database (both backends) ----------------------------------------------


def test_opens_on_queues_with_counts_from_the_database(configured: str) -> None:
    failed = fail_jobs("mail", 2)
    for i in range(3):
        Echo.set(queue="default").perform_later(i)

    async def scenario(pilot: Pilot[None]) -> None:
        screen = await loaded(pilot)
        assert screen.active_panel == "queues"
        assert pilot.app.focused is screen.table("queues")
        assert keys(screen, "queues") == ["default", "mail"]
        counts = text(pilot, "#counts")
        assert "ready 3" in counts and "failed 2" in counts and "processes 0" in counts
        assert urls.parse(configured).redacted in text(pilot, "#header")
        assert screen.table("queues").get_row("mail")[5].plain.strip() == "2"
        assert sorted(map(int, keys(screen, "failures"))) == sorted(failed)

    run(TopApp(source_for(configured), interval=LONG), scenario)


def test_the_counts_line_shows_jobs_waiting_for_their_dependencies(configured: str) -> None:
    jobctl.chain(Echo(1), Echo(2), Echo(3)).perform_later()

    async def scenario(pilot: Pilot[None]) -> None:
        await loaded(pilot)
        counts = text(pilot, "#counts")
        assert "ready 1" in counts and "blocked 0  waiting 2  failed 0" in counts, counts

    run(TopApp(source_for(configured), interval=LONG), scenario)


def test_claimed_executions_and_processes_panels(configured: str) -> None:
    import socket

    job = Echo.set(queue="exports").perform_later(1).id
    session = database.get_store().session()
    try:
        worker = session.register_process(kind="worker", hostname=socket.gethostname(), pid=os.getpid(),
                                          supervisor_id=None, queues="exports,mail", threads=3, metadata=None)
        session.heartbeat([(worker, 1)])
        [claimed] = session.claim(Selector("queue", "exports"), 1, token=11, process_id=worker)
        assert claimed.id == job
        session.set_progress(job, 40, 100, "rows")
    finally:
        session.close()

    async def scenario(pilot: Pilot[None]) -> None:
        screen = await loaded(pilot)
        await pilot.press("2")
        assert keys(screen, "claimed") == [str(job)]
        row = [str(c) for c in screen.table("claimed").get_row(str(job))]
        assert row[1:4] == ["Echo", "exports", f"worker {socket.gethostname()}:{os.getpid()}"]
        assert row[5] == "40/100 40% rows"
        await pilot.press("5")
        cells = [str(c) for c in screen.table("processes").get_row(str(worker))]
        assert cells[1] == "worker" and cells[2] == socket.gethostname() and cells[3] == str(os.getpid())
        assert cells[4] == "exports,mail" and cells[5] == "1/3"
        assert cells[6] == "-" and cells[8].endswith("M")  # registered without a wakeup; psutil reads its memory
        assert "processes 1" in text(pilot, "#counts") and "claimed 1" in text(pilot, "#counts")
        await pilot.press("2", "enter")
        await until(pilot, lambda: isinstance(pilot.app.screen, JobScreen), "the job screen")
        body = pilot.app.screen.query_one("#job-body", Static)
        await until(pilot, lambda: "progress" in _plain(body), "the job's details")
        assert "40/100 rows" in _plain(body)

    run(TopApp(source_for(configured), interval=LONG), scenario)


def test_batches_panel_shows_progress_per_batch(configured: str) -> None:
    with jobctl.batch(description="nightly import") as running:
        jobctl.perform_all_later([Echo(i) for i in range(4)])
    with jobctl.batch(description="done already"):
        pass
    session = database.get_store().session()
    try:  # one of the import's four members finishes: a quarter of the bar
        [first] = session.claim(Selector("any"), 1, token=5, process_id=0)
        session.finish([first.id], token=5, process_id=0, members=True)
    finally:
        session.close()

    async def scenario(pilot: Pilot[None]) -> None:
        screen = await loaded(pilot)
        await pilot.press("6")
        assert screen.active_panel == "batches"
        assert keys(screen, "batches") == [str(running.id + 1), str(running.id)]  # newest first
        row = [str(c) for c in screen.table("batches").get_row(str(running.id))]
        assert row[1:6] == ["running", "[#####---------------]  25%", "4", "1", "0"]
        assert row[6] == "nightly import"
        done = [str(c) for c in screen.table("batches").get_row(str(running.id + 1))]
        assert done[1:3] == ["finished", "[####################] 100%"]
        await pilot.press("/", *"nightly", "enter")
        await until(pilot, lambda: keys(screen, "batches") == [str(running.id)], "the filter")

    run(TopApp(source_for(configured), interval=LONG), scenario)


def test_retry_and_discard_the_selected_failure(configured: str) -> None:
    first, second = fail_jobs("mail", 2)

    async def scenario(pilot: Pilot[None]) -> None:
        screen = await loaded(pilot)
        await pilot.press("3")
        assert screen.active_panel == "failures" and pilot.app.focused is screen.table("failures")
        assert selected_key(screen.table("failures")) == str(second)  # newest first
        await pilot.press("r")
        question = await confirm(pilot, "y")
        assert question.startswith("Retry 1 failed job?") and f"#{second}" in question
        assert await acted(pilot, screen) == "retry: 1 of 1 jobs changed"
        assert state(second) == "ready" and state(first) == "failed"
        assert keys(screen, "failures") == [str(first)]
        await pilot.press("d")
        assert "Discard 1 failed job?" in await confirm(pilot, "y")
        assert await acted(pilot, screen, "retry: 1 of 1 jobs changed") == "discard: 1 of 1 jobs changed"
        assert state(first) == "discarded"
        assert keys(screen, "failures") == []

    run(TopApp(source_for(configured), interval=LONG), scenario)


def test_cancel_and_escape_change_nothing(configured: str) -> None:
    [job] = fail_jobs("mail", 1)

    async def scenario(pilot: Pilot[None]) -> None:
        screen = await loaded(pilot)
        await pilot.press("3", "r")
        await confirm(pilot, "n")
        await pilot.press("d")
        await confirm(pilot, "escape")
        await pilot.press("R")
        await confirm(pilot, "enter")  # the default button is Cancel
        assert screen.last_message == "cancelled: nothing changed"
        assert state(job) == "failed"

    run(TopApp(source_for(configured), interval=LONG), scenario)


def test_bulk_retry_and_discard_follow_the_filter(configured: str) -> None:
    mail = fail_jobs("mail", 3, error="TimeoutError", message="timed out")
    reports = fail_jobs("reports", 2, error="ValueError")

    async def scenario(pilot: Pilot[None]) -> None:
        screen = await loaded(pilot)
        await pilot.press("3", "/", *"queue:mail", "enter")
        assert screen.filter.text == "queue:mail"
        assert sorted(keys(screen, "failures")) == sorted(map(str, mail))
        assert pilot.app.focused is screen.table("failures")
        await pilot.press("R")
        assert await confirm(pilot, "y") == "Retry 3 failed jobs matching “queue:mail”?"
        assert await acted(pilot, screen) == "retry: 3 of 3 jobs changed"
        assert {state(i) for i in mail} == {"ready"} and {state(i) for i in reports} == {"failed"}
        await pilot.press("/", *["backspace"] * len("queue:mail"), *"error:ValueError", "enter")
        assert sorted(keys(screen, "failures")) == sorted(map(str, reports))
        await pilot.press("D")
        assert await confirm(pilot, "y") == "Discard 2 failed jobs matching “error:ValueError”?"
        assert await acted(pilot, screen, "retry: 3 of 3 jobs changed") == "discard: 2 of 2 jobs changed"
        assert {state(i) for i in reports} == {"discarded"} and {state(i) for i in mail} == {"ready"}
        await pilot.press("R")
        await until(pilot, lambda: screen.last_message == "retry: no failures match “error:ValueError”",
                    "no match reported")
        assert not isinstance(pilot.app.screen, ConfirmScreen)

    run(TopApp(source_for(configured), interval=LONG), scenario)


def test_the_database_matches_failures_as_the_panel_does(configured: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """`R` / `D` read every failure from the database (in pages) and apply the panel's own test."""
    import jobctl.tui.source

    monkeypatch.setattr(jobctl.tui.source, "MATCH_PAGE", 2)  # the 6 failures take several pages
    fail_jobs("Mail", 2, error="TimeoutError", message="Timed OUT")
    fail_jobs("reports", 2, error="ValueError", message="")
    fail_jobs("ünïcode", 1, error="KeyError", message="ÄRGER")
    fail_jobs("İstanbul", 1, error="OSError", message="ΟΔΟΣ closed")  # databases lowercase these otherwise
    store = database.get_store()
    rows = [failure_row(j) for j in store.list_jobs(state="failed", limit=100)]
    assert len(rows) == 6
    source = DatabaseSource(urls.parse(configured))
    for text in ("", "queue:mail", "queue:MAIL class:echo", "error:timed", "error:valueerror", "error:out",
                 "ValueError reports", "mail timeouterror", "reports ValueError:", "queue:ÜNÏ", "ärger",
                 "queue:mail error:ärger", f"{rows[0].id} {rows[0].queue.lower()}", "nothing-like-this",
                 "error:\"timed out\"", "mail:timeout", f"queue:{'İstanbul'.lower()}", f"error:{'ΟΔΟΣ'.lower()}"):
        flt = Filter.parse(text)
        assert source.failure_ids(flt) == sorted(r.id for r in rows if failure_matches(flt, r)), text


def test_bulk_retry_reads_past_the_failures_on_screen(configured: str) -> None:
    """R acts on every matching failure in the database, not only the page the panel holds."""
    ids = fail_jobs("mail", 7)

    async def scenario(pilot: Pilot[None]) -> None:
        screen = await loaded(pilot)
        assert len(keys(screen, "failures")) == 3
        await pilot.press("3", "/", *"queue:mail", "enter", "R")
        assert await confirm(pilot, "y") == "Retry 7 failed jobs matching “queue:mail”?"
        assert await acted(pilot, screen) == "retry: 7 of 7 jobs changed"
        assert {state(i) for i in ids} == {"ready"}

    run(TopApp(DatabaseSource(urls.parse(configured), failures_limit=3), interval=LONG), scenario)


def test_pause_stops_claiming_and_resume_restarts_it(configured: str) -> None:
    Echo.set(queue="default").perform_later(0)
    [mail_job] = [Echo.set(queue="mail").perform_later(1).id]

    def paused() -> bool:
        return {q.name: q.paused for q in operations.stats(database.get_store()).queues}.get("mail", False)

    async def scenario(pilot: Pilot[None]) -> None:
        screen = await loaded(pilot)
        table = screen.table("queues")
        await pilot.press("down")
        assert selected_key(table) == "mail"
        await pilot.press("p")
        question = await confirm(pilot, "y")
        assert question.startswith("Pause queue mail?") and "1 ready jobs wait" in question
        assert await acted(pilot, screen) == "paused mail"
        assert paused()
        assert database.get_store().paused_queues() == ["mail"]
        session = database.get_store().session()
        try:
            assert session.claim(Selector("any"), 10, token=7, process_id=1)[0].queue == "default"
            assert session.claim(Selector("queue", "mail"), 10, token=7, process_id=1) == []
        finally:
            session.close()
        assert state(mail_job) == "ready"
        assert "paused" in str(table.get_row("mail")[7])
        assert selected_key(table) == "mail"  # the cursor stayed on its row through the refresh
        await pilot.press("p")
        assert (await confirm(pilot, "y")).startswith("Resume queue mail?")
        assert await acted(pilot, screen, "paused mail") == "resumed mail"
        assert not paused()

    run(TopApp(source_for(configured), interval=LONG), scenario)


def test_run_recurring_task_now(configured: str) -> None:
    session = database.get_store().session()
    try:
        session.upsert_recurring_task(RecurringRow(
            "nightly_echo", "every day at 3am", "0 3 * * *", "tests.jobs_for_tests:Echo", None,
            '{"args":[42],"kwargs":{}}', "maintenance", 0, None, None))
    finally:
        session.close()

    async def scenario(pilot: Pilot[None]) -> None:
        screen = await loaded(pilot)
        await pilot.press("4")
        assert keys(screen, "recurring") == ["nightly_echo"]
        await pilot.press("n")
        question = await confirm(pilot, "y")
        assert question.startswith("Run recurring task nightly_echo now?") and "enqueues 1 job" in question
        outcome = await acted(pilot, screen)
        assert outcome.startswith("nightly_echo: enqueued job ")
        [job] = database.get_store().list_jobs(queue="maintenance")
        assert outcome.endswith(str(job.id)) and job.state == "ready" and job.arguments["args"] == [42]
        await pilot.press("1")
        assert "maintenance" in keys(screen, "queues")

    run(TopApp(source_for(configured), interval=LONG), scenario)


def test_enter_opens_a_job_with_its_tracebacks(configured: str) -> None:
    [job] = fail_jobs("mail", 1, error="TimeoutError", message="gateway timed out")

    async def scenario(pilot: Pilot[None]) -> None:
        await loaded(pilot)
        await pilot.press("3", "enter")
        await until(pilot, lambda: isinstance(pilot.app.screen, JobScreen), "the job screen")
        body = pilot.app.screen.query_one("#job-body", Static)
        await until(pilot, lambda: "boom" in _plain(body), "the job's details")
        shown = _plain(body)
        assert f"job {job}" in shown and "tests.jobs_for_tests:Echo" in shown and '"args"' in shown
        assert f"TimeoutError: gateway timed out {job}" in shown and "boom" in shown
        await pilot.press("escape")
        await until(pilot, lambda: isinstance(pilot.app.screen, MonitorScreen), "back on the monitor")

    run(TopApp(source_for(configured), interval=LONG), scenario)


def test_the_throughput_lines_start_empty(configured: str) -> None:
    """The first reading measured no rate: nothing is drawn and the rates read `-` (not the last minute's
    average painted across the line); each later reading adds what it measured."""
    fail_jobs("mail", 3)  # failed runs in the last minute, before the monitor started

    async def scenario(pilot: Pilot[None]) -> None:
        screen = await loaded(pilot)
        await pilot.pause()
        assert screen.snapshot is not None and screen.snapshot.rates == ()
        failed_spark = screen.query_one("#failed-spark", RateLine)
        assert str(failed_spark.render()).strip() == ""
        assert str(screen.query_one("#failed-rate", Label).render()) == "-"
        assert "failed 3" in text(pilot, "#counts") and "finished/h ≈0" in text(pilot, "#counts")
        await refreshed(pilot)
        assert len(screen.snapshot.rates) == 1 and str(screen.query_one("#failed-rate", Label).render()) == "0"
        fail_jobs("mail", 2)
        await refreshed(pilot)
        await pilot.pause()
        assert str(screen.query_one("#failed-rate", Label).render()) != "0"
        drawn = str(failed_spark.render())
        assert drawn.split(" max ")[0].strip(), drawn  # what was measured shows, on the right
        assert drawn.startswith(" ")  # and nothing before the monitor started

    run(TopApp(source_for(configured), interval=LONG), scenario)


def test_queues_the_config_names_show_while_empty_and_can_be_paused(configured: str) -> None:
    Echo.set(queue="default").perform_later(0)
    source = DatabaseSource(urls.parse(configured), named_queues=("mail", "default", "idle"))

    async def scenario(pilot: Pilot[None]) -> None:
        screen = await loaded(pilot)
        assert keys(screen, "queues") == ["default", "idle", "mail"]
        assert [str(c) for c in screen.table("queues").get_row("idle")][:6] == ["idle", "0", "0", "0", "0", "0"]
        await pilot.press("down", "p")
        assert (await confirm(pilot, "y")).startswith("Pause queue idle?")
        assert await acted(pilot, screen) == "paused idle"
        assert database.get_store().paused_queues() == ["idle"]
        assert "paused" in str(screen.table("queues").get_row("idle")[7])

    run(TopApp(source, interval=LONG), scenario)


def cells(screen: MonitorScreen, panel: str) -> list[str]:
    """Every cell of a panel's table, as the text it shows."""
    table = screen.table(panel)
    return [str(c) for key in table.rows for c in table.get_row(key)]


def test_hostile_text_shows_as_text_everywhere(configured: str) -> None:
    """Markup and terminal escapes in queue names, classes, arguments, errors, tracebacks, hosts and tasks:
    every panel, the job screen, the dialogs and the notifications show them as text."""
    rows = insert_hostile_rows()
    session = database.get_store().session()
    try:
        [job] = session.claim(Selector("queue", HOSTILE), 1, token=9, process_id=rows.process)
        session.set_progress(job.id, 1, 2, HOSTILE)
    finally:
        session.close()

    def screen_text(pilot: Pilot[None]) -> str:
        svg = pilot.app.export_screenshot()
        assert "\x1b" not in svg  # nothing raw reaches the screen
        return svg

    async def scenario(pilot: Pilot[None]) -> None:
        screen = await loaded(pilot)
        shown = {panel: cells(screen, panel) for panel in ("queues", "claimed", "failures", "recurring", "processes")}
        for panel, found in shown.items():
            assert not any("\x1b" in c for c in found), panel
        assert {SHOWN, f"q{SHOWN}", f"paused{SHOWN}"} <= set(shown["queues"])
        assert {f"Echo{SHOWN}", SHOWN, f"worker host{SHOWN}:7", f"1/2 50% {SHOWN}"} <= set(shown["claimed"])
        assert f"q{SHOWN}" in shown["failures"] and any(c.startswith(f"Err{SHOWN}: message") for c in
                                                         shown["failures"])
        assert {f"task{SHOWN}", f"every {SHOWN}", f"q{SHOWN}"} <= set(shown["recurring"])
        assert {f"host{SHOWN}", f"q{SHOWN}"} <= set(shown["processes"])
        for key in "12345":
            await pilot.press(key)
            screen_text(pilot)
        await pilot.press("3", "enter")
        await until(pilot, lambda: isinstance(pilot.app.screen, JobScreen), "the job screen")
        body = pilot.app.screen.query_one("#job-body", Static)
        await until(pilot, lambda: "attempt 1" in _plain(body), "the job's details")
        details = _plain(body)
        assert f"Err{SHOWN}: message {SHOWN}" in details and f"Err: {SHOWN}" in details and "\x1b" not in details
        assert f"q{SHOWN}" in details and "[bold]x[/bold]" in details.split("arguments", 1)[1]
        screen_text(pilot)
        await pilot.press("escape", "r")
        question = await confirm(pilot, "n")
        assert f"on q{SHOWN}" in question and f"Err{SHOWN}" in question
        await pilot.press("1", *["down"] * keys(screen, "queues").index(f"paused{HOSTILE}"), "p")
        await until(pilot, lambda: isinstance(pilot.app.screen, ConfirmScreen), "the dialog")
        screen_text(pilot)
        assert (await confirm(pilot, "y")).startswith(f"Resume queue paused{SHOWN}?")
        assert await acted(pilot, screen) == f"resumed paused{SHOWN}"
        screen_text(pilot)
        await pilot.press("4", "n")
        assert (await confirm(pilot, "n")).startswith(f"Run recurring task task{SHOWN} now?")
        await pilot.press("3", "/", *"[/]", "enter", "R")
        assert await confirm(pilot, "n") == "Retry 1 failed job matching “[/]”?"
        assert "Failures filter: [/]" in text(pilot, "#header")
        screen_text(pilot)

    run(TopApp(source_for(configured), interval=LONG), scenario)


def test_the_job_screen_cuts_long_values(configured: str) -> None:
    store = database.get_store()
    big = "x" * 10_000_000
    job_id = store.insert_job(NewJob("app:Job", "big", 0, json.dumps({"args": [big], "kwargs": {}}))).id
    session = store.session()
    try:
        session.claim(Selector("queue", "big"), 1, token=3, process_id=1)
        session.end(job_id, token=3, process_id=1, state="failed",
                    error=RunError("ValueError", "m" * 100_000, "Traceback (most recent call last):\n" +
                                   "  frame\n" * 100_000 + "ValueError: the end"))
    finally:
        session.close()

    async def scenario(pilot: Pilot[None]) -> None:
        await loaded(pilot)
        await pilot.press("3", "enter")
        await until(pilot, lambda: isinstance(pilot.app.screen, JobScreen), "the job screen")
        body = pilot.app.screen.query_one("#job-body", Static)
        await until(pilot, lambda: "attempt 1" in _plain(body), "the job's details")
        details = _plain(body)
        assert len(details) < 100_000 and details.count("characters cut") == 3
        assert f"jobctl show {job_id} --json" in details and details.rstrip().endswith("ValueError: the end")

    run(TopApp(source_for(configured), interval=LONG), scenario)


def _plain(widget: Static) -> str:
    """What a Static shows, as plain text (renders rich renderables too)."""
    console = Console(width=200, record=True, file=io.StringIO())
    console.print(widget.content)
    return console.export_text()


def test_read_only_offers_no_action(configured: str) -> None:
    [job] = fail_jobs("mail", 1)
    Echo.set(queue="mail").perform_later(0)

    async def scenario(pilot: Pilot[None]) -> None:
        screen = await loaded(pilot)
        assert not isinstance(screen, ActionMonitorScreen)
        await pilot.press("3", "r", "d", "R", "D", "1", "p", "4", "n")
        await pilot.pause()
        assert not isinstance(pilot.app.screen, ConfirmScreen)
        assert screen.last_message is None
        assert state(job) == "failed" and not any(q.paused for q in operations.stats(database.get_store()).queues)
        bound = {b.key for bs in screen._bindings.key_to_bindings.values() for b in bs}
        assert not bound & {"r", "d", "R", "D", "p", "n"}
        assert "read-only" in text(pilot, "#header")
        await pilot.press("question_mark")
        help_screen = pilot.app.screen
        assert isinstance(help_screen, HelpScreen)
        shown = {k for k, _ in help_screen.lines}
        assert not shown & {"r", "d", "R", "D", "p", "n"}
        assert not any("retry" in line or "discard" in line or "pause" in line for _, line in help_screen.lines)

    run(TopApp(source_for(configured), interval=LONG, read_only=True), scenario)


def test_disconnected_banner_keeps_the_last_data_and_recovers(configured: str) -> None:
    fail_jobs("mail", 2)

    class Flaky(DatabaseSource):
        down = False

        def fetch(self, previous: Snapshot | None) -> Snapshot:
            if self.down:
                raise DatabaseError(f"cannot connect to {self.label}: connection refused")
            return super().fetch(previous)

    source = Flaky(urls.parse(configured))

    async def scenario(pilot: Pilot[None]) -> None:
        screen = await loaded(pilot)
        banner = pilot.app.screen.query_one("#banner", Static)
        assert not banner.display
        good = screen.snapshot
        before = keys(screen, "failures")
        assert len(before) == 2
        source.down = True
        await refreshed(pilot)
        assert banner.display and screen.error is not None
        assert "DISCONNECTED" in text(pilot, "#banner") and "connection refused" in text(pilot, "#banner")
        assert screen.snapshot is good and keys(screen, "failures") == before
        assert "ready 0" in text(pilot, "#counts") and "failed 2" in text(pilot, "#counts")
        source.down = False
        fail_jobs("reports", 1)
        await refreshed(pilot)
        assert not banner.display and screen.error is None
        assert len(keys(screen, "failures")) == 3

    run(TopApp(source, interval=LONG), scenario)


def test_unreachable_database_from_the_start_hides_the_password() -> None:
    source = DatabaseSource(urls.parse("postgresql://jobctl:s3cret@127.0.0.1:1/nowhere"))

    async def scenario(pilot: Pilot[None]) -> None:
        screen = monitor(pilot)
        await until(pilot, lambda: screen.error is not None, "the failed first fetch")
        header, banner = text(pilot, "#header"), text(pilot, "#banner")
        assert "DISCONNECTED" in banner and "no data yet" in banner
        assert "s3cret" not in header + banner and "jobctl:***@127.0.0.1:1" in header

    run(TopApp(source, interval=LONG), scenario)


# --- keys, filter, freeze, fetch discipline (fixed snapshots) ------------------------------

AT = dt.datetime(2026, 3, 14, 15, 9, 26, tzinfo=dt.UTC)


def ago(seconds: float) -> dt.datetime:
    return AT - dt.timedelta(seconds=seconds)


def fixed_snapshot(failures: Sequence[FailureSummary] | None = None) -> Snapshot:
    """A busy system, for screenshots and key tests."""
    rates = tuple(RateSample(ago(310 - 10 * i), ago(300 - 10 * i), 40.0 + 25 * (i % 7) + i, 0.5 * (i % 5 == 0))
                  for i in range(31))
    return Snapshot(
        at=AT,
        counts=Counts(ready=1520, scheduled=48, claimed=6, blocked=2, failed=5, finished_last_hour=81234,
                      processes=5),
        finished_total=1_000_000, failed_total=120, rates=rates,
        queues=(QueueStats("default", 1200, 40, 4, 0, 1, 12.5, False),
                QueueStats("mail", 300, 8, 2, 2, 3, 95.0, True),
                QueueStats("reports", 20, 0, 0, 0, 1, None, False)),
        claimed=(ClaimedRow(901, "app.jobs:ExportJob", "reports", ago(754), "worker vm-1:4242", 40, 100,
                            "rows"),
                 ClaimedRow(907, "app.jobs:InvoiceJob", "mail", ago(3), "worker vm-1:4243")),
        failures=tuple(failures) if failures is not None else (
            FailureSummary(812, "app.jobs:InvoiceJob", "mail", "TimeoutError", "smtp timed out after 30s", 5, ago(40)),
            FailureSummary(811, "app.jobs:InvoiceJob", "mail", "TimeoutError", "smtp timed out after 30s", 5, ago(95)),
            FailureSummary(640, "app.jobs:WebhookJob", "default", "ConnectionError", "refused", 3, ago(3600)),
            FailureSummary(602, "app.jobs:InvoiceJob", "mail", "ValueError", "no customer 17", 1, ago(7200)),
            FailureSummary(15, "app.jobs:ReportJob", "reports", "KeyError", "'total'", 1, ago(90000))),
        recurring=(TaskRow("cleanup", "every day at 3am", "app.jobs:CleanupJob", "maintenance", ago(43000),
                           AT + dt.timedelta(seconds=43400)),
                   TaskRow("metrics", "every 5 minutes", "app.metrics:collect", "default", ago(120),
                           AT + dt.timedelta(seconds=180))),
        processes=(ProcessRow(1, "supervisor", "vm-1", 4240, None, None, 0, ago(2), 41_000_000, 0.0),
                   ProcessRow(2, "dispatcher", "vm-1", 4241, None, None, 0, ago(2), 31_500_000, 0.4),
                   ProcessRow(3, "worker", "vm-1", 4242, "*", 3, 1, ago(2), 52_400_000, 12.0, wakeup="listening"),
                   ProcessRow(4, "worker", "vm-1", 4243, "*", 3, 1, ago(3), 50_100_000, 9.5, wakeup="listening"),
                   ProcessRow(5, "worker", "vm-2", 977, "mail,reports", 5, 4, ago(8), wakeup="polling")),
    )


def fake_job() -> JobInfo:
    return JobInfo(812, "app.jobs:InvoiceJob", "mail", 0, "failed", {"args": [17], "kwargs": {}}, 5, 0,
                   (ErrorInfo(5, "TimeoutError", "smtp timed out after 30s", "Traceback:\n  smtp", ago(40)),),
                   None, None, ago(400), ago(60), ago(45), ago(40))


def test_help_lists_every_key_and_escape_closes_dialogs() -> None:
    source = FakeSource(fixed_snapshot())

    async def scenario(pilot: Pilot[None]) -> None:
        screen = await loaded(pilot)
        await pilot.press("question_mark")
        help_screen = pilot.app.screen
        assert isinstance(help_screen, HelpScreen)
        listed = [k for k, _ in help_screen.lines]
        for key in (*VIEW_KEYS, *ACTION_KEYS):
            assert key.shown in listed
        bound = {b.key_display or b.key for bs in screen._bindings.key_to_bindings.values() for b in bs
                 if b.action != "escape" and not b.action.startswith(("app.", "screen."))}
        assert bound <= set(listed)
        for doc in ("enter", "escape", "/", "space", "?", "q", "1", "5"):
            assert doc in listed
        await pilot.press("escape")
        assert pilot.app.screen is screen
        await pilot.press("3", "r")
        await until(pilot, lambda: isinstance(pilot.app.screen, ConfirmScreen), "the dialog")
        await pilot.press("escape")
        assert pilot.app.screen is screen and source.calls == []
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(pilot.app.screen, JobScreen), "the job screen")
        await pilot.press("escape")
        assert pilot.app.screen is screen

    run(TopApp(source, interval=LONG), scenario)


def test_panel_keys_filter_and_escape() -> None:
    async def scenario(pilot: Pilot[None]) -> None:
        screen = await loaded(pilot)
        for key, panel in zip("12345", ("queues", "claimed", "failures", "recurring", "processes"), strict=True):
            await pilot.press(key)
            assert screen.active_panel == panel and pilot.app.focused is screen.table(panel)
        await pilot.press("3", "/", *"queue:mail")
        assert keys(screen, "failures") == ["812", "811", "602"]  # narrows as it is typed
        await pilot.press("escape")  # while typing: clears
        assert screen.filter.text == "" and len(keys(screen, "failures")) == 5
        assert not screen.query_one("#filter").display and pilot.app.focused is screen.table("failures")
        await pilot.press("/", *"invoice timed", "enter")
        assert keys(screen, "failures") == ["812", "811"]
        assert "Failures filter: invoice timed" in text(pilot, "#header")
        assert "2 of 5 failures match the filter" in text(pilot, "#failures-caption")
        await pilot.press("escape")  # after enter: clears too
        assert keys(screen, "failures") == ["812", "811", "640", "602", "15"] and "filter" not in text(pilot, "#header")

    run(TopApp(FakeSource(fixed_snapshot()), interval=LONG), scenario)


def test_each_panel_keeps_its_own_filter() -> None:
    """A filter narrows the panel it was typed in, no other; it is there again on coming back, and the
    header names the panel whose filter it shows. `R` acts on the Failures filter."""
    source = FakeSource(fixed_snapshot())

    async def scenario(pilot: Pilot[None]) -> None:
        screen = await loaded(pilot)
        await pilot.press("3", "/", *"queue:mail", "enter")
        assert keys(screen, "failures") == ["812", "811", "602"]
        await pilot.press("1")
        assert keys(screen, "queues") == ["default", "mail", "reports"] and screen.filter.text == ""
        assert "filter" not in text(pilot, "#header")
        await pilot.press("/", *"rep", "enter")
        assert keys(screen, "queues") == ["reports"] and "Queues filter: rep" in text(pilot, "#header")
        assert keys(screen, "failures") == ["812", "811", "602"]  # Failures kept its own
        await pilot.press("5")
        assert keys(screen, "processes") == ["1", "2", "3", "4", "5"]
        await pilot.press("3")
        assert screen.filter.text == "queue:mail" and "Failures filter: queue:mail" in text(pilot, "#header")
        await pilot.press("/")
        assert screen.query_one("#filter", Input).value == "queue:mail"  # the box edits this panel's filter
        await pilot.press("enter", "R")
        assert await confirm(pilot, "n") == "Retry 3 failed jobs matching “queue:mail”?"
        await pilot.press("1", "escape")
        assert keys(screen, "queues") == ["default", "mail", "reports"]
        assert keys(screen, "failures") == ["812", "811", "602"]  # escape cleared the Queues filter only

    run(TopApp(source, interval=LONG), scenario)


def test_space_freezes_refresh() -> None:
    source = FakeSource(fixed_snapshot())

    async def scenario(pilot: Pilot[None]) -> None:
        screen = await loaded(pilot)
        await until(pilot, lambda: source.fetches >= 3, "refreshes")
        await pilot.press("space")
        assert screen.frozen and "FROZEN" in text(pilot, "#header")
        await until(pilot, lambda: not screen.fetching, "the fetch in flight")
        frozen_at = source.fetches
        await pilot.pause(0.3)  # six intervals
        assert source.fetches == frozen_at
        await pilot.press("space")
        assert not screen.frozen
        await until(pilot, lambda: source.fetches > frozen_at, "refreshes again")

    run(TopApp(source, interval=0.05), scenario)


def test_a_tick_while_a_fetch_is_in_flight_is_skipped() -> None:
    class Slow(FakeSource):
        def __init__(self) -> None:
            super().__init__(fixed_snapshot())
            self.release = threading.Event()
            self.running = 0
            self.most = 0
            self.lock = threading.Lock()

        def fetch(self, previous: Snapshot | None) -> Snapshot:
            with self.lock:
                self.running += 1
                self.most = max(self.most, self.running)
            try:
                if self.fetches >= 1:
                    assert self.release.wait(10)
                return super().fetch(previous)
            finally:
                with self.lock:
                    self.running -= 1

    source = Slow()

    async def scenario(pilot: Pilot[None]) -> None:
        screen = await loaded(pilot)
        assert screen.refresh_now()
        await until(pilot, lambda: source.running == 1, "the slow fetch to start")
        for _ in range(5):
            screen.tick()
            await pilot.pause()
        assert screen.skipped == 5 and screen.fetches == 2 and source.running == 1
        await pilot.press("j")  # the UI keeps answering meanwhile
        await pilot.press("3")
        assert screen.active_panel == "failures"
        source.release.set()
        await until(pilot, lambda: not screen.fetching, "the slow fetch to land")
        screen.tick()
        await until(pilot, lambda: screen.fetches == 3 and not screen.fetching, "the next fetch")
        assert source.most == 1

    run(TopApp(source, interval=LONG), scenario)


def test_the_cursor_stays_on_its_row_when_rows_arrive() -> None:
    before = fixed_snapshot()
    newer = FailureSummary(813, "app.jobs:InvoiceJob", "mail", "TimeoutError", "again", 1, AT)
    after = fixed_snapshot(failures=(newer, *before.failures[:2], *before.failures[3:]))
    source = FakeSource(before, after)

    async def scenario(pilot: Pilot[None]) -> None:
        screen = await loaded(pilot)
        await pilot.press("3", "down", "down", "down")
        table = screen.table("failures")
        assert selected_key(table) == "602" and table.cursor_row == 3
        await refreshed(pilot)
        assert keys(screen, "failures") == ["813", "812", "811", "602", "15"]
        assert selected_key(table) == "602" and table.cursor_row == 3
        await pilot.press("up")
        assert selected_key(table) == "811"

    run(TopApp(source, interval=LONG), scenario)


def test_actions_reach_the_source_with_what_was_confirmed() -> None:
    source = FakeSource(fixed_snapshot(), jobs=[fake_job()])

    async def scenario(pilot: Pilot[None]) -> None:
        screen = await loaded(pilot)
        await pilot.press("3", "/", *"class:Invoice", "enter", "D")
        assert await confirm(pilot, "y") == "Discard 3 failed jobs matching “class:Invoice”?"
        await acted(pilot, screen)
        await pilot.press("1", "down", "p")
        assert (await confirm(pilot, "y")).startswith("Resume queue mail?")
        await acted(pilot, screen, "discard: 3 of 3 jobs changed")
        assert source.calls == [("discard", [602, 811, 812]), ("resume", "mail")]

    run(TopApp(source, interval=LONG), scenario)


# --- screenshots -----------------------------------------------------------------------------


def screenshot(name: str, svg: str) -> None:
    """Compare with tests/snapshots/NAME.svg; JOBCTL_UPDATE_SNAPSHOTS=1 writes it instead."""
    path = SNAPSHOTS / f"{name}.svg"
    if os.environ.get("JOBCTL_UPDATE_SNAPSHOTS") == "1":
        SNAPSHOTS.mkdir(exist_ok=True)
        path.write_text(svg, encoding="utf-8")
        return
    assert path.exists(), f"{path} is missing: run with JOBCTL_UPDATE_SNAPSHOTS=1 and review it"
    expected = path.read_text(encoding="utf-8")
    if svg != expected:
        failed = path.with_suffix(".failed.svg")
        failed.write_text(svg, encoding="utf-8")
        raise AssertionError(f"{name}: the screen differs from {path.name} (got {failed.name}); "
                             "if the change is intended, run with JOBCTL_UPDATE_SNAPSHOTS=1")


@pytest.mark.parametrize("size", [(80, 24), (140, 40)], ids=["80x24", "140x40"])
def test_screenshots(size: tuple[int, int]) -> None:
    source = FakeSource(fixed_snapshot(), label="postgresql://ops:***@db.internal/app")
    app = TopApp(source, interval=2.0, clock=lambda: 1000.0)
    app.animation_level = "none"
    width, height = size

    async def scenario(pilot: Pilot[None]) -> None:
        screen = await loaded(pilot)
        screen.frozen = True  # no further fetch: the picture is the snapshot
        screen.render_header()
        await pilot.pause()
        screenshot(f"top_queues_{width}x{height}", pilot.app.export_screenshot())
        await pilot.press("3")
        source.error = DatabaseError("cannot connect to postgresql://ops:***@db.internal/app: connection refused")
        screen.frozen = False
        await refreshed(pilot)
        screen.frozen = True
        screen.render_header()
        await pilot.pause()
        screenshot(f"top_failures_disconnected_{width}x{height}", pilot.app.export_screenshot())

    run(app, scenario, size=size)


# --- the verb ----------------------------------------------------------------------------------


def test_top_verb_errors_are_one_line(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JOBCTL_", "DATABASE_URL"))}
    bad = subprocess.run([sys.executable, "-m", "jobctl.cli", "top", "--interval", "0",
                          "--database", f"sqlite:///{tmp_path / 'x.db'}"], capture_output=True, text=True, env=env,
                         cwd=tmp_path, timeout=60)
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "--interval" in bad.stderr
    gone = subprocess.run([sys.executable, "-m", "jobctl.cli", "top", "--database",
                           "postgresql://ops:s3cret@127.0.0.1:1/app"], capture_output=True, text=True, env=env,
                          cwd=tmp_path, timeout=60)
    assert gone.returncode == 69 and gone.stderr.count("\n") == 1 and "s3cret" not in gone.stderr
    help_out = subprocess.run([sys.executable, "-m", "jobctl.cli", "top", "--help"], capture_output=True, text=True,
                              env={**env, "COLUMNS": "200"}, cwd=tmp_path, timeout=60)
    assert help_out.returncode == 0 and "--read-only" in help_out.stdout and "--interval" in help_out.stdout


def test_only_the_monitor_imports_textual() -> None:
    code = ("import sys, jobctl, jobctl.cli; "
            "print(sorted(m for m in sys.modules if m == 'textual' or m.startswith('jobctl.tui')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
