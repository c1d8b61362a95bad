"""Prepaid balances as a ledger of movements.

- **Top-ups** (``POST /v1/customers/{id}/prepaid-top-ups``) add to the balance; each carries
  the MSP's own ``reference`` (a payment id), which makes it idempotent.
- **Draw-downs** follow the customer's charges. At every rating, each open month's draw is
  brought to that month's open charges (a restatement that lowers them gives back, re-rating
  the same charges moves nothing); at invoice close, the invoiced months' draws are brought
  to the invoice total and become final. Late data after a close is an adjustment line on the
  next open month, drawn with it. Months are drawn oldest first.
- Without the MSP's ``prepaid_overdraft`` a draw stops at zero: the unfunded rest of the
  charges is simply invoiced. With it the balance may go negative.
- Writing ``prepaid_balance`` on the customer (create or PATCH) sets the remaining balance: it
  records the difference as an ``adjustment`` (an opening ``top_up`` at creation).

The balance is the sum of the movements, cached on ``Customer.prepaid_balance`` (the remaining
balance, as the API shows it). Every movement is audited and appears in the change feed as a
``prepaid`` entry. Amounts are exact in the customer's currency's minor unit. Functions here
take the caller's session and never commit.
"""

from __future__ import annotations

from collections import defaultdict
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from billbyte.audit.service import record
from billbyte.auth.roles import Role
from billbyte.auth.subject import AuthSubject
from billbyte.charges.ledger import record_change
from billbyte.charges.models import ChargeLine, ClosedPeriod
from billbyte.credit.models import CreditPolicy, PrepaidMovement
from billbyte.customers import prepaid_ledger
from billbyte.customers.models import Customer
from billbyte.kit.clock import utcnow
from billbyte.kit.errors import Conflict, InvalidInput
from billbyte.kit.money import quantum, round_money

TOP_UP, ADJUSTMENT, DRAW_DOWN = "top_up", "adjustment", "draw_down"
OPEN, FINAL = "open", "final"
OPENING_REFERENCE = "opening-balance"


def _system(msp_id: str) -> AuthSubject:
    return AuthSubject(msp_id=msp_id, actor="system:prepaid", role=Role.ADMIN)


def movement_out(movement: PrepaidMovement) -> dict[str, Any]:
    return {
        "id": movement.id,
        "object": "prepaid_movement",
        "customer_id": movement.customer_id,
        "kind": movement.kind,
        "stage": movement.stage,
        "period": movement.period,
        "amount": format(movement.amount, "f"),
        "currency": movement.currency,
        "balance_after": format(movement.balance_after, "f"),
        "reference": movement.reference,
        "note": movement.note,
        "actor": movement.actor,
        "created_at": movement.created_at,
    }


def ledger_balance(session: Session, customer_id: str) -> Decimal:
    amounts = session.scalars(
        select(PrepaidMovement.amount).where(PrepaidMovement.customer_id == customer_id)
    )
    return sum(amounts, Decimal(0))


def movements(session: Session, customer_id: str) -> list[PrepaidMovement]:
    return list(
        session.scalars(
            select(PrepaidMovement)
            .where(PrepaidMovement.customer_id == customer_id)
            .order_by(PrepaidMovement.created_at, PrepaidMovement.id)
        )
    )


def _move(
    session: Session,
    subject: AuthSubject,
    customer: Customer,
    kind: str,
    amount: Decimal,
    *,
    stage: str | None = None,
    period: str | None = None,
    reference: str | None = None,
    note: str | None = None,
) -> PrepaidMovement:
    if amount != round_money(amount, customer.currency):
        raise InvalidInput(
            f"amount has more decimals than {customer.currency} allows "
            f"(minor unit {quantum(customer.currency)}).",
            field="amount",
        )
    balance = ledger_balance(session, customer.id) + amount
    movement = PrepaidMovement(
        msp_id=customer.msp_id,
        customer_id=customer.id,
        kind=kind,
        stage=stage,
        period=period,
        amount=amount,
        currency=customer.currency,
        balance_after=balance,
        reference=reference,
        note=note,
        actor=subject.actor,
        created_at=utcnow(),
    )
    session.add(movement)
    session.flush()
    customer.prepaid_balance = balance
    out = movement_out(movement)
    record(
        session,
        subject,
        f"prepaid.{kind}",
        "customer",
        customer.id,
        before=None,
        after={k: v for k, v in out.items() if k not in ("object", "created_at")},
    )
    record_change(
        session,
        customer.msp_id,
        customer.id,
        period or movement.created_at.strftime("%Y-%m"),
        f"prepaid:{movement.id}",
        "prepaid",
        {**out, "created_at": out["created_at"].isoformat()},
        None,
    )
    return movement


def _overdraft_allowed(session: Session, msp_id: str) -> bool:
    allowed = session.scalar(
        select(CreditPolicy.prepaid_overdraft).where(CreditPolicy.msp_id == msp_id)
    )
    return bool(allowed)


def _capped(session: Session, customer: Customer, wanted: Decimal) -> Decimal:
    """How much of ``wanted`` (a draw when positive) the balance may fund."""
    if wanted <= 0 or _overdraft_allowed(session, customer.msp_id):
        return wanted
    return min(wanted, max(ledger_balance(session, customer.id), Decimal(0)))


