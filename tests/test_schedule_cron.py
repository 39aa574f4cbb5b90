"""`relais cron` (rq's cron over workers/schedule.py) must enqueue jobs our JSON-only workers
can read."""

from __future__ import annotations

import redis
from rq.cron import CronScheduler
from rq.job import Job
from rq.serializers import JSONSerializer

from workers import schedule


def test_cron_enqueues_json_jobs(redis_url: str) -> None:
    connection = redis.Redis.from_url(redis_url)
    scheduler = CronScheduler(connection=connection)
    scheduler.load_config_from_file("workers.schedule")
    registered = {job.func_name for job in scheduler.get_jobs()}
    assert registered == {
        f"{func.__module__}.{func.__name__}" for func, _, _ in schedule.PERIODIC_JOBS
    }
    for cron_job in scheduler.get_jobs():
        job = cron_job.enqueue(connection)
        try:
            # What a worker started with `--serializer json` does before running it.
            fetched = Job.fetch(job.id, connection=connection, serializer=JSONSerializer)
            assert fetched.func_name == cron_job.func_name
        finally:
            job.delete()
