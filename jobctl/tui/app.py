"""`jobctl top`: the Textual app, opening on the monitor screen (with actions unless read-only)."""

from __future__ import annotations

import time
from typing import Any

from textual.app import App
from textual.screen import Screen

from jobctl.tui.actions import ActionMonitorScreen
from jobctl.tui.monitor import Clock, MonitorScreen
from jobctl.tui.source import Source


class TopApp(App[None]):
    """`jobctl top`."""

    CSS_PATH = "jobctl.tcss"
    TITLE = "jobctl top"
    ENABLE_COMMAND_PALETTE = False

    def __init__(self, source: Source, *, interval: float = 1.0, read_only: bool = False,
                 clock: Clock = time.monotonic) -> None:
        super().__init__()
        self.source = source
        self.interval = interval
        self.read_only = read_only
        self.clock = clock

    def get_default_screen(self) -> Screen[Any]:
        kind = MonitorScreen if self.read_only else ActionMonitorScreen
        return kind(self.source, interval=self.interval, clock=self.clock)

    @property
    def monitor(self) -> MonitorScreen:
        """The monitor screen (the bottom of the stack)."""
        screen = self.screen_stack[0]
        assert isinstance(screen, MonitorScreen)
        return screen
