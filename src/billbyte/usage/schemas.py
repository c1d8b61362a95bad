from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class CurrencyTotals(BaseModel):
    billed_cost: str
    effective_cost: str
    list_cost: str
    contracted_cost: str
    lines: str


class ImportError_(BaseModel):
    row: int | None = None
    file: str | None = None
    message: str


class UsageImportOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    object: str = "usage_import"
    partner_account_id: str
    status: str = Field(description="processing, completed, rejected or failed")
    outcome: str | None = Field(
        description="imported (slices replaced) or unchanged (identical re-delivery)"
    )
    requested_format: str | None
    detected_format: str | None
    report: str | None
    files: list[dict[str, Any]]
    rows_read: int
    rows_accepted: int
    rows_rejected: int
    duplicate_rows: int = Field(description="Exact duplicate rows in the file, stored once.")
    rounded_values: int = Field(
        description="Cost values with more than 24 decimals, rounded half-even to 24."
    )
    slices_replaced: int
    slices_unchanged: int
    totals: dict[str, CurrencyTotals] = Field(
        description="Per billing currency: exact sums of the accepted lines."
    )
    unassigned_sub_accounts: list[str] = Field(
        description="Sub-accounts in the file not linked to any customer yet."
    )
    errors: list[ImportError_]
    message: str | None
    created_at: datetime
    completed_at: datetime | None


class SummaryGroup(BaseModel):
    key: str | None
    currency: str
    billed_cost: str
    effective_cost: str
    list_cost: str
    contracted_cost: str
    lines: int


class UsageSummaryOut(BaseModel):
    object: str = "usage_summary"
    period: str
    partner_account_id: str | None
    group_by: str
    slices: int
    groups: list[SummaryGroup]
    totals: dict[str, CurrencyTotals]
