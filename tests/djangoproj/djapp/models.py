from django.db import models

import jobctl


class Event(models.Model):
    """What test tasks did, in order: the worker writes these through Django's ORM."""

    name = models.CharField(max_length=200)
    pid = models.IntegerField(default=0)

    class Meta:
        app_label = "djapp"


class Article(models.Model):
    """Saving one enqueues a task in the same transaction; @jobctl.later works without register_locator."""

    title = models.CharField(max_length=200)

    class Meta:
        app_label = "djapp"

    def save(self, *args: object, **kwargs: object) -> None:
        from .tasks import index_article

        super().save(*args, **kwargs)
        index_article.enqueue(self.pk)

    @jobctl.later
    def archive_now(self) -> str:
        Event.objects.create(name=f"archived {self.title}")
        return self.title
