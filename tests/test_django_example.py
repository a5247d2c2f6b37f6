"""examples/django_project on SQLite and PostgreSQL: its own tests (`manage.py test blog`), then what a user
does: migrate, save a post and enqueue tasks, `manage.py jobctl start`, read the results."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from tests.runtime_helpers import ROOT, stop, wait_for

pytest.importorskip("django")
pytestmark = pytest.mark.slow
EXAMPLE = ROOT / "examples" / "django_project"


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A copy of the example project (its SQLite files land there, not in the repository)."""
    copy = tmp_path / "django_project"
    shutil.copytree(EXAMPLE, copy, ignore=shutil.ignore_patterns("*.sqlite3", "__pycache__"))
    return copy


@pytest.fixture
def django_database(backend: str, pg_server: str) -> Iterator[str | None]:
    """DJANGO_DATABASE for the example: None (its SQLite file) or a fresh PostgreSQL database."""
    if backend == "sqlite":
        yield None
        return
    name = f"example_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(pg_server, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    try:
        yield pg_server.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with psycopg.connect(pg_server, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE {name} WITH (FORCE)")
            conn.execute(f"DROP DATABASE IF EXISTS test_{name} WITH (FORCE)")


def _env(database: str | None) -> dict[str, str]:
    import os

    env = {k: v for k, v in os.environ.items() if not k.startswith(("JOBCTL_", "DATABASE_URL", "DJANGO_"))}
    env["PYTHONPATH"] = str(ROOT)
    if database:
        env["DJANGO_DATABASE"] = database
    return env


def manage(project: Path, database: str | None, *args: str) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([sys.executable, "manage.py", *args], cwd=project, env=_env(database),
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done


SHELL = """
import json
from django.db import transaction
from blog.models import Post, Subscriber
from blog.tasks import fetch_feed, word_count
Subscriber.objects.create(email="reader@example.com")
try:
    with transaction.atomic():
        Post.objects.create(title="never", body="rolled back")
        raise RuntimeError
except RuntimeError:
    pass
post = Post.objects.create(title="hello", body="one two three")
ids = {"count": word_count.enqueue(post.pk).id, "feed": fetch_feed.enqueue("https://example.com/rss").id}
print(json.dumps(ids))
"""

RESULTS = """
import json
from blog.models import Notification
from blog.tasks import fetch_feed, word_count
ids = {ids}
count, feed = word_count.get_result(ids["count"]), fetch_feed.get_result(ids["feed"])
print(json.dumps({{"count": [count.status, count.return_value], "feed": [feed.status, feed.return_value, feed.attempts],
                  "notifications": Notification.objects.count()}}))
"""


def test_the_example_project(project: Path, django_database: str | None) -> None:
    tested = manage(project, django_database, "test", "blog", "--noinput")
    assert "Ran 4 tests" in tested.stderr and "OK" in tested.stderr

    migrated = manage(project, django_database, "migrate")
    assert "jobctl: applied 0001_init" in migrated.stdout
    ids = json.loads(manage(project, django_database, "shell", "-c", SHELL).stdout.strip().splitlines()[-1])
    jobs = json.loads(manage(project, django_database, "jobctl", "jobs", "--json").stdout)
    assert sorted(j["class"] for j in jobs) == ["blog.tasks:fetch_feed", "blog.tasks:notify_subscribers",
                                                "blog.tasks:word_count"]  # the rolled-back post left none
    log = project / "worker.log"
    proc = subprocess.Popen([sys.executable, "manage.py", "jobctl", "start"], cwd=project, env=_env(django_database),
                            stdout=open(log, "ab"), stderr=subprocess.STDOUT)
    try:
        def finished() -> bool:
            listed = manage(project, django_database, "jobctl", "jobs", "--json", "--state", "finished").stdout
            return len(json.loads(listed)) == 3

        wait_for(finished, timeout=60, what="the example's tasks to finish")
    finally:
        assert stop(proc) == 0, log.read_text()[-3000:]
    read = manage(project, django_database, "shell", "-c", RESULTS.format(ids=ids)).stdout.strip().splitlines()[-1]
    assert json.loads(read) == {"count": ["SUCCESSFUL", 3],
                                "feed": ["SUCCESSFUL", "fetched https://example.com/rss on attempt 3", 3],
                                "notifications": 1}
