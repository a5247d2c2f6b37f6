"""The example app's jobs: thin, they orchestrate and the models do the work. Arguments are ids."""

from __future__ import annotations

from typing import Any

import jobctl
from examples.app.models import Bundle, Comment, Entity, Export, User, Webhook, WebhookError


class NotifyRecipientsJob(jobctl.Job):
    """Pattern 1, the explicit form of `comment.notify_recipients_later()`."""

    queue = "default"
    discard_on = (jobctl.RecordNotFound,)  # the comment was deleted: nobody to tell

    def perform(self, comment_id: int) -> None:
        Comment.find(comment_id).notify_recipients_now()


class DeliverBundledNotificationsJob(jobctl.Job):
    """Pattern 2: batch processing, run by the recurring task in `config/recurring.yml`
    (`Bundle.deliver_all_later`). Idempotent: notifications already bundled are not delivered again."""

    queue = "default"

    def perform(self) -> None:
        delivered = Bundle.deliver_all_now()
        self.logger.info("[%s] delivered %d bundles", type(self).__name__, delivered)


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


class ExportDataJob(jobctl.Job):
    """Pattern 5: a long export that reports its progress (`jobctl show ID`, `jobctl top`). The export ends
    completed with its CSV file, or failed with the error, and the job fails with it (an unknown
    export type is a ValueError, the Rails guide's ArgumentError)."""

    queue = "exports"

    def perform(self, user_id: int, export_type: str) -> None:
        user = User.find(user_id)
        export = Export.start(user, export_type, job_id=self.job_id)  # a retry reuses its export
        path = export.generate_now(progress=self.progress)
        self.logger.info("[%s] export completed: %d records in %s", type(self).__name__, export.rows_count, path)
