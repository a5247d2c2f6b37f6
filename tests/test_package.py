"""The public API is pinned, `import jobctl` stays light, and the built wheel works on its own."""

from __future__ import annotations

import ast
import os
import re
import shlex
import shutil
import subprocess
import sys
import venv
from pathlib import Path

import pytest

import jobctl
from jobctl.recurring import load_recurring

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()
WHEEL = f"jobctl_queue-{jobctl.__version__}-py3-none-any.whl"
"""The wheel `make dist` builds: the distribution is jobctl-queue ("jobctl" on PyPI is another project)."""


def test_public_api_is_pinned() -> None:
    assert sorted(jobctl.__all__) == sorted([
        "Batch", "BatchInfo", "Chain", "Dependency", "Group", "batch", "chain", "get_batch", "group",
        "ConcurrencyLimit", "ConfigError", "ConfiguredJob", "DatabaseError", "ErrorInfo", "Job", "JobClassError",
        "JobDiscarded", "JobFailed", "JobHandle", "JobInfo", "JobNotFound", "JobTimeout", "JobctlError", "Progress",
        "RecordNotFound", "RetryOn", "SchemaOutdated",
        "SerializationError", "__version__", "configure", "count", "current", "get_job", "later",
        "on_start", "on_stop", "perform_all_later", "register_locator", "using",
    ])
    for name in jobctl.__all__:
        assert hasattr(jobctl, name), name


