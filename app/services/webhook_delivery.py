"""Sending webhook deliveries: signed requests, retries with backoff, disabling bad endpoints.

- `deliver(agency_id, delivery_id)`, the job: re-enters the agency, claims the delivery by
  compare-and-set (pending and due, or claimed by a worker that died), signs the event's body
  per Standard Webhooks (`webhook-id`, `webhook-timestamp`, `webhook-signature`; during a
  secret's overlap, one signature per secret, space-separated) and POSTs it through the
  outbound guard (public addresses only unless configured, every resolved address vetted, no
  redirect followed, WEBHOOK_TIMEOUT_SECONDS, at most 1 KiB of the answer read).
- Only a 2xx counts. Anything else is a failed attempt, tried again after `retry_delay`
  (exponential, with jitter, `Retry-After` honoured up to the cap) until WEBHOOK_MAX_ATTEMPTS.
  A 410 Gone disables the endpoint at once. An endpoint that has answered nothing with 2xx for
  WEBHOOK_DISABLE_AFTER_SECONDS is disabled when one more delivery runs out of attempts. Either
  way the agency's owners get a mail (through the outbox) and pending deliveries are cancelled.
- The database is the source of truth: the first attempt is enqueued when the event's
  transaction commits; retries, and whatever Redis lost, are enqueued by `enqueue_due`, a
  periodic sweep, when due. A job that runs twice, or late, finds nothing to claim.
- Each failed attempt is counted in `relais_webhook_delivery_failures_total`, by reason
  (app/metrics.py), never by endpoint.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any

import httpx
from flask import current_app
from sqlalchemy import and_, delete, exists, func, or_, select, update
from standardwebhooks import Webhook

from app import logs, metrics, queue, tenancy
from app.extensions import db
from app.models import (
    AgencyMembership,
    AgencyRole,
    DisabledReason,
    User,
    WebhookDelivery,
    WebhookDeliveryStatus,
    WebhookEndpoint,
    WebhookEvent,
)
from app.models.base import utcnow
from app.security import crypto, outbound
from app.services import audit, outbox, webhooks

log = logging.getLogger("relais.webhooks")

DELIVER_JOB = "workers.jobs.webhooks.deliver_webhook"
USER_AGENT = "Relais-Webhooks/1"
# The answer's body is kept (an excerpt, in the log) only this far; the rest is never read.
RESPONSE_BODY_CAP = 1024
# A delivery claimed this long ago and still `sending` belongs to a worker that died.
CLAIM_TIMEOUT = timedelta(minutes=5)
# A due delivery whose job was enqueued this long ago and has not run is enqueued again
# (Redis lost it). Not shorter than CLAIM_TIMEOUT: a claimed delivery is enqueued once more.
REENQUEUE_AFTER = timedelta(minutes=5)
# Beyond every timeout of one attempt: RQ stops a job that hangs anyway.
JOB_TIMEOUT_SECONDS = 120
# Each wait is its computed value times a factor drawn in this range.
JITTER = (0.8, 1.2)
_PENDING = WebhookDeliveryStatus.PENDING.value
_SENDING = WebhookDeliveryStatus.SENDING.value


# -- the schedule -----------------------------------------------------------------------------


def retry_delay(
    failed_attempts: int,
    *,
    retry_after: float | None = None,
    rand: Callable[[float, float], float] = random.uniform,
) -> timedelta:
    """How long to wait after the `failed_attempts`-th failed attempt (1 for the first).

    WEBHOOK_RETRY_BASE_SECONDS × 3^(n-1), at most WEBHOOK_RETRY_MAX_DELAY_SECONDS, times a
    random factor in JITTER so that the deliveries of one outage do not come back together.
    A `Retry-After` the endpoint sent is honoured when longer, up to the same cap.
    """
    config = current_app.config
    base = float(config["WEBHOOK_RETRY_BASE_SECONDS"])
    cap = float(config["WEBHOOK_RETRY_MAX_DELAY_SECONDS"])
    exponent = max(failed_attempts - 1, 0)
    # min() before the power's result can grow past a float (many attempts configured).
    delay = cap if exponent > 60 else min(cap, base * 3**exponent)
    delay *= rand(*JITTER)
    if retry_after is not None:
        delay = max(delay, min(retry_after, cap))
    return timedelta(seconds=delay)


def schedule_bounds() -> list[tuple[float, float]]:
    """(shortest, longest) wait after each failed attempt but the last, in seconds: what the
    README's table and the tests read."""
    config = current_app.config
    bounds = []
    for n in range(1, config["WEBHOOK_MAX_ATTEMPTS"]):
        low = retry_delay(n, rand=lambda a, b: a).total_seconds()
        high = retry_delay(n, rand=lambda a, b: b).total_seconds()
        bounds.append((low, high))
    return bounds


# -- enqueueing ---------------------------------------------------------------------------------


def enqueue(agency_id: str, delivery_id: str) -> None:
    try:
        queue.enqueue(
            DELIVER_JOB,
            agency_id,
            delivery_id,
            queue_name=queue.WEBHOOKS,
            job_id=f"webhook-{delivery_id}",
            job_timeout=JOB_TIMEOUT_SECONDS,
        )
    except Exception:  # noqa: BLE001 - the delivery is safe in the database; the sweep enqueues it
        log.warning(
            "could not enqueue webhook delivery %s (agency %s); the sweep will",
            delivery_id,
            agency_id,
            exc_info=True,
        )


