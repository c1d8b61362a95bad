"""Terms, billing periods and day-based proration of licence subscriptions: pure functions.

The model (docs/catalog.md has worked examples):

* A subscription has a seat count that changes on given days: ``seats`` is a list of
  ``(effective_date, quantity)``; a quantity is in force from its effective date
  (**the change day counts**) until the next change. Service ends after ``last_day``
  (inclusive), or never.
* **Billing periods**: monthly billing uses calendar months; annual billing uses the terms
  themselves, anchored on the start date (12 months from the start day, then renewed).
* **Charged in advance**: on the first day of service in a billing period, the seats in force
  that day are charged up to the end of the period. Every later seat change in the period is
  a prorated charge (more seats) or credit (fewer) from its effective day to the period's
  end, and the end of service is a credit for the days after the last day.
* **Proration by day**: a piece covering ``days`` days of a period of ``period_days`` days
  costs ``price × seats × days / period_days``. So 10 → 15 seats on day 12 of a 30-day
  month charges ``5 × price × 19/30`` (days 12..30).

The pieces of one billing period add up to ``price × seat-days / period_days`` where
seat-days is the sum over the period's days of the seats in force: the integer identity
``Σ seats × days = seat-days`` holds exactly, and so does ``Σ price × seats × days``.
Amounts are Decimal, divided once per piece and kept at 24 decimals (half-even); rounding
to the currency's minor unit happens only where they become charge lines.
"""

from __future__ import annotations

import calendar
import itertools
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import ROUND_HALF_EVEN, Context, Decimal
from enum import StrEnum

ONE_DAY = timedelta(days=1)
AMOUNT_PLACES = Decimal("1e-24")
WIDE = Context(prec=80, rounding=ROUND_HALF_EVEN)

# Seat reductions and refunded cancellations of an annual term are allowed within this many
# days of the term's start (the start or the renewal day counts as day 1).
ANNUAL_GRACE_DAYS = 7


class Term(StrEnum):
    MONTHLY = "monthly"
    ANNUAL = "annual"

    @property
    def months(self) -> int:
        return 1 if self is Term.MONTHLY else 12


class Frequency(StrEnum):
    MONTHLY = "monthly"
    ANNUAL = "annual"


class PieceKind(StrEnum):
    CHARGE = "charge"  # the advance charge of a billing period
    CHANGE = "change"  # a seat change inside a billing period
    END = "end"  # the credit for the days after the end of service


@dataclass(frozen=True)
class Span:
    """Days ``start`` .. ``end``, both included."""

    start: date
    end: date

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1

    def __contains__(self, day: object) -> bool:
        return isinstance(day, date) and self.start <= day <= self.end


@dataclass(frozen=True)
class Piece:
    """One prorated charge (seats > 0) or credit (seats < 0), charged on ``on``."""

    kind: PieceKind
    on: date
    seats: int
    covered: Span
    period: Span

    @property
    def seat_days(self) -> int:
        return self.seats * self.covered.days

    def amount(self, price: Decimal) -> Decimal:
        numerator = WIDE.multiply(price, Decimal(self.seat_days))
        return WIDE.divide(numerator, Decimal(self.period.days)).quantize(
            AMOUNT_PLACES, context=WIDE
        )


def add_months(day: date, months: int) -> date:
    """Same day ``months`` later, clamped to the month's end (31 Jan + 1 month = 28/29 Feb)."""
    index = day.year * 12 + day.month - 1 + months
    year, month = divmod(index, 12)
    month += 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def month_span(day: date) -> Span:
    first = day.replace(day=1)
    return Span(first, first.replace(day=calendar.monthrange(day.year, day.month)[1]))


def term_containing(start: date, term: Term, day: date) -> Span:
    """The term (start, then each renewal) that contains ``day`` (>= start).

    Terms are anchored on the start date and counted from it, not from the previous term, so
    a subscription started on 31 January renews on 28 February, then 31 March.
    """
    if day < start:
        raise ValueError(f"{day} is before the start {start}")
    index = ((day.year - start.year) * 12 + day.month - start.month) // term.months
    index = max(index, 0)
    while add_months(start, (index + 1) * term.months) <= day:
        index += 1
    while add_months(start, index * term.months) > day:
        index -= 1
    first = add_months(start, index * term.months)
    return Span(first, add_months(start, (index + 1) * term.months) - ONE_DAY)


