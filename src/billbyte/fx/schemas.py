from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictInt,
    WithJsonSchema,
    field_serializer,
    model_validator,
)

from billbyte.kit.errors import InvalidInput
from billbyte.kit.money import format_amount, validate_currency

# Plain decimal notation only: exponents ("1e400") and specials ("NaN", "Infinity") are
# what floats look like, and a rate or amount that looks like a float is refused.
_PLAIN_DECIMAL = re.compile(r"-?\d+(\.\d+)?")
_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
# Stored as NUMERIC(38, 18) on PostgreSQL: at most 20 integer digits and 18 decimals.
MAX_PLACES = 18
LIMIT = Decimal("1e20")
MAX_RATES_PER_REQUEST = 10_000


class PolicyMode(StrEnum):
    CHARGE_DAY = "charge_day"
    PERIOD_CLOSE = "period_close"


def decimal_places(value: Decimal) -> int:
    exponent = value.normalize().as_tuple().exponent
    assert isinstance(exponent, int)  # finite by construction
    return max(0, -exponent)


def parse_plain_decimal(value: object, what: str = "value") -> Decimal:
    """A decimal from its plain string form (or an int); never from a float.

    Raises ValueError, which pydantic reports with the field's path.
    """
    if isinstance(value, Decimal) and value.is_finite():
        return value  # from Python callers (the CLI, the ECB reader)
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise ValueError(f'{what} must be a decimal string such as "1.0842", not {value!r}')
    text = str(value).strip()
    if not _PLAIN_DECIMAL.fullmatch(text):
        raise ValueError(
            f"{what} must be written as a plain decimal number such as 1.0842 "
            f"(no exponent, NaN or Infinity): {value!r}"
        )
    number = Decimal(text)
    if decimal_places(number) > MAX_PLACES:
        raise ValueError(f"{what} has more than {MAX_PLACES} decimal places: {value!r}")
    if abs(number) >= LIMIT:
        raise ValueError(f"{what} must be less than 10^20 in magnitude: {value!r}")
    return number


def _rate(value: object) -> Decimal:
    number = parse_plain_decimal(value, "rate")
    if number <= 0:
        raise ValueError(f"rate must be greater than zero: {value!r}")
    return number


def _currency(value: object) -> str:
    if not isinstance(value, str):
        raise ValueError("currency must be an ISO 4217 code such as EUR")
    try:
        return validate_currency(value)
    except InvalidInput as exc:
        raise ValueError(exc.detail) from None


def _iso_date(value: object) -> object:
    if isinstance(value, dt.date):
        return value
    if not isinstance(value, str) or not _ISO_DATE.fullmatch(value.strip()):
        raise ValueError(f"date must be an ISO 8601 date such as 2026-10-01: {value!r}")
    return value.strip()


Currency = Annotated[
    str,
    BeforeValidator(_currency),
    WithJsonSchema({"type": "string", "description": "ISO 4217 code", "examples": ["EUR"]}),
]
Rate = Annotated[
    Decimal,
    BeforeValidator(_rate),
    WithJsonSchema(
        {
            "type": "string",
            "pattern": r"^\d+(\.\d{1,18})?$",
            "description": "Units of quote per unit of base, a decimal string.",
            "examples": ["1.0842"],
        }
    ),
]
IsoDate = Annotated[dt.date, BeforeValidator(_iso_date)]


class FxRateIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    base: Currency
    quote: Currency
    date: IsoDate = Field(description="The day the rate applies to (ISO 8601).")
    rate: Rate

    @model_validator(mode="after")
    def _distinct(self) -> FxRateIn:
        if self.base == self.quote:
            raise ValueError("base and quote must be different currencies")
        return self


class FxRatesPut(BaseModel):
    model_config = ConfigDict(extra="forbid")

    rates: list[FxRateIn] = Field(min_length=1, max_length=MAX_RATES_PER_REQUEST)
    source: str = Field(
        default="manual",
        pattern=r"^[a-z0-9][a-z0-9_.-]{0,19}$",
        description='Where the rates come from, e.g. "manual" or "ecb".',
    )


class FxRateOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    object: str = "fx_rate"
    base: str
    quote: str
    date: dt.date = Field(validation_alias="rate_date")
    rate: Decimal
    source: str
    created_at: dt.datetime
    updated_at: dt.datetime

    @field_serializer("rate")
    def _decimal(self, value: Decimal) -> str:
        return format_amount(value)


class FxRatesPutOut(BaseModel):
    object: str = "fx_rate_upsert"
    received: int = Field(description="Rates in the request.")
    inserted: int
    updated: int = Field(description="Existing rates whose value or source changed.")
    unchanged: int


class ConversionOut(BaseModel):
    object: str = "fx_conversion"
    from_currency: str
    to_currency: str
    amount: Decimal
    converted: Decimal = Field(description="amount × rate, exact: not rounded to minor units.")
    rate: Decimal
    rate_date: dt.date = Field(description="Date of the (oldest) stored rate used.")
    path: list[str] = Field(description="Currencies traversed, e.g. USD → EUR → JPY.")

    @field_serializer("amount", "converted", "rate")
    def _decimal(self, value: Decimal) -> str:
        return format_amount(value)


class FxPolicyIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    base_currency: Currency = Field(default="EUR")
    mode: PolicyMode = PolicyMode.CHARGE_DAY
    max_staleness_days: StrictInt = Field(default=7, ge=0, le=366)


class FxPolicyOut(BaseModel):
    object: str = "fx_policy"
    base_currency: str
    mode: PolicyMode
    max_staleness_days: int
    updated_at: dt.datetime | None = Field(description="Null while the defaults apply.")

    @classmethod
    def build(cls, data: Any) -> FxPolicyOut:
        return cls(
            base_currency=data.base_currency,
            mode=PolicyMode(data.mode),
            max_staleness_days=data.max_staleness_days,
            updated_at=data.updated_at,
        )
