"""Replay of creates sent with `Idempotency-Key` (kept 24 h per caller in an agency).

Some creates answer with a secret shown once (an API key, a refresh or invitation token), and
those secrets are otherwise stored hashed only. So the kept response is encrypted with a key
derived from the server's SECRET_KEY and the Idempotency-Key itself, and the Idempotency-Key is
stored as a hash: a copy of the database alone replays nothing.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from datetime import timedelta

from cryptography.fernet import Fernet, InvalidToken
from flask import Response, current_app, g
from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError

from app import tenancy
from app.errors import Conflict, ValidationFailed
from app.extensions import db
from app.models import IdempotencyRecord
from app.models.base import utcnow

_REPLAYED_HEADERS = ("Location", "ETag", "Content-Type")


def _scope() -> tuple[str, str | None]:
    """Whose keys these are: one principal in one agency.

    A replay skips the view and its permission check, so it must only ever answer whoever
    made the first request; scoped to the agency alone, a client of a brand could replay an
    owner's key creation and read the key's secret.
    """
    principal = g.get("principal")
    if principal is None:
        return "anonymous", None
    return caller_scope(principal.agency_id, principal.kind, principal.id), principal.agency_id


def caller_scope(agency_id: str, kind: str, principal_id: str) -> str:
    return hashlib.sha256(f"{agency_id}|{kind}|{principal_id}".encode()).hexdigest()[:40]


def _stored_key(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()


def _cipher(key: str) -> Fernet:
    secret = current_app.config["SECRET_KEY"].encode()
    derived = hmac.new(secret, b"idempotency:" + key.encode("utf-8", "surrogatepass"), "sha256")
    return Fernet(base64.urlsafe_b64encode(derived.digest()))


@tenancy.system_lookup(tenancy.SystemLookup.IDEMPOTENCY)
def _find(scope: str, key: str) -> IdempotencyRecord | None:
    with tenancy.system_scope():
        return db.session.scalar(
            select(IdempotencyRecord).where(
                IdempotencyRecord.scope == scope, IdempotencyRecord.key == _stored_key(key)
            )
        )


_KEY_RE = re.compile(r"[!-~]{1,255}")


def begin(key: str, method: str, path: str, body_hash: str) -> Response | None:
    """Reserve the key, or return the stored response of the first request that used it."""
    if not _KEY_RE.fullmatch(key):
        raise ValidationFailed(
            "Idempotency-Key must be 1 to 255 visible ASCII characters (a UUID, say).",
            errors={"header.Idempotency-Key": ["Invalid key."]},
        )
    scope, agency_id = _scope()
    now = utcnow()
    record = _find(scope, key)
    if record is not None and record.expires_at <= now:
        with tenancy.system_scope():
            db.session.delete(record)
            db.session.commit()
        record = None
    if record is None:
        record = IdempotencyRecord(
            scope=scope,
            agency_id=agency_id,
            key=_stored_key(key),
            method=method,
            path=path,
            request_hash=body_hash,
            expires_at=now + timedelta(seconds=current_app.config["IDEMPOTENCY_TTL_SECONDS"]),
        )
        try:
            with tenancy.system_scope():
                db.session.add(record)
                db.session.commit()
            return None
        except IntegrityError:
            db.session.rollback()
            record = _find(scope, key)
            if record is None:  # pragma: no cover - vanished between two statements
                raise Conflict("A request with this Idempotency-Key is in progress.") from None
    if record.method != method or record.path != path or record.request_hash != body_hash:
        raise ValidationFailed(
            "This Idempotency-Key was used with another request; use a new key for a new request.",
            errors={"header.Idempotency-Key": ["Reused with a different request."]},
        )
    if record.status_code is None:
        raise Conflict(
            "The first request with this Idempotency-Key is still in progress; retry shortly.",
            headers={"Retry-After": "1"},
        )
    try:
        body = _cipher(key).decrypt((record.response_body or "").encode())
    except InvalidToken:  # SECRET_KEY rotated since: the copy cannot be read any more
        raise Conflict(
            "The first response to this Idempotency-Key can no longer be replayed; use a new key."
        ) from None
    response = Response(body, status=record.status_code)
    for name, value in (record.response_headers or {}).items():
        response.headers[name] = value
    response.headers["Idempotent-Replayed"] = "true"
    return response


def finish(key: str, response: Response) -> None:
    """Keep a successful response for replay; forget the key after a failure so it can retry."""
    scope, _ = _scope()
    db.session.rollback()  # whatever the view left open is committed or discarded by now
    record = _find(scope, key)
    if record is None:
        return
    with tenancy.system_scope():
        if response.status_code >= 400:
            db.session.delete(record)
        else:
            record.status_code = response.status_code
            record.response_body = _cipher(key).encrypt(response.get_data()).decode()
            headers = response.headers
            record.response_headers = {n: headers[n] for n in _REPLAYED_HEADERS if n in headers}
        db.session.commit()


@tenancy.system_lookup(tenancy.SystemLookup.IDEMPOTENCY)
def abandon(key: str) -> None:
    scope, _ = _scope()
    db.session.rollback()
    with tenancy.system_scope():
        db.session.execute(
            delete(IdempotencyRecord).where(
                IdempotencyRecord.scope == scope, IdempotencyRecord.key == _stored_key(key)
            )
        )
        db.session.commit()


@tenancy.system_lookup(tenancy.SystemLookup.SWEEP)
def purge_expired() -> int:
    with tenancy.system_scope():
        result = db.session.execute(
            delete(IdempotencyRecord).where(IdempotencyRecord.expires_at <= utcnow())
        )
        db.session.commit()
    return result.rowcount or 0
