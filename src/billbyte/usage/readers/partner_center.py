"""Microsoft Partner Center: reconciliation line items and daily rated usage.

Four layouts, each its own reader so that one import never mixes them (the pipeline
refuses an import whose files detect as different formats):

- ``partner_center_usage``: new-commerce daily rated usage (``DailyRatedUsageLineItem``:
  billed and unbilled consumption pages of the invoice API, and the daily rated usage
  recon CSV). Money: ``billingPreTaxTotal``.
- ``partner_center_recon``: one-time / new-commerce billing line items
  (``OneTimeInvoiceLineItem``: billed and unbilled recon pages, and the new-commerce invoice
  reconciliation CSV). Money: ``subtotal``.
- ``partner_center_licence``: legacy licence-based (Office / Microsoft 365) billing line
  items (``LicenseBasedLineItem`` pages and the licence-based recon CSV). Money: ``subtotal``.
- ``partner_center_azure_legacy``: legacy Azure (MS-AZR-0145P) billing line items
  (``UsageBasedLineItem`` pages and the usage-based recon CSV). Money: ``pretaxCharges``.

The legacy Azure *usage* line items (``DailyUsageLineItem``) carry quantities only — no
cost, no currency — so they are recognised and rejected with a message saying what to
import instead.

The API pages are camelCase and the recon CSV files PascalCase (with a few other spellings:
``ResourceURI``, ``MPNID``, ``UsageDate`` inside JSON pages), so every column is looked up
case-insensitively, and where an import's files spell a column differently the spellings
are coalesced. See ``docs/vendors/microsoft-partner-center.md`` for the full mapping.
"""

from __future__ import annotations

from collections.abc import Sequence

import polars as pl

from billbyte.usage.normalize import (
    Field,
    Kind,
    clean,
    const,
    tags_from_json_like,
    to_money,
    to_timestamp,
)
from billbyte.usage.readers.base import ColumnMapping, Reader

PROVIDER = "Microsoft"


class Columns:
    """Case-insensitive access to a header; several spellings of one column are coalesced."""

    def __init__(self, columns: Sequence[str]) -> None:
        self.columns = list(columns)
        self._lower: dict[str, list[str]] = {}
        for name in self.columns:
            self._lower.setdefault(name.lower(), []).append(name)

    def find(self, *names: str) -> list[str]:
        found: list[str] = []
        for name in names:
            for actual in self._lower.get(name.lower(), []):
                if actual not in found:
                    found.append(actual)
        return found

    def has(self, *names: str) -> bool:
        return bool(self.find(*names))

    def raw(self, *names: str) -> pl.Expr:
        """The cleaned text of the first present spelling (null when none is present)."""
        found = self.find(*names)
        if not found:
            return pl.lit(None, dtype=pl.String)
        exprs = [clean(pl.col(name)) for name in found]
        return exprs[0] if len(exprs) == 1 else pl.coalesce(exprs)

    def source(self, *names: str) -> str:
        found = self.find(*names)
        return found[0] if found else names[0]

    def field(self, kind: Kind, *names: str) -> Field:
        if not self.has(*names):
            return Field(pl.lit(None, dtype=pl.String), kind, names[0])
        return Field(self.raw(*names), kind, self.source(*names))

    def text(self, *names: str) -> Field:
        return self.field(Kind.TEXT, *names)

    def money(self, *names: str) -> Field:
        return self.field(Kind.MONEY, *names)

    def quantity(self, *names: str) -> Field:
        return self.field(Kind.QUANTITY, *names)

    def timestamp(self, *names: str) -> Field:
        return self.field(Kind.TIMESTAMP, *names)


# --- derived fields ------------------------------------------------------------------------


def _without_offset(raw: pl.Expr) -> pl.Expr:
    # Billing months are calendar months as Microsoft writes the date: "2019-02-01T00:00:00
    # -08:00" belongs to February, not to the UTC instant's month.
    return raw.str.replace(r"(Z|[+-]\d{2}:?\d{2})$", "")


