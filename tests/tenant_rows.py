"""Rows for every table that holds a brand's data, made from the metadata alone.

Offboarding and export must cover every table with a `brand_id`, including tables added after
these tests were written, so the rows are generated from the column types rather than listed.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Connection,
    DateTime,
    Float,
    Integer,
    LargeBinary,
    Numeric,
    String,
    Table,
    func,
    insert,
    select,
)

from app.ids import new_id
from app.models import Base
from app.models.base import UTCDateTime, utcnow

SECRET_BYTES = b"very-secret-credential-bytes"


def brand_tables() -> list[Table]:
    """Every table holding a brand's rows (parents first), the brands table excluded."""
    return [t for t in Base.metadata.sorted_tables if "brand_id" in t.c and t.name != "brands"]


def _value(table: Table, column: Any, brand_id: str) -> Any:
    kind = column.type
    if isinstance(kind, UTCDateTime | DateTime):
        return utcnow() + timedelta(days=1)
    if isinstance(kind, Boolean):
        return False
    if isinstance(kind, Integer):
        return 1
    if isinstance(kind, Float | Numeric):
        return 1.0
    if isinstance(kind, LargeBinary):
        return SECRET_BYTES
    if isinstance(kind, JSON):
        return {}
    if isinstance(kind, String):
        # Unique per brand and per column, so global unique constraints hold.
        text = f"{column.name[:3]}{brand_id[-10:]}"
        length = getattr(kind, "length", None)
        return text[-length:] if length else text
    raise NotImplementedError(f"no test value for {table.name}.{column.name} ({kind!r})")


def insert_brand_rows(
    connection: Connection, *, agency_id: str, brand_id: str, user_id: str
) -> dict[str, str]:
    """One row in every brand table for this brand; returns table name → the row inserted."""
    rows: dict[str, dict[str, Any]] = {}
    for table in brand_tables():
        row: dict[str, Any] = {}
        for column in table.c:
            if column.name == "agency_id":
                row[column.name] = agency_id
            elif column.name == "brand_id":
                row[column.name] = brand_id
            elif column.primary_key and isinstance(column.type, String) and not column.foreign_keys:
                row[column.name] = new_id("tst")
            elif column.foreign_keys:
                target = next(iter(column.foreign_keys)).column
                known = {"users": user_id, "brands": brand_id, "agencies": agency_id}
                parent = known.get(target.table.name) or rows.get(target.table.name, {}).get(
                    target.name
                )
                if parent is None and not column.nullable:
                    raise NotImplementedError(f"{table.name}.{column.name} → {target.table}")
                row[column.name] = parent
            elif column.default is not None or column.server_default is not None:
                continue
            else:
                row[column.name] = _value(table, column, brand_id)
        connection.execute(insert(table).values(row))
        rows[table.name] = row
    return rows


def count_brand_rows(connection: Connection, brand_id: str) -> dict[str, int]:
    return {
        table.name: connection.execute(
            select(func.count()).select_from(table).where(table.c.brand_id == brand_id)
        ).scalar_one()
        for table in brand_tables()
    }
