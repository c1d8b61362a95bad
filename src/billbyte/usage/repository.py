"""Reading usage for other features: which slice versions are current, and their lines."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import polars as pl
from sqlalchemy import select
from sqlalchemy.orm import Session

from billbyte.usage.models import UsageImport, UsageSlice


def current_slices(session: Session, msp_id: str, period: str) -> list[UsageSlice]:
    """The MSP's current slices of ``period``, in one query (one consistent snapshot)."""
    return list(
        session.scalars(
            select(UsageSlice)
            .where(
                UsageSlice.msp_id == msp_id,
                UsageSlice.billing_period == period,
                UsageSlice.is_current.is_(True),
            )
            .order_by(UsageSlice.id)
        )
    )


def slices_of_import(session: Session, msp_id: str, import_id: str) -> list[UsageSlice]:
    """The current slices an import wrote (what the store now holds from its files)."""
    return list(
        session.scalars(
            select(UsageSlice)
            .where(
                UsageSlice.msp_id == msp_id,
                UsageSlice.import_id == import_id,
                UsageSlice.is_current.is_(True),
            )
            .order_by(UsageSlice.billing_period, UsageSlice.id)
        )
    )


def latest_imports(
    session: Session, msp_id: str, partner_account_id: str, limit: int
) -> list[UsageImport]:
    """A partner account's most recent imports, the latest first."""
    return list(
        session.scalars(
            select(UsageImport)
            .where(
                UsageImport.msp_id == msp_id,
                UsageImport.partner_account_id == partner_account_id,
            )
            .order_by(UsageImport.id.desc())
            .limit(limit)
        )
    )


def billed_periods(session: Session, msp_id: str) -> set[str]:
    """Periods in which the MSP has current usage."""
    return set(
        session.scalars(
            select(UsageSlice.billing_period).where(
                UsageSlice.msp_id == msp_id, UsageSlice.is_current.is_(True)
            )
        )
    )


def scan_slices(store: Path, slices: Sequence[UsageSlice]) -> pl.LazyFrame | None:
    if not slices:
        return None
    frames = [
        pl.scan_parquet(store / s.path).with_columns(
            pl.lit(s.partner_account_id).alias("partner_account_id")
        )
        for s in slices
    ]
    return pl.concat(frames, how="vertical_relaxed")
