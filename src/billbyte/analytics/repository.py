"""Queries of the cost read model (``analytics.models``) for the portal, the console and the
analytics endpoint.

Every function takes ``(session, msp_id, customer_id, period, ...)``, scopes by the MSP and
the customer, and raises :class:`~billbyte.kit.errors.NotFound` for a customer of another
MSP (``customers.repository.get_customer``). Filters become SQL conditions (a tag filter
becomes the list of the period's tag sets that match it) and amounts are summed by SQL, as
integer minor units: exact on PostgreSQL and SQLite alike. All amounts are in the customer's
currency (the charge lines' own), rounded to its minor unit; any selection of rows adds up
exactly to the charges it covers, so breakdowns, daily trends and CSV rows of one filter
agree to the minor unit.

Forecast (one rule, also used by ``GET /v1/customers/{id}/analytics``): a linear run rate —
the period's amount so far divided by the days with usage, times the days of the period,
while the period is not over; once it is over, what was spent.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import ColumnElement, distinct, false, func, or_, select
from sqlalchemy.orm import Session

from billbyte.analytics.models import CostResource, CostRollup, CostUsageDay
from billbyte.customers import repository as customers
from billbyte.kit.errors import InvalidInput
from billbyte.kit.money import minor_units, round_money
from billbyte.kit.periods import Period, parse_period

UNTAGGED = "(untagged)"
NO_REGION = "(no region)"
NO_ACCOUNT = "(no account)"
DIMENSIONS = ("vendor", "service", "account", "region")
TAG_PREFIX = "tag:"
_CHUNK = 500  # values per IN list


@dataclass(frozen=True)
class CostFilter:
    """What a portal page selects. Empty tuples select everything; ``regions`` and
    ``accounts`` accept ``NO_REGION``/``NO_ACCOUNT`` for rows without one, and a ``tag``
    of ``(key, UNTAGGED)`` selects the rows without that key."""

    date_from: date | None = None
    date_to: date | None = None
    vendors: tuple[str, ...] = ()
    services: tuple[str, ...] = ()
    accounts: tuple[str, ...] = ()
    regions: tuple[str, ...] = ()
    tag: tuple[str, str] | None = None


ALL = CostFilter()


@dataclass(frozen=True)
class CostRow:
    """One row of the CSV export: the amount of a day, vendor, service, account, region
    and tag set."""

    day: date
    vendor: str
    service: str
    account: str | None
    region: str | None
    tags: dict[str, str]
    amount: Decimal
    currency: str


@dataclass(frozen=True)
class FilterOptions:
    currency: str
    first_day: date
    last_day: date
    vendors: list[str]
    services: list[str]
    accounts: list[str]
    regions: list[str]
    tags: dict[str, list[str]]  # key → values


@dataclass(frozen=True)
class RankedResource:
    resource_id: str
    vendor: str
    service_name: str | None
    amount: Decimal  # customer's currency, rounded
    currency: str
    cost: Decimal  # the vendor's cost, exact, billing currency
    billing_currency: str


@dataclass(frozen=True)
class Driver:
    """How one label's amount moved between the two spans compared."""

    label: str
    previous: Decimal
    current: Decimal
    delta: Decimal


@dataclass(frozen=True)
class MonthComparison:
    """``period`` to date against the previous period over the same number of days.

    ``days`` is how many days of ``period`` are compared (1 … its length; 0 before it
    starts); the previous period is compared over its first ``previous_days`` days (the same
    number, at most its length). ``drivers`` lists, per dimension ("service", "account",
    "region"), every label of either span, by absolute delta (largest first)."""

    period: str
    previous_period: str
    currency: str
    previous_currency: str | None  # None when the previous period has no rows
    days: int
    previous_days: int
    current: Decimal
    previous: Decimal
    previous_full: Decimal
    delta: Decimal
    drivers: dict[str, list[Driver]] = field(default_factory=dict)


# -- reading rows ---------------------------------------------------------------------------
# -- scoping and filtering --------------------------------------------------------------------

_T = CostRollup.__table__


@dataclass(frozen=True)
class Scope:
    """A checked customer-period and the SQL conditions of a filter."""

    month: Period
    customer_id: str
    currency: str  # the period's rows', else the customer's
    scale: int  # the currency's minor units
    base: tuple[ColumnElement[bool], ...]  # the customer-period, unfiltered
    where: tuple[ColumnElement[bool], ...]  # base and the filter

    def amount(self, units: Any) -> Decimal:
        return Decimal(int(units or 0)).scaleb(-self.scale)


def _month(period: str) -> Period:
    return parse_period(period)


