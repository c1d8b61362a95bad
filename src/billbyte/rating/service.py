"""Rating of an MSP's open periods: priced lines written to the charge ledger.

One rating is one transaction per (MSP, period), opened by ``rating.tasks``: the MSP's
ledger lock is taken first (``charges.ledger.lock_msp``), then the period is priced
(``rating.compute``), the open customers' lines are written with their change-feed entries
and the rating states are recorded. What crosses features (licence lines, late-data
adjustments, prepaid draws, credit control) is done by ``rating.tasks`` in the same unit of
work, with what ``price`` and ``rate_period`` return.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import polars as pl
from sqlalchemy import select
from sqlalchemy.orm import Session

from billbyte.charges import ledger
from billbyte.charges.ledger import Charge
from billbyte.customers.models import Customer
from billbyte.rating import compute
from billbyte.runtime import Runtime
from billbyte.usage.repository import billed_periods

# Usage columns kept below the rating grain in ``PeriodRun.detail``, for the cost rollups
# (``analytics.rollups``): the grain already has the day and the region. (Not resources:
# priced per resource-day, the rows would multiply by the number of resources.)
ROLLUP_DETAIL = ("tags",)


@dataclass
class PeriodRun:
    """A priced period of an MSP, before it is written."""

    msp_id: str
    period: str
    customers: list[Customer]  # every customer of the MSP, closed ones too
    closed: set[str]  # customers whose period is invoiced: priced, never written
    has_usage: bool
    lines: dict[str, dict[str, Charge]]  # customer → line key → charge
    usage_lines: dict[str, int]
    errors: dict[str, str]  # customer → why the period cannot be charged
    # The priced, converted rows below the lines (``ROLLUP_DETAIL``, with ``line_key``).
    detail: pl.DataFrame | None = None

    @property
    def open_customers(self) -> list[Customer]:
        return [c for c in self.customers if c.id not in self.closed]

    def add(self, lines: Mapping[str, Mapping[str, Charge]], errors: Mapping[str, str]) -> None:
        """More lines of the period priced elsewhere (licences); the first error stays."""
        for customer_id, by_key in lines.items():
            self.lines.setdefault(customer_id, {}).update(by_key)
        for customer_id, message in errors.items():
            self.errors.setdefault(customer_id, message)


@dataclass
class RatingResult:
    period: str
    customers_rated: int = 0
    lines: int = 0
    changes: int = 0
    errors: dict[str, str] = field(default_factory=dict)


def open_periods(session: Session, msp_id: str, subscribed: set[str]) -> list[str]:
    """Periods with usage of this MSP, or with licence subscriptions (``subscribed``, from
    catalog); closed customer-periods are skipped per customer."""
    return sorted(billed_periods(session, msp_id) | subscribed)


def price(runtime: Runtime, session: Session, msp_id: str, period: str) -> PeriodRun:
    """Lock the MSP's ledger and price ``period`` for every customer. Closed customers are
    priced too, in memory: late data becomes adjustments."""
    ledger.lock_msp(session, msp_id)
    closed = ledger.closed_customers(session, msp_id, period)
    customers = list(
        session.scalars(select(Customer).where(Customer.msp_id == msp_id).order_by(Customer.id))
    )
    priced = compute.price_period(runtime, session, msp_id, period, customers, detail=ROLLUP_DETAIL)
    return PeriodRun(
        msp_id=msp_id,
        period=period,
        customers=customers,
        closed=closed,
        has_usage=priced is not None,
        lines=priced.lines if priced is not None else {},
        usage_lines=priced.usage_lines if priced is not None else {},
        errors=dict(priced.errors) if priced is not None else {},
        detail=priced.detail if priced is not None else None,
    )


def rate_period(session: Session, run: PeriodRun) -> RatingResult:
    """Write the open customers' lines of ``run`` (those without errors), all in one
    ``ledger.write_periods``, and their rating states. Returns what changed."""
    result = RatingResult(period=run.period, errors=dict(run.errors))
    rated = [c for c in run.open_customers if c.id not in run.errors]
    changes = ledger.write_periods(
        session, run.msp_id, run.period, {c.id: run.lines.get(c.id, {}) for c in rated}
    )
    for customer in run.open_customers:
        usage_lines = run.usage_lines.get(customer.id, 0)
        if customer.id in run.errors:
            ledger.set_rating_state(
                session,
                run.msp_id,
                customer.id,
                run.period,
                "error",
                run.errors[customer.id],
                usage_lines,
            )
            continue
        result.changes += changes[customer.id]
        ledger.set_rating_state(
            session, run.msp_id, customer.id, run.period, "ok", None, usage_lines
        )
        result.customers_rated += 1
        result.lines += len(run.lines.get(customer.id, {}))
    return result
