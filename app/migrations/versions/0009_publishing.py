"""publishing: the pipeline's timing on deliveries, their attempts, accounts' rate limits

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-04 10:12:00

Deliveries get what the dispatcher and the publishing jobs keep in the database (the source of
truth, whatever Redis loses): when a delivery is next due (`next_attempt_at`), how long a
claimed or publishing one belongs to its job (`lease_until`), when it was claimed and tried,
and what kind of error the last try met. The dispatcher's index on (status, scheduled_for) is
replaced by the two it scans every second: (status, next_attempt_at) for due work and
(status, lease_until) for expired leases. Scheduled deliveries made before this migration are
due at their scheduled time.

`delivery_attempts` keeps one row per try, a brand's tenant data (Row-Level Security forced).
`social_accounts.rate_limited_until`: a network's 429 holds that account's deliveries.
"""

import sqlalchemy as sa
from alembic import op

import app.models.base
from app.migrations import drop_tenant_policy_sql, tenant_policy_sql

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

_INSTANT = app.models.base.UTCDateTime(timezone=True)
_DELIVERY_INSTANTS = (
    "next_attempt_at",
    "lease_until",
    "claimed_at",
    "first_attempt_at",
    "last_attempt_at",
)


def upgrade() -> None:
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.add_column(sa.Column("last_error_kind", sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column("last_status_code", sa.Integer(), nullable=True))
        for name in _DELIVERY_INSTANTS:
            batch_op.add_column(sa.Column(name, _INSTANT, nullable=True))
        batch_op.drop_index("ix_deliveries_status_scheduled_for")
        batch_op.create_index(
            "ix_deliveries_status_next_attempt_at", ["status", "next_attempt_at"], unique=False
        )
        batch_op.create_index(
            "ix_deliveries_status_lease_until", ["status", "lease_until"], unique=False
        )
    op.execute(
        "UPDATE deliveries SET next_attempt_at = scheduled_for "
        "WHERE status = 'scheduled' AND next_attempt_at IS NULL"
    )

    with op.batch_alter_table("social_accounts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("rate_limited_until", _INSTANT, nullable=True))

    op.create_table(
        "delivery_attempts",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("delivery_id", sa.String(length=40), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("action", sa.String(length=16), nullable=False),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("error_kind", sa.String(length=16), nullable=True),
        sa.Column("status_code", sa.Integer(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("started_at", _INSTANT, nullable=False),
        sa.Column("finished_at", _INSTANT, nullable=False),
        sa.Column("retry_at", _INSTANT, nullable=True),
        sa.Column("brand_id", sa.String(length=40), nullable=False),
        sa.Column("agency_id", sa.String(length=40), nullable=False),
        sa.ForeignKeyConstraint(
            ["agency_id"],
            ["agencies.id"],
            name=op.f("fk_delivery_attempts_agency_id_agencies"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["brand_id"],
            ["brands.id"],
            name=op.f("fk_delivery_attempts_brand_id_brands"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["delivery_id"],
            ["deliveries.id"],
            name=op.f("fk_delivery_attempts_delivery_id_deliveries"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_delivery_attempts")),
    )
    with op.batch_alter_table("delivery_attempts", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_delivery_attempts_agency_id"), ["agency_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_delivery_attempts_brand_id"), ["brand_id"], unique=False
        )
        batch_op.create_index(
            "ix_delivery_attempts_delivery_id_id", ["delivery_id", "id"], unique=False
        )
    if op.get_bind().dialect.name == "postgresql":
        for statement in tenant_policy_sql("delivery_attempts"):
            op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for statement in drop_tenant_policy_sql("delivery_attempts"):
            op.execute(statement)
    with op.batch_alter_table("delivery_attempts", schema=None) as batch_op:
        batch_op.drop_index("ix_delivery_attempts_delivery_id_id")
        batch_op.drop_index(batch_op.f("ix_delivery_attempts_brand_id"))
        batch_op.drop_index(batch_op.f("ix_delivery_attempts_agency_id"))
    op.drop_table("delivery_attempts")

    with op.batch_alter_table("social_accounts", schema=None) as batch_op:
        batch_op.drop_column("rate_limited_until")

    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.drop_index("ix_deliveries_status_lease_until")
        batch_op.drop_index("ix_deliveries_status_next_attempt_at")
        batch_op.create_index(
            "ix_deliveries_status_scheduled_for", ["status", "scheduled_for"], unique=False
        )
        for name in reversed(_DELIVERY_INSTANTS):
            batch_op.drop_column(name)
        batch_op.drop_column("last_status_code")
        batch_op.drop_column("last_error_kind")