@tenancy.system_lookup(tenancy.SystemLookup.DISPATCHER)
def enqueue_due(*, now: datetime | None = None, batch: int = 1000) -> int:
    """Enqueue what is due and not on the queue: retries whose time has come, first attempts
    whose job Redis lost, deliveries a dead worker claimed. Returns how many."""
    now = now or utcnow()
    lost = now - REENQUEUE_AFTER
    with tenancy.system_scope():
        due = db.session.execute(
            select(WebhookDelivery.agency_id, WebhookDelivery.id)
            .where(
                or_(
                    and_(
                        WebhookDelivery.status == _PENDING,
                        WebhookDelivery.next_attempt_at <= now,
                        or_(
                            WebhookDelivery.enqueued_at.is_(None),
                            WebhookDelivery.enqueued_at < WebhookDelivery.next_attempt_at,
                            WebhookDelivery.enqueued_at < lost,
                        ),
                    ),
                    and_(
                        WebhookDelivery.status == _SENDING,
                        WebhookDelivery.claimed_at < now - CLAIM_TIMEOUT,
                        WebhookDelivery.enqueued_at < lost,
                    ),
                )
            )
            .order_by(WebhookDelivery.next_attempt_at)
            .limit(batch)
        ).all()
        if due:
            db.session.execute(
                update(WebhookDelivery)
                .where(WebhookDelivery.id.in_([delivery_id for _, delivery_id in due]))
                .values(enqueued_at=now)
                .execution_options(synchronize_session=False)
            )
        db.session.commit()
    for agency_id, delivery_id in due:
        enqueue(agency_id, delivery_id)
    return len(due)


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
                    WebhookDelivery.claimed_at < now - CLAIM_TIMEOUT,
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
        secrets = webhooks.signing_secrets(endpoint, now)
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
            disable(delivery.endpoint_id, DisabledReason.GONE, now=now)
    elif delivery.attempts >= current_app.config["WEBHOOK_MAX_ATTEMPTS"]:
        outcome = "failed"
        finished = claim.finish(WebhookDeliveryStatus.FAILED, error=attempt.error, **seen)
        if finished and endpoint_failed:
            _endpoint_failed(delivery.endpoint_id, now)
            if _failing_too_long(delivery.endpoint_id, now):
                disable(delivery.endpoint_id, DisabledReason.FAILING, now=now)
    else:
        wait = retry_delay(delivery.attempts, retry_after=attempt.retry_after)
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


# -- disabling ----------------------------------------------------------------------------------


def disable(endpoint_id: str, reason: DisabledReason, *, now: datetime) -> bool:
    """Disable an enabled endpoint (the caller commits): its pending deliveries are cancelled,
    and the agency's owners are told by mail. False if it was disabled already."""
    changed = db.session.execute(
        tenancy.scoped_update(WebhookEndpoint)
        .where(WebhookEndpoint.id == endpoint_id, WebhookEndpoint.enabled.is_(True))
        .values(
            enabled=False,
            disabled_reason=reason.value,
            disabled_at=now,
            updated_at=now,
            version=WebhookEndpoint.version + 1,
        )
        .execution_options(synchronize_session=False)
    )
    if changed.rowcount != 1:
        return False
    endpoint = _scoped_one(WebhookEndpoint, endpoint_id)
    assert endpoint is not None  # just updated, in this transaction
    webhooks.cancel_pending(endpoint_id)
    audit.record(
        "webhook_endpoint.disabled",
        actor=audit.SYSTEM,
        agency_id=endpoint.agency_id,
        target_type="webhook_endpoint",
        target_id=endpoint.id,
        data={"reason": reason.value},
    )
    _tell_owners(endpoint, reason)
    log.warning(
        "webhook endpoint %s (agency %s) disabled: %s", endpoint.id, endpoint.agency_id, reason
    )
    return True


_REASONS = {
    DisabledReason.GONE: "it answered 410 Gone, which asks senders to stop",
    DisabledReason.FAILING: "it has not accepted any event since {since}",
}


def _tell_owners(endpoint: WebhookEndpoint, reason: DisabledReason) -> None:
    agency = tenancy.current_agency()
    owners = db.session.execute(
        tenancy.scoped_select(AgencyMembership, User.email, User.name)
        .select_from(AgencyMembership)
        .join(User, AgencyMembership.user_id == User.id)
        .where(AgencyMembership.role == AgencyRole.OWNER.value)
        .order_by(User.email)
    ).all()
    since = outbox.when(endpoint.failing_since) if endpoint.failing_since else "some time"
    for email, name in owners:
        outbox.send(
            "webhook_disabled",
            to=email,
            context={
                "name": name,
                "agency_name": agency.name,
                "url": endpoint.url,
                "endpoint_id": endpoint.id,
                "reason": _REASONS[reason].format(since=since),
            },
        )


# -- housekeeping -------------------------------------------------------------------------------


@tenancy.system_lookup(tenancy.SystemLookup.SWEEP)
def purge_old(*, now: datetime | None = None) -> int:
    """Forget events (and their delivery logs) older than WEBHOOK_LOG_RETENTION_DAYS, unless
    one of their deliveries is still being attempted. Returns how many events."""
    cutoff = (now or utcnow()) - timedelta(days=current_app.config["WEBHOOK_LOG_RETENTION_DAYS"])
    active = exists().where(
        WebhookDelivery.event_id == WebhookEvent.id,
        WebhookDelivery.status.in_([_PENDING, _SENDING]),
    )
    with tenancy.system_scope():
        result = db.session.execute(
            delete(WebhookEvent)
            .where(WebhookEvent.created_at < cutoff, ~active)
            .execution_options(synchronize_session=False)
        )
        db.session.commit()
    return result.rowcount or 0
