"""Prometheus metrics: every metric Relais exposes is defined here, with the helpers that
update it, and `/metrics` (app/api/metrics.py) renders them.

Labels are bounded and never name a tenant: no agency, brand, post or endpoint ids, no URL
paths (a route's template instead), so one scrape costs the same whatever the data, and the
metrics tell a reader nothing about any customer. The helpers refuse label values outside
their lists (a programming error, caught by the tests).

**Several processes.** gunicorn runs several API processes and an RQ worker forks one
process per job, and each counts on its own. With `PROMETHEUS_MULTIPROC_DIR` set (`make run`
sets it; production must, to a directory every process of the machine shares, emptied before
they start), each process writes its samples to files there, and `/metrics` adds up the files
(prometheus_client's multiprocess mode). prometheus_client reads the variable when it is
first imported, so it must be in the environment, not only in a config file.

One file per process would mean one per job under RQ: thousands a day, each read by every
scrape. A work horse therefore writes to its worker's job files (`counter_<worker pid>-jobs.db`,
named by `job_process_of`), which the worker's horses share one after another: a worker runs
one job at a time, and each horse reopens the files after the fork, so it appends where the
previous one stopped. The files of a process that died stay: a counter adds its dead processes'
counts, which is what keeps it monotonic. prometheus_client's `mark_process_dead` only cleans
up "live" gauges, of which Relais has none (queue depths are read from Redis at scrape time),
so no exit hook is needed.

Without `PROMETHEUS_MULTIPROC_DIR` (one process: the tests, a single dev server), the samples
stay in memory and `/metrics` shows that process's own.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest, values
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST

log = logging.getLogger(__name__)

CONTENT_TYPE = CONTENT_TYPE_LATEST


def multiprocess_dir() -> str:
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR", "")


# -- which file a process writes to (see the module docstring) -----------------------------------

_job_process: tuple[int, str] | None = None


def _process_identity() -> int | str:
    if _job_process is not None and _job_process[0] == os.getpid():
        return _job_process[1]
    return os.getpid()


def job_process_of(worker_pid: int) -> None:
    """Called in an RQ work horse right after the fork: write to the worker's job files."""
    global _job_process
    _job_process = (os.getpid(), f"{worker_pid}-jobs")


if multiprocess_dir():
    # Before any metric below is made: each value picks its file through this class.
    values.ValueClass = values.MultiProcessValue(process_identifier=_process_identity)


# -- the metrics ----------------------------------------------------------------------------------

REGISTRY = CollectorRegistry(auto_describe=True)

NETWORKS = ("mastodon", "bluesky", "linkedin", "x", "facebook", "instagram")

# What became of one publish attempt of one delivery:
# - published: the network has the post (first try, a retry, or found by the reconciler);
# - retry: a transient failure (429, 5xx, a connection error before sending); tried again later;
# - failed: a permanent failure (refused content, dead credentials, retries exhausted);
# - unknown: the outcome is not known (a timeout after sending); the reconciler will ask;
# - cancelled: the post was cancelled before the delivery went out.
DELIVERY_OUTCOMES = ("published", "retry", "failed", "unknown", "cancelled")

DELIVERIES = Counter(
    "relais_deliveries",
    "Publish attempts of deliveries, by network and outcome.",
    ["network", "outcome"],
    registry=REGISTRY,
)

# Seconds from a delivery's scheduled time to the network accepting it. The buckets are fine
# around one second (the target is p99 <= 1 s) and coarse beyond a minute.
LATENESS_BUCKETS = (0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0, 30.0, 60.0, 300.0, 3600.0)
PUBLISH_LATENESS = Histogram(
    "relais_publish_lateness_seconds",
    "Seconds between a delivery's scheduled time and its publication.",
    ["network"],
    buckets=LATENESS_BUCKETS,
    registry=REGISTRY,
)

