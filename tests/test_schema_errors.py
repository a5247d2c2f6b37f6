"""A PostgreSQL database without jobctl's schema, or with an older one: every verb and the library say so
in one line naming `jobctl db migrate` (with the versions found and needed), exit 1, change nothing."""

from __future__ import annotations

import subprocess
import sys

import psycopg
import pytest

import jobctl
from jobctl import urls
from jobctl.store import open_store, sqlfiles
from tests.runtime_helpers import ROOT, env_for

LATEST = sqlfiles.migrations("jobctl.store.postgres")[-1][0]
VERBS = (
    ("stats",), ("stats", "--json"), ("jobs",), ("show", "1"), ("recurring",), ("processes",), ("retry", "1"),
    ("retry", "--all", "--yes"), ("discard", "1"), ("clear", "--yes"), ("pause", "mail"), ("resume", "mail"),
    ("enqueue", "tests.jobs_for_tests:Echo", "[1]"), ("top",), ("start",),
)


def run_all(url: str) -> list[subprocess.CompletedProcess[str]]:
    """Every verb at once, as separate `jobctl` processes with no terminal."""
    procs = [subprocess.Popen([sys.executable, "-m", "jobctl.cli", *verb], cwd=ROOT, env=env_for(url),
                              stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for verb in VERBS]
    done = []
    for p in procs:
        out, err = p.communicate(timeout=60)
        done.append(subprocess.CompletedProcess(p.args, p.returncode, out, err))
    return done


def assert_refused(results: list[subprocess.CompletedProcess[str]], found: str) -> None:
    for verb, r in zip(VERBS, results, strict=True):
        lines = r.stderr.splitlines()
        assert (r.returncode, r.stdout) == (1, ""), (verb, r.stderr)
        assert len(lines) == 1 and "Traceback" not in r.stderr, (verb, r.stderr)
        assert f"{found}; this jobctl needs schema {LATEST}: run `jobctl db migrate`" in lines[0], (verb, lines[0])


def tables(url: str) -> list[str]:
    with psycopg.connect(urls.parse(url).target) as conn:
        return [r[0] for r in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = current_schema() "
                                           "ORDER BY 1")]


def test_every_verb_on_a_database_without_the_schema(pg_url: str) -> None:
    assert_refused(run_all(pg_url), "has no jobctl schema")
    assert tables(pg_url) == []  # nothing was created behind the operator's back


def test_every_verb_on_an_older_schema(pg_url: str) -> None:
    store = open_store(urls.parse(pg_url))
    store.migrate()
    store.close()
    with psycopg.connect(urls.parse(pg_url).target, autocommit=True) as conn:
        conn.execute("DELETE FROM jobctl_migrations WHERE version = %s", (LATEST,))
        before = conn.execute("SELECT count(*) FROM jobctl_jobs").fetchone()
    assert_refused(run_all(pg_url), f"has jobctl schema {LATEST - 1}")
    with psycopg.connect(urls.parse(pg_url).target) as conn:
        assert conn.execute("SELECT count(*) FROM jobctl_jobs").fetchone() == before


def test_the_library_raises_the_same_line(pg_url: str) -> None:
    from tests.jobs_for_tests import Echo

    jobctl.configure(database_url=pg_url)
    try:
        for call in (lambda: Echo.perform_later(1), lambda: jobctl.perform_all_later([Echo(1)]),
                     lambda: jobctl.count(), lambda: jobctl.get_job(1)):
            with pytest.raises(jobctl.SchemaOutdated) as err:
                call()
            assert str(err.value).endswith(f"has no jobctl schema; this jobctl needs schema {LATEST}: "
                                           "run `jobctl db migrate`")
            assert urls.parse(pg_url).redacted in str(err.value)
    finally:
        jobctl.configure(database_url=None)
    assert tables(pg_url) == []


def test_db_migrate_then_works(pg_url: str) -> None:
    env = env_for(pg_url)
    done = subprocess.run([sys.executable, "-m", "jobctl.cli", "db", "migrate"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    stats = subprocess.run([sys.executable, "-m", "jobctl.cli", "stats", "--json"], cwd=ROOT, env=env,
                           capture_output=True, text=True, timeout=60)
    assert stats.returncode == 0 and '"states"' in stats.stdout
