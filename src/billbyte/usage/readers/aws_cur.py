"""AWS Cost and Usage Report: legacy CUR and CUR 2.0 (Data Exports), CSV, CSV.gz, Parquet.

The three spellings of the CUR columns are read by one mapping:

* legacy CSV: ``category/Name`` (``lineItem/UnblendedCost``, ``resourceTags/user:team``);
* legacy Parquet / Athena: the same names in snake case (``line_item_unblended_cost``,
  ``resource_tags_user_team``, ``savings_plan_savings_plan_a_r_n``);
* CUR 2.0: snake case with a fixed schema, where tags, cost categories, discounts and
  most product attributes are *map* columns (``resource_tags``, ``product``) — JSON text
  in CSV, a Parquet map in Parquet (staged as JSON text).

Every header name is reduced to the Athena snake form (``snake``) and the mapping looks
columns up by that form, so ``lineItem/UnblendedCost`` and ``line_item_unblended_cost``
are the same column to the reader. ``docs/vendors/aws-cur.md`` is the mapping table and
the reasoning behind each choice (unblended billed cost, amortization, credits, ...).
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass

import polars as pl

from billbyte.usage.normalize import Field, Kind, clean, col, const, to_money
from billbyte.usage.readers.base import ColumnMapping, Reader

_SEPARATORS = re.compile(r"[^0-9A-Za-z]+")
_CAMEL = re.compile(r"(?<=[0-9A-Za-z])(?=[A-Z])")


def snake(name: str) -> str:
    """The Athena spelling of a CUR column: 'savingsPlan/SavingsPlanARN' →
    'savings_plan_savings_plan_a_r_n' (AWS splits every capital, hence 'a_r_n')."""
    return _CAMEL.sub("_", _SEPARATORS.sub("_", name)).lower().strip("_")


# A CUR whichever its spelling: these three are in every CUR ever delivered.
CORE = ("line_item_unblended_cost", "line_item_currency_code", "line_item_usage_start_date")
# Columns only CUR 2.0 has (map columns and the account names added with Data Exports).
CUR2_MARKERS = (
    "product",
    "resource_tags",
    "cost_category",
    "discount",
    "bill_payer_account_name",
    "line_item_usage_account_name",
)

# lineItem/LineItemType (compared lower-cased) → FOCUS ChargeCategory / ChargeFrequency.
# Any other type ending in "Discount" (EdpDiscount, PrivateRateDiscount, BundledDiscount,
# DistributorDiscount, SppDiscount, ...) is a Credit; an unknown type is an Adjustment.
USAGE_TYPES = ("usage", "discountedusage", "savingsplancoveredusage")
PURCHASE_TYPES = ("fee", "rifee", "savingsplanupfrontfee", "savingsplanrecurringfee")
CREDIT_TYPES = ("credit", "refund", "savingsplannegation", "discount")
RECURRING_TYPES = ("rifee", "savingsplanrecurringfee")
ONE_TIME_TYPES = ("fee", "savingsplanupfrontfee", "tax", "credit", "refund")

# ServiceCategory (FOCUS 1.2 allowed values). The product family decides first where it
# names the kind of resource whatever the service (EC2 bills volumes, snapshots, IPs and
# data transfer under AmazonEC2); otherwise the product code; otherwise "Other".
FAMILY_CATEGORY = {
    "compute instance": "Compute",
    "compute": "Compute",
    "dedicated host": "Compute",
    "cpu credits": "Compute",
    "storage": "Storage",
    "storage snapshot": "Storage",
    "system operation": "Storage",
    "provisioned throughput": "Storage",
    "database instance": "Databases",
    "database storage": "Databases",
    "data transfer": "Networking",
    "ip address": "Networking",
    "nat gateway": "Networking",
    "load balancer": "Networking",
    "load balancer-application": "Networking",
    "load balancer-network": "Networking",
    "vpc endpoint": "Networking",
    "vpn connection": "Networking",
}
PRODUCT_CATEGORY = {
    "amazonec2": "Compute",
    "awslambda": "Compute",
    "amazonecs": "Compute",
    "amazoneks": "Compute",
    "amazonlightsail": "Compute",
    "awsbatch": "Compute",
    "awsstepfunctions": "Integration",
    "amazons3": "Storage",
    "amazons3glacierdeeparchive": "Storage",
    "amazonglacier": "Storage",
    "amazonefs": "Storage",
    "amazonfsx": "Storage",
    "awsbackup": "Storage",
    "amazonrds": "Databases",
    "amazondynamodb": "Databases",
    "amazonelasticache": "Databases",
    "amazonredshift": "Databases",
    "amazondocdb": "Databases",
    "amazonneptune": "Databases",
    "amazonvpc": "Networking",
    "amazoncloudfront": "Networking",
    "amazonroute53": "Networking",
    "awselb": "Networking",
    "amazonapigateway": "Networking",
    "awsdirectconnect": "Networking",
    "awsglobalaccelerator": "Networking",
    "amazoncloudwatch": "Management and Governance",
    "awscloudtrail": "Management and Governance",
    "awsconfig": "Management and Governance",
    "awssystemsmanager": "Management and Governance",
    "awscloudformation": "Management and Governance",
    "awscloudshell": "Developer Tools",
    "awscodebuild": "Developer Tools",
    "awscodepipeline": "Developer Tools",
    "amazonecr": "Developer Tools",
    "awskms": "Security",
    "awssecretsmanager": "Security",
    "awswaf": "Security",
    "awsshield": "Security",
    "amazonguardduty": "Security",
    "awssecurityhub": "Security",
    "amazoncognito": "Identity",
    "awsdirectoryservice": "Identity",
    "awsqueueservice": "Integration",
    "amazonsns": "Integration",
    "amazonmq": "Integration",
    "amazonkinesis": "Analytics",
    "awsglue": "Analytics",
    "amazonathena": "Analytics",
    "amazones": "Analytics",
    "amazonquicksight": "Analytics",
    "elasticmapreduce": "Analytics",
    "amazonsagemaker": "AI and Machine Learning",
    "amazonbedrock": "AI and Machine Learning",
    "amazonrekognition": "AI and Machine Learning",
    "awsiot": "Internet of Things",
    "awsmigrationhubrefactorspaces": "Migration",
    "awsdms": "Migration",
    "awsdatatransfer": "Networking",
    "amazonses": "Business Applications",
    "amazonconnect": "Business Applications",
    "amazonworkspaces": "Business Applications",
    "awssupportbusiness": "Other",
    "awssupportenterprise": "Other",
}


def _lower(expr: pl.Expr) -> pl.Expr:
    return expr.str.to_lowercase()


def _json_string(expr: pl.Expr) -> pl.Expr:
    """A text value as a JSON string literal (quotes, backslashes, controls escaped)."""
    return pl.struct(expr.alias("v")).struct.json_encode().str.slice(5).str.strip_suffix("}")


_MAP_NULL_ENTRY = r'"[^"\\]*"\s*:\s*null\s*,?'


def map_object(expr: pl.Expr) -> pl.Expr:
    """A CUR 2.0 map column (JSON object text) without null entries; null if empty.

    Keys of AWS maps (tag keys, product attribute names) never contain quotes or
    backslashes, so a ``"key":null`` entry is recognised without parsing the JSON.
    """
    text = (
        expr.str.replace_all(_MAP_NULL_ENTRY, "").str.replace(r",\s*\}\s*$", "}").str.strip_chars()
    )
    return pl.when(text.str.contains(r"^\{\s*\}$")).then(None).otherwise(text)


def tags_object(columns: Sequence[tuple[str, str]]) -> pl.Expr:
    """Legacy tag columns (``resourceTags/user:team`` ...) as one JSON object text,
    keeping only the tags a row has; null when it has none."""
    fragments = [
        pl.when(col(name).is_not_null()).then(
            pl.concat_str([pl.lit(json.dumps(key) + ":"), _json_string(col(name))])
        )
        for name, key in columns
    ]
    body = pl.concat_str(fragments, separator=",", ignore_nulls=True)
    return (
        pl.when(body.is_null() | (body == ""))
        .then(None)
        .otherwise(pl.concat_str([pl.lit("{"), body, pl.lit("}")]))
    )


def _money_text(*terms: tuple[int, pl.Expr]) -> pl.Expr:
    """Σ sign·term as decimal text, missing terms counting as 0. If a present term is not
    a number, the original texts are returned instead so that validation reports them."""
    parsed = [(sign, raw, to_money(raw)) for sign, raw in terms]
    readable = pl.all_horizontal([raw.is_null() | value.is_not_null() for _, raw, value in parsed])
    signed = [value.fill_null(0) if sign > 0 else -value.fill_null(0) for sign, _, value in parsed]
    shown = pl.concat_str(
        [pl.concat_str([pl.lit("+" if s > 0 else "-"), raw.fill_null("")]) for s, raw, _ in parsed],
        separator=" ",
    )
    return pl.when(readable).then(pl.sum_horizontal(signed).cast(pl.String)).otherwise(shown)


@dataclass(frozen=True)
class _Columns:
    """The file's columns looked up by their snake spelling."""

    by_snake: dict[str, str]

    @classmethod
    def of(cls, columns: Sequence[str]) -> _Columns:
        by_snake: dict[str, str] = {}
        for name in columns:
            by_snake.setdefault(snake(name), name)
        return cls(by_snake)

    def name(self, *candidates: str) -> str | None:
        for candidate in candidates:
            if candidate in self.by_snake:
                return self.by_snake[candidate]
        return None

    def expr(self, *candidates: str) -> pl.Expr:
        """The cleaned text of the first present column, else a null literal."""
        name = self.name(*candidates)
        return col(name) if name else pl.lit(None, dtype=pl.String)

    def source(self, *candidates: str) -> str:
        return self.name(*candidates) or candidates[0]


