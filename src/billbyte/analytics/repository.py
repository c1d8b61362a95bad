"""Queries of the cost read model (``analytics.models``) for the portal, the console and
the analytics endpoint.

Every function takes ``(session, msp_id, customer_id, period, ...)``, scopes by the MSP and
the customer, and raises :class:`~billbyte.kit.errors.NotFound` for a customer of another
MSP (``customers.repository.get_customer``). A customer-period has a few thousand rows,
so each query reads the rows its filters select (by SQL) and sums them in Python: amounts
are exact decimals, which SQLite cannot add. All amounts are in the customer's currency
(the charge lines' own), rounded to its minor unit; any selection of rows adds up exactly
to the charges it covers, so breakdowns, daily trends and CSV rows of one filter agree
to the minor unit.

Forecast (one rule, also used by ``GET /v1/customers/{id}/analytics``): a linear run rate
— the period's amount so far divided by the days with usage, times the days of the
period, while the period is not over; once it is over, what was spent.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from billbyte.analytics.models import CostResource, CostRollup
from billbyte.customers import repository as customers
from billbyte.kit.errors import InvalidInput
from billbyte.kit.money import round_money
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


@dataclass(frozen=True)
class RollupRow:
    kind: str
    day: date
    vendor: str
    service: str
    account: str | None
    region: str | None
    tags: str | None
    currency: str
    amount: Decimal
    billing_currency: str
    cost: Decimal


def _month(period: str) -> Period:
    return parse_period(period)


def _check(filters: CostFilter, month: Period) -> None:
    for name in ("date_from", "date_to"):
        value = getattr(filters, name)
        if value is not None and not month.first_day <= value <= month.last_day:
            raise InvalidInput(f"{name} must lie within the period {month}.", field=name)
    if filters.date_from and filters.date_to and filters.date_from > filters.date_to:
        raise InvalidInput("date_from must not be after date_to.", field="date_from")


def read_rows(
    session: Session, msp_id: str, customer_id: str, period: str, filters: CostFilter = ALL
) -> tuple[str, list[RollupRow]]:
    """The period's currency (its rows', else the customer's) and the rows ``filters``
    select (one per charge line, day, region and tag set)."""
    month = _month(period)
    customer = customers.get_customer(session, msp_id, customer_id)
    _check(filters, month)
    table = CostRollup.__table__
    query = select(
        table.c.kind,
        table.c.day,
        table.c.vendor,
        table.c.service,
        table.c.sub_account_id,
        table.c.region,
        table.c.tags,
        table.c.currency,
        table.c.amount,
        table.c.billing_currency,
        table.c.cost,
    ).where(
        table.c.msp_id == msp_id,
        table.c.customer_id == customer.id,
        table.c.period == str(month),
    )
    if filters.date_from:
        query = query.where(table.c.day >= filters.date_from)
    if filters.date_to:
        query = query.where(table.c.day <= filters.date_to)
    if filters.vendors:
        query = query.where(table.c.vendor.in_(_bounded(filters.vendors)))
    if filters.services:
        query = query.where(table.c.service.in_(_bounded(filters.services)))
    rows = [RollupRow(*r) for r in session.execute(query)]
    if filters.accounts:
        wanted = set(filters.accounts)
        rows = [r for r in rows if (r.account if r.account is not None else NO_ACCOUNT) in wanted]
    if filters.regions:
        wanted = set(filters.regions)
        rows = [r for r in rows if (r.region if r.region is not None else NO_REGION) in wanted]
    if filters.tag is not None:
        key, value = filters.tag
        rows = [r for r in rows if _tag_value(r.tags, key) == value]
    currency = rows[0].currency if rows else _period_currency(session, msp_id, customer, month)
    return currency, rows


def _bounded(values: Sequence[str]) -> list[str]:
    if len(values) > _CHUNK:
        raise InvalidInput(f"At most {_CHUNK} values per filter.", field="filters")
    return list(values)


def _period_currency(session: Session, msp_id: str, customer: Any, month: Period) -> str:
    table = CostRollup.__table__
    found = session.scalar(
        select(table.c.currency)
        .where(
            table.c.msp_id == msp_id,
            table.c.customer_id == customer.id,
            table.c.period == str(month),
        )
        .limit(1)
    )
    return str(found or customer.currency)


def _parsed(tags: str | None) -> dict[str, str]:
    return dict(json.loads(tags)) if tags else {}


def _tag_value(tags: str | None, key: str) -> str:
    return _parsed(tags).get(key, UNTAGGED)


def _total(values: Iterable[Decimal], currency: str) -> Decimal:
    # Each value is at the minor unit: the sum is exact; round_money fixes the exponent.
    return round_money(sum(values, Decimal(0)), currency)


def _label(row: RollupRow, dimension: str) -> str:
    if dimension == "vendor":
        return row.vendor
    if dimension == "service":
        return row.service
    if dimension == "account":
        return row.account if row.account is not None else NO_ACCOUNT
    if dimension == "region":
        return row.region if row.region is not None else NO_REGION
    return _tag_value(row.tags, dimension[len(TAG_PREFIX) :])


def _dimension(dimension: str) -> str:
    if dimension in DIMENSIONS or (
        dimension.startswith(TAG_PREFIX) and len(dimension) > len(TAG_PREFIX)
    ):
        return dimension
    raise InvalidInput(
        f"dimension must be one of {', '.join(DIMENSIONS)} or tag:<key>.", field="dimension"
    )


def sums_by(rows: Iterable[RollupRow], dimension: str, currency: str) -> list[tuple[str, Decimal]]:
    """The amounts of ``rows`` by a checked ``dimension``'s label, largest first."""
    sums: dict[str, Decimal] = {}
    for row in rows:
        label = _label(row, dimension)
        sums[label] = sums.get(label, Decimal(0)) + row.amount
    return sorted(
        ((k, round_money(v, currency)) for k, v in sums.items()), key=lambda kv: (-kv[1], kv[0])
    )


