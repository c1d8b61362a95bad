"""Exchange rates per MSP, the MSP's rate policy, and conversion.

Precision rule (see docs/fx.md for the proofs of the tolerances):

* a stored rate is used as stored (exact, at most 18 decimal places);
* a derived rate — the inverse of a stored rate, or a cross rate through the policy's base
  currency — is one division at Decimal context precision 28 (the products that feed it are
  exact), quantized ROUND_HALF_EVEN to 18 decimal places;
* a converted amount is ``amount × rate`` exactly: FX never rounds an amount; rounding to
  the currency's minor unit happens where an amount becomes a charge or invoice line.

Hence a round trip A → B → A of an amount x is within ``|x| × (r + 1/r) × 10⁻¹⁸`` of x, where
r is the exact A → B ratio of the stored rates.
"""

from __future__ import annotations

import calendar
import csv
import io
import re
from bisect import bisect_right
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import (
    ROUND_HALF_EVEN,
    Context,
    Decimal,
    DivisionByZero,
    Inexact,
    InvalidOperation,
    Overflow,
)
from pathlib import Path
from typing import Any, cast

import polars as pl
from sqlalchemy import Table, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from billbyte.audit.service import record
from billbyte.auth.subject import AuthSubject
from billbyte.fx.models import FxPolicy, FxRate
from billbyte.fx.schemas import (
    LIMIT,
    MAX_PLACES,
    FxPolicyIn,
    FxRatesPut,
    PolicyMode,
    decimal_places,
)
from billbyte.jobs import follow_up
from billbyte.kit.clock import utcnow
from billbyte.kit.errors import InvalidInput
from billbyte.kit.ids import new_id
from billbyte.kit.money import format_amount, validate_currency
from billbyte.kit.pagination import Page, paginate

RATE_PLACES = 18
RATE_QUANTUM = Decimal(1).scaleb(-RATE_PLACES)
DIVISION_PRECISION = 28
ONE = Decimal(1)

_DIVISION = Context(
    prec=DIVISION_PRECISION,
    rounding=ROUND_HALF_EVEN,
    traps=[InvalidOperation, DivisionByZero, Overflow],
)
# Wide enough for any quantized rate below LIMIT (20 integer digits + 18 decimals).
_QUANTIZE = Context(prec=60, rounding=ROUND_HALF_EVEN, traps=[InvalidOperation, Overflow])

RATE_SCHEMA: dict[str, Any] = {
    "day": pl.Date,
    "from_currency": pl.String,
    "to_currency": pl.String,
    "rate": pl.Decimal(38, RATE_PLACES),
    "rate_date": pl.Date,
}

_UPSERT_CHUNK = 2000
_AUDITED_CHANGES = 100


@dataclass(frozen=True)
class Policy:
    base_currency: str = "EUR"
    mode: str = PolicyMode.CHARGE_DAY.value
    max_staleness_days: int = 7
    updated_at: datetime | None = None


DEFAULT_POLICY = Policy()


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


@dataclass(frozen=True)
class Conversion:
    """``converted == amount × rate`` exactly; ``rate_date`` is the oldest stored rate used."""

    amount: Decimal
    converted: Decimal
    rate: Decimal
    rate_date: date
    path: tuple[str, ...]


# --- arithmetic -------------------------------------------------------------------------


class _OutOfRange(Exception):
    pass


def _exact_product(a: Decimal, b: Decimal) -> Decimal:
    """a × b without rounding (the precision is sized to the operands)."""
    digits = len(a.as_tuple().digits) + len(b.as_tuple().digits) + 1
    context = Context(
        prec=max(digits, DIVISION_PRECISION), traps=[InvalidOperation, Overflow, Inexact]
    )
    return context.multiply(a, b)


def derived_rate(numerator: Decimal, denominator: Decimal) -> Decimal:
    """The one rounding rule for derived rates: divide at precision 28, then quantize
    half-even to 18 decimal places."""
    quotient = _DIVISION.divide(numerator, denominator)
    if quotient >= LIMIT:
        raise _OutOfRange(f"{format_amount(quotient)} is 10^20 or more")
    rate = quotient.quantize(RATE_QUANTUM, context=_QUANTIZE)
    if rate == 0:
        raise _OutOfRange(f"{quotient} rounds to zero at {RATE_PLACES} decimal places")
    return rate


