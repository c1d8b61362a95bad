"""Vectorised parsing of vendor text into canonical types.

A reader describes each canonical column as a ``Field``: the raw text expression and how
to type it. The pipeline evaluates both, so a value that is present in the file but does
not parse is reported with its row instead of silently becoming null.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

import polars as pl

from billbyte.usage.canonical import MONEY, QUANTITY, TIMESTAMP

NULL_TEXTS = ("", "NULL", "null", "None", "NaN", "nan", "N/A", "-")


class Kind(StrEnum):
    TEXT = "text"
    MONEY = "money"
    QUANTITY = "quantity"
    TIMESTAMP = "timestamp"


@dataclass(frozen=True)
class Field:
    raw: pl.Expr
    kind: Kind = Kind.TEXT
    source: str = ""  # the vendor column(s), for error messages

    def typed(self) -> pl.Expr:
        return {
            Kind.TEXT: lambda e: e,
            Kind.MONEY: to_money,
            Kind.QUANTITY: to_quantity,
            Kind.TIMESTAMP: to_timestamp,
        }[self.kind](self.raw)


def clean(expr: pl.Expr) -> pl.Expr:
    """Trim, and turn the many spellings of "no value" into null."""
    stripped = expr.cast(pl.String).str.strip_chars()
    return pl.when(stripped.is_in(NULL_TEXTS)).then(None).otherwise(stripped)


def col(name: str) -> pl.Expr:
    return clean(pl.col(name))


def text(name: str) -> Field:
    return Field(col(name), Kind.TEXT, name)


def money(name: str) -> Field:
    return Field(col(name), Kind.MONEY, name)


def quantity(name: str) -> Field:
    return Field(col(name), Kind.QUANTITY, name)


def timestamp(name: str) -> Field:
    return Field(col(name), Kind.TIMESTAMP, name)


def const(value: str | None) -> Field:
    return Field(pl.lit(value, dtype=pl.String), Kind.TEXT, "")


def _numeric_text(expr: pl.Expr) -> pl.Expr:
    # Thousands separators never appear in the machine exports we read; a comma decimal
    # separator (localized Excel re-saves) does, and is unambiguous without a dot.
    return (
        pl.when(expr.str.contains(",") & ~expr.str.contains(r"\."))
        .then(expr.str.replace(",", "."))
        .otherwise(expr)
    )


def to_money(expr: pl.Expr) -> pl.Expr:
    return _numeric_text(expr).str.to_decimal(scale=MONEY.scale).cast(MONEY, strict=False)


def to_quantity(expr: pl.Expr) -> pl.Expr:
    return _numeric_text(expr).str.to_decimal(scale=QUANTITY.scale).cast(QUANTITY, strict=False)


_NAIVE_FORMATS = (
    "%Y-%m-%d %H:%M:%S%.f",
    "%Y-%m-%d %H:%M",
    "%Y-%m-%d",
    "%m/%d/%Y %H:%M:%S",
    "%m/%d/%Y %H:%M",
    "%m/%d/%Y",
    "%Y/%m/%d %H:%M:%S",
    "%Y/%m/%d",
)


def to_timestamp(expr: pl.Expr) -> pl.Expr:
    """ISO 8601 (with T/Z/offsets), 'YYYY-MM-DD hh:mm:ss', M/D/YYYY (Azure) → UTC."""
    text_ = expr.str.replace(r" UTC$", "").str.replace("T", " ").str.replace(r"Z$", "")
    attempts = [text_.str.to_datetime(fmt, strict=False, time_unit="us") for fmt in _NAIVE_FORMATS]
    with_offset = text_.str.to_datetime(
        "%Y-%m-%d %H:%M:%S%.f%:z", strict=False, time_unit="us", time_zone="UTC"
    ).dt.replace_time_zone(None)
    return pl.coalesce([*attempts, with_offset]).cast(TIMESTAMP)


def digits_beyond(expr: pl.Expr, scale: int) -> pl.Expr:
    """True where a plain decimal text carries more than ``scale`` fractional digits."""
    return expr.str.contains(rf"\.\d{{{scale + 1},}}$") | expr.str.contains(r"[eE]-")


def tags_from_json_like(expr: pl.Expr) -> pl.Expr:
    """Azure writes tags as JSON, sometimes without the surrounding braces."""
    return (
        pl.when(expr.is_null())
        .then(None)
        .when(expr.str.starts_with("{"))
        .then(expr)
        .otherwise(pl.concat_str([pl.lit("{"), expr, pl.lit("}")]))
    )
