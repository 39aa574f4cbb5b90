"""posts listing indexes lead with agency_id

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-26 14:15:00

Every tenant query filters on agency_id as well as brand_id. With brand-led indexes the
PostgreSQL planner ANDed the single-column agency_id index into the listing's bitmap, a cost
that grows with the agency's post count; indexes leading with (agency_id, brand_id) answer both
conditions at once.
"""

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

# (old brand-led name, new agency-led name, columns after agency_id)
_INDEXES = (
    ("ix_posts_brand_id_id", "ix_posts_agency_id_brand_id_id", ["brand_id", "id"]),
    (
        "ix_posts_brand_id_status_id",
        "ix_posts_agency_id_brand_id_status_id",
        ["brand_id", "status", "id"],
    ),
    (
        "ix_posts_brand_id_campaign_id",
        "ix_posts_agency_id_brand_id_campaign_id",
        ["brand_id", "campaign", "id"],
    ),
    (
        "ix_posts_brand_id_scheduled_at",
        "ix_posts_agency_id_brand_id_scheduled_at",
        ["brand_id", "scheduled_at"],
    ),
)


def upgrade() -> None:
    with op.batch_alter_table("posts", schema=None) as batch_op:
        for old, new, columns in _INDEXES:
            batch_op.drop_index(old)
            batch_op.create_index(new, ["agency_id", *columns], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("posts", schema=None) as batch_op:
        for old, new, columns in _INDEXES:
            batch_op.drop_index(new)
            batch_op.create_index(old, columns, unique=False)
