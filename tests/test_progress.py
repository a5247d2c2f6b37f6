"""Progress reported by a running job, visible to `jobctl show` while it runs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import jobctl
from tests import runtime_jobs as rj
from tests.runtime_helpers import cli, start, stop, wait_for, write_config

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("configured")]


def test_progress_is_visible_while_running(configured: str, tmp_path: Path) -> None:
    release = tmp_path / "release"
    handle = rj.Progressing.perform_later(4, str(release))
    proc = start(configured, write_config(tmp_path / "queue.yml", processes=1), log=tmp_path / "log")
    try:
        def midway() -> dict[str, object] | None:
            progress = json.loads(cli("show", str(handle.id), "--json", url=configured).stdout)["progress"]
            return progress if progress and progress["total"] == 4 else None

        seen = wait_for(midway, what="progress while running")
        assert handle.state == "claimed" and seen["message"].startswith("step")  # type: ignore[union-attr]
        human = cli("show", str(handle.id), url=configured).stdout
        assert "progress" in human and "/4" in human
        release.touch()
        wait_for(lambda: handle.state == "finished", what="the job to finish")
    finally:
        assert stop(proc) == 0
    final = jobctl.get_job(handle.id).progress
    assert final is not None and (final.done, final.total, final.message) == (4, 4, "done")


def test_progress_outside_a_worker_stays_local() -> None:
    class Local(jobctl.Job):
        def perform(self) -> tuple[float, float | None, str | None] | None:
            self.progress(1, 2, "half")
            return self.last_progress

    assert Local.perform_now() == (1, 2, "half")
