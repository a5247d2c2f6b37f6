"""Jobs for the pooler tests: they touch no database (the pooler is what is under test)."""

from __future__ import annotations

import os
import time

import jobctl


class Tally(jobctl.Job):
    """Appends `job_id started-at` to a file of its process's own under $JOBCTL_TEST_RUNS_DIR."""

    def perform(self) -> None:
        path = os.path.join(os.environ["JOBCTL_TEST_RUNS_DIR"], f"{os.getpid()}.txt")
        with open(path, "a") as out:
            out.write(f"{self.job_id} {time.time()}\n")


class SlowTally(Tally):
    """A Tally that takes 50 ms."""

    def perform(self) -> None:
        time.sleep(0.05)
        super().perform()
