"""The pricing pages' data: plans and rules through pricing's service (the API's functions)
and the effect of a change on a past period through rating's plan preview (the function
``GET /v1/price-plans/{id}/preview`` calls), run before and after the change inside one
unit of work that is rolled back — nothing is saved until the person presses Save."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.datastructures import FormData

from billbyte.auth.subject import AuthSubject
from billbyte.console.admin_views import validated
from billbyte.console.common import text
from billbyte.customers.models import Customer
from billbyte.kit.errors import InvalidInput, NotFound
from billbyte.kit.money import round_money
from billbyte.kit.pagination import MAX_LIMIT
from billbyte.kit.periods import Period, parse_period
from billbyte.kit.vendors import Vendor
from billbyte.pricing import service
from billbyte.pricing.models import PricePlan
from billbyte.pricing.rules import Adjustment, Basis
from billbyte.pricing.schemas import PricePlanIn, PricePlanOut, PriceRuleIn, PriceRuleOut
from billbyte.rating import compute, preview
from billbyte.runtime import Runtime
from billbyte.web import charts

RULE_FIELDS = (
    "name",
    "vendor",
    "service_category",
    "service_name",
    "sku_id",
    "region_id",
    "charge_category",
    "basis",
    "adjustment",
    "value",
    "currency",
    "tiers",
    "effective_from",
    "effective_to",
)
VENDORS = [(v.value, v.value) for v in Vendor]
ADJUSTMENTS = [(a.value, a.value.replace("_", " ")) for a in Adjustment]
BASES = [(b.value, b.value) for b in Basis]
CHARGE_CATEGORIES = [(c, c) for c in ("Usage", "Purchase", "Tax", "Credit", "Adjustment")]


def last_month(today: date) -> str:
    return str(Period.of(today).add_months(-1))


def plans(session: Session, subject: AuthSubject) -> list[PricePlanOut]:
    page = service.list_plans(session, subject, cursor=None, limit=MAX_LIMIT)
    return [service.plan_out(session, plan) for plan in page.items]


def plan(session: Session, subject: AuthSubject, plan_id: str) -> PricePlanOut:
    return service.plan_out(session, service.get_plan(session, subject, plan_id))


def plan_rule(session: Session, subject: AuthSubject, rule_id: str) -> PriceRuleOut:
    """A plan's rule (a customer's own rules are edited on the customer's page)."""
    rule = service.get_rule(session, subject, rule_id)
    if rule.plan_id is None:
        raise NotFound(f"No price rule {rule_id!r}.", code="price_rule_not_found")
    return PriceRuleOut.model_validate(rule)


def create_plan(session: Session, subject: AuthSubject, form: FormData) -> PricePlan:
    data = validated(
        PricePlanIn,
        {
            "name": text(form, "name"),
            "description": text(form, "description"),
            "is_default": text(form, "is_default") == "yes",
        },
    )
    return service.create_plan(session, subject, data)


def _tiers(value: str) -> list[dict[str, str | None]] | None:
    """Tiers typed one per line as ``up_to: percent`` (the last line ``: percent``)."""
    if not value:
        return None
    tiers: list[dict[str, str | None]] = []
    for number, line in enumerate(value.splitlines()[:50], start=1):
        if not line.strip():
            continue
        up_to, colon, percent = line.partition(":")
        if not colon:
            raise InvalidInput(
                f"tiers line {number}: write 'up to: percent', e.g. '1000: 10' or ': 5'.",
                field="tiers",
            )
        tiers.append({"up_to": up_to.strip() or None, "percent": percent.strip()})
    return tiers or None


def rule_values(form: FormData) -> dict[str, str]:
    """The rule form as typed (to show it again)."""
    return {name: text(form, name) for name in RULE_FIELDS}


def rule_values_of(rule: PriceRuleOut) -> dict[str, str]:
    values = {name: "" for name in RULE_FIELDS}
    for name in RULE_FIELDS:
        current = getattr(rule, name)
        if name == "tiers":
            values[name] = "\n".join(f"{t['up_to'] or ''}: {t['percent']}" for t in (current or []))
        elif name == "value":
            values[name] = "" if current is None else format(current, "f")
        elif current is not None:
            values[name] = str(current)
    return values


def rule_input(values: dict[str, str]) -> PriceRuleIn:
    """The rule form checked exactly as the API checks a rule (``PriceRuleIn``)."""
    data: dict[str, Any] = {"name": values.get("name", "")}
    for name in RULE_FIELDS:
        if name in ("name", "tiers"):
            continue
        if values.get(name):
            data[name] = values[name]
    tiers = _tiers(values.get("tiers", ""))
    if tiers is not None:
        data["tiers"] = tiers
    data.setdefault("adjustment", "")
    return validated(PriceRuleIn, data)


def add_rule(session: Session, subject: AuthSubject, plan_id: str, data: PriceRuleIn) -> None:
    service.add_rule(session, subject, plan_id, data)


def replace_rule(session: Session, subject: AuthSubject, rule_id: str, data: PriceRuleIn) -> str:
    """The plan the rule belongs to."""
    plan_rule(session, subject, rule_id)
    return service.replace_rule(session, subject, rule_id, data).plan_id or ""


