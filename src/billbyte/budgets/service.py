"""Budgets: create, change and delete them (the MSP by API key, a customer's portal user for
its own customer), and evaluate them after each rating, in the rating's transaction.

**When an alert fires.** A budget's threshold *t* is reached in a period when the period's
month-to-date spend (``repository.spend_of``: the charges total as the charges API reports
it, or one vendor's part of it) is at least *t* % of the budget's amount, compared exactly
(``spend x 100 >= amount x t``). Each (budget, period, threshold) fires **once**: the alert
row is unique, so re-rating, a retried job or a second evaluation finds it and does nothing.
A threshold that spend falls back under (a credit, a restatement, late data) keeps its alert
and does **not** fire again in that period, even if spend rises past it once more; the next
month starts afresh. Changing a budget's amount or thresholds keeps the period's alerts: a
threshold that already fired does not fire again, a new or now-reached one fires at the next
evaluation. Charges in another currency than the budget's (the customer's currency changed)
are not compared: such a budget raises nothing until it is recreated.

An alert is a ``budget_alerts`` row (the portal's notice, ``repository.notices_for``) and a
``budget.threshold_crossed`` webhook event in the outbox, both in the caller's transaction.
Functions taking a ``Session`` never commit.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from itertools import pairwise
from typing import Any

from sqlalchemy import delete as sql_delete
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from billbyte.audit.service import record
from billbyte.auth.subject import AuthSubject
from billbyte.auth.web_sessions import WebSubject
from billbyte.budgets import repository
from billbyte.budgets.models import Budget, BudgetAlert
from billbyte.budgets.schemas import MAX_THRESHOLDS, BudgetAlertOut, BudgetOut
from billbyte.customers import repository as customers
from billbyte.customers.models import Customer
from billbyte.kit.errors import Conflict, InvalidInput
from billbyte.kit.money import format_amount, quantum, round_money
from billbyte.kit.periods import validate_period
from billbyte.kit.vendors import Vendor
from billbyte.webhooks import service as webhooks

EVENT = "budget.threshold_crossed"
MAX_BUDGETS = 20  # per customer
MAX_AMOUNT = Decimal("1e15")  # far above any month; well inside NUMERIC(38, 18)
FIELDS = ("name", "amount", "thresholds", "vendor")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


@dataclass(frozen=True)
class BudgetFields:
    """What a budget is made of, as a caller asks for it (checked by ``check``)."""

    amount: Decimal
    thresholds: list[int]
    name: str | None = None
    vendor: str | None = None


def check(fields: BudgetFields, currency: str) -> BudgetFields:
    """The one set of budget rules (the API and the portal forms both come here): a positive
    amount at most the currency's minor unit, 1..20 whole-number thresholds between 1 and
    1000 in strictly ascending order, a known vendor or none. ``InvalidInput`` otherwise."""
    amount = fields.amount
    if not isinstance(amount, Decimal) or not amount.is_finite() or amount <= 0:
        raise InvalidInput("amount must be a positive decimal number.", field="amount")
    if amount >= MAX_AMOUNT:
        raise InvalidInput(f"amount must be below {MAX_AMOUNT:f}.", field="amount")
    if amount != round_money(amount, currency):
        raise InvalidInput(
            f"amount has more decimals than {currency} allows (minor unit {quantum(currency)}).",
            field="amount",
        )
    thresholds = list(fields.thresholds)
    if not 1 <= len(thresholds) <= MAX_THRESHOLDS:
        raise InvalidInput(f"Give between 1 and {MAX_THRESHOLDS} thresholds.", field="thresholds")
    if any(type(t) is not int or not 1 <= t <= 1000 for t in thresholds):
        raise InvalidInput(
            "thresholds are whole-number percentages between 1 and 1000.", field="thresholds"
        )
    if any(a >= b for a, b in pairwise(thresholds)):
        raise InvalidInput(
            "thresholds must be unique and in ascending order (e.g. 50, 80, 100).",
            field="thresholds",
        )
    name = (fields.name or "").strip() or None
    if name is not None and len(name) > 200:
        raise InvalidInput("name has at most 200 characters.", field="name")
    if name is not None and _CONTROL.search(name):  # PostgreSQL refuses NUL in text
        raise InvalidInput("name may not contain control characters.", field="name")
    vendor = fields.vendor or None
    if vendor is not None and vendor not in {v.value for v in Vendor}:
        raise InvalidInput(
            f"vendor must be one of {', '.join(v.value for v in Vendor)}, or none.",
            field="vendor",
        )
    return BudgetFields(amount=amount, thresholds=thresholds, name=name, vendor=vendor)


def _money(amount: Decimal, currency: str) -> str:
    """At the currency's minor unit, whatever the backend read back (``1000`` → ``1000.00``)."""
    return format_amount(round_money(amount, currency))


