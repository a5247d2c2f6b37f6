"""The example app's jobs: thin, they orchestrate and the models do the work. Arguments are ids."""

from __future__ import annotations

from typing import Any

import jobctl
from examples.app.models import Comment, Entity, Webhook, WebhookError


class NotifyRecipientsJob(jobctl.Job):
    """Pattern 1, the explicit form of `comment.notify_recipients_later()`."""

    queue = "default"
    discard_on = (jobctl.RecordNotFound,)  # the comment was deleted: nobody to tell

    def perform(self, comment_id: int) -> None:
        Comment.find(comment_id).notify_recipients_now()


class CalculateMetricsJob(jobctl.Job):
    """Pattern 3: idempotent, with a guard clause. Running it twice gives the same metrics."""

    queue = "default"

    def perform(self, entity_id: int) -> None:
        entity = Entity.find_by(entity_id)
        if entity is None:
            return  # idempotent: ignore if deleted
        self.logger.info("[%s] calculating metrics for entity #%s", type(self).__name__, entity_id)
        entity.calculate_metrics_now()
        self.logger.info("[%s] metrics updated: %.1f (%d submissions)", type(self).__name__,
                         entity.average_score, entity.submissions_count)


class DispatchWebhookJob(jobctl.Job):
    """Pattern 4: an unreliable call, retried with growing waits (3 s, 18 s, 83 s, 258 s); a webhook
    deleted meanwhile is discarded, not failed."""

    queue = "webhooks"
    retry_on = (jobctl.RetryOn(WebhookError, wait="polynomially_longer", attempts=5),)
    discard_on = (jobctl.RecordNotFound,)

    def perform(self, webhook: Webhook, event: dict[str, Any]) -> None:
        webhook.dispatch_now(event)