def _shifted(raw: pl.Expr, source: str, *, truncate: bool, offset: str | None) -> Field:
    """A timestamp derived from ``raw``; unparseable text is passed through for the error."""
    parsed = to_timestamp(_without_offset(raw))
    derived = parsed.dt.truncate("1mo") if truncate else parsed
    if offset:
        derived = derived.dt.offset_by(offset)
    text = pl.when(parsed.is_not_null()).then(derived.dt.to_string("%Y-%m-%d %H:%M:%S"))
    return Field(text.otherwise(raw), Kind.TIMESTAMP, source)


def month_start(raw: pl.Expr, source: str) -> Field:
    return _shifted(raw, source, truncate=True, offset=None)


def month_end(raw: pl.Expr, source: str) -> Field:
    return _shifted(raw, source, truncate=True, offset="1mo")


def day_end(raw: pl.Expr, source: str) -> Field:
    parsed = to_timestamp(raw)
    text = pl.when(parsed.is_not_null()).then(
        parsed.dt.truncate("1d").dt.offset_by("1d").dt.to_string("%Y-%m-%d %H:%M:%S")
    )
    return Field(text.otherwise(raw), Kind.TIMESTAMP, source)


def customer_id(cols: Columns) -> Field:
    """The Microsoft customer tenant id; one-time pages write it as 'org:<tenant guid>'."""
    raw = cols.raw("customerId", "customerTenantId")
    return Field(raw.str.replace(r"(?i)^org:", ""), Kind.TEXT, cols.source("customerId"))


def _charge_type(cols: Columns) -> pl.Expr:
    return cols.raw("chargeType").str.to_lowercase()


def charge_category(cols: Columns, amount: pl.Expr, default: str) -> Field:
    """FOCUS ChargeCategory from Partner Center's ChargeType (see recon-file-charge-types).

    tax → Tax; anything about usage ("Usage", "Assess usage fee …") → Usage; refunds,
    cancellations, offsets, credits and discounts → Credit; a negative purchase line
    (removeQuantity, prorated refunds) → Credit; everything else (new, renew, cycle
    charges, addQuantity, convert, activation, prorates) → ``default``.
    """
    kind = _charge_type(cols)
    expr = (
        pl.when(kind.str.contains("tax"))
        .then(pl.lit("Tax"))
        .when(kind.str.contains("usage"))
        .then(pl.lit("Usage"))
        .when(kind.str.contains("refund|cancel|offset|credit|discount"))
        .then(pl.lit("Credit"))
    )
    if default != "Usage":
        expr = expr.when(amount < 0).then(pl.lit("Credit"))
    return Field(expr.otherwise(pl.lit(default)), Kind.TEXT, cols.source("chargeType"))


def charge_class(cols: Columns, amount: pl.Expr) -> Field:
    """'Correction' for refunds, cancellations, offsets and other negative non-discount lines
    ("Assess usage fee on cancel" is a charge, not a correction)."""
    kind = _charge_type(cols).fill_null("")
    reversal = kind.str.contains("refund|cancel|offset|credit") & ~kind.str.contains("usage")
    correction = reversal | ((amount < 0).fill_null(False) & ~kind.str.contains("discount"))
    return Field(pl.when(correction).then(pl.lit("Correction")), Kind.TEXT, "chargeType")


def same_currency_only(cols: Columns, value: Field, pricing: str, billing: str) -> Field:
    """A pricing-currency amount is kept only where pricing currency = billing currency.

    Partner Center prices in a pricing currency (often USD) and bills in the customer's
    currency at ``pcToBCExchangeRate``; converting here would round, so a pricing-currency
    amount in another currency is left out (null) rather than mislabelled.
    """
    if not cols.has(pricing):
        return value
    same = cols.raw(pricing).str.to_uppercase() == cols.raw(billing).str.to_uppercase()
    return Field(pl.when(same).then(value.raw), value.kind, value.source)


def scope(cols: Columns, layout: str, currency: str, unbilled: str) -> pl.Expr:
    """'<partnerId>|<layout>|<invoice number or unbilled>|<currency>'.

    A billed invoice is its own slice; the unbilled line items of a billing period (fetched
    per currency) form one slice that each re-fetch replaces.
    """
    invoice = cols.raw("invoiceNumber") if cols.has("invoiceNumber") else pl.lit(None)
    return pl.concat_str(
        [
            cols.raw("partnerId").str.to_lowercase().fill_null(""),
            pl.lit(f"|{layout}|"),
            invoice.cast(pl.String).fill_null(unbilled),
            pl.lit("|"),
            cols.raw(currency).str.to_uppercase().fill_null(""),
        ]
    )


