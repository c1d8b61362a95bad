"""FOCUS 1.0-1.2 exports (AWS Data Exports, Azure Cost Management, Google, OCI, ...)."""

from __future__ import annotations

from collections.abc import Sequence

import polars as pl

from billbyte.kit.focus import CHARGE_CATEGORIES, CHARGE_CLASSES, CHARGE_FREQUENCIES
from billbyte.usage.normalize import Field, Kind, col, const, money, quantity, text, timestamp
from billbyte.usage.readers.base import Mapping_, first_present, has_all

# FOCUS column → canonical column (the canonical schema *is* FOCUS in snake_case).
_TEXT = {
    "BillingAccountId": "billing_account_id",
    "BillingAccountName": "billing_account_name",
    "SubAccountId": "sub_account_id",
    "SubAccountName": "sub_account_name",
    "BillingCurrency": "billing_currency",
    "ChargeCategory": "charge_category",
    "ChargeClass": "charge_class",
    "ChargeFrequency": "charge_frequency",
    "ChargeDescription": "charge_description",
    "ConsumedUnit": "consumed_unit",
    "PricingUnit": "pricing_unit",
    "PricingCategory": "pricing_category",
    "ProviderName": "provider_name",
    "PublisherName": "publisher_name",
    "InvoiceIssuerName": "invoice_issuer_name",
    "InvoiceId": "invoice_id",
    "ServiceCategory": "service_category",
    "ServiceName": "service_name",
    "SkuId": "sku_id",
    "SkuPriceId": "sku_price_id",
    "RegionId": "region_id",
    "RegionName": "region_name",
    "AvailabilityZone": "availability_zone",
    "ResourceId": "resource_id",
    "ResourceName": "resource_name",
    "ResourceType": "resource_type",
    "CommitmentDiscountId": "commitment_discount_id",
    "CommitmentDiscountName": "commitment_discount_name",
    "CommitmentDiscountType": "commitment_discount_type",
    "CommitmentDiscountCategory": "commitment_discount_category",
    "CommitmentDiscountStatus": "commitment_discount_status",
    "Tags": "tags",
}
_MONEY = {
    "BilledCost": "billed_cost",
    "EffectiveCost": "effective_cost",
    "ListCost": "list_cost",
    "ContractedCost": "contracted_cost",
    "ListUnitPrice": "list_unit_price",
    "ContractedUnitPrice": "contracted_unit_price",
}
_QUANTITY = {"ConsumedQuantity": "consumed_quantity", "PricingQuantity": "pricing_quantity"}
_TIME = {
    "BillingPeriodStart": "billing_period_start",
    "BillingPeriodEnd": "billing_period_end",
    "ChargePeriodStart": "charge_period_start",
    "ChargePeriodEnd": "charge_period_end",
}

# Values whose case varies between providers' exports ("Usage-based" vs "Usage-Based").
_CANONICAL_CASE = {
    "charge_category": CHARGE_CATEGORIES,
    "charge_frequency": CHARGE_FREQUENCIES,
    "charge_class": CHARGE_CLASSES,
}


def canonical_case(expr: pl.Expr, values: Sequence[str]) -> pl.Expr:
    # A when/then chain, not replace_strict(default=expr): a column as the default keeps
    # polars from streaming, and the whole file ends up in memory.
    lowered = expr.str.to_lowercase()
    result: pl.Expr = expr
    for value in values:
        result = pl.when(lowered == value.lower()).then(pl.lit(value)).otherwise(result)
    return result


class FocusReader:
    name = "focus"
    description = "FOCUS 1.0-1.2 (FinOps Open Cost and Usage Specification)"

    def score(self, columns: Sequence[str]) -> int:
        core = ("BilledCost", "BillingCurrency", "ChargePeriodStart", "BillingPeriodStart")
        return 100 if has_all(columns, *core) else 0

    def mapping(self, columns: Sequence[str]) -> Mapping_:
        present = set(columns)
        fields: dict[str, Field] = {}
        for source, target in _TEXT.items():
            fields[target] = text(source) if source in present else const(None)
        for source, target in _MONEY.items():
            fields[target] = money(source) if source in present else const(None)
        for source, target in _QUANTITY.items():
            fields[target] = quantity(source) if source in present else const(None)
        for source, target in _TIME.items():
            fields[target] = timestamp(source) if source in present else const(None)
        for target, values in _CANONICAL_CASE.items():
            spec = fields[target]
            fields[target] = Field(canonical_case(spec.raw, values), Kind.TEXT, spec.source)
        for source, target in _TIME.items():
            if source not in present:
                fields[target] = Field(pl.lit(None, dtype=pl.String), Kind.TIMESTAMP, source)
        # FOCUS 1.0 had ProviderName only; 1.2 also has ServiceProviderName / HostProviderName.
        provider = first_present(columns, "ServiceProviderName", "ProviderName")
        if provider:
            fields["provider_name"] = text(provider)
        identity = col("Id") if "Id" in present else None  # not standard; some exports add it
        return Mapping_(fields=fields, line_identity=identity)
