"""The MSP's catalogue of fixed-price offers, customers' licence subscriptions, and the
licence charge lines that rating merges into each customer's open period.

Rules (docs/catalog.md): charged in advance per billing period, prorated by day
(``proration``); seat reductions and refunded cancellations of annual terms only within the
first 7 days of a term; a change may not reach into a period already invoiced.
"""

from __future__ import annotations

import calendar
import hashlib
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from billbyte.audit.service import record
from billbyte.auth.subject import AuthSubject
from billbyte.catalog import proration
from billbyte.catalog.models import LicenceQuantity, LicenceSubscription, Offer
from billbyte.catalog.proration import Frequency, Piece, PieceKind, Term
from billbyte.catalog.schemas import (
    OfferCreate,
    OfferOut,
    OfferUpdate,
    PriceVersionOut,
    QuantityOut,
    SubscriptionCancel,
    SubscriptionCreate,
    SubscriptionOut,
    SubscriptionUpdate,
    TermOut,
)
from billbyte.customers import service as customers
from billbyte.customers.models import Customer
from billbyte.fx import service as fx
from billbyte.jobs import follow_up
from billbyte.kit.clock import utcnow
from billbyte.kit.errors import Conflict, InvalidInput, NotFound
from billbyte.kit.money import quantum
from billbyte.kit.pagination import Page, paginate
from billbyte.rating.models import ClosedPeriod

KIND = "licence"


def _today() -> date:
    return utcnow().date()


# --- offers --------------------------------------------------------------------------------


def _money_text(amount: Decimal, currency: str) -> str:
    """At least the currency's minor units (17.6 EUR → "17.60"), never fewer digits."""
    step = quantum(currency)
    exact = _plain(amount)
    return (
        format(amount.quantize(step), "f") if exact == exact.quantize(step) else format(exact, "f")
    )


def _plain(amount: Decimal) -> Decimal:
    text = format(amount, "f")
    return Decimal(text.rstrip("0").rstrip(".") if "." in text else text)


@dataclass(frozen=True)
class PriceVersion:
    """An offer's prices from ``effective_from`` (None: from the start) to the next version."""

    effective_from: date | None
    cost_price: Decimal
    list_price: Decimal | None
    prices: dict[str, Decimal]


def price_versions(offer: Offer) -> list[PriceVersion]:
    """Oldest first; the last one is the offer's own columns."""
    earlier = [
        PriceVersion(
            date.fromisoformat(v["from"]) if v["from"] else None,
            Decimal(v["cost_price"]),
            None if v["list_price"] is None else Decimal(v["list_price"]),
            {c: Decimal(a) for c, a in v["prices"].items()},
        )
        for v in offer.earlier_prices or []
    ]
    latest = PriceVersion(
        offer.prices_from,
        offer.cost_price,
        offer.list_price,
        {c: Decimal(a) for c, a in offer.prices.items()},
    )
    return [*earlier, latest]


def price_on(versions: Sequence[PriceVersion], day: date) -> PriceVersion:
    found = versions[0]
    for version in versions:
        if version.effective_from is None or version.effective_from <= day:
            found = version
    return found


def _version_out(version: PriceVersion, cost_currency: str) -> PriceVersionOut:
    return PriceVersionOut(
        effective_from=version.effective_from,
        cost_price=_money_text(version.cost_price, cost_currency),
        list_price=None
        if version.list_price is None
        else _money_text(version.list_price, cost_currency),
        prices={c: _money_text(a, c) for c, a in sorted(version.prices.items())},
    )


def offer_out(offer: Offer, today: date | None = None) -> OfferOut:
    versions = price_versions(offer)
    current = _version_out(price_on(versions, today or _today()), offer.cost_currency)
    return OfferOut(
        id=offer.id,
        vendor=offer.vendor,
        sku_id=offer.sku_id,
        name=offer.name,
        description=offer.description,
        unit=offer.unit,
        service_category=offer.service_category,
        cost_price=current.cost_price,
        list_price=current.list_price,
        cost_currency=offer.cost_currency,
        prices=current.prices,
        price_history=[_version_out(v, offer.cost_currency) for v in versions],
        term=Term(offer.term),
        billing_frequency=Frequency(offer.billing_frequency),
        active=offer.active,
        created_at=offer.created_at,
        updated_at=offer.updated_at,
    )


def _offer_snapshot(offer: Offer) -> dict[str, Any]:
    return offer_out(offer).model_dump(mode="json", exclude={"created_at", "updated_at"})


def _prices_text(prices: dict[str, Decimal]) -> dict[str, str]:
    return {currency: format(amount, "f") for currency, amount in sorted(prices.items())}