# -- the queries ----------------------------------------------------------------------------


def period_total(
    session: Session, msp_id: str, customer_id: str, period: str, filters: CostFilter = ALL
) -> tuple[Decimal, str]:
    """The amount ``filters`` select, and the currency."""
    currency, rows = read_rows(session, msp_id, customer_id, period, filters)
    return _total((r.amount for r in rows), currency), currency


def daily_trend(
    session: Session, msp_id: str, customer_id: str, period: str, filters: CostFilter = ALL
) -> list[tuple[date, Decimal]]:
    """The amount of every day of the filtered range (the period by default), zeros
    included."""
    month = _month(period)
    currency, rows = read_rows(session, msp_id, customer_id, period, filters)
    first = filters.date_from or month.first_day
    last = filters.date_to or month.last_day
    sums: dict[date, Decimal] = {}
    for row in rows:
        sums[row.day] = sums.get(row.day, Decimal(0)) + row.amount
    days = [first + timedelta(days=n) for n in range((last - first).days + 1)]
    return [(day, round_money(sums.get(day, Decimal(0)), currency)) for day in days]


def breakdown(
    session: Session,
    msp_id: str,
    customer_id: str,
    period: str,
    dimension: str,
    filters: CostFilter = ALL,
) -> list[tuple[str, Decimal]]:
    """The filtered amount by ``dimension`` (vendor, service, account, region or
    tag:<key>), largest first; adds up exactly to the filtered total. Rows without the
    dimension are labelled ``UNTAGGED``, ``NO_REGION`` or ``NO_ACCOUNT``."""
    dimension = _dimension(dimension)
    currency, rows = read_rows(session, msp_id, customer_id, period, filters)
    return sums_by(rows, dimension, currency)


