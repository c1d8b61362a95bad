"""Google Cloud Billing export (standard and detailed usage cost, BigQuery schema).

Read either as CSV with dotted column names (``service.description``, ``usage.amount``,
``invoice.month`` …, the repeated ``credits``/``labels`` fields as JSON or Python-repr
text) or as JSON lines with nested objects, which staging flattens to the same dotted names.

Google nests the credits applied to a line inside that line. BillByte keeps one canonical
line per export row (the row is the vendor's unit of restatement) and states the money as
Google invoices it:

- ``billed_cost`` = ``cost`` + Σ ``credits[].amount`` (credits are negative): the net that
  Google bills for the row;
- ``effective_cost`` = the same net;
- ``contracted_cost`` = ``cost`` (the negotiated price before credits);
- ``list_cost`` = ``cost_at_list`` when the export has it, else ``cost``.

The credit amounts are summed exactly: each ``amount`` is taken from the text with a regular
expression and parsed as a decimal — never through a float. See
``docs/vendors/google-cloud.md`` for the full mapping.
"""

from __future__ import annotations

from collections.abc import Sequence

import polars as pl

from billbyte.usage.canonical import MONEY
from billbyte.usage.normalize import Field, Kind, clean, const, to_money, to_timestamp
from billbyte.usage.readers.base import ColumnMapping, Reader, has_all

PROVIDER = "Google Cloud"

# "amount": -5e-06 (JSON) or 'amount': -5e-06 (Python repr, as some CSV extracts write it);
# a quoted number is accepted too.
_AMOUNT = r"""["']amount["']\s*:\s*["']?(-?[0-9]+(?:\.[0-9]*)?(?:[eE][-+]?[0-9]+)?)"""
_AMOUNT_KEY = r"""["']amount["']\s*:"""
_NUMBER = r"""(-?[0-9]+(?:\.[0-9]*)?(?:[eE][-+]?[0-9]+)?)["']?$"""

# Google labels: keys and values are lower-case letters, digits, '_' and '-' (system labels
# add '.', '/' and ':'), so neither can contain a quote or a backslash.
_LABEL = r"""\{[^{}]*\}"""
_LABEL_KEY = r"""["']key["']\s*:\s*["']([^"'\\]*)["']"""
_LABEL_VALUE = r"""["']value["']\s*:\s*["']([^"'\\]*)["']"""

_COST_TYPES = {
    "regular": "Usage",
    "tax": "Tax",
    "adjustment": "Adjustment",
    "rounding_error": "Adjustment",
    "credit": "Credit",
}


def _col(columns: set[str], name: str) -> pl.Expr:
    return clean(pl.col(name)) if name in columns else pl.lit(None, dtype=pl.String)


def credits_total(credits: pl.Expr) -> pl.Expr:
    """Exact sum of the credit amounts of each row (0 for '[]'); null if an amount is unreadable."""
    amounts = credits.str.extract_all(_AMOUNT)
    total = amounts.list.eval(to_money(pl.element().str.extract(_NUMBER, 1))).list.sum()
    readable = amounts.list.len() == credits.str.count_matches(_AMOUNT_KEY)
    return pl.when(credits.is_null()).then(pl.lit(0, dtype=MONEY)).when(readable).then(total)


def net_cost(cost: pl.Expr, credits: pl.Expr) -> pl.Expr:
    """Raw text of cost + credits; unreadable input is passed through for the error report."""
    has_credits = credits.str.count_matches(_AMOUNT_KEY).fill_null(0) > 0
    net = to_money(cost) + credits_total(credits)
    return (
        pl.when(~has_credits)
        .then(cost)
        .when(net.is_not_null())
        .then(net.cast(pl.String))
        .otherwise(pl.format("cost {} with credits {}", cost, credits.str.slice(0, 40)))
    )


def labels_as_tags(labels: pl.Expr) -> pl.Expr:
    """[{'key': k, 'value': v}, …] (JSON or Python repr) → '{"k":"v",…}'; null when empty."""
    pairs = labels.str.extract_all(_LABEL).list.eval(
        pl.format(
            '"{}":"{}"',
            pl.element().str.extract(_LABEL_KEY, 1),
            pl.element().str.extract(_LABEL_VALUE, 1).fill_null(""),
        )
    )
    joined = pairs.list.join(",")
    return (
        pl.when(joined.is_null() | (joined == ""))
        .then(None)
        .otherwise(pl.concat_str([pl.lit("{"), joined, pl.lit("}")]))
    )


def invoice_month(raw: pl.Expr, offset: str | None) -> pl.Expr:
    """'202011' (or '2020-11') → '2020-11-01' (plus ``offset``); other text passes through."""
    parts = raw.str.extract_groups(r"^(\d{4})-?(\d{2})$")
    start = pl.concat_str([parts.struct[0], pl.lit("-"), parts.struct[1], pl.lit("-01")])
    parsed = to_timestamp(start)
    if offset:
        parsed = parsed.dt.offset_by(offset)
    return pl.when(parsed.is_not_null()).then(parsed.dt.to_string("%Y-%m-%d")).otherwise(raw)


