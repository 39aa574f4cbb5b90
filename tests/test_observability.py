"""Structured logs and /metrics, in process: what a log line carries (request id, tenant ids,
never a token from a path), both formats, and what /metrics exposes, to whom, with which
labels (route templates, never ids or tenants)."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest
from prometheus_client.parser import text_string_to_metric_families

from app import create_app, logs, metrics, queue
from app.extensions import api
from tests.helpers import assert_problem


@pytest.fixture
def log_lines() -> Iterator[io.StringIO]:
    """The JSON lines every logger writes during the test, as the production handler writes them."""
    lines = io.StringIO()
    handler = logging.StreamHandler(lines)
    handler.addFilter(logs.ContextFilter())
    handler.setFormatter(logs.JSONFormatter())
    root = logging.getLogger()
    root.addHandler(handler)
    yield lines
    root.removeHandler(handler)


def _entries(lines: io.StringIO) -> list[dict]:
    return [json.loads(line) for line in lines.getvalue().splitlines()]


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


# -- logs ----------------------------------------------------------------------------------------


def test_a_request_logs_its_id_tenant_and_the_ids_in_its_path(client, make_agency, log_lines):
    owner = make_agency(brands=1)
    brand_id = owner.brands[0]
    response = client.get(
        f"/v1/brands/{brand_id}", headers={**owner.headers, "X-Request-Id": "req-123"}
    )
    assert response.status_code == 200
    [access] = [e for e in _entries(log_lines) if e.get("request_id") == "req-123"]
    assert access["logger"] == "relais.access"
    assert access["agency_id"] == owner.agency_id and access["brand_id"] == brand_id
    assert access["route"] == "/v1/brands/{brand_id}" and access["status"] == 200
    assert access["level"] == "INFO" and access["time"].endswith("+00:00")
    # The context ends with the request.
    assert logs.current() == {}


def test_a_token_in_a_path_never_reaches_the_log(client, log_lines):
    token = "secret-signed-token-value"
    client.get(f"/v1/media-files/{token}")
    client.get(f"/v1/nowhere/{token}")
    assert token not in log_lines.getvalue()
    routes = [e["route"] for e in _entries(log_lines) if e["logger"] == "relais.access"]
    assert routes == ["/v1/media-files/{token}", "unmatched"]


def test_ids_in_a_path_are_bound_only_when_they_look_like_ids(client, make_agency, log_lines):
    owner = make_agency(brands=0)
    client.get("/v1/brands/brd_not%0Aan-id", headers=owner.headers)
    access = [e for e in _entries(log_lines) if e["logger"] == "relais.access"][-1]
    assert access["route"] == "unmatched"  # the id converter refuses it before routing
    assert "brand_id" not in access


def test_text_lines_append_the_context_as_key_value_pairs():
    record = logging.LogRecord(
        "relais.test", logging.WARNING, __file__, 1, "hello %s", ("x",), None
    )
    with logs.bound(request_id="r1", agency_id="agy_1"):
        logs.ContextFilter().filter(record)
    record.fields = {"route": "/v1/a b"}
    line = logs.TextFormatter().format(record)
    assert line.endswith(
        'WARNING relais.test hello x request_id=r1 agency_id=agy_1 route="/v1/a b"'
    )


def test_bound_restores_the_context_and_bind_adds_to_it():
    with logs.bound(job_id="j1"):
        logs.bind(agency_id="agy_1")
        assert logs.current() == {"job_id": "j1", "agency_id": "agy_1"}
        logs.bind(agency_id=None)
        assert logs.current() == {"job_id": "j1"}
    assert logs.current() == {}


def test_log_format_and_level_are_checked_at_start(app_config):
    for name, value in (("LOG_FORMAT", "xml"), ("LOG_LEVEL", "LOUD")):
        with pytest.raises(RuntimeError, match=name):
            create_app({**app_config, name: value})
    assert logs.default_format({"ENV": "production"}) == "json"
    assert logs.default_format({"ENV": "development"}) == "text"
    create_app(dict(app_config))  # back to the suite's own handler


def test_an_exception_is_one_json_line():
    try:
        raise ValueError("boom")
    except ValueError:
        record = logging.LogRecord(
            "relais.test", logging.ERROR, __file__, 1, "failed", (), __import__("sys").exc_info()
        )
    line = logs.JSONFormatter().format(record)
    assert "\n" not in line
    entry = json.loads(line)
    assert entry["message"] == "failed" and "ValueError: boom" in entry["exception"]


# -- /metrics ------------------------------------------------------------------------------------


def test_metrics_count_requests_by_route_template_and_never_name_a_tenant(client, make_agency):
    owner = make_agency(brands=1)
    brand_id = owner.brands[0]
    before = _samples(client.get("/metrics").get_data(as_text=True))
    for _ in range(3):
        assert client.get(f"/v1/brands/{brand_id}", headers=owner.headers).status_code == 200
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.content_type.startswith("text/plain")
    text = response.get_data(as_text=True)
    after = _samples(text)
    key = (
        "relais_http_requests_total",
        (("method", "GET"), ("route", "/v1/brands/{brand_id}"), ("status", "200")),
    )
    assert after[key] - before.get(key, 0.0) == 3
    # No tenant anywhere: neither the agency's nor the brand's id, nor any raw path.
    assert owner.agency_id not in text and brand_id not in text


def test_metrics_helpers_refuse_unbounded_labels():
    with pytest.raises(ValueError, match="outcome"):
        metrics.delivery_attempted("mastodon", "exploded")
    with pytest.raises(ValueError, match="network"):
        metrics.delivery_attempted("myspace", "failed")
    with pytest.raises(ValueError, match="delivery_published"):
        metrics.delivery_attempted("mastodon", "published")
    with pytest.raises(ValueError, match="reason"):
        metrics.webhook_failed("https://hooks.example.com/agency-42")
    assert [metrics.webhook_failure_reason(s) for s in (410, 404, 503, 302)] == [
        "gone",
        "http_4xx",
        "http_5xx",
        "http_other",
    ]


def test_pipeline_metrics_are_exposed(client):
    before = _samples(client.get("/metrics").get_data(as_text=True))
    metrics.delivery_published("bluesky", 0.6)
    metrics.delivery_published("bluesky", -2.0)  # early counts as on time
    metrics.delivery_attempted("bluesky", "retry")
    metrics.webhook_failed(metrics.webhook_failure_reason(410))
    after = _samples(client.get("/metrics").get_data(as_text=True))

    def grew(name: str, **labels: str) -> float:
        key = (name, tuple(sorted(labels.items())))
        return after[key] - before.get(key, 0.0)

    assert grew("relais_deliveries_total", network="bluesky", outcome="published") == 2
    assert grew("relais_deliveries_total", network="bluesky", outcome="retry") == 1
    assert grew("relais_publish_lateness_seconds_bucket", network="bluesky", le="0.1") == 1
    assert grew("relais_publish_lateness_seconds_bucket", network="bluesky", le="0.75") == 2
    assert grew("relais_webhook_delivery_failures_total", reason="gone") == 1


def test_queue_depths_are_read_from_redis_at_scrape_time(app, client):
    with app.app_context():
        reports = queue.queue(queue.REPORTS)
        reports.empty()
        reports.enqueue("workers.jobs.maintenance.purge_expired_records")
        reports.enqueue("workers.jobs.maintenance.purge_expired_records")
    try:
        samples = _samples(client.get("/metrics").get_data(as_text=True))
    finally:
        with app.app_context():
            reports.empty()
    assert samples[("relais_queue_jobs", (("queue", "reports"), ("state", "queued")))] == 2
    for name in queue.ALL_QUEUES:
        for state in ("queued", "started", "scheduled", "failed"):
            assert ("relais_queue_jobs", (("queue", name), ("state", state))) in samples


def test_metrics_are_for_this_machine_only_without_a_token(client):
    assert client.get("/metrics").status_code == 200  # the test client comes from 127.0.0.1
    elsewhere = client.get("/metrics", environ_base={"REMOTE_ADDR": "203.0.113.9"})
    body = assert_problem(elsewhere, 403)
    assert "METRICS_TOKEN" in body["detail"]


def test_a_metrics_token_is_required_once_set(app, client, monkeypatch):
    monkeypatch.setitem(app.config, "METRICS_TOKEN", "scrape-secret-0123456789")
    missing = assert_problem(client.get("/metrics"), 401)
    assert "Bearer" in missing["detail"]
    assert client.get("/metrics").headers["WWW-Authenticate"].startswith("Bearer")
    wrong = client.get("/metrics", headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401
    right = client.get(
        "/metrics",
        headers={"Authorization": "Bearer scrape-secret-0123456789"},
        environ_base={"REMOTE_ADDR": "203.0.113.9"},
    )
    assert right.status_code == 200 and "relais_http_requests_total" in right.get_data(True)


def test_production_serves_metrics_only_with_a_token(app, client, monkeypatch):
    monkeypatch.setitem(app.config, "ENV", "production")
    body = assert_problem(client.get("/metrics"), 404)
    assert "METRICS_TOKEN" in body["detail"]


def test_metrics_stay_out_of_the_api_spec(app):
    paths = api.spec.to_dict()["paths"]
    assert "/metrics" not in paths and "/healthz" not in paths
