from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Integer, LargeBinary, PrimaryKeyConstraint, String
from sqlalchemy.orm import Mapped, mapped_column

from billbyte.db.base import Base, UTCDateTime
from billbyte.kit.clock import utcnow
from billbyte.kit.ids import new_id


class Msp(Base):
    __tablename__ = "msps"

    id: Mapped[str] = mapped_column(String(40), primary_key=True, default=lambda: new_id("msp"))
    name: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class MspBrand(Base):
    """An MSP's brand on its portal and console pages: one row per MSP, created on the first
    change (until then the MSP's name and BillByte's colour apply). The logo is stored here,
    in the database (at most 256 KB, PNG or JPEG checked by its magic bytes), and served at
    ``/brand/{msp_id}/logo``; ``logo_version`` changes with every upload so that the URL
    changes too and a cached old logo is never shown."""

    __tablename__ = "msp_brands"

    msp_id: Mapped[str] = mapped_column(ForeignKey("msps.id"), primary_key=True)
    display_name: Mapped[str | None] = mapped_column(String(200), nullable=True)
    primary_colour: Mapped[str | None] = mapped_column(String(7), nullable=True)
    support_email: Mapped[str | None] = mapped_column(String(320), nullable=True)
    support_phone: Mapped[str | None] = mapped_column(String(50), nullable=True)
    support_url: Mapped[str | None] = mapped_column(String(500), nullable=True)
    # Deferred: every page reads the brand, only the logo route reads the image.
    logo: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True, deferred=True)
    logo_content_type: Mapped[str | None] = mapped_column(String(20), nullable=True)
    logo_version: Mapped[int] = mapped_column(Integer, default=0)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class MspLogoVersion(Base):
    """Every logo an MSP uploaded, by its ``logo_version``, kept after a new upload or a
    removal: an invoice names the version it was finalized with (``invoices.seller``) and
    its PDF shows that logo forever, whatever the brand shows today."""

    __tablename__ = "msp_logo_versions"
    __table_args__ = (PrimaryKeyConstraint("msp_id", "version"),)

    msp_id: Mapped[str] = mapped_column(ForeignKey("msps.id"))
    version: Mapped[int] = mapped_column(Integer)
    content_type: Mapped[str] = mapped_column(String(20))
    data: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class MspBillingProfile(Base):
    """The seller on an MSP's invoices: legal name, address, tax and registration ids, bank
    details and payment terms. One row per MSP, created on the first change. Invoices copy
    it when they are finalized (``invoices.seller``), so a later change never alters a
    finalized invoice."""

    __tablename__ = "msp_billing_profiles"

    msp_id: Mapped[str] = mapped_column(ForeignKey("msps.id"), primary_key=True)
    legal_name: Mapped[str | None] = mapped_column(String(200), nullable=True)
    address_line1: Mapped[str | None] = mapped_column(String(200), nullable=True)
    address_line2: Mapped[str | None] = mapped_column(String(200), nullable=True)
    postal_code: Mapped[str | None] = mapped_column(String(20), nullable=True)
    city: Mapped[str | None] = mapped_column(String(100), nullable=True)
    country: Mapped[str | None] = mapped_column(String(2), nullable=True)  # ISO 3166-1 alpha-2
    tax_id: Mapped[str | None] = mapped_column(String(40), nullable=True)  # VAT id, compact
    registration: Mapped[str | None] = mapped_column(String(200), nullable=True)
    email: Mapped[str | None] = mapped_column(String(320), nullable=True)
    phone: Mapped[str | None] = mapped_column(String(50), nullable=True)
    bank_name: Mapped[str | None] = mapped_column(String(200), nullable=True)
    iban: Mapped[str | None] = mapped_column(String(34), nullable=True)  # compact, validated
    bic: Mapped[str | None] = mapped_column(String(11), nullable=True)
    payment_terms_days: Mapped[int] = mapped_column(Integer, default=30)
    footer_text: Mapped[str | None] = mapped_column(String(1000), nullable=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
