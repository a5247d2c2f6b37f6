"""Tasks of the example: Django's @task, run by `python manage.py jobctl start`."""

try:
    from django.tasks import TaskContext, task
except ImportError:  # Django 4.2–5.2: the django-tasks backport
    from django_tasks.base import TaskContext, task  # type: ignore[no-redef]

import jobctl

from .models import FeedFetch, Post


@task()
def notify_subscribers(post_id: int) -> int:
    """Enqueued by Post.save() inside its transaction; returns how many were notified."""
    return Post.objects.get(pk=post_id).notify_subscribers_now()


@task(priority=10)
def word_count(post_id: int) -> int:
    """A task that returns a value: `word_count.get_result(result_id).return_value`."""
    return Post.objects.get(pk=post_id).word_count()


@task(queue_name="feeds", takes_context=True,
      retry_on=[jobctl.RetryOn(ConnectionError, wait=0.2, attempts=3)])
def fetch_feed(context: TaskContext, url: str) -> str:
    """A task that retries: the first two attempts fail as a flaky network would."""
    FeedFetch.objects.create(url=url, attempt=context.attempt)
    if context.attempt < 3:
        raise ConnectionError(f"{url}: connection reset (attempt {context.attempt})")
    return f"fetched {url} on attempt {context.attempt}"
