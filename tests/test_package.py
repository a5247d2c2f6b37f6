"""The public API is pinned, `import jobctl` stays light, and the built wheel works on its own."""

from __future__ import annotations

import os
import subprocess
import sys
import venv
from pathlib import Path

import pytest

import jobctl

ROOT = Path(__file__).resolve().parent.parent


def test_public_api_is_pinned() -> None:
    assert sorted(jobctl.__all__) == sorted([
        "ConcurrencyLimit", "ConfigError", "ConfiguredJob", "DatabaseError", "ErrorInfo", "Job", "JobClassError",
        "JobHandle", "JobInfo", "JobNotFound", "JobctlError", "Progress", "RecordNotFound", "RetryOn", "SchemaOutdated",
        "SerializationError", "__version__", "configure", "count", "current", "get_job", "later",
        "perform_all_later", "register_locator", "using",
    ])
    for name in jobctl.__all__:
        assert hasattr(jobctl, name), name


def test_import_jobctl_is_light() -> None:
    code = "import sys, jobctl; print(sorted(m for m in ('textual', 'typer', 'rich', 'psycopg') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_store_imports_nothing_above_it() -> None:
    code = ("import sys, jobctl.store.postgres, jobctl.store.sqlite; "
            "print([m for m in sys.modules if m.startswith(('jobctl.runtime', 'jobctl.tui', 'jobctl.cli'))])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


@pytest.mark.slow
def test_built_wheel_installs_and_runs(tmp_path: Path) -> None:
    """Build the wheel, install it in a fresh virtualenv, run `jobctl --help` and an enqueue on SQLite."""
    dist = tmp_path / "dist"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(dist), str(ROOT)],
                   check=True, capture_output=True)
    wheel = next(dist.glob("jobctl-*.whl"))
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True)
    py = env_dir / "bin" / "python"
    subprocess.run([str(py), "-m", "pip", "install", "-q", "-c", str(ROOT / "constraints.txt"), str(wheel)],
                   check=True, capture_output=True)
    work = tmp_path / "app"
    work.mkdir()
    (work / "myjobs.py").write_text("import jobctl\nclass Hello(jobctl.Job):\n    def perform(self, n): pass\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JOBCTL_", "DATABASE_URL", "PYTHONPATH"))}
    jobctl_bin = str(env_dir / "bin" / "jobctl")
    help_out = subprocess.run([jobctl_bin, "--help"], cwd=work, env=env, capture_output=True, text=True)
    assert help_out.returncode == 0 and "enqueue" in help_out.stdout
    out = subprocess.run([jobctl_bin, "enqueue", "myjobs:Hello", "[1]", "--json"], cwd=work, env=env,
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert (work / "jobctl.sqlite3").exists()
    check = subprocess.run([str(py), "-c", "import jobctl, pathlib; print(jobctl.__file__); print(jobctl.count())"],
                           cwd=work, env=env, capture_output=True, text=True, check=True)
    where, count = check.stdout.split()
    assert str(env_dir) in where and count == "1"
