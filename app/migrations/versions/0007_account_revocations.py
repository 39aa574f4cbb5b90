"""account revocations: an offboarded brand's credentials, until the network revokes them

Agency-owned (the brand is gone), so Row-Level Security like every tenant table.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02 09:45:15
"""

import sqlalchemy as sa
from alembic import op

import app.models.base
from app.migrations import drop_tenant_policy_sql, tenant_policy_sql

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "account_revocations",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("account_id", sa.String(length=40), nullable=False),
        sa.Column("offboarded_brand_id", sa.String(length=40), nullable=False),
        sa.Column("network", sa.String(length=20), nullable=False),
        sa.Column("handle", sa.String(length=255), nullable=False),
        sa.Column("instance_url", sa.String(length=500), nullable=True),
        sa.Column("credentials_encrypted", sa.LargeBinary(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", app.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("agency_id", sa.String(length=40), nullable=False),
        sa.Column("created_at", app.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["agency_id"],
            ["agencies.id"],
            name=op.f("fk_account_revocations_agency_id_agencies"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_account_revocations")),
    )
    with op.batch_alter_table("account_revocations", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_account_revocations_agency_id"), ["agency_id"], unique=False
        )
        batch_op.create_index(
            "ix_account_revocations_next_attempt_at", ["next_attempt_at"], unique=False
        )
    if op.get_bind().dialect.name == "postgresql":
        for statement in tenant_policy_sql("account_revocations"):
            op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for statement in drop_tenant_policy_sql("account_revocations"):
            op.execute(statement)
    with op.batch_alter_table("account_revocations", schema=None) as batch_op:
        batch_op.drop_index("ix_account_revocations_next_attempt_at")
        batch_op.drop_index(batch_op.f("ix_account_revocations_agency_id"))

    op.drop_table("account_revocations")
