"""The canonical usage line: FOCUS 1.2 columns in snake_case, plus lineage.

Costs are Decimal(38, 24): 14 integer digits and 24 decimals hold every cost seen in
vendor files (AWS writes up to 11 decimals, Azure amortized exports up to 28); a value
with more than 24 decimals is rounded half-even to 24 and counted in the import report.
Quantities are Decimal(38, 18). Timestamps are UTC, microseconds, without zone.
"""

from __future__ import annotations

import polars as pl

MONEY = pl.Decimal(38, 24)
QUANTITY = pl.Decimal(38, 18)
TIMESTAMP = pl.Datetime("us")
MONEY_SCALE = 24
QUANTITY_SCALE = 18

COST_COLUMNS = ("billed_cost", "effective_cost", "list_cost", "contracted_cost")
PRICE_COLUMNS = ("list_unit_price", "contracted_unit_price")
QUANTITY_COLUMNS = ("consumed_quantity", "pricing_quantity")
TIMESTAMP_COLUMNS = (
    "billing_period_start",
    "billing_period_end",
    "charge_period_start",
    "charge_period_end",
)
TEXT_COLUMNS = (
    "billing_account_id",
    "billing_account_name",
    "sub_account_id",
    "sub_account_name",
    "billing_currency",
    "charge_category",
    "charge_class",
    "charge_frequency",
    "charge_description",
    "consumed_unit",
    "pricing_unit",
    "pricing_category",
    "provider_name",
    "publisher_name",
    "invoice_issuer_name",
    "invoice_id",
    "service_category",
    "service_name",
    "sku_id",
    "sku_price_id",
    "region_id",
    "region_name",
    "availability_zone",
    "resource_id",
    "resource_name",
    "resource_type",
    "commitment_discount_id",
    "commitment_discount_name",
    "commitment_discount_type",
    "commitment_discount_category",
    "commitment_discount_status",
    "tags",
)
LINEAGE_COLUMNS = ("import_id", "row_number", "line_key")

SCHEMA: dict[str, pl.DataType] = {
    "import_id": pl.String(),
    "row_number": pl.Int64(),
    "line_key": pl.String(),
    **{name: MONEY for name in COST_COLUMNS + PRICE_COLUMNS},
    **{name: QUANTITY for name in QUANTITY_COLUMNS},
    **{name: TIMESTAMP for name in TIMESTAMP_COLUMNS},
    **{name: pl.String() for name in TEXT_COLUMNS},
}
COLUMNS = tuple(SCHEMA)

# A line without these cannot be billed: the file is rejected if any row lacks them.
REQUIRED = ("billed_cost", "billing_currency", "charge_period_start", "billing_period_start")
