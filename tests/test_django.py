"""jobctl.contrib.django in this process, on SQLite and PostgreSQL: the cases of Django's own tasks test suite
(tests/tasks/ in Django, tests/ in django-tasks) ported to JobctlBackend, then what jobctl adds: Django's
transaction, DATABASES as jobctl's URL, models as references, signals and per-job connection hygiene."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Iterator
from typing import Any

import pytest

from tests.django_helpers import bound, close_everywhere, fresh_alias, run_enqueued  # isort: skip (sets Django up)

from django.core.exceptions import ImproperlyConfigured
from django.db import connections, transaction
from django.test.utils import override_settings
from django.utils import timezone

import jobctl
from jobctl.contrib.django import JobctlBackend
from jobctl.contrib.django.compat import (
    FRAMEWORK,
    TASK_MAX_PRIORITY,
    TASK_MIN_PRIORITY,
    InvalidTask,
    TaskResultDoesNotExist,
    TaskResultMismatch,
    TaskResultStatus,
    task,
    task_backends,
    task_enqueued,
    task_finished,
    task_started,
)
from jobctl.contrib.django.databases import driver_connection
from tests.djangoproj.djapp import tasks as test_tasks
from tests.djangoproj.djapp.models import Article, Event
from tests.jobs_for_tests import Echo
from tests.runtime_helpers import scalar

LOGGER = "django.tasks" if FRAMEWORK == "django.tasks" else "django_tasks"


@pytest.fixture
def alias(backend: str, database_url: str) -> Iterator[str]:
    yield from fresh_alias(backend, database_url)


# -- validation (Django: test_tasks.py) ------------------------------------------------------------

def test_using_correct_backend(alias: str) -> None:
    backend = task_backends[alias]
    assert isinstance(backend, JobctlBackend)
    assert (backend.supports_defer, backend.supports_priority, backend.supports_async_task,
            backend.supports_get_result) == (True, True, True, True)
    assert backend.database == alias


def test_invalid_priority(alias: str) -> None:
    message = f"priority must be a whole number between {TASK_MIN_PRIORITY} and {TASK_MAX_PRIORITY}."
    for bad in (-101, 101, 3.1):
        with pytest.raises(InvalidTask, match=message.replace(".", r"\.")):
            bound(test_tasks.noop_task, alias).using(priority=bad)
    for good in (100, -100, 0):
        bound(test_tasks.noop_task, alias).using(priority=good)


def test_naive_datetime(alias: str) -> None:
    with pytest.raises(InvalidTask, match="run_after must be an aware datetime"):
        bound(test_tasks.noop_task, alias).using(run_after=dt.datetime.now())


def test_unknown_queue_name(alias: str) -> None:
    with pytest.raises(InvalidTask, match="Queue 'queue-2' is not valid for backend"):
        bound(test_tasks.noop_task, alias).using(queue_name="queue-2")


def test_enqueue_with_invalid_argument(alias: str, database_url: str) -> None:
    with pytest.raises(TypeError, match="Unsupported type"):
        bound(test_tasks.noop_task, alias).enqueue(dt.datetime.now())
    with pytest.raises(TypeError, match="Unsupported type"):
        asyncio.run(bound(test_tasks.noop_task, alias).aenqueue(object()))
    assert scalar(database_url, "SELECT count(*) FROM jobctl_jobs") == 0


def test_validate_on_enqueue(alias: str, database_url: str) -> None:
    on_queue = bound(test_tasks.noop_task, alias).using(queue_name="queue-1")
    restricted = {alias: {"BACKEND": "jobctl.contrib.django.JobctlBackend", "QUEUES": ["default"],
                          "OPTIONS": {"DATABASE": alias}}}
    with override_settings(TASKS=restricted):
        with pytest.raises(InvalidTask, match="Queue 'queue-1' is not valid for backend"):
            on_queue.enqueue()
        with pytest.raises(InvalidTask, match="Queue 'queue-1' is not valid for backend"):
            asyncio.run(on_queue.aenqueue())
    assert scalar(database_url, "SELECT count(*) FROM jobctl_jobs") == 0


def test_invalid_function_and_context_argument(alias: str) -> None:
    def local() -> None: ...

    with pytest.raises(InvalidTask, match="Task function must be defined at a module level"):
        task(backend=alias)(local)
    with pytest.raises(InvalidTask, match="Task takes context but does not have a first argument of 'context'"):
        task(takes_context=True, backend=alias)(test_tasks.calculate_meaning_of_life.func)


def test_unknown_options_and_bad_retry_rules_are_refused(alias: str) -> None:
    with pytest.raises(ImproperlyConfigured, match="unknown 'QUEUE_YML'"):
        JobctlBackend("x", {"OPTIONS": {"QUEUE_YML": "config/queue.yml"}})
    with pytest.raises(ImproperlyConfigured, match="POOLER"):
        JobctlBackend("x", {"OPTIONS": {"POOLER": "statement"}})
    with pytest.raises(InvalidTask, match=r"retry_on expects jobctl\.RetryOn"):
        task(retry_on=[ValueError], backend=alias)(test_tasks.calculate_meaning_of_life.func)


# -- results (Django: test_tasks.py; django-tasks: the database backend's tests) --------------------

def test_enqueue_task(alias: str, database_url: str) -> None:
    for t in (test_tasks.noop_task, test_tasks.noop_task_async):
        result = bound(t, alias).enqueue(1, two=3)
        assert result.status == TaskResultStatus.READY
        assert result.is_finished is False
        assert (result.started_at, result.finished_at, result.enqueued_at is not None) == (None, None, True)
        with pytest.raises(ValueError, match="Task has not finished yet"):
            result.return_value  # noqa: B018
        assert result.task == bound(t, alias)
        assert (result.args, result.kwargs, result.backend) == ([1], {"two": 3}, alias)
    assert scalar(database_url, "SELECT count(*) FROM jobctl_jobs WHERE state = 'ready'") == 2


def test_enqueue_task_async(alias: str) -> None:
    result = asyncio.run(bound(test_tasks.noop_task_async, alias).aenqueue())
    assert result.status == TaskResultStatus.READY
    assert (result.args, result.kwargs) == ([], {})


def _same(a: Any, b: Any) -> None:
    """Two TaskResults of one job agree (enqueue's enqueued_at is this host's clock, the row's the database's)."""
    assert (a.id, a.task, a.status, a.args, a.kwargs, a.backend, a.errors, a.worker_ids) == \
        (b.id, b.task, b.status, b.args, b.kwargs, b.backend, b.errors, b.worker_ids)
    assert abs(a.enqueued_at - b.enqueued_at) < dt.timedelta(seconds=5)


def test_get_result(alias: str) -> None:
    t = bound(test_tasks.noop_task, alias)
    result = task_backends[alias].enqueue(t, (), {})
    _same(t.get_result(result.id), result)
    _same(asyncio.run(t.aget_result(result.id)), result)
    _same(task_backends[alias].get_result(result.id), result)


def test_get_missing_result(alias: str) -> None:
    for missing in ("123", "not-an-id", ""):
        with pytest.raises(TaskResultDoesNotExist):
            bound(test_tasks.noop_task, alias).get_result(missing)
    with pytest.raises(TaskResultDoesNotExist):
        asyncio.run(bound(test_tasks.noop_task, alias).aget_result("123"))


def test_get_incorrect_result(alias: str) -> None:
    result = task_backends[alias].enqueue(bound(test_tasks.noop_task_async, alias), (), {})
    with pytest.raises(TaskResultMismatch, match="Task does not match"):
        bound(test_tasks.noop_task, alias).get_result(result.id)
    with pytest.raises(TaskResultMismatch, match="Task does not match"):
        asyncio.run(bound(test_tasks.noop_task, alias).aget_result(result.id))


def test_a_plain_jobctl_job_is_no_task_result(alias: str) -> None:
    bound(test_tasks.noop_task, alias).enqueue()  # configures jobctl for this database
    handle = Echo.perform_later(1)
    with pytest.raises(TaskResultDoesNotExist, match="not a Django task"):
        task_backends[alias].get_result(str(handle.id))


def test_refresh_result(alias: str) -> None:
    result = bound(test_tasks.calculate_meaning_of_life, alias).enqueue()
    run_enqueued()
    assert result.status == TaskResultStatus.READY
    result.refresh()
    assert result.status == TaskResultStatus.SUCCESSFUL
    assert result.return_value == 42
    assert result.started_at is not None and result.finished_at is not None
    assert result.enqueued_at <= result.started_at <= result.finished_at
    assert result.last_attempted_at == result.started_at and result.attempts == 1
    other = bound(test_tasks.calculate_meaning_of_life, alias).enqueue()
    asyncio.run(other.arefresh())
    assert other.status == TaskResultStatus.READY


# -- execution (Django: test_immediate_backend.py), through jobctl's executor ------------------------

@pytest.mark.parametrize(("t", "exception", "message"), [
    (test_tasks.failing_task_value_error, ValueError, "This task failed due to ValueError"),
    (test_tasks.failing_task_system_exit, SystemExit, "This task failed due to SystemExit"),
], ids=["ValueError", "SystemExit"])
def test_catches_exception(alias: str, caplog: pytest.LogCaptureFixture, t: Any, exception: type, message: str) -> None:
    result = bound(t, alias).enqueue()
    with caplog.at_level(logging.ERROR, logger=LOGGER):
        run_enqueued()
    logged = [r for r in caplog.records if r.name == LOGGER and r.levelno == logging.ERROR]
    assert len(logged) == 1 and result.id in logged[0].getMessage() and "state=FAILED" in logged[0].getMessage()
    assert logged[0].exc_info is not None and message in str(logged[0].exc_info[1])
    result.refresh()
    assert result.status == TaskResultStatus.FAILED
    with pytest.raises(ValueError, match="Task failed"):
        result.return_value  # noqa: B018
    assert result.is_finished is True
    assert result.enqueued_at <= result.started_at <= result.finished_at
    assert len(result.errors) == 1 and result.errors[0].exception_class is exception
    assert result.errors[0].traceback.endswith(f"{exception.__name__}: {message}\n")
    assert (result.args, result.kwargs) == ([], {})


def test_complex_exception(alias: str) -> None:
    result = bound(test_tasks.complex_exception, alias).enqueue()
    run_enqueued()
    result.refresh()
    assert result.status == TaskResultStatus.FAILED
    assert result._return_value is None
    assert result.errors[0].exception_class is ValueError
    assert 'ValueError(ValueError("This task failed"))' in result.errors[0].traceback


def test_complex_return_value(alias: str) -> None:
    result = bound(test_tasks.complex_return_value, alias).enqueue()
    run_enqueued()
    result.refresh()
    assert result.status == TaskResultStatus.FAILED
    assert result._return_value is None
    assert result.errors[0].exception_class is TypeError
    assert "Unsupported type" in result.errors[0].traceback


def test_result(alias: str) -> None:
    meaning = task_backends[alias].enqueue(bound(test_tasks.calculate_meaning_of_life, alias), [], {})
    structure = bound(test_tasks.returns_structure, alias).enqueue(n=3)
    run_enqueued()
    assert task_backends[alias].get_result(meaning.id).return_value == 42
    assert bound(test_tasks.returns_structure, alias).get_result(structure.id).return_value == \
        {"n": 3, "squares": [0, 1, 4], "nested": {"ok": True}}
    assert jobctl.get_job(int(meaning.id)).result == 42  # jobctl's own view of it


def test_takes_context(alias: str) -> None:
    result = bound(test_tasks.get_task_id, alias).enqueue()
    run_enqueued()
    result.refresh()
    assert result.return_value == result.id


def test_context(alias: str) -> None:
    result = bound(test_tasks.test_context, alias).enqueue(1)
    run_enqueued()
    result.refresh()
    assert result.status == TaskResultStatus.SUCCESSFUL


def test_context_attempt_counts_retries(alias: str) -> None:
    result = bound(test_tasks.flaky, alias).enqueue()
    run_enqueued()
    result.refresh()
    assert (result.status, result.return_value, result.attempts) == (TaskResultStatus.SUCCESSFUL, 3, 3)
    assert [e.exception_class for e in result.errors] == [ConnectionError, ConnectionError]
    assert list(Event.objects.using(alias).values_list("name", flat=True)) == [
        "flaky attempt 1", "flaky attempt 2", "flaky attempt 3"]


def test_enqueue_logs(alias: str, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG, logger=LOGGER):
        result = bound(test_tasks.noop_task, alias).enqueue()
        run_enqueued()
    lines = [r.getMessage() for r in caplog.records if r.name == LOGGER]
    assert len(lines) == 3, lines
    assert "enqueued" in lines[0] and result.id in lines[0]
    assert "state=RUNNING" in lines[1] and result.id in lines[1]
    assert "state=SUCCESSFUL" in lines[2] and result.id in lines[2]
    assert not any("NoneType" in line for line in lines)


def test_failed_logs(alias: str, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG, logger=LOGGER):
        result = bound(test_tasks.failing_task_value_error, alias).enqueue()
        run_enqueued()
    lines = [r.getMessage() for r in caplog.records if r.name == LOGGER]
    assert len(lines) == 3
    assert "state=RUNNING" in lines[1] and result.id in lines[1]
    assert "state=FAILED" in lines[2] and result.id in lines[2]


def test_signals_carry_the_run(alias: str) -> None:
    seen: list[tuple[str, Any, Any, int]] = []

    def receiver(signal: Any, sender: Any, task_result: Any, **kwargs: Any) -> None:
        seen.append((signal_names[signal], sender, task_result.status, task_result.attempts))

    signal_names = {task_enqueued: "enqueued", task_started: "started", task_finished: "finished"}
    for signal in signal_names:
        signal.connect(receiver)
    try:
        bound(test_tasks.flaky, alias).enqueue()
        run_enqueued()
    finally:
        for signal in signal_names:
            signal.disconnect(receiver)
    R, F, S = TaskResultStatus.RUNNING, TaskResultStatus.FAILED, TaskResultStatus.SUCCESSFUL
    assert seen == [("enqueued", JobctlBackend, TaskResultStatus.READY, 0),
                    ("started", JobctlBackend, R, 1), ("finished", JobctlBackend, F, 1),
                    ("started", JobctlBackend, R, 2), ("finished", JobctlBackend, F, 2),
                    ("started", JobctlBackend, R, 3), ("finished", JobctlBackend, S, 3)]


def test_each_job_runs_between_close_old_connections(alias: str) -> None:
    opened: list[bool] = []
    bound(test_tasks.record, alias).enqueue("x")
    connections[alias].close()

    def before(**kwargs: Any) -> None:
        opened.append(connections[alias].connection is not None)

    task_started.connect(before)
    try:
        run_enqueued()
    finally:
        task_started.disconnect(before)
    # CONN_MAX_AGE is 0: the job's connection is closed once it ends, as after a request.
    assert connections[alias].connection is None
    assert Event.objects.using(alias).get().name == "x"


# -- what jobctl adds: Django's transaction, DATABASES, run_after, priority ------------------------

def _jobs_seen_elsewhere(url: str) -> int:
    return int(scalar(url, "SELECT count(*) FROM jobctl_jobs"))


def test_rollback_leaves_no_job_and_commit_one(alias: str, database_url: str, backend: str) -> None:
    t = bound(test_tasks.record, alias)
    with pytest.raises(RuntimeError), transaction.atomic(using=alias):
        t.enqueue("rolled back")
        raise RuntimeError
    assert _jobs_seen_elsewhere(database_url) == 0
    with transaction.atomic(using=alias):
        result = t.enqueue("committed")
        assert t.get_result(result.id).status == TaskResultStatus.READY  # seen by its own transaction
        if backend == "postgresql":  # SQLite: another connection would wait on the write lock, not read
            assert _jobs_seen_elsewhere(database_url) == 0
    assert _jobs_seen_elsewhere(database_url) == 1
    run_enqueued()
    assert list(Event.objects.using(alias).values_list("name", flat=True)) == ["committed"]


def test_save_enqueues_inside_the_models_transaction(sqlite_url: str) -> None:
    """Article.save() enqueues on the default task backend, Django's "default" alias (SQLite here; the example
    project's tests do it on PostgreSQL too)."""
    from jobctl.store import open_store
    from tests.django_helpers import point

    database_url = sqlite_url
    open_store(jobctl.urls.parse(database_url)).migrate()
    point("default", database_url)
    with connections["default"].schema_editor() as editor:
        editor.create_model(Event)
        editor.create_model(Article)
    try:
        with pytest.raises(RuntimeError), transaction.atomic():
            Article.objects.create(title="never")
            raise RuntimeError
        assert (Article.objects.count(), _jobs_seen_elsewhere(database_url)) == (0, 0)
        with transaction.atomic():
            article = Article.objects.create(title="hello")
        assert _jobs_seen_elsewhere(database_url) == 1
        run_enqueued()
        assert Event.objects.get().name == "indexed hello"
        [row] = jobctl.database.get_store().list_jobs()
        assert (row.class_path, row.result, row.arguments["args"]) == (
            "tests.djangoproj.djapp.tasks:index_article", "hello", [article.pk])
    finally:
        close_everywhere()
        jobctl.configure(database_url=None)