# Why an outgoing webhook delivery failed (never the endpoint: its URL is the agency's).
WEBHOOK_FAILURE_REASONS = (
    "timeout",  # no answer in time
    "connection",  # refused, reset, DNS, TLS
    "blocked",  # the outbound guard refused the target (private or loopback address)
    "http_4xx",  # a 4xx other than 410
    "gone",  # 410: the endpoint is disabled
    "http_5xx",
    "http_other",  # 1xx/3xx: only 2xx counts
)
WEBHOOK_FAILURES = Counter(
    "relais_webhook_delivery_failures",
    "Outgoing webhook deliveries that failed, by reason.",
    ["reason"],
    registry=REGISTRY,
)

ACCOUNT_REVOCATION_OUTCOMES = ("revoked", "retry", "given_up")
ACCOUNT_REVOCATIONS = Counter(
    "relais_account_revocations",
    "Revocations at the networks of offboarded brands' accounts, by network and outcome.",
    ["network", "outcome"],
    registry=REGISTRY,
)

MEDIA_ORPHANS_DELETED = Counter(
    "relais_media_orphans_deleted",
    "Media files deleted from storage because no database row points to them.",
    ["storage"],
    registry=REGISTRY,
)

JOBS = Counter(
    "relais_jobs",
    "RQ jobs run, by job function and outcome (succeeded or failed).",
    ["job", "outcome"],
    registry=REGISTRY,
)
JOB_DURATION = Histogram(
    "relais_job_duration_seconds",
    "Time spent in a job's body, by job function.",
    ["job"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0),
    registry=REGISTRY,
)

