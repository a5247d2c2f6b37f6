"""`jobctl generate job`: files a new user gets, whose test passes, never overwriting."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.runtime_helpers import cli


def test_generate_job_writes_a_thin_job_and_a_passing_test(tmp_path: Path) -> None:
    out = cli("generate", "job", "NotifyRecipients", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    job = (tmp_path / "jobs" / "notify_recipients.py").read_text()
    assert "class NotifyRecipientsJob(jobctl.Job):" in job and "record.notify_recipients_now()" in job
    test = tmp_path / "tests" / "test_notify_recipients_job.py"
    assert "assert_enqueued(NotifyRecipientsJob" in test.read_text()
    run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(test)],
                         cwd=tmp_path, capture_output=True, text=True, timeout=120,
                         env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)})
    assert run.returncode == 0, run.stdout + run.stderr
    assert "3 passed" in run.stdout

    again = cli("generate", "job", "NotifyRecipients", cwd=tmp_path)
    assert again.returncode == 1
    assert again.stderr == "jobctl: jobs/notify_recipients.py already exists; nothing written\n"
    assert (tmp_path / "jobs" / "notify_recipients.py").read_text() == job


def test_generate_rejects_bad_names(tmp_path: Path) -> None:
    out = cli("generate", "job", "not-a-name", cwd=tmp_path)
    assert out.returncode == 2 and out.stderr.count("\n") == 1
    assert not (tmp_path / "jobs").exists()
