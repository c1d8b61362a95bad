"""Reads of budgets and their alerts, for this feature's service and for the pages.

``status_for`` and ``notices_for`` are what the portal overview shows; both are scoped to the
MSP and the customer (another MSP's customer is ``NotFound``) and never write.

Spend is the month's charges exactly as ``GET /v1/customers/{id}/charges`` totals them: the
exact sum of the lines' ``sell_local``, rounded once to the currency's minor unit (half-even,
``kit.money``). A budget scoped to a vendor counts only that vendor's lines, rounded the
same way.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.orm import Session

from billbyte.budgets.models import Budget, BudgetAlert
from billbyte.charges.ledger import Charge, exact_sum, lines_by_month
from billbyte.customers import repository as customers
from billbyte.customers.models import Customer
from billbyte.kit.errors import NotFound
from billbyte.kit.money import round_money
from billbyte.kit.repository import get_owned

OK, WARNING, OVER, CURRENCY_DIFFERS = "ok", "warning", "over", "currency_differs"


@dataclass(frozen=True)
class BudgetStatus:
    """A budget's standing in a period. ``spend`` and ``percent`` are ``None`` when the
    period's charges are in another currency than the budget (``state`` says so)."""

    budget_id: str
    name: str | None
    vendor: str | None
    period: str
    amount: Decimal
    currency: str
    thresholds: tuple[int, ...]
    spend: Decimal | None
    percent: Decimal | None  # spend / amount x 100, two decimals (display only)
    alerted: tuple[int, ...]  # thresholds whose alert fired in this period
    state: (
        str  # "ok" | "warning" (a threshold alerted) | "over" (spend >= amount) | CURRENCY_DIFFERS
    )


@dataclass(frozen=True)
class BudgetNotice:
    """One alert to show in the portal: a budget's threshold reached in the period."""

    alert_id: str
    budget_id: str
    budget_name: str | None
    period: str
    threshold: int
    spend: Decimal
    amount: Decimal
    currency: str
    occurred_at: datetime


def get_budget(
    session: Session, msp_id: str, budget_id: str, customer_id: str | None = None
) -> Budget:
    """The MSP's budget (and, when ``customer_id`` is given, that customer's), or
    ``NotFound`` (``budget_not_found``)."""
    budget = get_owned(session, Budget, msp_id, budget_id, what="budget", code="budget_not_found")
    if customer_id is not None and budget.customer_id != customer_id:
        # Another customer's budget looks exactly like a missing one.
        raise NotFound(f"No budget {budget_id!r}.", code="budget_not_found")
    return budget


def budgets_of(session: Session, msp_id: str, customer_id: str) -> list[Budget]:
    return list(
        session.scalars(
            select(Budget)
            .where(Budget.msp_id == msp_id, Budget.customer_id == customer_id)
            .order_by(Budget.created_at, Budget.id)
        )
    )


def alerts_of(
    session: Session, msp_id: str, customer_id: str, period: str | None = None
) -> list[BudgetAlert]:
    query = select(BudgetAlert).where(
        BudgetAlert.msp_id == msp_id, BudgetAlert.customer_id == customer_id
    )
    if period is not None:
        query = query.where(BudgetAlert.period == period)
    return list(session.scalars(query.order_by(BudgetAlert.occurred_at, BudgetAlert.id)))


def period_lines(session: Session, customer_id: str, period: str) -> list[Charge]:
    return lines_by_month(session, customer_id, [period]).get(period, [])


def spend_of(lines: Sequence[Charge], customer: Customer, budget: Budget) -> Decimal | None:
    """The budget's month-to-date spend in ``lines`` (one customer's period), or ``None``
    when those charges are not in the budget's currency."""
    # As the charges API: the lines' own currency, the customer's when there are none.
    currency = lines[0].currency if lines else customer.currency
    if currency != budget.currency:
        return None
    counted = [li.sell_local for li in lines if budget.vendor is None or li.vendor == budget.vendor]
    return round_money(exact_sum(counted), currency)


def reached(spend: Decimal, amount: Decimal, threshold: int) -> bool:
    """Has ``spend`` reached ``threshold`` percent of ``amount``? Exact: no division."""
    return spend * 100 >= amount * threshold


def status_for(session: Session, msp_id: str, customer_id: str, period: str) -> list[BudgetStatus]:
    """Every budget of the customer with its spend in ``period`` and the thresholds alerted
    there, oldest budget first. Returns ``list[BudgetStatus]`` (empty without budgets)."""
    customer = customers.get_customer(session, msp_id, customer_id)
    budgets = budgets_of(session, msp_id, customer.id)
    if not budgets:
        return []
    lines = period_lines(session, customer.id, period)
    alerted: dict[str, list[int]] = {}
    for alert in alerts_of(session, msp_id, customer.id, period):
        alerted.setdefault(alert.budget_id, []).append(alert.threshold)
    out = []
    for budget in budgets:
        spend = spend_of(lines, customer, budget)
        fired = tuple(sorted(alerted.get(budget.id, [])))
        percent = None
        if spend is None:
            state = CURRENCY_DIFFERS
        else:
            percent = (spend * 100 / budget.amount).quantize(Decimal("0.01"))
            state = OVER if spend >= budget.amount else WARNING if fired else OK
        out.append(
            BudgetStatus(
                budget_id=budget.id,
                name=budget.name,
                vendor=budget.vendor,
                period=period,
                amount=budget.amount,
                currency=budget.currency,
                thresholds=tuple(budget.thresholds),
                spend=spend,
                percent=percent,
                alerted=fired,
                state=state,
            )
        )
    return out


def notices_for(session: Session, msp_id: str, customer_id: str, period: str) -> list[BudgetNotice]:
    """The budget alerts of the customer in ``period``, newest first, as
    ``list[BudgetNotice]`` (empty when nothing was reached)."""
    customer = customers.get_customer(session, msp_id, customer_id)
    names = {b.id: b.name for b in budgets_of(session, msp_id, customer.id)}
    return [
        BudgetNotice(
            alert_id=alert.id,
            budget_id=alert.budget_id,
            budget_name=names.get(alert.budget_id),
            period=alert.period,
            threshold=alert.threshold,
            spend=alert.spend,
            amount=alert.amount,
            currency=alert.currency,
            occurred_at=alert.occurred_at,
        )
        for alert in reversed(alerts_of(session, msp_id, customer.id, period))
    ]
