"""What a plan would have charged for a past period: the pricing run without the writes."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from billbyte.charges.ledger import WIDE, exact_sum
from billbyte.customers import repository as customers
from billbyte.customers.models import Customer
from billbyte.kit.money import format_amount, round_money
from billbyte.kit.periods import validate_period
from billbyte.pricing import repository as pricing
from billbyte.rating import compute
from billbyte.runtime import Runtime
from billbyte.tenancy.auth import AuthSubject


def preview(
    runtime: Runtime,
    session: Session,
    subject: AuthSubject,
    plan_id: str,
    period: str,
    customer_id: str | None,
) -> dict[str, Any]:
    validate_period(period)
    plan = pricing.get_plan(session, subject.msp_id, plan_id)
    if customer_id:
        selected = [customers.get_customer(session, subject.msp_id, customer_id)]
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
    # The plan's fixed fees are part of its effect: they are among the priced lines.
    priced = compute.price_period(
        runtime, session, subject.msp_id, period, selected, plan_id=plan.id
    )
    if priced is None:
        return result
    if priced.missing:
        result["errors"] = sorted(set(priced.missing.values()))
        return result
    for cid in sorted(priced.lines):
        lines = priced.lines[cid].values()
        usage = [li for li in lines if li.kind == "usage"]
        if not usage:
            continue
        currency = usage[0].currency
        cost = exact_sum(li.cost_local or Decimal(0) for li in usage)
        sell = exact_sum(li.sell_local or Decimal(0) for li in lines)
        result["customers"].append(
            {
                "customer_id": cid,
                "currency": currency,
                "cost": format_amount(round_money(cost, currency)),
                "amount": format_amount(round_money(sell, currency)),
                "margin": format_amount(round_money(WIDE.subtract(sell, cost), currency)),
            }
        )
    return result