def _check(filters: CostFilter, month: Period) -> None:
    for name in ("date_from", "date_to"):
        value = getattr(filters, name)
        if value is not None and not month.first_day <= value <= month.last_day:
            raise InvalidInput(f"{name} must lie within the period {month}.", field=name)
    if filters.date_from and filters.date_to and filters.date_from > filters.date_to:
        raise InvalidInput("date_from must not be after date_to.", field="date_from")
    for name in ("vendors", "services", "accounts", "regions"):
        if len(getattr(filters, name)) > _CHUNK:
            raise InvalidInput(f"At most {_CHUNK} values per filter.", field=name)


def scope(
    session: Session, msp_id: str, customer_id: str, period: str, filters: CostFilter = ALL
) -> Scope:
    """The customer of ``msp_id`` (else NotFound) and ``filters`` as SQL conditions."""
    month = _month(period)
    customer = customers.get_customer(session, msp_id, customer_id)
    _check(filters, month)
    base = (_T.c.msp_id == msp_id, _T.c.customer_id == customer.id, _T.c.period == str(month))
    where: list[ColumnElement[bool]] = list(base)
    if filters.date_from:
        where.append(_T.c.day >= filters.date_from)
    if filters.date_to:
        where.append(_T.c.day <= filters.date_to)
    if filters.vendors:
        where.append(_T.c.vendor.in_(list(filters.vendors)))
    if filters.services:
        where.append(_T.c.service.in_(list(filters.services)))
    if filters.accounts:
        where.append(_values_or_null(_T.c.sub_account_id, filters.accounts, NO_ACCOUNT))
    if filters.regions:
        where.append(_values_or_null(_T.c.region, filters.regions, NO_REGION))
    if filters.tag is not None:
        key, value = filters.tag
        sets = session.scalars(select(_T.c.tags).where(*base).distinct()).all()
        matching = [t for t in sets if _tag_value(t, key) == value]
        where.append(_values_or_null(_T.c.tags, matching, None))
    found = session.scalar(select(_T.c.currency).where(*base).limit(1))
    currency = str(found or customer.currency)
    return Scope(month, customer.id, currency, minor_units(currency), base, tuple(where))


def _values_or_null(
    column: Any, values: Sequence[str | None], null_label: str | None
) -> ColumnElement[bool]:
    real = [v for v in values if v is not None and v != null_label]
    conditions: list[ColumnElement[bool]] = []
    if real:
        conditions.append(column.in_(real))
    if any(v is None or v == null_label for v in values):
        conditions.append(column.is_(None))
    return or_(*conditions) if conditions else false()


def _parsed(tags: str | None) -> dict[str, str]:
    return dict(json.loads(tags)) if tags else {}


def _tag_value(tags: str | None, key: str) -> str:
    return _parsed(tags).get(key, UNTAGGED)


_COLUMNS = {
    "vendor": _T.c.vendor,
    "service": _T.c.service,
    "account": _T.c.sub_account_id,
    "region": _T.c.region,
}
_NULL_LABELS = {"account": NO_ACCOUNT, "region": NO_REGION}


def _dimension(dimension: str) -> str:
    if dimension in DIMENSIONS or (
        dimension.startswith(TAG_PREFIX) and len(dimension) > len(TAG_PREFIX)
    ):
        return dimension
    raise InvalidInput(
        f"dimension must be one of {', '.join(DIMENSIONS)} or tag:<key>.", field="dimension"
    )


def sums_by(
    session: Session, where: Sequence[ColumnElement[bool]], dimension: str
) -> dict[str, int]:
    """Minor units by the label of a checked ``dimension`` over the rows ``where`` selects."""
    column = _T.c.tags if dimension.startswith(TAG_PREFIX) else _COLUMNS[dimension]
    sums: dict[str, int] = {}
    for value, units in session.execute(
        select(column, func.sum(_T.c.amount_minor)).where(*where).group_by(column)
    ):
        if dimension.startswith(TAG_PREFIX):
            label = _tag_value(value, dimension[len(TAG_PREFIX) :])
        else:
            label = value if value is not None else _NULL_LABELS.get(dimension, "")
        sums[label] = sums.get(label, 0) + int(units or 0)
    return sums


def _ordered(sums: dict[str, int], where: Scope) -> list[tuple[str, Decimal]]:
    return [
        (label, where.amount(units))
        for label, units in sorted(sums.items(), key=lambda kv: (-kv[1], kv[0]))
    ]


def _units(session: Session, where: Sequence[ColumnElement[bool]]) -> int:
    return int(session.scalar(select(func.sum(_T.c.amount_minor)).where(*where)) or 0)


