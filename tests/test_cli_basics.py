"""The `jobctl` command as a user runs it: real subprocesses, exit codes, one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import jobctl
from tests.runtime_helpers import cli as run


def test_help_lists_verbs() -> None:
    out = run("--help")
    assert out.returncode == 0
    assert "enqueue" in out.stdout and "db" in out.stdout and "--database" in out.stdout


def test_usage_error_is_one_line_exit_2() -> None:
    out = run("enqueue", "--nope")
    assert out.returncode == 2
    assert out.stderr.count("\n") == 1 and out.stderr.startswith("jobctl: ")
    assert "Traceback" not in out.stderr and "╭" not in out.stderr
    out = run("frobnicate")
    assert out.returncode == 2 and out.stderr.count("\n") == 1


def test_bad_url_exits_69_without_password() -> None:
    for url in ("postgresql://bob:hunter2@127.0.0.1:1/app", "mysql://bob:hunter2@h/app"):
        out = run("db", "migrate", "--database", url)
        assert out.returncode == 69, out.stderr
        assert "hunter2" not in out.stderr and out.stderr.count("\n") == 1
        assert out.stdout == ""


def test_env_url_is_used_and_never_printed(tmp_path: Path) -> None:
    out = run("db", "migrate", env={"JOBCTL_DATABASE_URL": "postgresql://bob:hunter2@127.0.0.1:1/x"})
    assert out.returncode == 69 and "hunter2" not in out.stderr and "bob:***@" in out.stderr


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_migrate_and_enqueue(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> None:
    url = request.getfixturevalue("pg_url" if backend == "postgresql" else "sqlite_url")
    first = run("db", "migrate", "--json", "--database", url)
    assert first.returncode == 0, first.stderr
    from jobctl.store import sqlfiles

    latest = sqlfiles.migrations(f"jobctl.store.{'postgres' if backend == 'postgresql' else 'sqlite'}")[-1][0]
    assert json.loads(first.stdout)["version"] == latest
    again = run("--database", url, "db", "migrate")
    assert again.returncode == 0 and "up to date" in again.stderr

    out = run("enqueue", "tests.jobs_for_tests:Mailer", '["ann@example.com"]', "--priority", "2",
              "--json", "--database", url)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert result["matched"] == 1 and result["changed"] == 1 and result["state"] == "ready"
    jobctl.configure(database_url=url)
    try:
        info = jobctl.get_job(result["ids"][0])
        assert (info.class_path, info.queue, info.priority) == ("tests.jobs_for_tests:Mailer", "mailers", 2)
        assert info.arguments["args"] == ["ann@example.com"]
        kw = run("enqueue", "tests.jobs_for_tests.Echo", '{"n": 1}', "--wait", "5m", "--queue", "q",
                 "--database", url)
        assert kw.returncode == 0 and "scheduled" in kw.stderr
        assert jobctl.count(state="scheduled", queue="q") == 1
    finally:
        jobctl.configure(database_url=None)


@pytest.mark.parametrize(("args", "code", "text"), [
    (("os:system", '["true"]'), 2, "is not a subclass of jobctl.Job"),
    (("nope.mod:Job",), 2, "cannot be imported"),
    (("tests.jobs_for_tests:Echo", "[1,"), 2, "ARGS_JSON: not JSON"),
    (("tests.jobs_for_tests:Echo", "3"), 2, "expected a JSON list or object"),
    (("tests.jobs_for_tests:Echo", "[]", "--wait", "soon"), 2, "--wait: expected a duration"),
])
def test_enqueue_bad_input_changes_nothing(sqlite_url: str, args: tuple[str, ...], code: int, text: str) -> None:
    out = run("enqueue", *args, "--database", sqlite_url)
    assert out.returncode == code, out.stderr
    assert text in out.stderr and out.stderr.count("\n") == 1
    jobctl.configure(database_url=sqlite_url)
    try:
        assert jobctl.count() == 0
    finally:
        jobctl.configure(database_url=None)


def test_debug_shows_traceback() -> None:
    out = run("db", "migrate", "--database", "mysql://x/y", "--debug")
    assert out.returncode == 69 and "Traceback" in out.stderr


def every_verb() -> list[tuple[str, ...]]:
    """Every runnable command's path, `()` for `jobctl` itself: `("db", "migrate")`, `("stats",)`, …"""
    import typer
    import typer.core

    from jobctl.cli import app

    def walk(cmd: typer.core.TyperGroup, path: tuple[str, ...]) -> list[tuple[str, ...]]:
        found = [path]
        ctx = typer.Context(cmd, info_name=path[-1] if path else "jobctl")
        for name in cmd.list_commands(ctx):
            sub = cmd.get_command(ctx, name)
            found += walk(sub, (*path, name)) if isinstance(sub, typer.core.TyperGroup) else [(*path, name)]
        return found

    root = typer.main.get_command(app)
    assert isinstance(root, typer.core.TyperGroup)
    return walk(root, ())


