from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, ForeignKey, Index, Integer, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from billbyte.db.base import Base, JSONType, UTCDateTime
from billbyte.kit.clock import utcnow
from billbyte.kit.ids import new_id


class UsageImport(Base):
    """One delivery of one or more vendor files for one partner account."""

    __tablename__ = "usage_imports"

    id: Mapped[str] = mapped_column(String(40), primary_key=True, default=lambda: new_id("imp"))
    msp_id: Mapped[str] = mapped_column(ForeignKey("msps.id"), index=True)
    partner_account_id: Mapped[str] = mapped_column(ForeignKey("partner_accounts.id"), index=True)
    actor: Mapped[str] = mapped_column(String(80))
    status: Mapped[str] = mapped_column(String(20), default="processing")
    outcome: Mapped[str | None] = mapped_column(String(20), nullable=True)
    requested_format: Mapped[str | None] = mapped_column(String(40), nullable=True)
    detected_format: Mapped[str | None] = mapped_column(String(40), nullable=True)
    report: Mapped[str | None] = mapped_column(String(200), nullable=True)
    files: Mapped[list[dict[str, Any]]] = mapped_column(JSONType, default=list)
    content_sha256: Mapped[str | None] = mapped_column(String(64), nullable=True)
    rows_read: Mapped[int] = mapped_column(Integer, default=0)
    rows_accepted: Mapped[int] = mapped_column(Integer, default=0)
    rows_rejected: Mapped[int] = mapped_column(Integer, default=0)
    duplicate_rows: Mapped[int] = mapped_column(Integer, default=0)
    rounded_values: Mapped[int] = mapped_column(Integer, default=0)
    slices_replaced: Mapped[int] = mapped_column(Integer, default=0)
    slices_unchanged: Mapped[int] = mapped_column(Integer, default=0)
    totals: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    unassigned_sub_accounts: Mapped[list[str]] = mapped_column(JSONType, default=list)
    errors: Mapped[list[dict[str, Any]]] = mapped_column(JSONType, default=list)
    message: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # Refreshed by the importing process while it works; a processing import whose heartbeat
    # (or, before the first beat, creation) is older than the stale threshold was killed.
    heartbeat_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class UsageSlice(Base):
    """The stored lines of one vendor slice: partner account + billing period + scope.

    Exactly one version of a slice is current; a re-delivery inserts a new version and
    retires the old one in the same transaction, so readers see one or the other.
    """

    __tablename__ = "usage_slices"
    __table_args__ = (
        # One current version per slice, enforced by the database (partial unique index).
        Index(
            "uq_usage_slices_current",
            "partner_account_id",
            "billing_period",
            "scope_key",
            unique=True,
            sqlite_where=text("is_current"),
            postgresql_where=text("is_current"),
        ),
        Index("ix_usage_slices_lookup", "msp_id", "billing_period", "is_current"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True, default=lambda: new_id("usl"))
    msp_id: Mapped[str] = mapped_column(ForeignKey("msps.id"), index=True)
    partner_account_id: Mapped[str] = mapped_column(ForeignKey("partner_accounts.id"))
    billing_period: Mapped[str] = mapped_column(String(7))
    scope_key: Mapped[str] = mapped_column(String(200))
    import_id: Mapped[str] = mapped_column(ForeignKey("usage_imports.id"), index=True)
    path: Mapped[str] = mapped_column(String(500))
    row_count: Mapped[int] = mapped_column(Integer)
    fingerprint: Mapped[str] = mapped_column(String(64))
    totals: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    # Scopes of provisional slices of the same period that this one supersedes (a billed
    # Partner Center invoice supersedes the period's unbilled slice): kept, so that the rule
    # holds when the provisional slice arrives after it.
    supersedes: Mapped[list[str] | None] = mapped_column(JSONType, nullable=True, default=list)
    is_current: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    superseded_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
