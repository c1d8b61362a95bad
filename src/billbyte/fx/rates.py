"""Stored exchange rates per MSP: put, upsert (idempotent, audited once), list."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any, cast

from sqlalchemy import Table, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from billbyte.audit.service import record
from billbyte.auth.subject import AuthSubject
from billbyte.fx.models import FxRate
from billbyte.fx.schemas import FxRatesPut
from billbyte.jobs import follow_up
from billbyte.kit.clock import utcnow
from billbyte.kit.errors import InvalidInput
from billbyte.kit.ids import new_id
from billbyte.kit.money import format_amount, validate_currency
from billbyte.kit.pagination import Page, paginate

_UPSERT_CHUNK = 2000
_AUDITED_CHANGES = 100


@dataclass(frozen=True)
class RateEntry:
    """One unit of ``base`` is worth ``rate`` units of ``quote`` on ``rate_date``."""

    base: str
    quote: str
    rate_date: date
    rate: Decimal


@dataclass(frozen=True)
class UpsertSummary:
    received: int
    inserted: int
    updated: int
    unchanged: int


def put_rates(session: Session, subject: AuthSubject, body: FxRatesPut) -> UpsertSummary:
    """``PUT /v1/fx-rates``: the same key twice in one request is ambiguous, so refused."""
    seen: dict[tuple[str, str, date], int] = {}
    for index, item in enumerate(body.rates):
        key = (item.base, item.quote, item.date)
        if key in seen:
            raise InvalidInput(
                f"rates[{index}] repeats {item.base}/{item.quote} on {item.date} "
                f"(already given as rates[{seen[key]}]).",
                code="duplicate_rate",
                field=f"rates.{index}",
            )
        seen[key] = index
    entries = [RateEntry(i.base, i.quote, i.date, i.rate) for i in body.rates]
    return upsert_rates(session, subject, entries, source=body.source)


def upsert_rates(
    session: Session, subject: AuthSubject, entries: Sequence[RateEntry], *, source: str
) -> UpsertSummary:
    """Insert or replace rates by (MSP, base, quote, date); idempotent, audited once."""
    subject.require_write()
    keys = {(e.base, e.quote, e.rate_date) for e in entries}
    if len(keys) != len(entries):
        raise InvalidInput("The same rate is given twice.", code="duplicate_rate")
    if not entries:
        return UpsertSummary(0, 0, 0, 0)
    existing = _existing(session, subject.msp_id, entries)
    now = utcnow()
    rows: list[dict[str, Any]] = []
    changes: list[dict[str, str]] = []
    inserted = updated = 0
    # Sorted so that ids (the listing order) follow the dates.
    for entry in sorted(entries, key=lambda e: (e.rate_date, e.base, e.quote)):
        old = existing.get((entry.base, entry.quote, entry.rate_date))
        if old is not None and old == (entry.rate, source):
            continue
        if old is None:
            inserted += 1
        else:
            updated += 1
            if len(changes) < _AUDITED_CHANGES:
                changes.append(
                    {
                        "base": entry.base,
                        "quote": entry.quote,
                        "date": entry.rate_date.isoformat(),
                        "rate": format_amount(entry.rate),
                        "previous_rate": format_amount(old[0]),
                        "previous_source": old[1],
                    }
                )
        rows.append(
            {
                "id": new_id("fxr"),
                "msp_id": subject.msp_id,
                "base": entry.base,
                "quote": entry.quote,
                "rate_date": entry.rate_date,
                "rate": entry.rate,
                "source": source,
                "created_at": now,
                "updated_at": now,
            }
        )
    statement = _upsert_statement(session)
    for start in range(0, len(rows), _UPSERT_CHUNK):
        session.execute(statement, rows[start : start + _UPSERT_CHUNK])
    summary = UpsertSummary(len(entries), inserted, updated, len(entries) - inserted - updated)
    if rows:
        dates = [e.rate_date for e in entries]
        pairs = sorted({f"{e.base}/{e.quote}" for e in entries})
        record(
            session,
            subject,
            "fx_rates.upserted",
            "fx_rates",
            subject.msp_id,
            before=None,
            after={
                "source": source,
                "received": summary.received,
                "inserted": inserted,
                "updated": updated,
                "unchanged": summary.unchanged,
                "from": min(dates).isoformat(),
                "to": max(dates).isoformat(),
                "pairs": pairs[:50],
                "changes": changes,
            },
        )
        follow_up.fx_changed(session, subject.msp_id)  # open periods are re-rated
    return summary


def _existing(
    session: Session, msp_id: str, entries: Sequence[RateEntry]
) -> dict[tuple[str, str, date], tuple[Decimal, str]]:
    keys = {(e.base, e.quote, e.rate_date) for e in entries}
    dates = [e.rate_date for e in entries]
    stmt = select(FxRate.base, FxRate.quote, FxRate.rate_date, FxRate.rate, FxRate.source).where(
        FxRate.msp_id == msp_id,
        FxRate.base.in_({e.base for e in entries}),
        FxRate.quote.in_({e.quote for e in entries}),
        FxRate.rate_date >= min(dates),
        FxRate.rate_date <= max(dates),
    )
    found: dict[tuple[str, str, date], tuple[Decimal, str]] = {}
    for base, quote, rate_date, rate, source in session.execute(stmt):
        if (base, quote, rate_date) in keys:
            found[(base, quote, rate_date)] = (rate, source)
    return found


def _upsert_statement(session: Session) -> Any:
    table = cast(Table, FxRate.__table__)
    dialect = session.get_bind().dialect.name
    statement = (pg_insert if dialect == "postgresql" else sqlite_insert)(table)
    return statement.on_conflict_do_update(
        index_elements=[table.c.msp_id, table.c.base, table.c.quote, table.c.rate_date],
        set_={
            "rate": statement.excluded.rate,
            "source": statement.excluded.source,
            "updated_at": statement.excluded.updated_at,
        },
    )


def list_rates(
    session: Session,
    subject: AuthSubject,
    *,
    base: str | None,
    quote: str | None,
    start: date | None,
    end: date | None,
    cursor: str | None,
    limit: int,
) -> Page[FxRate]:
    if start is not None and end is not None and start > end:
        raise InvalidInput("'from' is after 'to'.", field="from")
    stmt = select(FxRate).where(FxRate.msp_id == subject.msp_id)
    if base:
        stmt = stmt.where(FxRate.base == checked_currency(base, "base"))
    if quote:
        stmt = stmt.where(FxRate.quote == checked_currency(quote, "quote"))
    if start is not None:
        stmt = stmt.where(FxRate.rate_date >= start)
    if end is not None:
        stmt = stmt.where(FxRate.rate_date <= end)
    return paginate(session, stmt, FxRate.id, cursor, limit)


def checked_currency(code: str, field: str) -> str:
    try:
        return validate_currency(code)
    except InvalidInput as exc:
        raise InvalidInput(exc.detail, code=exc.code, field=field) from None
