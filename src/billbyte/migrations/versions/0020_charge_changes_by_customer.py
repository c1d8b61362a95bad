"""charges: the change feed indexed by customer and period

``GET /v1/customers/{id}/charges`` answers with an ETag made from the customer's last change
of that period (``max(seq)``); without this index finding it scans the MSP's whole feed.

Revision ID: 0020_charge_changes_by_customer
Revises: 0019_logo_versions
Create Date: 2026-12-03 16:10:00
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0020_charge_changes_by_customer"
down_revision: str | Sequence[str] | None = "0019_logo_versions"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        "ix_charge_changes_customer_period",
        "charge_changes",
        ["customer_id", "period", "seq"],
    )


def downgrade() -> None:
    op.drop_index("ix_charge_changes_customer_period", table_name="charge_changes")
