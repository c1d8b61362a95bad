"""usage: a slice records the provisional slices it supersedes, whichever arrives first

Revision ID: 0012_usage_slices_supersedes
Revises: 0008_connectors
Create Date: 2026-12-01 22:30:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import billbyte.db.base

revision: str = "0012_usage_slices_supersedes"
down_revision: str | None = "0008_connectors"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("usage_slices", schema=None) as batch_op:
        batch_op.add_column(sa.Column("supersedes", billbyte.db.base.JSONType, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("usage_slices", schema=None) as batch_op:
        batch_op.drop_column("supersedes")
