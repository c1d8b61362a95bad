"""charges: a period-leading index for the MSP-wide reads of one month

The margin report and the console's customer list read every customer's lines of one
period. With only the (MSP, customer, period) index they walk every month of every customer
in the index to find that period's entries, which grows with the history kept; (MSP,
period) reaches the month directly. See docs/operations.md, "Sizing".

Revision ID: 0021_scale_indexes
Revises: 0020_charge_changes_by_customer
Create Date: 2026-12-03 16:10:00
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0021_scale_indexes"
down_revision: str | Sequence[str] | None = "0020_charge_changes_by_customer"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_charge_lines_period", "charge_lines", ["msp_id", "period"])


def downgrade() -> None:
    op.drop_index("ix_charge_lines_period", table_name="charge_lines")
