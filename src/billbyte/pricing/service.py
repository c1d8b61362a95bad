from __future__ import annotations

from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from billbyte.audit.service import record
from billbyte.jobs import follow_up
from billbyte.kit.money import format_amount
from billbyte.kit.pagination import Page, paginate
from billbyte.kit.repository import get_owned
from billbyte.partners import repository as partners
from billbyte.pricing import repository
from billbyte.pricing.models import PricePlan, PriceRule
from billbyte.pricing.schemas import (
    PricePlanIn,
    PricePlanOut,
    PricePlanUpdate,
    PriceRuleIn,
    PriceRuleOut,
)
from billbyte.tenancy.auth import AuthSubject


def plan_out(session: Session, plan: PricePlan) -> PricePlanOut:
    rules = session.scalars(
        select(PriceRule).where(PriceRule.plan_id == plan.id).order_by(PriceRule.id)
    )
    return PricePlanOut(
        id=plan.id,
        name=plan.name,
        description=plan.description,
        is_default=plan.is_default,
        rules=[PriceRuleOut.model_validate(r) for r in rules],
        created_at=plan.created_at,
        updated_at=plan.updated_at,
    )


def _rule_row(
    session: Session,
    subject: AuthSubject,
    data: PriceRuleIn,
    *,
    plan_id: str | None,
    customer_id: str | None,
) -> PriceRule:
    if data.partner_account_id:
        partners.get_account(session, subject.msp_id, data.partner_account_id)
    values = data.model_dump(exclude={"tiers"})
    values["vendor"] = data.vendor.value if data.vendor else None
    values["basis"] = data.basis.value
    values["adjustment"] = data.adjustment.value
    tiers = (
        [
            {
                "up_to": None if t.up_to is None else format_amount(t.up_to),
                "percent": format_amount(t.percent),
            }
            for t in data.tiers
        ]
        if data.tiers
        else None
    )
    rule = PriceRule(
        msp_id=subject.msp_id, plan_id=plan_id, customer_id=customer_id, tiers=tiers, **values
    )
    session.add(rule)
    return rule


def _snapshot(rule: PriceRule) -> dict[str, Any]:
    return PriceRuleOut.model_validate(rule).model_dump(mode="json", exclude={"created_at"})


def _set_default(session: Session, subject: AuthSubject, plan: PricePlan) -> None:
    session.execute(
        update(PricePlan)
        .where(PricePlan.msp_id == subject.msp_id, PricePlan.id != plan.id)
        .values(is_default=False)
    )
    session.flush()
    plan.is_default = True


def create_plan(session: Session, subject: AuthSubject, data: PricePlanIn) -> PricePlan:
    subject.require_write()
    plan = PricePlan(
        msp_id=subject.msp_id, name=data.name, description=data.description, is_default=False
    )
    session.add(plan)
    session.flush()
    if data.is_default:
        _set_default(session, subject, plan)
    for rule in data.rules:
        _rule_row(session, subject, rule, plan_id=plan.id, customer_id=None)
    session.flush()
    record(
        session,
        subject,
        "price_plan.created",
        "price_plan",
        plan.id,
        before=None,
        after=plan_out(session, plan).model_dump(mode="json", exclude={"created_at", "updated_at"}),
    )
    follow_up.pricing_changed(session, subject.msp_id)
    return plan


def get_plan(session: Session, subject: AuthSubject, plan_id: str) -> PricePlan:
    return repository.get_plan(session, subject.msp_id, plan_id)


def list_plans(
    session: Session, subject: AuthSubject, *, cursor: str | None, limit: int
) -> Page[PricePlan]:
    stmt = select(PricePlan).where(PricePlan.msp_id == subject.msp_id)
    return paginate(session, stmt, PricePlan.id, cursor, limit)


