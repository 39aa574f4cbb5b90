"""Rows for every table that holds a brand's data, made from the metadata alone.

Offboarding and export must cover every table with a `brand_id`, including tables added after
these tests were written, so the rows are generated from the column types rather than listed.
Unlike `tests.tenants.generic_row`, every column is filled (secret ones too, so the export test
can prove they are left out), through the owner's connection, one row per table and brand.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, String, Table, func, insert, select

from app.ids import new_id
from app.models import Base
from tests.tenants import _plain_value


def brand_tables() -> list[Table]:
    """Every table holding a brand's rows (parents first), the brands table excluded."""
    return [t for t in Base.metadata.sorted_tables if "brand_id" in t.c and t.name != "brands"]


def insert_brand_rows(
    connection: Connection, *, agency_id: str, brand_id: str, user_id: str
) -> dict[str, dict[str, Any]]:
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
                row[column.name] = _plain_value(column)
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
