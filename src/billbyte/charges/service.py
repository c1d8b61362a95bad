from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from billbyte import __version__
from billbyte.auth.subject import AuthSubject
from billbyte.charges.models import ChargeChange, ChargeLine, ClosedPeriod, RatingState
from billbyte.charges.schemas import (
    ChangeFeedOut,
    ChargeChangeOut,
    ChargeGroup,
    ChargeLineOut,
    ChargesOut,
    FxRateUsed,
    MarginReportOut,
    MarginRow,
)
from billbyte.customers import repository as customers
from billbyte.kit.errors import InvalidInput
from billbyte.kit.money import allocate, format_amount, round_money
from billbyte.kit.pagination import parse_sequence_cursor
from billbyte.kit.periods import validate_period


def _text(value: Decimal) -> str:
    return format_amount(value)


@dataclass(frozen=True)
class ChargesState:
    """What, besides the lines themselves, a customer's charges of a period say: read in one
    query, and enough to tell whether the lines changed (``last_change``)."""

    msp_id: str
    customer_id: str
    customer_currency: str
    period: str
    last_change: int | None  # the period's last change-feed entry: every line write has one
    closed: bool
    rating_status: str | None
    rating_message: str | None
    rated_at: datetime | None
    usage_lines: int | None


def charges_state(
    session: Session, subject: AuthSubject, customer_id: str, period: str
) -> ChargesState:
    """The customer's (404 for another MSP's) charges state of ``period``."""
    validate_period(period)
    customer = customers.get_customer(session, subject.msp_id, customer_id)

    def rating(column: Any) -> Any:
        return (
            select(column)
            .where(RatingState.customer_id == customer.id, RatingState.period == period)
            .scalar_subquery()
        )

    row = session.execute(
        select(
            select(func.max(ChargeChange.seq))
            .where(ChargeChange.customer_id == customer.id, ChargeChange.period == period)
            .scalar_subquery(),
            select(ClosedPeriod.id)
            .where(ClosedPeriod.customer_id == customer.id, ClosedPeriod.period == period)
            .scalar_subquery(),
            rating(RatingState.status),
            rating(RatingState.message),
            rating(RatingState.rated_at),
            rating(RatingState.usage_lines),
        )
    ).one()
    return ChargesState(
        msp_id=subject.msp_id,
        customer_id=customer.id,
        customer_currency=customer.currency,
        period=period,
        last_change=row[0],
        closed=row[1] is not None,
        rating_status=row[2],
        rating_message=row[3],
        rated_at=row[4],
        usage_lines=row[5],
    )


def charges_etag(state: ChargesState) -> str:
    """A strong ETag of the charges body: it depends on nothing but the state (the lines
    through ``last_change``: the ledger records a change for every line it writes, and an
    MSP's changes commit in order) and this version's way of writing it."""
    parts = [
        __version__,
        state.msp_id,
        state.customer_id,
        state.customer_currency,
        state.period,
        state.last_change,
        state.closed,
        state.rating_status,
        state.rating_message,
        state.rated_at.isoformat() if state.rated_at else None,
        state.usage_lines,
    ]
    digest = hashlib.sha256(json.dumps(parts).encode()).hexdigest()[:32]
    return f'"{digest}"'


def customer_charges(
    session: Session, subject: AuthSubject, customer_id: str, period: str
) -> ChargesOut:
    return charges_body(session, charges_state(session, subject, customer_id, period))


