"""Conversion by an MSP's stored rates and policy: one amount (``convert``), or the table of
one rate per day per pair that rating joins on (``daily_rates``).

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
from bisect import bisect_right
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import (
    ROUND_HALF_EVEN,
    Context,
    Decimal,
    DivisionByZero,
    Inexact,
    InvalidOperation,
    Overflow,
)
from typing import Any

import polars as pl
from sqlalchemy import select
from sqlalchemy.orm import Session

from billbyte.fx.models import FxRate
from billbyte.fx.policy import Policy, policy_for
from billbyte.fx.rates import checked_currency
from billbyte.fx.schemas import LIMIT, PolicyMode
from billbyte.kit.clock import utcnow
from billbyte.kit.errors import InvalidInput
from billbyte.kit.money import format_amount

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
    source, target = checked_currency(from_ccy, "from"), checked_currency(to_ccy, "to")
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
    wanted = sorted({(checked_currency(f, "from"), checked_currency(t, "to")) for f, t in pairs})
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
