"""social accounts

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26 13:48:01.677047
"""

import sqlalchemy as sa
from alembic import op

import app.models.base
from app.migrations import drop_tenant_policy_sql, tenant_policy_sql

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "social_accounts",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("network", sa.String(length=20), nullable=False),
        sa.Column("external_id", sa.String(length=255), nullable=False),
        sa.Column("handle", sa.String(length=255), nullable=False),
        sa.Column("display_name", sa.String(length=255), nullable=True),
        sa.Column("instance_url", sa.String(length=500), nullable=True),
        sa.Column("account_kind", sa.String(length=40), nullable=True),
        sa.Column("credentials_encrypted", sa.LargeBinary(), nullable=True),
        sa.Column("scopes", sa.JSON(), nullable=True),
        sa.Column("token_expires_at", app.models.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("health", sa.String(length=20), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("last_refreshed_at", app.models.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("connected_by_user_id", sa.String(length=40), nullable=True),
        sa.Column("settings", sa.JSON(), nullable=False),
        sa.Column("updated_at", app.models.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("disconnected_at", app.models.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("brand_id", sa.String(length=40), nullable=False),
        sa.Column("agency_id", sa.String(length=40), nullable=False),
        sa.Column("created_at", app.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["agency_id"],
            ["agencies.id"],
            name=op.f("fk_social_accounts_agency_id_agencies"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["brand_id"],
            ["brands.id"],
            name=op.f("fk_social_accounts_brand_id_brands"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_social_accounts")),
        sa.UniqueConstraint(
            "brand_id",
            "network",
            "external_id",
            name=op.f("uq_social_accounts_brand_id_network_external_id"),
        ),
    )
    with op.batch_alter_table("social_accounts", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_social_accounts_agency_id"), ["agency_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_social_accounts_brand_id"), ["brand_id"], unique=False)
    op.create_table(
        "oauth_states",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("state_digest", sa.String(length=64), nullable=False),
        sa.Column("network", sa.String(length=20), nullable=False),
        sa.Column("principal_kind", sa.String(length=20), nullable=False),
        sa.Column("principal_id", sa.String(length=40), nullable=False),
        sa.Column("instance_url", sa.String(length=500), nullable=True),
        sa.Column("account_kind", sa.String(length=40), nullable=True),
        sa.Column("redirect_uri", sa.String(length=1000), nullable=False),
        sa.Column("account_id", sa.String(length=40), nullable=True),
        sa.Column("verifier_encrypted", sa.LargeBinary(), nullable=True),
        sa.Column("expires_at", app.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("used_at", app.models.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("brand_id", sa.String(length=40), nullable=False),
        sa.Column("agency_id", sa.String(length=40), nullable=False),
        sa.Column("created_at", app.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["agency_id"],
            ["agencies.id"],
            name=op.f("fk_oauth_states_agency_id_agencies"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["brand_id"],
            ["brands.id"],
            name=op.f("fk_oauth_states_brand_id_brands"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_oauth_states")),
        sa.UniqueConstraint("state_digest", name=op.f("uq_oauth_states_state_digest")),
    )
    with op.batch_alter_table("oauth_states", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_oauth_states_agency_id"), ["agency_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_oauth_states_brand_id"), ["brand_id"], unique=False)
    op.create_table(
        "mastodon_apps",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("instance_url", sa.String(length=500), nullable=False),
        sa.Column("redirect_uri", sa.String(length=1000), nullable=False),
        sa.Column("scopes", sa.String(length=500), nullable=False),
        sa.Column("client_id", sa.String(length=255), nullable=False),
        sa.Column("client_secret_encrypted", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", app.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_mastodon_apps")),
        sa.UniqueConstraint(
            "instance_url",
            "redirect_uri",
            "scopes",
            name=op.f("uq_mastodon_apps_instance_url_redirect_uri_scopes"),
        ),
    )
    if op.get_bind().dialect.name == "postgresql":
        for table in ("social_accounts", "oauth_states"):
            for statement in tenant_policy_sql(table):
                op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for table in ("social_accounts", "oauth_states"):
            for statement in drop_tenant_policy_sql(table):
                op.execute(statement)
    op.drop_table("mastodon_apps")
    with op.batch_alter_table("oauth_states", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_oauth_states_brand_id"))
        batch_op.drop_index(batch_op.f("ix_oauth_states_agency_id"))
    op.drop_table("oauth_states")
    with op.batch_alter_table("social_accounts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_social_accounts_brand_id"))
        batch_op.drop_index(batch_op.f("ix_social_accounts_agency_id"))

    op.drop_table("social_accounts")