def test_run_after_and_priority(alias: str, database_url: str) -> None:
    when = timezone.now() + dt.timedelta(hours=1)
    later = bound(test_tasks.noop_task, alias).using(run_after=when, priority=10).enqueue()
    urgent = bound(test_tasks.noop_task, alias).using(priority=100, queue_name="low").enqueue()
    info = jobctl.get_job(int(later.id))
    assert (info.state, info.priority) == ("scheduled", -10)  # Django's higher-first is jobctl's lower-first
    assert abs(info.scheduled_at - when) < dt.timedelta(seconds=1)
    fetched = task_backends[alias].get_result(later.id)
    assert fetched.status == TaskResultStatus.READY
    assert fetched.task.priority == 10 and abs(fetched.task.run_after - when) < dt.timedelta(seconds=1)
    assert (jobctl.get_job(int(urgent.id)).priority, jobctl.get_job(int(urgent.id)).queue) == (-100, "low")
    assert task_backends[alias].get_result(urgent.id).task.queue_name == "low"


def test_database_url_comes_from_databases(alias: str, database_url: str) -> None:
    from jobctl import urls
    from jobctl.contrib.django import databases

    built = urls.parse(databases.database_url(alias))
    assert built.target == urls.parse(database_url).target or built.backend == "postgresql"
    bound(test_tasks.noop_task, alias).enqueue()
    assert jobctl.count() == 1  # jobctl's own connection reads the database Django wrote to