def retired_unbilled(cols: Columns, layout: str, currency: str) -> pl.Expr:
    """A billed invoice's lines supersede the unbilled slice of the same period: without
    this, an invoiced month would count twice (unbilled and billed)."""
    if not cols.has("invoiceNumber"):
        return pl.lit(None, dtype=pl.String)
    unbilled = pl.concat_str(
        [
            cols.raw("partnerId").str.to_lowercase().fill_null(""),
            pl.lit(f"|{layout}|unbilled|"),
            cols.raw(currency).str.to_uppercase().fill_null(""),
        ]
    )
    return pl.when(cols.raw("invoiceNumber").is_not_null()).then(unbilled)


def identity(cols: Columns, *names: str) -> pl.Expr:
    """The vendor's own line identity: the named fields joined (not unique alone)."""
    return pl.concat_str([cols.raw(n).fill_null("") for n in names], separator="|")


def _sku(cols: Columns) -> pl.Expr:
    """Microsoft catalogue item: productId:skuId (the availability goes to sku_price_id)."""
    product, sku = cols.raw("productId"), cols.raw("skuId")
    return (
        pl.when(product.is_not_null() & sku.is_not_null())
        .then(pl.concat_str([product, pl.lit(":"), sku]))
        .otherwise(pl.coalesce([product, sku]))
    )


def _common(cols: Columns) -> dict[str, Field]:
    return {
        "billing_account_id": cols.text("partnerId"),
        "billing_account_name": cols.text("partnerName"),
        "sub_account_id": customer_id(cols),
        "sub_account_name": cols.text("customerName", "customerCompanyName"),
        "provider_name": const(PROVIDER),
        "invoice_issuer_name": const(PROVIDER),
        "invoice_id": cols.text("invoiceNumber"),
    }


# --- readers -------------------------------------------------------------------------------


class DailyRatedUsageReader:
    name = "partner_center_usage"
    description = "Microsoft Partner Center daily rated usage (billed/unbilled, JSON or CSV)"

    def score(self, columns: Sequence[str]) -> int:
        cols = Columns(columns)
        core = cols.has("billingPreTaxTotal") and cols.has("billingCurrency")
        return 90 if core and cols.has("usageDate", "meterId", "chargeStartDate") else 0

    def mapping(self, columns: Sequence[str]) -> ColumnMapping:
        cols = Columns(columns)
        billed = cols.money("billingPreTaxTotal")
        amount = to_money(billed.raw)
        usage_day = cols.raw("usageDate", "chargeStartDate")
        period_from = cols.raw("chargeStartDate", "usageDate")
        fields: dict[str, Field] = {
            **_common(cols),
            "billed_cost": billed,
            "effective_cost": billed,
            "contracted_cost": billed,
            "list_cost": same_currency_only(
                cols, cols.money("pricingPreTaxTotal"), "pricingCurrency", "billingCurrency"
            ),
            "list_unit_price": same_currency_only(
                cols, cols.money("unitPrice"), "pricingCurrency", "billingCurrency"
            ),
            "contracted_unit_price": same_currency_only(
                cols, cols.money("effectiveUnitPrice"), "pricingCurrency", "billingCurrency"
            ),
            "consumed_quantity": cols.quantity("quantity"),
            "pricing_quantity": cols.quantity("quantity"),
            "consumed_unit": cols.text("unitOfMeasure", "unit", "unitType"),
            "pricing_unit": cols.text("unitType", "unitOfMeasure", "unit"),
            "billing_currency": cols.text("billingCurrency"),
            "charge_category": charge_category(cols, amount, "Usage"),
            "charge_class": charge_class(cols, amount),
            "charge_frequency": const("Usage-Based"),
            "charge_description": cols.text("meterName", "skuName"),
            "charge_period_start": Field(usage_day, Kind.TIMESTAMP, cols.source("usageDate")),
            "charge_period_end": day_end(usage_day, cols.source("usageDate")),
            "billing_period_start": month_start(period_from, cols.source("chargeStartDate")),
            "billing_period_end": month_end(period_from, cols.source("chargeStartDate")),
            "publisher_name": cols.text("publisherName"),
            "service_name": cols.text("meterCategory", "productName"),
            "sku_id": Field(pl.coalesce([cols.raw("meterId"), _sku(cols)]), Kind.TEXT, "meterId"),
            "sku_price_id": cols.text("availabilityId"),
            "region_id": cols.text("resourceLocation", "meterRegion"),
            "region_name": cols.text("meterRegion"),
            "resource_id": cols.text("resourceUri"),
            "resource_name": Field(
                cols.raw("resourceUri").str.extract(r"/([^/]+)/?$", 1), Kind.TEXT, "resourceUri"
            ),
            "resource_type": cols.text("consumedService"),
            "commitment_discount_id": cols.text("benefitOrderId", "benefitId"),
            "commitment_discount_type": cols.text("benefitType"),
            "tags": Field(tags_from_json_like(cols.raw("tags")), Kind.TEXT, "tags"),
        }
        line = identity(
            cols,
            "invoiceNumber",
            "customerId",
            "entitlementId",
            "subscriptionId",
            "resourceUri",
            "meterId",
            "usageDate",
            "chargeType",
        )
        return ColumnMapping(
            fields=fields,
            line_identity=line,
            scope=scope(cols, "usage", "billingCurrency", "unbilled"),
            retires=retired_unbilled(cols, "usage", "billingCurrency"),
        )


