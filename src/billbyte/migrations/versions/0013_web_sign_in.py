"""auth: staff and portal users sign in to the console and the portal (sessions, resets)

Revision ID: 0013_web_sign_in
Revises: 0008_connectors
Create Date: 2026-12-02 05:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import billbyte.db.base

revision: str = "0013_web_sign_in"
down_revision: str | None = "0008_connectors"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

When = billbyte.db.base.UTCDateTime


def _sign_in_columns() -> list[sa.Column]:
    return [
        sa.Column("password_hash", sa.String(length=200), nullable=True),
        sa.Column("failed_sign_ins", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("locked_until", When(timezone=True), nullable=True),
        sa.Column("disabled_at", When(timezone=True), nullable=True),
        sa.Column("last_sign_in_at", When(timezone=True), nullable=True),
    ]


def upgrade() -> None:
    with op.batch_alter_table("msp_users", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("name", sa.String(length=200), nullable=False, server_default="")
        )
        for column in _sign_in_columns():
            batch_op.add_column(column)

    op.create_table(
        "portal_users",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("msp_id", sa.String(length=40), nullable=False),
        sa.Column("customer_id", sa.String(length=40), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("locale", sa.String(length=20), nullable=True),
        *_sign_in_columns(),
        sa.Column("created_at", When(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["customer_id"], ["customers.id"], name=op.f("fk_portal_users_customer_id_customers")
        ),
        sa.ForeignKeyConstraint(["msp_id"], ["msps.id"], name=op.f("fk_portal_users_msp_id_msps")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_portal_users")),
        sa.UniqueConstraint("email", name=op.f("uq_portal_users_email")),
    )
    with op.batch_alter_table("portal_users", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_portal_users_msp_id"), ["msp_id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_portal_users_customer_id"), ["customer_id"], unique=False
        )

    op.create_table(
        "web_sessions",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("audience", sa.String(length=10), nullable=False),
        sa.Column("msp_id", sa.String(length=40), nullable=False),
        sa.Column("user_id", sa.String(length=40), nullable=False),
        sa.Column("csrf_token", sa.String(length=64), nullable=False),
        sa.Column("created_at", When(timezone=True), nullable=False),
        sa.Column("expires_at", When(timezone=True), nullable=False),
        sa.Column("revoked_at", When(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["msp_id"], ["msps.id"], name=op.f("fk_web_sessions_msp_id_msps")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_web_sessions")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_web_sessions_token_hash")),
    )
    with op.batch_alter_table("web_sessions", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_web_sessions_msp_id"), ["msp_id"], unique=False)
        batch_op.create_index("ix_web_sessions_user", ["audience", "user_id"], unique=False)

    op.create_table(
        "password_resets",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("audience", sa.String(length=10), nullable=False),
        sa.Column("msp_id", sa.String(length=40), nullable=False),
        sa.Column("user_id", sa.String(length=40), nullable=False),
        sa.Column("created_by", sa.String(length=80), nullable=False),
        sa.Column("created_at", When(timezone=True), nullable=False),
        sa.Column("expires_at", When(timezone=True), nullable=False),
        sa.Column("used_at", When(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["msp_id"], ["msps.id"], name=op.f("fk_password_resets_msp_id_msps")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_password_resets")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_password_resets_token_hash")),
    )
    with op.batch_alter_table("password_resets", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_password_resets_msp_id"), ["msp_id"], unique=False)


def downgrade() -> None:
    op.drop_table("password_resets")
    op.drop_table("web_sessions")
    op.drop_table("portal_users")
    with op.batch_alter_table("msp_users", schema=None) as batch_op:
        for name in (
            "last_sign_in_at",
            "disabled_at",
            "locked_until",
            "failed_sign_ins",
            "password_hash",
            "name",
        ):
            batch_op.drop_column(name)
