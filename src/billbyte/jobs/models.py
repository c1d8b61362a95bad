from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Index, Integer, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from billbyte.db.base import Base, JSONType, UTCDateTime
from billbyte.kit.clock import utcnow
from billbyte.kit.ids import new_id


class Job(Base):
    __tablename__ = "jobs"
    __table_args__ = (
        Index(
            "uq_jobs_pending_key",
            "key",
            unique=True,
            sqlite_where=text("status = 'pending'"),
            postgresql_where=text("status = 'pending'"),
        ),
        Index("ix_jobs_due", "status", "run_after"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True, default=lambda: new_id("job"))
    kind: Mapped[str] = mapped_column(String(40))
    # The MSP the job works for (its fairness lane and its tenant in the API); None for the
    # installation's own jobs. No foreign key: a job row is a record, not an MSP's child.
    msp_id: Mapped[str | None] = mapped_column(String(40), nullable=True, index=True)
    key: Mapped[str] = mapped_column(String(300))
    payload: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    status: Mapped[str] = mapped_column(String(20), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    run_after: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class JobLane(Base):
    """When each MSP (``lane``: its id, or ``SYSTEM_LANE`` for jobs of no MSP) last had a job
    claimed: the claim serves the lane served least recently first, and its row is the lock
    that keeps a lane's running count under the cap with several workers."""

    __tablename__ = "job_lanes"

    lane: Mapped[str] = mapped_column(String(40), primary_key=True)
    last_claimed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
