"""The pricing run: usage of a period → priced, converted charge lines. No writes.

inputs (current usage slices, links, plans, rules) → rollup to the rating grain → price →
exchange rates → convert → charge lines and fixed fees. Rating writes what this returns,
the plan preview sums it, and the FOCUS export details it: one computation, so the three
cannot disagree.
"""

from __future__ import annotations

import calendar
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any

import polars as pl
from sqlalchemy import select
from sqlalchemy.orm import Session

from billbyte.charges.ledger import FEE, USAGE, WIDE, Charge, line_key
from billbyte.customers import mapping
from billbyte.customers.models import Customer
from billbyte.fx.conversion import RATE_SCHEMA, daily_rates
from billbyte.kit.errors import InvalidInput
from billbyte.partners.models import PartnerAccount
from billbyte.pricing.repository import default_plan_id, rules_for_msp
from billbyte.pricing.rules import Rule
from billbyte.rating import engine
from billbyte.runtime import Runtime
from billbyte.usage.repository import current_slices, scan_slices, slice_store


@dataclass
class Priced:
    """What a pricing run found, per customer."""

    # customer → line key → charge, for every customer with usage whose rates exist
    lines: dict[str, dict[str, Charge]] = field(default_factory=dict)
    usage_lines: dict[str, int] = field(default_factory=dict)  # of customers without errors
    errors: dict[str, str] = field(default_factory=dict)  # customer → missing exchange rate
    missing: dict[tuple[str, str], str] = field(default_factory=dict)  # pair → message
    # The converted rows below the lines (with ``line_key``), when asked for ``detail``.
    detail: pl.DataFrame | None = None


def period_bounds(period: str) -> tuple[date, date]:
    year, month = (int(p) for p in period.split("-"))
    return date(year, month, 1), date(year, month, calendar.monthrange(year, month)[1])


def price_period(
    runtime: Runtime,
    session: Session,
    msp_id: str,
    period: str,
    customers: Sequence[Customer],
    *,
    plan_id: str | None = None,
    detail: Sequence[str] = (),
) -> Priced | None:
    """Price ``customers``' usage of ``period`` (None when the period has no usage).

    ``plan_id`` prices every customer with that plan's rules only (the preview);
    ``detail`` keeps those usage columns below the grain in ``Priced.detail`` (the export:
    pricing is linear, so the detail rows add up to the lines)."""
    inputs = _inputs(runtime, session, msp_id, period, customers, plan_id)
    if inputs is None:
        return None
    priced = Priced()
    if not customers:
        return priced
    grain = engine.rollup(inputs, detail=detail)
    rated = engine.price(grain, inputs.rules)
    pairs = {(b, c) for b, c in rated.select("billing_currency", "currency").unique().iter_rows()}
    pairs |= {
        (s, c) for s, c in rated.select("sell_currency", "currency").unique().iter_rows() if s
    }
    fees = _fees(inputs, grain, period)
    pairs |= {(rule_currency, currency) for _, rule_currency, currency, _ in fees}
    rates, priced.missing = _rates(session, msp_id, pairs, period, _first_day(rated))
    no_rates = _customers_missing_rates(rated, fees, priced.missing)
    converted = engine.convert(rated, rates)
    priced.errors.update(no_rates)
    # A day without a rate (e.g. charged after the period) must not become 0.
    for customer_id, day, billing, sell_ccy, currency in (
        engine.missing_rates(converted).sort("customer_id", "day").iter_rows()
    ):
        priced.errors.setdefault(
            customer_id,
            f"No exchange rate from {billing}/{sell_ccy} to {currency} for charge day {day}.",
        )
    converted = converted.filter(
        ~pl.col("customer_id").is_in(pl.Series(list(no_rates), dtype=pl.String).implode())
    )
    for row in engine.charge_lines(converted).iter_rows(named=True):
        charge = _usage_line(row)
        priced.lines.setdefault(row["customer_id"], {})[charge.line_key] = charge
        if row["customer_id"] not in priced.errors:
            priced.usage_lines[row["customer_id"]] = (
                priced.usage_lines.get(row["customer_id"], 0) + row["usage_lines"]
            )
    _, end = period_bounds(period)
    for customer_id, rule_currency, currency, rule in fees:
        if customer_id not in no_rates:
            charge = _fee_line(rule, rule_currency, currency, rates, end)
            priced.lines.setdefault(customer_id, {})[charge.line_key] = charge
    if detail:
        priced.detail = _with_line_keys(converted)
    return priced


