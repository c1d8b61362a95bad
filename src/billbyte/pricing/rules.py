"""Rule semantics, free of the ORM and the web: precedence and tiered pricing.

Precedence is total and independent of the order rules were created in:
1. customer-level overrides beat plan rules;
2. then the more specific rule wins: more scope fields set, and on a tie the rule whose
   most specific field is narrower (SKU > service > category > region > partner account >
   vendor > charge category);
3. then the later ``effective_from``; finally the rule id, so that two identical rules
   still resolve the same way every time.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from enum import StrEnum


class Adjustment(StrEnum):
    MARKUP_PERCENT = "markup_percent"
    DISCOUNT_PERCENT = "discount_percent"
    FIXED_UNIT_PRICE = "fixed_unit_price"
    FIXED_FEE = "fixed_fee"
    TIERED_PERCENT = "tiered_percent"


class Basis(StrEnum):
    COST = "cost"
    LIST = "list"


# Narrowest first: the weight of a field is its bit in the specificity mask.
SCOPE_FIELDS = (
    "sku_id",
    "service_name",
    "service_category",
    "region_id",
    "partner_account_id",
    "vendor",
    "charge_category",
)
_WEIGHT = {name: 1 << (len(SCOPE_FIELDS) - index) for index, name in enumerate(SCOPE_FIELDS)}

# Categories passed through at cost unless a rule names the category explicitly.
PASS_THROUGH_CATEGORIES = ("Credit", "Tax", "Adjustment")


@dataclass(frozen=True)
class Tier:
    up_to: Decimal | None  # upper bound of monthly base spend; None = no bound
    percent: Decimal


@dataclass(frozen=True)
class Rule:
    id: str
    adjustment: Adjustment
    basis: Basis = Basis.COST
    value: Decimal | None = None
    currency: str | None = None
    customer_id: str | None = None
    plan_id: str | None = None
    scope: dict[str, str] = field(default_factory=dict)
    tiers: tuple[Tier, ...] = ()
    effective_from: date | None = None
    effective_to: date | None = None

    @property
    def specificity(self) -> tuple[int, int]:
        present = [name for name in SCOPE_FIELDS if self.scope.get(name)]
        return len(present), sum(_WEIGHT[name] for name in present)


def precedence_key(rule: Rule) -> tuple[int, int, int, str, str]:
    """Sort ascending: the first rule that matches a line prices it."""
    count, mask = rule.specificity
    started = (rule.effective_from or date.min).isoformat()
    return (0 if rule.customer_id else 1, -count, -mask, _invert(started), rule.id)


def _invert(text: str) -> str:
    # Later effective_from sorts first without reversing the whole tuple.
    return "".join(chr(0x10FFFF - ord(c)) for c in text)


def ordered(rules: Sequence[Rule]) -> list[Rule]:
    return sorted(rules, key=precedence_key)


def tiered_sell(base_total: Decimal, tiers: Sequence[Tier]) -> Decimal:
    """Graduated markup: each slice of the monthly base is marked up by its tier's percent.

    A negative total (net credit) is marked up by the first tier only.
    """
    if base_total <= 0:
        return base_total * (1 + tiers[0].percent / 100)
    sell = Decimal(0)
    lower = Decimal(0)
    for tier in tiers:
        upper = tier.up_to
        portion = (min(base_total, upper) if upper is not None else base_total) - lower
        if portion <= 0:
            break
        sell += portion * (1 + tier.percent / 100)
        if upper is None or base_total <= upper:
            break
        lower = upper
    return sell