def test_postgres_urls_from_settings() -> None:
    from jobctl import urls
    from jobctl.contrib.django import databases

    settings = {"ENGINE": "django.db.backends.postgresql", "NAME": "app db", "USER": "me", "PASSWORD": "p@ss:/w",
                "HOST": "/var/run/postgresql", "PORT": "5433",
                "OPTIONS": {"sslmode": "require", "options": "-c search_path=app", "pool": True,
                            "server_side_binding": True}}
    url = databases._postgres_url(settings)
    assert url == ("postgresql://me:p%40ss%3A%2Fw@:5433/app%20db?host=%2Fvar%2Frun%2Fpostgresql&sslmode=require"
                   "&options=-c%20search_path%3Dapp")
    assert "p@ss" not in urls.parse(url).redacted and "p%40ss" not in urls.parse(url).redacted
    assert databases._postgres_url({"NAME": "x", "HOST": "::1"}) == "postgresql://[::1]/x"


def test_in_memory_sqlite_is_refused(alias: str) -> None:
    from jobctl.contrib.django import databases

    for name in (":memory:", "file:memorydb_default?mode=memory&cache=shared", ""):
        with pytest.raises(ImproperlyConfigured, match="not an in-memory database"):
            databases._sqlite_file("default", name)


def test_psycopg2_is_refused_in_one_line(alias: str, monkeypatch: pytest.MonkeyPatch) -> None:
    class Psycopg2Connection:  # what Django's connection holds when it runs on psycopg2 (not installed here)
        pass

    Psycopg2Connection.__module__ = "psycopg2.extensions"
    conn = connections[alias]
    monkeypatch.setattr(conn, "ensure_connection", lambda: None)
    monkeypatch.setattr(conn, "connection", Psycopg2Connection())
    with pytest.raises(ImproperlyConfigured) as raised:
        driver_connection(alias)
    assert "psycopg 3" in str(raised.value) and "\n" not in str(raised.value)
    monkeypatch.undo()


