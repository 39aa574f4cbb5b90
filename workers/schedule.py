"""Periodic jobs as data, read by `rq cron workers/schedule.py`. Exactly one `rq cron` runs."""

from rq import cron

from app.queue import DEFAULT
from workers.jobs import maintenance

PERIODIC_JOBS = [
    # (job function, queue, seconds between runs)
    (maintenance.purge_expired_records, DEFAULT, 3600),
]

for func, queue_name, interval in PERIODIC_JOBS:
    cron.register(func, queue_name, interval=interval)
