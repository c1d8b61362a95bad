"""The charge ledger's tables: open charge lines, their change feed, how the last rating
of each customer-period went, closed periods.

Lines and change-feed entries are written only through ``charges.ledger``.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from billbyte.db.base import Base, JSONType, Money, UTCDateTime
from billbyte.kit.clock import utcnow
from billbyte.kit.ids import new_id


class ChargeLine(Base):
    """An open line of a customer's current invoice, at full precision.

    Rounded amounts are derived when read (see ``charges.service``), so that re-rating never
    accumulates rounding.
    """

    __tablename__ = "charge_lines"
    __table_args__ = (
        UniqueConstraint("customer_id", "period", "line_key"),
        Index("ix_charge_lines_lookup", "msp_id", "customer_id", "period"),
        # The MSP-wide reads of one month (margin report, console list): reached directly,
        # however many months are kept (migration 0020).
        Index("ix_charge_lines_period", "msp_id", "period"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True, default=lambda: new_id("chl"))
    msp_id: Mapped[str] = mapped_column(ForeignKey("msps.id"))
    customer_id: Mapped[str] = mapped_column(ForeignKey("customers.id"))
    period: Mapped[str] = mapped_column(String(7))
    line_key: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(20), default="usage")  # usage | fee
    vendor: Mapped[str] = mapped_column(String(20))
    partner_account_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    sub_account_id: Mapped[str | None] = mapped_column(String(200), nullable=True)
    service_category: Mapped[str | None] = mapped_column(String(200), nullable=True)
    service_name: Mapped[str | None] = mapped_column(String(300), nullable=True)
    charge_category: Mapped[str | None] = mapped_column(String(40), nullable=True)
    pricing_unit: Mapped[str | None] = mapped_column(String(100), nullable=True)
    description: Mapped[str] = mapped_column(String(500), default="")
    quantity: Mapped[Decimal] = mapped_column(Money, default=Decimal(0))
    billing_currency: Mapped[str] = mapped_column(String(3))
    cost: Mapped[Decimal] = mapped_column(Money)
    list_cost: Mapped[Decimal] = mapped_column(Money)
    sell: Mapped[Decimal] = mapped_column(Money)
    currency: Mapped[str] = mapped_column(String(3))  # the customer's currency
    cost_local: Mapped[Decimal] = mapped_column(Money)
    list_local: Mapped[Decimal] = mapped_column(Money)
    sell_local: Mapped[Decimal] = mapped_column(Money)
    fx_rates: Mapped[list[dict[str, Any]]] = mapped_column(JSONType, default=list)
    rule_ids: Mapped[list[str]] = mapped_column(JSONType, default=list)
    first_day: Mapped[str | None] = mapped_column(String(10), nullable=True)
    last_day: Mapped[str | None] = mapped_column(String(10), nullable=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ChargeChange(Base):
    """The change feed: every change to an open line, in commit order per MSP."""

    __tablename__ = "charge_changes"
    __table_args__ = (
        Index("ix_charge_changes_feed", "msp_id", "seq"),
        # The last change of one customer's period: what the charges ETag is made from.
        Index("ix_charge_changes_customer_period", "customer_id", "period", "seq"),
    )

    seq: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    msp_id: Mapped[str] = mapped_column(ForeignKey("msps.id"))
    customer_id: Mapped[str] = mapped_column(ForeignKey("customers.id"))
    period: Mapped[str] = mapped_column(String(7))
    line_key: Mapped[str] = mapped_column(String(64))
    change: Mapped[str] = mapped_column(String(10))  # created | updated | deleted
    line: Mapped[dict[str, Any] | None] = mapped_column(JSONType, nullable=True)
    previous: Mapped[dict[str, Any] | None] = mapped_column(JSONType, nullable=True)
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class RatingState(Base):
    """How the last rating of a customer's period went (shown with the charges)."""

    __tablename__ = "rating_states"
    __table_args__ = (UniqueConstraint("customer_id", "period"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True, default=lambda: new_id("rst"))
    msp_id: Mapped[str] = mapped_column(ForeignKey("msps.id"), index=True)
    customer_id: Mapped[str] = mapped_column(ForeignKey("customers.id"))
    period: Mapped[str] = mapped_column(String(7))
    status: Mapped[str] = mapped_column(String(20), default="ok")  # ok | error
    message: Mapped[str | None] = mapped_column(Text, nullable=True)
    usage_lines: Mapped[int] = mapped_column(Integer, default=0)
    rated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ClosedPeriod(Base):
    """A customer's billing period once invoiced: rating never touches it again."""

    __tablename__ = "closed_periods"
    __table_args__ = (UniqueConstraint("customer_id", "period"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True, default=lambda: new_id("cpd"))
    msp_id: Mapped[str] = mapped_column(ForeignKey("msps.id"), index=True)
    customer_id: Mapped[str] = mapped_column(ForeignKey("customers.id"))
    period: Mapped[str] = mapped_column(String(7))
    closed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
