from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from billbyte.db.base import Base, JSONType, Money, UTCDateTime
from billbyte.kit.clock import utcnow
from billbyte.kit.ids import new_id


class Customer(Base):
    __tablename__ = "customers"
    __table_args__ = (UniqueConstraint("msp_id", "external_id"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True, default=lambda: new_id("cus"))
    msp_id: Mapped[str] = mapped_column(ForeignKey("msps.id"), index=True)
    external_id: Mapped[str] = mapped_column(String(200))
    name: Mapped[str] = mapped_column(String(200))
    currency: Mapped[str] = mapped_column(String(3))
    country: Mapped[str | None] = mapped_column(String(2), nullable=True)
    locale: Mapped[str] = mapped_column(String(20), default="en")
    billing_cycle: Mapped[str] = mapped_column(String(20), default="monthly")
    billing_anchor_day: Mapped[int] = mapped_column(Integer, default=1)
    credit_limit: Mapped[Decimal | None] = mapped_column(Money, nullable=True)
    vendors: Mapped[list[str]] = mapped_column(JSONType, default=list)
    price_plan_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    prepaid_balance: Mapped[Decimal | None] = mapped_column(Money, nullable=True)
    credit_thresholds: Mapped[list[int] | None] = mapped_column(JSONType, nullable=True)
    credit_action: Mapped[str | None] = mapped_column(String(20), nullable=True)
    status: Mapped[str] = mapped_column(String(30), default="active")
    metadata_: Mapped[dict[str, Any]] = mapped_column("metadata", JSONType, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class CustomerBillingDetails(Base):
    """The buyer on a customer's invoices: legal name, address, tax id, purchase order and
    the address invoices go to, and how tax applies (``standard``, ``exempt`` with a reason,
    or ``reverse_charge`` for an EU business customer in another member state). One row
    per customer, created on the first change; invoices copy it when they are finalized."""

    __tablename__ = "customer_billing_details"

    customer_id: Mapped[str] = mapped_column(ForeignKey("customers.id"), primary_key=True)
    msp_id: Mapped[str] = mapped_column(ForeignKey("msps.id"), index=True)
    legal_name: Mapped[str | None] = mapped_column(String(200), nullable=True)
    address_line1: Mapped[str | None] = mapped_column(String(200), nullable=True)
    address_line2: Mapped[str | None] = mapped_column(String(200), nullable=True)
    postal_code: Mapped[str | None] = mapped_column(String(20), nullable=True)
    city: Mapped[str | None] = mapped_column(String(100), nullable=True)
    country: Mapped[str | None] = mapped_column(String(2), nullable=True)  # ISO 3166-1 alpha-2
    tax_id: Mapped[str | None] = mapped_column(String(40), nullable=True)  # VAT id, compact
    po_number: Mapped[str | None] = mapped_column(String(100), nullable=True)
    invoice_email: Mapped[str | None] = mapped_column(String(320), nullable=True)
    tax_treatment: Mapped[str] = mapped_column(String(20), default="standard")
    exemption_reason: Mapped[str | None] = mapped_column(String(300), nullable=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class VendorAccount(Base):
    """A vendor-side identifier (AWS account, Azure subscription, GCP project, ...) that
    belongs to one customer under one partner account."""

    __tablename__ = "vendor_accounts"
    __table_args__ = (UniqueConstraint("partner_account_id", "vendor_identifier"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True, default=lambda: new_id("va"))
    msp_id: Mapped[str] = mapped_column(ForeignKey("msps.id"), index=True)
    customer_id: Mapped[str] = mapped_column(ForeignKey("customers.id"), index=True)
    partner_account_id: Mapped[str] = mapped_column(ForeignKey("partner_accounts.id"), index=True)
    vendor_identifier: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(40))
    display_name: Mapped[str | None] = mapped_column(String(200), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class CustomerVendor(Base):
    """A customer's presence on one vendor: provisioning state and the vendor's links.

    Part of the customer's own record (the API shows it as ``vendor_states``): customers writes
    the pending or failed state when a vendor is asked for; the connectors' provisioning job
    moves it on."""

    __tablename__ = "customer_vendors"
    __table_args__ = (UniqueConstraint("customer_id", "vendor"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True, default=lambda: new_id("cv"))
    msp_id: Mapped[str] = mapped_column(ForeignKey("msps.id"), index=True)
    customer_id: Mapped[str] = mapped_column(ForeignKey("customers.id"), index=True)
    vendor: Mapped[str] = mapped_column(String(20))
    partner_account_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    state: Mapped[str] = mapped_column(String(20), default="pending")
    # pending | active | failed | suspended | purged
    vendor_identifier: Mapped[str | None] = mapped_column(String(200), nullable=True)
    portal_url: Mapped[str | None] = mapped_column(String(500), nullable=True)
    reference: Mapped[str | None] = mapped_column(String(300), nullable=True)
    message: Mapped[str | None] = mapped_column(Text, nullable=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
