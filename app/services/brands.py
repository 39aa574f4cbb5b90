"""Brands: the tenants. Create, settings, archive, offboard (delete everything), export."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from typing import Any
from zoneinfo import available_timezones

from sqlalchemy import Select, func
from sqlalchemy.exc import IntegrityError

from app import tenancy
from app.errors import Conflict, ValidationFailed
from app.extensions import db
from app.fields import dump_datetime
from app.models import ApiKey, Base, Brand, BrandStatus
from app.models.base import utcnow
from app.services import account_revocations, audit, media

_TIMEZONES = frozenset(available_timezones())


def validate_timezone(name: str) -> str:
    if name not in _TIMEZONES:
        raise ValidationFailed(
            f"'{name}' is not an IANA time zone (e.g. Europe/Paris, America/New_York).",
            errors={"timezone": ["Unknown IANA time zone."]},
        )
    return name


def slugify(text: str) -> str:
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")
    return slug[:60] or "brand"


def _unique_slug(agency_id: str, wanted: str) -> str:
    existing = set(
        db.session.scalars(
            tenancy.scoped_select(Brand, Brand.slug).where(Brand.slug.like(f"{wanted}%"))
        )
    )
    if wanted not in existing:
        return wanted
    n = 2
    while f"{wanted}-{n}" in existing:
        n += 1
    return f"{wanted}-{n}"


def create_brand(agency_id: str, data: dict[str, Any], *, actor: audit.Actor) -> Brand:
    validate_timezone(data.get("timezone", "UTC"))
    if data.get("slug"):
        slug = data["slug"]
        taken = db.session.scalar(tenancy.scoped_select(Brand, Brand.id).where(Brand.slug == slug))
        if taken:
            raise Conflict(
                f"Another brand of this agency uses the slug '{slug}'.",
                errors={"slug": ["Already used in this agency."]},
            )
    else:
        slug = _unique_slug(agency_id, slugify(data["name"]))
    brand = Brand(
        agency_id=agency_id,
        name=data["name"],
        slug=slug,
        timezone=data.get("timezone", "UTC"),
        approval_mode=data.get("approval_mode", "none"),
        branding=data.get("branding") or {},
    )
    db.session.add(brand)
    try:
        db.session.flush()
    except IntegrityError:
        db.session.rollback()
        raise Conflict(
            f"Another brand of this agency uses the slug '{slug}'.",
            errors={"slug": ["Already used in this agency."]},
        ) from None
    audit.record(
        "brand.created",
        actor=actor,
        agency_id=agency_id,
        brand_id=brand.id,
        target_type="brand",
        target_id=brand.id,
        data={"name": brand.name},
    )
    db.session.commit()
    return brand


def update_brand(brand: Brand, changes: dict[str, Any], *, actor: audit.Actor) -> Brand:
    if "timezone" in changes:
        validate_timezone(changes["timezone"])
    if "slug" in changes and changes["slug"] != brand.slug:
        taken = db.session.scalar(
            tenancy.scoped_select(Brand, Brand.id).where(
                Brand.slug == changes["slug"], Brand.id != brand.id
            )
        )
        if taken:
            raise Conflict(
                f"Another brand of this agency uses the slug '{changes['slug']}'.",
                errors={"slug": ["Already used in this agency."]},
            )
    if "branding" in changes:
        changes["branding"] = {**(brand.branding or {}), **(changes["branding"] or {})}
    for field, value in changes.items():
        setattr(brand, field, value)
    brand.updated_at = utcnow()
    audit.record(
        "brand.updated",
        actor=actor,
        agency_id=brand.agency_id,
        brand_id=brand.id,
        target_type="brand",
        target_id=brand.id,
        data={"fields": sorted(changes)},
    )
    db.session.commit()
    return brand


def set_archived(brand: Brand, archived: bool, *, actor: audit.Actor) -> Brand:
    brand.status = BrandStatus.ARCHIVED if archived else BrandStatus.ACTIVE
    brand.archived_at = utcnow() if archived else None
    brand.updated_at = utcnow()
    audit.record(
        "brand.archived" if archived else "brand.unarchived",
        actor=actor,
        agency_id=brand.agency_id,
        brand_id=brand.id,
        target_type="brand",
        target_id=brand.id,
    )
    db.session.commit()
    return brand


def brand_owned_tables() -> list[Any]:
    """Every table holding a brand's rows, children first (safe deletion order)."""
    tables = [t for t in Base.metadata.sorted_tables if "brand_id" in t.c and t.name != "brands"]
    return list(reversed(tables))


