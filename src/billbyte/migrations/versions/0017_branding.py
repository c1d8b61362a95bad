"""tenancy: an MSP's brand (name, colour, support contact, logo) for its pages

Revision ID: 0017_branding
Revises: 0013_web_sign_in
Create Date: 2026-12-02 05:10:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import billbyte.db.base

revision: str = "0017_branding"
down_revision: str | None = "0013_web_sign_in"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "msp_brands",
        sa.Column("msp_id", sa.String(length=40), nullable=False),
        sa.Column("display_name", sa.String(length=200), nullable=True),
        sa.Column("primary_colour", sa.String(length=7), nullable=True),
        sa.Column("support_email", sa.String(length=320), nullable=True),
        sa.Column("support_phone", sa.String(length=50), nullable=True),
        sa.Column("support_url", sa.String(length=500), nullable=True),
        sa.Column("logo", sa.LargeBinary(), nullable=True),
        sa.Column("logo_content_type", sa.String(length=20), nullable=True),
        sa.Column("logo_version", sa.Integer(), nullable=False),
        sa.Column("updated_at", billbyte.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["msp_id"], ["msps.id"], name=op.f("fk_msp_brands_msp_id_msps")),
        sa.PrimaryKeyConstraint("msp_id", name=op.f("pk_msp_brands")),
    )


def downgrade() -> None:
    op.drop_table("msp_brands")
