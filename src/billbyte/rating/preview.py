"""What a plan would have charged for a past period: the engine without the writes."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import polars as pl
from sqlalchemy import select
from sqlalchemy.orm import Session

from billbyte.auth.subject import AuthSubject
from billbyte.customers import service as customers
from billbyte.customers.models import Customer
from billbyte.kit.money import round_money
from billbyte.pricing import service as pricing
from billbyte.rating import engine
from billbyte.rating.service import _add_fees, _fee_lines, _first_day, _inputs, _rates
from billbyte.runtime import Runtime
from billbyte.usage.service import validate_period


def preview(
    runtime: Runtime,
    session: Session,
    subject: AuthSubject,
    plan_id: str,
    period: str,
    customer_id: str | None,
) -> dict[str, Any]:
    validate_period(period)
    plan = pricing.get_plan(session, subject, plan_id)
    if customer_id:
        selected = [customers.get(session, subject, customer_id)]
    else:
        selected = list(
            session.scalars(
                select(Customer).where(Customer.msp_id == subject.msp_id).order_by(Customer.id)
            )
        )
    result: dict[str, Any] = {
        "object": "price_plan_preview",
        "plan_id": plan.id,
        "period": period,
        "customers": [],
    }
    inputs = _inputs(runtime, session, subject.msp_id, period, selected)
    if inputs is None or not selected:
        return result
    inputs = engine.Inputs(
        lines=inputs.lines,
        links=inputs.links,
        accounts=inputs.accounts,
        customers=inputs.customers.with_columns(pl.lit(plan.id).alias("plan_id")),
        rules=[r for r in inputs.rules if r.plan_id == plan.id],
    )
    grain = engine.rollup(inputs)
    priced = engine.price(grain, inputs.rules)
    fees = _fee_lines(inputs, grain, period)  # the plan's fixed fees are part of its effect
    pairs = {
        (b, c) for b, c in priced.select("billing_currency", "currency").unique().iter_rows()
    } | {(s, c) for s, c in priced.select("sell_currency", "currency").unique().iter_rows() if s}
    pairs |= {(f["billing_currency"], f["currency"]) for f in fees}
    rates, missing = _rates(session, subject.msp_id, pairs, period, _first_day(priced))
    if missing:
        result["errors"] = sorted(set(missing.values()))
        return result
    converted = engine.convert(priced, rates)
    fee_lines: dict[str, dict[str, dict[str, Any]]] = {f["customer_id"]: {} for f in fees}
    _add_fees(fees, rates, {}, fee_lines, period)
    totals = (
        converted.group_by("customer_id", "currency")
        .agg(pl.col("cost_local").sum(), pl.col("sell_local").sum())
        .sort("customer_id")
    )
    for cid, currency, cost, sell in totals.iter_rows():
        cost, sell = cost or Decimal(0), sell or Decimal(0)
        sell += sum((f["sell_local"] for f in fee_lines.get(cid, {}).values()), Decimal(0))
        result["customers"].append(
            {
                "customer_id": cid,
                "currency": currency,
                "cost": format(round_money(cost, currency), "f"),
                "amount": format(round_money(sell, currency), "f"),
                "margin": format(round_money(sell - cost, currency), "f"),
            }
        )
    return result
