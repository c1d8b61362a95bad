from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    HttpUrl,
    StrictBool,
    field_serializer,
)

from billbyte.kit.money import format_amount
from billbyte.kit.vendors import Vendor

MAX_URL_LENGTH = 500  # the column's length


def _url_fits(url: HttpUrl) -> HttpUrl:
    if len(str(url)) > MAX_URL_LENGTH:
        raise ValueError(f"URL should have at most {MAX_URL_LENGTH} characters")
    return url


EndpointUrl = Annotated[HttpUrl, AfterValidator(_url_fits)]
# Stored as NUMERIC(38, 18) on PostgreSQL: more decimals would be rounded away silently.
DISCOUNT_PLACES = 18


class PartnerAccountCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    vendor: Vendor
    display_name: str = Field(min_length=1, max_length=200)
    vendor_account_id: str | None = Field(default=None, max_length=200)
    credentials: dict[str, Any] | None = Field(
        default=None, description="Write-only; encrypted at rest and never returned."
    )
    sandbox: StrictBool = False
    endpoint_url: EndpointUrl | None = None
    partner_discount_percent: Decimal = Field(
        default=Decimal(0), ge=0, le=100, decimal_places=DISCOUNT_PLACES
    )
    discount_terms: dict[str, Any] = Field(default_factory=dict)


class PartnerAccountUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    display_name: str | None = Field(default=None, min_length=1, max_length=200)
    vendor_account_id: str | None = Field(default=None, max_length=200)
    credentials: dict[str, Any] | None = None
    sandbox: StrictBool | None = None
    endpoint_url: EndpointUrl | None = None
    partner_discount_percent: Decimal | None = Field(
        default=None, ge=0, le=100, decimal_places=DISCOUNT_PLACES
    )
    discount_terms: dict[str, Any] | None = None
    status: str | None = Field(default=None, pattern="^(active|disabled)$")


class PartnerAccountOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    object: str = "partner_account"
    vendor: Vendor
    display_name: str
    vendor_account_id: str | None
    has_credentials: bool
    sandbox: bool
    endpoint_url: str | None
    partner_discount_percent: Decimal
    discount_terms: dict[str, Any]
    status: str
    created_at: datetime
    updated_at: datetime

    @field_serializer("partner_discount_percent")
    def _decimal(self, value: Decimal) -> str:
        return format_amount(value)
