"""Sending one webhook delivery: the job, the signed request, and what its answer leads to.

- `deliver(agency_id, delivery_id)`, the job: re-enters the agency, claims the delivery by
  compare-and-set (pending and due, or claimed by a worker that died), signs the event's body
  per Standard Webhooks (`webhook-id`, `webhook-timestamp`, `webhook-signature`; during a
  secret's overlap, one signature per secret, space-separated) and POSTs it through the
  outbound guard (public addresses only unless configured, every resolved address vetted, no
  redirect followed, WEBHOOK_TIMEOUT_SECONDS, at most 1 KiB of the answer read).
- Only a 2xx counts. Anything else is a failed attempt, tried again after `retry_delay`
  (exponential, with jitter, `Retry-After` honoured up to the cap: app/services/webhook_schedule.py)
  until WEBHOOK_MAX_ATTEMPTS. A 410 Gone disables the endpoint at once. An endpoint that has
  answered nothing with 2xx for WEBHOOK_DISABLE_AFTER_SECONDS is disabled when one more delivery
  runs out of attempts. Either way the agency's owners get a mail (through the outbox) and
  pending deliveries are cancelled (`webhook_endpoints.disable`).
- Each failed attempt is counted in `relais_webhook_delivery_failures_total`, by reason
  (app/metrics.py), never by endpoint.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any

import httpx
from flask import current_app
from sqlalchemy import and_, func, or_
from standardwebhooks import Webhook

from app import logs, metrics, tenancy
from app.extensions import db
from app.models import (
    DisabledReason,
    WebhookDelivery,
    WebhookDeliveryStatus,
    WebhookEndpoint,
    WebhookEvent,
)
from app.models.base import utcnow
from app.security import crypto, outbound
from app.services import webhook_endpoints, webhook_schedule

log = logging.getLogger("relais.webhooks")

USER_AGENT = "Relais-Webhooks/1"
# The answer's body is kept (an excerpt, in the log) only this far; the rest is never read.
RESPONSE_BODY_CAP = 1024
_PENDING = WebhookDeliveryStatus.PENDING.value
_SENDING = WebhookDeliveryStatus.SENDING.value


# -- the job ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Attempt:
    """What one request came to: a status code (None: no answer) and, unless 2xx, why not
    (`error` for people, `reason` for the metrics: one of metrics.WEBHOOK_FAILURE_REASONS, or
    None when the request was not made for a reason of ours)."""

    status_code: int | None
    error: str | None
    retry_after: float | None = None
    reason: str | None = None

    @property
    def succeeded(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


def deliver(agency_id: str, delivery_id: str) -> str:
    """Attempt one delivery; returns what happened (`succeeded`, `retrying`, `failed`,
    `cancelled`, `skipped`). A delivery of another agency than `agency_id` is not touched."""
    tenancy.enter_agency(agency_id)
    try:
        with logs.bound():  # what _deliver binds ends with it
            return _deliver(agency_id, delivery_id)
    finally:
        db.session.rollback()
        tenancy.set_scope(tenancy.NO_SCOPE)


def _deliver(agency_id: str, delivery_id: str) -> str:
    now = utcnow()
    # Under the agency entered: another agency's delivery id matches no row.
    claimed = db.session.execute(
        tenancy.scoped_update(WebhookDelivery)
        .where(
            WebhookDelivery.id == delivery_id,
            or_(
                and_(WebhookDelivery.status == _PENDING, WebhookDelivery.next_attempt_at <= now),
                and_(
                    WebhookDelivery.status == _SENDING,
                    WebhookDelivery.claimed_at < now - webhook_schedule.CLAIM_TIMEOUT,
                ),
            ),
        )
        .values(status=_SENDING, claimed_at=now, attempts=WebhookDelivery.attempts + 1)
        .execution_options(synchronize_session=False)
    )
    db.session.commit()
    if claimed.rowcount != 1:
        return "skipped"  # done, not due yet, being sent by another worker, or not this agency's
    delivery = _scoped_one(WebhookDelivery, delivery_id)
    if delivery is None:
        return "skipped"  # its endpoint was deleted since the claim
    claim = Claim(delivery, now)
    logs.bind(endpoint_id=delivery.endpoint_id, event_id=delivery.event_id)
    endpoint = _scoped_one(WebhookEndpoint, delivery.endpoint_id)
    webhook_event = _scoped_one(WebhookEvent, delivery.event_id)
    if endpoint is None or webhook_event is None:
        return "skipped"
    if not endpoint.enabled:
        claim.finish(WebhookDeliveryStatus.CANCELLED, error="The endpoint was disabled.")
        db.session.commit()
        return "cancelled"
    try:
        secrets = webhook_endpoints.signing_secrets(endpoint, now)
    except crypto.CredentialsUnreadable:
        # This worker lacks the key the secret was encrypted with: an operator's error, retried
        # on schedule, that says nothing about the endpoint.
        log.error(
            "webhook delivery %s (agency %s): no configured key decrypts endpoint %s's secret; "
            "check CREDENTIALS_ENCRYPTION_KEYS on this worker",
            delivery_id,
            agency_id,
            endpoint.id,
        )
        attempt = Attempt(None, "This server could not read the endpoint's signing secret.")
        return _record(claim, attempt, now, endpoint_failed=False)
    url, message_id, body = endpoint.url, webhook_event.id, webhook_event.payload
    # No transaction stays open while the endpoint takes its time.
    db.session.commit()
    attempt = send(url, message_id, body, secrets)
    return _record(claim, attempt, utcnow())


@dataclass
class Claim:
    """A delivery this worker claimed at `claimed_at`: it is finished only while the claim
    holds (a worker that overran CLAIM_TIMEOUT may have been replaced, the endpoint deleted)."""

    delivery: WebhookDelivery
    claimed_at: datetime

    def finish(self, status: WebhookDeliveryStatus, **values: Any) -> bool:
        """Set the outcome (the caller commits); False if the claim no longer holds."""
        if "error" in values:
            values["last_error"] = values.pop("error")
        if status != WebhookDeliveryStatus.PENDING:
            values.setdefault("next_attempt_at", None)
        result = db.session.execute(
            tenancy.scoped_update(WebhookDelivery)
            .where(
                WebhookDelivery.id == self.delivery.id,
                WebhookDelivery.status == _SENDING,
                WebhookDelivery.claimed_at == self.claimed_at,
            )
            .values(status=status.value, claimed_at=None, **values)
            .execution_options(synchronize_session=False)
        )
        return result.rowcount == 1


def send(url: str, message_id: str, body: str, secrets: list[str]) -> Attempt:
    """POST the signed body to `url` once, through the outbound guard; never raises for
    anything the endpoint or the network does."""
    timeout = float(current_app.config["WEBHOOK_TIMEOUT_SECONDS"])
    timestamp = utcnow()
    headers = {
        "content-type": "application/json",
        "user-agent": USER_AGENT,
        "webhook-id": message_id,
        "webhook-timestamp": str(int(timestamp.timestamp())),
        "webhook-signature": " ".join(
            Webhook(secret).sign(message_id, timestamp, body) for secret in secrets
        ),
    }
    try:
        options = outbound.guarded_client_options(user_given=True)
        with (
            httpx.Client(timeout=timeout, follow_redirects=False, **options) as client,
            client.stream("POST", url, content=body.encode("utf-8"), headers=headers) as answer,
        ):
            excerpt = _read_capped(answer, deadline=time.monotonic() + timeout)
    except outbound.TargetRefused as exc:
        return Attempt(None, f"Refused by the outbound guard: {exc}", reason="blocked")
    except httpx.TimeoutException:
        return Attempt(None, f"No answer within {timeout:g} s.", reason="timeout")
    except httpx.HTTPError as exc:
        problem = f"Could not reach the endpoint: {type(exc).__name__}: {exc}"[:500]
        return Attempt(None, problem, reason="connection")
    if 200 <= answer.status_code < 300:
        return Attempt(answer.status_code, None)
    problem = f"HTTP {answer.status_code}"
    if answer.is_redirect:
        problem += f" (a redirect to {answer.headers.get('location', '?')[:300]}, not followed)"
    if excerpt:
        problem += f": {excerpt}"
    return Attempt(
        answer.status_code,
        problem,
        _retry_after(answer),
        reason=metrics.webhook_failure_reason(answer.status_code),
    )


def _read_capped(answer: httpx.Response, *, deadline: float) -> str:
    """At most RESPONSE_BODY_CAP bytes of the body, read until `deadline` at the latest (an
    endpoint that drips its answer must not hold the worker), as printable text."""
    kept = b""
    for chunk in answer.iter_raw():
        kept += chunk
        if len(kept) >= RESPONSE_BODY_CAP or time.monotonic() > deadline:
            break
    text = kept[:RESPONSE_BODY_CAP].decode("utf-8", "replace")
    return "".join(ch if ch.isprintable() else " " for ch in text).strip()[:300]


def _retry_after(answer: httpx.Response) -> float | None:
    value = answer.headers.get("retry-after", "").strip()
    if not value:
        return None
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max((when - utcnow()).total_seconds(), 0.0)


def _record(claim: Claim, attempt: Attempt, now: datetime, *, endpoint_failed: bool = True) -> str:
    delivery = claim.delivery
    seen = {"last_attempt_at": now, "last_status_code": attempt.status_code}
    if attempt.succeeded:
        outcome = "succeeded"
        if claim.finish(WebhookDeliveryStatus.SUCCEEDED, error=None, succeeded_at=now, **seen):
            _update_endpoint(delivery.endpoint_id, failing_since=None, last_success_at=now)
    elif attempt.status_code == 410:
        outcome = "failed"
        if claim.finish(WebhookDeliveryStatus.FAILED, error=attempt.error, **seen):
            _endpoint_failed(delivery.endpoint_id, now)
            webhook_endpoints.disable(delivery.endpoint_id, DisabledReason.GONE, now=now)
    elif delivery.attempts >= current_app.config["WEBHOOK_MAX_ATTEMPTS"]:
        outcome = "failed"
        finished = claim.finish(WebhookDeliveryStatus.FAILED, error=attempt.error, **seen)
        if finished and endpoint_failed:
            _endpoint_failed(delivery.endpoint_id, now)
            if _failing_too_long(delivery.endpoint_id, now):
                webhook_endpoints.disable(delivery.endpoint_id, DisabledReason.FAILING, now=now)
    else:
        wait = webhook_schedule.retry_delay(delivery.attempts, retry_after=attempt.retry_after)
        outcome = "retrying"
        seen["next_attempt_at"] = now + wait
        finished = claim.finish(WebhookDeliveryStatus.PENDING, error=attempt.error, **seen)
        if finished and endpoint_failed:
            _endpoint_failed(delivery.endpoint_id, now)
    db.session.commit()
    _log(delivery, outcome, attempt)
    if not attempt.succeeded and attempt.reason is not None:
        metrics.webhook_failed(attempt.reason)
    return outcome


def _update_endpoint(endpoint_id: str, **values: Any) -> None:
    # Statements, not the loaded row: deliveries of one endpoint finish in parallel workers.
    # Delivery statistics leave `version` alone (the ETag is for what people edit).
    db.session.execute(
        tenancy.scoped_update(WebhookEndpoint)
        .where(WebhookEndpoint.id == endpoint_id)
        .values(**values)
        .execution_options(synchronize_session=False)
    )


def _endpoint_failed(endpoint_id: str, now: datetime) -> None:
    _update_endpoint(endpoint_id, failing_since=func.coalesce(WebhookEndpoint.failing_since, now))


def _failing_too_long(endpoint_id: str, now: datetime) -> bool:
    since = db.session.scalar(
        tenancy.scoped_select(WebhookEndpoint, WebhookEndpoint.failing_since).where(
            WebhookEndpoint.id == endpoint_id
        )
    )
    limit = timedelta(seconds=current_app.config["WEBHOOK_DISABLE_AFTER_SECONDS"])
    return since is not None and since <= now - limit


def _log(delivery: WebhookDelivery, outcome: str, attempt: Attempt) -> None:
    level = logging.INFO if attempt.succeeded else logging.WARNING
    log.log(
        level,
        "webhook delivery %s (agency %s, endpoint %s, event %s) attempt %d: %s%s",
        delivery.id,
        delivery.agency_id,
        delivery.endpoint_id,
        delivery.event_id,
        delivery.attempts,
        outcome,
        f" ({attempt.error})" if attempt.error else "",
    )


def _scoped_one(model: type, object_id: str) -> Any:
    # populate_existing: the claim changed the row by a statement, behind the session's back.
    return db.session.scalars(
        tenancy.scoped_select(model)
        .where(model.id == object_id)  # type: ignore[attr-defined]
        .execution_options(populate_existing=True)
    ).first()
