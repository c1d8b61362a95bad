"""Vectorised parsing of vendor text into canonical types.

A reader describes each canonical column as a ``Field``: the raw text expression and how
to type it. The pipeline evaluates both, so a value that is present in the file but does
not parse is reported with its row instead of silently becoming null.
"""

from __future__ import annotations

from collections.abc import Sequence
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

    def typed(self, timestamp_format: str | None = None) -> pl.Expr:
        if self.kind == Kind.TIMESTAMP:
            if timestamp_format in DIRECT_FORMATS:
                return _parse_direct(self.raw, timestamp_format)
            if timestamp_format:
                return to_timestamp(self.raw, (timestamp_format,))
            return to_timestamp(self.raw)
        return {
            Kind.TEXT: lambda e: e,
            Kind.MONEY: to_money,
            Kind.QUANTITY: to_quantity,
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
    # A value with both (1.234,5) is malformed and fails to parse, as it should.
    return expr.str.replace(",", ".", literal=True, n=1)


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


_OFFSET_FORMAT = "%Y-%m-%d %H:%M:%S%.f%:z"
TIMESTAMP_FORMATS = (*_NAIVE_FORMATS, _OFFSET_FORMAT)


# M/D/YY (the FOCUS specification's own examples write 10/1/25): the year is 2000 + YY.
# Billing data from the 1900s does not exist, and chrono's %Y would read "25" as year 25.
_TWO_DIGIT_YEAR = r"^(\d{1,2})/(\d{1,2})/(\d{2})(\s|$)"


def _timestamp_text(expr: pl.Expr) -> pl.Expr:
    return (
        expr.str.replace(r" UTC$", "")
        .str.replace(_TWO_DIGIT_YEAR, "${1}/${2}/20${3}${4}")
        .str.replace("T", " ")
        .str.replace(r"Z$", "")
    )


def _four_digit_year(fmt: str) -> str:
    """chrono's %Y takes any number of digits ("25-10-01" would be year 25): the year of a
    format must be written with four (two-digit years were expanded before)."""
    if fmt.startswith("%Y"):
        return r"^\d{4}\D"
    return r"^\d{1,2}/\d{1,2}/\d{4}(\D|$)"


def _parse(text_: pl.Expr, fmt: str) -> pl.Expr:
    if fmt == _OFFSET_FORMAT:
        parsed = text_.str.to_datetime(
            fmt, strict=False, time_unit="us", time_zone="UTC"
        ).dt.replace_time_zone(None)
    else:
        parsed = text_.str.to_datetime(fmt, strict=False, time_unit="us")
    return pl.when(text_.str.contains(_four_digit_year(fmt))).then(parsed)


def to_timestamp(expr: pl.Expr, formats: Sequence[str] = TIMESTAMP_FORMATS) -> pl.Expr:
    """ISO 8601 (with T/Z/offsets), 'YYYY-MM-DD hh:mm:ss', M/D/YYYY (Azure) → UTC.

    Each format costs a full pass, so the pipeline first tries the one format a sample of
    the file uses and falls back to all of them only if a value does not parse.
    """
    text_ = _timestamp_text(expr)
    attempts = [_parse(text_, fmt) for fmt in formats]
    return (attempts[0] if len(attempts) == 1 else pl.coalesce(attempts)).cast(TIMESTAMP)


# The ISO forms of the big exports, read from the cleaned text as it is. The general path
# first rewrites every value (" UTC", two-digit years, "T", "Z": four regex replacements, most
# of the parse of a 1M-line file) and then reads the rewritten text with a TIMESTAMP_FORMATS
# entry; each of these formats is such a rewritten form spelled out, so a value it reads, the
# general path reads to the same instant. Year guard as in ``_parse``.
DIRECT_FORMATS = (
    "%Y-%m-%dT%H:%M:%SZ",
    "%Y-%m-%dT%H:%M:%S%.fZ",
    "%Y-%m-%dT%H:%M:%S",
    "%Y-%m-%d %H:%M:%S",
)


def _parse_direct(expr: pl.Expr, fmt: str) -> pl.Expr:
    parsed = expr.str.to_datetime(fmt, strict=False, time_unit="us")
    return pl.when(expr.str.contains(_four_digit_year(fmt))).then(parsed).cast(TIMESTAMP)


def infer_timestamp_format(sample: pl.Series) -> str | None:
    """The first format that parses every non-null value of the sample, if any: a direct
    format only where it gives every sampled value the general path's instant."""
    values = sample.drop_nulls()
    if values.is_empty():
        return None
    frame = values.to_frame("v")
    general = frame.select(to_timestamp(pl.col("v")).alias("v"))["v"]
    for direct in DIRECT_FORMATS:
        read = frame.select(_parse_direct(pl.col("v"), direct).alias("v"))["v"]
        if read.null_count() == 0 and read.equals(general):
            return direct
    for fmt in TIMESTAMP_FORMATS:
        parsed = frame.select(_parse(_timestamp_text(pl.col("v")), fmt).is_null().sum())
        if parsed.item() == 0:
            return fmt
    return None


def digits_beyond(expr: pl.Expr, scale: int) -> pl.Expr:
    """True where a decimal text carries more than ``scale`` fractional digits; in E notation
    that is the mantissa's minus the exponent (5.64902E-05 has 10, 1.5E-30 has 31)."""
    exponent = expr.str.extract(r"[eE]([-+]?\d+)$", 1).cast(pl.Int64, strict=False)
    mantissa = expr.str.extract(r"\.(\d+)[eE]", 1).str.len_chars().fill_null(0).cast(pl.Int64)
    plain = expr.str.contains(rf"\.\d{{{scale + 1},}}$")
    return pl.when(exponent.is_null()).then(plain).otherwise(mantissa - exponent > scale)


def tags_from_json_like(expr: pl.Expr) -> pl.Expr:
    """Azure writes tags as JSON, sometimes without the surrounding braces."""
    return (
        pl.when(expr.is_null())
        .then(None)
        .when(expr.str.starts_with("{"))
        .then(expr)
        .otherwise(pl.concat_str([pl.lit("{"), expr, pl.lit("}")]))
    )
