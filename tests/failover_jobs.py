"""Jobs for the failover test: a Tally that takes a while, so a drain lasts long enough to fail over in."""

from __future__ import annotations

import time

from tests.pooler_jobs import Tally


class PacedTally(Tally):
    """A Tally that sleeps `seconds` first (it touches no database: the failover is what is under test)."""

    def perform(self, seconds: float) -> None:
        time.sleep(seconds)
        super().perform()
