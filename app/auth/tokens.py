"""Short-lived access tokens (JWT, HS256). Refresh tokens live in the database (see services)."""

from __future__ import annotations

import time
from dataclasses import dataclass

import jwt
from flask import current_app

ISSUER = "relais"
AUDIENCE = "relais-api"


@dataclass(frozen=True)
class AccessClaims:
    user_id: str
    agency_id: str
    session_id: str


def issue_access_token(user_id: str, agency_id: str, session_id: str) -> tuple[str, int]:
    ttl = current_app.config["ACCESS_TOKEN_TTL_SECONDS"]
    now = int(time.time())
    payload = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": user_id,
        "agy": agency_id,
        "sid": session_id,
        "iat": now,
        "exp": now + ttl,
        "typ": "access",
    }
    return jwt.encode(payload, current_app.config["SECRET_KEY"], algorithm="HS256"), ttl


# Tokens already verified in this process, with their expiry: a client sends the same token
# for minutes, and re-checking the HMAC and every claim each time cost ~15% of a cheap read.
# Expiry is still checked on every use; the key includes the signing secret.
_VERIFIED: dict[tuple[str, str], tuple[AccessClaims, int]] = {}
_VERIFIED_MAX = 4096


def decode_access_token(token: str) -> AccessClaims | None:
    secret = current_app.config["SECRET_KEY"]
    cached = _VERIFIED.get((secret, token))
    if cached is not None:
        claims, expires_at = cached
        if time.time() < expires_at:
            return claims
        _VERIFIED.pop((secret, token), None)
        return None
    claims, expires_at = _verify(token, secret)
    if claims is not None:
        if len(_VERIFIED) >= _VERIFIED_MAX:
            _VERIFIED.clear()
        _VERIFIED[(secret, token)] = (claims, expires_at)
    return claims


def _verify(token: str, secret: str) -> tuple[AccessClaims | None, int]:
    try:
        payload = jwt.decode(
            token,
            secret,
            algorithms=["HS256"],
            audience=AUDIENCE,
            issuer=ISSUER,
            options={"require": ["exp", "sub", "agy", "sid"]},
        )
    except jwt.PyJWTError:
        return None, 0
    if payload.get("typ") != "access":
        return None, 0
    return AccessClaims(payload["sub"], payload["agy"], payload["sid"]), int(payload["exp"])