def _text(expr: pl.Expr, source: str = "") -> Field:
    return Field(expr, Kind.TEXT, source)


class AwsCurReader:
    """Legacy CUR (slash or Athena snake names) and CUR 2.0; one mapping for both."""

    def __init__(self, name: str, description: str, cur2: bool) -> None:
        self.name = name
        self.description = description
        self._cur2 = cur2

    def score(self, columns: Sequence[str]) -> int:
        snakes = {snake(c) for c in columns}
        if not all(core in snakes for core in CORE):
            return 0
        is_cur2 = any(marker in columns for marker in CUR2_MARKERS)
        if self._cur2:
            return 110 if is_cur2 else 50
        return 100

    def mapping(self, columns: Sequence[str]) -> ColumnMapping:
        c = _Columns.of(columns)
        product_map = c.name("product") if "product" in columns else None

        def product(*candidates: str, key: str) -> pl.Expr:
            """A product attribute: its own column, else the CUR 2.0 ``product`` map."""
            own = c.expr(*candidates)
            if product_map is None:
                return own
            from_map = clean(col(product_map).str.json_path_match(f"$.{key}"))
            return pl.coalesce([own, from_map])

        kind = _lower(c.expr("line_item_line_item_type"))
        category = (
            pl.when(kind.is_null())
            .then(None)
            .when(kind.is_in(USAGE_TYPES))
            .then(pl.lit("Usage"))
            .when(kind == "tax")
            .then(pl.lit("Tax"))
            .when(kind.is_in(PURCHASE_TYPES))
            .then(pl.lit("Purchase"))
            .when(kind.is_in(CREDIT_TYPES) | kind.str.ends_with("discount"))
            .then(pl.lit("Credit"))
            .otherwise(pl.lit("Adjustment"))
        )
        charge_class = pl.when(kind == "refund").then(pl.lit("Correction"))
        frequency = (
            pl.when(kind.is_null())
            .then(None)
            .when(kind.is_in(RECURRING_TYPES))
            .then(pl.lit("Recurring"))
            .when(kind.is_in(ONE_TIME_TYPES))
            .then(pl.lit("One-Time"))
            .otherwise(pl.lit("Usage-Based"))
        )

        unblended_name = c.source("line_item_unblended_cost")
        unblended = c.expr("line_item_unblended_cost")
        effective, effective_source = self._effective_cost(c, kind, unblended)

        sp_arn = c.expr("savings_plan_savings_plan_a_r_n", "savings_plan_savings_plan_arn")
        ri_arn = c.expr("reservation_reservation_a_r_n", "reservation_reservation_arn")
        covered = kind.is_in(["discountedusage", "savingsplancoveredusage"])

        usage_amount = c.expr("line_item_usage_amount")
        unit = c.expr("pricing_unit")
        resource = c.expr("line_item_resource_id")
        billing_entity = c.expr("bill_billing_entity")
        product_code = c.expr("line_item_product_code")
        family = product("product_product_family", key="product_family")

        fields: dict[str, Field] = {
            "billed_cost": Field(unblended, Kind.MONEY, unblended_name),
            "effective_cost": Field(effective, Kind.MONEY, effective_source),
            "list_cost": self._money(c, "pricing_public_on_demand_cost"),
            "contracted_cost": self._money(c, "line_item_net_unblended_cost"),
            "list_unit_price": self._money(c, "pricing_public_on_demand_rate"),
            "contracted_unit_price": self._money(c, "line_item_net_unblended_rate"),
            "consumed_quantity": Field(
                pl.when(category == "Usage").then(usage_amount),
                Kind.QUANTITY,
                c.source("line_item_usage_amount"),
            ),
            "pricing_quantity": Field(
                usage_amount, Kind.QUANTITY, c.source("line_item_usage_amount")
            ),
            "billing_period_start": self._time(c, "bill_billing_period_start_date"),
            "billing_period_end": self._time(c, "bill_billing_period_end_date"),
            "charge_period_start": self._time(c, "line_item_usage_start_date"),
            "charge_period_end": self._time(c, "line_item_usage_end_date"),
            "billing_account_id": _text(c.expr("bill_payer_account_id")),
            "billing_account_name": _text(c.expr("bill_payer_account_name")),
            "sub_account_id": _text(c.expr("line_item_usage_account_id")),
            "sub_account_name": _text(c.expr("line_item_usage_account_name")),
            "billing_currency": _text(
                c.expr("line_item_currency_code"), c.source("line_item_currency_code")
            ),
            "charge_category": _text(category),
            "charge_class": _text(charge_class),
            "charge_frequency": _text(frequency),
            "charge_description": _text(c.expr("line_item_line_item_description")),
            "consumed_unit": _text(pl.when(category == "Usage").then(unit)),
            "pricing_unit": _text(unit),
            "pricing_category": _text(
                pl.when(covered)
                .then(pl.lit("Committed"))
                .when(_lower(c.expr("line_item_usage_type")).str.contains("spotusage"))
                .then(pl.lit("Dynamic"))
                .when(_lower(c.expr("pricing_term")) == "ondemand")
                .then(pl.lit("Standard"))
                .when(_lower(c.expr("pricing_term")) == "reserved")
                .then(pl.lit("Committed"))
                .when(category == "Usage")
                .then(pl.lit("Other"))
            ),
            "provider_name": const("AWS"),
            "publisher_name": _text(
                pl.coalesce(
                    [
                        c.expr("line_item_legal_entity"),
                        pl.when(billing_entity == "AWS")
                        .then(pl.lit("Amazon Web Services"))
                        .otherwise(billing_entity),
                    ]
                )
            ),
            "invoice_issuer_name": _text(c.expr("bill_invoicing_entity")),
            "invoice_id": _text(c.expr("bill_invoice_id")),
            "service_category": _text(
                pl.coalesce(
                    [
                        _lower(family).replace_strict(
                            FAMILY_CATEGORY, default=None, return_dtype=pl.String
                        ),
                        _lower(product_code).replace_strict(
                            PRODUCT_CATEGORY, default=None, return_dtype=pl.String
                        ),
                        pl.lit("Other"),
                    ]
                )
            ),
            "service_name": _text(
                pl.coalesce([product("product_product_name", key="product_name"), product_code])
            ),
            "sku_id": _text(product("product_sku", key="sku")),
            "sku_price_id": _text(c.expr("pricing_rate_code", "pricing_rate_id")),
            "region_id": _text(
                pl.coalesce(
                    [
                        product("product_region_code", key="region_code"),
                        product("product_region", key="region"),
                    ]
                )
            ),
            "region_name": _text(product("product_location", key="location")),
            "availability_zone": _text(c.expr("line_item_availability_zone")),
            "resource_id": _text(resource),
            "resource_type": _text(
                pl.when(resource.str.starts_with("arn:")).then(
                    resource.str.split(":")
                    .list.get(5, null_on_oob=True)
                    .str.split("/")
                    .list.first()
                )
            ),
            "commitment_discount_id": _text(pl.coalesce([sp_arn, ri_arn])),
            "commitment_discount_type": _text(
                pl.when(sp_arn.is_not_null())
                .then(pl.lit("Savings Plan"))
                .when(ri_arn.is_not_null())
                .then(pl.lit("Reserved Instance"))
            ),
            "commitment_discount_category": _text(
                pl.when(sp_arn.is_not_null())
                .then(pl.lit("Spend"))
                .when(ri_arn.is_not_null())
                .then(pl.lit("Usage"))
            ),
            "commitment_discount_status": _text(
                pl.when(covered & pl.coalesce([sp_arn, ri_arn]).is_not_null()).then(pl.lit("Used"))
            ),
            "tags": _text(self._tags(columns)),
        }
        identity = pl.concat_str(
            [
                c.expr("identity_line_item_id").fill_null(""),
                pl.lit("|"),
                c.expr("identity_time_interval").fill_null(""),
            ]
        )
        has_identity = c.name("identity_line_item_id") is not None
        return ColumnMapping(
            fields=fields,
            line_identity=identity if has_identity else None,
            # One CUR covers one payer account for a billing period: a re-delivery of the
            # payer's month replaces the earlier one whole (docs/vendors/aws-cur.md).
            scope=c.expr("bill_payer_account_id"),
        )

    @staticmethod
    def _money(c: _Columns, name: str) -> Field:
        present = c.name(name)
        return Field(col(present), Kind.MONEY, present) if present else const(None)

    @staticmethod
    def _time(c: _Columns, name: str) -> Field:
        present = c.name(name)
        if present is None:
            return Field(pl.lit(None, dtype=pl.String), Kind.TIMESTAMP, name)
        return Field(col(present), Kind.TIMESTAMP, present)

    @staticmethod
    def _effective_cost(c: _Columns, kind: pl.Expr, unblended: pl.Expr) -> tuple[pl.Expr, str]:
        """Amortized cost as AWS's CUR query library computes it (docs/vendors/aws-cur.md).

        A component column the file lacks leaves that line type at its unblended cost:
        a CUR without reservation columns has no reservation to amortize.
        """
        used: list[str] = [c.source("line_item_unblended_cost")]

        def present(*names: str) -> bool:
            found = [c.name(n) for n in names]
            if all(found):
                used.extend(n for n in found if n)
                return True
            return False

        branches: list[tuple[pl.Expr, pl.Expr]] = []
        if present("savings_plan_savings_plan_effective_cost"):
            branches.append(
                (
                    kind == "savingsplancoveredusage",
                    c.expr("savings_plan_savings_plan_effective_cost"),
                )
            )
        if present("reservation_effective_cost"):
            branches.append((kind == "discountedusage", c.expr("reservation_effective_cost")))
        # The negation and the upfront fee are replaced by the covered usage's effective
        # cost; the RI upfront fee (a Fee carrying a reservation ARN) by its amortization.
        zero = pl.lit("0")
        branches.append((kind.is_in(["savingsplannegation", "savingsplanupfrontfee"]), zero))
        ri_arn = c.name("reservation_reservation_a_r_n", "reservation_reservation_arn")
        if ri_arn:
            branches.append(((kind == "fee") & col(ri_arn).is_not_null(), zero))
        # What stays of a commitment fee is its unused part.
        if present(
            "reservation_unused_amortized_upfront_fee_for_billing_period",
            "reservation_unused_recurring_fee",
        ):
            branches.append(
                (
                    kind == "rifee",
                    _money_text(
                        (1, c.expr("reservation_unused_amortized_upfront_fee_for_billing_period")),
                        (1, c.expr("reservation_unused_recurring_fee")),
                    ),
                )
            )
        if present("savings_plan_total_commitment_to_date", "savings_plan_used_commitment"):
            branches.append(
                (
                    kind == "savingsplanrecurringfee",
                    _money_text(
                        (1, c.expr("savings_plan_total_commitment_to_date")),
                        (-1, c.expr("savings_plan_used_commitment")),
                    ),
                )
            )
        expr = unblended
        for condition, value in reversed(branches):
            expr = pl.when(condition).then(value).otherwise(expr)
        source = "amortized cost from " + ", ".join(dict.fromkeys(used))
        return expr, source

    @staticmethod
    def _tags(columns: Sequence[str]) -> pl.Expr:
        if "resource_tags" in columns:  # CUR 2.0 map
            return map_object(col("resource_tags"))
        pairs: list[tuple[str, str]] = []
        for name in columns:
            if name.startswith("resourceTags/"):
                pairs.append((name, name.removeprefix("resourceTags/")))
            elif name.startswith("resource_tags_"):
                pairs.append((name, name.removeprefix("resource_tags_")))
        if not pairs:
            return pl.lit(None, dtype=pl.String)
        return tags_object(pairs)


READERS: list[Reader] = [
    AwsCurReader(
        "aws_cur",
        "AWS Cost and Usage Report (legacy CUR: lineItem/... or Athena snake_case columns)",
        cur2=False,
    ),
    AwsCurReader(
        "aws_cur2",
        "AWS CUR 2.0 (Data Exports; snake_case with product/resource_tags map columns)",
        cur2=True,
    ),
]
