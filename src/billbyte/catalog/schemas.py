from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, field_validator

from billbyte.catalog.proration import Frequency, Term
from billbyte.kit.focus import SERVICE_CATEGORIES
from billbyte.kit.money import known_currencies
from billbyte.kit.periods import SupportedDate
from billbyte.kit.vendors import Vendor

# Stored as NUMERIC(38, 18) on PostgreSQL: at most 20 integer digits and 18 decimals.
Price = Annotated[Decimal, Field(ge=0, lt=Decimal("1e20"), decimal_places=18)]
Seats = Annotated[StrictInt, Field(ge=1, le=1_000_000)]


def _check_currency(value: str) -> str:
    code = value.strip().upper()
    if code not in known_currencies():
        raise ValueError(f"unknown currency {value!r}: expected an ISO 4217 code such as EUR")
    return code


def _check_prices(value: dict[str, Decimal] | None) -> dict[str, Decimal] | None:
    if value is None:
        return None
    if not value:
        raise ValueError("give at least one selling price, e.g. {'EUR': '19.90'}")
    checked: dict[str, Decimal] = {}
    for currency, amount in value.items():
        code = _check_currency(currency)
        if code in checked:
            raise ValueError(f"{code} is given twice")
        checked[code] = amount
    return checked


def _check_category(value: str | None) -> str | None:
    if value is not None and value not in SERVICE_CATEGORIES:
        raise ValueError(f"service_category must be one of: {', '.join(SERVICE_CATEGORIES)}")
    return value


class OfferCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    vendor: Vendor
    sku_id: str = Field(
        min_length=1, max_length=200, description='The vendor\'s SKU, e.g. "CFQ7TTC0LCHC:0002".'
    )
    name: str = Field(min_length=1, max_length=300)
    description: str = Field(default="", max_length=1000)
    unit: str = Field(
        default="seat", min_length=1, max_length=50, pattern=r"^[A-Za-z][A-Za-z0-9 ]*$"
    )
    service_category: str = Field(
        default="Other", description="FOCUS ServiceCategory, e.g. Business Applications."
    )
    cost_price: Price = Field(description="What the MSP pays per unit and billing period.")
    list_price: Price | None = Field(
        default=None, description="Vendor list price per unit and billing period (cost_currency)."
    )
    cost_currency: str
    prices: dict[str, Price] = Field(
        description="Selling price per unit and billing period, by currency.",
        examples=[{"EUR": "19.90", "GBP": "17.50"}],
    )
    term: Term = Term.MONTHLY
    billing_frequency: Frequency = Frequency.MONTHLY
    active: StrictBool = True

    _cost_currency = field_validator("cost_currency")(_check_currency)
    _category = field_validator("service_category")(_check_category)

    _prices = field_validator("prices")(_check_prices)


class OfferUpdate(BaseModel):
    """Vendor, SKU, term and billing frequency identify an offer: create another to change
    them. A price change takes effect on ``prices_from``: what is charged before that day
    keeps the old price."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, min_length=1, max_length=300)
    description: str | None = Field(default=None, max_length=1000)
    service_category: str | None = None
    cost_price: Price | None = None
    list_price: Price | None = None
    prices: dict[str, Price] | None = None
    prices_from: SupportedDate | None = Field(
        default=None,
        description="First day of the new cost/list/selling prices. Default: today (UTC).",
    )
    active: StrictBool | None = None

    _category = field_validator("service_category")(_check_category)
    _prices = field_validator("prices")(_check_prices)


class PriceVersionOut(BaseModel):
    effective_from: date | None = Field(description="Null: from the start.")
    cost_price: str
    list_price: str | None
    prices: dict[str, str]


class OfferOut(BaseModel):
    id: str
    object: str = "catalog_offer"
    vendor: str
    sku_id: str
    name: str
    description: str
    unit: str
    service_category: str
    cost_price: str = Field(description="In force today (see price_history).")
    list_price: str | None
    cost_currency: str
    prices: dict[str, str] = Field(description="In force today (see price_history).")
    price_history: list[PriceVersionOut] = Field(
        description="Every price version, oldest first, including future ones."
    )
    term: Term
    billing_frequency: Frequency
    active: bool
    created_at: datetime
    updated_at: datetime


class SubscriptionCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    offer_id: str
    quantity: Seats
    start_date: SupportedDate | None = Field(default=None, description="Default: today (UTC).")
    auto_renew: StrictBool = True


class SubscriptionUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    quantity: Seats | None = Field(
        default=None, description="New seat count, in force from effective_date (included)."
    )
    effective_date: SupportedDate | None = Field(
        default=None, description="Default: today (UTC), or the start date if later."
    )
    auto_renew: StrictBool | None = None


class SubscriptionCancel(BaseModel):
    model_config = ConfigDict(extra="forbid")

    effective_date: SupportedDate | None = Field(
        default=None, description="Last day of service asked for. Default: today (UTC)."
    )


class QuantityOut(BaseModel):
    effective_date: date
    quantity: int


class TermOut(BaseModel):
    start: date
    end: date


class SubscriptionOut(BaseModel):
    id: str
    object: str = "licence_subscription"
    customer_id: str
    offer_id: str
    offer_name: str
    sku_id: str
    status: str = Field(description="pending, active, cancelled (ended) or expired.")
    quantity: int = Field(description="Seats in force today (or at the start, if later).")
    start_date: date
    auto_renew: bool
    current_term: TermOut | None
    renews_on: date | None
    last_day: date | None = Field(description="Last day of service, once known.")
    cancelled_at: datetime | None
    cancel_requested_for: date | None
    quantity_changes: list[QuantityOut]
    created_at: datetime
    updated_at: datetime
