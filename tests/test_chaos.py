"""A short chaos run (the full one is `make chaos`): kills and a database restart lose nothing."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

from tests import chaos


@pytest.mark.slow
def test_short_chaos_run_loses_nothing() -> None:
    workdir = Path(tempfile.mkdtemp(prefix="jobctl-chaos-"))  # the postgres user must reach it
    os.chmod(workdir, 0o755)
    try:
        report = chaos.run(jobs=1500, seconds=90, job_seconds=0.2, seed=11, workdir=workdir)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    print("\n".join(report.lines()))
    kinds = {kind for _, kind in report.events}
    assert {"supervisor kill -9", "PostgreSQL restart"} <= kinds
    assert any(kind.endswith("kill -9") and kind.startswith(("worker", "dispatcher")) for kind in kinds)
    assert report.ok, "\n".join(report.lines())
