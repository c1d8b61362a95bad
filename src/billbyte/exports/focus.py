"""A customer's billed lines as FOCUS 1.2 rows, at the customer's prices: pure polars.

Input: one row per exported line (usage detail rows, or whole charge lines) with the exact
amounts in the customer's currency and the rounded total each *charge line* must show.
Rounding follows the charges rule (docs/rating.md): every row is rounded half-even to the
currency's minor unit, then the few units its charge line is off by go to the rows with the
largest residuals. So rows add up exactly to their charge line's amount, and the file adds up
exactly to the charges total. Mapping decisions are documented in docs/exports.md.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from datetime import date
from decimal import Decimal
from typing import Any

import polars as pl

from billbyte.kit.csv_writer import frame_to_csv
from billbyte.kit.focus import CHARGE_CATEGORIES, SERVICE_CATEGORIES
from billbyte.kit.vendors import Vendor

# The FOCUS columns written, in the spec's (alphabetical) order, then our own x_ columns.
COLUMNS = (
    "BilledCost",
    "BillingAccountId",
    "BillingAccountName",
    "BillingCurrency",
    "BillingPeriodEnd",
    "BillingPeriodStart",
    "ChargeCategory",
    "ChargeClass",
    "ChargeDescription",
    "ChargeFrequency",
    "ChargePeriodEnd",
    "ChargePeriodStart",
    "ContractedCost",
    "EffectiveCost",
    "InvoiceId",
    "InvoiceIssuerName",
    "ListCost",
    "PricingQuantity",
    "PricingUnit",
    "ProviderName",
    "PublisherName",
    "RegionId",
    "RegionName",
    "ServiceCategory",
    "ServiceName",
    "ServiceSubcategory",
    "SkuId",
    "SubAccountId",
    "SubAccountName",
    "Tags",
    "x_Vendor",
    "x_ChargeKind",
    "x_ChargeLineKey",
)

PUBLISHERS = {
    Vendor.AWS.value: "Amazon Web Services",
    Vendor.AZURE.value: "Microsoft",
    Vendor.GCP.value: "Google Cloud",
    Vendor.MICROSOFT365.value: "Microsoft",
}

# Lines as the service hands them over: one row per line to export.
ROW_SCHEMA: dict[str, Any] = {
    "line_key": pl.String,
    "kind": pl.String,
    "vendor": pl.String,
    "sub_account_id": pl.String,
    "sub_account_name": pl.String,
    "service_category": pl.String,
    "service_name": pl.String,
    "sku_id": pl.String,
    "region_id": pl.String,
    "region_name": pl.String,
    "charge_category": pl.String,
    "pricing_unit": pl.String,
    "quantity": pl.Decimal(38, 18),
    "first_day": pl.Date,
    "last_day": pl.Date,
    "description": pl.String,
    "tags": pl.String,
    "sell": pl.Decimal(38, 18),
    "list": pl.Decimal(38, 18),
    # No list price of its own (fees, offers without one): ListCost is what is billed.
    "list_is_billed": pl.Boolean,
}
TARGET_SCHEMA: dict[str, Any] = {
    "line_key": pl.String,
    "billed_units": pl.Int64,
    "list_units": pl.Int64,
}

# --- value formats -------------------------------------------------------------------------

_DATA = "b|Kb|Mb|Gb|Tb|Pb|Eb|B|KB|MB|GB|TB|PB|EB|Kib|Mib|Gib|Tib|Pib|Eib|KiB|MiB|GiB|TiB|PiB|EiB"
_TIME_ONE = "Year|Month|Day|Hour|Minute|Second"
_TIME_MANY = "Years|Months|Days|Hours|Minutes|Seconds"
_COUNT = r"[A-Za-z][A-Za-z0-9]*(?:\s+[A-Za-z][A-Za-z0-9]*)*"
UNIT_FORMAT = re.compile(
    "|".join(
        f"(?:{p})"
        for p in (
            rf"^(?:{_DATA}|{_TIME_ONE}|{_TIME_MANY}|{_COUNT})$",
            rf"^(?:{_DATA}|{_COUNT})-(?:{_TIME_MANY})$",
            rf"^(?:{_DATA}|{_COUNT}|{_TIME_MANY})/(?:{_TIME_ONE})$",
            rf"^[0-9]+ (?:{_DATA}|{_TIME_ONE}|{_TIME_MANY}|{_COUNT})$",
            rf"^(?:{_DATA}|{_COUNT}|{_TIME_MANY})/[0-9]+ (?:{_TIME_MANY})$",
        )
    )
)
_UNIT_WORDS = {
    "hrs": "Hours",
    "hr": "Hour",
    "hours": "Hours",
    "mo": "Months",
    "month": "Months",
    "months": "Months",
    "gb-mo": "GB-Months",
    "gb-month": "GB-Months",
    "gb-hrs": "GB-Hours",
    "gb-hr": "GB-Hours",
}
_CATEGORY_SYNONYMS = {
    "ai + machine learning": "AI and Machine Learning",
    "machine learning": "AI and Machine Learning",
    "database": "Databases",
    "network": "Networking",
    "networking": "Networking",
    "virtual machines": "Compute",
    "containers": "Compute",
    "management tools": "Management and Governance",
    "management and governance": "Management and Governance",
    "productivity": "Business Applications",
    "iot": "Internet of Things",
}


def focus_unit(unit: str | None) -> str | None:
    """A unit in FOCUS Unit Format: kept when it conforms, else the usual vendor spellings
    mapped (Hrs → Hours, GB-Mo → GB-Months), else reduced to its words."""
    if unit is None or not unit.strip():
        return None
    text = unit.strip()
    if (mapped := _UNIT_WORDS.get(text.lower())) is not None:
        return mapped
    if UNIT_FORMAT.match(text):
        return text
    words = re.findall(r"[A-Za-z][A-Za-z0-9]*", text)
    return " ".join(words) if words else "Units"


def service_category(value: str | None) -> str:
    if value is None:
        return "Other"
    text = value.strip()
    for allowed in SERVICE_CATEGORIES:
        if text.lower() == allowed.lower():
            return allowed
    return _CATEGORY_SYNONYMS.get(text.lower(), "Other")


def focus_tags(text: str | None) -> str | None:
    """Tags as a JSON object of scalar values (nested values become JSON text); anything
    that is not a JSON object is dropped rather than passed on malformed."""
    if text is None or not text.strip():
        return None
    try:
        parsed = json.loads(text)
    except ValueError:
        return None
    if not isinstance(parsed, dict) or not parsed:
        return None
    flat = {
        str(k): (json.dumps(v, sort_keys=True) if isinstance(v, dict | list) else v)
        for k, v in parsed.items()
    }
    return json.dumps(flat, sort_keys=True, ensure_ascii=False)


def _mapped(column: str, values: Iterable[Any], function: Any, dtype: Any) -> pl.Expr:
    """Apply a Python mapping to the distinct values of a column only (never per row)."""
    distinct = sorted({v for v in values if v is not None})
    mapping = {v: function(v) for v in distinct}
    return pl.col(column).replace_strict(mapping, default=None, return_dtype=dtype)


def _timestamp(expr: pl.Expr) -> pl.Expr:
    return expr.dt.strftime("%Y-%m-%dT00:00:00Z")


def _decimal_literal(text: pl.Expr) -> pl.Expr:
    """A number's text as a decimal literal, always with a fraction (36 → 36.0): a column of
    whole numbers (a JPY export's costs, an adjustment-only month's quantities) is otherwise
    read as INTEGER, and FOCUS (the FinOps validator) wants DECIMAL. Null stays null."""
    return pl.when(text.str.contains(".", literal=True)).then(text).otherwise(text + ".0")


def _plain_decimal(expr: pl.Expr) -> pl.Expr:
    """Decimal as text without trailing zeros, one fractional digit kept (1.500 → 1.5,
    2.000 → 2.0)."""
    return _decimal_literal(
        expr.cast(pl.String).str.replace(r"(\.\d*?)0+$", "${1}").str.replace(r"\.$", "")
    )


# --- rounding --------------------------------------------------------------------------------


def allocate(
    rows: pl.DataFrame, exact: str, target: str, minor_units: int, out: str
) -> pl.DataFrame:
    """Round ``exact`` to the minor unit so that each line's rows add up to ``target``
    (integer minor units): half-even first, then one unit at a time to the rows whose exact
    value lies furthest in the direction needed (ties by row order)."""
    scale = Decimal(10) ** minor_units
    step = Decimal(1).scaleb(-minor_units)
    rounded = pl.col(exact).round(minor_units).cast(pl.Decimal(38, minor_units))
    rows = rows.with_columns(
        (rounded * pl.lit(scale, dtype=pl.Decimal(38, 0))).cast(pl.Int64).alias("_units"),
        (pl.col(exact) - rounded).alias("_residual"),
        pl.int_range(pl.len()).alias("_order"),
    )
    rows = rows.with_columns(
        (pl.col(target) - pl.col("_units").sum().over("line_key")).alias("_need"),
        pl.len().over("line_key").cast(pl.Int64).alias("_rows"),
        pl.struct(-pl.col("_residual"), "_order")
        .rank("ordinal")
        .over("line_key")
        .cast(pl.Int64)
        .alias("_rank"),
    )
    base = pl.col("_need") // pl.col("_rows")
    extra = pl.col("_need") - base * pl.col("_rows")
    units = pl.col("_units") + base + (pl.col("_rank") <= extra).cast(pl.Int64)
    return rows.with_columns(
        (units.cast(pl.Decimal(38, 0)) * pl.lit(step, dtype=pl.Decimal(38, minor_units))).alias(out)
    ).drop("_units", "_residual", "_order", "_need", "_rows", "_rank")


# --- the FOCUS frame -------------------------------------------------------------------------


def focus_frame(
    rows: pl.DataFrame,
    targets: pl.DataFrame,
    *,
    minor_units: int,
    currency: str,
    period_start: date,
    period_end_exclusive: date,
    billing_account_id: str,
    billing_account_name: str,
    issuer: str,
    invoice_id: str | None,
) -> pl.DataFrame:
    """FOCUS 1.2 columns (all text, nulls where FOCUS wants null) for ``rows``."""
    if rows.is_empty():
        return pl.DataFrame(schema=dict.fromkeys(COLUMNS, pl.String))
    rows = rows.join(targets, on="line_key", how="left")
    rows = allocate(rows, "sell", "billed_units", minor_units, "billed")
    rows = allocate(rows, "list", "list_units", minor_units, "listed")

    category = (
        pl.col("charge_category")
        .fill_null("Usage")
        .replace_strict({c: c for c in CHARGE_CATEGORIES}, default="Adjustment")
    )
    rows = rows.with_columns(
        category.alias("ChargeCategory"),
        _mapped(
            "service_category", rows["service_category"], service_category, pl.String
        ).fill_null("Other"),
        pl.coalesce(["service_name", "service_category", "description"])
        .fill_null("Other")
        .alias("ServiceName"),
        _mapped("tags", rows["tags"], focus_tags, pl.String).alias("Tags"),
        _mapped("pricing_unit", rows["pricing_unit"], focus_unit, pl.String).alias("unit"),
    )
    # FOCUS: one ServiceCategory per ServiceName (the first, A-Z, when sources disagree).
    categories = rows.group_by("ServiceName").agg(
        pl.col("service_category").sort().first().alias("ServiceCategory")
    )
    rows = rows.join(categories, on="ServiceName", how="left")

    charge = pl.col("ChargeCategory")
    correction = pl.col("first_day") < pl.lit(period_start)
    is_tax = charge == "Tax"
    usage_or_purchase = charge.is_in(["Usage", "Purchase"])
    recurring = pl.col("kind").is_in(["licence", "fee"])
    # Usage and purchases always have a quantity; elsewhere a zero is "none" (null).
    quantity = (
        pl.when(is_tax)
        .then(None)
        .when(usage_or_purchase)
        .then(pl.col("quantity").fill_null(Decimal(0)))
        .when(pl.col("quantity") == 0)
        .then(None)
        .otherwise(pl.col("quantity"))
    )
    billed = _decimal_literal(pl.col("billed").cast(pl.String))
    follows_billed = charge.is_in(["Tax", "Credit", "Adjustment"]) | pl.col("list_is_billed")
    publisher = (
        pl.when(pl.col("kind") == "fee")
        .then(pl.lit(issuer))
        .otherwise(
            pl.col("vendor").replace_strict(PUBLISHERS, default=issuer, return_dtype=pl.String)
        )
    )
    zero = f"{Decimal(0):.{max(minor_units, 1)}f}"  # 0.00, or 0.0 for a currency like JPY

    frame = rows.select(
        billed.alias("BilledCost"),
        pl.lit(billing_account_id).alias("BillingAccountId"),
        pl.lit(billing_account_name).alias("BillingAccountName"),
        pl.lit(currency).alias("BillingCurrency"),
        pl.lit(_iso(period_end_exclusive)).alias("BillingPeriodEnd"),
        pl.lit(_iso(period_start)).alias("BillingPeriodStart"),
        charge.alias("ChargeCategory"),
        pl.when(correction | (pl.col("kind") == "adjustment"))
        .then(pl.lit("Correction"))
        .otherwise(None)
        .alias("ChargeClass"),
        pl.coalesce(["description", "ServiceName"]).alias("ChargeDescription"),
        pl.when(recurring)
        .then(pl.lit("Recurring"))
        .when(charge == "Purchase")
        .then(pl.lit("One-Time"))
        .when(charge == "Adjustment")
        .then(pl.lit("One-Time"))
        .otherwise(pl.lit("Usage-Based"))
        .alias("ChargeFrequency"),
        _timestamp(pl.coalesce(["last_day", "first_day"]).dt.offset_by("1d")).alias(
            "ChargePeriodEnd"
        ),
        _timestamp(pl.col("first_day")).alias("ChargePeriodStart"),
        billed.alias("ContractedCost"),
        # FOCUS (and the FinOps validator, rule EffectiveCost-C-005-C) wants 0 on purchases:
        # BillByte does not amortize them, see docs/exports.md.
        pl.when(charge == "Purchase").then(pl.lit(zero)).otherwise(billed).alias("EffectiveCost"),
        pl.lit(invoice_id, dtype=pl.String).alias("InvoiceId"),
        pl.lit(issuer).alias("InvoiceIssuerName"),
        pl.when(follows_billed)
        .then(billed)
        .otherwise(_decimal_literal(pl.col("listed").cast(pl.String)))
        .alias("ListCost"),
        _plain_decimal(quantity).alias("PricingQuantity"),
        pl.when(quantity.is_null())
        .then(None)
        .otherwise(pl.col("unit").fill_null("Units"))
        .alias("PricingUnit"),
        # The validator requires BilledCost 0 wherever ProviderName differs from the invoice
        # issuer: to the customer, the MSP is the provider, the vendor the publisher.
        pl.lit(issuer).alias("ProviderName"),
        publisher.alias("PublisherName"),
        pl.col("region_id").alias("RegionId"),
        pl.when(pl.col("region_id").is_null())
        .then(None)
        .otherwise(pl.coalesce(["region_name", "region_id"]))
        .alias("RegionName"),
        pl.col("ServiceCategory"),
        pl.col("ServiceName"),
        pl.format("Other ({})", pl.col("ServiceCategory")).alias("ServiceSubcategory"),
        pl.when(is_tax)
        .then(None)
        .when(usage_or_purchase)
        .then(pl.coalesce(["sku_id", "ServiceName"]))
        .otherwise(pl.col("sku_id"))
        .alias("SkuId"),
        pl.col("sub_account_id").alias("SubAccountId"),
        pl.when(pl.col("sub_account_id").is_null())
        .then(None)
        .otherwise(pl.coalesce(["sub_account_name", "sub_account_id"]))
        .alias("SubAccountName"),
        pl.col("Tags"),
        pl.col("vendor").alias("x_Vendor"),
        pl.col("kind").alias("x_ChargeKind"),
        pl.col("line_key").alias("x_ChargeLineKey"),
    )
    return frame.select(COLUMNS)


def _iso(day: date) -> str:
    return f"{day.isoformat()}T00:00:00Z"


# The cost and quantity columns: plain decimal literals written by BillByte, always with a
# fraction (36.0 in JPY, 2.0 seats), left as they are (a credit's -5.00 is a number). Every
# other column is text and neutralised against formulas.
NUMERIC_COLUMNS = ("BilledCost", "ContractedCost", "EffectiveCost", "ListCost", "PricingQuantity")


def to_csv(frame: pl.DataFrame) -> str:
    return frame_to_csv(frame, numeric=NUMERIC_COLUMNS)