def top_up(
    session: Session,
    subject: AuthSubject,
    customer: Customer,
    amount: Decimal,
    reference: str,
    note: str | None = None,
) -> tuple[PrepaidMovement, bool]:
    """Add funds; the same reference again returns the first top-up (created=False)."""
    subject.require_write()
    if amount <= 0:
        raise InvalidInput("A top-up amount must be positive.", field="amount")
    existing = session.scalar(
        select(PrepaidMovement).where(
            PrepaidMovement.customer_id == customer.id, PrepaidMovement.reference == reference
        )
    )
    if existing is not None:
        if existing.kind != TOP_UP or existing.amount != amount:
            raise Conflict(
                f"Reference {reference!r} was already used for another movement "
                f"({existing.kind} of {format(existing.amount, 'f')}).",
                code="reference_reused",
            )
        return existing, False
    movement = _move(session, subject, customer, TOP_UP, amount, reference=reference, note=note)
    # Charges a zero balance could not fund are drawn now, oldest month first.
    settle(session, customer)
    return movement, True


def customer_written(
    session: Session, subject: AuthSubject, customer: Customer, requested: Decimal | None
) -> None:
    """``prepaid_balance`` was written through the customer API (already set on the row):
    record the difference to the ledger's balance. ``None`` ends prepaid (the ledger stays)."""
    if requested is None:
        customer.prepaid_balance = None
        return
    current = ledger_balance(session, customer.id)
    customer.prepaid_balance = current
    if requested == current:
        return
    opening = not session.scalar(
        select(func.count())
        .select_from(PrepaidMovement)
        .where(PrepaidMovement.customer_id == customer.id)
    )
    if opening and requested > 0:
        _move(
            session,
            subject,
            customer,
            TOP_UP,
            requested,
            reference=OPENING_REFERENCE,
            note="opening balance",
        )
    else:
        _move(
            session,
            subject,
            customer,
            ADJUSTMENT,
            requested - current,
            note="prepaid_balance set on the customer",
        )
    settle(session, customer)


def _closed_months(session: Session, customer_id: str) -> set[str]:
    return set(
        session.scalars(select(ClosedPeriod.period).where(ClosedPeriod.customer_id == customer_id))
    )


def _drawn(session: Session, customer_id: str) -> dict[str, Decimal]:
    """Per month, what the draw-downs took (positive)."""
    drawn: dict[str, Decimal] = defaultdict(Decimal)
    for period, amount in session.execute(
        select(PrepaidMovement.period, PrepaidMovement.amount).where(
            PrepaidMovement.customer_id == customer_id, PrepaidMovement.kind == DRAW_DOWN
        )
    ):
        drawn[period or ""] -= amount  # draw-downs always have a period
    return drawn


def _open_charges(session: Session, customer: Customer, closed: set[str]) -> dict[str, Decimal]:
    totals: dict[str, Decimal] = defaultdict(Decimal)
    for period, amount in session.execute(
        select(ChargeLine.period, ChargeLine.sell_local).where(
            ChargeLine.customer_id == customer.id
        )
    ):
        if period not in closed:
            totals[period] += amount
    return {p: round_money(t, customer.currency) for p, t in totals.items()}


def settle(session: Session, customer: Customer) -> int:
    """Bring each open month's draw to its open charges; returns the movements made."""
    if customer.prepaid_balance is None:
        return 0
    closed = _closed_months(session, customer.id)
    charges = _open_charges(session, customer, closed)
    drawn = _drawn(session, customer.id)
    made = 0
    periods = sorted((set(charges) | set(drawn)) - closed)
    change = {p: charges.get(p, Decimal(0)) - drawn.get(p, Decimal(0)) for p in periods}
    # Give back first, then draw oldest month first: a month whose charges fell frees funds
    # that an earlier, under-funded month may use, so one pass reaches the fixed point and
    # settling again moves nothing.
    for period in [p for p in periods if change[p] < 0] + [p for p in periods if change[p] > 0]:
        wanted = _capped(session, customer, change[period])
        if wanted:
            _move(
                session,
                _system(customer.msp_id),
                customer,
                DRAW_DOWN,
                -wanted,
                stage=OPEN,
                period=period,
                note="open charges",
            )
            made += 1
    return made


def settle_customers(session: Session, customers: list[Customer]) -> None:
    for customer in customers:
        settle(session, customer)


def close(
    session: Session,
    customer: Customer,
    months: list[str],
    invoice_total: Decimal,
    invoice_id: str | None,
) -> None:
    """At invoice close (in its transaction): the invoiced months' draw becomes the invoice
    total, final. Called after the months are marked closed."""
    if customer.prepaid_balance is None:
        return
    drawn = _drawn(session, customer.id)
    already = sum((drawn.get(m, Decimal(0)) for m in months), Decimal(0))
    wanted = _capped(session, customer, invoice_total - already)
    if wanted:
        _move(
            session,
            _system(customer.msp_id),
            customer,
            DRAW_DOWN,
            -wanted,
            stage=FINAL,
            period=months[-1],
            reference=f"invoice:{invoice_id}" if invoice_id else None,
            note="invoice close",
        )


def drawn_for(session: Session, customer_id: str, period: str) -> Decimal:
    return _drawn(session, customer_id).get(period, Decimal(0))


# The customer API's prepaid_balance writes land here (customers cannot import credit).
prepaid_ledger.register(customer_written)