def create_offer(session: Session, subject: AuthSubject, data: OfferCreate) -> Offer:
    subject.require_write()
    if data.billing_frequency is Frequency.ANNUAL and data.term is Term.MONTHLY:
        raise InvalidInput(
            "A monthly term cannot be billed annually: use billing_frequency monthly.",
            field="billing_frequency",
            code="invalid_billing_frequency",
        )
    offer = Offer(
        msp_id=subject.msp_id,
        vendor=data.vendor.value,
        sku_id=data.sku_id.strip(),
        name=data.name,
        description=data.description,
        unit=data.unit,
        service_category=data.service_category,
        cost_price=data.cost_price,
        list_price=data.list_price,
        cost_currency=data.cost_currency,
        prices=_prices_text(data.prices),
        term=data.term.value,
        billing_frequency=data.billing_frequency.value,
        active=data.active,
    )
    try:
        with session.begin_nested():
            session.add(offer)
            session.flush()
    except IntegrityError:
        raise Conflict(
            f"An offer for {data.vendor.value} SKU {data.sku_id!r} with a {data.term.value} "
            f"term billed {data.billing_frequency.value} already exists.",
            code="offer_exists",
        ) from None
    record(
        session,
        subject,
        "catalog_offer.created",
        "catalog_offer",
        offer.id,
        before=None,
        after=_offer_snapshot(offer),
    )
    return offer


def get_offer(session: Session, subject: AuthSubject, offer_id: str) -> Offer:
    offer = session.scalar(
        select(Offer).where(Offer.id == offer_id, Offer.msp_id == subject.msp_id)
    )
    if offer is None:
        raise NotFound(f"No catalogue offer {offer_id!r}.", code="offer_not_found")
    return offer


def list_offers(
    session: Session,
    subject: AuthSubject,
    *,
    active: bool | None,
    vendor: str | None,
    cursor: str | None,
    limit: int,
) -> Page[Offer]:
    stmt = select(Offer).where(Offer.msp_id == subject.msp_id)
    if active is not None:
        stmt = stmt.where(Offer.active.is_(active))
    if vendor is not None:
        stmt = stmt.where(Offer.vendor == vendor)
    return paginate(session, stmt, Offer.id, cursor, limit)


def update_offer(session: Session, subject: AuthSubject, offer_id: str, data: OfferUpdate) -> Offer:
    subject.require_write()
    offer = get_offer(session, subject, offer_id)
    before = _offer_snapshot(offer)
    values = data.model_dump(exclude_unset=True)
    effective = values.pop("prices_from", None)
    priced = {k: values.pop(k) for k in _PRICE_FIELDS if k in values}
    for name, value in values.items():
        if value is None:
            raise InvalidInput(f"{name} cannot be null.", field=name)
        setattr(offer, name, value)
    if priced:
        _new_prices(session, subject, offer, priced, effective or _today())
    elif effective is not None:
        raise InvalidInput(
            "prices_from dates a price change: send cost_price, list_price or prices with it.",
            field="prices_from",
        )
    session.flush()
    after = _offer_snapshot(offer)
    if after == before:
        return offer
    record(
        session,
        subject,
        "catalog_offer.updated",
        "catalog_offer",
        offer.id,
        before=before,
        after=after,
    )
    if any(before[k] != after[k] for k in ("price_history", "name", "service_category")):
        follow_up.pricing_changed(session, subject.msp_id)
    return offer


_PRICE_FIELDS = ("cost_price", "list_price", "prices")


def _new_prices(
    session: Session,
    subject: AuthSubject,
    offer: Offer,
    priced: dict[str, Any],
    effective: date,
) -> None:
    """A new price version from ``effective`` on (replacing one dated the same day)."""
    for name in ("cost_price", "prices"):
        if name in priced and priced[name] is None:
            raise InvalidInput(f"{name} cannot be null.", field=name)
    if offer.prices_from is not None and effective < offer.prices_from:
        raise Conflict(
            f"A price change already takes effect on {offer.prices_from}: date this one on or "
            "after it.",
            code="later_price_change_exists",
        )
    if effective < _today():
        _offer_not_invoiced(session, subject, offer, effective)
    if offer.prices_from != effective:
        offer.earlier_prices = [
            *(offer.earlier_prices or []),
            {
                "from": offer.prices_from.isoformat() if offer.prices_from else None,
                "cost_price": format(offer.cost_price, "f"),
                "list_price": None if offer.list_price is None else format(offer.list_price, "f"),
                "prices": dict(offer.prices),
            },
        ]
        offer.prices_from = effective
    if "cost_price" in priced:
        offer.cost_price = priced["cost_price"]
    if "list_price" in priced:
        offer.list_price = priced["list_price"]
    if "prices" in priced:
        offer.prices = _prices_text(priced["prices"])


