"""Periodic jobs as data, read by `relais cron` (workers/cron.py: one leads at a time)."""

from rq import Queue, cron
from rq.serializers import JSONSerializer

from app.queue import DEFAULT, MAIL, WEBHOOKS
from app.startup import refuse_unsafe_environment
from workers.jobs import accounts, mail, maintenance, webhooks

# The API's refusals, checked on the environment: a cron with the wrong configuration says so
# at once. It builds no app and touches no database (it only enqueues), so that is all it needs.
refuse_unsafe_environment("relais cron")

PERIODIC_JOBS = [
    # (job function, queue, seconds between runs)
    (maintenance.purge_expired_records, DEFAULT, 3600),
    (accounts.refresh_expiring_tokens, DEFAULT, 900),
    (mail.enqueue_stalled_mail, MAIL, 300),
    (accounts.enqueue_stalled_revocations, DEFAULT, 300),
    (maintenance.delete_orphaned_media_files, DEFAULT, 600),
    # Webhook retries are due at their time to the minute: the sweep is how they are enqueued.
    (webhooks.enqueue_due_webhooks, WEBHOOKS, 60),
    (webhooks.purge_old_webhook_events, DEFAULT, 3600),
]


class _JSONQueue(Queue):
    """rq's cron enqueues through a plain `Queue` (pickle), whatever `--serializer` says, and
    our workers read JSON only: give the cron process JSON queues. Only `rq cron` loads this."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("serializer", JSONSerializer)
        super().__init__(*args, **kwargs)


cron.Queue = _JSONQueue  # type: ignore[misc]

for func, queue_name, interval in PERIODIC_JOBS:
    cron.register(func, queue_name, interval=interval)
