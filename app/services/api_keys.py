"""Agency API keys: shown once at creation, stored hashed, optionally limited to some brands."""

from __future__ import annotations

from dataclasses import dataclass

from app import tenancy
from app.auth.principal import API_KEY_PREFIX
from app.auth.secrets import digest, new_secret
from app.errors import NotFound, ValidationFailed
from app.extensions import db
from app.models import ApiKey, Brand
from app.models.base import utcnow
from app.services import audit


@dataclass
class CreatedKey:
    key: ApiKey
    secret: str


def create_key(
    agency_id: str,
    *,
    name: str,
    brand_ids: list[str] | None,
    created_by: str | None,
    actor: audit.Actor,
) -> CreatedKey:
    if brand_ids is not None:
        brand_ids = sorted(set(brand_ids))
        reachable = tenancy.scoped_select(Brand, Brand.id).where(Brand.id.in_(brand_ids))
        known = set(db.session.scalars(reachable))
        unknown = [b for b in brand_ids if b not in known]
        if unknown:
            # Well-formed ids of no brand you can reach: a 404, as for any other address.
            raise NotFound(
                f"Unknown brand ids: {', '.join(unknown)}.",
                errors={"brand_ids": [f"No brand with id '{b}'." for b in unknown]},
            )
        if not brand_ids:
            raise ValidationFailed(
                "A key limited to no brand can do nothing; omit brand_ids for every brand.",
                errors={"brand_ids": ["Must not be empty."]},
            )
    secret = new_secret(API_KEY_PREFIX)
    key = ApiKey(
        agency_id=agency_id,
        name=name,
        prefix=secret[:10],
        key_hash=digest(secret),
        brand_ids=brand_ids,
        created_by_user_id=created_by,
    )
    db.session.add(key)
    db.session.flush()
    audit.record(
        "api_key.created",
        actor=actor,
        agency_id=agency_id,
        target_type="api_key",
        target_id=key.id,
        data={"name": name, "brand_ids": brand_ids},
    )
    db.session.commit()
    return CreatedKey(key=key, secret=secret)


def revoke_key(key: ApiKey, *, actor: audit.Actor) -> None:
    if key.revoked_at is None:
        key.revoked_at = utcnow()
        audit.record(
            "api_key.revoked",
            actor=actor,
            agency_id=key.agency_id,
            target_type="api_key",
            target_id=key.id,
        )
        db.session.commit()
