"""The second bench virtualenv (`.bench-venv312`): the peers that need Python >= 3.12 (oban, chancy), pinned.

oban 0.7 requires Python >= 3.12 (chancy runs on 3.11 too, but shares this venv so both newer peers run
alike). The first Python >= 3.12 found (python3.14/3.13/3.12 on PATH, then pyenv's versions, as the
Makefile's PYTHON312 looks) builds it once; it is reused while its stamp matches. jobctl is not installed
in it: the peers' scripts (bench/peers/bench_oban.py, bench_chancy.py) need only their library and psycopg.
"""

from __future__ import annotations

import glob
import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV = ROOT / ".bench-venv312"
STAMP = VENV / ".bench-stamp"
# Pinned at the versions of the reference scripts (../shared/bench-peers); psycopg from constraints.txt.
REQUIREMENTS = ["oban==0.7.0", "chancy==0.26.0", "psycopg[binary]", "psycopg-pool"]


def python() -> Path:
    return VENV / "bin" / "python"


def find_python312() -> str | None:
    """A Python >= 3.12 interpreter on this machine, or None."""
    candidates = [shutil.which(name) for name in ("python3.14", "python3.13", "python3.12")]
    candidates += sorted(glob.glob(os.path.expanduser("~/.pyenv/versions/3.1[2-9]*/bin/python3")))
    for path in candidates:
        if not path:
            continue
        ok = subprocess.run([path, "-c", "import sys; assert sys.version_info >= (3, 12)"],
                            capture_output=True, env={**os.environ, "PYENV_VERSION": "3.12.1"})
        if ok.returncode == 0:
            return path
    return None


def _stamp_text(base: str) -> str:
    digest = hashlib.sha256((ROOT / "constraints.txt").read_bytes()).hexdigest()[:16]
    return " ".join(REQUIREMENTS) + f" constraints={digest} base={base}\n"


def ensure(log=sys.stderr) -> tuple[Path | None, str]:
    """(the venv's python, "") or (None, why the peers that need Python >= 3.12 are skipped)."""
    if STAMP.exists() and python().exists() and STAMP.read_text().startswith(" ".join(REQUIREMENTS) + " "):
        return python(), ""
    base = find_python312()
    if base is None:
        return None, "no Python >= 3.12 on this machine (oban needs it; looked on PATH and in ~/.pyenv/versions)"
    print(f"bench: creating {VENV} with {base} (oban, chancy)", file=log, flush=True)
    try:
        subprocess.run([base, "-m", "venv", "--clear", str(VENV)], check=True,
                       env={**os.environ, "PYENV_VERSION": "3.12.1"})
        pip = [str(python()), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
        subprocess.run([*pip, "-c", str(ROOT / "constraints.txt"), *REQUIREMENTS], check=True)
    except (subprocess.CalledProcessError, OSError) as exc:
        return None, f"could not build {VENV.name} with {base}: {exc}"
    STAMP.write_text(_stamp_text(base))
    return python(), ""


if __name__ == "__main__":
    print(ensure())
