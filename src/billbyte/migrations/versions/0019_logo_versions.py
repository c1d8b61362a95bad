"""tenancy: every uploaded logo kept by its version, for the invoices that show it

An invoice finalized from now on names the logo version of its seller snapshot and its PDF
shows that logo forever. The logo each brand has today becomes its first kept version.

Revision ID: 0019_logo_versions
Revises: 0018_invoice_documents
Create Date: 2026-12-03 06:40:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import billbyte.db.base

revision: str = "0019_logo_versions"
down_revision: str | Sequence[str] | None = "0018_invoice_documents"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "msp_logo_versions",
        sa.Column("msp_id", sa.String(length=40), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("content_type", sa.String(length=20), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", billbyte.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["msp_id"], ["msps.id"], name=op.f("fk_msp_logo_versions_msp_id_msps")
        ),
        sa.PrimaryKeyConstraint("msp_id", "version", name=op.f("pk_msp_logo_versions")),
    )
    op.execute(
        "INSERT INTO msp_logo_versions (msp_id, version, content_type, data, created_at) "
        "SELECT msp_id, logo_version, logo_content_type, logo, updated_at FROM msp_brands "
        "WHERE logo IS NOT NULL AND logo_content_type IS NOT NULL"
    )


def downgrade() -> None:
    op.drop_table("msp_logo_versions")
