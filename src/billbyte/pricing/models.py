from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Boolean, Date, ForeignKey, Index, String, text
from sqlalchemy.orm import Mapped, mapped_column

from billbyte.db.base import Base, JSONType, Money, UTCDateTime
from billbyte.kit.clock import utcnow
from billbyte.kit.ids import new_id


class PricePlan(Base):
    __tablename__ = "price_plans"
    __table_args__ = (
        # At most one default plan per MSP, enforced by the database.
        Index(
            "uq_price_plans_default",
            "msp_id",
            unique=True,
            sqlite_where=text("is_default"),
            postgresql_where=text("is_default"),
        ),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True, default=lambda: new_id("pp"))
    msp_id: Mapped[str] = mapped_column(ForeignKey("msps.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(String(1000), default="")
    is_default: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class PriceRule(Base):
    """One pricing rule. Scope fields left null match anything (wildcards).

    A rule belongs to a plan, or (``customer_id`` set, ``plan_id`` null) is a customer-level
    override that beats every plan rule for that customer.
    """

    __tablename__ = "price_rules"

    id: Mapped[str] = mapped_column(String(40), primary_key=True, default=lambda: new_id("prl"))
    msp_id: Mapped[str] = mapped_column(ForeignKey("msps.id"), index=True)
    plan_id: Mapped[str | None] = mapped_column(
        ForeignKey("price_plans.id"), index=True, nullable=True
    )
    customer_id: Mapped[str | None] = mapped_column(
        ForeignKey("customers.id"), index=True, nullable=True
    )
    name: Mapped[str] = mapped_column(String(200), default="")
    vendor: Mapped[str | None] = mapped_column(String(20), nullable=True)
    partner_account_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    service_category: Mapped[str | None] = mapped_column(String(200), nullable=True)
    service_name: Mapped[str | None] = mapped_column(String(200), nullable=True)
    sku_id: Mapped[str | None] = mapped_column(String(200), nullable=True)
    region_id: Mapped[str | None] = mapped_column(String(200), nullable=True)
    charge_category: Mapped[str | None] = mapped_column(String(40), nullable=True)
    basis: Mapped[str] = mapped_column(String(10), default="cost")
    adjustment: Mapped[str] = mapped_column(String(30))
    value: Mapped[Decimal | None] = mapped_column(Money, nullable=True)
    currency: Mapped[str | None] = mapped_column(String(3), nullable=True)
    tiers: Mapped[list[dict[str, Any]] | None] = mapped_column(JSONType, nullable=True)
    effective_from: Mapped[date | None] = mapped_column(Date, nullable=True)
    effective_to: Mapped[date | None] = mapped_column(Date, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