# -- the queries ----------------------------------------------------------------------------


def period_total(
    session: Session, msp_id: str, customer_id: str, period: str, filters: CostFilter = ALL
) -> tuple[Decimal, str]:
    """The amount ``filters`` select, and the currency."""
    where = scope(session, msp_id, customer_id, period, filters)
    return where.amount(_units(session, where.where)), where.currency


def daily_trend(
    session: Session, msp_id: str, customer_id: str, period: str, filters: CostFilter = ALL
) -> list[tuple[date, Decimal]]:
    """The amount of every day of the filtered range (the period by default), zeros
    included."""
    where = scope(session, msp_id, customer_id, period, filters)
    first = filters.date_from or where.month.first_day
    last = filters.date_to or where.month.last_day
    sums = {
        _day(day): int(units or 0)
        for day, units in session.execute(
            select(_T.c.day, func.sum(_T.c.amount_minor)).where(*where.where).group_by(_T.c.day)
        )
    }
    days = [first + timedelta(days=n) for n in range((last - first).days + 1)]
    return [(day, where.amount(sums.get(day, 0))) for day in days]


def _day(value: Any) -> date:
    return value if isinstance(value, date) else date.fromisoformat(str(value))


def breakdown(
    session: Session,
    msp_id: str,
    customer_id: str,
    period: str,
    dimension: str,
    filters: CostFilter = ALL,
) -> list[tuple[str, Decimal]]:
    """The filtered amount by ``dimension`` (vendor, service, account, region or
    tag:<key>), largest first, then by label; adds up exactly to the filtered total. Rows
    without the dimension are labelled ``UNTAGGED``, ``NO_REGION`` or ``NO_ACCOUNT``."""
    dimension = _dimension(dimension)
    where = scope(session, msp_id, customer_id, period, filters)
    return _ordered(sums_by(session, where.where, dimension), where)


def filter_options(session: Session, msp_id: str, customer_id: str, period: str) -> FilterOptions:
    """The distinct values of the period, for the filter form."""
    where = scope(session, msp_id, customer_id, period)

    def values_of(column: Any) -> list[Any]:
        return list(session.scalars(select(column).where(*where.base).distinct()))

    tags: dict[str, set[str]] = {}
    for text in values_of(_T.c.tags):
        for key, value in _parsed(text).items():
            tags.setdefault(key, set()).add(value)
    return FilterOptions(
        currency=where.currency,
        first_day=where.month.first_day,
        last_day=where.month.last_day,
        vendors=sorted(values_of(_T.c.vendor)),
        services=sorted(values_of(_T.c.service)),
        accounts=sorted(a if a is not None else NO_ACCOUNT for a in values_of(_T.c.sub_account_id)),
        regions=sorted(r if r is not None else NO_REGION for r in values_of(_T.c.region)),
        tags={key: sorted(values) for key, values in sorted(tags.items())},
    )


def top_resources(
    session: Session, msp_id: str, customer_id: str, period: str, limit: int = 10
) -> list[RankedResource]:
    """The costliest resources of the period by amount (at most ``RANKED`` are kept)."""
    return _ranking(session, msp_id, customer_id, period, limit, by_cost=False)


def top_resources_by_cost(
    session: Session, msp_id: str, customer_id: str, period: str, limit: int = 10
) -> list[RankedResource]:
    """The costliest resources of the period by the vendor's cost (the help desk's view)."""
    return _ranking(session, msp_id, customer_id, period, limit, by_cost=True)


def _ranking(
    session: Session, msp_id: str, customer_id: str, period: str, limit: int, *, by_cost: bool
) -> list[RankedResource]:
    month = _month(period)
    customer = customers.get_customer(session, msp_id, customer_id)
    table = CostResource.__table__
    found = [
        RankedResource(
            resource_id=r.resource_id,
            vendor=r.vendor,
            service_name=r.service_name,
            amount=round_money(r.amount, r.currency),
            currency=r.currency,
            cost=r.cost,
            billing_currency=r.billing_currency,
        )
        for r in session.execute(
            select(table).where(
                table.c.msp_id == msp_id,
                table.c.customer_id == customer.id,
                table.c.period == str(month),
            )
        )
    ]
    if by_cost:
        found.sort(key=lambda r: (-r.cost, r.resource_id, r.vendor))
    else:
        found.sort(key=lambda r: (-r.amount, r.resource_id, r.vendor))
    return found[: max(limit, 0)]


