from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from billbyte.db.base import Base, JSONType, Money, UTCDateTime
from billbyte.kit.clock import utcnow
from billbyte.kit.ids import new_id


class Budget(Base):
    """A customer's monthly budget: ``amount`` in ``currency`` (the customer's at creation),
    for all its charges or for one vendor's, with thresholds in percent of the amount."""

    __tablename__ = "budgets"

    id: Mapped[str] = mapped_column(String(40), primary_key=True, default=lambda: new_id("bud"))
    msp_id: Mapped[str] = mapped_column(ForeignKey("msps.id"), index=True)
    customer_id: Mapped[str] = mapped_column(ForeignKey("customers.id"), index=True)
    name: Mapped[str | None] = mapped_column(String(200), nullable=True)
    amount: Mapped[Decimal] = mapped_column(Money)
    currency: Mapped[str] = mapped_column(String(3))
    vendor: Mapped[str | None] = mapped_column(String(20), nullable=True)  # None: all vendors
    thresholds: Mapped[list[int]] = mapped_column(JSONType, default=list)  # ascending percents
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class BudgetAlert(Base):
    """One threshold of a budget crossed in a period: at most one per budget, period and
    threshold (the unique constraint is what makes an alert fire once)."""

    __tablename__ = "budget_alerts"
    __table_args__ = (UniqueConstraint("budget_id", "period", "threshold"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True, default=lambda: new_id("bal"))
    msp_id: Mapped[str] = mapped_column(ForeignKey("msps.id"), index=True)
    customer_id: Mapped[str] = mapped_column(ForeignKey("customers.id"), index=True)
    budget_id: Mapped[str] = mapped_column(ForeignKey("budgets.id", ondelete="CASCADE"))
    period: Mapped[str] = mapped_column(String(7))
    threshold: Mapped[int] = mapped_column(Integer)
    spend: Mapped[Decimal] = mapped_column(Money)  # the spend that crossed it
    amount: Mapped[Decimal] = mapped_column(Money)  # the budget's amount then
    currency: Mapped[str] = mapped_column(String(3))
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
