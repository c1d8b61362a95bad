"""invoice documents: seller billing profile, customer billing details, tax rates, invoice
mode, and the tax, terms and party snapshots of finalized invoices

Columns are added with ``ALTER TABLE ... ADD COLUMN`` (never a SQLite batch copy, which
would drop the immutability triggers of ``invoices`` and ``invoice_lines``); rows that
exist get ``document_version`` 1 and mode ``statement``, so they keep rendering as before.

Revision ID: 0018_invoice_documents
Revises: 0006_invoicing, 0017_branding
Create Date: 2026-12-02 11:40:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import billbyte.db.base

revision: str = "0018_invoice_documents"
down_revision: str | Sequence[str] | None = ("0006_invoicing", "0017_branding")
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ADDRESS = (
    ("legal_name", 200),
    ("address_line1", 200),
    ("address_line2", 200),
    ("postal_code", 20),
    ("city", 100),
    ("country", 2),
    ("tax_id", 40),
)


def _text_columns(spec: Sequence[tuple[str, int]]) -> list[sa.Column]:
    return [sa.Column(name, sa.String(length=size), nullable=True) for name, size in spec]


def upgrade() -> None:
    money = billbyte.db.base.Money()
    json = billbyte.db.base.JSONType
    moment = billbyte.db.base.UTCDateTime(timezone=True)
    op.create_table(
        "msp_billing_profiles",
        sa.Column("msp_id", sa.String(length=40), nullable=False),
        *_text_columns(
            (
                *_ADDRESS,
                ("registration", 200),
                ("email", 320),
                ("phone", 50),
                ("bank_name", 200),
                ("iban", 34),
                ("bic", 11),
            )
        ),
        sa.Column("payment_terms_days", sa.Integer(), nullable=False),
        sa.Column("footer_text", sa.String(length=1000), nullable=True),
        sa.Column("updated_at", moment, nullable=False),
        sa.ForeignKeyConstraint(
            ["msp_id"], ["msps.id"], name=op.f("fk_msp_billing_profiles_msp_id_msps")
        ),
        sa.PrimaryKeyConstraint("msp_id", name=op.f("pk_msp_billing_profiles")),
    )
    op.create_table(
        "customer_billing_details",
        sa.Column("customer_id", sa.String(length=40), nullable=False),
        sa.Column("msp_id", sa.String(length=40), nullable=False),
        *_text_columns((*_ADDRESS, ("po_number", 100), ("invoice_email", 320))),
        sa.Column("tax_treatment", sa.String(length=20), nullable=False),
        sa.Column("exemption_reason", sa.String(length=300), nullable=True),
        sa.Column("updated_at", moment, nullable=False),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customers.id"],
            name=op.f("fk_customer_billing_details_customer_id_customers"),
        ),
        sa.ForeignKeyConstraint(
            ["msp_id"], ["msps.id"], name=op.f("fk_customer_billing_details_msp_id_msps")
        ),
        sa.PrimaryKeyConstraint("customer_id", name=op.f("pk_customer_billing_details")),
    )
    op.create_index(
        op.f("ix_customer_billing_details_msp_id"), "customer_billing_details", ["msp_id"]
    )
    op.create_table(
        "tax_rates",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("msp_id", sa.String(length=40), nullable=False),
        sa.Column("country", sa.String(length=2), nullable=True),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("rate", money, nullable=False),
        sa.Column("valid_from", sa.Date(), nullable=False),
        sa.Column("valid_until", sa.Date(), nullable=True),
        sa.Column("created_at", moment, nullable=False),
        sa.ForeignKeyConstraint(["msp_id"], ["msps.id"], name=op.f("fk_tax_rates_msp_id_msps")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tax_rates")),
    )
    op.create_index("ix_tax_rates_msp_country", "tax_rates", ["msp_id", "country"])

    op.add_column(
        "invoice_settings",
        sa.Column("mode", sa.String(length=20), nullable=False, server_default="statement"),
    )
    for column in (
        sa.Column("document_version", sa.Integer(), nullable=False, server_default="1"),
        sa.Column("mode", sa.String(length=20), nullable=False, server_default="statement"),
        sa.Column("due_date", sa.Date(), nullable=True),
        sa.Column("payment_terms_days", sa.Integer(), nullable=True),
        sa.Column("seller", json, nullable=True),
        sa.Column("buyer", json, nullable=True),
        sa.Column("subtotal", money, nullable=True),
        sa.Column("tax_total", money, nullable=True),
        sa.Column("taxes", json, nullable=True),
    ):
        op.add_column("invoices", column)
    op.add_column("invoice_lines", sa.Column("tax_category", sa.String(length=4), nullable=True))
    op.add_column("invoice_lines", sa.Column("tax_rate", money, nullable=True))


def downgrade() -> None:
    for name in ("tax_rate", "tax_category"):
        op.drop_column("invoice_lines", name)
    for name in (
        "taxes",
        "tax_total",
        "subtotal",
        "buyer",
        "seller",
        "payment_terms_days",
        "due_date",
        "mode",
        "document_version",
    ):
        op.drop_column("invoices", name)
    op.drop_column("invoice_settings", "mode")
    op.drop_index("ix_tax_rates_msp_country", table_name="tax_rates")
    op.drop_table("tax_rates")
    op.drop_index(op.f("ix_customer_billing_details_msp_id"), table_name="customer_billing_details")
    op.drop_table("customer_billing_details")
    op.drop_table("msp_billing_profiles")