def _inputs(
    runtime: Runtime,
    session: Session,
    msp_id: str,
    period: str,
    customers: Sequence[Customer],
    plan_id: str | None,
) -> engine.Inputs | None:
    lines = scan_slices(slice_store(runtime.settings), current_slices(session, msp_id, period))
    if lines is None:
        return None
    # Every link of the MSP, whichever customers are rated (the engine keeps theirs): with
    # only these customers' links, a project linked to another customer under a billing
    # account linked to one of them would be attributed to the billing account's customer.
    links = mapping.links_frame(session, msp_id)
    default_plan = default_plan_id(session, msp_id)
    frame = pl.DataFrame(
        {
            "customer_id": [c.id for c in customers],
            "plan_id": [plan_id or c.price_plan_id or default_plan for c in customers],
            "currency": [c.currency for c in customers],
        },
        schema={"customer_id": pl.String, "plan_id": pl.String, "currency": pl.String},
    )
    rules: Sequence[Rule] = rules_for_msp(session, msp_id)
    if plan_id is not None:
        rules = [r for r in rules if r.plan_id == plan_id]
    return engine.Inputs(
        lines=lines,
        links=links,
        customers=frame,
        accounts=_accounts(session, msp_id),
        rules=rules,
    )


def _accounts(session: Session, msp_id: str) -> pl.DataFrame:
    rows = session.scalars(select(PartnerAccount).where(PartnerAccount.msp_id == msp_id)).all()
    return pl.DataFrame(
        {
            "partner_account_id": [a.id for a in rows],
            "vendor": [a.vendor for a in rows],
            "list_factor": [_list_factor(a.partner_discount_percent) for a in rows],
        },
        schema={"partner_account_id": pl.String, "vendor": pl.String, "list_factor": engine.FACTOR},
    )


def _list_factor(discount_percent: Decimal) -> Decimal:
    if discount_percent >= 100:
        return Decimal(1)
    return (Decimal(1) / (1 - discount_percent / 100)).quantize(Decimal("1e-18"))


def _rates(
    session: Session,
    msp_id: str,
    pairs: set[tuple[str, str]],
    period: str,
    first_day: date | None = None,
) -> tuple[pl.DataFrame, dict[tuple[str, str], str]]:
    """Daily rates for the period, reaching back to ``first_day`` when usage of the period
    was charged earlier (a correction for a previous month is converted at its own day's
    rate, not dropped for want of one)."""
    start, end = period_bounds(period)
    if first_day is not None and first_day < start:
        start = first_day
    frames, missing = [], {}
    for pair in sorted(pairs):
        try:
            frames.append(daily_rates(session, msp_id, {pair}, start, end, period_end=end))
        except InvalidInput as exc:
            missing[pair] = exc.detail
    if not frames:
        return pl.DataFrame(schema=RATE_SCHEMA), missing
    return pl.concat(frames), missing


def _first_day(priced: pl.DataFrame) -> date | None:
    first = priced.select(pl.col("day").min()).item() if not priced.is_empty() else None
    return first if isinstance(first, date) else None


# customer, the rule's currency (validated for fixed fees), the customer's currency, rule
_Fee = tuple[str, Any, str, Rule]


def _fees(inputs: engine.Inputs, grain: pl.DataFrame, period: str) -> list[_Fee]:
    _, end = period_bounds(period)
    currencies = dict(inputs.customers.select("customer_id", "currency").iter_rows())
    return [
        (customer_id, rule.currency, currencies[customer_id], rule)
        for rule in engine.fee_rules(inputs.rules)
        for customer_id in engine.customers_in_scope(grain, rule, end)
    ]


