"""idempotency: keys scoped to the API key and its role; in-progress claims hold a lease

Records were keyed by MSP only, so they cannot be attributed to the API key that made
them: they are dropped (they are a 24-hour cache of responses, and replaying one to the
wrong key is exactly the flaw being fixed). A retry of a request made before the upgrade
runs again.

Revision ID: 0009_idempotency
Revises: 0008_connectors
Create Date: 2026-12-01 21:20:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy import Text
from sqlalchemy.dialects import postgresql

import billbyte.db.base

revision: str = "0009_idempotency"
down_revision: str | None = "0008_connectors"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _create(scoped: bool) -> None:
    caller: list[sa.Column[object]] = (
        [
            sa.Column("principal", sa.String(length=80), nullable=False),
            sa.Column("principal_role", sa.String(length=20), nullable=False),
        ]
        if scoped
        else []
    )
    lease: list[sa.Column[object]] = (
        [sa.Column("lease_expires_at", billbyte.db.base.UTCDateTime(timezone=True), nullable=True)]
        if scoped
        else []
    )
    unique = (
        sa.UniqueConstraint(
            "msp_id",
            "principal",
            "principal_role",
            "idempotency_key",
            name="uq_idempotency_records_caller_key",
        )
        if scoped
        else sa.UniqueConstraint(
            "msp_id", "idempotency_key", name=op.f("uq_idempotency_records_msp_id_idempotency_key")
        )
    )
    op.create_table(
        "idempotency_records",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("msp_id", sa.String(length=40), nullable=False),
        *caller,
        sa.Column("idempotency_key", sa.String(length=255), nullable=False),
        sa.Column("request_hash", sa.String(length=64), nullable=False),
        sa.Column("state", sa.String(length=20), nullable=False),
        *lease,
        sa.Column("response_status", sa.Integer(), nullable=True),
        sa.Column(
            "response_headers",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), "postgresql"),
            nullable=True,
        ),
        sa.Column("response_body", sa.Text(), nullable=True),
        sa.Column("created_at", billbyte.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["msp_id"], ["msps.id"], name=op.f("fk_idempotency_records_msp_id_msps")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_idempotency_records")),
        unique,
    )
    with op.batch_alter_table("idempotency_records", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_idempotency_records_msp_id"), ["msp_id"], unique=False)


def _drop() -> None:
    with op.batch_alter_table("idempotency_records", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_idempotency_records_msp_id"))
    op.drop_table("idempotency_records")


def upgrade() -> None:
    _drop()
    _create(scoped=True)


def downgrade() -> None:
    # The old shape cannot hold two keys' records under one string: start it empty too.
    _drop()
    _create(scoped=False)
