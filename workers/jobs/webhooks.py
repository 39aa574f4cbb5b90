"""Webhook jobs: one delivery attempt, the sweep that enqueues what is due, the log's purge."""

from __future__ import annotations

from workers.context import job


@job
def deliver_webhook(agency_id: str, delivery_id: str) -> str:
    """Attempt one webhook delivery of the agency (a retry is enqueued by the sweep when due)."""
    from app.services import webhook_delivery

    return webhook_delivery.deliver(agency_id, delivery_id)


@job
def enqueue_due_webhooks() -> int:
    """Enqueue the webhook deliveries that are due: retries, and what Redis lost."""
    from app.services import webhook_schedule

    return webhook_schedule.enqueue_due()


@job
def purge_old_webhook_events() -> int:
    """Forget webhook events and delivery logs past WEBHOOK_LOG_RETENTION_DAYS."""
    from app.services import webhook_schedule

    return webhook_schedule.purge_old()
