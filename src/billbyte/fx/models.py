from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import Date, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from billbyte.db.base import Base, Money, UTCDateTime
from billbyte.kit.clock import utcnow
from billbyte.kit.ids import new_id


class FxRate(Base):
    """One unit of ``base`` is worth ``rate`` units of ``quote`` on ``rate_date``."""

    __tablename__ = "fx_rates"
    # Also the index of every lookup: (msp, pair, latest date <= day).
    __table_args__ = (UniqueConstraint("msp_id", "base", "quote", "rate_date"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True, default=lambda: new_id("fxr"))
    msp_id: Mapped[str] = mapped_column(ForeignKey("msps.id"))
    base: Mapped[str] = mapped_column(String(3))
    quote: Mapped[str] = mapped_column(String(3))
    rate_date: Mapped[date] = mapped_column(Date)
    rate: Mapped[Decimal] = mapped_column(Money)
    source: Mapped[str] = mapped_column(String(20))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class FxPolicy(Base):
    """How an MSP's amounts are converted; an MSP without a row gets the defaults."""

    __tablename__ = "fx_policies"

    id: Mapped[str] = mapped_column(String(40), primary_key=True, default=lambda: new_id("fxp"))
    msp_id: Mapped[str] = mapped_column(ForeignKey("msps.id"), unique=True)
    base_currency: Mapped[str] = mapped_column(String(3), default="EUR")
    mode: Mapped[str] = mapped_column(String(20), default="charge_day")
    max_staleness_days: Mapped[int] = mapped_column(Integer, default=7)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
