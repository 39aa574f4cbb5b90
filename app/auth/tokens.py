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


def decode_access_token(token: str) -> AccessClaims | None:
    try:
        payload = jwt.decode(
            token,
            current_app.config["SECRET_KEY"],
            algorithms=["HS256"],
            audience=AUDIENCE,
            issuer=ISSUER,
            options={"require": ["exp", "sub", "agy", "sid"]},
        )
    except jwt.PyJWTError:
        return None
    if payload.get("typ") != "access":
        return None
    return AccessClaims(payload["sub"], payload["agy"], payload["sid"])