# --- policy -----------------------------------------------------------------------------


def policy_for(session: Session, msp_id: str) -> Policy:
    row = session.scalar(select(FxPolicy).where(FxPolicy.msp_id == msp_id))
    if row is None:
        return DEFAULT_POLICY
    return Policy(row.base_currency, row.mode, row.max_staleness_days, row.updated_at)


def get_policy(session: Session, subject: AuthSubject) -> Policy:
    return policy_for(session, subject.msp_id)


def _policy_snapshot(policy: Policy) -> dict[str, Any]:
    return {
        "base_currency": policy.base_currency,
        "mode": policy.mode,
        "max_staleness_days": policy.max_staleness_days,
    }


def set_policy(session: Session, subject: AuthSubject, data: FxPolicyIn) -> Policy:
    subject.require_write()
    before = policy_for(session, subject.msp_id)
    row = session.scalar(select(FxPolicy).where(FxPolicy.msp_id == subject.msp_id))
    if row is None:
        row = FxPolicy(msp_id=subject.msp_id)
        try:
            with session.begin_nested():
                session.add(row)
                _apply_policy(row, data)
                session.flush()
        except IntegrityError:  # created concurrently: update that one
            row = session.scalars(select(FxPolicy).where(FxPolicy.msp_id == subject.msp_id)).one()
    _apply_policy(row, data)
    session.flush()
    after = policy_for(session, subject.msp_id)
    if _policy_snapshot(after) != _policy_snapshot(before) or before.updated_at is None:
        record(
            session,
            subject,
            "fx_policy.updated",
            "fx_policy",
            row.id,
            before=_policy_snapshot(before) if before.updated_at is not None else None,
            after=_policy_snapshot(after),
        )
    if _policy_snapshot(after) != _policy_snapshot(before):
        follow_up.fx_changed(session, subject.msp_id)  # open periods convert differently
    return after


def _apply_policy(row: FxPolicy, data: FxPolicyIn) -> None:
    row.base_currency = data.base_currency
    row.mode = data.mode.value
    row.max_staleness_days = data.max_staleness_days


# --- storing rates ----------------------------------------------------------------------


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
        stmt = stmt.where(FxRate.base == _currency(base, "base"))
    if quote:
        stmt = stmt.where(FxRate.quote == _currency(quote, "quote"))
    if start is not None:
        stmt = stmt.where(FxRate.rate_date >= start)
    if end is not None:
        stmt = stmt.where(FxRate.rate_date <= end)
    return paginate(session, stmt, FxRate.id, cursor, limit)


def _currency(code: str, field: str) -> str:
    try:
        return validate_currency(code)
    except InvalidInput as exc:
        raise InvalidInput(exc.detail, code=exc.code, field=field) from None


# --- the ECB euro reference-rate file ------------------------------------------------------

ECB_BASE = "EUR"
ECB_SOURCE = "ecb"
_MISSING = frozenset({"", "N/A", "NA", "-"})
_ECB_RATE = re.compile(r"\d+(\.\d+)?")
_MONTHS = {name.lower(): number for number, name in enumerate(calendar.month_name) if name}


def _file_error(path: Path, detail: str, **extra: Any) -> InvalidInput:
    return InvalidInput(
        f"{path.name}: {detail} Nothing was imported.",
        code="fx_file_invalid",
        file=path.name,
        **extra,
    )


def _ecb_date(text: str) -> date | None:
    """``2024-11-22`` (eurofxref-hist.csv) or ``22 November 2024`` (eurofxref.csv)."""
    try:
        return date.fromisoformat(text)
    except ValueError:
        pass
    parts = text.split()
    if len(parts) == 3 and parts[0].isdigit() and parts[2].isdigit():
        month = _MONTHS.get(parts[1].lower())
        if month is not None:
            try:
                return date(int(parts[2]), month, int(parts[0]))
            except ValueError:
                return None
    return None