def budget_out(budget: Budget) -> BudgetOut:
    return BudgetOut(
        id=budget.id,
        customer_id=budget.customer_id,
        name=budget.name,
        amount=_money(budget.amount, budget.currency),
        currency=budget.currency,
        vendor=budget.vendor,
        thresholds=list(budget.thresholds),
        created_at=budget.created_at,
        updated_at=budget.updated_at,
    )


def alert_out(alert: BudgetAlert) -> BudgetAlertOut:
    return BudgetAlertOut(
        id=alert.id,
        customer_id=alert.customer_id,
        budget_id=alert.budget_id,
        period=alert.period,
        threshold=alert.threshold,
        spend=_money(alert.spend, alert.currency),
        amount=_money(alert.amount, alert.currency),
        currency=alert.currency,
        occurred_at=alert.occurred_at,
    )


def _snapshot(budget: Budget) -> dict[str, Any]:
    return {
        "customer_id": budget.customer_id,
        "name": budget.name,
        "amount": _money(budget.amount, budget.currency),
        "currency": budget.currency,
        "vendor": budget.vendor,
        "thresholds": list(budget.thresholds),
    }


# --- the MSP's API (its role applies) ------------------------------------------------------


def list_budgets(session: Session, subject: AuthSubject, customer_id: str) -> list[Budget]:
    customer = customers.get_customer(session, subject.msp_id, customer_id)
    return repository.budgets_of(session, subject.msp_id, customer.id)


def create(
    session: Session, subject: AuthSubject, customer_id: str, fields: BudgetFields
) -> Budget:
    customer = customers.get_customer(session, subject.msp_id, customer_id)
    subject.require_write()
    return _create(session, subject, customer, fields)


def update(
    session: Session, subject: AuthSubject, budget_id: str, changes: Mapping[str, Any]
) -> Budget:
    budget = repository.get_budget(session, subject.msp_id, budget_id)
    subject.require_write()
    return _update(session, subject, budget, changes)


def delete(session: Session, subject: AuthSubject, budget_id: str) -> None:
    budget = repository.get_budget(session, subject.msp_id, budget_id)
    subject.require_write()
    _delete(session, subject, budget)


def alerts(
    session: Session, subject: AuthSubject, customer_id: str, period: str | None
) -> list[BudgetAlert]:
    if period is not None:
        validate_period(period)
    customer = customers.get_customer(session, subject.msp_id, customer_id)
    return repository.alerts_of(session, subject.msp_id, customer.id, period)


# --- a portal user, for its own customer only ------------------------------------------------
# A portal user's service role is read-only help desk everywhere else; its budgets are its own
# spending, so it may manage them — for the one customer its session belongs to.


def _own_customer(session: Session, person: WebSubject) -> Customer:
    if person.customer_id is None:  # a console session has no customer
        raise InvalidInput("Only a customer's portal user manages its budgets here.")
    return customers.get_customer(session, person.msp_id, person.customer_id)


def own_budget(session: Session, person: WebSubject, budget_id: str) -> Budget:
    customer = _own_customer(session, person)
    return repository.get_budget(session, person.msp_id, budget_id, customer.id)


def create_own(session: Session, person: WebSubject, fields: BudgetFields) -> Budget:
    return _create(session, person.as_auth_subject(), _own_customer(session, person), fields)


def update_own(
    session: Session, person: WebSubject, budget_id: str, changes: Mapping[str, Any]
) -> Budget:
    budget = own_budget(session, person, budget_id)
    return _update(session, person.as_auth_subject(), budget, changes)


def delete_own(session: Session, person: WebSubject, budget_id: str) -> None:
    _delete(session, person.as_auth_subject(), own_budget(session, person, budget_id))


# --- the writes ---------------------------------------------------------------------------


