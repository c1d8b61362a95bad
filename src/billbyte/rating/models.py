from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from billbyte.db.base import Base, UTCDateTime
from billbyte.kit.clock import utcnow
from billbyte.kit.ids import new_id


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
