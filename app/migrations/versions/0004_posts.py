"""posts, variants, labels, media order, deliveries, posting slots

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26 13:51:31.648319
"""

import sqlalchemy as sa
from alembic import op

import app.models.base
from app.migrations import drop_tenant_policy_sql, tenant_policy_sql

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

TENANT_TABLES = (
    "posts",
    "post_labels",
    "post_media",
    "post_variants",
    "deliveries",
    "posting_slots",
)


def upgrade() -> None:
    op.create_table(
        "posting_slots",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("weekday", sa.Integer(), nullable=False),
        sa.Column("local_time", sa.String(length=5), nullable=False),
        sa.Column("brand_id", sa.String(length=40), nullable=False),
        sa.Column("agency_id", sa.String(length=40), nullable=False),
        sa.Column("created_at", app.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["agency_id"],
            ["agencies.id"],
            name=op.f("fk_posting_slots_agency_id_agencies"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["brand_id"],
            ["brands.id"],
            name=op.f("fk_posting_slots_brand_id_brands"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_posting_slots")),
        sa.UniqueConstraint(
            "brand_id",
            "weekday",
            "local_time",
            name=op.f("uq_posting_slots_brand_id_weekday_local_time"),
        ),
    )
    with op.batch_alter_table("posting_slots", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_posting_slots_agency_id"), ["agency_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_posting_slots_brand_id"), ["brand_id"], unique=False)

    op.create_table(
        "posts",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("link", sa.String(length=2000), nullable=True),
        sa.Column("campaign", sa.String(length=200), nullable=True),
        sa.Column("internal_notes", sa.Text(), nullable=True),
        sa.Column("status", sa.String(length=24), nullable=False),
        sa.Column("approval_stage", sa.String(length=16), nullable=True),
        sa.Column("review_comment", sa.Text(), nullable=True),
        sa.Column("scheduled_at", app.models.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("published_at", app.models.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("created_by_user_id", sa.String(length=40), nullable=True),
        sa.Column("updated_at", app.models.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("brand_id", sa.String(length=40), nullable=False),
        sa.Column("agency_id", sa.String(length=40), nullable=False),
        sa.Column("created_at", app.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["agency_id"],
            ["agencies.id"],
            name=op.f("fk_posts_agency_id_agencies"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["brand_id"], ["brands.id"], name=op.f("fk_posts_brand_id_brands"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_posts")),
    )
    with op.batch_alter_table("posts", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_posts_agency_id"), ["agency_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_posts_brand_id"), ["brand_id"], unique=False)
        batch_op.create_index(
            "ix_posts_brand_id_campaign_id", ["brand_id", "campaign", "id"], unique=False
        )
        batch_op.create_index("ix_posts_brand_id_id", ["brand_id", "id"], unique=False)
        batch_op.create_index(
            "ix_posts_brand_id_scheduled_at", ["brand_id", "scheduled_at"], unique=False
        )
        batch_op.create_index(
            "ix_posts_brand_id_status_id", ["brand_id", "status", "id"], unique=False
        )

    op.create_table(
        "deliveries",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("post_id", sa.String(length=40), nullable=False),
        sa.Column("account_id", sa.String(length=40), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("external_id", sa.String(length=255), nullable=True),
        sa.Column("external_url", sa.String(length=2000), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("scheduled_for", app.models.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("published_at", app.models.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("updated_at", app.models.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("brand_id", sa.String(length=40), nullable=False),
        sa.Column("agency_id", sa.String(length=40), nullable=False),
        sa.Column("created_at", app.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["social_accounts.id"],
            name=op.f("fk_deliveries_account_id_social_accounts"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["agency_id"],
            ["agencies.id"],
            name=op.f("fk_deliveries_agency_id_agencies"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["brand_id"],
            ["brands.id"],
            name=op.f("fk_deliveries_brand_id_brands"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["post_id"], ["posts.id"], name=op.f("fk_deliveries_post_id_posts"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_deliveries")),
        sa.UniqueConstraint("post_id", "account_id", name=op.f("uq_deliveries_post_id_account_id")),
    )
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_deliveries_account_id"), ["account_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_deliveries_agency_id"), ["agency_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_deliveries_brand_id"), ["brand_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_deliveries_post_id"), ["post_id"], unique=False)
        batch_op.create_index(
            "ix_deliveries_status_scheduled_for", ["status", "scheduled_for"], unique=False
        )

    op.create_table(
        "post_labels",
        sa.Column("post_id", sa.String(length=40), nullable=False),
        sa.Column("label", sa.String(length=100), nullable=False),
        sa.Column("brand_id", sa.String(length=40), nullable=False),
        sa.Column("agency_id", sa.String(length=40), nullable=False),
        sa.ForeignKeyConstraint(
            ["agency_id"],
            ["agencies.id"],
            name=op.f("fk_post_labels_agency_id_agencies"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["brand_id"],
            ["brands.id"],
            name=op.f("fk_post_labels_brand_id_brands"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["post_id"], ["posts.id"], name=op.f("fk_post_labels_post_id_posts"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("post_id", "label", name=op.f("pk_post_labels")),
    )
    with op.batch_alter_table("post_labels", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_post_labels_agency_id"), ["agency_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_post_labels_brand_id"), ["brand_id"], unique=False)
        batch_op.create_index(
            "ix_post_labels_brand_id_label_post_id", ["brand_id", "label", "post_id"], unique=False
        )

    op.create_table(
        "post_media",
        sa.Column("post_id", sa.String(length=40), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("media_id", sa.String(length=40), nullable=False),
        sa.Column("brand_id", sa.String(length=40), nullable=False),
        sa.Column("agency_id", sa.String(length=40), nullable=False),
        sa.ForeignKeyConstraint(
            ["agency_id"],
            ["agencies.id"],
            name=op.f("fk_post_media_agency_id_agencies"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["brand_id"],
            ["brands.id"],
            name=op.f("fk_post_media_brand_id_brands"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["media_id"],
            ["media.id"],
            name=op.f("fk_post_media_media_id_media"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["post_id"], ["posts.id"], name=op.f("fk_post_media_post_id_posts"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("post_id", "position", name=op.f("pk_post_media")),
    )
    with op.batch_alter_table("post_media", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_post_media_agency_id"), ["agency_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_post_media_brand_id"), ["brand_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_post_media_media_id"), ["media_id"], unique=False)

    op.create_table(
        "post_variants",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("post_id", sa.String(length=40), nullable=False),
        sa.Column("account_id", sa.String(length=40), nullable=False),
        sa.Column("text", sa.Text(), nullable=True),
        sa.Column("media_ids", sa.JSON(), nullable=True),
        sa.Column("updated_at", app.models.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("brand_id", sa.String(length=40), nullable=False),
        sa.Column("agency_id", sa.String(length=40), nullable=False),
        sa.Column("created_at", app.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["social_accounts.id"],
            name=op.f("fk_post_variants_account_id_social_accounts"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["agency_id"],
            ["agencies.id"],
            name=op.f("fk_post_variants_agency_id_agencies"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["brand_id"],
            ["brands.id"],
            name=op.f("fk_post_variants_brand_id_brands"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["post_id"],
            ["posts.id"],
            name=op.f("fk_post_variants_post_id_posts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_post_variants")),
        sa.UniqueConstraint(
            "post_id", "account_id", name=op.f("uq_post_variants_post_id_account_id")
        ),
    )
    with op.batch_alter_table("post_variants", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_post_variants_account_id"), ["account_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_post_variants_agency_id"), ["agency_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_post_variants_brand_id"), ["brand_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_post_variants_post_id"), ["post_id"], unique=False)

    if op.get_bind().dialect.name == "postgresql":
        for table in TENANT_TABLES:
            for statement in tenant_policy_sql(table):
                op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for table in TENANT_TABLES:
            for statement in drop_tenant_policy_sql(table):
                op.execute(statement)
    with op.batch_alter_table("post_variants", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_post_variants_post_id"))
        batch_op.drop_index(batch_op.f("ix_post_variants_brand_id"))
        batch_op.drop_index(batch_op.f("ix_post_variants_agency_id"))
        batch_op.drop_index(batch_op.f("ix_post_variants_account_id"))

    op.drop_table("post_variants")
    with op.batch_alter_table("post_media", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_post_media_media_id"))
        batch_op.drop_index(batch_op.f("ix_post_media_brand_id"))
        batch_op.drop_index(batch_op.f("ix_post_media_agency_id"))

    op.drop_table("post_media")
    with op.batch_alter_table("post_labels", schema=None) as batch_op:
        batch_op.drop_index("ix_post_labels_brand_id_label_post_id")
        batch_op.drop_index(batch_op.f("ix_post_labels_brand_id"))
        batch_op.drop_index(batch_op.f("ix_post_labels_agency_id"))

    op.drop_table("post_labels")
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.drop_index("ix_deliveries_status_scheduled_for")
        batch_op.drop_index(batch_op.f("ix_deliveries_post_id"))
        batch_op.drop_index(batch_op.f("ix_deliveries_brand_id"))
        batch_op.drop_index(batch_op.f("ix_deliveries_agency_id"))
        batch_op.drop_index(batch_op.f("ix_deliveries_account_id"))

    op.drop_table("deliveries")
    with op.batch_alter_table("posts", schema=None) as batch_op:
        batch_op.drop_index("ix_posts_brand_id_status_id")
        batch_op.drop_index("ix_posts_brand_id_scheduled_at")
        batch_op.drop_index("ix_posts_brand_id_id")
        batch_op.drop_index("ix_posts_brand_id_campaign_id")
        batch_op.drop_index(batch_op.f("ix_posts_brand_id"))
        batch_op.drop_index(batch_op.f("ix_posts_agency_id"))

    op.drop_table("posts")
    with op.batch_alter_table("posting_slots", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_posting_slots_brand_id"))
        batch_op.drop_index(batch_op.f("ix_posting_slots_agency_id"))

    op.drop_table("posting_slots")