def _create(
    session: Session, actor: AuthSubject, customer: Customer, fields: BudgetFields
) -> Budget:
    fields = check(fields, customer.currency)
    if len(repository.budgets_of(session, customer.msp_id, customer.id)) >= MAX_BUDGETS:
        raise Conflict(f"A customer has at most {MAX_BUDGETS} budgets.", code="too_many_budgets")
    budget = Budget(
        msp_id=customer.msp_id,
        customer_id=customer.id,
        name=fields.name,
        amount=fields.amount,
        currency=customer.currency,
        vendor=fields.vendor,
        thresholds=fields.thresholds,
    )
    session.add(budget)
    session.flush()
    record(
        session, actor, "budget.created", "budget", budget.id, before=None, after=_snapshot(budget)
    )
    return budget


def _update(
    session: Session, actor: AuthSubject, budget: Budget, changes: Mapping[str, Any]
) -> Budget:
    unknown = set(changes) - set(FIELDS)
    if unknown:  # pragma: no cover - the schema and the form send only FIELDS
        raise InvalidInput(f"Unknown budget fields: {', '.join(sorted(unknown))}.")
    before = _snapshot(budget)
    merged = {
        "name": budget.name,
        "amount": budget.amount,
        "thresholds": list(budget.thresholds),
        "vendor": budget.vendor,
        **changes,
    }
    if merged["amount"] is None or merged["thresholds"] is None:
        raise InvalidInput(
            "amount and thresholds may be changed but not removed.",
            field="amount" if merged["amount"] is None else "thresholds",
        )
    fields = check(BudgetFields(**merged), budget.currency)
    budget.name = fields.name
    budget.amount = fields.amount
    budget.thresholds = fields.thresholds
    budget.vendor = fields.vendor
    session.flush()
    record(
        session,
        actor,
        "budget.updated",
        "budget",
        budget.id,
        before=before,
        after=_snapshot(budget),
    )
    return budget


def _delete(session: Session, actor: AuthSubject, budget: Budget) -> None:
    before = _snapshot(budget)
    # Its alerts go with it (SQLite may not enforce the ON DELETE CASCADE).
    session.execute(sql_delete(BudgetAlert).where(BudgetAlert.budget_id == budget.id))
    session.delete(budget)
    session.flush()
    record(session, actor, "budget.deleted", "budget", budget.id, before=before, after=None)


# --- evaluation, after rating ---------------------------------------------------------------


def evaluate(session: Session, msp_id: str, period: str, customers: Sequence[Customer]) -> int:
    """Record each budget threshold newly reached by the customers' spend in ``period``, with
    its webhook event; returns how many fired. Runs in the rating's unit of work."""
    fired = 0
    for customer in customers:
        budgets = repository.budgets_of(session, msp_id, customer.id)
        if not budgets:
            continue
        lines = repository.period_lines(session, customer.id, period)
        done = {
            (alert.budget_id, alert.threshold)
            for alert in repository.alerts_of(session, msp_id, customer.id, period)
        }
        for budget in budgets:
            spend = repository.spend_of(lines, customer, budget)
            if spend is None:
                continue
            for threshold in budget.thresholds:
                if (budget.id, threshold) in done or not repository.reached(
                    spend, budget.amount, threshold
                ):
                    continue
                alert = BudgetAlert(
                    msp_id=msp_id,
                    customer_id=customer.id,
                    budget_id=budget.id,
                    period=period,
                    threshold=threshold,
                    spend=spend,
                    amount=budget.amount,
                    currency=budget.currency,
                )
                try:
                    with session.begin_nested():
                        session.add(alert)
                        session.flush()
                except IntegrityError:
                    continue  # recorded concurrently: once per period
                fired += 1
                _notify(session, customer, budget, alert)
    return fired


def _notify(session: Session, customer: Customer, budget: Budget, alert: BudgetAlert) -> None:
    webhooks.emit(
        session,
        customer.msp_id,
        EVENT,
        {
            "customer_id": customer.id,
            "external_id": customer.external_id,
            "budget_id": budget.id,
            "budget_name": budget.name,
            "vendor": budget.vendor,
            "period": alert.period,
            "threshold": alert.threshold,
            "spend": _money(alert.spend, alert.currency),
            "amount": _money(alert.amount, alert.currency),
            "currency": alert.currency,
        },
    )