HTTP_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
HTTP_REQUESTS = Counter(
    "relais_http_requests",
    "API requests, by method, route template and status.",
    ["method", "route", "status"],
    registry=REGISTRY,
)
HTTP_DURATION = Histogram(
    "relais_http_request_duration_seconds",
    "API request durations, by method and route template.",
    ["method", "route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
    registry=REGISTRY,
)


# -- what the pipeline calls ----------------------------------------------------------------------


def _network(network: str) -> str:
    if network not in NETWORKS:
        raise ValueError(f"not a network: {network!r}")
    return network


def _one_of(value: str, allowed: tuple[str, ...], what: str) -> str:
    if value not in allowed:
        raise ValueError(f"{what} must be one of {', '.join(allowed)}; got {value!r}")
    return value


def delivery_attempted(network: str, outcome: str) -> None:
    """Count one publish attempt that did not publish: `retry`, `failed`, `unknown` or
    `cancelled` (a publication goes through `delivery_published`, with its lateness)."""
    if outcome == "published":
        raise ValueError("count a publication with delivery_published(network, lateness)")
    DELIVERIES.labels(_network(network), _one_of(outcome, DELIVERY_OUTCOMES, "outcome")).inc()


def delivery_published(network: str, lateness_seconds: float) -> None:
    """A delivery reached the network `lateness_seconds` after its scheduled time (or the
    reconciler found it there): counts it as published and observes its lateness (early
    counts as on time)."""
    DELIVERIES.labels(_network(network), "published").inc()
    PUBLISH_LATENESS.labels(network).observe(max(0.0, lateness_seconds))


def webhook_failed(reason: str) -> None:
    """Count one failed webhook delivery (one of WEBHOOK_FAILURE_REASONS)."""
    WEBHOOK_FAILURES.labels(_one_of(reason, WEBHOOK_FAILURE_REASONS, "reason")).inc()


def webhook_failure_reason(status_code: int) -> str:
    """The reason for an HTTP answer other than 2xx."""
    if status_code == 410:
        return "gone"
    if 400 <= status_code < 500:
        return "http_4xx"
    if status_code >= 500:
        return "http_5xx"
    return "http_other"


def account_revocation(network: str, outcome: str) -> None:
    ACCOUNT_REVOCATIONS.labels(
        _network(network), _one_of(outcome, ACCOUNT_REVOCATION_OUTCOMES, "outcome")
    ).inc()


def media_orphans_deleted(storage: str, count: int) -> None:
    if count:
        MEDIA_ORPHANS_DELETED.labels(storage).inc(count)


def job_ran(job: str, succeeded: bool, seconds: float) -> None:
    JOBS.labels(job, "succeeded" if succeeded else "failed").inc()
    JOB_DURATION.labels(job).observe(seconds)


# The labelled series of each (method, route, status) met so far: `labels()` costs more than
# the increment itself, on every request. Bounded like the labels themselves.
_http_series: dict[tuple[str, str, int], tuple[Any, Any]] = {}


def http_request(method: str, route: str, status: int, seconds: float) -> None:
    method = method if method in HTTP_METHODS else "other"
    series = _http_series.get((method, route, status))
    if series is None:
        series = _http_series[(method, route, status)] = (
            HTTP_REQUESTS.labels(method, route, str(status)),
            HTTP_DURATION.labels(method, route),
        )
    series[0].inc()
    series[1].observe(seconds)


# -- queue depths, read at scrape time ------------------------------------------------------------


class QueueDepths:
    """Jobs per RQ queue and state, read from Redis when scraped: one round trip of four
    commands per queue, whatever the number of jobs."""

    def __init__(self, connection: Any, queue_names: tuple[str, ...]) -> None:
        self.connection = connection
        self.queue_names = queue_names

    def collect(self) -> Iterator[Metric]:
        from rq import Queue
        from rq.registry import FailedJobRegistry, ScheduledJobRegistry, StartedJobRegistry

        states = (
            ("queued", "llen", Queue.redis_queue_namespace_prefix + "{0}"),
            ("started", "zcard", StartedJobRegistry.key_template),
            ("scheduled", "zcard", ScheduledJobRegistry.key_template),
            ("failed", "zcard", FailedJobRegistry.key_template),
        )
        pipeline = self.connection.pipeline(transaction=False)
        for name in self.queue_names:
            for _state, command, template in states:
                getattr(pipeline, command)(template.format(name))
        try:
            counts = iter(pipeline.execute())
        except Exception as exc:  # noqa: BLE001 - Redis down: the other metrics still answer
            log.warning("queue depths not read: %s", exc)
            return
        family = GaugeMetricFamily(
            "relais_queue_jobs",
            "RQ jobs per queue: waiting (queued), running (started), waiting for their time "
            "(scheduled), failed.",
            labels=["queue", "state"],
        )
        for name in self.queue_names:
            for state, _command, _template in states:
                family.add_metric([name, state], float(next(counts)))
        yield family


class _Forward:
    """The in-process registry, as a collector of a per-scrape registry."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry

    def collect(self) -> Iterator[Metric]:
        yield from self.registry.collect()


def render(redis_connection: Any | None) -> bytes:
    """The text exposition of every metric: this machine's processes (or this process), and the
    queue depths when Redis is configured."""
    registry = CollectorRegistry(auto_describe=False)
    if multiprocess_dir():
        from prometheus_client.multiprocess import MultiProcessCollector

        MultiProcessCollector(registry)
    else:
        registry.register(_Forward(REGISTRY))
    if redis_connection is not None:
        from app.queue import ALL_QUEUES

        registry.register(QueueDepths(redis_connection, ALL_QUEUES))
    return generate_latest(registry)


def prepare_directory() -> None:
    """Make PROMETHEUS_MULTIPROC_DIR if it is missing (a fresh tmpfs): the first sample a process
    writes would otherwise fail there, inside a request or a job."""
    path = multiprocess_dir()
    if path:
        os.makedirs(path, exist_ok=True)


def clear_directory(path: str) -> None:
    """Empty a multiprocess directory before the processes that share it start (`make run`):
    files of a previous run would add their counts to this one's."""
    os.makedirs(path, exist_ok=True)
    for name in os.listdir(path):
        if name.endswith(".db"):
            os.unlink(os.path.join(path, name))
