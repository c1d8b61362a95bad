"""Invoices, their lines, invoice runs, the MSP's invoicing settings and number counters.

Only finalized documents are stored: a draft is computed from the open charge lines each
time it is read. Finalized invoices and their lines are immutable, enforced by database
triggers created in migration ``0006_invoicing`` (see docs/invoicing.md).
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    Boolean,
    Date,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from billbyte.db.base import Base, JSONType, Money, UTCDateTime
from billbyte.kit.clock import utcnow
from billbyte.kit.ids import new_id

INVOICE = "invoice"
CREDIT_NOTE = "credit_note"
FINALIZED = "finalized"
DRAFT = "draft"
STATEMENT = "statement"
TAX_INVOICE = "invoice"  # the invoice mode: a complete tax invoice
TAX = "tax"  # the kind of a tax line
# The layout of documents finalized now. 1: before issue 12 (fpdf2 PDF); 2: WeasyPrint PDF
# without logo, CSV without tax and party columns; 3: the seller's logo (as snapshotted in
# ``invoices.seller``) on the PDF, and the invoice-mode CSV's tax, party and terms columns.
DOCUMENT_VERSION = 3


class InvoiceSettings(Base):
    """An MSP's invoicing choices; an MSP that never set them gets the defaults."""

    __tablename__ = "invoice_settings"

    id: Mapped[str] = mapped_column(String(40), primary_key=True, default=lambda: new_id("ivs"))
    msp_id: Mapped[str] = mapped_column(ForeignKey("msps.id"), unique=True)
    grace_days: Mapped[int] = mapped_column(Integer, default=5)
    # service | account | service_and_account
    grouping: Mapped[str] = mapped_column(String(20), default="service")
    # statement: lines to embed into the MSP's own invoice, no tax (the default);
    # invoice: a complete tax invoice with seller, buyer, tax lines and payment terms.
    mode: Mapped[str] = mapped_column(String(20), default="statement")
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class InvoiceCounter(Base):
    """The last number given in a series (``INV``, ``CN``) of an MSP. Numbers are taken
    inside the finalizing transaction under a row lock, so a rolled-back finalization gives
    its number back and the sequence has no gaps."""

    __tablename__ = "invoice_counters"
    __table_args__ = (UniqueConstraint("msp_id", "series"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True, default=lambda: new_id("ivc"))
    msp_id: Mapped[str] = mapped_column(ForeignKey("msps.id"))
    series: Mapped[str] = mapped_column(String(10))
    last_number: Mapped[int] = mapped_column(Integer, default=0)


class InvoiceRun(Base):
    """One execution of "close period P": progress is counted in each customer's own
    finalizing transaction, so after a crash it tells exactly what was done."""

    __tablename__ = "invoice_runs"

    id: Mapped[str] = mapped_column(String(40), primary_key=True, default=lambda: new_id("ivr"))
    msp_id: Mapped[str] = mapped_column(ForeignKey("msps.id"), index=True)
    period: Mapped[str] = mapped_column(String(7))
    force: Mapped[bool] = mapped_column(Boolean, default=False)
    status: Mapped[str] = mapped_column(String(20), default="pending")
    actor: Mapped[str] = mapped_column(String(80))
    customers_due: Mapped[int] = mapped_column(Integer, default=0)
    invoices_created: Mapped[int] = mapped_column(Integer, default=0)
    closed_without_charges: Mapped[int] = mapped_column(Integer, default=0)
    already_closed: Mapped[int] = mapped_column(Integer, default=0)
    not_due: Mapped[int] = mapped_column(Integer, default=0)
    failed: Mapped[int] = mapped_column(Integer, default=0)
    errors: Mapped[dict[str, str]] = mapped_column(JSONType, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class Invoice(Base):
    """A finalized invoice or credit note: a snapshot, never changed once written."""

    __tablename__ = "invoices"
    __table_args__ = (
        UniqueConstraint("msp_id", "number"),
        # One invoice per customer and billing period, whatever runs overlap.
        Index(
            "uq_invoices_customer_period",
            "customer_id",
            "period_end",
            unique=True,
            sqlite_where=text("kind = 'invoice'"),
            postgresql_where=text("kind = 'invoice'"),
        ),
        Index("ix_invoices_msp_id_id", "msp_id", "id"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    msp_id: Mapped[str] = mapped_column(ForeignKey("msps.id"))
    customer_id: Mapped[str] = mapped_column(ForeignKey("customers.id"), index=True)
    kind: Mapped[str] = mapped_column(String(20))  # invoice | credit_note
    status: Mapped[str] = mapped_column(String(20), default=FINALIZED)
    number: Mapped[str] = mapped_column(String(20))
    period_start: Mapped[str] = mapped_column(String(7))
    period_end: Mapped[str] = mapped_column(String(7))
    billing_cycle: Mapped[str] = mapped_column(String(20))
    issue_date: Mapped[date] = mapped_column(Date)
    currency: Mapped[str] = mapped_column(String(3))
    locale: Mapped[str] = mapped_column(String(20))
    customer_name: Mapped[str] = mapped_column(String(200))
    customer_external_id: Mapped[str] = mapped_column(String(200))
    seller_name: Mapped[str] = mapped_column(String(200))
    grouping: Mapped[str] = mapped_column(String(20))
    total: Mapped[Decimal] = mapped_column(Money)
    total_exact: Mapped[Decimal] = mapped_column(Money)
    line_count: Mapped[int] = mapped_column(Integer, default=0)
    fx_rates: Mapped[list[dict[str, Any]]] = mapped_column(JSONType, default=list)
    credited_invoice_id: Mapped[str | None] = mapped_column(
        ForeignKey("invoices.id"), nullable=True, index=True
    )
    reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    run_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    finalized_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Added by issue 12. Documents finalized before it are version 1 and keep rendering
    # with the version-1 PDF and CSV writers, so they stay byte-identical.
    document_version: Mapped[int] = mapped_column(
        Integer, default=DOCUMENT_VERSION, server_default="1"
    )
    mode: Mapped[str] = mapped_column(String(20), default="statement", server_default="statement")
    due_date: Mapped[date | None] = mapped_column(Date, nullable=True)
    payment_terms_days: Mapped[int | None] = mapped_column(Integer, nullable=True)
    seller: Mapped[dict[str, Any] | None] = mapped_column(JSONType, nullable=True)  # snapshot
    buyer: Mapped[dict[str, Any] | None] = mapped_column(JSONType, nullable=True)  # snapshot
    subtotal: Mapped[Decimal | None] = mapped_column(Money, nullable=True)  # without tax
    tax_total: Mapped[Decimal | None] = mapped_column(Money, nullable=True)
    # Per tax rate: {"category", "rate", "name", "taxable", "tax", "note"} (texts).
    taxes: Mapped[list[dict[str, Any]] | None] = mapped_column(JSONType, nullable=True)


class InvoiceLine(Base):
    """A line of a finalized document. ``sources`` keeps the charge lines it was made of
    (period, line key, exact amounts): late data is diffed against them."""

    __tablename__ = "invoice_lines"
    __table_args__ = (UniqueConstraint("invoice_id", "position"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    invoice_id: Mapped[str] = mapped_column(ForeignKey("invoices.id"))
    msp_id: Mapped[str] = mapped_column(ForeignKey("msps.id"))
    customer_id: Mapped[str] = mapped_column(ForeignKey("customers.id"), index=True)
    position: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(20))  # usage | fee | adjustment | credit
    description: Mapped[str] = mapped_column(String(500))
    vendor: Mapped[str | None] = mapped_column(String(20), nullable=True)
    vendor_reference: Mapped[str | None] = mapped_column(String(300), nullable=True)
    service_name: Mapped[str | None] = mapped_column(String(300), nullable=True)
    charge_category: Mapped[str | None] = mapped_column(String(40), nullable=True)
    quantity: Mapped[Decimal | None] = mapped_column(Money, nullable=True)
    unit: Mapped[str | None] = mapped_column(String(100), nullable=True)
    unit_price: Mapped[Decimal | None] = mapped_column(Money, nullable=True)
    amount: Mapped[Decimal] = mapped_column(Money)
    amount_exact: Mapped[Decimal] = mapped_column(Money)
    currency: Mapped[str] = mapped_column(String(3))
    period: Mapped[str] = mapped_column(String(7))  # the month whose charges these are
    service_start: Mapped[str | None] = mapped_column(String(10), nullable=True)
    service_end: Mapped[str | None] = mapped_column(String(10), nullable=True)
    original_period: Mapped[str | None] = mapped_column(String(7), nullable=True)
    fx_rates: Mapped[list[dict[str, Any]]] = mapped_column(JSONType, default=list)
    sources: Mapped[list[dict[str, Any]]] = mapped_column(JSONType, default=list)
    # EN 16931 VAT category (S standard, E exempt, AE reverse charge, Z zero) and percent,
    # set on invoice-mode documents only.
    tax_category: Mapped[str | None] = mapped_column(String(4), nullable=True)
    tax_rate: Mapped[Decimal | None] = mapped_column(Money, nullable=True)
