from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, field_validator

from billbyte.kit.money import parse_decimal
from billbyte.kit.periods import PeriodText


class InvoiceSettingsIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    grace_days: StrictInt = Field(
        default=5,
        ge=0,
        le=60,
        description="Days after a period's last day during which its invoice is a draft "
        "that follows new vendor data.",
    )
    grouping: Literal["service", "account", "service_and_account"] = Field(
        default="service",
        description="service: one line per vendor and service; account: one line per "
        "account/subscription and service; service_and_account: grouped by vendor and "
        "service, with one line per account under each.",
    )
    mode: Literal["statement", "invoice"] = Field(
        default="statement",
        description="statement: the lines to embed into the MSP's own invoice, no tax; "
        "invoice: a complete tax invoice (seller, buyer, tax lines, due date).",
    )


class InvoiceSettingsOut(BaseModel):
    object: str = "invoice_settings"
    grace_days: int
    grouping: str
    mode: str = "statement"


class InvoiceRunCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    period: PeriodText = Field(
        description="YYYY-MM: the month whose billing periods end (monthly customers: "
        "that month; quarterly: if it ends a quarter; annual: if it is December).",
    )
    force: StrictBool = Field(
        default=False, description="Finalize even if the grace period has not passed yet."
    )


class InvoiceRunOut(BaseModel):
    object: str = "invoice_run"
    id: str
    period: str
    force: bool
    status: str = Field(description="pending, running, completed or failed")
    actor: str
    customers_due: int
    invoices_created: int
    closed_without_charges: int
    already_closed: int
    not_due: int
    failed: int
    errors: dict[str, str]
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None


class BlockedCustomerOut(BaseModel):
    customer_id: str
    external_id: str
    name: str
    missing: list[str] = Field(
        description="What the invoice would lack: billing-details fields as the run names "
        "them (`buyer.city`, `buyer.tax_id`, ...), and `tax_rate` when the customer's "
        "country has no tax rate on the issue date.",
        examples=[["buyer.address_line1", "buyer.city"]],
    )
    message: str = Field(description="What the run's `errors` would say of the customer.")


class InvoiceReadinessOut(BaseModel):
    object: str = "invoice_readiness"
    period: str
    mode: str = Field(description="statement (nothing is ever refused) or invoice")
    ready: bool = Field(description="True when a run of the period would refuse nothing.")
    seller_missing: list[str] = Field(
        description="Billing-profile fields a run would refuse the whole period for "
        "(409 `invoice_incomplete`)."
    )
    customers_checked: int = Field(
        description="Customers with open charges whose billing period ends with `period`."
    )
    blocked: list[BlockedCustomerOut] = Field(
        description="Those of them whose invoice would stay a draft, by customer id."
    )


class FxRateOut(BaseModel):
    base: str = Field(description="The currency converted from (the vendor's).")
    quote: str = Field(description="The currency converted to (the customer's).")
    date: str
    rate: str


class ServicePeriod(BaseModel):
    start: str | None
    end: str | None


class InvoiceLineOut(BaseModel):
    object: str = "invoice_line"
    position: int
    kind: str = Field(description="usage, fee, adjustment or credit")
    description: str
    vendor: str | None
    vendor_reference: str | None = Field(
        description="The vendor's account/subscription id(s) the line is about."
    )
    service_name: str | None
    charge_category: str | None
    quantity: str | None
    unit: str | None
    unit_price: str | None = Field(description="amount_exact / quantity, 6 decimals.")
    amount: str = Field(description="Rounded to the currency; lines add up to the total.")
    amount_exact: str
    currency: str
    period: str = Field(description="The month (YYYY-MM) whose charges the line holds.")
    service_period: ServicePeriod
    original_period: str | None = Field(
        description="For adjustments: the closed period the late data belongs to."
    )
    fx_rates: list[FxRateOut]
    source_line_keys: list[str] = Field(description="The charge lines this line was made of.")
    # issue 12 (additive): the tax the close applied to the line, as stored with it
    tax_category: str | None = Field(
        default=None,
        description="Invoice mode: the EN 16931 VAT category the invoice's close applied to "
        "the line (S standard, E exempt, AE reverse charge, Z zero rated), as stored with the "
        "line; a tax line carries the category it totals. Null in statement mode and on "
        "documents finalized before invoice mode existed.",
        examples=["S"],
    )
    tax_rate: str | None = Field(
        default=None,
        description="Invoice mode: the VAT percent applied to the line, as a decimal text "
        '("19", "7.7", "0" for E and AE), stored at close: a later change of the tax rate '
        "table never alters it. A tax line carries the rate it totals. Null in statement mode.",
        examples=["19"],
    )