def charges_body(session: Session, state: ChargesState) -> ChargesOut:
    period = state.period
    lines = list(
        session.scalars(
            select(ChargeLine)
            .where(
                ChargeLine.customer_id == state.customer_id,
                ChargeLine.msp_id == state.msp_id,
                ChargeLine.period == period,
            )
            .order_by(ChargeLine.vendor, ChargeLine.service_name, ChargeLine.line_key)
        )
    )
    # The lines' own currency: after a change of the customer's currency they stay in the
    # old one until re-rated (or for good, in a closed period).
    currency = lines[0].currency if lines else state.customer_currency
    amounts, total = allocate(
        [line.sell_local for line in lines], currency, [line.line_key for line in lines]
    )
    costs, cost_total = allocate(
        [line.cost_local for line in lines], currency, [line.line_key for line in lines]
    )
    groups: dict[tuple[str, str | None], list[ChargeLineOut]] = defaultdict(list)
    for line, amount, cost in zip(lines, amounts, costs, strict=True):
        groups[(line.vendor, line.service_name)].append(
            ChargeLineOut(
                line_key=line.line_key,
                kind=line.kind,
                vendor=line.vendor,
                partner_account_id=line.partner_account_id,
                sub_account_id=line.sub_account_id,
                service_category=line.service_category,
                service_name=line.service_name,
                charge_category=line.charge_category,
                description=line.description,
                quantity=_text(line.quantity),
                unit=line.pricing_unit,
                billing_currency=line.billing_currency,
                cost=_text(round_money(line.cost, line.billing_currency)),
                list_cost=_text(round_money(line.list_cost, line.billing_currency)),
                currency=currency,
                amount=_text(amount),
                amount_exact=_text(line.sell_local),
                cost_local=_text(cost),
                margin=_text(amount - cost),
                fx_rates=[FxRateUsed(date=r["date"], rate=r["rate"]) for r in line.fx_rates],
                service_period={"start": line.first_day, "end": line.last_day},
                rule_ids=list(line.rule_ids or []),
            )
        )
    rated = state.rating_status is not None
    return ChargesOut(
        customer_id=state.customer_id,
        period=period,
        currency=currency,
        status="closed" if state.closed else "open",
        rating={
            "status": state.rating_status if rated else "not_rated",
            "message": state.rating_message if rated else None,
            "rated_at": state.rated_at.isoformat() if state.rated_at else None,
            "usage_lines": state.usage_lines if rated else 0,
        },
        total=_text(total),
        total_exact=_text(sum((li.sell_local for li in lines), Decimal(0))),
        cost_total=_text(cost_total),
        margin_total=_text(total - cost_total),
        groups=[
            ChargeGroup(
                vendor=vendor,
                service_name=service,
                amount=_text(sum((Decimal(li.amount) for li in items), Decimal(0))),
                lines=items,
            )
            for (vendor, service), items in groups.items()
        ],
    )


def changes(session: Session, subject: AuthSubject, after: str | None, limit: int) -> ChangeFeedOut:
    cursor = parse_sequence_cursor(after, "after")
    rows = list(
        session.scalars(
            select(ChargeChange)
            .where(ChargeChange.msp_id == subject.msp_id, ChargeChange.seq > cursor)
            .order_by(ChargeChange.seq)
            .limit(limit + 1)
        )
    )
    has_more = len(rows) > limit
    rows = rows[:limit]
    data = [
        ChargeChangeOut(
            seq=r.seq,
            cursor=str(r.seq),
            customer_id=r.customer_id,
            period=r.period,
            line_key=r.line_key,
            change=r.change,
            line=r.line,
            previous=r.previous,
            occurred_at=r.occurred_at,
        )
        for r in rows
    ]
    next_cursor = str(rows[-1].seq) if rows else (str(cursor) if cursor else None)
    return ChangeFeedOut(data=data, next_cursor=next_cursor, has_more=has_more)


_GROUPS = {"customer": "customer_id", "vendor": "vendor", "service": "service_name"}


def margin_report(
    session: Session, subject: AuthSubject, period: str, group_by: str
) -> MarginReportOut:
    validate_period(period)
    if group_by not in _GROUPS:
        raise InvalidInput(f"group_by must be one of {', '.join(_GROUPS)}.", field="group_by")
    lines = session.execute(
        select(ChargeLine, ChargeLine.currency).where(
            ChargeLine.msp_id == subject.msp_id, ChargeLine.period == period
        )
    ).all()
    sums: dict[tuple[Any, str], list[Decimal]] = defaultdict(lambda: [Decimal(0), Decimal(0)])
    for line, currency in lines:
        key = (getattr(line, _GROUPS[group_by]), currency)
        sums[key][0] += line.sell_local
        sums[key][1] += line.cost_local
    rows = []
    for (key, currency), (sell, cost) in sorted(
        sums.items(), key=lambda kv: (str(kv[0][0]), kv[0][1])
    ):
        amount, cost_r = round_money(sell, currency), round_money(cost, currency)
        percent = ((sell - cost) / sell * 100).quantize(Decimal("0.01")) if sell else None
        rows.append(
            MarginRow(
                key=key,
                currency=currency,
                amount=_text(amount),
                cost=_text(cost_r),
                margin=_text(amount - cost_r),
                margin_percent=None if percent is None else _text(percent),
            )
        )
    return MarginReportOut(period=period, group_by=group_by, rows=rows)
