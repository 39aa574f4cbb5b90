"""The processes, for real: `relais worker` (queues in priority order, JSON logs carrying each
job's id, metrics from forked jobs in a bounded number of files), gunicorn adding up its
processes' metrics and the worker's at /metrics, and `relais cron` leading alone: a second
one stands by and takes over when the first stops."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis
from prometheus_client import CollectorRegistry
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.parser import text_string_to_metric_families
from rq import Queue
from rq.cron import get_cron_job_history_key, get_cron_job_ids
from rq.job import Job
from rq.serializers import JSONSerializer

from app.queue import ALL_QUEUES
from workers import cron as relais_cron
from workers import schedule

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
GOOD_SECRET = "Vq3-7bX_kP9zR2mL8wN4tY6uH1jC5sD0fG"
JOB = "workers.jobs.maintenance.purge_expired_records"
# Generous: each process imports the app on a busy machine.
START_SECONDS = 120

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def _env(database, redis_url: str, tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "PYTHONPATH": str(ROOT),
        "RELAIS_ENV": "development",
        "SECRET_KEY": GOOD_SECRET,
        "DATABASE_URL": database.app_url,
        "REDIS_URL": redis_url,
        "MEDIA_ROOT": str(tmp_path / "media"),
        "MAIL_DIR": str(tmp_path / "mail"),
    }
    env.update(extra)
    return env


def _key(name: str, **labels: str) -> tuple[str, tuple[tuple[str, str], ...]]:
    return (name, tuple(sorted(labels.items())))


def _aggregated(path: Path) -> Samples:
    """What /metrics shows from a multiprocess directory."""
    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=str(path))
    return {
        _key(s.name, **s.labels): s.value for family in registry.collect() for s in family.samples
    }


def _wait_for(check: Callable[[], bool], what: str, seconds: float = START_SECONDS) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.2)
    raise AssertionError(f"{what} did not happen within {seconds}s")


@pytest.fixture
def connection(redis_url: str) -> Iterator[redis.Redis]:
    connection = redis.Redis.from_url(redis_url)
    queues = [Queue(n, connection=connection, serializer=JSONSerializer) for n in ALL_QUEUES]
    for queue in queues:
        queue.empty()
    yield connection
    for queue in queues:
        queue.empty()
    connection.close()


# -- relais worker -------------------------------------------------------------------------------


def test_the_worker_takes_urgent_queues_first_logs_job_ids_and_keeps_metric_files_few(
    database, redis_url, connection, tmp_path
):
    metrics_dir = tmp_path / "metrics"
    metrics_dir.mkdir()
    jobs: dict[str, list[Job]] = {}
    # Enqueued least urgent first: the worker must still take them most urgent first.
    for name in ("reports", "default", "mail"):
        queue = Queue(name, connection=connection, serializer=JSONSerializer)
        jobs[name] = [queue.enqueue(JOB) for _ in range(2)]
    env = _env(
        database,
        redis_url,
        tmp_path,
        LOG_FORMAT="json",
        PROMETHEUS_MULTIPROC_DIR=str(metrics_dir),
    )
    run = subprocess.run(
        [str(BIN / "relais"), "worker", "--burst"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=START_SECONDS,
    )
    assert run.returncode == 0, run.stderr[-3000:]

    finished = {
        name: [Job.fetch(j.id, connection=connection, serializer=JSONSerializer) for j in group]
        for name, group in jobs.items()
    }
    assert all(j.get_status().value == "finished" for group in finished.values() for j in group)
    assert max(j.ended_at for j in finished["mail"]) <= min(
        j.started_at for j in finished["default"]
    )
    assert max(j.ended_at for j in finished["default"]) <= min(
        j.started_at for j in finished["reports"]
    )

    # Every line is one JSON object; the lines logged while a job runs (rq's, in the forked
    # job) carry its id and name.
    entries = [json.loads(line) for line in run.stderr.splitlines() if line.strip()]
    for job in (j for group in jobs.values() for j in group):
        about = [e for e in entries if e.get("job_id") == job.id]
        assert any("Job OK" in e["message"] for e in about), job.id
        assert all(e["job"] == JOB and e["pid"] != os.getpid() for e in about)

    # Six forked jobs, one worker: the jobs share the worker's files, not one each.
    files = sorted(p.name for p in metrics_dir.iterdir())
    assert files and all(name.endswith("-jobs.db") for name in files), files
    assert len(files) <= 2, files  # a counter file and a histogram file
    samples = _aggregated(metrics_dir)
    assert samples[_key("relais_jobs_total", job=JOB, outcome="succeeded")] == 6
    assert samples[_key("relais_job_duration_seconds_count", job=JOB)] == 6


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read().decode()
    except OSError:
        return 0, ""


def test_gunicorn_adds_up_its_processes_and_the_workers_metrics(
    database, redis_url, connection, tmp_path
):
    metrics_dir = tmp_path / "metrics"
    metrics_dir.mkdir()
    env = _env(database, redis_url, tmp_path, PROMETHEUS_MULTIPROC_DIR=str(metrics_dir))
    Queue("default", connection=connection, serializer=JSONSerializer).enqueue(JOB)
    worker = subprocess.run(
        [str(BIN / "relais"), "worker", "--burst"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=START_SECONDS,
    )
    assert worker.returncode == 0, worker.stderr[-3000:]

    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    server = subprocess.Popen(
        [str(BIN / "gunicorn"), "--preload", "--workers", "2", "--bind", f"127.0.0.1:{port}",
         "app.wsgi:app"],
        env=env, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        start_new_session=True,
    )  # fmt: skip
    try:
        _wait_for(lambda: _get(f"{base}/healthz")[0] == 200, "gunicorn answering")
        for _ in range(29):
            assert _get(f"{base}/healthz")[0] == 200
        status, text = _get(f"{base}/metrics")
        assert status == 200
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
    samples = {
        _key(s.name, **s.labels): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }
    # Every /healthz, whichever process answered it; and the job the worker ran.
    healthz = _key("relais_http_requests_total", method="GET", route="/healthz", status="200")
    assert samples[healthz] == 30
    assert samples[_key("relais_jobs_total", job=JOB, outcome="succeeded")] == 1
    # gunicorn's processes wrote files of their own (the master, which only forks, none).
    web_files = [p.name for p in metrics_dir.iterdir() if not p.name.endswith("-jobs.db")]
    assert web_files and str(server.pid) not in " ".join(web_files)


# -- relais cron ---------------------------------------------------------------------------------


@pytest.fixture
def cron_keys(connection: redis.Redis) -> Iterator[list[str]]:
    names = [f"{func.__module__}.{func.__name__}" for func, _, _ in schedule.PERIODIC_JOBS]
    keys = [get_cron_job_history_key(name) for name in names] + [relais_cron.LOCK_KEY]
    connection.delete(*keys)
    yield names
    connection.delete(*keys)


def test_a_second_cron_stands_by_and_takes_over_when_the_first_stops(
    database, redis_url, connection, cron_keys, tmp_path
):
    env = _env(database, redis_url, tmp_path)
    logs = [tmp_path / "cron-1.log", tmp_path / "cron-2.log"]
    crons = [
        subprocess.Popen(
            [str(BIN / "relais"), "cron"],
            env=env,
            cwd=tmp_path,
            stdout=subprocess.DEVNULL,
            stderr=log.open("w"),
            start_new_session=True,
        )  # fmt: skip
        for log in logs
    ]

    def said(index: int, words: str) -> bool:
        return words in logs[index].read_text()

    # The jobs that run once in the time this test watches: the dispatcher, every second,
    # would be counted several times even with one leader.
    slow = [
        name
        for (_, _, interval), name in zip(schedule.PERIODIC_JOBS, cron_keys, strict=True)
        if interval >= 60
    ]
    try:
        _wait_for(lambda: any(said(i, " leads") for i in (0, 1)), "a cron leading")
        leader = 0 if said(0, " leads") else 1
        standby = 1 - leader
        _wait_for(lambda: said(standby, "stands by"), "the other standing by")
        _wait_for(
            lambda: all(len(get_cron_job_ids(n, connection)) >= 1 for n in cron_keys),
            "the periodic jobs enqueued",
        )
        time.sleep(relais_cron.STANDBY_POLL_SECONDS + 1)
        # Each periodic job enqueued once, by the leader alone.
        assert [len(get_cron_job_ids(n, connection)) for n in slow] == [1] * len(slow)
        assert not said(standby, " leads")

        crons[leader].send_signal(signal.SIGTERM)
        crons[leader].wait(timeout=30)
        _wait_for(lambda: said(standby, " leads"), "the standby taking over", seconds=30)
        _wait_for(
            lambda: all(len(get_cron_job_ids(n, connection)) == 2 for n in slow),
            "the new leader enqueueing",
            seconds=30,
        )
    finally:
        for process in crons:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
                process.wait(timeout=30)


def test_a_leader_that_lost_the_lock_stands_by(connection, cron_keys):
    first = relais_cron.SingleCronScheduler(connection)
    second = relais_cron.SingleCronScheduler(connection)
    assert first.hold_lock() and not second.hold_lock()
    assert first.hold_lock()  # renewing
    connection.delete(relais_cron.LOCK_KEY)  # expired while the leader was paused
    assert second.hold_lock()
    assert not first.hold_lock() and not first.leading


def test_the_cron_waits_for_redis_to_come_back(connection, cron_keys, monkeypatch):
    from redis.exceptions import ConnectionError as RedisConnectionError
    from rq.exceptions import StopRequested

    scheduler = relais_cron.SingleCronScheduler(connection)
    monkeypatch.setattr(scheduler, "_install_signal_handlers", lambda: None)
    answers = iter([RedisConnectionError("Connection refused")])
    real_hold_lock = scheduler.hold_lock

    def hold_lock() -> bool:
        failure = next(answers, None)
        if failure is not None:
            raise failure
        return real_hold_lock()

    pauses: list[float] = []

    def sleep(seconds: float) -> None:
        pauses.append(seconds)
        if len(pauses) == 2:
            assert scheduler.leading and connection.exists(relais_cron.LOCK_KEY)
            raise StopRequested

    monkeypatch.setattr(scheduler, "hold_lock", hold_lock)
    monkeypatch.setattr(relais_cron.time, "sleep", sleep)
    scheduler.start()  # returns on StopRequested, as on SIGTERM
    assert pauses[0] == relais_cron.STANDBY_POLL_SECONDS  # waited, then led
    assert not connection.exists(relais_cron.LOCK_KEY)  # released on the way out
