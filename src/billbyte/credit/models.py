from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Boolean, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from billbyte.db.base import Base, JSONType, Money, UTCDateTime
from billbyte.kit.clock import utcnow
from billbyte.kit.ids import new_id


class CreditPolicy(Base):
    """An MSP's defaults; a customer may override thresholds and action."""

    __tablename__ = "credit_policies"

    id: Mapped[str] = mapped_column(String(40), primary_key=True, default=lambda: new_id("crp"))
    msp_id: Mapped[str] = mapped_column(ForeignKey("msps.id"), unique=True)
    thresholds: Mapped[list[int]] = mapped_column(JSONType, default=lambda: [50, 80, 100])
    action: Mapped[str] = mapped_column(String(20), default="notify")  # notify | suspend
    suspend_at: Mapped[int] = mapped_column(Integer, default=100)
    # May charges draw a prepaid balance below zero? Otherwise the unfunded rest is invoiced.
    prepaid_overdraft: Mapped[bool] = mapped_column(Boolean, default=False)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class CreditEvent(Base):
    """One threshold crossing: raised once per customer, period and threshold."""

    __tablename__ = "credit_events"
    __table_args__ = (UniqueConstraint("customer_id", "period", "threshold"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True, default=lambda: new_id("cre"))
    msp_id: Mapped[str] = mapped_column(ForeignKey("msps.id"), index=True)
    customer_id: Mapped[str] = mapped_column(ForeignKey("customers.id"), index=True)
    period: Mapped[str] = mapped_column(String(7))
    threshold: Mapped[int] = mapped_column(Integer)
    spend: Mapped[Decimal] = mapped_column(Money)
    limit: Mapped[Decimal] = mapped_column(Money)
    currency: Mapped[str] = mapped_column(String(3))
    action_taken: Mapped[str] = mapped_column(String(30), default="notified")
    details: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class PrepaidMovement(Base):
    """One movement of a customer's prepaid balance (see ``credit.prepaid``).

    ``amount`` is signed in the customer's currency: top-ups add, draw-downs subtract (and a
    restatement that lowers charges gives back). Rows are never changed; the balance is their
    sum, cached on ``Customer.prepaid_balance`` and as ``balance_after`` on each row."""

    __tablename__ = "prepaid_movements"
    __table_args__ = (UniqueConstraint("customer_id", "reference"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True, default=lambda: new_id("ppm"))
    msp_id: Mapped[str] = mapped_column(ForeignKey("msps.id"), index=True)
    customer_id: Mapped[str] = mapped_column(ForeignKey("customers.id"), index=True)
    kind: Mapped[str] = mapped_column(String(20))  # top_up | adjustment | draw_down
    stage: Mapped[str | None] = mapped_column(String(10), nullable=True)  # open | final
    period: Mapped[str | None] = mapped_column(String(7), nullable=True)
    amount: Mapped[Decimal] = mapped_column(Money)
    currency: Mapped[str] = mapped_column(String(3))
    balance_after: Mapped[Decimal] = mapped_column(Money)
    # A top-up's client reference (idempotency); an invoice id for a final draw-down.
    reference: Mapped[str | None] = mapped_column(String(200), nullable=True)
    note: Mapped[str | None] = mapped_column(String(500), nullable=True)
    actor: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
