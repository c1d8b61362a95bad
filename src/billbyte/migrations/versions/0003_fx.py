"""fx: exchange rates per MSP and the MSP's conversion policy

Revision ID: 0003_fx
Revises: 0002
Create Date: 2026-11-25 03:10:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import billbyte.db.base

revision: str = "0003_fx"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "fx_policies",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("msp_id", sa.String(length=40), nullable=False),
        sa.Column("base_currency", sa.String(length=3), nullable=False),
        sa.Column("mode", sa.String(length=20), nullable=False),
        sa.Column("max_staleness_days", sa.Integer(), nullable=False),
        sa.Column("created_at", billbyte.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", billbyte.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["msp_id"], ["msps.id"], name=op.f("fk_fx_policies_msp_id_msps")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_fx_policies")),
        sa.UniqueConstraint("msp_id", name=op.f("uq_fx_policies_msp_id")),
    )
    op.create_table(
        "fx_rates",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("msp_id", sa.String(length=40), nullable=False),
        sa.Column("base", sa.String(length=3), nullable=False),
        sa.Column("quote", sa.String(length=3), nullable=False),
        sa.Column("rate_date", sa.Date(), nullable=False),
        sa.Column("rate", billbyte.db.base.Money(length=64), nullable=False),
        sa.Column("source", sa.String(length=20), nullable=False),
        sa.Column("created_at", billbyte.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", billbyte.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["msp_id"], ["msps.id"], name=op.f("fk_fx_rates_msp_id_msps")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_fx_rates")),
        sa.UniqueConstraint(
            "msp_id",
            "base",
            "quote",
            "rate_date",
            name=op.f("uq_fx_rates_msp_id_base_quote_rate_date"),
        ),
    )


def downgrade() -> None:
    op.drop_table("fx_rates")
    op.drop_table("fx_policies")
