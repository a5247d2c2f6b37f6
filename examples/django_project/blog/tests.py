"""The example's own tests (`python manage.py test blog`): enqueue in the model's transaction, run the tasks
inline as a worker would (jobctl.testing), read their results through Django's API."""

from django.db import transaction
from django.test import TransactionTestCase

import jobctl
from jobctl.contrib.django import configure_jobctl
from jobctl.testing import TestQueue

from .models import FeedFetch, Notification, Post, Subscriber
from .tasks import fetch_feed, notify_subscribers, word_count

try:
    from django.tasks import TaskResultStatus
except ImportError:  # the django-tasks backport
    from django_tasks.base import TaskResultStatus  # type: ignore[no-redef]


def run_enqueued_tasks() -> None:
    TestQueue("").perform_enqueued_jobs()


class BlogTasks(TransactionTestCase):
    """TransactionTestCase: a job is visible to the worker (here, jobctl's own connection) once committed."""

    def tearDown(self) -> None:
        # jobctl's own connection (the inline worker's) would keep Django from dropping a PostgreSQL test
        # database: close it; the next enqueue opens another.
        jobctl.configure(database_url=None)

    def setUp(self) -> None:
        configure_jobctl()  # jobctl.count() and the helpers below: on the test database
        # Django's flush empties its own tables between tests, not jobctl's.
        store = jobctl.database.get_store()
        store.delete_jobs([j.id for j in store.list_jobs(limit=10_000)])
        Subscriber.objects.create(email="a@example.com")
        Subscriber.objects.create(email="b@example.com")

    def test_saving_a_post_enqueues_its_notifications_in_the_same_transaction(self) -> None:
        with self.assertRaises(RuntimeError), transaction.atomic():
            Post.objects.create(title="draft")
            raise RuntimeError("rolled back")
        self.assertEqual((Post.objects.count(), jobctl.count()), (0, 0))

        post = Post.objects.create(title="hello", body="one two three")
        [job] = jobctl.database.get_store().list_jobs()
        self.assertEqual(job.class_path, "blog.tasks:notify_subscribers")
        run_enqueued_tasks()
        self.assertEqual(Notification.objects.filter(post=post).count(), 2)
        result = notify_subscribers.get_result(str(job.id))
        self.assertEqual((result.status, result.return_value), (TaskResultStatus.SUCCESSFUL, 2))

    def test_a_task_returns_a_value(self) -> None:
        post = Post.objects.create(title="counted", body="one two three four")
        result = word_count.enqueue(post.pk)
        run_enqueued_tasks()
        result.refresh()
        self.assertEqual((result.status, result.return_value), (TaskResultStatus.SUCCESSFUL, 4))
        self.assertEqual(jobctl.get_job(int(result.id)).priority, -10)  # Django's 10 runs before 0

    def test_a_task_retries(self) -> None:
        result = fetch_feed.enqueue("https://example.com/feed.xml")
        run_enqueued_tasks()
        result.refresh()
        self.assertEqual(result.status, TaskResultStatus.SUCCESSFUL)
        self.assertEqual(result.return_value, "fetched https://example.com/feed.xml on attempt 3")
        self.assertEqual([e.exception_class for e in result.errors], [ConnectionError, ConnectionError])
        self.assertEqual(list(FeedFetch.objects.values_list("attempt", flat=True)), [1, 2, 3])

    def test_a_model_travels_as_a_reference(self) -> None:
        post = Post.objects.create(title="old")
        handle = post.archive_later()
        self.assertEqual(jobctl.get_job(handle.id).arguments["args"][0],
                         {"__jobctl__": "record", "class": "blog.models:Post", "id": post.pk})
        run_enqueued_tasks()
        post.refresh_from_db()
        self.assertEqual(post.title, "[archived] old")