def parse_ecb_csv(path: Path) -> list[RateEntry]:
    """Read an ECB euro reference-rate CSV (``eurofxref-hist.csv`` or ``eurofxref.csv``).

    The whole file is checked before anything is returned: an unknown currency column, a
    malformed date or number, or a repeated date rejects the file. ``N/A`` and empty cells
    are rates the ECB did not publish that day, and are skipped.
    """
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError:
        raise _file_error(path, "not a UTF-8 text file.") from None
    except OSError as exc:
        raise InvalidInput(
            f"Cannot read {path}: {exc.strerror}.", code="fx_file_unreadable"
        ) from None
    reader = csv.reader(io.StringIO(text, newline=""))
    header: list[str] | None = None
    columns: list[tuple[int, str]] = []
    width = 0
    entries: list[RateEntry] = []
    dates: dict[date, int] = {}
    try:
        for row in reader:
            cells = [cell.strip() for cell in row]
            if not any(cells):
                continue
            if header is None:
                header = cells
                columns, width = _ecb_columns(path, header)
                continue
            line = reader.line_num
            _check_width(path, cells, width, line)
            day = _ecb_date(cells[0])
            if day is None:
                raise _file_error(
                    path, f"line {line}: {cells[0]!r} is not a date.", line=line, column="Date"
                )
            if day in dates:
                raise _file_error(
                    path,
                    f"line {line}: {day} already appears on line {dates[day]}.",
                    line=line,
                    column="Date",
                )
            dates[day] = line
            for index, currency in columns:
                value = cells[index] if index < len(cells) else ""
                if value.upper() in _MISSING:
                    continue
                entries.append(
                    RateEntry(ECB_BASE, currency, day, _ecb_rate(path, value, line, currency))
                )
    except csv.Error as exc:
        raise _file_error(path, f"line {reader.line_num}: {exc}.", line=reader.line_num) from None
    if header is None:
        raise _file_error(path, "the file is empty.")
    if not entries:
        raise _file_error(path, "the file contains no rates.")
    return entries


def _ecb_columns(path: Path, header: list[str]) -> tuple[list[tuple[int, str]], int]:
    if header[0].lower() != "date":
        raise _file_error(
            path,
            f"the first column is {header[0]!r}, not 'Date': not an ECB reference-rate file.",
        )
    columns: list[tuple[int, str]] = []
    seen: set[str] = set()
    for index, name in enumerate(header[1:], start=1):
        if not name:
            continue  # the trailing comma of eurofxref-hist.csv
        try:
            currency = validate_currency(name)
        except InvalidInput:
            raise InvalidInput(
                f"{path.name}: unknown currency column {name!r} (column {index + 1}): "
                "expected ISO 4217 codes such as USD. Nothing was imported.",
                code="unknown_currency",
                file=path.name,
                column=name,
            ) from None
        if currency == ECB_BASE:
            raise _file_error(path, "an EUR column makes no sense: the rates are per euro.")
        if currency in seen:
            raise _file_error(path, f"the currency column {currency} appears twice.")
        seen.add(currency)
        columns.append((index, currency))
    if not columns:
        raise _file_error(path, "the header names no currency.")
    named = [index for index, name in enumerate(header) if name]
    return columns, named[-1] + 1


def _check_width(path: Path, cells: list[str], width: int, line: int) -> None:
    used = len(cells)
    while used > 0 and not cells[used - 1]:
        used -= 1
    if used > width:
        raise _file_error(
            path, f"line {line} has more values than the header has columns.", line=line
        )
    if len(cells) < width:
        raise _file_error(
            path,
            f"line {line} has {len(cells)} fields, the header {width}: truncated line?",
            line=line,
        )


def _ecb_rate(path: Path, value: str, line: int, currency: str) -> Decimal:
    if not _ECB_RATE.fullmatch(value):
        raise _file_error(
            path,
            f"line {line}, column {currency}: {value!r} is not a decimal rate.",
            line=line,
            column=currency,
        )
    rate = Decimal(value)
    if rate <= 0 or rate >= LIMIT or decimal_places(rate) > MAX_PLACES:
        raise _file_error(
            path,
            f"line {line}, column {currency}: {value!r} is out of range "
            f"(above zero, below 10^20, at most {MAX_PLACES} decimals).",
            line=line,
            column=currency,
        )
    return rate


def import_ecb_rates(session: Session, subject: AuthSubject, path: Path) -> UpsertSummary:
    subject.require_write()
    return upsert_rates(session, subject, parse_ecb_csv(path), source=ECB_SOURCE)


def import_ecb_csv(session: Session, subject: AuthSubject, path: Path) -> int:
    """Import an ECB file in the caller's transaction; returns the number of rates read.

    Idempotent: importing the same file again changes nothing.
    """
    return import_ecb_rates(session, subject, path).received


