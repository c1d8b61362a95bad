"""invoicing: settings, number counters, runs, invoices and lines, immutability triggers

Revision ID: 0006_invoicing
Revises: 0005
Create Date: 2026-11-25 04:30:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy import Text
from sqlalchemy.dialects import postgresql

import billbyte.db.base

revision: str = "0006_invoicing"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Finalized invoices and their lines can never be updated or deleted, whoever connects.
# (Row triggers do not see TRUNCATE, an administrator's tool; nor does any application path
# use it.)
_PG_TRIGGERS = [
    """
    CREATE FUNCTION billbyte_finalized_invoice_is_immutable() RETURNS trigger AS $$
    BEGIN
        IF OLD.status = 'finalized' THEN
            RAISE EXCEPTION 'invoice % is finalized: it cannot be changed or deleted', OLD.id
                USING ERRCODE = 'integrity_constraint_violation';
        END IF;
        IF TG_OP = 'DELETE' THEN
            RETURN OLD;
        END IF;
        RETURN NEW;
    END
    $$ LANGUAGE plpgsql
    """,
    """
    CREATE FUNCTION billbyte_finalized_invoice_line_is_immutable() RETURNS trigger AS $$
    BEGIN
        IF EXISTS (SELECT 1 FROM invoices WHERE id = OLD.invoice_id AND status = 'finalized') THEN
            RAISE EXCEPTION 'line % belongs to a finalized invoice: it cannot be changed or '
                'deleted', OLD.id USING ERRCODE = 'integrity_constraint_violation';
        END IF;
        IF TG_OP = 'DELETE' THEN
            RETURN OLD;
        END IF;
        RETURN NEW;
    END
    $$ LANGUAGE plpgsql
    """,
    """
    CREATE TRIGGER invoices_immutable BEFORE UPDATE OR DELETE ON invoices
    FOR EACH ROW EXECUTE FUNCTION billbyte_finalized_invoice_is_immutable()
    """,
    """
    CREATE TRIGGER invoice_lines_immutable BEFORE UPDATE OR DELETE ON invoice_lines
    FOR EACH ROW EXECUTE FUNCTION billbyte_finalized_invoice_line_is_immutable()
    """,
]
_SQLITE_TRIGGERS = [
    f"""
    CREATE TRIGGER invoices_immutable_{action.lower()} BEFORE {action} ON invoices
    WHEN OLD.status = 'finalized'
    BEGIN
        SELECT RAISE(ABORT, 'invoice is finalized: it cannot be changed or deleted');
    END
    """
    for action in ("UPDATE", "DELETE")
] + [
    f"""
    CREATE TRIGGER invoice_lines_immutable_{action.lower()} BEFORE {action} ON invoice_lines
    WHEN (SELECT status FROM invoices WHERE id = OLD.invoice_id) = 'finalized'
    BEGIN
        SELECT RAISE(ABORT, 'line of a finalized invoice: it cannot be changed or deleted');
    END
    """
    for action in ("UPDATE", "DELETE")
]


def upgrade() -> None:
    op.create_table(
        "invoice_counters",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("msp_id", sa.String(length=40), nullable=False),
        sa.Column("series", sa.String(length=10), nullable=False),
        sa.Column("last_number", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["msp_id"], ["msps.id"], name=op.f("fk_invoice_counters_msp_id_msps")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_invoice_counters")),
        sa.UniqueConstraint("msp_id", "series", name=op.f("uq_invoice_counters_msp_id_series")),
    )
    op.create_table(
        "invoice_runs",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("msp_id", sa.String(length=40), nullable=False),
        sa.Column("period", sa.String(length=7), nullable=False),
        sa.Column("force", sa.Boolean(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("actor", sa.String(length=80), nullable=False),
        sa.Column("customers_due", sa.Integer(), nullable=False),
        sa.Column("invoices_created", sa.Integer(), nullable=False),
        sa.Column("closed_without_charges", sa.Integer(), nullable=False),
        sa.Column("already_closed", sa.Integer(), nullable=False),
        sa.Column("not_due", sa.Integer(), nullable=False),
        sa.Column("failed", sa.Integer(), nullable=False),
        sa.Column(
            "errors",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("created_at", billbyte.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("started_at", billbyte.db.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("updated_at", billbyte.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("finished_at", billbyte.db.base.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["msp_id"], ["msps.id"], name=op.f("fk_invoice_runs_msp_id_msps")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_invoice_runs")),
    )
    with op.batch_alter_table("invoice_runs", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_invoice_runs_msp_id"), ["msp_id"], unique=False)

    op.create_table(
        "invoice_settings",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("msp_id", sa.String(length=40), nullable=False),
        sa.Column("grace_days", sa.Integer(), nullable=False),
        sa.Column("grouping", sa.String(length=20), nullable=False),
        sa.Column("updated_at", billbyte.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["msp_id"], ["msps.id"], name=op.f("fk_invoice_settings_msp_id_msps")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_invoice_settings")),
        sa.UniqueConstraint("msp_id", name=op.f("uq_invoice_settings_msp_id")),
    )
    op.create_table(
        "invoices",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("msp_id", sa.String(length=40), nullable=False),
        sa.Column("customer_id", sa.String(length=40), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("number", sa.String(length=20), nullable=False),
        sa.Column("period_start", sa.String(length=7), nullable=False),
        sa.Column("period_end", sa.String(length=7), nullable=False),
        sa.Column("billing_cycle", sa.String(length=20), nullable=False),
        sa.Column("issue_date", sa.Date(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("locale", sa.String(length=20), nullable=False),
        sa.Column("customer_name", sa.String(length=200), nullable=False),
        sa.Column("customer_external_id", sa.String(length=200), nullable=False),
        sa.Column("seller_name", sa.String(length=200), nullable=False),
        sa.Column("grouping", sa.String(length=20), nullable=False),
        sa.Column("total", billbyte.db.base.Money(length=64), nullable=False),
        sa.Column("total_exact", billbyte.db.base.Money(length=64), nullable=False),
        sa.Column("line_count", sa.Integer(), nullable=False),
        sa.Column(
            "fx_rates",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("credited_invoice_id", sa.String(length=40), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("run_id", sa.String(length=40), nullable=True),
        sa.Column("finalized_at", billbyte.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["credited_invoice_id"],
            ["invoices.id"],
            name=op.f("fk_invoices_credited_invoice_id_invoices"),
        ),
        sa.ForeignKeyConstraint(
            ["customer_id"], ["customers.id"], name=op.f("fk_invoices_customer_id_customers")
        ),
        sa.ForeignKeyConstraint(["msp_id"], ["msps.id"], name=op.f("fk_invoices_msp_id_msps")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_invoices")),
        sa.UniqueConstraint("msp_id", "number", name=op.f("uq_invoices_msp_id_number")),
    )
    with op.batch_alter_table("invoices", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_invoices_credited_invoice_id"), ["credited_invoice_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_invoices_customer_id"), ["customer_id"], unique=False)
        batch_op.create_index("ix_invoices_msp_id_id", ["msp_id", "id"], unique=False)
        batch_op.create_index(
            "uq_invoices_customer_period",
            ["customer_id", "period_end"],
            unique=True,
            sqlite_where=sa.text("kind = 'invoice'"),
            postgresql_where=sa.text("kind = 'invoice'"),
        )

    op.create_table(
        "invoice_lines",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("invoice_id", sa.String(length=40), nullable=False),
        sa.Column("msp_id", sa.String(length=40), nullable=False),
        sa.Column("customer_id", sa.String(length=40), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("description", sa.String(length=500), nullable=False),
        sa.Column("vendor", sa.String(length=20), nullable=True),
        sa.Column("vendor_reference", sa.String(length=300), nullable=True),
        sa.Column("service_name", sa.String(length=300), nullable=True),
        sa.Column("charge_category", sa.String(length=40), nullable=True),
        sa.Column("quantity", billbyte.db.base.Money(length=64), nullable=True),
        sa.Column("unit", sa.String(length=100), nullable=True),
        sa.Column("unit_price", billbyte.db.base.Money(length=64), nullable=True),
        sa.Column("amount", billbyte.db.base.Money(length=64), nullable=False),
        sa.Column("amount_exact", billbyte.db.base.Money(length=64), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("period", sa.String(length=7), nullable=False),
        sa.Column("service_start", sa.String(length=10), nullable=True),
        sa.Column("service_end", sa.String(length=10), nullable=True),
        sa.Column("original_period", sa.String(length=7), nullable=True),
        sa.Column(
            "fx_rates",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column(
            "sources",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), "postgresql"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["customer_id"], ["customers.id"], name=op.f("fk_invoice_lines_customer_id_customers")
        ),
        sa.ForeignKeyConstraint(
            ["invoice_id"], ["invoices.id"], name=op.f("fk_invoice_lines_invoice_id_invoices")
        ),
        sa.ForeignKeyConstraint(["msp_id"], ["msps.id"], name=op.f("fk_invoice_lines_msp_id_msps")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_invoice_lines")),
        sa.UniqueConstraint(
            "invoice_id", "position", name=op.f("uq_invoice_lines_invoice_id_position")
        ),
    )
    with op.batch_alter_table("invoice_lines", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_invoice_lines_customer_id"), ["customer_id"], unique=False
        )

    dialect = op.get_bind().dialect.name
    for statement in _PG_TRIGGERS if dialect == "postgresql" else _SQLITE_TRIGGERS:
        op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS invoice_lines_immutable ON invoice_lines")
        op.execute("DROP TRIGGER IF EXISTS invoices_immutable ON invoices")
        op.execute("DROP FUNCTION IF EXISTS billbyte_finalized_invoice_line_is_immutable()")
        op.execute("DROP FUNCTION IF EXISTS billbyte_finalized_invoice_is_immutable()")
    else:
        for name in ("invoice_lines_immutable", "invoices_immutable"):
            for action in ("update", "delete"):
                op.execute(f"DROP TRIGGER IF EXISTS {name}_{action}")
    with op.batch_alter_table("invoice_lines", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_invoice_lines_customer_id"))

    op.drop_table("invoice_lines")
    with op.batch_alter_table("invoices", schema=None) as batch_op:
        batch_op.drop_index(
            "uq_invoices_customer_period",
            sqlite_where=sa.text("kind = 'invoice'"),
            postgresql_where=sa.text("kind = 'invoice'"),
        )
        batch_op.drop_index("ix_invoices_msp_id_id")
        batch_op.drop_index(batch_op.f("ix_invoices_customer_id"))
        batch_op.drop_index(batch_op.f("ix_invoices_credited_invoice_id"))

    op.drop_table("invoices")
    op.drop_table("invoice_settings")
    with op.batch_alter_table("invoice_runs", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_invoice_runs_msp_id"))

    op.drop_table("invoice_runs")
    op.drop_table("invoice_counters")