def cost_rows(
    session: Session, msp_id: str, customer_id: str, period: str, filters: CostFilter = ALL
) -> list[CostRow]:
    """The filtered rows by day, vendor, service, account, region and tag set, in that
    order, for the CSV export; they add up exactly to the filtered total."""
    where = scope(session, msp_id, customer_id, period, filters)
    columns = (_T.c.day, _T.c.vendor, _T.c.service, _T.c.sub_account_id, _T.c.region, _T.c.tags)
    rows = [
        CostRow(
            day=_day(day),
            vendor=vendor,
            service=service,
            account=account,
            region=region,
            tags=_parsed(tags),
            amount=where.amount(units),
            currency=where.currency,
        )
        for day, vendor, service, account, region, tags, units in session.execute(
            select(*columns, func.sum(_T.c.amount_minor)).where(*where.where).group_by(*columns)
        )
    ]
    return sorted(
        rows,
        key=lambda r: (r.day, r.vendor, r.service, r.account or "", r.region or "", str(r.tags)),
    )


def usage_cost_by_day(
    session: Session, msp_id: str, customer_id: str, period: str
) -> list[tuple[date, str, Decimal]]:
    """The vendor's cost of the rated usage per day and billing currency, exact."""
    where = scope(session, msp_id, customer_id, period)
    table = CostUsageDay.__table__
    rows = session.execute(
        select(table.c.day, table.c.billing_currency, table.c.cost).where(
            table.c.msp_id == msp_id,
            table.c.customer_id == where.customer_id,
            table.c.period == str(where.month),
        )
    )
    return sorted((_day(d), c, v) for d, c, v in rows)


def usage_days(session: Session, where: Sequence[ColumnElement[bool]]) -> int:
    """Days with usage (not only fees or licences): the forecast's run-rate divisor."""
    return int(
        session.scalar(select(func.count(distinct(_T.c.day))).where(*where, _T.c.kind == "usage"))
        or 0
    )


def forecast_amount(
    total: Decimal, days_with_data: int, period: str, today: date, currency: str
) -> Decimal:
    """The one forecast rule (see the module docstring)."""
    month = _month(period)
    days_in_period = (month.last_day - month.first_day).days + 1
    if not days_with_data or total == 0 or today > month.last_day:
        return round_money(total, currency)
    return round_money(total / days_with_data * days_in_period, currency)


def forecast(session: Session, msp_id: str, customer_id: str, period: str, today: date) -> Decimal:
    """The period's forecast amount (linear run rate; what was spent once it is over)."""
    where = scope(session, msp_id, customer_id, period)
    total = where.amount(_units(session, where.base))
    return forecast_amount(total, usage_days(session, where.base), period, today, where.currency)


def month_comparison(
    session: Session, msp_id: str, customer_id: str, period: str, today: date
) -> MonthComparison:
    """This period to ``today`` against the previous period over as many days, with the
    services, accounts and regions that moved most."""
    now = scope(session, msp_id, customer_id, period)
    try:
        before = now.month.add_months(-1)
    except ValueError:
        raise InvalidInput("The period has no previous period.", field="period") from None
    then = scope(session, msp_id, customer_id, str(before))
    cut = min(today, now.month.last_day)
    days = max(0, (cut - now.month.first_day).days + 1)
    previous_days = min(days, (before.last_day - before.first_day).days + 1)
    now_where = (*now.base, _T.c.day < now.month.first_day + timedelta(days=days))
    then_where = (*then.base, _T.c.day < before.first_day + timedelta(days=previous_days))
    drivers: dict[str, list[Driver]] = {}
    for dimension in ("service", "account", "region"):
        current = sums_by(session, now_where, dimension)
        previous = sums_by(session, then_where, dimension)
        found = [
            Driver(
                label=label,
                previous=then.amount(previous.get(label, 0)),
                current=now.amount(current.get(label, 0)),
                delta=now.amount(current.get(label, 0)) - then.amount(previous.get(label, 0)),
            )
            for label in set(current) | set(previous)
        ]
        drivers[dimension] = sorted(found, key=lambda d: (-abs(d.delta), d.label))
    current_total = now.amount(_units(session, now_where))
    previous_total = then.amount(_units(session, then_where))
    has_previous = session.scalar(select(_T.c.id).where(*then.base).limit(1)) is not None
    return MonthComparison(
        period=str(now.month),
        previous_period=str(before),
        currency=now.currency,
        previous_currency=then.currency if has_previous else None,
        days=days,
        previous_days=previous_days,
        current=current_total,
        previous=previous_total,
        previous_full=then.amount(_units(session, then.base)),
        delta=current_total - previous_total,
        drivers=drivers,
    )