class InvoiceOut(BaseModel):
    object: str = Field(description="invoice or credit_note")
    id: str
    status: str = Field(description="draft (live, follows new data) or finalized (immutable)")
    number: str | None = Field(description="INV-000123 / CN-000001; none for drafts.")
    customer_id: str
    customer_name: str
    customer_external_id: str
    billing_cycle: str
    period_start: str
    period_end: str
    months: list[str] = Field(description="The months of charges the document covers.")
    issue_date: date
    due_at: datetime | None = Field(
        description="Drafts: when the invoice may be finalized (end of grace, issue date). "
        "Not the payment due date: that is due_date."
    )
    currency: str
    locale: str
    grouping: str
    total: str
    total_exact: str
    line_count: int
    fx_rates: list[FxRateOut]
    credited_invoice_id: str | None = None
    reason: str | None = None
    finalized_at: datetime | None
    # issue 12 (additive): invoice mode, terms, party snapshots and taxes
    mode: str = "statement"
    due_date: date | None = None
    payment_terms_days: int | None = None
    seller: dict[str, str | None] | None = None
    buyer: dict[str, str | None] | None = None
    subtotal: str | None = None
    tax_total: str | None = None
    taxes: list[dict[str, str | None]] = []


class InvoiceDetail(InvoiceOut):
    lines: list[InvoiceLineOut]


class InvoiceLinesOut(BaseModel):
    object: str = "list"
    data: list[InvoiceLineOut]
    next_cursor: str | None = None
    has_more: bool = False


class CreditNoteLineIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    description: str = Field(min_length=1, max_length=500)
    amount: str = Field(
        description="Amount to credit, positive, in the invoice's currency (decimal string); "
        "net of tax for an invoice-mode invoice (the credit note adds its tax).",
        examples=["25.00"],
    )
    tax_rate: str | None = Field(
        default=None,
        description="Invoice mode: the invoice's tax rate this line credits, in percent as "
        "the invoice's `taxes` name it (`\"19\"`). Without it, a line credits the invoice's one "
        "rate, or, on an invoice of several rates, each rate in proportion to what is left "
        "of it. A statement-mode invoice has no rates to name.",
        examples=["19"],
    )
    tax_category: Literal["S", "E", "AE", "Z"] | None = Field(
        default=None,
        description="Invoice mode: the category of the rate this line credits (EN 16931: S "
        "standard, E exempt, AE reverse charge, Z zero rated), needed only where the "
        "invoice has two rates of one percent (`E` and `Z` at 0 %).",
    )

    @field_validator("tax_rate")
    @classmethod
    def _percent(cls, value: str | None) -> str | None:
        if value is not None and not 0 <= parse_decimal(value, "tax_rate") <= 100:
            raise ValueError("tax_rate must be a percent from 0 to 100")
        return value

    @field_validator("amount")
    @classmethod
    def _positive_decimal(cls, value: str) -> str:
        if not isinstance(value, str):  # pragma: no cover - pydantic gives str
            raise ValueError("amount must be a decimal string")
        amount = parse_decimal(value)
        if amount <= 0:
            raise ValueError("amount must be positive")
        return value


class CreditNoteCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    lines: list[CreditNoteLineIn] = Field(min_length=1, max_length=200)
    reason: str = Field(min_length=1, max_length=1000)
