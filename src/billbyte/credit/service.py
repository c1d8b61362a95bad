"""Threshold evaluation after each rating, in the rating's transaction.

Spend is the period's open charges in the customer's currency. The base is, for a prepaid
customer, what the balance had for the period: the remaining balance plus what the period
drew (see ``credit.prepaid``); an exhausted balance with spend counts as every threshold
crossed. Otherwise the base is the credit limit.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from billbyte.audit.service import record
from billbyte.auth.roles import Role
from billbyte.auth.subject import AuthSubject
from billbyte.charges.models import ChargeLine
from billbyte.credit import prepaid
from billbyte.credit.models import CreditEvent, CreditPolicy
from billbyte.customers.models import Customer
from billbyte.jobs import follow_up
from billbyte.kit.errors import InvalidInput
from billbyte.kit.money import round_money
from billbyte.webhooks import service as webhooks

ACTIONS = ("notify", "suspend")


@dataclass(frozen=True)
class Standing:
    customer_id: str
    period: str
    currency: str
    spend: Decimal
    base: Decimal | None
    base_kind: str | None  # "credit_limit" | "prepaid_balance" | None
    percent: Decimal | None
    prepaid_remaining: Decimal | None = None  # what is left of the prepaid balance now
    prepaid_drawn: Decimal | None = None  # what this period drew from it


def policy_for(session: Session, msp_id: str) -> CreditPolicy:
    policy = session.scalar(select(CreditPolicy).where(CreditPolicy.msp_id == msp_id))
    return policy or CreditPolicy(
        msp_id=msp_id,
        thresholds=[50, 80, 100],
        action="notify",
        suspend_at=100,
        prepaid_overdraft=False,
    )


def set_policy(
    session: Session,
    subject: AuthSubject,
    thresholds: list[int],
    action: str,
    suspend_at: int,
    prepaid_overdraft: bool = False,
) -> CreditPolicy:
    subject.require_write()
    if action not in ACTIONS:
        raise InvalidInput(f"action must be one of {', '.join(ACTIONS)}.", field="action")
    if not thresholds or any(t <= 0 or t > 1000 for t in thresholds):
        raise InvalidInput("thresholds are percentages between 1 and 1000.", field="thresholds")
    policy = session.scalar(select(CreditPolicy).where(CreditPolicy.msp_id == subject.msp_id))
    before = None
    if policy is None:
        policy = CreditPolicy(msp_id=subject.msp_id)
        session.add(policy)
    else:
        before = {
            "thresholds": policy.thresholds,
            "action": policy.action,
            "suspend_at": policy.suspend_at,
            "prepaid_overdraft": policy.prepaid_overdraft,
        }
    policy.thresholds = sorted(set(thresholds))
    policy.action = action
    policy.suspend_at = suspend_at
    policy.prepaid_overdraft = prepaid_overdraft
    session.flush()
    record(
        session,
        subject,
        "credit_policy.updated",
        "msp",
        subject.msp_id,
        before=before,
        after={
            "thresholds": policy.thresholds,
            "action": action,
            "suspend_at": suspend_at,
            "prepaid_overdraft": prepaid_overdraft,
        },
    )
    return policy


def spend(session: Session, customer: Customer, period: str) -> Decimal:
    amounts = session.scalars(
        select(ChargeLine.sell_local).where(
            ChargeLine.customer_id == customer.id, ChargeLine.period == period
        )
    )
    return round_money(sum(amounts, Decimal(0)), customer.currency)


# Above every threshold a policy may set (they are at most 1000 %).
EXHAUSTED = Decimal("1000.00")


def standing(
    session: Session, customer: Customer, period: str, spent: Decimal | None = None
) -> Standing:
    """``spent``: the period's spend when the caller has it already (a list of many
    customers sums their charge lines in one query); otherwise it is read here."""
    total = spend(session, customer, period) if spent is None else spent
    if customer.prepaid_balance is not None:
        drawn = prepaid.drawn_for(session, customer.id, period)
        base = customer.prepaid_balance + drawn
        if base > 0:
            percent: Decimal | None = (total / base * 100).quantize(Decimal("0.01"))
        else:
            percent = EXHAUSTED if total > 0 else None
        return Standing(
            customer.id,
            period,
            customer.currency,
            total,
            base,
            "prepaid_balance",
            percent,
            prepaid_remaining=customer.prepaid_balance,
            prepaid_drawn=drawn,
        )
    limit = customer.credit_limit
    kind = "credit_limit" if limit is not None else None
    percent = (total / limit * 100).quantize(Decimal("0.01")) if limit else None
    return Standing(customer.id, period, customer.currency, total, limit, kind, percent)


def evaluate(session: Session, msp_id: str, period: str, customers: Sequence[Customer]) -> int:
    """Record each newly crossed threshold once; request suspension where policy says so."""
    policy = policy_for(session, msp_id)
    raised = 0
    for customer in customers:
        prepaid.settle(session, customer)  # draw first: thresholds see the new balance
        state = standing(session, customer, period)
        if state.percent is None:
            continue
        thresholds = customer.credit_thresholds or policy.thresholds
        action = customer.credit_action or policy.action
        done = set(
            session.scalars(
                select(CreditEvent.threshold).where(
                    CreditEvent.customer_id == customer.id, CreditEvent.period == period
                )
            )
        )
        for threshold in sorted(thresholds):
            if state.percent < threshold or threshold in done:
                continue
            suspend = action == "suspend" and threshold >= policy.suspend_at
            event = CreditEvent(
                msp_id=msp_id,
                customer_id=customer.id,
                period=period,
                threshold=threshold,
                spend=state.spend,
                limit=state.base or Decimal(0),
                currency=customer.currency,
                action_taken="suspension_requested" if suspend else "notified",
                details={"base": state.base_kind, "percent": format(state.percent, "f")},
            )
            try:
                with session.begin_nested():
                    session.add(event)
                    session.flush()
            except IntegrityError:
                continue  # raised concurrently: once per crossing
            raised += 1
            _notify(session, msp_id, customer, event)
            if suspend and customer.status == "active":
                system = AuthSubject(msp_id=msp_id, actor="system:credit", role=Role.ADMIN)
                record(
                    session,
                    system,
                    "customer.suspension_requested",
                    "customer",
                    customer.id,
                    before={"status": "active"},
                    after={"status": "suspension_requested", "threshold": threshold},
                )
                customer.status = "suspension_requested"
                # The vendors act on it in connectors' job, requested in this transaction.
                follow_up.suspension_requested(session, customer.msp_id, customer.id)
    return raised


def _notify(session: Session, msp_id: str, customer: Customer, event: CreditEvent) -> None:
    data: dict[str, Any] = {
        "customer_id": customer.id,
        "external_id": customer.external_id,
        "period": event.period,
        "threshold": event.threshold,
        "spend": format(event.spend, "f"),
        "limit": format(event.limit, "f"),
        "currency": event.currency,
        "action": event.action_taken,
        "base_kind": event.details.get("base"),
    }
    webhooks.emit(session, msp_id, "credit.threshold_reached", data)


def events(session: Session, subject: AuthSubject, customer_id: str) -> list[CreditEvent]:
    return list(
        session.scalars(
            select(CreditEvent)
            .where(CreditEvent.msp_id == subject.msp_id, CreditEvent.customer_id == customer_id)
            .order_by(CreditEvent.id)
        )
    )
