"""The MSP's catalogue of fixed-price offers and their dated price versions.

A price change may not reach into a period already invoiced to a subscriber (docs/catalog.md).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from billbyte.audit.service import record
from billbyte.catalog.models import LicenceSubscription, Offer
from billbyte.catalog.proration import Frequency, Term
from billbyte.catalog.schemas import OfferCreate, OfferOut, OfferUpdate, PriceVersionOut
from billbyte.charges.models import ClosedPeriod
from billbyte.jobs import follow_up
from billbyte.kit.clock import utcnow
from billbyte.kit.errors import Conflict, InvalidInput
from billbyte.kit.money import format_amount, quantum
from billbyte.kit.pagination import Page, paginate
from billbyte.kit.repository import get_owned
from billbyte.tenancy.auth import AuthSubject


def _today() -> date:
    return utcnow().date()


def _money_text(amount: Decimal, currency: str) -> str:
    """At least the currency's minor units (17.6 EUR → "17.60"), never fewer digits."""
    step = quantum(currency)
    exact = _plain(amount)
    return (
        format_amount(amount.quantize(step))
        if exact == exact.quantize(step)
        else format_amount(exact)
    )


def _plain(amount: Decimal) -> Decimal:
    text = format_amount(amount)
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
    return {currency: format_amount(amount) for currency, amount in sorted(prices.items())}


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
    return get_owned(
        session, Offer, subject.msp_id, offer_id, what="catalogue offer", code="offer_not_found"
    )


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
                "cost_price": format_amount(offer.cost_price),
                "list_price": None if offer.list_price is None else format_amount(offer.list_price),
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
            ClosedPeriod.period >= f"{effective.year:04d}-{effective.month:02d}",
        )
        .limit(1)
    )
    if closed is not None:
        raise Conflict(
            f"{effective} falls in a period already invoiced to a subscriber ({closed}): "
            "date the price change in an open period.",
            code="period_closed",
        )