def test_system_check_reports_an_unusable_database(alias: str) -> None:
    assert list(task_backends[alias].check()) == []
    conn = connections[alias]
    saved = conn.settings_dict["NAME"]
    if conn.vendor == "sqlite":
        conn.settings_dict["NAME"] = ":memory:"
        try:
            [error] = task_backends[alias].check()
            assert error.id == "jobctl.E001" and "in-memory" in error.msg
        finally:
            conn.settings_dict["NAME"] = saved


# -- Django models as references ------------------------------------------------------------------

class ArchiveJob(jobctl.Job):
    discard_on = (jobctl.RecordNotFound,)

    def perform(self, article: Article) -> str:
        return article.archive_now()


def test_models_travel_as_references_without_register_locator(alias: str) -> None:
    bound(test_tasks.noop_task, alias).enqueue()  # jobctl now on this database
    article = Article(title="kept")
    models_default = Article.objects.db_manager(alias)
    article = models_default.create(title="kept") if alias == "default" else _create_without_signal(alias, "kept")
    with jobctl.using(driver_connection(alias)):
        handle = ArchiveJob.perform_later(article)
        later = article.archive_later()
    stored = jobctl.get_job(handle.id).arguments["args"][0]
    assert stored == {"__jobctl__": "record", "class": "tests.djangoproj.djapp.models:Article", "id": article.pk}
    assert jobctl.get_job(later.id).class_path == "tests.djangoproj.djapp.models:Article.archive_now"
    run_enqueued()
    assert jobctl.get_job(handle.id).result == "kept" and jobctl.get_job(later.id).state == "finished"
    gone = _create_without_signal(alias, "gone")
    with jobctl.using(driver_connection(alias)):
        doomed = ArchiveJob.perform_later(gone)
    Article.objects.using(alias).filter(pk=gone.pk).delete()
    run_enqueued()
    info = jobctl.get_job(doomed.id)
    assert info.state == "discarded" and info.errors[0].error_class == "jobctl.errors.RecordNotFound"
    with pytest.raises(jobctl.SerializationError, match="unsaved"):
        ArchiveJob.perform_later(Article(title="unsaved"))


def _create_without_signal(alias: str, title: str) -> Article:
    """An Article row on `alias` without Article.save()'s enqueue (which goes to the default backend)."""
    article = Article(title=title)
    super(Article, article).save(using=alias)
    return article


def test_post_migrate_creates_jobctl_tables(tmp_path: Any) -> None:
    from django.core.management import call_command

    from tests.django_helpers import point

    url = f"sqlite:///{tmp_path / 'fresh.sqlite3'}"
    point("default", url)
    try:
        call_command("migrate", database="default", run_syncdb=True, verbosity=0)
        assert scalar(url, "SELECT count(*) FROM jobctl_jobs") == 0
        assert scalar(url, "SELECT count(*) FROM djapp_article") == 0
    finally:
        close_everywhere()
