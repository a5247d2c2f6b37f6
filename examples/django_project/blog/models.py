"""Models do the work; tasks (blog/tasks.py) are thin calls into them."""

from django.db import models, transaction

import jobctl


class Post(models.Model):
    title = models.CharField(max_length=200)
    body = models.TextField(default="")

    def save(self, *args: object, **kwargs: object) -> None:
        from .tasks import notify_subscribers

        # The row and its job commit together, or neither does (the job runs on Django's connection).
        with transaction.atomic():
            super().save(*args, **kwargs)
            notify_subscribers.enqueue(self.pk)

    def notify_subscribers_now(self) -> int:
        """Write one notification per subscriber; how many."""
        subscribers = list(Subscriber.objects.all())
        Notification.objects.bulk_create(Notification(post=self, subscriber=s) for s in subscribers)
        return len(subscribers)

    def word_count(self) -> int:
        return len(self.body.split())

    @jobctl.later  # archive_later(): a jobctl job holding a reference to this post, no register_locator
    def archive_now(self) -> str:
        self.title = f"[archived] {self.title}"
        models.Model.save(self, update_fields=["title"])  # not Post.save: no new notifications
        return self.title


class Subscriber(models.Model):
    email = models.EmailField(unique=True)


class Notification(models.Model):
    post = models.ForeignKey(Post, on_delete=models.CASCADE)
    subscriber = models.ForeignKey(Subscriber, on_delete=models.CASCADE)


class FeedFetch(models.Model):
    """One attempt of fetch_feed (the example's flaky network)."""

    url = models.URLField()
    attempt = models.IntegerField()
