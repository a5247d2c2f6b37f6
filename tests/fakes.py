"""Test doubles that stand in for what cannot be had in a test: fixed monitor snapshots."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from jobctl.records import JobInfo, WriteResult
from jobctl.tui.filtering import Filter
from jobctl.tui.snapshot import Snapshot, failure_matches


class FakeSource:
    """Fixed snapshots for tests and screenshots: `snapshots` are served in turn (the last one repeats),
    `error` (when set) is raised instead, and actions are recorded in `calls`."""

    def __init__(self, *snapshots: Snapshot, jobs: Iterable[JobInfo] = (), label: str = "sqlite:///fake.sqlite3"
                 ) -> None:
        self.label = label
        self.snapshots = list(snapshots)
        self.jobs = {j.id: j for j in jobs}
        self.error: Exception | None = None
        self.calls: list[tuple[str, Any]] = []
        self.fetches = 0
        self._served: Snapshot | None = None

    def fetch(self, previous: Snapshot | None) -> Snapshot:
        self.fetches += 1
        if self.error is not None:
            raise self.error
        if len(self.snapshots) > 1:
            self._served = self.snapshots.pop(0)
        else:
            self._served = self.snapshots[0]
        return self._served

    def job(self, job_id: int) -> JobInfo | None:
        return self.jobs.get(job_id)

    def failure_ids(self, flt: Filter) -> list[int]:
        shown = self._served.failures if self._served else ()
        return sorted(f.id for f in shown if failure_matches(flt, f))

    def retry(self, ids: Sequence[int]) -> WriteResult:
        self.calls.append(("retry", list(ids)))
        return WriteResult(matched=len(ids), ids=sorted(ids))

    def discard(self, ids: Sequence[int]) -> WriteResult:
        self.calls.append(("discard", list(ids)))
        return WriteResult(matched=len(ids), ids=sorted(ids))

    def pause(self, queue: str) -> bool:
        self.calls.append(("pause", queue))
        return True

    def resume(self, queue: str) -> bool:
        self.calls.append(("resume", queue))
        return True

    def run_recurring_now(self, key: str) -> int:
        self.calls.append(("run_recurring_now", key))
        return 1

    def close(self) -> None:
        self.calls.append(("close", None))
