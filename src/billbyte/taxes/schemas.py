"""The tax-rate API's shapes. A rate is a percentage as decimal text ("19", "8.1")."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from pydantic import BaseModel, ConfigDict, Field, field_serializer

from billbyte.kit.money import plain_decimal


class TaxRateIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    country: str | None = Field(
        default=None,
        description="ISO 3166-1 alpha-2 of the customer's billing country; null: every "
        "country without a rate of its own.",
    )
    name: str = Field(min_length=1, max_length=100, description='"VAT", "USt.", "GST".')
    rate: str = Field(
        description='Percent as decimal text, 0 to 100, at most 6 decimals: "19" is 19 %.',
        max_length=30,
    )
    valid_from: date
    valid_until: date | None = Field(
        default=None, description="Exclusive: the first day the rate no longer applies."
    )


class TaxRatePatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    country: str | None = None
    name: str | None = Field(default=None, min_length=1, max_length=100)
    rate: str | None = Field(default=None, max_length=30)
    valid_from: date | None = None
    valid_until: date | None = None


class TaxRateOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    object: str = "tax_rate"
    country: str | None
    name: str
    rate: Decimal = Field(description="Percent, as decimal text.")
    valid_from: date
    valid_until: date | None
    created_at: datetime

    @field_serializer("rate")
    def _rate(self, value: Decimal) -> str:
        return plain_decimal(value)