def billing_periods(start: date, term: Term, frequency: Frequency, until: date) -> Iterator[Span]:
    """Billing periods from the one containing ``start`` to the one containing ``until``."""
    if frequency is Frequency.ANNUAL and term is not Term.ANNUAL:
        raise ValueError("annual billing needs an annual term")
    day = start
    while day <= until:
        span = (
            month_span(day) if frequency is Frequency.MONTHLY else term_containing(start, term, day)
        )
        yield span
        day = span.end + ONE_DAY


def seats_on(seats: Sequence[tuple[date, int]], day: date) -> int:
    """Seats in force on ``day`` (0 before the first change)."""
    current = 0
    for effective, quantity in seats:
        if effective > day:
            break
        current = quantity
    return current


def pieces(
    *,
    start: date,
    last_day: date | None,
    seats: Sequence[tuple[date, int]],
    term: Term,
    frequency: Frequency,
    until: date,
) -> list[Piece]:
    """Every piece charged on a day up to ``until``, in order.

    ``seats`` must be sorted by effective date, without duplicates, the first on ``start``.
    Changes after ``last_day`` are ignored.
    """
    if not seats or seats[0][0] != start:
        raise ValueError("the first seat count must take effect on the start date")
    ordered = list(seats)
    if any(a[0] >= b[0] for a, b in itertools.pairwise(ordered)):
        raise ValueError("seat changes must be sorted by date without duplicates")
    result: list[Piece] = []
    horizon = until if last_day is None else min(until, last_day)
    for period in billing_periods(start, term, frequency, horizon):
        first = max(period.start, start)
        service_end = period.end if last_day is None else min(period.end, last_day)
        in_force = seats_on(ordered, first)
        if in_force and first <= until:
            result.append(Piece(PieceKind.CHARGE, first, in_force, Span(first, period.end), period))
        for effective, quantity in ordered:
            if not first < effective <= service_end or effective > until:
                continue
            delta = quantity - in_force
            in_force = quantity
            if delta:
                covered = Span(effective, period.end)
                result.append(Piece(PieceKind.CHANGE, effective, delta, covered, period))
        if last_day is not None and last_day < period.end and last_day <= until and in_force:
            covered = Span(last_day + ONE_DAY, period.end)
            result.append(Piece(PieceKind.END, last_day, -in_force, covered, period))
    return result


def seat_days(
    seats: Sequence[tuple[date, int]], start: date, last_day: date | None, span: Span
) -> int:
    """Σ over the days of ``span`` of the seats in force (the integral pieces must match)."""
    total = 0
    day = max(span.start, start)
    end = span.end if last_day is None else min(span.end, last_day)
    while day <= end:
        total += seats_on(seats, day)
        day += ONE_DAY
    return total


# --- renewal and cancellation rules -----------------------------------------------------


def first_term_end(start: date, term: Term) -> date:
    return term_containing(start, term, start).end


def in_annual_grace(start: date, term: Term, day: date) -> bool:
    """Within the first ``ANNUAL_GRACE_DAYS`` days of the (annual) term containing ``day``."""
    current = term_containing(start, term, day)
    return (day - current.start).days < ANNUAL_GRACE_DAYS


@dataclass(frozen=True)
class Cancellation:
    last_day: date  # service (and charging) ends after this day
    refunded: bool  # True: the days after last_day are credited


def cancellation(start: date, term: Term, effective: date) -> Cancellation:
    """When a cancellation asked for ``effective`` really ends the subscription.

    Monthly terms end at the end of ``effective`` with a prorated credit. Annual terms do too
    within the first 7 days of a term (start or renewal); later, the subscription keeps
    running, and charging, to the end of the current term.
    """
    if effective < start:
        raise ValueError("a subscription cannot end before it starts")
    if term is Term.MONTHLY or in_annual_grace(start, term, effective):
        return Cancellation(effective, True)
    return Cancellation(term_containing(start, term, effective).end, False)


def decrease_allowed(start: date, term: Term, effective: date) -> bool:
    """Seat reductions: any day on a monthly term; on an annual term only within the first
    7 days of a term (which includes taking effect on a renewal day)."""
    return term is Term.MONTHLY or in_annual_grace(start, term, effective)
