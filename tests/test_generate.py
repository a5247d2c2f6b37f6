"""`jobctl generate job`: files a new user gets, whose test passes, never overwriting."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.runtime_helpers import cli

PYTEST = Path(sys.executable).parent / "pytest"
"""The pytest command users run (not `python -m pytest`, which also puts the current directory on sys.path)."""


def test_generate_job_writes_a_thin_job_and_a_passing_test(tmp_path: Path) -> None:
    out = cli("generate", "job", "NotifyRecipients", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert out.stderr == ("created jobs/notify_recipients.py\ncreated tests/test_notify_recipients_job.py\n"
                          "created conftest.py\n"
                          "run its tests from here with: pytest tests/test_notify_recipients_job.py\n")
    job = (tmp_path / "jobs" / "notify_recipients.py").read_text()
    assert "class NotifyRecipientsJob(jobctl.Job):" in job and "record.notify_recipients_now()" in job
    test = tmp_path / "tests" / "test_notify_recipients_job.py"
    assert "assert_enqueued(NotifyRecipientsJob" in test.read_text()
    for args in ((), ("tests/test_notify_recipients_job.py",)):  # plain `pytest`, and the line it printed
        run = subprocess.run([str(PYTEST), "-q", "-p", "no:cacheprovider", *args],
                             cwd=tmp_path, capture_output=True, text=True, timeout=120,
                             env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)})
        assert run.returncode == 0, run.stdout + run.stderr
        assert "3 passed" in run.stdout

    again = cli("generate", "job", "NotifyRecipients", cwd=tmp_path)
    assert again.returncode == 1
    assert again.stderr == "jobctl: jobs/notify_recipients.py already exists; nothing written\n"
    assert (tmp_path / "jobs" / "notify_recipients.py").read_text() == job


def test_generate_keeps_a_conftest_already_there(tmp_path: Path) -> None:
    (tmp_path / "conftest.py").write_text("# mine\n")
    out = cli("generate", "job", "ExportData", "--package", "app/jobs", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert "conftest" not in out.stderr
    assert (tmp_path / "conftest.py").read_text() == "# mine\n"
    run = subprocess.run([str(PYTEST), "-q", "-p", "no:cacheprovider"], cwd=tmp_path, capture_output=True,
                         text=True, timeout=120, env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)})
    assert run.returncode == 0 and "3 passed" in run.stdout, run.stdout + run.stderr


def test_generate_rejects_bad_names(tmp_path: Path) -> None:
    out = cli("generate", "job", "not-a-name", cwd=tmp_path)
    assert out.returncode == 2 and out.stderr.count("\n") == 1
    assert not (tmp_path / "jobs").exists()
