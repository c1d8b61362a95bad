from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    field_serializer,
    model_validator,
)

from billbyte.kit.money import format_amount, known_currencies
from billbyte.kit.vendors import Vendor
from billbyte.pricing.rules import Adjustment, Basis


class TierIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    up_to: Decimal | None = Field(
        default=None, gt=0, description="Upper bound of monthly spend; null = no bound."
    )
    percent: Decimal = Field(ge=-100, le=10000)


class PriceRuleIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(default="", max_length=200)
    vendor: Vendor | None = None
    partner_account_id: str | None = None
    service_category: str | None = Field(default=None, max_length=200)
    service_name: str | None = Field(default=None, max_length=200)
    sku_id: str | None = Field(default=None, max_length=200)
    region_id: str | None = Field(default=None, max_length=200)
    charge_category: str | None = Field(
        default=None, pattern="^(Usage|Purchase|Tax|Credit|Adjustment)$"
    )
    basis: Basis = Basis.COST
    adjustment: Adjustment
    value: Decimal | None = Field(
        default=None, description="Percent for markup/discount; price per pricing unit; fee."
    )
    currency: str | None = Field(default=None, description="Currency of a fixed unit price or fee.")
    tiers: list[TierIn] | None = None
    effective_from: date | None = None
    effective_to: date | None = None

    @model_validator(mode="after")
    def _consistent(self) -> PriceRuleIn:
        kind = self.adjustment
        if kind in (Adjustment.MARKUP_PERCENT, Adjustment.DISCOUNT_PERCENT):
            if self.value is None:
                raise ValueError(f"{kind} needs a value (percent)")
            if not Decimal(-100) <= self.value <= Decimal(10000):
                raise ValueError("percent must be between -100 and 10000")
            if kind == Adjustment.DISCOUNT_PERCENT and self.value > 100:
                raise ValueError("a discount cannot exceed 100 percent")
        if kind in (Adjustment.FIXED_UNIT_PRICE, Adjustment.FIXED_FEE) and (
            self.value is None or self.currency is None
        ):
            raise ValueError(f"{kind} needs a value and a currency")
        if self.currency is not None:
            code = self.currency.strip().upper()
            if code not in known_currencies():
                raise ValueError(f"unknown currency {self.currency!r}")
            self.currency = code
        if kind == Adjustment.TIERED_PERCENT:
            if not self.tiers:
                raise ValueError("tiered_percent needs tiers")
            bounds = [t.up_to for t in self.tiers]
            if bounds[-1] is not None or any(b is None for b in bounds[:-1]):
                raise ValueError("only the last tier may (and must) have up_to null")
            finite = [b for b in bounds if b is not None]
            if finite != sorted(finite) or len(set(finite)) != len(finite):
                raise ValueError("tier bounds must increase")
        elif self.tiers:
            raise ValueError("tiers are only for tiered_percent")
        if self.effective_from and self.effective_to and self.effective_to < self.effective_from:
            raise ValueError("effective_to is before effective_from")
        return self


class PriceRuleOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    object: str = "price_rule"
    plan_id: str | None
    customer_id: str | None
    name: str
    vendor: str | None
    partner_account_id: str | None
    service_category: str | None
    service_name: str | None
    sku_id: str | None
    region_id: str | None
    charge_category: str | None
    basis: str
    adjustment: str
    value: Decimal | None
    currency: str | None
    tiers: list[dict[str, Any]] | None
    effective_from: date | None
    effective_to: date | None
    created_at: datetime

    @field_serializer("value")
    def _decimal(self, value: Decimal | None) -> str | None:
        return None if value is None else format_amount(value)


class PricePlanIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    description: str = Field(default="", max_length=1000)
    is_default: StrictBool = False
    rules: list[PriceRuleIn] = Field(default_factory=list)


class PricePlanUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, min_length=1, max_length=200)
    description: str | None = Field(default=None, max_length=1000)
    is_default: StrictBool | None = None


class PricePlanOut(BaseModel):
    id: str
    object: str = "price_plan"
    name: str
    description: str
    is_default: bool
    rules: list[PriceRuleOut]
    created_at: datetime
    updated_at: datetime