def filter_options(session: Session, msp_id: str, customer_id: str, period: str) -> FilterOptions:
    """The distinct values of the period, for the filter form."""
    month = _month(period)
    currency, rows = read_rows(session, msp_id, customer_id, period)
    tags: dict[str, set[str]] = {}
    for text in {r.tags for r in rows}:
        for key, value in _parsed(text).items():
            tags.setdefault(key, set()).add(value)
    return FilterOptions(
        currency=currency,
        first_day=month.first_day,
        last_day=month.last_day,
        vendors=sorted({r.vendor for r in rows}),
        services=sorted({r.service for r in rows}),
        accounts=sorted({_label(r, "account") for r in rows}),
        regions=sorted({_label(r, "region") for r in rows}),
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
    """The filtered rows (by day, vendor, service, account, region and tag set), in that
    order, for the CSV export; they add up exactly to the filtered total."""
    _, rows = read_rows(session, msp_id, customer_id, period, filters)
    sums: dict[tuple[Any, ...], Decimal] = {}
    for r in rows:
        key = (r.day, r.vendor, r.service, r.account, r.region, r.tags, r.currency)
        sums[key] = sums.get(key, Decimal(0)) + r.amount
    return [
        CostRow(
            day=day,
            vendor=vendor,
            service=service,
            account=account,
            region=region,
            tags=_parsed(tags),
            amount=round_money(amount, row_currency),
            currency=row_currency,
        )
        for (day, vendor, service, account, region, tags, row_currency), amount in sorted(
            sums.items(), key=lambda kv: tuple("" if v is None else str(v) for v in kv[0])
        )
    ]


def days_with_usage(rows: Iterable[Any]) -> int:
    """Days that have usage (not only fees or licences): the forecast's run-rate divisor."""
    return len({r.day for r in rows if r.kind == "usage"})


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
    currency, rows = read_rows(session, msp_id, customer_id, period)
    total = _total((r.amount for r in rows), currency)
    return forecast_amount(total, days_with_usage(rows), period, today, currency)


def month_comparison(
    session: Session, msp_id: str, customer_id: str, period: str, today: date
) -> MonthComparison:
    """This period to ``today`` against the previous period over as many days, with the
    services, accounts and regions that moved most."""
    month = _month(period)
    try:
        before = month.add_months(-1)
    except ValueError:
        raise InvalidInput("The period has no previous period.", field="period") from None
    previous_length = (before.last_day - before.first_day).days + 1
    cut = min(today, month.last_day)
    days = max(0, (cut - month.first_day).days + 1)
    previous_days = min(days, previous_length)
    currency, rows = read_rows(session, msp_id, customer_id, period)
    current = [r for r in rows if (r.day - month.first_day).days < days]
    previous_currency_found, previous_rows = read_rows(session, msp_id, customer_id, str(before))
    previous = [r for r in previous_rows if (r.day - before.first_day).days < previous_days]
    drivers: dict[str, list[Driver]] = {}
    for dimension in ("service", "account", "region"):
        now = dict(sums_by(current, dimension, currency))
        then = dict(sums_by(previous, dimension, previous_currency_found))
        drivers[dimension] = sorted(
            (
                Driver(
                    label=label,
                    previous=then.get(label, round_money(Decimal(0), currency)),
                    current=now.get(label, round_money(Decimal(0), currency)),
                    delta=now.get(label, Decimal(0)) - then.get(label, Decimal(0)),
                )
                for label in set(now) | set(then)
            ),
            key=lambda d: (-abs(d.delta), d.label),
        )
    current_total = _total((r.amount for r in current), currency)
    previous_total = _total((r.amount for r in previous), previous_currency_found)
    return MonthComparison(
        period=str(month),
        previous_period=str(before),
        currency=currency,
        previous_currency=previous_currency_found if previous_rows else None,
        days=days,
        previous_days=previous_days,
        current=current_total,
        previous=previous_total,
        previous_full=_total((r.amount for r in previous_rows), previous_currency_found),
        delta=current_total - previous_total,
        drivers=drivers,
    )
