"""catalog: offers, licence subscriptions and their seat history

Revision ID: 0007_catalog
Revises: 0005
Create Date: 2026-11-25 04:10:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy import Text
from sqlalchemy.dialects import postgresql

import billbyte.db.base

revision: str = "0007_catalog"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "catalog_offers",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("msp_id", sa.String(length=40), nullable=False),
        sa.Column("vendor", sa.String(length=20), nullable=False),
        sa.Column("sku_id", sa.String(length=200), nullable=False),
        sa.Column("name", sa.String(length=300), nullable=False),
        sa.Column("description", sa.String(length=1000), nullable=False),
        sa.Column("unit", sa.String(length=50), nullable=False),
        sa.Column("service_category", sa.String(length=60), nullable=False),
        sa.Column("cost_price", billbyte.db.base.Money(length=64), nullable=False),
        sa.Column("list_price", billbyte.db.base.Money(length=64), nullable=True),
        sa.Column("cost_currency", sa.String(length=3), nullable=False),
        sa.Column(
            "prices",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("prices_from", sa.Date(), nullable=True),
        sa.Column(
            "earlier_prices",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("term", sa.String(length=10), nullable=False),
        sa.Column("billing_frequency", sa.String(length=10), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", billbyte.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", billbyte.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["msp_id"], ["msps.id"], name=op.f("fk_catalog_offers_msp_id_msps")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_catalog_offers")),
        sa.UniqueConstraint(
            "msp_id",
            "vendor",
            "sku_id",
            "term",
            "billing_frequency",
            name=op.f("uq_catalog_offers_msp_id_vendor_sku_id_term_billing_frequency"),
        ),
    )
    with op.batch_alter_table("catalog_offers", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_catalog_offers_msp_id"), ["msp_id"], unique=False)

    op.create_table(
        "licence_subscriptions",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("msp_id", sa.String(length=40), nullable=False),
        sa.Column("customer_id", sa.String(length=40), nullable=False),
        sa.Column("offer_id", sa.String(length=40), nullable=False),
        sa.Column("start_date", sa.Date(), nullable=False),
        sa.Column("auto_renew", sa.Boolean(), nullable=False),
        sa.Column("last_day", sa.Date(), nullable=True),
        sa.Column("cancelled_at", billbyte.db.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("cancel_requested_for", sa.Date(), nullable=True),
        sa.Column("created_at", billbyte.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", billbyte.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customers.id"],
            name=op.f("fk_licence_subscriptions_customer_id_customers"),
        ),
        sa.ForeignKeyConstraint(
            ["msp_id"], ["msps.id"], name=op.f("fk_licence_subscriptions_msp_id_msps")
        ),
        sa.ForeignKeyConstraint(
            ["offer_id"],
            ["catalog_offers.id"],
            name=op.f("fk_licence_subscriptions_offer_id_catalog_offers"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_licence_subscriptions")),
    )
    with op.batch_alter_table("licence_subscriptions", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_licence_subscriptions_customer_id"), ["customer_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_licence_subscriptions_msp_id"), ["msp_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_licence_subscriptions_offer_id"), ["offer_id"], unique=False
        )

    op.create_table(
        "licence_quantities",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("msp_id", sa.String(length=40), nullable=False),
        sa.Column("subscription_id", sa.String(length=40), nullable=False),
        sa.Column("effective_date", sa.Date(), nullable=False),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.Column("created_at", billbyte.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["msp_id"], ["msps.id"], name=op.f("fk_licence_quantities_msp_id_msps")
        ),
        sa.ForeignKeyConstraint(
            ["subscription_id"],
            ["licence_subscriptions.id"],
            name=op.f("fk_licence_quantities_subscription_id_licence_subscriptions"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_licence_quantities")),
        sa.UniqueConstraint(
            "subscription_id",
            "effective_date",
            name=op.f("uq_licence_quantities_subscription_id_effective_date"),
        ),
    )
    with op.batch_alter_table("licence_quantities", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_licence_quantities_msp_id"), ["msp_id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_licence_quantities_subscription_id"), ["subscription_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("licence_quantities", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_licence_quantities_subscription_id"))
        batch_op.drop_index(batch_op.f("ix_licence_quantities_msp_id"))
    op.drop_table("licence_quantities")
    with op.batch_alter_table("licence_subscriptions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_licence_subscriptions_offer_id"))
        batch_op.drop_index(batch_op.f("ix_licence_subscriptions_msp_id"))
        batch_op.drop_index(batch_op.f("ix_licence_subscriptions_customer_id"))
    op.drop_table("licence_subscriptions")
    with op.batch_alter_table("catalog_offers", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_catalog_offers_msp_id"))
    op.drop_table("catalog_offers")
