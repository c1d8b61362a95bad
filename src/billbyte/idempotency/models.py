from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from billbyte.db.base import Base, JSONType, UTCDateTime
from billbyte.kit.clock import utcnow
from billbyte.kit.ids import new_id


class IdempotencyRecord(Base):
    """One ``Idempotency-Key`` of one caller: the API key (``principal``) with the role it
    had. Another key re-using the same string has its own record, never this one."""

    __tablename__ = "idempotency_records"
    __table_args__ = (
        # Named by hand: the conventional name would exceed PostgreSQL's 63 characters.
        UniqueConstraint(
            "msp_id",
            "principal",
            "principal_role",
            "idempotency_key",
            name="uq_idempotency_records_caller_key",
        ),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True, default=lambda: new_id("idem"))
    msp_id: Mapped[str] = mapped_column(ForeignKey("msps.id"), index=True)
    principal: Mapped[str] = mapped_column(String(80))
    principal_role: Mapped[str] = mapped_column(String(20))
    idempotency_key: Mapped[str] = mapped_column(String(255))
    request_hash: Mapped[str] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(20), default="in_progress")
    # While in progress, the request renews this; once past, its request is presumed dead.
    lease_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    response_status: Mapped[int | None] = mapped_column(Integer, nullable=True)
    response_headers: Mapped[dict[str, Any] | None] = mapped_column(JSONType, nullable=True)
    response_body: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