def update_plan(
    session: Session, subject: AuthSubject, plan_id: str, data: PricePlanUpdate
) -> PricePlan:
    subject.require_write()
    plan = get_plan(session, subject, plan_id)
    before = {"name": plan.name, "description": plan.description, "is_default": plan.is_default}
    changes = data.model_dump(exclude_unset=True)
    if changes.get("is_default") is True:
        _set_default(session, subject, plan)
    elif changes.get("is_default") is False:
        plan.is_default = False
    for name in ("name", "description"):
        if changes.get(name) is not None:
            setattr(plan, name, changes[name])
    session.flush()
    after = {"name": plan.name, "description": plan.description, "is_default": plan.is_default}
    if after != before:
        record(
            session,
            subject,
            "price_plan.updated",
            "price_plan",
            plan.id,
            before=before,
            after=after,
        )
        follow_up.pricing_changed(session, subject.msp_id)
    return plan


def add_rule(session: Session, subject: AuthSubject, plan_id: str, data: PriceRuleIn) -> PriceRule:
    subject.require_write()
    plan = get_plan(session, subject, plan_id)
    rule = _rule_row(session, subject, data, plan_id=plan.id, customer_id=None)
    session.flush()
    record(
        session,
        subject,
        "price_rule.created",
        "price_plan",
        plan.id,
        before=None,
        after=_snapshot(rule),
    )
    follow_up.pricing_changed(session, subject.msp_id)
    return rule


def add_customer_rule(
    session: Session, subject: AuthSubject, customer_id: str, data: PriceRuleIn
) -> PriceRule:
    """A rule for one customer; the caller (customers, which owns the route) has checked that
    the customer is the MSP's."""
    subject.require_write()
    rule = _rule_row(session, subject, data, plan_id=None, customer_id=customer_id)
    session.flush()
    record(
        session,
        subject,
        "price_rule.created",
        "customer",
        customer_id,
        before=None,
        after=_snapshot(rule),
    )
    follow_up.pricing_changed(session, subject.msp_id, customer_id=customer_id)
    return rule


def list_customer_rules(
    session: Session, subject: AuthSubject, customer_id: str
) -> list[PriceRule]:
    """The customer's own rules; the caller has checked that the customer is the MSP's."""
    return list(
        session.scalars(
            select(PriceRule)
            .where(PriceRule.customer_id == customer_id, PriceRule.msp_id == subject.msp_id)
            .order_by(PriceRule.id)
        )
    )


def get_rule(session: Session, subject: AuthSubject, rule_id: str) -> PriceRule:
    return get_owned(
        session, PriceRule, subject.msp_id, rule_id, what="price rule", code="price_rule_not_found"
    )


def replace_rule(
    session: Session, subject: AuthSubject, rule_id: str, data: PriceRuleIn
) -> PriceRule:
    subject.require_write()
    rule = get_rule(session, subject, rule_id)
    before = _snapshot(rule)
    fresh = _rule_row(session, subject, data, plan_id=rule.plan_id, customer_id=rule.customer_id)
    session.expunge(fresh)
    for name in (
        "name",
        "vendor",
        "partner_account_id",
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
    ):
        setattr(rule, name, getattr(fresh, name))
    session.flush()
    record(
        session,
        subject,
        "price_rule.updated",
        "price_plan" if rule.plan_id else "customer",
        rule.plan_id or rule.customer_id or rule.id,
        before=before,
        after=_snapshot(rule),
    )
    follow_up.pricing_changed(session, subject.msp_id, customer_id=rule.customer_id)
    return rule


def delete_rule(session: Session, subject: AuthSubject, rule_id: str) -> None:
    subject.require_write()
    rule = get_rule(session, subject, rule_id)
    record(
        session,
        subject,
        "price_rule.deleted",
        "price_plan" if rule.plan_id else "customer",
        rule.plan_id or rule.customer_id or rule.id,
        before=_snapshot(rule),
        after=None,
    )
    follow_up.pricing_changed(session, subject.msp_id, customer_id=rule.customer_id)
    session.delete(rule)