class OneTimeReconReader:
    name = "partner_center_recon"
    description = "Microsoft Partner Center one-time / new-commerce recon line items"

    def score(self, columns: Sequence[str]) -> int:
        cols = Columns(columns)
        if cols.has("billingPreTaxTotal") or not cols.has("subtotal", "currency"):
            return 0
        modern = ("effectiveUnitPrice", "alternateId", "billableQuantity", "orderDate")
        return 90 if cols.has("subtotal") and cols.has(*modern) else 0

    def mapping(self, columns: Sequence[str]) -> ColumnMapping:
        cols = Columns(columns)
        billed = cols.money("subtotal")
        amount = to_money(billed.raw)
        category = charge_category(cols, amount, "Purchase")
        kind = _charge_type(cols)
        frequency = (
            pl.when(category.raw == "Usage")
            .then(pl.lit("Usage-Based"))
            .when(kind.str.contains("cycle|renew"))
            .then(pl.lit("Recurring"))
            .otherwise(pl.lit("One-Time"))
        )
        charge_start = cols.raw("chargeStartDate", "subscriptionStartDate", "orderDate")
        billed_in = cols.raw("chargeStartDate", "orderDate", "subscriptionStartDate")
        reservation = cols.raw("reservationOrderId")
        fields: dict[str, Field] = {
            **_common(cols),
            "billed_cost": billed,
            "effective_cost": billed,
            "contracted_cost": billed,
            "list_unit_price": same_currency_only(
                cols, cols.money("unitPrice"), "pricingCurrency", "currency"
            ),
            "contracted_unit_price": cols.money("effectiveUnitPrice"),
            "consumed_quantity": cols.quantity("quantity"),
            "pricing_quantity": cols.quantity("billableQuantity", "quantity"),
            "pricing_unit": cols.text("unitType"),
            "consumed_unit": cols.text("unitType"),
            "billing_currency": cols.text("currency"),
            "charge_category": category,
            "charge_class": charge_class(cols, amount),
            "charge_frequency": Field(frequency, Kind.TEXT, "chargeType"),
            "charge_description": cols.text("skuName", "meterDescription", "productName"),
            "charge_period_start": Field(
                charge_start, Kind.TIMESTAMP, cols.source("chargeStartDate")
            ),
            "charge_period_end": cols.timestamp("chargeEndDate", "subscriptionEndDate"),
            "billing_period_start": month_start(billed_in, cols.source("chargeStartDate")),
            "billing_period_end": month_end(billed_in, cols.source("chargeStartDate")),
            "publisher_name": cols.text("publisherName", "providerName"),
            "service_name": cols.text("productName"),
            "sku_id": Field(_sku(cols), Kind.TEXT, "productId"),
            "sku_price_id": cols.text("availabilityId"),
            "resource_id": cols.text("subscriptionId"),
            "resource_name": cols.text("subscriptionDescription"),
            "resource_type": const("Subscription"),
            "commitment_discount_id": Field(reservation, Kind.TEXT, "reservationOrderId"),
            "commitment_discount_type": Field(
                pl.when(reservation.is_not_null()).then(pl.lit("Reservation")), Kind.TEXT, ""
            ),
            "commitment_discount_category": Field(
                pl.when(reservation.is_not_null()).then(pl.lit("Usage")), Kind.TEXT, ""
            ),
        }
        line = identity(
            cols,
            "invoiceNumber",
            "orderId",
            "alternateId",
            "subscriptionId",
            "productId",
            "skuId",
            "chargeType",
            "chargeStartDate",
            "chargeEndDate",
        )
        return ColumnMapping(
            fields=fields,
            line_identity=line,
            scope=scope(cols, "recon", "currency", "unbilled"),
            retires=retired_unbilled(cols, "recon", "currency"),
        )