def delete_rule(session: Session, subject: AuthSubject, rule_id: str) -> str:
    plan_id = plan_rule(session, subject, rule_id).plan_id or ""
    service.delete_rule(session, subject, rule_id)
    return plan_id


@dataclass
class Row:
    customer_id: str
    customer: str
    currency: str
    before: Decimal | None
    after: Decimal | None
    cost: Decimal

    @property
    def change(self) -> Decimal:
        return (self.after or Decimal(0)) - (self.before or Decimal(0))


@dataclass
class Detail:
    """One vendor and service of a customer, before and after (each rounded on its own)."""

    customer: str
    vendor: str
    service: str
    currency: str
    before: Decimal
    after: Decimal

    @property
    def change(self) -> Decimal:
        return self.after - self.before


@dataclass
class Comparison:
    period: str
    rows: list[Row] = field(default_factory=list)
    details: list[Detail] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    charts: list[tuple[str, dict[str, Any]]] = field(default_factory=list)


Grain = dict[tuple[str, str, str], tuple[str, Decimal]]


def _by_service(
    runtime: Runtime, session: Session, subject: AuthSubject, plan_id: str, period: str
) -> Grain:
    """What the plan charges each customer per vendor and service: the pricing run the
    preview makes (``rating.compute.price_period`` with the plan), kept below the total."""
    selected = list(
        session.scalars(
            select(Customer).where(Customer.msp_id == subject.msp_id).order_by(Customer.id)
        )
    )
    priced = compute.price_period(
        runtime, session, subject.msp_id, period, selected, plan_id=plan_id
    )
    grain: Grain = {}
    if priced is None or priced.missing:
        return grain
    for customer_id, lines in priced.lines.items():
        for line in lines.values():
            key = (customer_id, line.vendor, line.service_name or line.description)
            _, sum_so_far = grain.get(key, (line.currency, Decimal(0)))
            grain[key] = (line.currency, sum_so_far + line.sell_local)
    return grain


def _amounts(result: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["customer_id"]: c for c in result.get("customers", [])}


def compare(
    runtime: Runtime,
    subject: AuthSubject,
    plan_id: str,
    period: str,
    change: Callable[[Session], object],
    colour: str,
) -> Comparison:
    """The plan's preview of ``period`` before and after ``change`` (which the service
    validates and role-checks as for saving); the change is rolled back."""
    period = str(parse_period(period))
    with runtime.uow() as uow:  # never committed: leaving the block rolls the change back
        session = uow.session
        before = preview.preview(runtime, session, subject, plan_id, period, None)
        detail_before = _by_service(runtime, session, subject, plan_id, period)
        change(session)
        session.flush()
        after = preview.preview(runtime, session, subject, plan_id, period, None)
        detail_after = _by_service(runtime, session, subject, plan_id, period)
        names = {
            customer_id: name
            for customer_id, name in session.execute(
                select(Customer.id, Customer.name).where(Customer.msp_id == subject.msp_id)
            )
        }
    first, second = _amounts(before), _amounts(after)
    result = Comparison(
        period=period, errors=sorted({*before.get("errors", []), *after.get("errors", [])})
    )
    for customer_id in sorted(set(first) | set(second), key=lambda c: names.get(c, c)):
        line = second.get(customer_id) or first[customer_id]
        result.rows.append(
            Row(
                customer_id=customer_id,
                customer=names.get(customer_id, customer_id),
                currency=line["currency"],
                before=Decimal(first[customer_id]["amount"]) if customer_id in first else None,
                after=Decimal(second[customer_id]["amount"]) if customer_id in second else None,
                cost=Decimal(line["cost"]),
            )
        )
    for key in sorted(
        set(detail_before) | set(detail_after), key=lambda k: (names.get(k[0], k[0]), k[1], k[2])
    ):
        currency = (detail_after.get(key) or detail_before[key])[0]
        result.details.append(
            Detail(
                customer=names.get(key[0], key[0]),
                vendor=key[1],
                service=key[2],
                currency=currency,
                before=round_money(detail_before.get(key, (currency, Decimal(0)))[1], currency),
                after=round_money(detail_after.get(key, (currency, Decimal(0)))[1], currency),
            )
        )
    for currency in sorted({row.currency for row in result.rows}):
        rows = [row for row in result.rows if row.currency == currency]
        labels = [row.customer for row in rows]
        spec = charts.bars(
            f"Before and after ({currency})",
            labels,
            [row.before or Decimal(0) for row in rows],
            currency,
            colour,
        )
        after_spec = charts.bars(
            "", labels, [row.after or Decimal(0) for row in rows], currency, colour
        )
        spec["data"][0]["name"] = "Before"
        after_spec["data"][0]["name"] = "After"
        spec["data"].append(after_spec["data"][0])
        spec["layout"]["barmode"] = "group"
        result.charts.append((f"preview-{currency.lower()}", spec))
    return result


def rule_change(
    subject: AuthSubject, plan_id: str, rule_id: str | None, data: PriceRuleIn
) -> Callable[[Session], object]:
    if rule_id is None:
        return lambda session: service.add_rule(session, subject, plan_id, data)
    return lambda session: service.replace_rule(session, subject, rule_id, data)
