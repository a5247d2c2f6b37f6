"""The bench virtualenv (`.bench-venv`): jobctl from this repo plus the peers, pinned.

Created on first use and reused while its stamp matches REQUIREMENTS and constraints.txt.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV = ROOT / ".bench-venv"
STAMP = VENV / ".bench-stamp"
# Peers at the versions of the reference measurements (../shared/bench-peers); uvloop is what
# PgQueuer's CLI runs on; psutil for RSS; py-spy for profiling a worker (BENCH_PROFILE=1).
REQUIREMENTS = ["procrastinate==3.10.0", "pgqueuer==1.6.0", "asyncpg", "uvloop", "psutil", "py-spy"]


def python() -> Path:
    return VENV / "bin" / "python"


def _stamp_text() -> str:
    digest = hashlib.sha256((ROOT / "constraints.txt").read_bytes()).hexdigest()[:16]
    return " ".join(REQUIREMENTS) + f" constraints={digest}\n"


def ensure(log=sys.stderr) -> Path:
    """The bench venv's python, creating or updating the venv when needed."""
    if STAMP.exists() and STAMP.read_text() == _stamp_text() and python().exists():
        return python()
    print(f"bench: creating {VENV} (procrastinate, pgqueuer, jobctl from the repo)", file=log, flush=True)
    if not python().exists():
        venv.EnvBuilder(with_pip=True, clear=True).create(VENV)
    pip = [str(python()), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    subprocess.run([*pip, "--upgrade", "pip"], check=True)
    subprocess.run([*pip, "-c", str(ROOT / "constraints.txt"), *REQUIREMENTS, "-e", str(ROOT)], check=True)
    STAMP.write_text(_stamp_text())
    return python()


if __name__ == "__main__":
    print(ensure())
