from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Boolean, Date, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from billbyte.db.base import Base, JSONType, Money, UTCDateTime
from billbyte.kit.clock import utcnow
from billbyte.kit.ids import new_id


class Offer(Base):
    """A fixed-price offer of the MSP's catalogue (e.g. a Microsoft 365 seat licence).

    ``prices`` maps a currency to the selling price of one unit for one billing period
    (a month for monthly billing, a year for annual billing), as decimal strings.
    ``cost_price``, ``list_price`` and ``prices`` are the latest price version, in force from
    ``prices_from`` (null: from the start); the versions before it are in ``earlier_prices``
    (``{"from", "cost_price", "list_price", "prices"}``, oldest first), so that a price
    change never reprices what was charged before it.
    """

    __tablename__ = "catalog_offers"
    __table_args__ = (UniqueConstraint("msp_id", "vendor", "sku_id", "term", "billing_frequency"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True, default=lambda: new_id("off"))
    msp_id: Mapped[str] = mapped_column(ForeignKey("msps.id"), index=True)
    vendor: Mapped[str] = mapped_column(String(20))
    sku_id: Mapped[str] = mapped_column(String(200))
    name: Mapped[str] = mapped_column(String(300))
    description: Mapped[str] = mapped_column(String(1000), default="")
    unit: Mapped[str] = mapped_column(String(50), default="seat")
    service_category: Mapped[str] = mapped_column(String(60), default="Other")
    cost_price: Mapped[Decimal] = mapped_column(Money)
    list_price: Mapped[Decimal | None] = mapped_column(Money, nullable=True)
    cost_currency: Mapped[str] = mapped_column(String(3))
    prices: Mapped[dict[str, str]] = mapped_column(JSONType, default=dict)
    prices_from: Mapped[date | None] = mapped_column(Date, nullable=True)
    earlier_prices: Mapped[list[dict[str, Any]]] = mapped_column(JSONType, default=list)
    term: Mapped[str] = mapped_column(String(10))  # monthly | annual
    billing_frequency: Mapped[str] = mapped_column(String(10))  # monthly | annual
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class LicenceSubscription(Base):
    """A customer's subscription to an offer.

    ``last_day`` is the last day of service once known: set by a cancellation or when
    auto-renewal is off (the end of the current term); null while the subscription renews.
    The seat history is in ``LicenceQuantity``.
    """

    __tablename__ = "licence_subscriptions"

    id: Mapped[str] = mapped_column(String(40), primary_key=True, default=lambda: new_id("lsub"))
    msp_id: Mapped[str] = mapped_column(ForeignKey("msps.id"), index=True)
    customer_id: Mapped[str] = mapped_column(ForeignKey("customers.id"), index=True)
    offer_id: Mapped[str] = mapped_column(ForeignKey("catalog_offers.id"), index=True)
    start_date: Mapped[date] = mapped_column(Date)
    auto_renew: Mapped[bool] = mapped_column(Boolean, default=True)
    last_day: Mapped[date | None] = mapped_column(Date, nullable=True)
    cancelled_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    cancel_requested_for: Mapped[date | None] = mapped_column(Date, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class LicenceQuantity(Base):
    """The seat count of a subscription from ``effective_date`` on (the day counts)."""

    __tablename__ = "licence_quantities"
    __table_args__ = (UniqueConstraint("subscription_id", "effective_date"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True, default=lambda: new_id("lqty"))
    msp_id: Mapped[str] = mapped_column(ForeignKey("msps.id"), index=True)
    subscription_id: Mapped[str] = mapped_column(ForeignKey("licence_subscriptions.id"), index=True)
    effective_date: Mapped[date] = mapped_column(Date)
    quantity: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