def _customers_missing_rates(
    priced: pl.DataFrame, fees: list[_Fee], missing: dict[tuple[str, str], str]
) -> dict[str, str]:
    bad: dict[str, str] = {}
    if not missing:
        return bad
    for customer_id, billing, sell_ccy, currency in (
        priced.select("customer_id", "billing_currency", "sell_currency", "currency")
        .unique()
        .iter_rows()
    ):
        for pair in ((billing, currency), (sell_ccy, currency)):
            if pair in missing:
                bad[customer_id] = missing[pair]
    for customer_id, rule_currency, currency, _ in fees:
        if (rule_currency, currency) in missing:
            bad[customer_id] = missing[(rule_currency, currency)]
    return bad


def _usage_line(row: dict[str, Any]) -> Charge:
    rates = sorted({(r["rate_date"], r["rate"]) for r in row["rates"] if r["rate"] is not None})
    description = " / ".join(
        p
        for p in (row["service_name"] or row["service_category"] or "Usage", row["charge_category"])
        if p
    )
    return Charge(
        line_key=line_key([row[name] for name in engine.LINE_GRAIN]),
        kind=USAGE,
        vendor=row["vendor"],
        partner_account_id=row["partner_account_id"],
        sub_account_id=row["sub_account_id"],
        service_category=row["service_category"],
        service_name=row["service_name"],
        charge_category=row["charge_category"],
        pricing_unit=row["pricing_unit"],
        description=description,
        quantity=row["quantity"] or Decimal(0),
        billing_currency=row["billing_currency"],
        cost=row["cost"],
        list_cost=row["list"],
        sell=row["sell"] or Decimal(0),
        currency=row["currency"],
        cost_local=row["cost_local"],
        list_local=row["list_local"],
        sell_local=row["sell_local"],
        fx_rates=tuple({"date": d, "rate": r} for d, r in rates),
        rule_ids=tuple(row["rule_ids"]),
        first_day=row["first_day"].isoformat() if row["first_day"] else None,
        last_day=row["last_day"].isoformat() if row["last_day"] else None,
    )


def _fee_line(
    rule: Rule, rule_currency: str, currency: str, rates: pl.DataFrame, end: date
) -> Charge:
    rate_row = rates.filter(
        (pl.col("day") == end)
        & (pl.col("from_currency") == rule_currency)
        & (pl.col("to_currency") == currency)
    )
    rate, rate_date = rate_row.row(0)[3], rate_row.row(0)[4]
    amount = rule.value or Decimal(0)
    local = WIDE.multiply(amount, rate).quantize(Decimal("1e-24"), context=WIDE)
    return Charge(
        line_key=line_key(["fee", rule.id]),
        kind=FEE,
        vendor=rule.scope.get("vendor", "all"),
        partner_account_id=rule.scope.get("partner_account_id"),
        sub_account_id=None,
        service_category=rule.scope.get("service_category"),
        service_name=rule.scope.get("service_name"),
        charge_category="Purchase",
        pricing_unit=None,
        description=f"Fee: {rule.id}",
        quantity=Decimal(1),
        billing_currency=rule_currency,
        cost=Decimal(0),
        list_cost=Decimal(0),
        sell=amount,
        currency=currency,
        cost_local=Decimal(0),
        list_local=Decimal(0),
        sell_local=local,
        fx_rates=({"date": rate_date.isoformat(), "rate": str(rate)},),
        rule_ids=(rule.id,),
        first_day=None,
        last_day=end.isoformat(),
    )


def _with_line_keys(converted: pl.DataFrame) -> pl.DataFrame:
    keys = converted.select(engine.LINE_GRAIN).unique()
    keys = keys.with_columns(
        pl.Series("line_key", [line_key(row) for row in keys.iter_rows()], dtype=pl.String)
    )
    return converted.join(keys, on=engine.LINE_GRAIN, how="left", nulls_equal=True)
