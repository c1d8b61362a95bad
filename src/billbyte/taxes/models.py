"""An MSP's tax rates: a percentage by customer country (or for every country without one
of its own), valid from a day, until the day before ``valid_until`` when that is set."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import Date, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from billbyte.db.base import Base, Money, UTCDateTime
from billbyte.kit.clock import utcnow
from billbyte.kit.ids import new_id


class TaxRate(Base):
    __tablename__ = "tax_rates"
    __table_args__ = (Index("ix_tax_rates_msp_country", "msp_id", "country"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True, default=lambda: new_id("txr"))
    msp_id: Mapped[str] = mapped_column(ForeignKey("msps.id"))
    # ISO 3166-1 alpha-2 of the customer's billing country; None: every other country.
    country: Mapped[str | None] = mapped_column(String(2), nullable=True)
    name: Mapped[str] = mapped_column(String(100))  # "VAT", "USt.", "GST"
    rate: Mapped[Decimal] = mapped_column(Money)  # percent: 19 means 19 %
    valid_from: Mapped[date] = mapped_column(Date)
    valid_until: Mapped[date | None] = mapped_column(Date, nullable=True)  # exclusive
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
