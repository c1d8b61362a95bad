from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from billbyte.db.base import Base, JSONType, UTCDateTime
from billbyte.kit.clock import utcnow
from billbyte.kit.ids import new_id


class ServiceAction(Base):
    """A suspend / resume / purge of a customer's services across its vendors."""

    __tablename__ = "service_actions"

    id: Mapped[str] = mapped_column(String(40), primary_key=True, default=lambda: new_id("sva"))
    msp_id: Mapped[str] = mapped_column(ForeignKey("msps.id"), index=True)
    customer_id: Mapped[str] = mapped_column(ForeignKey("customers.id"), index=True)
    action: Mapped[str] = mapped_column(String(20))  # suspend | resume | purge
    state: Mapped[str] = mapped_column(String(20), default="in_progress")
    # in_progress | completed | failed
    actor: Mapped[str] = mapped_column(String(80))
    reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    results: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class PartnerSync(Base):
    """Collection state of a partner account: watermark, schedule, last outcome."""

    __tablename__ = "partner_syncs"

    id: Mapped[str] = mapped_column(String(40), primary_key=True, default=lambda: new_id("psy"))
    msp_id: Mapped[str] = mapped_column(ForeignKey("msps.id"), index=True)
    partner_account_id: Mapped[str] = mapped_column(ForeignKey("partner_accounts.id"), unique=True)
    interval_minutes: Mapped[int] = mapped_column(Integer, default=60)
    watermark: Mapped[str | None] = mapped_column(Text, nullable=True)
    data_until: Mapped[str | None] = mapped_column(String(40), nullable=True)
    last_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    last_success_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    consecutive_failures: Mapped[int] = mapped_column(Integer, default=0)
    last_import_ids: Mapped[list[str]] = mapped_column(JSONType, default=list)