class LicenceReconReader:
    name = "partner_center_licence"
    description = "Microsoft Partner Center licence-based (legacy Office/M365) line items"

    def score(self, columns: Sequence[str]) -> int:
        cols = Columns(columns)
        if not cols.has("subtotal") or not cols.has("currency"):
            return 0
        if cols.has("effectiveUnitPrice", "billingPreTaxTotal"):
            return 0
        legacy = ("syndicationPartnerSubscriptionNumber", "durableOfferId", "totalOtherDiscount")
        return 85 if cols.has(*legacy) else 0

    def mapping(self, columns: Sequence[str]) -> ColumnMapping:
        cols = Columns(columns)
        billed = cols.money("subtotal")
        amount = to_money(billed.raw)
        category = charge_category(cols, amount, "Purchase")
        frequency = pl.when(category.raw == "Usage").then(pl.lit("Usage-Based"))
        charge_start = cols.raw("chargeStartDate", "subscriptionStartDate")
        fields: dict[str, Field] = {
            **_common(cols),
            "billed_cost": billed,
            "effective_cost": billed,
            "contracted_cost": billed,
            # amount = unitPrice × quantity before TotalOtherDiscount, same currency.
            "list_cost": cols.money("amount"),
            "list_unit_price": cols.money("unitPrice"),
            "consumed_quantity": cols.quantity("quantity"),
            "pricing_quantity": cols.quantity("quantity"),
            "billing_currency": cols.text("currency"),
            "charge_category": category,
            "charge_class": charge_class(cols, amount),
            "charge_frequency": Field(
                frequency.otherwise(pl.lit("Recurring")), Kind.TEXT, "chargeType"
            ),
            "charge_description": cols.text("chargeType"),
            "charge_period_start": Field(
                charge_start, Kind.TIMESTAMP, cols.source("chargeStartDate")
            ),
            "charge_period_end": cols.timestamp("chargeEndDate", "subscriptionEndDate"),
            "billing_period_start": month_start(charge_start, cols.source("chargeStartDate")),
            "billing_period_end": month_end(charge_start, cols.source("chargeStartDate")),
            "publisher_name": const(PROVIDER),
            "service_name": cols.text("offerName", "subscriptionDescription"),
            "sku_id": cols.text("durableOfferId", "offerId"),
            "sku_price_id": cols.text("offerId"),
            "resource_id": cols.text("syndicationPartnerSubscriptionNumber", "subscriptionId"),
            "resource_name": cols.text("subscriptionName", "subscriptionDescription"),
            "resource_type": const("Subscription"),
        }
        line = identity(
            cols,
            "invoiceNumber",
            "orderId",
            "subscriptionId",
            "chargeType",
            "chargeStartDate",
            "chargeEndDate",
        )
        # Licence-based line items exist only on billed (recurring) invoices, and the pages
        # of one invoice do not repeat its number: one invoice per period and currency.
        return ColumnMapping(
            fields=fields, line_identity=line, scope=scope(cols, "licence", "currency", "billed")
        )


