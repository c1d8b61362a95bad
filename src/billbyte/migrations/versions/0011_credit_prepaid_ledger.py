"""credit: prepaid balance ledger, MSP overdraft switch

Revision ID: 0011_credit
Revises: 0008_connectors
Create Date: 2026-12-01 21:30:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import billbyte.db.base

revision: str = "0011_credit"
down_revision: str | None = "0008_connectors"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "prepaid_movements",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("msp_id", sa.String(length=40), nullable=False),
        sa.Column("customer_id", sa.String(length=40), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("stage", sa.String(length=10), nullable=True),
        sa.Column("period", sa.String(length=7), nullable=True),
        sa.Column("amount", billbyte.db.base.Money(length=64), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("balance_after", billbyte.db.base.Money(length=64), nullable=False),
        sa.Column("reference", sa.String(length=200), nullable=True),
        sa.Column("note", sa.String(length=500), nullable=True),
        sa.Column("actor", sa.String(length=200), nullable=False),
        sa.Column("created_at", billbyte.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customers.id"],
            name=op.f("fk_prepaid_movements_customer_id_customers"),
        ),
        sa.ForeignKeyConstraint(
            ["msp_id"], ["msps.id"], name=op.f("fk_prepaid_movements_msp_id_msps")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_prepaid_movements")),
        sa.UniqueConstraint(
            "customer_id", "reference", name=op.f("uq_prepaid_movements_customer_id_reference")
        ),
    )
    with op.batch_alter_table("prepaid_movements", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_prepaid_movements_customer_id"), ["customer_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_prepaid_movements_msp_id"), ["msp_id"], unique=False)
    with op.batch_alter_table("credit_policies", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("prepaid_overdraft", sa.Boolean(), nullable=False, server_default=sa.false())
        )
    # Existing prepaid balances become each customer's opening top-up, so the ledger's sum
    # equals the balance from the first day (charges already rated draw on the next rating).
    op.execute(
        """
        INSERT INTO prepaid_movements
            (id, msp_id, customer_id, kind, stage, period, amount, currency, balance_after,
             reference, note, actor, created_at)
        SELECT 'ppm_open_' || id, msp_id, id, 'top_up', NULL, NULL, prepaid_balance, currency,
               prepaid_balance, 'opening-balance', 'balance before the prepaid ledger',
               'system:migration', CURRENT_TIMESTAMP
        FROM customers WHERE prepaid_balance IS NOT NULL
        """
    )


def downgrade() -> None:
    with op.batch_alter_table("credit_policies", schema=None) as batch_op:
        batch_op.drop_column("prepaid_overdraft")
    with op.batch_alter_table("prepaid_movements", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_prepaid_movements_msp_id"))
        batch_op.drop_index(batch_op.f("ix_prepaid_movements_customer_id"))
    op.drop_table("prepaid_movements")
