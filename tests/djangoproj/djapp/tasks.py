"""Tasks of Django's own test suite (tests/tasks/tasks.py), and a few for jobctl's worker tests."""

import os
import time
from typing import Any

import jobctl
from jobctl.contrib.django.compat import TaskContext, task

from .models import Event


@task()
def noop_task(*args: Any, **kwargs: Any) -> None:
    return None


@task
def noop_task_from_bare_decorator(*args: Any, **kwargs: Any) -> None:
    return None


@task()
async def noop_task_async(*args: Any, **kwargs: Any) -> None:
    return None


@task()
def calculate_meaning_of_life() -> int:
    return 42


@task()
def failing_task_value_error() -> None:
    raise ValueError("This task failed due to ValueError")


@task()
def failing_task_system_exit() -> None:
    raise SystemExit("This task failed due to SystemExit")


@task()
def complex_exception() -> None:
    raise ValueError(ValueError("This task failed"))


@task()
def complex_return_value() -> Any:
    # Return something which isn't JSON serializable nor picklable.
    return lambda: True


@task()
def returns_structure(n: int) -> dict[str, Any]:
    return {"n": n, "squares": [i * i for i in range(n)], "nested": {"ok": True}}


@task(takes_context=True)
def get_task_id(context: TaskContext) -> str:
    return str(context.task_result.id)


@task(takes_context=True)
def test_context(context: TaskContext, attempt: int) -> None:
    assert isinstance(context, TaskContext)
    assert context.attempt == attempt


@task(takes_context=True, retry_on=[jobctl.RetryOn(ConnectionError, wait=0, attempts=3)])
def flaky(context: TaskContext) -> int:
    Event.objects.create(name=f"flaky attempt {context.attempt}", pid=os.getpid())
    if context.attempt < 3:
        raise ConnectionError(f"attempt {context.attempt}")
    return context.attempt


@task()
def record(name: str) -> str:
    Event.objects.create(name=name, pid=os.getpid())
    return name


@task()
def sleep_then_record(name: str, seconds: float) -> None:
    Event.objects.create(name=f"start {name}", pid=os.getpid())
    time.sleep(seconds)
    Event.objects.create(name=f"end {name}", pid=os.getpid())


@task()
def index_article(article_id: int) -> str:
    from .models import Article

    article = Article.objects.get(pk=article_id)
    Event.objects.create(name=f"indexed {article.title}")
    return article.title


@task()
def wait_for_file(name: str, path: str) -> str:
    """Record a start, then wait (at most a minute) until `path` exists: a task a test can kill mid-run."""
    Event.objects.create(name=f"start {name}", pid=os.getpid())
    deadline = time.monotonic() + 60
    while not os.path.exists(path) and time.monotonic() < deadline:
        time.sleep(0.02)
    Event.objects.create(name=f"end {name}", pid=os.getpid())
    return name
