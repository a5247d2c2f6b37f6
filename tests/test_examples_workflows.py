"""The README's batch and chain, run as written: `python -m examples.app.workflows …`, then `jobctl start`."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import jobctl
from tests.runtime_helpers import ROOT, env_for, start, stop, wait_for, write_config

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("configured")]

IMPORTS = "imports:\n  - examples.app\n"


def example(url: str, *args: str) -> str:
    done = subprocess.run([sys.executable, "-m", "examples.app.workflows", *args], cwd=ROOT, env=env_for(url),
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_the_import_emails_once_when_every_row_is_done_and_the_chain_runs_in_order(configured: str,
                                                                                  tmp_path: Path) -> None:
    outbox = tmp_path / "outbox"
    said = example(configured, "import", str(ROOT / "examples" / "app" / "rows.csv"), "--outbox", str(outbox))
    assert said.startswith("batch ") and "3 rows enqueued" in said
    batch_id = int(said.split()[1].rstrip(":"))
    bad = tmp_path / "bad.csv"
    bad.write_text("id,email\n1,ada@example.com\n2,\n")
    failing = int(example(configured, "import", str(bad), "--outbox", str(outbox)).split()[1].rstrip(":"))
    assert "chain enqueued" in example(configured, "chain", "--outbox", str(outbox))
    proc = start(configured, write_config(tmp_path / "queue.yml", extra=IMPORTS), "--skip-recurring",
                 log=tmp_path / "log")
    try:
        wait_for(lambda: (outbox / f"import-{batch_id}.eml").exists()
                 and (outbox / f"import-{failing}-failed.eml").exists()
                 and "published" in ((outbox / "report.log").read_text() if (outbox / "report.log").exists()
                                     else ""), timeout=60, what="the emails and the published report")
        wait_for(lambda: jobctl.get_batch(failing).state == "failed", what="the failing import to end")
    finally:
        assert stop(proc) == 0
    email = (outbox / f"import-{batch_id}.eml").read_text()
    assert "Subject: import of rows.csv: 3 rows imported" in email and "To: ops@example.com" in email
    assert sorted(p.name for p in outbox.glob("*.eml")) == sorted([f"import-{batch_id}.eml",
                                                                   f"import-{failing}-failed.eml"])
    assert sorted((outbox / "imported.csv").read_text().splitlines()) == sorted(
        ["1,ada@example.com", "2,grace@example.com", "3,linus@example.com", "1,ada@example.com"])
    steps = (outbox / "report.log").read_text().splitlines()
    assert steps[0] == "fetched" and sorted(steps[1:3]) == ["rendered html", "rendered pdf"]
    assert steps[3:] == ["published"]
