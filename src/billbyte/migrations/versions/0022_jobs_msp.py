"""jobs: the MSP each job works for, and the lanes the claim serves in turn

A job of an MSP names it (``jobs.msp_id``) so that the claim can be fair between MSPs and an
MSP's admin can see its own dead letters. Existing rows get it from their payload: directly
(rating) or through the row the payload names (provisioning, service actions, suspensions,
collections, invoice runs). The installation's own jobs keep NULL.

Revision ID: 0022_jobs_msp
Revises: 0021_scale_indexes
Create Date: 2026-12-03 16:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import billbyte.db.base

revision: str = "0022_jobs_msp"
down_revision: str | Sequence[str] | None = "0021_scale_indexes"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# job kind → (payload field, table whose row of that id names the MSP); None: the field is
# the MSP's id itself.
_MSP_OF_KIND: dict[str, tuple[str, str | None]] = {
    "rate": ("msp_id", None),
    "provision": ("customer_vendor_id", "customer_vendors"),
    "service_action": ("action_id", "service_actions"),
    "suspension": ("customer_id", "customers"),
    "collect": ("partner_account_id", "partner_accounts"),
    "invoice_run": ("run_id", "invoice_runs"),
}


def _payload_field(dialect: str, field: str) -> str:
    if dialect == "postgresql":
        return f"jobs.payload ->> '{field}'"
    return f"json_extract(jobs.payload, '$.{field}')"


def upgrade() -> None:
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("msp_id", sa.String(length=40), nullable=True))
        batch_op.create_index(batch_op.f("ix_jobs_msp_id"), ["msp_id"], unique=False)
    op.create_table(
        "job_lanes",
        sa.Column("lane", sa.String(length=40), nullable=False),
        sa.Column("last_claimed_at", billbyte.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("lane", name=op.f("pk_job_lanes")),
    )
    dialect = op.get_bind().dialect.name
    for kind, (field, table) in _MSP_OF_KIND.items():
        value = _payload_field(dialect, field)
        source = value if table is None else f"(SELECT msp_id FROM {table} WHERE id = {value})"
        op.execute(f"UPDATE jobs SET msp_id = {source} WHERE kind = '{kind}'")


def downgrade() -> None:
    op.drop_table("job_lanes")
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_jobs_msp_id"))
        batch_op.drop_column("msp_id")
