from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field


class FxRateUsed(BaseModel):
    date: str
    rate: str


class ChargeLineOut(BaseModel):
    line_key: str
    kind: str
    vendor: str
    partner_account_id: str | None
    sub_account_id: str | None
    service_category: str | None
    service_name: str | None
    charge_category: str | None
    description: str
    quantity: str
    unit: str | None
    billing_currency: str
    cost: str = Field(description="What the MSP pays the vendor, billing currency, rounded.")
    list_cost: str
    currency: str = Field(description="The customer's currency.")
    amount: str = Field(
        description="Sell amount in the customer's currency, rounded so that "
        "lines add up to the total."
    )
    amount_exact: str
    cost_local: str
    margin: str = Field(description="amount - cost_local, in the customer's currency.")
    fx_rates: list[FxRateUsed]
    service_period: dict[str, str | None]
    rule_ids: list[str]


class ChargeGroup(BaseModel):
    vendor: str
    service_name: str | None
    amount: str
    lines: list[ChargeLineOut]


class ChargesOut(BaseModel):
    object: str = "charges"
    customer_id: str
    period: str
    currency: str
    status: str = Field(description="open, or closed once invoiced")
    rating: dict[str, Any]
    total: str
    total_exact: str
    cost_total: str
    margin_total: str
    groups: list[ChargeGroup]


class ChargeChangeOut(BaseModel):
    seq: int
    cursor: str
    customer_id: str
    period: str
    line_key: str
    change: str
    line: dict[str, Any] | None
    previous: dict[str, Any] | None
    occurred_at: datetime


class ChangeFeedOut(BaseModel):
    object: str = "list"
    data: list[ChargeChangeOut]
    next_cursor: str | None
    has_more: bool


class MarginRow(BaseModel):
    key: str | None
    currency: str
    amount: str
    cost: str
    margin: str
    margin_percent: str | None


class MarginReportOut(BaseModel):
    object: str = "margin_report"
    period: str
    group_by: str
    rows: list[MarginRow]
