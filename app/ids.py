"""Opaque, prefixed identifiers (`brd_01J…`).

A ULID after the prefix: random enough to be unguessable, and ordered by creation time, so a
keyset page is a plain `id > :cursor` on the primary-key index.
"""

from __future__ import annotations

import re

from ulid import ULID

PREFIXES = {
    "agency": "agy",
    "user": "usr",
    "agency_membership": "amb",
    "brand": "brd",
    "brand_membership": "bmb",
    "api_key": "key",
    "invitation": "inv",
    "refresh_token": "rtk",
    "audit_event": "evt",
    "idempotency_record": "idm",
    "social_account": "acc",
    "oauth_state": "ost",
    "post": "pst",
    "post_variant": "pvr",
    "media": "med",
    "delivery": "dlv",
    "delivery_attempt": "dat",
    "posting_slot": "slt",
    "outbound_email": "eml",
    "signup_request": "sgn",
    "password_reset": "pwr",
    "webhook_endpoint": "whk",
    "webhook_event": "wev",
    "webhook_delivery": "wdl",
    "account_revocation": "arv",
}

_ID_RE = re.compile(r"^[a-z]{2,5}_[0-9A-HJKMNP-TV-Z]{26}$")


def new_id(prefix: str) -> str:
    return f"{prefix}_{ULID()}"


def id_factory(kind: str):
    prefix = PREFIXES[kind]
    return lambda: new_id(prefix)


def looks_like_id(value: str, prefix: str | None = None) -> bool:
    """Cheap syntactic check, so a malformed id is a 404 without touching the database."""
    if not isinstance(value, str) or not _ID_RE.fullmatch(value):
        return False
    return prefix is None or value.startswith(prefix + "_")