def _offer_not_invoiced(
    session: Session, subject: AuthSubject, offer: Offer, effective: date
) -> None:
    """A backdated price must not reach a period already invoiced to a subscriber."""
    closed = session.scalar(
        select(ClosedPeriod.period)
        .join(LicenceSubscription, LicenceSubscription.customer_id == ClosedPeriod.customer_id)
        .where(
            ClosedPeriod.msp_id == subject.msp_id,
            LicenceSubscription.msp_id == subject.msp_id,
            LicenceSubscription.offer_id == offer.id,
            ClosedPeriod.period >= _month(effective),
        )
        .limit(1)
    )
    if closed is not None:
        raise Conflict(
            f"{effective} falls in a period already invoiced to a subscriber ({closed}): "
            "date the price change in an open period.",
            code="period_closed",
        )


# --- subscriptions -------------------------------------------------------------------------


def _quantities(
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
    seats = _quantities(session, subscription.msp_id, [subscription.id])[subscription.id]
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
    customer = customers.get(session, subject, customer_id)
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
    customer = customers.get(session, subject, customer_id)
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
    customer = customers.get(session, subject, customer_id)
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
    seats = _quantities(session, subscription.msp_id, [subscription.id])[subscription.id]
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


# --- rating --------------------------------------------------------------------------------


def _period_bounds(period: str) -> tuple[date, date]:
    year, month = (int(p) for p in period.split("-"))
    return date(year, month, 1), date(year, month, calendar.monthrange(year, month)[1])


def _month(day: date) -> str:
    return f"{day.year:04d}-{day.month:02d}"


def billed_periods(session: Session, msp_id: str, today: date | None = None) -> set[str]:
    """Months up to the current one in which an MSP's subscriptions run, less the
    customer-periods already invoiced: rating must cover them even without usage."""
    current = _month(today or _today())
    closed = {
        (customer_id, closed_period)
        for customer_id, closed_period in session.execute(
            select(ClosedPeriod.customer_id, ClosedPeriod.period).where(
                ClosedPeriod.msp_id == msp_id
            )
        )
    }
    periods: set[str] = set()
    rows = session.execute(
        select(
            LicenceSubscription.customer_id,
            LicenceSubscription.start_date,
            LicenceSubscription.last_day,
        ).where(LicenceSubscription.msp_id == msp_id)
    )
    for customer_id, start, last_day in rows:
        month = start.replace(day=1)
        last = min(current, _month(last_day)) if last_day else current
        while _month(month) <= last:
            if (customer_id, _month(month)) not in closed:
                periods.add(_month(month))
            month = proration.add_months(month, 1)
    return periods


def _line_key(*parts: object) -> str:
    text = "\x1f".join(str(p) for p in (KIND, *parts))
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def _sell_currency(prices: dict[str, Decimal], cost_currency: str, currency: str) -> str:
    """The customer's currency when the offer has a price in it; else the price in the
    offer's cost currency, else in the first priced currency (A–Z), converted."""
    if currency in prices:
        return currency
    if cost_currency in prices:
        return cost_currency
    return min(prices)


class _Rates:
    """Exchange rates by the MSP's policy, looked up once per pair and charge day."""

    def __init__(self, session: Session, msp_id: str, period_end: date) -> None:
        self._session, self._msp_id, self._period_end = session, msp_id, period_end
        self._cache: dict[tuple[str, str, date], tuple[Decimal, date]] = {}

    def rate(self, source: str, target: str, day: date) -> tuple[Decimal, date]:
        if source == target:
            return Decimal(1), day
        key = (source, target, day)
        if key not in self._cache:
            found = fx.convert(
                self._session,
                self._msp_id,
                Decimal(1),
                source,
                target,
                day,
                period_end=self._period_end,
            )
            self._cache[key] = (found.rate, found.rate_date)
        return self._cache[key]


def _describe(offer: Offer, piece: Piece, ended_by_cancel: bool) -> str:
    span = f"{piece.covered.start} to {piece.covered.end}"
    share = f"{piece.covered.days}/{piece.period.days} days"
    plural = abs(piece.seats) != 1 and not offer.unit.endswith("s")
    unit = offer.unit + ("s" if plural else "")
    if piece.kind is PieceKind.CHARGE:
        return f"{offer.name}: {piece.seats} {unit}, {span} ({share})"
    if piece.kind is PieceKind.CHANGE:
        return f"{offer.name}: {piece.seats:+d} {unit} from {span} ({share})"
    reason = "cancelled" if ended_by_cancel else "ends"
    return f"{offer.name}: {reason} after {piece.on}, {piece.seats:+d} {unit} {span} ({share})"


def _wide_product(amount: Decimal, rate: Decimal) -> Decimal:
    return proration.WIDE.multiply(amount, rate).quantize(
        proration.AMOUNT_PLACES, context=proration.WIDE
    )


def _line(
    offer: Offer,
    version: PriceVersion,
    subscription: LicenceSubscription,
    piece: Piece,
    currency: str,
    rates: _Rates,
) -> dict[str, Any]:
    sell_ccy = _sell_currency(version.prices, offer.cost_currency, currency)
    cost = piece.amount(version.cost_price)
    list_price = version.list_price if version.list_price is not None else version.cost_price
    list_cost = piece.amount(list_price)
    sell = piece.amount(version.prices[sell_ccy])
    cost_rate, cost_rate_date = rates.rate(offer.cost_currency, currency, piece.on)
    sell_rate, sell_rate_date = rates.rate(sell_ccy, currency, piece.on)
    used = {
        (d.isoformat(), format(r, "f"))
        for (s, d, r) in (
            (offer.cost_currency, cost_rate_date, cost_rate),
            (sell_ccy, sell_rate_date, sell_rate),
        )
        if s != currency
    }
    return {
        "line_key": _line_key(subscription.id, piece.kind.value, piece.on.isoformat()),
        "kind": KIND,
        "vendor": offer.vendor,
        "partner_account_id": None,
        "sub_account_id": subscription.id,
        "service_category": offer.service_category,
        "service_name": offer.name,
        "charge_category": "Purchase",
        "pricing_unit": offer.unit,
        "description": _describe(offer, piece, subscription.cancelled_at is not None),
        "quantity": Decimal(piece.seats),
        "billing_currency": offer.cost_currency,
        "cost": cost,
        "list_cost": list_cost,
        "sell": sell if sell_ccy == offer.cost_currency else Decimal(0),
        "currency": currency,
        "cost_local": _wide_product(cost, cost_rate),
        "list_local": _wide_product(list_cost, cost_rate),
        "sell_local": _wide_product(sell, sell_rate),
        "fx_rates": [{"date": d, "rate": r} for d, r in sorted(used)],
        "rule_ids": [],
        "first_day": piece.covered.start.isoformat(),
        "last_day": piece.covered.end.isoformat(),
    }


def add_licence_lines(
    session: Session,
    msp_id: str,
    period: str,
    rated: Sequence[Customer],
    new_lines: dict[str, dict[str, dict[str, Any]]],
) -> dict[str, str]:
    """Add each customer's licence charge lines of ``period`` to ``new_lines`` (customer id
    → line key → line, as rating writes them; customers whose period is closed too, so that
    late-data adjustments compare like with like). Returns customer id → error for customers
    whose lines cannot be priced (a missing exchange rate).

    Each piece is priced with the offer's price version in force on the day it is charged."""
    by_id = {c.id: c for c in rated}
    if not by_id:
        return {}
    start, end = _period_bounds(period)
    rows = session.execute(
        select(LicenceSubscription, Offer)
        .join(Offer, Offer.id == LicenceSubscription.offer_id)
        .where(
            LicenceSubscription.msp_id == msp_id,
            Offer.msp_id == msp_id,
            LicenceSubscription.customer_id.in_(list(by_id)),
            LicenceSubscription.start_date <= end,
        )
        .order_by(LicenceSubscription.id)
    ).all()
    seats = _quantities(session, msp_id, [s.id for s, _ in rows])
    versions = {offer.id: price_versions(offer) for _, offer in rows}
    rates = _Rates(session, msp_id, end)
    errors: dict[str, str] = {}
    for subscription, offer in rows:
        customer = by_id[subscription.customer_id]
        if customer.id in errors:
            continue
        found = proration.pieces(
            start=subscription.start_date,
            last_day=subscription.last_day,
            seats=seats[subscription.id],
            term=Term(offer.term),
            frequency=Frequency(offer.billing_frequency),
            until=end,
        )
        try:
            lines = [
                _line(
                    offer,
                    price_on(versions[offer.id], piece.on),
                    subscription,
                    piece,
                    customer.currency,
                    rates,
                )
                for piece in found
                if piece.on >= start
            ]
        except InvalidInput as exc:
            errors[customer.id] = f"{offer.name} ({subscription.id}): {exc.detail}"
            continue
        new_lines.setdefault(customer.id, {}).update({line["line_key"]: line for line in lines})
    return errors
