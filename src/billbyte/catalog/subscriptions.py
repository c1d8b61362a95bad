"""Customers' licence subscriptions to catalogue offers: seats, renewal and cancellation.

Rules (docs/catalog.md): seat reductions and refunded cancellations of annual terms only within
the first 7 days of a term (``proration``); a change may not reach into a period already
invoiced.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import date
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from billbyte.audit.service import record
from billbyte.catalog import proration
from billbyte.catalog.models import LicenceQuantity, LicenceSubscription, Offer
from billbyte.catalog.offers import get_offer
from billbyte.catalog.proration import Term
from billbyte.catalog.schemas import (
    QuantityOut,
    SubscriptionCancel,
    SubscriptionCreate,
    SubscriptionOut,
    SubscriptionUpdate,
    TermOut,
)
from billbyte.charges.models import ClosedPeriod
from billbyte.customers import repository as customers
from billbyte.jobs import follow_up
from billbyte.kit.clock import utcnow
from billbyte.kit.errors import Conflict, InvalidInput, NotFound
from billbyte.kit.pagination import Page, paginate
from billbyte.tenancy.auth import AuthSubject


def _today() -> date:
    return utcnow().date()


def seat_history(
    session: Session, msp_id: str, subscription_ids: Iterable[str]
) -> dict[str, list[tuple[date, int]]]:
    """Seat history per subscription, in date order."""
    ids = list(subscription_ids)
    result: dict[str, list[tuple[date, int]]] = defaultdict(list)
    if not ids:
        return result
    rows = session.execute(
        select(
            LicenceQuantity.subscription_id,
            LicenceQuantity.effective_date,
            LicenceQuantity.quantity,
        )
        .where(LicenceQuantity.msp_id == msp_id, LicenceQuantity.subscription_id.in_(ids))
        .order_by(LicenceQuantity.subscription_id, LicenceQuantity.effective_date)
    )
    for subscription_id, effective, quantity in rows:
        result[subscription_id].append((effective, quantity))
    return result


def _offer_of(session: Session, subscription: LicenceSubscription) -> Offer:
    offer = session.scalar(
        select(Offer).where(Offer.id == subscription.offer_id, Offer.msp_id == subscription.msp_id)
    )
    assert offer is not None  # a foreign key within the same MSP
    return offer


def subscription_out(
    session: Session, subscription: LicenceSubscription, today: date | None = None
) -> SubscriptionOut:
    today = today or _today()
    offer = _offer_of(session, subscription)
    seats = seat_history(session, subscription.msp_id, [subscription.id])[subscription.id]
    term = Term(offer.term)
    start, last_day = subscription.start_date, subscription.last_day
    if last_day is not None and today > last_day:
        status = "cancelled" if subscription.cancelled_at else "expired"
        current = None
    elif today < start:
        status, current = "pending", proration.term_containing(start, term, start)
    else:
        status, current = "active", proration.term_containing(start, term, today)
    renews_on = (
        current.end + proration.ONE_DAY
        if current is not None and last_day is None and subscription.auto_renew
        else None
    )
    return SubscriptionOut(
        id=subscription.id,
        customer_id=subscription.customer_id,
        offer_id=offer.id,
        offer_name=offer.name,
        sku_id=offer.sku_id,
        status=status,
        quantity=proration.seats_on(seats, max(today, start)),
        start_date=start,
        auto_renew=subscription.auto_renew,
        current_term=TermOut(start=current.start, end=current.end) if current else None,
        renews_on=renews_on,
        last_day=last_day,
        cancelled_at=subscription.cancelled_at,
        cancel_requested_for=subscription.cancel_requested_for,
        quantity_changes=[QuantityOut(effective_date=d, quantity=q) for d, q in seats],
        created_at=subscription.created_at,
        updated_at=subscription.updated_at,
    )


def _snapshot(session: Session, subscription: LicenceSubscription) -> dict[str, Any]:
    return subscription_out(session, subscription).model_dump(
        mode="json", exclude={"created_at", "updated_at", "status", "current_term", "quantity"}
    )


def _not_invoiced(session: Session, subject: AuthSubject, customer_id: str, day: date) -> None:
    """A change dated ``day`` lands in the invoice of that month: it must still be open."""
    period = f"{day.year:04d}-{day.month:02d}"
    closed = session.scalar(
        select(ClosedPeriod.period)
        .where(
            ClosedPeriod.msp_id == subject.msp_id,
            ClosedPeriod.customer_id == customer_id,
            ClosedPeriod.period >= period,
        )
        .order_by(ClosedPeriod.period.desc())
        .limit(1)
    )
    if closed is not None:
        raise Conflict(
            f"{day} falls in a period already invoiced (up to {closed}): date the change in "
            "an open period.",
            code="period_closed",
        )


def create_subscription(
    session: Session, subject: AuthSubject, customer_id: str, data: SubscriptionCreate
) -> LicenceSubscription:
    subject.require_write()
    customer = customers.get_customer(session, subject.msp_id, customer_id)
    offer = get_offer(session, subject, data.offer_id)
    if not offer.active:
        raise InvalidInput(
            f"Offer {offer.id} is not active: it cannot be subscribed to.",
            field="offer_id",
            code="offer_inactive",
        )
    start = data.start_date or _today()
    _not_invoiced(session, subject, customer.id, start)
    term = Term(offer.term)
    subscription = LicenceSubscription(
        msp_id=subject.msp_id,
        customer_id=customer.id,
        offer_id=offer.id,
        start_date=start,
        auto_renew=data.auto_renew,
        last_day=None if data.auto_renew else proration.first_term_end(start, term),
    )
    session.add(subscription)
    session.flush()
    session.add(
        LicenceQuantity(
            msp_id=subject.msp_id,
            subscription_id=subscription.id,
            effective_date=start,
            quantity=data.quantity,
        )
    )
    session.flush()
    record(
        session,
        subject,
        "licence_subscription.created",
        "customer",
        customer.id,
        before=None,
        after=_snapshot(session, subscription),
    )
    follow_up.pricing_changed(session, subject.msp_id, customer_id=customer.id)
    return subscription


def get_subscription(
    session: Session, subject: AuthSubject, customer_id: str, subscription_id: str
) -> LicenceSubscription:
    customer = customers.get_customer(session, subject.msp_id, customer_id)
    subscription = session.scalar(
        select(LicenceSubscription).where(
            LicenceSubscription.id == subscription_id,
            LicenceSubscription.customer_id == customer.id,
            LicenceSubscription.msp_id == subject.msp_id,
        )
    )
    if subscription is None:
        raise NotFound(
            f"No licence subscription {subscription_id!r} on this customer.",
            code="subscription_not_found",
        )
    return subscription


def list_subscriptions(
    session: Session, subject: AuthSubject, customer_id: str, *, cursor: str | None, limit: int
) -> Page[LicenceSubscription]:
    customer = customers.get_customer(session, subject.msp_id, customer_id)
    stmt = select(LicenceSubscription).where(
        LicenceSubscription.msp_id == subject.msp_id,
        LicenceSubscription.customer_id == customer.id,
    )
    return paginate(session, stmt, LicenceSubscription.id, cursor, limit)


def _ended(subscription: LicenceSubscription, today: date) -> bool:
    return subscription.last_day is not None and subscription.last_day < today


def update_subscription(
    session: Session,
    subject: AuthSubject,
    customer_id: str,
    subscription_id: str,
    data: SubscriptionUpdate,
) -> LicenceSubscription:
    subject.require_write()
    subscription = get_subscription(session, subject, customer_id, subscription_id)
    offer = _offer_of(session, subscription)
    term = Term(offer.term)
    today = _today()
    before = _snapshot(session, subscription)
    if data.quantity is not None:
        _change_quantity(session, subject, subscription, term, data, today)
    if data.auto_renew is not None and data.auto_renew != subscription.auto_renew:
        if subscription.cancelled_at is not None:
            raise Conflict("This subscription is cancelled.", code="subscription_cancelled")
        if _ended(subscription, today):
            raise Conflict(
                f"This subscription ended on {subscription.last_day}.", code="subscription_ended"
            )
        subscription.auto_renew = data.auto_renew
        # Turning renewal off ends the subscription with its current term.
        subscription.last_day = (
            None
            if data.auto_renew
            else proration.term_containing(
                subscription.start_date, term, max(today, subscription.start_date)
            ).end
        )
    session.flush()
    after = _snapshot(session, subscription)
    if after != before:
        record(
            session,
            subject,
            "licence_subscription.updated",
            "customer",
            subscription.customer_id,
            before=before,
            after=after,
        )
        follow_up.pricing_changed(session, subject.msp_id, customer_id=subscription.customer_id)
    return subscription


def _change_quantity(
    session: Session,
    subject: AuthSubject,
    subscription: LicenceSubscription,
    term: Term,
    data: SubscriptionUpdate,
    today: date,
) -> None:
    assert data.quantity is not None
    start = subscription.start_date
    effective = data.effective_date or max(today, start)
    if effective < start:
        raise InvalidInput(
            f"effective_date {effective} is before the start {start}.", field="effective_date"
        )
    if subscription.last_day is not None and effective > subscription.last_day:
        raise InvalidInput(
            f"The subscription ends on {subscription.last_day}: no change after that.",
            field="effective_date",
            code="subscription_ended",
        )
    _not_invoiced(session, subject, subscription.customer_id, effective)
    seats = seat_history(session, subscription.msp_id, [subscription.id])[subscription.id]
    latest = seats[-1][0]
    if effective < latest:
        raise Conflict(
            f"A change already takes effect on {latest}: changes are made in date order "
            "(a change on the same day replaces it).",
            code="later_change_exists",
        )
    previous = proration.seats_on(seats, effective - proration.ONE_DAY) if effective > start else 0
    if (
        effective > start
        and data.quantity < previous
        and not proration.decrease_allowed(start, term, effective)
    ):
        current = proration.term_containing(start, term, effective)
        raise InvalidInput(
            f"Seats of an annual term can be reduced only within "
            f"{proration.ANNUAL_GRACE_DAYS} days of the term's start ({current.start}); "
            f"date the reduction on the renewal, {current.end + proration.ONE_DAY}.",
            field="quantity",
            code="seat_reduction_not_allowed",
        )
    existing = session.scalar(
        select(LicenceQuantity).where(
            LicenceQuantity.msp_id == subject.msp_id,
            LicenceQuantity.subscription_id == subscription.id,
            LicenceQuantity.effective_date == effective,
        )
    )
    if existing is None and data.quantity == proration.seats_on(seats, effective):
        return  # already in force: nothing changes
    if existing is not None:
        existing.quantity = data.quantity
    else:
        session.add(
            LicenceQuantity(
                msp_id=subject.msp_id,
                subscription_id=subscription.id,
                effective_date=effective,
                quantity=data.quantity,
            )
        )


def cancel_subscription(
    session: Session,
    subject: AuthSubject,
    customer_id: str,
    subscription_id: str,
    data: SubscriptionCancel,
) -> LicenceSubscription:
    subject.require_write()
    subscription = get_subscription(session, subject, customer_id, subscription_id)
    if subscription.cancelled_at is not None:
        raise Conflict("This subscription is already cancelled.", code="subscription_cancelled")
    offer = _offer_of(session, subscription)
    start = subscription.start_date
    effective = data.effective_date or max(_today(), start)
    if effective < start:
        raise InvalidInput(
            f"effective_date {effective} is before the start {start}.", field="effective_date"
        )
    if subscription.last_day is not None and effective > subscription.last_day:
        raise InvalidInput(
            f"The subscription already ends on {subscription.last_day}.",
            field="effective_date",
            code="subscription_ended",
        )
    outcome = proration.cancellation(start, Term(offer.term), effective)
    _not_invoiced(session, subject, subscription.customer_id, outcome.last_day)
    before = _snapshot(session, subscription)
    subscription.cancelled_at = utcnow()
    subscription.cancel_requested_for = effective
    subscription.auto_renew = False
    subscription.last_day = outcome.last_day
    session.flush()
    record(
        session,
        subject,
        "licence_subscription.cancelled",
        "customer",
        subscription.customer_id,
        before=before,
        after={**_snapshot(session, subscription), "refunded": outcome.refunded},
    )
    follow_up.pricing_changed(session, subject.msp_id, customer_id=subscription.customer_id)
    return subscription
