"""Reads of price plans and rules for other features (they never go through
``pricing.service``)."""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.orm import Session

from billbyte.kit.errors import InvalidInput
from billbyte.kit.repository import get_owned
from billbyte.pricing.models import PricePlan, PriceRule
from billbyte.pricing.rules import Adjustment, Basis, Rule, Tier


def get_plan(session: Session, msp_id: str, plan_id: str) -> PricePlan:
    """The MSP's price plan, or ``NotFound`` (``price_plan_not_found``)."""
    return get_owned(
        session, PricePlan, msp_id, plan_id, what="price plan", code="price_plan_not_found"
    )


def default_plan_id(session: Session, msp_id: str) -> str | None:
    return session.scalar(
        select(PricePlan.id).where(PricePlan.msp_id == msp_id, PricePlan.is_default.is_(True))
    )


def rules_for_msp(session: Session, msp_id: str) -> list[Rule]:
    """Every rule of the MSP (plans' and customers'), as the rating engine's plain rules."""
    rows = session.scalars(select(PriceRule).where(PriceRule.msp_id == msp_id))
    return [to_rule(r) for r in rows]


def to_rule(row: PriceRule) -> Rule:
    scope = {
        name: getattr(row, name)
        for name in (
            "vendor",
            "partner_account_id",
            "service_category",
            "service_name",
            "sku_id",
            "region_id",
            "charge_category",
        )
        if getattr(row, name)
    }
    tiers = tuple(
        Tier(
            up_to=None if t["up_to"] is None else Decimal(t["up_to"]), percent=Decimal(t["percent"])
        )
        for t in (row.tiers or [])
    )
    if row.adjustment not in {a.value for a in Adjustment}:
        raise InvalidInput(f"Rule {row.id} has an unknown adjustment {row.adjustment!r}.")
    return Rule(
        id=row.id,
        adjustment=Adjustment(row.adjustment),
        basis=Basis(row.basis),
        value=row.value,
        currency=row.currency,
        customer_id=row.customer_id,
        plan_id=row.plan_id,
        scope=scope,
        tiers=tiers,
        effective_from=row.effective_from,
        effective_to=row.effective_to,
    )
