"""usage: import heartbeat, so that a killed import is failed within minutes

Revision ID: 0010_usage_heartbeat
Revises: 0008_connectors
Create Date: 2026-12-01 21:30:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import billbyte.db.base

revision: str = "0010_usage_heartbeat"
down_revision: str | None = "0008_connectors"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("usage_imports", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("heartbeat_at", billbyte.db.base.UTCDateTime(timezone=True), nullable=True)
        )


def downgrade() -> None:
    with op.batch_alter_table("usage_imports", schema=None) as batch_op:
        batch_op.drop_column("heartbeat_at")
