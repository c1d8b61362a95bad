from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Any, Literal

from babel import Locale, UnknownLocaleError
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictInt,
    field_serializer,
    field_validator,
)

from billbyte.kit.money import format_amount, known_currencies
from billbyte.kit.vendors import Vendor


class BillingCycle(StrEnum):
    MONTHLY = "monthly"
    QUARTERLY = "quarterly"
    ANNUAL = "annual"


class CustomerStatus(StrEnum):
    ACTIVE = "active"
    SUSPENSION_REQUESTED = "suspension_requested"
    SUSPENDED = "suspended"
    PURGED = "purged"


class VendorAccountKind(StrEnum):
    AWS_ACCOUNT = "aws_account"
    AZURE_SUBSCRIPTION = "azure_subscription"
    AZURE_TENANT = "azure_tenant"
    GCP_BILLING_SUBACCOUNT = "gcp_billing_subaccount"
    GCP_PROJECT = "gcp_project"
    MICROSOFT_TENANT = "microsoft_tenant"


KINDS_BY_VENDOR: dict[Vendor, frozenset[VendorAccountKind]] = {
    Vendor.AWS: frozenset({VendorAccountKind.AWS_ACCOUNT}),
    Vendor.AZURE: frozenset({VendorAccountKind.AZURE_SUBSCRIPTION, VendorAccountKind.AZURE_TENANT}),
    Vendor.GCP: frozenset(
        {VendorAccountKind.GCP_BILLING_SUBACCOUNT, VendorAccountKind.GCP_PROJECT}
    ),
    Vendor.MICROSOFT365: frozenset({VendorAccountKind.MICROSOFT_TENANT}),
}

DEFAULT_KIND: dict[Vendor, VendorAccountKind] = {
    Vendor.AWS: VendorAccountKind.AWS_ACCOUNT,
    Vendor.AZURE: VendorAccountKind.AZURE_SUBSCRIPTION,
    Vendor.GCP: VendorAccountKind.GCP_BILLING_SUBACCOUNT,
    Vendor.MICROSOFT365: VendorAccountKind.MICROSOFT_TENANT,
}


def _check_currency(value: str) -> str:
    code = value.strip().upper()
    if code not in known_currencies():
        raise ValueError(f"unknown currency {value!r}: expected an ISO 4217 code such as EUR")
    return code


# CLDR territories that are not countries: unknown region, unions, pseudo-locales.
_NOT_COUNTRIES = frozenset({"ZZ", "EU", "EZ", "UN", "QO", "XA", "XB"})


def _check_country(value: str | None) -> str | None:
    if value is None:
        return None
    code = value.strip().upper()
    if (
        code not in Locale("en").territories
        or code in _NOT_COUNTRIES
        or not code.isalpha()
        or len(code) != 2
    ):
        raise ValueError(f"unknown country {value!r}: expected an ISO 3166-1 alpha-2 code")
    return code


def _check_locale(value: str) -> str:
    try:
        return str(Locale.parse(value.replace("-", "_")))
    except (UnknownLocaleError, ValueError):
        raise ValueError(f"unknown locale {value!r}: expected e.g. en, de_DE, fr_CA") from None


# Stored as NUMERIC(38, 18) on PostgreSQL: at most 20 integer digits and 18 decimals.
CreditLimit = Annotated[Decimal, Field(ge=0, lt=Decimal("1e20"), decimal_places=18)]


class CustomerCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    external_id: str = Field(
        min_length=1, max_length=200, description="The MSP's own customer id; unique per MSP."
    )
    name: str = Field(min_length=1, max_length=200)
    currency: str = Field(description="ISO 4217 code the customer is billed in.")
    country: str | None = None
    locale: str = "en"
    billing_cycle: BillingCycle = BillingCycle.MONTHLY
    billing_anchor_day: StrictInt = Field(default=1, ge=1, le=28)
    credit_limit: CreditLimit | None = None
    price_plan_id: str | None = Field(default=None, description="Null: the MSP's default plan.")
    prepaid_balance: CreditLimit | None = None
    credit_thresholds: list[Annotated[StrictInt, Field(gt=0, le=1000)]] | None = Field(
        default=None, description="Percentages of the limit; null: the MSP's policy."
    )
    credit_action: Literal["notify", "suspend"] | None = Field(
        default=None, description="Null: the MSP's policy."
    )
    vendors: list[Vendor] = Field(default_factory=list)
    metadata: dict[str, Any] = Field(default_factory=dict)

    _currency = field_validator("currency")(_check_currency)
    _country = field_validator("country")(_check_country)
    _locale = field_validator("locale")(_check_locale)


class CustomerUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, min_length=1, max_length=200)
    currency: str | None = None
    country: str | None = None
    locale: str | None = None
    billing_cycle: BillingCycle | None = None
    billing_anchor_day: StrictInt | None = Field(default=None, ge=1, le=28)
    credit_limit: CreditLimit | None = None
    price_plan_id: str | None = Field(default=None, description="Null: the MSP's default plan.")
    prepaid_balance: CreditLimit | None = None
    credit_thresholds: list[Annotated[StrictInt, Field(gt=0, le=1000)]] | None = Field(
        default=None, description="Percentages of the limit; null: the MSP's policy."
    )
    credit_action: Literal["notify", "suspend"] | None = Field(
        default=None, description="Null: the MSP's policy."
    )
    vendors: list[Vendor] | None = None
    metadata: dict[str, Any] | None = None

    @field_validator("currency")
    @classmethod
    def _currency(cls, value: str | None) -> str | None:
        return None if value is None else _check_currency(value)

    _country = field_validator("country")(_check_country)

    @field_validator("locale")
    @classmethod
    def _locale(cls, value: str | None) -> str | None:
        return None if value is None else _check_locale(value)


class VendorStateOut(BaseModel):
    vendor: str
    state: str
    partner_account_id: str | None
    vendor_identifier: str | None
    portal_url: str | None
    message: str | None


class CustomerOut(BaseModel):
    id: str
    object: str = "customer"
    external_id: str
    name: str
    currency: str
    country: str | None
    locale: str
    billing_cycle: BillingCycle
    billing_anchor_day: int
    credit_limit: Decimal | None
    price_plan_id: str | None = None
    prepaid_balance: Decimal | None = None
    credit_thresholds: list[int] | None = None
    credit_action: str | None = None
    vendors: list[str]
    status: CustomerStatus
    metadata: dict[str, Any]
    created_at: datetime
    updated_at: datetime
    vendor_states: list[VendorStateOut] = Field(
        default_factory=list,
        description="Provisioning on each vendor asked for: pending, active, failed (with the "
        "reason), suspended, purged; with the vendor's portal link.",
    )

    @field_serializer("credit_limit", "prepaid_balance")
    def _decimal(self, value: Decimal | None) -> str | None:
        return None if value is None else format_amount(value)


class VendorAccountCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    partner_account_id: str
    vendor_identifier: str = Field(min_length=1, max_length=200)
    kind: VendorAccountKind | None = Field(
        default=None, description="Defaults to the vendor's main kind (e.g. aws_account)."
    )
    display_name: str | None = Field(default=None, max_length=200)


class VendorAccountOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    object: str = "vendor_account"
    customer_id: str
    partner_account_id: str
    vendor_identifier: str
    kind: VendorAccountKind
    display_name: str | None
    created_at: datetime


class TaxTreatment(StrEnum):
    STANDARD = "standard"
    EXEMPT = "exempt"
    REVERSE_CHARGE = "reverse_charge"


class BillingDetailsIn(BaseModel):
    """The buyer on the customer's invoices. PUT replaces them all: a field left out is
    cleared. Empty text means "not set"."""

    model_config = ConfigDict(extra="forbid")

    legal_name: str | None = Field(default=None, max_length=200)
    address_line1: str | None = Field(default=None, max_length=200)
    address_line2: str | None = Field(default=None, max_length=200)
    postal_code: str | None = Field(default=None, max_length=20)
    city: str | None = Field(default=None, max_length=100)
    country: str | None = Field(default=None, description="ISO 3166-1 alpha-2, e.g. FR.")
    tax_id: str | None = Field(
        default=None,
        max_length=40,
        description="VAT id; for an EU country checked with python-stdnum; stored compact.",
    )
    po_number: str | None = Field(default=None, max_length=100)
    invoice_email: str | None = Field(default=None, max_length=320)
    tax_treatment: TaxTreatment = Field(
        default=TaxTreatment.STANDARD,
        description="standard: the MSP's tax rate for the country; exempt: no tax, with "
        "exemption_reason; reverse_charge: an EU business in another member state than the "
        "seller's, with a valid EU VAT id.",
    )
    exemption_reason: str | None = Field(default=None, max_length=300)


class BillingDetailsOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    object: str = "billing_details"
    customer_id: str
    legal_name: str | None
    address_line1: str | None
    address_line2: str | None
    postal_code: str | None
    city: str | None
    country: str | None
    tax_id: str | None
    po_number: str | None
    invoice_email: str | None
    tax_treatment: TaxTreatment
    exemption_reason: str | None
