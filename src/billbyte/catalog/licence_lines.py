"""The licence charge lines that rating merges into each customer's open period.

Licences are charged in advance per billing period and prorated by day (``proration``,
docs/catalog.md); each piece is priced with the offer's price version in force on its day.
"""

from __future__ import annotations

import calendar
import hashlib
from collections.abc import Sequence
from datetime import date
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.orm import Session

from billbyte.catalog import proration
from billbyte.catalog.models import LicenceSubscription, Offer
from billbyte.catalog.offers import PriceVersion, price_on, price_versions
from billbyte.catalog.proration import Frequency, Piece, PieceKind, Term
from billbyte.catalog.subscriptions import seat_history
from billbyte.charges.ledger import Charge
from billbyte.charges.models import ClosedPeriod
from billbyte.customers.models import Customer
from billbyte.fx import conversion as fx
from billbyte.kit.clock import utcnow
from billbyte.kit.errors import InvalidInput
from billbyte.kit.money import format_amount

KIND = "licence"


def _today() -> date:
    return utcnow().date()


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
) -> Charge:
    sell_ccy = _sell_currency(version.prices, offer.cost_currency, currency)
    cost = piece.amount(version.cost_price)
    list_price = version.list_price if version.list_price is not None else version.cost_price
    list_cost = piece.amount(list_price)
    sell = piece.amount(version.prices[sell_ccy])
    cost_rate, cost_rate_date = rates.rate(offer.cost_currency, currency, piece.on)
    sell_rate, sell_rate_date = rates.rate(sell_ccy, currency, piece.on)
    used = {
        (d.isoformat(), format_amount(r))
        for (s, d, r) in (
            (offer.cost_currency, cost_rate_date, cost_rate),
            (sell_ccy, sell_rate_date, sell_rate),
        )
        if s != currency
    }
    return Charge(
        line_key=_line_key(subscription.id, piece.kind.value, piece.on.isoformat()),
        kind=KIND,
        vendor=offer.vendor,
        partner_account_id=None,
        sub_account_id=subscription.id,
        service_category=offer.service_category,
        service_name=offer.name,
        charge_category="Purchase",
        pricing_unit=offer.unit,
        description=_describe(offer, piece, subscription.cancelled_at is not None),
        quantity=Decimal(piece.seats),
        billing_currency=offer.cost_currency,
        cost=cost,
        list_cost=list_cost,
        sell=sell if sell_ccy == offer.cost_currency else Decimal(0),
        currency=currency,
        cost_local=_wide_product(cost, cost_rate),
        list_local=_wide_product(list_cost, cost_rate),
        sell_local=_wide_product(sell, sell_rate),
        fx_rates=tuple({"date": d, "rate": r} for d, r in sorted(used)),
        rule_ids=(),
        first_day=piece.covered.start.isoformat(),
        last_day=piece.covered.end.isoformat(),
    )


def priced_lines(
    session: Session, msp_id: str, period: str, rated: Sequence[Customer]
) -> tuple[dict[str, dict[str, Charge]], dict[str, str]]:
    """Each customer's licence charge lines of ``period`` (customer id → line key → line;
    customers whose period is closed too, so that late-data adjustments compare like with
    like), and customer id → error for customers whose lines cannot be priced (a missing
    exchange rate).

    Each piece is priced with the offer's price version in force on the day it is charged."""
    by_id = {c.id: c for c in rated}
    found_lines: dict[str, dict[str, Charge]] = {}
    if not by_id:
        return found_lines, {}
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
    seats = seat_history(session, msp_id, [s.id for s, _ in rows])
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
        found_lines.setdefault(customer.id, {}).update({line.line_key: line for line in lines})
    return found_lines, errors