def offboard(brand: Brand, *, actor: audit.Actor) -> dict[str, int]:
    """Delete every row the brand owns, then the brand. Returns the rows deleted per table.

    The accounts' tokens are revoked at their networks by jobs, once this commits."""
    account_revocations.hold(brand)  # before their rows go
    deleted: dict[str, int] = {}
    for table in brand_owned_tables():
        result = db.session.execute(
            tenancy.scoped_delete(table).where(table.c.brand_id == brand.id)
        )
        deleted[table.name] = result.rowcount or 0
    _forget_brand_in_api_keys(brand, actor)
    db.session.delete(brand)
    db.session.flush()
    deleted["brands"] = 1
    audit.record(
        "brand.offboarded",
        actor=actor,
        agency_id=brand.agency_id,
        target_type="brand",
        target_id=brand.id,
        data={"name": brand.name, "deleted": deleted},
    )
    db.session.commit()
    # Files after rows: if the commit failed, the rows that point to them would still exist.
    deleted["media_files"] = media.remove_brand_files(brand.agency_id, brand.id)
    return deleted


def _forget_brand_in_api_keys(brand: Brand, actor: audit.Actor) -> None:
    """Keys limited to this brand lose it; a key left with no brand is revoked, never widened
    to every brand (an empty limit would otherwise read as "no limit")."""
    keys = db.session.scalars(tenancy.scoped_select(ApiKey).where(ApiKey.brand_ids.is_not(None)))
    for key in keys:
        if brand.id not in (key.brand_ids or []):
            continue
        key.brand_ids = [b for b in key.brand_ids if b != brand.id]
        if not key.brand_ids and key.revoked_at is None:
            key.revoked_at = utcnow()
            audit.record(
                "api_key.revoked",
                actor=actor,
                agency_id=key.agency_id,
                target_type="api_key",
                target_id=key.id,
                data={"reason": "its only brand was offboarded"},
            )


def _export_row(table: Any, row: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for column in table.c:
        if column.info.get("secret"):
            continue
        value = row._mapping[column.name]
        out[column.name] = value.isoformat() if hasattr(value, "isoformat") else value
    return out


def export(brand: Brand, *, actor: audit.Actor) -> dict[str, Any]:
    """Everything the brand owns, as plain JSON (secrets such as credentials left out)."""
    brand_table = Brand.__table__
    brand_row = db.session.execute(
        tenancy.scoped_select(brand_table).where(brand_table.c.id == brand.id)
    ).one()
    tables: dict[str, list[dict[str, Any]]] = {}
    for table in reversed(brand_owned_tables()):
        rows = db.session.execute(
            tenancy.scoped_select(table)
            .where(table.c.brand_id == brand.id)
            .order_by(*table.primary_key.columns)
        )
        tables[table.name] = [_export_row(table, row) for row in rows]
    audit.record(
        "brand.exported",
        actor=actor,
        agency_id=brand.agency_id,
        brand_id=brand.id,
        target_type="brand",
        target_id=brand.id,
    )
    db.session.commit()
    return {
        "brand": _export_row(brand_table, brand_row),
        "tables": tables,
        "exported_at": utcnow(),
    }


def count_brands() -> int:
    return db.session.scalar(tenancy.scoped_select(Brand, func.count(Brand.id))) or 0


# -- the list, read lean --------------------------------------------------------------------------
# As the post list (app/services/posts/reads.py): plain rows put in BrandSchema's shape here,
# without ORM objects or marshmallow; tests/test_lean_lists.py holds both shapes equal.

_LIST_COLUMNS = (
    Brand.id,
    Brand.name,
    Brand.slug,
    Brand.timezone,
    Brand.approval_mode,
    Brand.branding,
    Brand.status,
    Brand.archived_at,
    Brand.created_at,
    Brand.updated_at,
)
_BRANDING_FIELDS = ("logo_url", "primary_color", "secondary_color")


def list_statement(args: dict[str, Any]) -> Select[Any]:
    """The brands the caller reaches, of plain columns for `list_items`; paged by id."""
    stmt = tenancy.scoped_select(Brand, *_LIST_COLUMNS)
    if args.get("status"):
        stmt = stmt.where(Brand.status == args["status"])
    return stmt


def list_items(rows: Sequence[Any]) -> list[dict[str, Any]]:
    """Rows of `list_statement` as BrandSchema dumps them."""
    # Unpacked by position (the order of _LIST_COLUMNS): a Row's attributes cost more to read.
    return [
        {
            "id": brand_id,
            "name": name,
            "slug": slug,
            "timezone": timezone,
            "approval_mode": approval_mode,
            "branding": _branding(branding),
            "status": status,
            "archived_at": dump_datetime(archived_at),
            "created_at": dump_datetime(created_at),
            "updated_at": dump_datetime(updated_at),
        }
        for (
            brand_id,
            name,
            slug,
            timezone,
            approval_mode,
            branding,
            status,
            archived_at,
            created_at,
            updated_at,
        ) in rows
    ]


def _branding(stored: dict[str, Any] | None) -> dict[str, Any] | None:
    # As the nested BrandingSchema: its fields only, those the stored object has, as strings.
    if stored is None:
        return None
    return {
        name: None if stored[name] is None else str(stored[name])
        for name in _BRANDING_FIELDS
        if name in stored
    }