# --- conversion -------------------------------------------------------------------------


class _RateBook:
    """Stored rates of a few pairs, by date, for "latest on or before" look-ups."""

    def __init__(self, rows: Iterable[tuple[str, str, date, Decimal]]) -> None:
        by_pair: dict[tuple[str, str], list[tuple[date, Decimal]]] = {}
        for base, quote, rate_date, rate in rows:
            by_pair.setdefault((base, quote), []).append((rate_date, rate))
        self._dates: dict[tuple[str, str], list[date]] = {}
        self._rates: dict[tuple[str, str], list[Decimal]] = {}
        for pair, items in by_pair.items():
            items.sort()
            self._dates[pair] = [d for d, _ in items]
            self._rates[pair] = [r for _, r in items]

    def latest(self, base: str, quote: str, low: date, high: date) -> tuple[date, Decimal] | None:
        dates = self._dates.get((base, quote))
        if not dates:
            return None
        index = bisect_right(dates, high) - 1
        if index < 0 or dates[index] < low:
            return None
        return dates[index], self._rates[(base, quote)][index]


def _load_book(
    session: Session, msp_id: str, currencies: set[str], low: date, high: date
) -> _RateBook:
    stmt = select(FxRate.base, FxRate.quote, FxRate.rate_date, FxRate.rate).where(
        FxRate.msp_id == msp_id,
        FxRate.base.in_(currencies),
        FxRate.quote.in_(currencies),
        FxRate.rate_date >= low,
        FxRate.rate_date <= high,
    )
    return _RateBook((b, q, d, r) for b, q, d, r in session.execute(stmt))


@dataclass(frozen=True)
class _Resolved:
    rate: Decimal
    rate_date: date
    path: tuple[str, ...]


def _leg(
    book: _RateBook, source: str, target: str, low: date, high: date
) -> tuple[Decimal, Decimal, date] | None:
    """source → target as numerator / denominator of stored rates: direct, else inverse."""
    found = book.latest(source, target, low, high)
    if found is not None:
        return found[1], ONE, found[0]
    found = book.latest(target, source, low, high)
    if found is not None:
        return ONE, found[1], found[0]
    return None


def _resolve(
    book: _RateBook, source: str, target: str, base: str, low: date, high: date
) -> _Resolved | None:
    leg = _leg(book, source, target, low, high)
    if leg is not None:
        numerator, denominator, rate_date = leg
        rate = numerator if denominator == ONE else derived_rate(numerator, denominator)
        return _Resolved(rate, rate_date, (source, target))
    if base in (source, target):
        return None
    to_source = _leg(book, base, source, low, high)
    to_target = _leg(book, base, target, low, high)
    if to_source is None or to_target is None:
        return None
    # source → target = (base → target) / (base → source), as a single division.
    numerator = _exact_product(to_target[0], to_source[1])
    denominator = _exact_product(to_target[1], to_source[0])
    return _Resolved(
        derived_rate(numerator, denominator),
        min(to_source[2], to_target[2]),
        (source, base, target),
    )


def _month_end(day: date) -> date:
    return day.replace(day=calendar.monthrange(day.year, day.month)[1])


def _window(policy: Policy, day: date, period_end: date | None, today: date) -> tuple[date, date]:
    """Stored rates dated in [low, high] may serve ``day``; the latest one wins.

    ``high`` is the charge day (charge_day) or the period's last day (period_close). The
    staleness allowance counts back from ``high``, or from today while ``high`` is still in
    the future: an open period is rated at the latest known rate until the real one exists.
    """
    if policy.mode == PolicyMode.PERIOD_CLOSE.value:
        high = period_end if period_end is not None else _month_end(day)
    else:
        high = day
    reference = min(high, today)
    allowance = timedelta(days=policy.max_staleness_days)
    low = reference - allowance if reference - date.min >= allowance else date.min
    return low, high