def test_help_speaks_the_users_words_and_shows_flags_as_flags() -> None:
    """No project-internal word ("the seed's") in any help or man page, and a flag is shown without a
    value (`--json`, never `--json <bool>`)."""
    verbs = every_verb()
    assert ("db", "migrate") in verbs and ("stats",) in verbs
    for path in verbs:
        out = run(*path, "--help", env={"COLUMNS": "200"})
        assert out.returncode == 0, (path, out.stderr)
        assert "seed" not in out.stdout.lower(), (path, out.stdout)
        assert "<bool>" not in out.stdout, (path, out.stdout)
    pages = sorted((Path(__file__).resolve().parent.parent / "man").glob("*.1"))
    assert pages
    for page in pages:
        assert "seed" not in page.read_text(encoding="utf-8").lower(), page.name


BAD_INPUT = [
    (("show", str(2**63)), 2, "less than or equal to 9223372036854775807"),
    (("retry", "1", str(2**64)), 2, "less than or equal to 9223372036854775807"),
    (("discard", str(2**63)), 2, "less than or equal to 9223372036854775807"),
    (("jobs", "--after", str(2**63)), 2, "'--after'"),
    (("clear", "--older-than", "99999999999w", "--dry-run"), 2, "--older-than: expected a duration"),
    (("clear", "--older-than", "soon", "--dry-run"), 2, "--older-than: expected a duration"),
    (("enqueue", "tests.jobs_for_tests:Echo", "--wait", "99999999999w"), 2, "--wait: expected a duration"),
    (("enqueue", "tests.jobs_for_tests:Echo", "--queue", ""), 2, "--queue: expects a non-empty string"),
    (("enqueue", "tests.jobs_for_tests:Echo", "--key", ""), 2, "--key: expects a non-empty string"),
    (("enqueue", "tests.jobs_for_tests:Echo", "--priority", str(2**40)), 2, "--priority: expects an integer"),
    (("enqueue", "tests.jobs_for_tests:Echo", '["\\ud800"]'), 1, "lone surrogate"),
]


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
@pytest.mark.parametrize(("args", "code", "text"), BAD_INPUT)
def test_out_of_range_and_malformed_input_is_one_line(backend: str, args: tuple[str, ...], code: int, text: str,
                                                     request: pytest.FixtureRequest) -> None:
    url = request.getfixturevalue("database_url")
    out = run(*args, "--database", url)
    assert (out.returncode, out.stdout) == (code, ""), out.stderr
    assert out.stderr.count("\n") == 1 and text in out.stderr and "Traceback" not in out.stderr
    jobctl.configure(database_url=url)
    try:
        assert jobctl.count() == 0  # nothing changed
    finally:
        jobctl.configure(database_url=None)


def test_arguments_that_are_not_utf8_are_one_line() -> None:
    import os
    import subprocess
    import sys

    done = subprocess.run([sys.executable.encode(), b"-m", b"jobctl.cli", b"enqueue", b"x:Y", b"\xff\xfe"],
                          capture_output=True, env={k: v for k, v in os.environ.items() if not k.startswith("JOBCTL")})
    assert done.returncode == 2 and done.stderr == b"jobctl: argument 3 (\\xff\\xfe) is not valid UTF-8\n"
