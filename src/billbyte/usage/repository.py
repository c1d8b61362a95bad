"""Reading usage for other features: which slice versions are current, and their lines."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import polars as pl
from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from billbyte.settings import Settings
from billbyte.usage.models import UsageImport, UsageSlice
from billbyte.usage.object_store import LocalStore, S3Store, UsageStore, for_settings


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


def slice_store(settings: Settings) -> UsageStore:
    """The slice store ``BILLBYTE_USAGE_STORE_URL`` names: what ``scan_slices`` reads."""
    return for_settings(settings)


def scan_slices(store: UsageStore | Path, slices: Sequence[UsageSlice]) -> pl.LazyFrame | None:
    """The lines of ``slices`` (one snapshot's current versions) from the slice store (a
    directory is the local store at that path)."""
    if not slices:
        return None
    if isinstance(store, Path):
        store = LocalStore(store)
    frames = [
        frame.with_columns(pl.lit(s.partner_account_id).alias("partner_account_id"))
        for s, frame in zip(slices, store.scan([s.path for s in slices]), strict=True)
    ]
    return pl.concat(frames, how="vertical_relaxed")


def import_totals(session: Session) -> tuple[dict[str, int], int]:
    """Imports by status, and the lines accepted by completed imports; one grouped pass
    over the imports table (one row per delivered file set, not per usage line)."""
    rows = session.execute(
        select(
            UsageImport.status,
            func.count(),
            func.coalesce(
                func.sum(case((UsageImport.status == "completed", UsageImport.rows_accepted))), 0
            ),
        ).group_by(UsageImport.status)
    )
    by_status: dict[str, int] = {}
    accepted = 0
    for status, count, rows_accepted in rows:
        by_status[status] = int(count)
        accepted += int(rows_accepted)
    return by_status, accepted


def probe_store(settings: Settings) -> None:
    """Raise when an object-store usage store cannot be reached (readiness); a local store
    is checked by the caller as a directory."""
    store = for_settings(settings)
    if isinstance(store, S3Store):
        store.probe()