def test_import_jobctl_is_light() -> None:
    code = ("import sys, jobctl, jobctl.testing; print(sorted(m for m in ('textual', 'typer', 'rich', 'psycopg', "
            "'sqlalchemy', 'django', 'opentelemetry', 'prometheus_client', 'sentry_sdk') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_store_imports_nothing_above_it() -> None:
    code = ("import sys, jobctl.store.postgres, jobctl.store.sqlite; "
            "print([m for m in sys.modules if m.startswith(('jobctl.runtime', 'jobctl.tui', 'jobctl.cli'))])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


PACKAGE = ROOT / "jobctl"
RULES: dict[str, tuple[str, ...]] = {
    # part of jobctl: the jobctl modules it may import (module-level and deferred imports alike)
    "jobctl.records": (),
    "jobctl.errors": (),
    "jobctl.urls": ("jobctl.errors",),
    "jobctl.formatting": (),
    "jobctl.imports": ("jobctl.errors",),
    "jobctl.store": ("jobctl.store", "jobctl.records", "jobctl.errors", "jobctl.urls"),
    "jobctl.schedule": ("jobctl.errors",),
    "jobctl.config": ("jobctl.errors", "jobctl.schedule"),
    "jobctl.operations": ("jobctl.store", "jobctl.records", "jobctl.errors"),
}
FORBIDDEN: dict[str, tuple[str, ...]] = {
    # part of jobctl: the parts it must never import
    "jobctl.runtime": ("jobctl.tui", "jobctl.commands", "jobctl.cli"),
    "jobctl.tui": ("jobctl.runtime", "jobctl.commands", "jobctl.cli"),
    "jobctl.job": ("jobctl.runtime", "jobctl.tui", "jobctl.commands", "jobctl.cli", "jobctl.operations"),
    "jobctl.batches": ("jobctl.runtime", "jobctl.tui", "jobctl.commands", "jobctl.cli", "jobctl.operations"),
    "jobctl.recurring": ("jobctl.store", "jobctl.runtime", "jobctl.tui", "jobctl.commands", "jobctl.cli"),
}
DRIVERS = ("psycopg", "psycopg_pool", "sqlite3")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports() -> dict[str, set[str]]:
    """Every module of the package and what it imports (anywhere in the file, but not under TYPE_CHECKING)."""
    modules = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    found: dict[str, set[str]] = {}
    for name, path in modules.items():
        tree = ast.parse(path.read_text())
        guarded = [node for node in ast.walk(tree)
                   if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)]
        skip = {id(n) for node in guarded for n in ast.walk(node)}
        names: set[str] = set()
        for node in ast.walk(tree):
            if id(node) in skip:
                continue
            if isinstance(node, ast.Import):
                names.update(a.name for a in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                for a in node.names:
                    full = f"{node.module}.{a.name}"
                    names.add(full if full in modules else node.module)
        found[name] = names - {name}
    return found


def _inside(module: str, part: str) -> bool:
    return module == part or module.startswith(part + ".")


def test_import_rules_of_the_layout() -> None:
    """docs/architecture.md's rules: which part may import which, drivers only in the store, no circles."""
    graph = _imports()
    broken = []
    for module, names in graph.items():
        ours = {n for n in names if _inside(n, "jobctl") and n != "jobctl"}
        for part, allowed in RULES.items():
            if _inside(module, part):
                broken += [f"{module} imports {n}" for n in ours if not any(_inside(n, a) for a in allowed)]
        for part, forbidden in FORBIDDEN.items():
            if _inside(module, part):
                broken += [f"{module} imports {n}" for n in ours if any(_inside(n, f) for f in forbidden)]
        if not _inside(module, "jobctl.store"):
            broken += [f"{module} imports the driver {n}" for n in names if n.split(".")[0] in DRIVERS]
    assert broken == []

    jobctl_graph = {m: {n for n in names if n in graph} for m, names in graph.items()}
    circles = []

    def visit(module: str, path: list[str]) -> None:
        for n in jobctl_graph[module]:
            if n in path:
                circles.append(" -> ".join([*path[path.index(n):], n]))
            elif len(path) < 25:
                visit(n, [*path, n])

    for module in jobctl_graph:
        visit(module, [module])
    assert circles == []


@pytest.mark.slow
def test_built_wheel_installs_and_runs(tmp_path: Path) -> None:
    """`make dist`'s wheel in a fresh virtualenv outside the repo: the command, an enqueue, `start --check`,
    the man pages, and `jobctl.testing` without pytest (an extra the wheel does not pull in)."""
    dist = tmp_path / "dist"
    built = subprocess.run([sys.executable, "-m", "build", "--no-isolation", "--outdir", str(dist), str(ROOT)],
                           cwd=tmp_path, capture_output=True, text=True)
    assert built.returncode == 0, built.stdout[-2000:] + built.stderr[-2000:]
    [wheel] = dist.glob("*.whl")
    assert wheel.name == WHEEL
    assert len(list(dist.glob("jobctl_queue-*.tar.gz"))) == 1
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True)
    bin_dir = env_dir / "bin"
    subprocess.run([str(bin_dir / "python"), "-m", "pip", "install", "-q", "-c", str(ROOT / "constraints.txt"),
                    str(wheel)], cwd=tmp_path, check=True, capture_output=True)

    work = tmp_path / "app"
    work.mkdir()
    (work / "myjobs.py").write_text("import jobctl\nclass Hello(jobctl.Job):\n    def perform(self, n): pass\n")
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("JOBCTL_", "DATABASE_URL", "PYTHONPATH", "VIRTUAL_ENV", "MANPATH"))}

    def run(*args: str, **extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(args, cwd=work, env={**env, **extra}, capture_output=True, text=True, timeout=120)

    version = run(str(bin_dir / "jobctl"), "--version")
    assert (version.returncode, version.stdout) == (0, f"jobctl {jobctl.__version__}\n"), version.stderr
    enqueued = run(str(bin_dir / "jobctl"), "enqueue", "myjobs:Hello", "[1]", "--json")
    assert enqueued.returncode == 0, enqueued.stderr
    assert (work / "jobctl.sqlite3").exists()
    check = run(str(bin_dir / "jobctl"), "start", "--check")
    assert check.returncode == 0 and ": ok" in check.stdout + check.stderr, check.stdout + check.stderr

    probe = ("import importlib.util, jobctl, jobctl.testing; "
             "print(jobctl.__file__, importlib.util.find_spec('pytest') is None, jobctl.count())")
    where, no_pytest, count = run(str(bin_dir / "python"), "-c", probe).stdout.split()
    assert where.startswith(str(env_dir)) and no_pytest == "True" and count == "1"

    pages = env_dir / "share" / "man" / "man1"
    assert sorted(p.name for p in pages.glob("*.1")) == sorted(p.name for p in (ROOT / "man").glob("*.1"))
    if shutil.which("man"):
        found = run("man", "-w", "jobctl", MANPATH="", PATH=f"{bin_dir}:{env.get('PATH', '')}")
        assert found.stdout.strip() == str(pages / "jobctl.1"), found.stderr


def test_readme_installs_this_checkout_or_its_wheel() -> None:
    """Every `pip install` in the README names the checkout or the wheel `make dist` builds, never a PyPI name."""
    commands = re.findall(r"pip\s+install\s+([^`#\n]+)", README)
    assert commands
    for command in commands:
        targets = [t for t in shlex.split(command) if not t.startswith("-")]
        assert targets, command
        for target in targets:
            assert target.split("[")[0] in (".", f"dist/{WHEEL}"), f"README: pip install {command.strip()}"


def test_readme_recurring_example_loads_in_the_default_environment(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """The README's recurring.yml, as written, has tasks for JOBCTL_ENV's default (development)."""
    [example] = re.findall(r"Recurring tasks live in `config/recurring.yml`:\n\n```yaml\n(.*?)```", README, re.S)
    path = tmp_path / "recurring.yml"
    path.write_text(example)
    monkeypatch.delenv("JOBCTL_ENV", raising=False)
    assert [task.key for task in load_recurring(path, explicit=True)] == ["deliver_bundled_notifications"]
    assert "`JOBCTL_ENV`, `development` when it is\nnot set" in README


def test_readme_queue_example_loads_in_the_default_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The README's queue.yml, as written, has a section for JOBCTL_ENV's default (development)."""
    from jobctl.config import load_queue_config

    [example] = re.findall(r"`config/queue.yml` has Solid Queue's shape.*?```yaml\n(.*?)```", README, re.S)
    path = tmp_path / "queue.yml"
    path.write_text(example)
    monkeypatch.delenv("JOBCTL_ENV", raising=False)
    config = load_queue_config(path, explicit=True)
    assert config.environment == "development" and config.workers[0].queues == ("*",)
    assert config.imports == ("myapp.jobs",) and config.dispatchers[0].batch_size == 500
