"""The monitor's own widgets: header, DISCONNECTED banner, counts line and throughput sparklines.
Each renders from values it is given; none reads the database."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from rich.text import Text
from textual.app import ComposeResult, RenderResult
from textual.containers import Horizontal
from textual.widget import Widget
from textual.widgets import Label, Static

from jobctl.formatting import duration, estimate, printable
from jobctl.tui.snapshot import RATE_WINDOW_S, Counts, RateSample


def age(seconds: float) -> str:
    """`0s`, `12s`, `3m` — never milliseconds, which would flicker every refresh."""
    return duration(max(seconds, 1.0)) if seconds >= 1 else "0s"


def header_text(label: str, interval: float, refreshed_age: float | None, *, frozen: bool, disconnected: bool,
                filter_text: str, read_only: bool, filter_panel: str = "") -> Text:
    """`jobctl top  DATABASE  every 1s  refreshed 0s ago  [FROZEN] [read-only] Failures filter: …`."""
    text = Text.assemble(("jobctl top", "bold"), "  ", (printable(label), "bold cyan"), f"  every {interval:g}s  ")
    if refreshed_age is None:
        text.append("connecting…", style="italic")
    else:
        text.append(f"refreshed {age(refreshed_age)} ago", style="red" if disconnected else "")
    if frozen:
        text.append("  FROZEN", style="bold reverse yellow")
    if read_only:
        text.append("  read-only", style="bold")
    if filter_text:
        text.append(f"  {filter_panel} filter: " if filter_panel else "  filter: ", style="bold")
        text.append(printable(filter_text), style="magenta")
    return text


def banner_text(error: str, data_age: float | None, interval: float) -> Text:
    """The DISCONNECTED banner: why, how old the data on screen is, that it keeps trying."""
    kept = "no data yet" if data_age is None else f"showing data from {age(data_age)} ago"
    return Text.assemble(("DISCONNECTED", "bold"), f"  {printable(error)}  —  {kept}; retrying every {interval:g}s")


def counts_text(counts: Counts) -> Text:
    """`ready 12  scheduled 3  claimed 2  blocked 0  failed 5  finished/h ≈1,234  processes 4` (the last
    hour is an estimate from per-minute counters, as in `jobctl stats`); `waiting 3` after `blocked` while
    jobs wait for their dependencies."""
    text = Text()
    shown_counts = [("ready", counts.ready, "green"), ("scheduled", counts.scheduled, ""),
                    ("claimed", counts.claimed, "cyan"), ("blocked", counts.blocked, "yellow"),
                    ("failed", counts.failed, "red"), ("finished/h", counts.finished_last_hour, ""),
                    ("processes", counts.processes, "")]
    if counts.waiting:
        shown_counts.insert(4, ("waiting", counts.waiting, "yellow"))
    for name, value, style in shown_counts:
        if text:
            text.append("  ")
        text.append(f"{name} ")
        shown = estimate(value) if name == "finished/h" else f"{value:,}"
        text.append(shown, style=f"bold {style}" if value else "bold")
    return text


BARS = "▁▂▃▄▅▆▇█"


def spark(samples: Sequence[tuple[dt.datetime, dt.datetime, float]], now: dt.datetime, width: int,
          window: float = RATE_WINDOW_S) -> str:
    """A sparkline of `width` columns over the last `window` seconds, newest on the right. Each sample
    is a rate measured over a span of time (since, at); a column shows the time-weighted mean of the
    spans it overlaps, scaled from 0 to the largest column; blank where no span reaches (before the
    monitor's second reading)."""
    if width <= 0:
        return ""
    slot = window / width
    start = now - dt.timedelta(seconds=window)
    weights = [0.0] * width
    sums = [0.0] * width
    for since, at, value in samples:
        first = max(int((since - start).total_seconds() / slot), 0)
        last = min(int((at - start).total_seconds() / slot), width - 1)
        for column in range(first, last + 1):
            lo = start + dt.timedelta(seconds=column * slot)
            overlap = (min(at, lo + dt.timedelta(seconds=slot)) - max(since, lo)).total_seconds()
            if overlap > 0:
                weights[column] += overlap
                sums[column] += overlap * value
    means = [sums[i] / weights[i] if weights[i] else None for i in range(width)]
    top = max((m for m in means if m is not None), default=0.0)

    def bar(mean: float | None) -> str:
        if mean is None:
            return " "
        return BARS[round(mean / top * (len(BARS) - 1))] if top > 0 else BARS[0]

    return "".join(bar(m) for m in means)


class RateLine(Widget):
    """One rate's sparkline (rendered by `spark`, sized to the widget)."""

    def __init__(self, *, id: str) -> None:
        super().__init__(id=id)
        self.samples: tuple[tuple[dt.datetime, dt.datetime, float], ...] = ()
        self.now: dt.datetime | None = None

    def show(self, samples: tuple[tuple[dt.datetime, dt.datetime, float], ...], now: dt.datetime) -> None:
        """New data; repaints."""
        self.samples, self.now = samples, now
        self.refresh()

    def render(self) -> RenderResult:
        if self.now is None:
            return ""
        recent = [v for _, at, v in self.samples if (self.now - at).total_seconds() < RATE_WINDOW_S]
        peak = max(recent, default=0.0)
        # The scale: bars run from 0 to the peak of the window.
        suffix = f" max {rate(peak)}" if peak > 0 else ""
        return spark(self.samples, self.now, self.size.width - len(suffix)) + suffix


class Rates(Horizontal):
    """finished/s and failed/s: the latest value and a sparkline over the last minutes; `-` and no bars
    until two readings have measured something."""

    def compose(self) -> ComposeResult:
        yield Label("finished/s", classes="rate-label")
        yield Label("-", id="finished-rate", classes="rate-value")
        yield RateLine(id="finished-spark")
        yield Label("failed/s", classes="rate-label")
        yield Label("-", id="failed-rate", classes="rate-value")
        yield RateLine(id="failed-spark")

    def show(self, rates: tuple[RateSample, ...], now: dt.datetime) -> None:
        """Render a rate history, oldest first."""
        latest = rates[-1] if rates else None
        self.query_one("#finished-rate", Label).update(rate(latest.finished_per_s) if latest else "-")
        self.query_one("#failed-rate", Label).update(rate(latest.failed_per_s) if latest else "-")
        self.query_one("#finished-spark", RateLine).show(tuple((r.since, r.at, r.finished_per_s) for r in rates), now)
        self.query_one("#failed-spark", RateLine).show(tuple((r.since, r.at, r.failed_per_s) for r in rates), now)


def rate(value: float) -> str:
    """`0`, `0.3`, `12`, `1.2k`."""
    if value >= 1000:
        return f"{value / 1000:.1f}k"
    if value >= 10 or value == 0:
        return f"{value:.0f}"
    return f"{value:.1f}" if value >= 0.1 else f"{value:.2f}"


class Banner(Static):
    """The DISCONNECTED banner (hidden while connected)."""
