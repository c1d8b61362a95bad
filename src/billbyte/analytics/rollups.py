"""Writing the cost rollups (``analytics.models``) in the rating's unit of work.

``rating.tasks.rate_and_settle`` calls :func:`after_rating` once the period's lines, licence
lines and late-data adjustments are written, in the same transaction, so a page never sees
rollups that disagree with the charges. A direct call from the rating job, like its calls
of credit and prepaid, rather than a registered hook: a process that rates without having
imported the hook's registrant would silently leave the rollups stale, while a call cannot
be forgotten. So ``analytics`` must not import ``rating`` (that would be a cycle): the
rating hands over its priced rows as a plain polars frame.

For each customer-period rebuilt, every charge line's amount as the charges API reports it
(all the period's lines rounded together with ``kit.money.allocate``) is split over the
line's cells in proportion to the cells' exact customer-currency amounts (not the vendor
cost: daily exchange rates and dated rules make days of one line differ), again with
``kit.money.allocate``, so the cells add up exactly to the line. Rows are diffed against
what is stored (natural key: line, day, region, tags): rating twice writes nothing the
second time and gives identical rows.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_EVEN, Context, Decimal
from typing import Any

import polars as pl
from sqlalchemy import String, delete, insert, select, type_coerce, update
from sqlalchemy.orm import Session

from billbyte.analytics.models import RANKED, CostResource, CostRollup, CostUsageDay
from billbyte.charges import ledger
from billbyte.charges.ledger import Charge
from billbyte.customers import mapping
from billbyte.db.base import Money
from billbyte.kit.money import allocate, minor_units
from billbyte.kit.periods import Period
from billbyte.usage.object_store import UsageStore
from billbyte.usage.repository import current_slices, scan_slices

# Exact weights are kept at the stored precision (NUMERIC(38, 18)), so a rebuild from
# stored cells allocates exactly as the rebuild from the rating did.
STORED = Decimal("1e-18")
STORED_TYPE = pl.Decimal(38, 18)  # polars rounds half-even to it, as ``_stored`` does
WIDE = Context(prec=90, rounding=ROUND_HALF_EVEN)
USAGE = "usage"

# What identifies a rollup row within its customer-period.
CellKey = tuple[str, date, str | None, str | None]  # line_key, day, region, tags


@dataclass(frozen=True)
class Cell:
    day: date
    region: str | None
    tags: str | None
    exact: Decimal  # the weight: the cell's exact customer-currency amount
    cost: Decimal  # the vendor's cost, in the line's billing currency


def canonical_tags(text: str | None) -> str | None:
    """A usage line's tags (JSON object text) as sorted JSON with text values; None when
    there are none or they are not a JSON object."""
    if text is None or not text.strip():
        return None
    try:
        parsed = json.loads(text)
    except ValueError:
        return None
    if not isinstance(parsed, dict) or not parsed:
        return None
    flat = {
        str(k): v if isinstance(v, str) else json.dumps(v, sort_keys=True)
        for k, v in parsed.items()
    }
    return json.dumps(flat, sort_keys=True, ensure_ascii=False)


def after_rating(
    session: Session,
    msp_id: str,
    period: str,
    rated: Sequence[str],
    closed: Sequence[str],
    detail: pl.DataFrame | None,
    usage_store: UsageStore,
) -> None:
    """Bring the rollups in line with what the rating wrote.

    ``rated``: customers whose lines of ``period`` were written; their rollups are rebuilt
    from ``detail`` (the rating's priced rows, with ``line_key`` and ``tags``) and their
    resource ranking from the usage slices (in ``usage_store``). ``closed``: customers whose
    ``period`` is invoiced and whose late data became adjustment lines on their next open
    month, which is rebuilt from its stored cells (the closed period keeps its rollups)."""
    found = _from_detail(detail, period, rated)
    found.resources = _resources(session, msp_id, period, usage_store, rated, found.prices)
    for customer_id in rated:
        rebuild(session, msp_id, customer_id, period, found.cells.get(customer_id, {}))
        _write_ranking(session, msp_id, customer_id, period, found.resources.get(customer_id, []))
        _write_days(session, msp_id, customer_id, period, found.days.get(customer_id, []))
    for customer_id in closed:
        target = _next_open_month(period, ledger.closed_periods_of(session, customer_id))
        rebuild(session, msp_id, customer_id, target, {})


def _next_open_month(period: str, closed: set[str]) -> str:
    """Where ``invoicing.adjustments`` posts a closed period's late data."""
    month = Period.parse(period).add_months(1)
    while str(month) in closed:
        month = month.add_months(1)
    return str(month)


@dataclass
class _Found:
    """What the rating's rows say, per customer."""

    cells: dict[str, dict[str, list[Cell]]]  # line key → cells
    resources: dict[str, list[dict[str, Any]]]  # the ranked resources
    days: dict[str, list[dict[str, Any]]]  # the usage cost per day and billing currency
    prices: pl.DataFrame | None = None  # sell and cost per customer and service


def _from_detail(detail: pl.DataFrame | None, period: str, customers: Sequence[str]) -> _Found:
    found = _Found({}, {}, {})
    cells = found.cells
    if detail is None or detail.is_empty() or not customers:
        return found
    month = Period.parse(period)
    frame = detail.filter(
        pl.col("customer_id").is_in(pl.Series(list(customers), dtype=pl.String).implode())
    ).with_columns(
        pl.col("day").clip(month.first_day, month.last_day),
        pl.col("sell_local").fill_null(0),
    )
    distinct = [t for t in frame["tags"].unique().to_list() if t is not None]
    frame = frame.with_columns(
        pl.col("tags").replace_strict(
            {t: canonical_tags(t) for t in distinct}, default=None, return_dtype=pl.String
        )
    )
    grouped = frame.group_by("customer_id", "line_key", "day", "region_id", "tags").agg(
        pl.col("sell_local").sum().cast(STORED_TYPE), pl.col("cost").sum().cast(STORED_TYPE)
    )
    for customer_id, key, day, region, tags, exact, cost in grouped.iter_rows():
        cells.setdefault(customer_id, {}).setdefault(key, []).append(
            Cell(day, region, tags, exact, cost)
        )
    # Each service's average price over the period (sell / cost), for the resource ranking.
    prices = frame.group_by(
        "customer_id", "partner_account_id", "vendor", "service_name", "billing_currency"
    ).agg(
        pl.col("sell_local").sum().alias("sell"), pl.col("cost").sum(), pl.col("currency").first()
    )
    found.prices = prices
    days = frame.group_by("customer_id", "day", "billing_currency").agg(
        pl.col("cost").sum().cast(STORED_TYPE)
    )
    for customer_id, day, billing_currency, cost in days.iter_rows():
        found.days.setdefault(customer_id, []).append(
            {"day": day, "billing_currency": billing_currency, "cost": cost}
        )
    return found


def _resources(
    session: Session,
    msp_id: str,
    period: str,
    usage_store: UsageStore,
    customers: Sequence[str],
    prices: pl.DataFrame | None,
) -> dict[str, list[dict[str, Any]]]:
    """The costliest resources of each customer: the vendor's cost per resource (exact),
    and its amount at its service's average price of the period (the service's amount
    over its cost; exact where one price and one exchange rate apply to the whole
    service-month). Read from the usage slices in one lean pass: pricing every resource
    with the rating would multiply the rating's rows by the number of resources."""
    found: dict[str, list[dict[str, Any]]] = {}
    if prices is None or prices.is_empty() or not customers:
        return found
    lines = scan_slices(usage_store, current_slices(session, msp_id, period))
    if lines is None:
        return found
    keys = ["customer_id", "partner_account_id", "service_name", "billing_currency"]
    # Summed first and attributed after: the attribution needs only the account columns,
    # and runs on one row per resource instead of one per usage line.
    raw = ["partner_account_id", "billing_account_id", "sub_account_id", "service_name"]
    summed = (
        lines.filter(pl.col("resource_id").is_not_null())
        .group_by([*raw, "billing_currency", "resource_id"])
        .agg(pl.col("billed_cost").sum().alias("cost"))
    )
    costs = (
        mapping.map_to_customers(summed, mapping.links_frame(session, msp_id), only=customers)
        .group_by([*keys, "resource_id"])
        .agg(pl.col("cost").sum())
        .collect()
    )
    # sell / cost per service, computed exactly in Decimal on the few rows.
    ratio_rows = [
        (*key, currency, vendor, _ratio(sell, cost))
        for *key, vendor, sell, cost, currency in prices.select(
            *keys, "vendor", "sell", "cost", "currency"
        ).iter_rows()
    ]
    ratios = pl.DataFrame(
        ratio_rows,
        schema={
            **{k: prices.schema[k] for k in keys},
            "currency": pl.String,
            "vendor": pl.String,
            "ratio": pl.Decimal(38, 18),
        },
        orient="row",
    )
    ranked = (
        costs.join(ratios, on=keys, how="inner", nulls_equal=True)
        .with_columns((pl.col("cost") * pl.col("ratio")).cast(pl.Decimal(38, 24)).alias("amount"))
        .group_by(
            "customer_id", "resource_id", "vendor", "service_name", "billing_currency", "currency"
        )
        .agg(pl.col("amount").sum(), pl.col("cost").sum())
        .with_columns(
            pl.struct(-pl.col("amount"), "resource_id")
            .rank("ordinal")
            .over("customer_id")
            .alias("_by_amount"),
            pl.struct(-pl.col("cost"), "resource_id")
            .rank("ordinal")
            .over("customer_id")
            .alias("_by_cost"),
        )
        .filter((pl.col("_by_amount") <= RANKED) | (pl.col("_by_cost") <= RANKED))
        .drop("_by_amount", "_by_cost")
    )
    for item in ranked.iter_rows(named=True):
        item["amount"], item["cost"] = _stored(item["amount"]), _stored(item["cost"])
        found.setdefault(item.pop("customer_id"), []).append(item)
    return found


def _ratio(sell: Decimal | None, cost: Decimal | None) -> Decimal:
    if not cost or sell is None:
        return Decimal(0)
    return WIDE.divide(sell, cost).quantize(STORED, context=WIDE)


def _stored(value: Decimal | None) -> Decimal:
    if value is None:
        return Decimal(0)
    return value.quantize(STORED, context=WIDE)


def rebuild(
    session: Session,
    msp_id: str,
    customer_id: str,
    period: str,
    fresh: dict[str, list[Cell]],
) -> None:
    """Make the customer-period's rollups say what its charge lines say: each line's cells
    from ``fresh`` (the rating's), else the cells stored for it, else one cell."""
    table = CostRollup.__table__
    existing = _existing(session, table, msp_id, customer_id, period, _CELL_KEY)
    stored: dict[str, list[Cell]] = {}
    for row in existing.values():
        stored.setdefault(row["line_key"], []).append(
            Cell(
                row["day"], row["region"], row["tags"], Decimal(row["exact"]), Decimal(row["cost"])
            )
        )
    lines = ledger.lines_by_month(session, customer_id, [period]).get(period, [])
    wanted = _rows(msp_id, customer_id, period, lines, fresh, stored)
    _apply(session, table, existing, wanted, _CELL_KEY)


_SCOPE = ("msp_id", "customer_id", "period")
_CELL_KEY = ("line_key", "day", "region", "tags")
_RESOURCE_KEY = ("resource_id", "vendor", "service_name", "billing_currency", "currency")
_DAY_KEY = ("day", "billing_currency")


def _existing(
    session: Session,
    table: Any,
    msp_id: str,
    customer_id: str,
    period: str,
    key: tuple[str, ...],
) -> dict[tuple[Any, ...], dict[str, Any]]:
    """The stored rows by natural key, amounts as the database holds them (text on SQLite):
    decoding thousands of them only to compare would cost more than the rebuild."""
    columns = [
        type_coerce(c, String).label(c.name) if isinstance(c.type, Money) else c for c in table.c
    ]
    rows = session.execute(
        select(*columns).where(
            table.c.msp_id == msp_id,
            table.c.customer_id == customer_id,
            table.c.period == period,
        )
    )
    names = list(rows.keys())
    found = {}
    for row in rows:
        values = dict(zip(names, row, strict=True))
        found[tuple(values[name] for name in key)] = values
    return found


def _same(stored: Any, value: Any) -> bool:
    if isinstance(value, Decimal) and isinstance(stored, str):
        return stored == format(value, "f")  # what ``Money`` writes on SQLite
    return bool(stored == value)


def _rows(
    msp_id: str,
    customer_id: str,
    period: str,
    lines: list[Charge],
    fresh: dict[str, list[Cell]],
    stored: dict[str, list[Cell]],
) -> dict[CellKey, dict[str, Any]]:
    if not lines:
        return {}
    currency = lines[0].currency  # as the charges API: the lines' own currency
    targets, _ = allocate(
        [line.sell_local for line in lines], currency, [line.line_key for line in lines]
    )
    month = Period.parse(period)
    scale = minor_units(currency)
    out: dict[CellKey, dict[str, Any]] = {}
    for line, target in zip(lines, targets, strict=True):
        cells = fresh.get(line.line_key) or stored.get(line.line_key) or [_single(line, month)]
        cells = sorted(cells, key=lambda c: (c.day, c.region or "", c.tags or ""))
        for cell, amount in zip(cells, split(target, cells, currency), strict=True):
            out[(line.line_key, cell.day, cell.region, cell.tags)] = {
                "msp_id": msp_id,
                "customer_id": customer_id,
                "period": period,
                "line_key": line.line_key,
                "kind": line.kind,
                "day": cell.day,
                "vendor": line.vendor,
                "service": line.service_name or line.description,
                "sub_account_id": line.sub_account_id,
                "region": cell.region,
                "tags": cell.tags,
                "currency": currency,
                "amount_minor": int(amount.scaleb(scale)),
                "exact": cell.exact,
                "billing_currency": line.billing_currency,
                "cost": cell.cost,
            }
    return out


def _single(line: Charge, month: Period) -> Cell:
    """The one cell of a line without usage detail (fee, licence, adjustment)."""
    day = month.first_day
    if line.first_day:
        first = date.fromisoformat(line.first_day)
        if month.first_day <= first <= month.last_day:
            day = first
    return Cell(day, None, None, _stored(line.sell_local), _stored(line.cost))


def split(target: Decimal, cells: Sequence[Cell], currency: str) -> list[Decimal]:
    """``target`` (a rounded amount) over ``cells`` in proportion to their exact amounts
    (else their costs, else evenly), rounded so that they add up exactly to ``target``."""
    weights = [c.exact for c in cells]
    if WIDE.is_zero(_sum(weights)):
        weights = [c.cost for c in cells]
    if WIDE.is_zero(_sum(weights)):
        weights = [Decimal(1)] * len(cells)
    total = _sum(weights)
    shares = [WIDE.divide(WIDE.multiply(target, w), total) for w in weights]
    # The last share takes what the divisions left over, so the shares add up to target.
    shares[-1] = WIDE.subtract(target, _sum(shares[:-1]))
    keys = [f"{c.day.isoformat()}\x1f{c.region or ''}\x1f{c.tags or ''}" for c in cells]
    rounded, rounded_total = allocate(shares, currency, keys)
    assert rounded_total == target, (rounded_total, target)
    return rounded


def _sum(values: Iterable[Decimal]) -> Decimal:
    total = Decimal(0)
    for value in values:
        total = WIDE.add(total, value)
    return total


def _apply(
    session: Session,
    table: Any,
    existing: dict[Any, dict[str, Any]],
    wanted: dict[Any, dict[str, Any]],
    key_names: tuple[str, ...],
) -> None:
    """Delete, update and insert only what differs (a re-rating that changes nothing
    writes nothing)."""
    gone = [row["id"] for key, row in existing.items() if key not in wanted]
    for start in range(0, len(gone), 500):
        session.execute(delete(table).where(table.c.id.in_(gone[start : start + 500])))
    new = []
    # The scope (MSP, customer, period) and the key are equal already.
    compared = [
        n for n in next(iter(wanted.values()), {}) if n not in _SCOPE and n not in key_names
    ]
    for key, values in wanted.items():
        row = existing.get(key)
        if row is None:
            new.append(values)
        elif not all(_same(row[name], values[name]) for name in compared):
            session.execute(update(table).where(table.c.id == row["id"]).values(**values))
    if new:
        session.execute(insert(table), new)


def _write_days(
    session: Session, msp_id: str, customer_id: str, period: str, days: list[dict[str, Any]]
) -> None:
    table = CostUsageDay.__table__
    existing = _existing(session, table, msp_id, customer_id, period, _DAY_KEY)
    wanted = {
        tuple(d[name] for name in _DAY_KEY): {
            "msp_id": msp_id,
            "customer_id": customer_id,
            "period": period,
            **d,
        }
        for d in days
    }
    _apply(session, table, existing, wanted, _DAY_KEY)


def _write_ranking(
    session: Session,
    msp_id: str,
    customer_id: str,
    period: str,
    resources: list[dict[str, Any]],
) -> None:
    table = CostResource.__table__
    existing = _existing(session, table, msp_id, customer_id, period, _RESOURCE_KEY)
    wanted = {
        tuple(r[name] for name in _RESOURCE_KEY): {
            "msp_id": msp_id,
            "customer_id": customer_id,
            "period": period,
            **r,
        }
        for r in resources
    }
    _apply(session, table, existing, wanted, _RESOURCE_KEY)
