"""The rating engine: pure polars over usage lines, no database, no Python loop per line.

Usage lines are first summed to the rating grain — every dimension a rule can select on,
plus the customer and the day. Markups, discounts and fixed unit prices are linear, so
pricing the sum equals summing the priced lines; tiered prices depend on the month's total
anyway. Arithmetic is Decimal(38, 24) with half-even rounding of each product (polars'
decimal semantics); rounding to the currency's minor unit happens only when charges are
read.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

import polars as pl

from billbyte.customers.mapping import map_to_customers
from billbyte.pricing.rules import (
    PASS_THROUGH_CATEGORIES,
    Adjustment,
    Basis,
    Rule,
    ordered,
    tiered_sell,
)
from billbyte.usage.canonical import MONEY

FACTOR = pl.Decimal(38, 18)

GRAIN = [
    "customer_id",
    "plan_id",
    "currency",
    "partner_account_id",
    "vendor",
    "sub_account_id",
    "service_category",
    "service_name",
    "sku_id",
    "region_id",
    "charge_category",
    "pricing_unit",
    "billing_currency",
    "day",
]
LINE_GRAIN = [
    "customer_id",
    "currency",
    "partner_account_id",
    "vendor",
    "sub_account_id",
    "service_category",
    "service_name",
    "charge_category",
    "pricing_unit",
    "billing_currency",
]


@dataclass(frozen=True)
class Inputs:
    lines: pl.LazyFrame  # canonical usage columns + partner_account_id
    links: pl.DataFrame  # partner_account_id, account_key, customer_id
    customers: pl.DataFrame  # customer_id, plan_id, currency
    accounts: pl.DataFrame  # partner_account_id, vendor, list_factor (Decimal)
    rules: Sequence[Rule]


def rollup(inputs: Inputs, detail: Sequence[str] = ()) -> pl.DataFrame:
    """Usage lines mapped to customers and summed to the rating grain (plus the ``detail``
    columns of the usage lines, for exports finer than the grain: pricing is linear, so
    detail rows priced and converted add up to the grain's charge lines)."""
    mapped = (
        map_to_customers(inputs.lines, inputs.links)
        .join(inputs.customers.lazy(), on="customer_id", how="inner")
        .join(inputs.accounts.lazy(), on="partner_account_id", how="inner")
        .with_columns(
            pl.col("charge_period_start").dt.date().alias("day"),
            # Without a list price in the vendor data, list is estimated from the MSP's
            # partner discount: list = cost / (1 - discount).
            pl.coalesce(
                [pl.col("list_cost"), (pl.col("billed_cost") * pl.col("list_factor")).cast(MONEY)]
            ).alias("list_cost"),
            pl.coalesce([pl.col("pricing_quantity"), pl.col("consumed_quantity")]).alias(
                "quantity"
            ),
            pl.coalesce([pl.col("pricing_unit"), pl.col("consumed_unit")]).alias("pricing_unit"),
        )
    )
    return (
        mapped.group_by([*GRAIN, *detail])
        .agg(
            pl.col("billed_cost").sum().alias("cost"),
            pl.col("list_cost").sum().alias("list"),
            pl.col("quantity").sum().alias("quantity"),
            pl.len().alias("usage_lines"),
        )
        .collect()
    )


def _matches(rule: Rule) -> pl.Expr:
    condition = (
        (pl.col("customer_id") == rule.customer_id)
        if rule.customer_id
        else (pl.col("plan_id") == rule.plan_id)
    )
    for name, value in rule.scope.items():
        condition = condition & (pl.col(name) == value)
    if "charge_category" not in rule.scope:
        condition = condition & ~pl.col("charge_category").is_in(
            pl.Series(PASS_THROUGH_CATEGORIES).implode()
        )
    if rule.effective_from:
        condition = condition & (pl.col("day") >= rule.effective_from)
    if rule.effective_to:
        condition = condition & (pl.col("day") <= rule.effective_to)
    return condition.fill_null(False)


def price(grain: pl.DataFrame, rules: Sequence[Rule]) -> pl.DataFrame:
    """Adds rule_id and sell (billing currency; or the rule's currency for fixed prices)."""
    pricing = [r for r in ordered(rules) if r.adjustment != Adjustment.FIXED_FEE]
    if grain.is_empty():
        return grain.with_columns(
            pl.lit(None, dtype=pl.String).alias("rule_id"),
            pl.lit(None, dtype=MONEY).alias("sell"),
            pl.lit(None, dtype=pl.String).alias("sell_currency"),
        )
    chosen: pl.Expr = pl.lit(None, dtype=pl.String)
    for rule in reversed(pricing):  # built inside-out so the first rule wins
        chosen = pl.when(_matches(rule)).then(pl.lit(rule.id)).otherwise(chosen)
    frame = grain.with_columns(chosen.alias("rule_id"))

    params = _rule_params(frame, pricing)
    frame = frame.join(params, on=["rule_id", "customer_id"], how="left")
    base = (
        pl.when(pl.col("basis") == Basis.LIST.value).then(pl.col("list")).otherwise(pl.col("cost"))
    )
    sell = (
        pl.when(pl.col("rule_id").is_null())
        .then(pl.col("cost"))
        .when(pl.col("adjustment") == Adjustment.FIXED_UNIT_PRICE.value)
        .then((pl.col("quantity") * pl.col("factor")).cast(MONEY))
        .otherwise((base * pl.col("factor")).cast(MONEY))
    )
    return frame.with_columns(
        sell.alias("sell"),
        pl.when(pl.col("adjustment") == Adjustment.FIXED_UNIT_PRICE.value)
        .then(pl.col("rule_currency"))
        .otherwise(pl.col("billing_currency"))
        .alias("sell_currency"),
    ).drop("basis", "adjustment", "factor", "rule_currency")


def _rule_params(frame: pl.DataFrame, rules: Sequence[Rule]) -> pl.DataFrame:
    """One factor per (rule, customer): fixed for most rules, from the month's total for
    tiered rules (computed exactly in Decimal on a handful of totals, not per line)."""
    rows: list[dict[str, object]] = []
    used = frame.filter(pl.col("rule_id").is_not_null()).select("rule_id", "customer_id").unique()
    by_id = {r.id: r for r in rules}
    tiered_totals: dict[tuple[str, str], Decimal] = {}
    tiered_ids = [r.id for r in rules if r.adjustment == Adjustment.TIERED_PERCENT]
    if tiered_ids:
        totals = (
            frame.filter(pl.col("rule_id").is_in(pl.Series(tiered_ids).implode()))
            .with_columns(
                pl.when(
                    pl.col("rule_id").is_in(
                        pl.Series([r for r in tiered_ids if by_id[r].basis == Basis.LIST]).implode()
                    )
                )
                .then(pl.col("list"))
                .otherwise(pl.col("cost"))
                .alias("__base")
            )
            .group_by("rule_id", "customer_id")
            .agg(pl.col("__base").sum())
        )
        for rule_id, customer_id, total in totals.iter_rows():
            tiered_totals[(rule_id, customer_id)] = total or Decimal(0)
    for rule_id, customer_id in used.iter_rows():
        rule = by_id[rule_id]
        rows.append(
            {
                "rule_id": rule_id,
                "customer_id": customer_id,
                "basis": rule.basis.value,
                "adjustment": rule.adjustment.value,
                "factor": _factor(rule, tiered_totals.get((rule_id, customer_id))),
                "rule_currency": rule.currency,
            }
        )
    schema: dict[str, Any] = {
        "rule_id": pl.String,
        "customer_id": pl.String,
        "basis": pl.String,
        "adjustment": pl.String,
        "factor": FACTOR,
        "rule_currency": pl.String,
    }
    return pl.DataFrame(rows, schema=schema)


def _factor(rule: Rule, total: Decimal | None) -> Decimal:
    value = rule.value or Decimal(0)
    if rule.adjustment == Adjustment.MARKUP_PERCENT:
        return 1 + value / 100
    if rule.adjustment == Adjustment.DISCOUNT_PERCENT:
        return 1 - value / 100
    if rule.adjustment == Adjustment.FIXED_UNIT_PRICE:
        return value
    if rule.adjustment == Adjustment.TIERED_PERCENT:
        if not total:
            return 1 + rule.tiers[0].percent / 100
        return (tiered_sell(total, rule.tiers) / total).quantize(Decimal("1e-18"))
    raise ValueError(f"rule {rule.id}: {rule.adjustment} does not price lines")


def fee_rules(rules: Sequence[Rule]) -> list[Rule]:
    return [r for r in ordered(rules) if r.adjustment == Adjustment.FIXED_FEE]


def customers_in_scope(grain: pl.DataFrame, rule: Rule, period_end: date) -> list[str]:
    """Customers owing a fixed fee: those with usage in the rule's scope this period."""
    if grain.is_empty():
        return []
    condition = _matches(rule)
    if rule.effective_from and rule.effective_from > period_end:
        return []
    return sorted(grain.filter(condition)["customer_id"].unique().to_list())


def convert(priced: pl.DataFrame, rates: pl.DataFrame) -> pl.DataFrame:
    """Adds cost_local, list_local, sell_local and the rate used, per grain row.

    ``rates`` has day, from_currency, to_currency, rate, rate_date (see fx.conversion.daily_rates).
    """
    to_local = rates.rename(
        {
            "from_currency": "billing_currency",
            "to_currency": "currency",
            "rate": "rate",
            "rate_date": "rate_date",
        }
    )
    sell_rates = rates.rename(
        {
            "from_currency": "sell_currency",
            "to_currency": "currency",
            "rate": "sell_rate",
            "rate_date": "sell_rate_date",
        }
    )
    frame = priced.join(to_local, on=["day", "billing_currency", "currency"], how="left").join(
        sell_rates, on=["day", "sell_currency", "currency"], how="left"
    )
    return frame.with_columns(
        (pl.col("cost") * pl.col("rate")).cast(MONEY).alias("cost_local"),
        (pl.col("list") * pl.col("rate")).cast(MONEY).alias("list_local"),
        (pl.col("sell") * pl.col("sell_rate")).cast(MONEY).alias("sell_local"),
    )


def missing_rates(converted: pl.DataFrame) -> pl.DataFrame:
    return (
        converted.filter(pl.col("rate").is_null() | pl.col("sell_rate").is_null())
        .select("customer_id", "day", "billing_currency", "sell_currency", "currency")
        .unique()
    )


def charge_lines(converted: pl.DataFrame) -> pl.DataFrame:
    """The open invoice lines: grouped by vendor, account/subscription and service."""
    return (
        converted.group_by(LINE_GRAIN)
        .agg(
            pl.col("quantity").sum(),
            pl.col("cost").sum(),
            pl.col("list").sum(),
            pl.col("sell")
            .filter(pl.col("sell_currency") == pl.col("billing_currency"))
            .sum()
            .alias("sell"),
            pl.col("cost_local").sum(),
            pl.col("list_local").sum(),
            pl.col("sell_local").sum(),
            pl.col("rule_id").drop_nulls().unique().sort().alias("rule_ids"),
            pl.struct(pl.col("rate_date").cast(pl.String), pl.col("rate").cast(pl.String))
            .unique()
            .alias("rates"),
            pl.col("day").min().alias("first_day"),
            pl.col("day").max().alias("last_day"),
            pl.col("usage_lines").sum(),
        )
        .sort(LINE_GRAIN, nulls_last=True)
    )
