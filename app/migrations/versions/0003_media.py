"""media

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26 13:48:33.964710
"""

import sqlalchemy as sa
from alembic import op

import app.models.base
from app.migrations import drop_tenant_policy_sql, tenant_policy_sql

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "media",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("filename", sa.String(length=255), nullable=False),
        sa.Column("content_type", sa.String(length=100), nullable=False),
        sa.Column("size_bytes", sa.BigInteger(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("width", sa.Integer(), nullable=True),
        sa.Column("height", sa.Integer(), nullable=True),
        sa.Column("duration_seconds", sa.Double(), nullable=True),
        sa.Column("alt_text", sa.String(length=1500), nullable=True),
        sa.Column("storage_key", sa.String(length=500), nullable=False),
        sa.Column("uploaded_by_user_id", sa.String(length=40), nullable=True),
        sa.Column("updated_at", app.models.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("deleted_at", app.models.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("brand_id", sa.String(length=40), nullable=False),
        sa.Column("agency_id", sa.String(length=40), nullable=False),
        sa.Column("created_at", app.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["agency_id"],
            ["agencies.id"],
            name=op.f("fk_media_agency_id_agencies"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["brand_id"], ["brands.id"], name=op.f("fk_media_brand_id_brands"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_media")),
    )
    with op.batch_alter_table("media", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_media_agency_id"), ["agency_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_media_brand_id"), ["brand_id"], unique=False)
        # Keyset listing of a brand's media.
        batch_op.create_index("ix_media_brand_id_id", ["brand_id", "id"], unique=False)
    if op.get_bind().dialect.name == "postgresql":
        for statement in tenant_policy_sql("media"):
            op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for statement in drop_tenant_policy_sql("media"):
            op.execute(statement)
    with op.batch_alter_table("media", schema=None) as batch_op:
        batch_op.drop_index("ix_media_brand_id_id")
        batch_op.drop_index(batch_op.f("ix_media_brand_id"))
        batch_op.drop_index(batch_op.f("ix_media_agency_id"))

    op.drop_table("media")