class AzureLegacyReader:
    name = "partner_center_azure_legacy"
    description = "Microsoft Partner Center legacy Azure (MS-AZR-0145P) billing line items"

    def score(self, columns: Sequence[str]) -> int:
        cols = Columns(columns)
        return 85 if cols.has("pretaxCharges") and cols.has("currency") else 0

    def mapping(self, columns: Sequence[str]) -> ColumnMapping:
        cols = Columns(columns)
        billed = cols.money("pretaxCharges")
        amount = to_money(billed.raw)
        charge_start = cols.raw("chargeStartDate")
        fields: dict[str, Field] = {
            **_common(cols),
            "billed_cost": billed,
            "effective_cost": billed,
            "contracted_cost": billed,
            "list_unit_price": cols.money("listPrice"),
            "contracted_unit_price": cols.money("pretaxEffectiveRate"),
            "consumed_quantity": cols.quantity("consumedQuantity"),
            "pricing_quantity": cols.quantity("overageQuantity", "consumedQuantity"),
            "consumed_unit": cols.text("unit"),
            "pricing_unit": cols.text("unit"),
            "billing_currency": cols.text("currency"),
            "charge_category": charge_category(cols, amount, "Usage"),
            "charge_class": charge_class(cols, amount),
            "charge_frequency": const("Usage-Based"),
            "charge_description": cols.text("resourceName", "serviceType"),
            "charge_period_start": cols.timestamp("chargeStartDate"),
            "charge_period_end": cols.timestamp("chargeEndDate"),
            "billing_period_start": month_start(charge_start, cols.source("chargeStartDate")),
            "billing_period_end": month_end(charge_start, cols.source("chargeStartDate")),
            "publisher_name": const(PROVIDER),
            "service_name": cols.text("serviceName"),
            "service_category": const(None),
            "sku_id": cols.text("resourceGuid"),
            "sku_price_id": cols.text("sku"),
            "region_id": cols.text("region", "meteredRegion"),
            "resource_id": cols.text("subscriptionId"),
            "resource_name": cols.text("subscriptionName"),
            "resource_type": const("Subscription"),
        }
        line = identity(
            cols,
            "invoiceNumber",
            "subscriptionId",
            "orderId",
            "resourceGuid",
            "detailLineItemId",
            "chargeType",
            "chargeStartDate",
        )
        return ColumnMapping(
            fields=fields,
            line_identity=line,
            scope=scope(cols, "azure-legacy", "currency", "unbilled"),
            retires=retired_unbilled(cols, "azure-legacy", "currency"),
        )


_NO_COST = (
    "cost (legacy Azure usage line items carry quantities only, no cost or currency: import "
    "the invoice's Azure billing line items or the daily rated usage instead)"
)


class AzureLegacyUsageReader:
    """Recognised so that the rejection says why, instead of 'unrecognised file'."""

    name = "partner_center_azure_usage_quantities"
    description = "Microsoft Partner Center legacy Azure usage line items (quantities only)"

    def score(self, columns: Sequence[str]) -> int:
        cols = Columns(columns)
        if cols.has("pretaxCharges", "billingPreTaxTotal", "subtotal"):
            return 0
        return 80 if cols.has("consumedQuantity") and cols.has("customerBillableAccount") else 0

    def mapping(self, columns: Sequence[str]) -> ColumnMapping:
        cols = Columns(columns)
        nothing = pl.lit(None, dtype=pl.String)
        return ColumnMapping(
            fields={
                **_common(cols),
                "billed_cost": Field(nothing, Kind.MONEY, _NO_COST),
                "billing_currency": Field(nothing, Kind.TEXT, "currency"),
                "consumed_quantity": cols.quantity("consumedQuantity"),
                "charge_period_start": cols.timestamp("usageDate"),
                "billing_period_start": month_start(
                    cols.raw("chargeStartDate"), cols.source("chargeStartDate")
                ),
            }
        )


READERS: list[Reader] = [
    DailyRatedUsageReader(),
    OneTimeReconReader(),
    LicenceReconReader(),
    AzureLegacyReader(),
    AzureLegacyUsageReader(),
]