def _month_of(raw: pl.Expr, offset: str | None) -> pl.Expr:
    parsed = to_timestamp(raw).dt.truncate("1mo")
    if offset:
        parsed = parsed.dt.offset_by(offset)
    return pl.when(parsed.is_not_null()).then(parsed.dt.to_string("%Y-%m-%d")).otherwise(raw)


class GoogleBillingExportReader:
    name = "gcp_billing_export"
    description = "Google Cloud Billing export (standard/detailed, BigQuery schema; CSV or JSON)"

    def score(self, columns: Sequence[str]) -> int:
        core = ("billing_account_id", "cost", "currency", "usage_start_time")
        present = set(columns)
        return 90 if has_all(columns, *core) and present & {"service.description", "sku.id"} else 0

    def mapping(self, columns: Sequence[str]) -> ColumnMapping:
        present = set(columns)

        def c(name: str) -> pl.Expr:
            return _col(present, name)

        def text(*names: str) -> Field:
            found = [n for n in names if n in present]
            if not found:
                return const(None)
            return Field(pl.coalesce([c(n) for n in found]), Kind.TEXT, found[0])

        cost, credits = c("cost"), c("credits")
        net = Field(net_cost(cost, credits), Kind.MONEY, "cost + credits[].amount")
        gross = Field(cost, Kind.MONEY, "cost")
        at_list = "cost_at_list" in present
        list_cost = Field(pl.coalesce([c("cost_at_list"), cost]), Kind.MONEY, "cost_at_list")
        month = c("invoice.month")
        start = c("usage_start_time")
        # invoice.month is the month Google invoices the row in: late usage belongs to it.
        period_start = pl.coalesce([invoice_month(month, None), _month_of(start, None)])
        period_end = pl.coalesce([invoice_month(month, "1mo"), _month_of(start, "1mo")])
        cost_type = c("cost_type").str.to_lowercase()
        category = cost_type.replace_strict(_COST_TYPES, default="Usage", return_dtype=pl.String)
        fields: dict[str, Field] = {
            "billed_cost": net,
            "effective_cost": net,
            "contracted_cost": gross,
            "list_cost": list_cost if at_list else gross,
            "billing_currency": text("currency"),
            "billing_account_id": text("billing_account_id"),
            "sub_account_id": text("project.id"),
            "sub_account_name": text("project.name"),
            "charge_category": Field(category.fill_null("Usage"), Kind.TEXT, "cost_type"),
            "charge_frequency": Field(
                pl.when(category.fill_null("Usage") == "Usage")
                .then(pl.lit("Usage-Based"))
                .otherwise(pl.lit("One-Time")),
                Kind.TEXT,
                "cost_type",
            ),
            "charge_description": text("sku.description"),
            "charge_period_start": Field(start, Kind.TIMESTAMP, "usage_start_time"),
            "charge_period_end": Field(c("usage_end_time"), Kind.TIMESTAMP, "usage_end_time"),
            "billing_period_start": Field(period_start, Kind.TIMESTAMP, "invoice.month"),
            "billing_period_end": Field(period_end, Kind.TIMESTAMP, "invoice.month"),
            "consumed_quantity": Field(c("usage.amount"), Kind.QUANTITY, "usage.amount"),
            "consumed_unit": text("usage.unit"),
            "pricing_quantity": Field(
                c("usage.amount_in_pricing_units"), Kind.QUANTITY, "usage.amount_in_pricing_units"
            ),
            "pricing_unit": text("usage.pricing_unit"),
            "provider_name": const(PROVIDER),
            "publisher_name": Field(
                pl.coalesce([c("seller_name"), pl.lit(PROVIDER)]), Kind.TEXT, "seller_name"
            ),
            "invoice_issuer_name": const(PROVIDER),
            "service_name": text("service.description"),
            "sku_id": text("sku.id"),
            "region_id": text("location.region", "location.location"),
            "region_name": text("location.location"),
            "availability_zone": text("location.zone"),
            "resource_id": text("resource.global_name", "resource.name"),
            "resource_name": text("resource.name"),
            "tags": Field(labels_as_tags(c("labels")), Kind.TEXT, "labels"),
        }
        line = pl.concat_str(
            [
                c(n).fill_null("")
                for n in (
                    "billing_account_id",
                    "project.id",
                    "service.id",
                    "sku.id",
                    "usage_start_time",
                    "usage_end_time",
                    "location.location",
                    "resource.global_name",
                    "cost_type",
                    "invoice.month",
                )
            ],
            separator="|",
        )
        return ColumnMapping(fields=fields, line_identity=line)


READERS: list[Reader] = [GoogleBillingExportReader()]
