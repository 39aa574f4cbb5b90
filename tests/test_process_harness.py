"""The harness the fault tests stand on (tests/processes.py) does what it says: a crash leaves
nothing of the worker running (its work horse included), a killed horse leaves the worker
working, and a restarted worker takes jobs again."""

from __future__ import annotations

import psutil
import pytest
from rq import Queue
from rq.job import Job, JobStatus
from rq.serializers import JSONSerializer

from app.queue import DEFAULT
from tests.processes import RelaisProcesses, process_env, wait_until

pytestmark = pytest.mark.slow

# A job that runs long enough to be killed in the middle: any importable callable will do.
SLEEP = "time.sleep"


@pytest.fixture
def processes(app_config, tmp_path):
    with RelaisProcesses(process_env(app_config, tmp_path), tmp_path) as started:
        yield started


@pytest.fixture
def queue(processes):
    queue = Queue(DEFAULT, connection=processes.redis, serializer=JSONSerializer)
    queue.empty()
    yield queue
    queue.empty()


def _status(job: Job) -> JobStatus | None:
    job.refresh()
    return job.get_status()


def test_a_crash_kills_the_worker_its_horse_and_its_scheduler(processes, queue):
    worker = processes.start_worker()
    processes.wait_until_ready(worker)
    job = queue.enqueue(SLEEP, 60)
    assert processes.wait_until_busy(worker, 60)
    family = worker.descendants()
    horse = worker.horse()
    assert horse is not None and horse.pid in {p.pid for p in family}

    processes.crash(worker)

    assert not worker.alive
    assert not [p for p in family if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
    # Nobody was left to say how it ended. RQ marks a job started a moment after it takes it
    # off the queue (the dispatcher counts on both cases): a crash in between leaves it queued.
    assert _status(job) in (JobStatus.STARTED, JobStatus.QUEUED)


def test_a_killed_horse_fails_its_job_and_the_worker_takes_the_next(processes, queue):
    worker = processes.start_worker()
    processes.wait_until_ready(worker)
    long_job = queue.enqueue(SLEEP, 60)
    assert processes.wait_until_busy(worker, 60)

    assert processes.kill_horse(worker)
    short_job = queue.enqueue(SLEEP, 0)

    wait_until(lambda: _status(short_job) == JobStatus.FINISHED, "the next job done", 60)
    assert worker.alive
    assert _status(long_job) == JobStatus.FAILED


def test_a_restarted_worker_registers_under_a_new_name_and_works(processes, queue):
    worker = processes.start_worker()
    processes.wait_until_ready(worker)
    processes.crash(worker)

    again = processes.restart(worker)
    processes.wait_until_ready(again)
    assert (worker.name[-2:], again.name[-2:]) == (".1", ".2")
    assert again.name.rsplit(".", 1)[0] == worker.name.rsplit(".", 1)[0]
    job = queue.enqueue(SLEEP, 0)
    wait_until(lambda: _status(job) == JobStatus.FINISHED, "the job done", 60)