def _resolve_or_raise(
    book: _RateBook, source: str, target: str, policy: Policy, day: date, window: tuple[date, date]
) -> _Resolved:
    if source == target:
        return _Resolved(ONE, day, (source,))
    low, high = window
    try:
        resolved = _resolve(book, source, target, policy.base_currency, low, high)
    except _OutOfRange as exc:
        raise InvalidInput(
            f"The {source}→{target} rate for {day} cannot be represented: {exc}.",
            code="fx_rate_out_of_range",
            from_currency=source,
            to_currency=target,
            day=day.isoformat(),
        ) from None
    if resolved is None:
        via = (
            f", nor via {policy.base_currency}"
            if policy.base_currency not in (source, target)
            else ""
        )
        raise InvalidInput(
            f"No {source}→{target} exchange rate for {day}: no rate dated {low} to {high} "
            f"(policy {policy.mode}, max_staleness_days {policy.max_staleness_days}), "
            f"neither direct nor inverse{via}.",
            code="fx_rate_missing",
            from_currency=source,
            to_currency=target,
            day=day.isoformat(),
        )
    return resolved


def _finite_amount(amount: Decimal) -> Decimal:
    if not isinstance(amount, Decimal) or not amount.is_finite():
        raise InvalidInput(f"amount must be a finite Decimal, not {amount!r}.", field="amount")
    return amount


def convert(
    session: Session,
    msp_id: str,
    amount: Decimal,
    from_ccy: str,
    to_ccy: str,
    on: date,
    *,
    period_end: date | None = None,
    as_of: date | None = None,
) -> Conversion:
    """Convert ``amount`` charged on day ``on`` by the MSP's policy; never rounds the amount.

    ``period_end``: last day of the billing period, for period_close policies whose periods
    are not calendar months. ``as_of``: "today" (tests), default the current UTC date.
    """
    amount = _finite_amount(amount)
    source, target = _currency(from_ccy, "from"), _currency(to_ccy, "to")
    policy = policy_for(session, msp_id)
    window = _window(policy, on, period_end, as_of or utcnow().date())
    book = _load_book(session, msp_id, {source, target, policy.base_currency}, *window)
    resolved = _resolve_or_raise(book, source, target, policy, on, window)
    return Conversion(
        amount=amount,
        converted=_exact_product(amount, resolved.rate),
        rate=resolved.rate,
        rate_date=resolved.rate_date,
        path=resolved.path,
    )


def daily_rates(
    session: Session,
    msp_id: str,
    pairs: set[tuple[str, str]],
    start: date,
    end: date,
    *,
    period_end: date | None = None,
    as_of: date | None = None,
) -> pl.DataFrame:
    """The rate of each (from, to) pair for each day of [start, end], by the MSP's policy.

    One row per day per pair (columns ``day, from_currency, to_currency, rate, rate_date``),
    sorted by pair then day, for the rating engine to join on. The work is per day and pair,
    never per usage line. Raises InvalidInput ``fx_rate_missing`` naming the first pair and
    day without a rate.
    """
    if start > end:
        raise InvalidInput(f"start {start} is after end {end}.", field="start")
    if period_end is not None and period_end < end:
        raise InvalidInput(f"period_end {period_end} is before end {end}.", field="period_end")
    wanted = sorted({(_currency(f, "from"), _currency(t, "to")) for f, t in pairs})
    if not wanted:
        return pl.DataFrame(schema=RATE_SCHEMA)
    policy = policy_for(session, msp_id)
    today = as_of or utcnow().date()
    days = [start + timedelta(days=offset) for offset in range((end - start).days + 1)]
    windows = [_window(policy, day, period_end, today) for day in days]
    currencies = {c for pair in wanted for c in pair} | {policy.base_currency}
    book = _load_book(
        session, msp_id, currencies, min(w[0] for w in windows), max(w[1] for w in windows)
    )
    columns: dict[str, list[Any]] = {name: [] for name in RATE_SCHEMA}
    for source, target in wanted:
        # Days that share a window (period_close) share one resolution.
        resolved: dict[tuple[date, date], _Resolved] = {}
        for day, window in zip(days, windows, strict=True):
            if source == target:
                found = _Resolved(ONE, day, (source,))
            else:
                if window not in resolved:
                    resolved[window] = _resolve_or_raise(book, source, target, policy, day, window)
                found = resolved[window]
            columns["day"].append(day)
            columns["from_currency"].append(source)
            columns["to_currency"].append(target)
            columns["rate"].append(found.rate)
            columns["rate_date"].append(found.rate_date)
    return pl.DataFrame(columns, schema=RATE_SCHEMA)
