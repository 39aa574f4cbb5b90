"""`Idempotency-Key` on creates: the `idempotent` view decorator and the replay it rests on
(responses kept 24 h per caller in an agency, keyed on the method, the path and the body).

Some creates answer with a secret shown once (an API key, a refresh or invitation token), and
those secrets are otherwise stored hashed only. So the kept response is encrypted with a key
derived from the server's SECRET_KEY and the Idempotency-Key itself, and the Idempotency-Key is
stored as a hash: a copy of the database alone replays nothing.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import json
import re
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from cryptography.fernet import Fernet, InvalidToken
from flask import Response, after_this_request, current_app, g, request
from flask_smorest.utils import deepupdate
from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError

from app import tenancy
from app.errors import Conflict, ValidationFailed
from app.extensions import db
from app.models import IdempotencyRecord
from app.models.base import utcnow

_REPLAYED_HEADERS = ("Location", "ETag", "Content-Type")

# Visible ASCII: what any client can put in a header and log without escaping (a UUID, say).
IDEMPOTENCY_KEY_PATTERN = "^[!-~]{1,255}$"
IDEMPOTENCY_KEY_PARAMETER = {
    "in": "header",
    "name": "Idempotency-Key",
    "required": False,
    "schema": {"type": "string", "pattern": IDEMPOTENCY_KEY_PATTERN},
    "description": (
        "Makes the create safe to retry for 24 h: the same key with the same body replays the "
        "first response; the same key with another body is a 422."
    ),
}
_KEY_RE = re.compile(IDEMPOTENCY_KEY_PATTERN)


def idempotent(func: Callable) -> Callable:
    """Honour `Idempotency-Key` on a create view. Stack it below `brand_route`, so that a
    brand the caller cannot reach is refused before the body is read to be fingerprinted."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        key = request.headers.get("Idempotency-Key")
        if key is None:
            return func(*args, **kwargs)
        replay = begin(key, request.method, request.path, _body_fingerprint())
        if replay is not None:
            return replay
        try:
            response = current_app.make_response(func(*args, **kwargs))
        except BaseException:
            abandon(key)
            raise

        # Stored once the response is final (ETag and Link are added by later callbacks).
        @after_this_request
        def _store(final: Response) -> Response:
            finish(key, final)
            return final

        return response

    wrapper._apidoc = deepupdate(  # type: ignore[attr-defined]
        getattr(func, "_apidoc", {}), {"manual_doc": {"parameters": [IDEMPOTENCY_KEY_PARAMETER]}}
    )
    return wrapper


def _body_fingerprint() -> str:
    """Same JSON, same fingerprint, whatever the key order or whitespace."""
    if request.mimetype == "multipart/form-data":
        return _multipart_fingerprint()
    data = request.get_json(silent=True)
    raw = (
        json.dumps(data, sort_keys=True, separators=(",", ":")).encode()
        if data is not None
        else request.get_data()
    )
    return hashlib.sha256(raw or b"").hexdigest()


def _multipart_fingerprint() -> str:
    """Fields and files' bytes, read from Werkzeug's spooled parts chunk by chunk (an upload of
    a gigabyte must not be read into memory to be fingerprinted)."""
    digest = hashlib.sha256()
    # str() in the keys: a part without a name comes back as None, which does not sort with str.
    for name, value in sorted(request.form.items(multi=True), key=lambda i: (str(i[0]), i[1])):
        digest.update(json.dumps(["field", name, value]).encode())
    for name, upload in sorted(request.files.items(multi=True), key=lambda i: str(i[0])):
        digest.update(json.dumps(["file", name, upload.filename, upload.mimetype]).encode())
        upload.stream.seek(0)
        while chunk := upload.stream.read(1024 * 1024):
            digest.update(chunk)
        upload.stream.seek(0)
    return digest.hexdigest()


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
