"""Periodic jobs as data, read by `relais cron` (workers/cron.py: one leads at a time)."""

from rq import Queue, cron
from rq.serializers import JSONSerializer

from app.config import Config
from app.queue import DEFAULT, DISPATCH, MAIL, WEBHOOKS
from app.startup import refuse_unsafe_environment
from workers.jobs import accounts, mail, maintenance, publishing, webhooks

# The API's refusals, checked on the environment: a cron with the wrong configuration says so
# at once. It builds no app and touches no database (it only enqueues), so that is all it needs.
refuse_unsafe_environment("relais cron")

PERIODIC_JOBS = [
    # (job function, queue, seconds between runs)
    # The publishing dispatcher, on a queue of its own that workers take first
    # (app/services/dispatcher.py).
    (publishing.dispatch_due_deliveries, DISPATCH, Config.PUBLISH_DISPATCH_INTERVAL_SECONDS),
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

# Jobs that run every few seconds must not pile up while no worker runs (a thousand identical
# dispatcher runs after a restart), nor keep a result or a failure in Redis for long: one run
# does what all of them would, so one waiting longer than a few intervals is dropped.
_FREQUENT = 10

for func, queue_name, interval in PERIODIC_JOBS:
    options = {}
    if interval < _FREQUENT:
        options = {"ttl": _FREQUENT * interval, "result_ttl": 0, "failure_ttl": 3600}
    cron.register(func, queue_name, interval=interval, **options)
