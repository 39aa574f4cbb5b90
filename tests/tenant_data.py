"""What an agency owns, read past RLS: its tables and models, a snapshot of its rows to compare
before and after, and the strings that would give its data away in someone else's answer."""

from __future__ import annotations

import re
from typing import Any

import sqlalchemy as sa
from sqlalchemy import create_engine
from sqlalchemy.pool import NullPool

from app.models import Base

ID_PATTERN = re.compile(r"^[a-z]{2,5}_[0-9A-HJKMNP-TV-Z]{26}$")


def tenant_tables() -> list[sa.Table]:
    return [t for t in Base.metadata.sorted_tables if "agency_id" in t.c]


def tenant_models() -> list[type]:
    """Every mapped class owning rows of an agency (`agencies` itself is keyed by its id)."""
    return [
        mapper.class_
        for mapper in Base.registry.mappers
        if "agency_id" in mapper.local_table.c or mapper.local_table.name == "agencies"
    ]


def snapshot(owner_url: str, agency_id: str) -> dict[str, list[dict[str, Any]]]:
    """Every row the agency owns, read past RLS (as the migration owner), for before/after."""
    volatile = {"last_used_at"}  # a key's use is not a change of the tenant's data
    engine = create_engine(owner_url, poolclass=NullPool)
    out: dict[str, list[dict[str, Any]]] = {}
    with engine.connect() as conn:
        for table in [*tenant_tables(), Base.metadata.tables["agencies"]]:
            column = table.c.agency_id if "agency_id" in table.c else table.c.id
            rows = conn.execute(sa.select(table).where(column == agency_id)).mappings()
            out[table.name] = sorted(
                ({k: v for k, v in row.items() if k not in volatile} for row in rows),
                key=repr,
            )
    engine.dispose()
    return out


def telltales(rows: dict[str, list[dict[str, Any]]]) -> set[str]:
    """Strings that identify an agency's data: ids, names, slugs, e-mails, key prefixes."""
    found: set[str] = set()
    for table_rows in rows.values():
        for row in table_rows:
            for column, value in row.items():
                if not isinstance(value, str):
                    continue
                if ID_PATTERN.match(value) or (
                    column in ("name", "slug", "email", "prefix") and len(value) >= 8
                ):
                    found.add(value)
    return found
