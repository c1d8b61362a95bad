"""Per-customer analytics, read from the cost rollups (``analytics.repository``).

The rollups are written with the charge lines, in the rating's transaction, so nothing
here scans usage lines. ``total``, ``by_vendor`` and ``by_service`` are the charge lines'
amounts as the charges API rounds them: the breakdowns list every vendor and service and
add up to ``total``. ``daily_cost`` is the vendor's cost (billing currency) of the rated
usage per day; ``top_resources`` is a ranking (the ten costliest resources by that cost),
not a breakdown. The forecast is ``analytics.repository.forecast_amount``, the one rule.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from billbyte.analytics import repository as rollups
from billbyte.audit.models import AuditEvent
from billbyte.auth.subject import AuthSubject
from billbyte.credit.models import CreditEvent
from billbyte.customers import repository as customers
from billbyte.kit.periods import Period, validate_period
from billbyte.runtime import Runtime

ANOMALY_FACTOR = Decimal(2)  # a day costing over twice the trailing 7-day mean


def _text(value: Decimal | None) -> str:
    text = format(value if value is not None else Decimal(0), "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text if text not in ("", "-0") else "0"


def analytics(
    runtime: Runtime,
    session: Session,
    subject: AuthSubject,
    customer_id: str,
    period: str,
    today: date | None = None,
) -> dict[str, Any]:
    """``runtime`` is unused since the rollups replaced the slice scan; the signature is
    the endpoint's."""
    del runtime
    validate_period(period)
    customer = customers.get_customer(session, subject.msp_id, customer_id)
    where = rollups.scope(session, subject.msp_id, customer.id, period)
    currency = where.currency
    vendors = rollups.breakdown(session, subject.msp_id, customer.id, period, "vendor")
    services = rollups.breakdown(session, subject.msp_id, customer.id, period, "service")
    total = sum((amount for _, amount in vendors), Decimal(0))
    daily = [
        {"day": d.isoformat(), "currency": c, "cost": _text(v)}
        for d, c, v in rollups.usage_cost_by_day(session, subject.msp_id, customer.id, period)
    ]
    top = [
        {
            "resource_id": r.resource_id,
            "service_name": r.service_name,
            "currency": r.billing_currency,
            "cost": _text(r.cost),
        }
        for r in rollups.top_resources_by_cost(session, subject.msp_id, customer.id, period)
    ]
    month = Period.parse(period)
    forecast = _forecast(
        total,
        len({d["day"] for d in daily}),
        period,
        month.first_day,
        month.last_day,
        today or date.today(),
        currency,
    )
    return {
        "object": "customer_analytics",
        "customer_id": customer.id,
        "period": period,
        "currency": currency,
        "total": _text(total),
        "by_vendor": [{"vendor": k, "amount": _text(a)} for k, a in vendors],
        # Every service, largest first: a cut list would no longer add up to the total.
        "by_service": [{"service": k, "amount": _text(a)} for k, a in services],
        "daily_cost": daily,
        "top_resources": top,
        "forecast": forecast,
        "anomalies": _anomalies(daily),
        "recent_events": _recent_events(session, subject, customer.id),
    }


def _forecast(
    total: Decimal,
    days_seen: int,
    period: str,
    start: date,
    end: date,
    today: date,
    currency: str,
) -> dict[str, Any]:
    """Linear run-rate: spend so far divided by the days with data, times the month."""
    amount = rollups.forecast_amount(total, days_seen, period, today, currency)
    if not days_seen or total == 0:
        return {"method": "run_rate", "amount": _text(total), "days_with_data": days_seen}
    return {
        "method": "run_rate",
        "amount": _text(amount),
        "days_with_data": days_seen,
        "days_in_period": (end - start).days + 1,
    }


def _anomalies(daily: list[dict[str, Any]]) -> list[dict[str, Any]]:
    found = []
    by_currency: dict[str, list[tuple[str, Decimal]]] = {}
    for item in daily:
        by_currency.setdefault(item["currency"], []).append((item["day"], Decimal(item["cost"])))
    for currency, series in by_currency.items():
        for index in range(1, len(series)):
            window = [v for _, v in series[max(0, index - 7) : index]]
            mean = sum(window, Decimal(0)) / len(window)
            day, value = series[index]
            if mean > 0 and value > mean * ANOMALY_FACTOR:
                found.append(
                    {
                        "day": day,
                        "currency": currency,
                        "cost": _text(value),
                        "trailing_mean": _text(mean.quantize(Decimal("1e-6"))),
                        "factor": _text((value / mean).quantize(Decimal("0.01"))),
                    }
                )
    return found


def _recent_events(
    session: Session, subject: AuthSubject, customer_id: str
) -> list[dict[str, Any]]:
    credit = session.scalars(
        select(CreditEvent)
        .where(CreditEvent.customer_id == customer_id, CreditEvent.msp_id == subject.msp_id)
        .order_by(CreditEvent.id.desc())
        .limit(10)
    )
    audit = session.scalars(
        select(AuditEvent)
        .where(AuditEvent.target_id == customer_id, AuditEvent.msp_id == subject.msp_id)
        .order_by(AuditEvent.id.desc())
        .limit(10)
    )
    events = [
        {
            "type": "credit.threshold_reached",
            "at": e.occurred_at.isoformat(),
            "detail": f"{e.threshold}% of {e.limit} {e.currency} ({e.action_taken})",
        }
        for e in credit
    ]
    events += [
        {"type": e.action, "at": e.occurred_at.isoformat(), "detail": e.actor} for e in audit
    ]
    return sorted(events, key=lambda e: e["at"], reverse=True)[:15]
