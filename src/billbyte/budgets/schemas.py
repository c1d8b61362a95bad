from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StrictInt, field_validator

from billbyte.kit.vendors import Vendor

Threshold = Annotated[StrictInt, Field(ge=1, le=1000)]
MAX_THRESHOLDS = 20
THRESHOLDS_HELP = (
    "Percentages of the amount, whole numbers 1..1000, unique and in ascending order; each "
    "raises one alert per period when the month's spend reaches it."
)


def _no_float(value: object) -> object:
    if isinstance(value, float | bool):
        raise ValueError("amount must be a decimal string, not a JSON number")
    return value


class BudgetCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, min_length=1, max_length=200)
    amount: Decimal = Field(
        gt=0,
        allow_inf_nan=False,
        description="The monthly budget in the customer's currency (a decimal string, "
        "at most its minor unit).",
    )
    thresholds: list[Threshold] = Field(
        default_factory=lambda: [50, 80, 100],
        min_length=1,
        max_length=MAX_THRESHOLDS,
        description=THRESHOLDS_HELP,
    )
    vendor: Vendor | None = Field(
        default=None, description="Count only this vendor's charges (default: all charges)."
    )

    _amount_text = field_validator("amount", mode="before")(_no_float)


class BudgetUpdate(BaseModel):
    """Only the fields sent change; ``name`` and ``vendor`` may be set to null."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, min_length=1, max_length=200)
    amount: Decimal | None = Field(default=None, gt=0, allow_inf_nan=False)
    thresholds: list[Threshold] | None = Field(
        default=None, min_length=1, max_length=MAX_THRESHOLDS, description=THRESHOLDS_HELP
    )
    vendor: Vendor | None = None

    _amount_text = field_validator("amount", mode="before")(_no_float)


class BudgetOut(BaseModel):
    id: str
    object: str = "budget"
    customer_id: str
    name: str | None
    amount: str
    currency: str
    period: str = Field(default="monthly", description="Budgets reset every calendar month.")
    vendor: str | None
    thresholds: list[int]
    created_at: datetime
    updated_at: datetime


class BudgetListOut(BaseModel):
    object: str = "list"
    customer_id: str
    data: list[BudgetOut]


class BudgetAlertOut(BaseModel):
    id: str
    object: str = "budget_alert"
    customer_id: str
    budget_id: str
    period: str
    threshold: int
    spend: str = Field(description="The month-to-date spend that reached the threshold.")
    amount: str = Field(description="The budget's amount when it was reached.")
    currency: str
    occurred_at: datetime


class BudgetAlertListOut(BaseModel):
    object: str = "list"
    customer_id: str
    data: list[BudgetAlertOut]
