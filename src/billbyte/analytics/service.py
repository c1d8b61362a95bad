"""Per-customer analytics over the customer's own usage lines and rated charges.

Reads the current slices (vectorised, attributed by ``customers.mapping`` exactly as rating
attributes them) for the shape of spend, and the charge lines for what the customer pays.
``by_vendor`` and ``by_service`` are breakdowns: they list every vendor and service and add
up to ``total``. ``top_resources`` is a ranking (the ten costliest resources), not a
breakdown.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

import polars as pl
from sqlalchemy import select
from sqlalchemy.orm import Session

from billbyte.audit.models import AuditEvent
from billbyte.charges.models import ChargeLine
from billbyte.credit.models import CreditEvent
from billbyte.customers import mapping
from billbyte.customers import repository as customers
from billbyte.kit.money import allocate
from billbyte.kit.periods import Period, validate_period
from billbyte.runtime import Runtime
from billbyte.tenancy.auth import AuthSubject
from billbyte.usage import service as usage

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
    validate_period(period)
    customer = customers.get_customer(session, subject.msp_id, customer_id)
    lines = list(
        session.scalars(
            select(ChargeLine).where(
                ChargeLine.customer_id == customer.id, ChargeLine.period == period
            )
        )
    )
    currency = lines[0].currency if lines else customer.currency
    by_vendor: dict[str, Decimal] = {}
    by_service: dict[str, Decimal] = {}
    for line in lines:
        by_vendor[line.vendor] = by_vendor.get(line.vendor, Decimal(0)) + line.sell_local
        name = line.service_name or line.description
        by_service[name] = by_service.get(name, Decimal(0)) + line.sell_local
    total = sum(by_vendor.values(), Decimal(0))

    usage_frame = _customer_usage(runtime, session, subject, customer.id, period)
    daily: list[dict[str, Any]] = []
    top: list[dict[str, Any]] = []
    if usage_frame is not None:
        per_day = (
            usage_frame.group_by(
                pl.col("charge_period_start").dt.date().alias("day"), "billing_currency"
            )
            .agg(pl.col("billed_cost").sum())
            .sort("day")
            .collect()
        )
        daily = [
            {"day": d.isoformat(), "currency": c, "cost": _text(v)}
            for d, c, v in per_day.iter_rows()
        ]
        resources = (
            usage_frame.filter(pl.col("resource_id").is_not_null())
            .group_by("resource_id", "service_name", "billing_currency")
            .agg(pl.col("billed_cost").sum())
            .sort("billed_cost", descending=True)
            .head(10)
            .collect()
        )
        top = [
            {"resource_id": r, "service_name": s, "currency": c, "cost": _text(v)}
            for r, s, c, v in resources.iter_rows()
        ]
    month = Period.parse(period)
    start, end = month.first_day, month.last_day
    forecast = _forecast(total, daily, start, end, today or date.today())
    anomalies = _anomalies(daily)
    events = _recent_events(session, subject, customer.id)
    # Rounded like the charges (largest remainder), so the parts add up to the total.
    vendors = sorted(by_vendor.items(), key=lambda kv: (-kv[1], kv[0]))
    services = sorted(by_service.items(), key=lambda kv: (-kv[1], kv[0]))
    vendor_amounts, rounded_total = allocate(
        [v for _, v in vendors], currency, [k for k, _ in vendors]
    )
    service_amounts, _ = allocate([v for _, v in services], currency, [k for k, _ in services])
    return {
        "object": "customer_analytics",
        "customer_id": customer.id,
        "period": period,
        "currency": currency,
        "total": _text(rounded_total),
        "by_vendor": [
            {"vendor": k, "amount": _text(a)}
            for (k, _), a in zip(vendors, vendor_amounts, strict=True)
        ],
        # Every service, largest first: a cut list would no longer add up to the total.
        "by_service": [
            {"service": k, "amount": _text(a)}
            for (k, _), a in zip(services, service_amounts, strict=True)
        ],
        "daily_cost": daily,
        "top_resources": top,
        "forecast": forecast,
        "anomalies": anomalies,
        "recent_events": events,
    }


def _customer_usage(
    runtime: Runtime, session: Session, subject: AuthSubject, customer_id: str, period: str
) -> pl.LazyFrame | None:
    links = mapping.links_frame(session, subject.msp_id)
    # A customer's lines can only be under a partner account where it has a link.
    partner_accounts = set(
        links.filter(pl.col("customer_id") == customer_id)["partner_account_id"].to_list()
    )
    if not partner_accounts:
        return None
    slices = usage.current_slices(session, subject, period, None)
    slices = [s for s in slices if s.partner_account_id in partner_accounts]
    frame = usage.scan_slices(runtime.settings.usage_store_dir, slices)
    if frame is None:
        return None
    # Attributed with every link of the MSP, as rating does, then narrowed to this customer:
    # with only its own links, a project linked to another customer under this customer's
    # billing account would be counted here as well as there.
    return mapping.map_to_customers(frame, links, only=[customer_id])


def _forecast(
    total: Decimal, daily: list[dict[str, Any]], start: date, end: date, today: date
) -> dict[str, Any]:
    """Linear run-rate: spend so far divided by the days with data, times the month."""
    days_in_period = (end - start).days + 1
    days_seen = len({d["day"] for d in daily}) or 0
    if not days_seen or total == 0:
        return {"method": "run_rate", "amount": _text(total), "days_with_data": days_seen}
    projected = total / days_seen * days_in_period if today <= end else total
    return {
        "method": "run_rate",
        "amount": _text(projected.quantize(Decimal("0.01"))),
        "days_with_data": days_seen,
        "days_in_period": days_in_period,
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
