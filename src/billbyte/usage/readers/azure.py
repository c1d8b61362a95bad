"""Azure cost exports: EA, MCA, MCA for partners (Azure plan), pay-as-you-go; actual or amortized.

One reader, ``azure``, adapts to the header: Azure has renamed and re-cased its columns
across agreement types and API versions (``CostInBillingCurrency`` / ``Cost`` /
``costInBillingCurrency`` / ``PreTaxCost``), so every column is looked up
case-insensitively under each of its known names. Localized headers such as
'Abonnement-GUID (SubscriptionGuid)' reach the reader already rewritten by staging.

The mapping, and how credits, refunds, taxes, commitment purchases and actual vs amortized
exports are treated, is documented column by column in ``docs/vendors/azure.md``.
Everything is a polars expression: no Python runs per row.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import polars as pl

from billbyte.kit.errors import InvalidInput
from billbyte.usage.normalize import (
    Field,
    Kind,
    col,
    const,
    tags_from_json_like,
    to_money,
    to_quantity,
)
from billbyte.usage.readers.base import ColumnMapping, Reader

# Every vendor name a canonical input goes by, lower-cased, in order of preference.
COST = ("costinbillingcurrency", "cost", "pretaxcost")
CURRENCY = ("billingcurrencycode", "billingcurrency", "currency")
DATE = ("date", "usagedatetime")
SUBSCRIPTION = ("subscriptionid", "subscriptionguid")
QUANTITY = ("quantity", "usagequantity")
RESOURCE_ID = ("resourceid", "instanceid", "instancename")
PRODUCT = ("productname", "product")
# Columns only Azure cost exports have: one of them must be there too.
MARKERS = ("metercategory", "meterid", "metername", "consumedservice", "metersubcategory")

_DAY = pl.duration(days=1)
_ISO_DAY = "%Y-%m-%d %H:%M:%S"

# ChargeType → FOCUS ChargeCategory (lower-cased keys; anything else is an Adjustment).
CHARGE_CATEGORY = {
    "usage": "Usage",
    "unusedreservation": "Usage",
    "unusedsavingsplan": "Usage",
    "purchase": "Purchase",
    "refund": "Credit",
    "credit": "Credit",
    "tax": "Tax",
    "roundingadjustment": "Adjustment",
}
FREQUENCY = {"onetime": "One-Time", "recurring": "Recurring", "usagebased": "Usage-Based"}
PRICING_CATEGORY = {
    "ondemand": "Standard",
    "spot": "Dynamic",
    "reservation": "Committed",
    "savingsplan": "Committed",
}

# MeterCategory (then ServiceFamily) → FOCUS ServiceCategory; anything else is "Other".
_CATEGORIES: dict[str, tuple[str, ...]] = {
    "Compute": (
        "virtual machines",
        "virtual machines licenses",
        "cloud services",
        "container instances",
        "azure container apps",
        "azure kubernetes service",
        "functions",
        "batch",
        "service fabric",
        "azure vmware solution",
        "azure spring apps",
        "virtual machine scale sets",
        "windows virtual desktop",
        "azure virtual desktop",
        "containers",
    ),
    "Storage": (
        "storage",
        "backup",
        "azure netapp files",
        "data box",
        "storsimple",
        "azure site recovery",
    ),
    "Networking": (
        "networking",
        "bandwidth",
        "virtual network",
        "load balancer",
        "vpn gateway",
        "expressroute",
        "application gateway",
        "azure dns",
        "dns",
        "content delivery network",
        "azure front door service",
        "network watcher",
        "azure firewall",
        "traffic manager",
        "azure bastion",
        "nat gateway",
        "azure private link",
        "virtual wan",
        "ip addresses",
    ),
    "Databases": (
        "databases",
        "sql database",
        "sql managed instance",
        "azure cosmos db",
        "azure database for mysql",
        "azure database for postgresql",
        "azure database for mariadb",
        "redis cache",
        "azure cache for redis",
    ),
    "Analytics": (
        "analytics",
        "azure synapse analytics",
        "azure databricks",
        "hdinsight",
        "azure data explorer",
        "stream analytics",
        "power bi embedded",
        "microsoft fabric",
    ),
    "AI and Machine Learning": (
        "ai + machine learning",
        "cognitive services",
        "azure openai",
        "azure machine learning",
        "machine learning studio",
        "azure cognitive search",
    ),
    "Integration": (
        "integration",
        "logic apps",
        "service bus",
        "event grid",
        "event hubs",
        "api management",
        "azure data factory v2",
        "azure data factory",
    ),
    "Web": ("web", "azure app service", "app service", "static web apps", "signalr"),
    "Security": (
        "security",
        "key vault",
        "microsoft defender for cloud",
        "advanced threat protection",
        "sentinel",
        "security center",
    ),
    "Identity": (
        "identity",
        "azure active directory",
        "azure active directory b2c",
        "microsoft entra id",
    ),
    "Management and Governance": (
        "management and governance",
        "log analytics",
        "azure monitor",
        "insight and analytics",
        "automation",
        "azure arc",
        "azure policy",
    ),
    "Developer Tools": ("developer tools", "visual studio", "azure devops", "azure lab services"),
    "Internet of Things": (
        "internet of things",
        "iot hub",
        "iot central",
        "azure digital twins",
        "time series insights",
    ),
    "Media": ("media", "media services", "azure communication services"),
}
SERVICE_CATEGORY = {name: category for category, names in _CATEGORIES.items() for name in names}


class _Columns:
    """The header, looked up case-insensitively."""

    def __init__(self, columns: Sequence[str]) -> None:
        self.lookup: dict[str, str] = {}
        for name in columns:
            self.lookup.setdefault(name.lower(), name)

    def find(self, *names: str) -> str | None:
        for name in names:
            if name in self.lookup:
                return self.lookup[name]
        return None

    def expr(self, *names: str) -> pl.Expr:
        """The first present column, cleaned; a typed null when none is."""
        found = self.find(*names)
        return col(found) if found else pl.lit(None, dtype=pl.String)

    def text(self, *names: str) -> Field:
        found = self.find(*names)
        return Field(col(found), Kind.TEXT, found) if found else const(None)

    def money(self, *names: str) -> Field | None:
        found = self.find(*names)
        return Field(col(found), Kind.MONEY, found) if found else None


def _lookup(expr: pl.Expr, table: Mapping[str, str]) -> pl.Expr:
    """Case- and space-insensitive value mapping; unknown values become null."""
    key = expr.str.to_lowercase().str.replace_all(r"[\s_-]", "")
    return key.replace_strict(dict(table), default=None, return_dtype=pl.String)


def _day_text(expr: pl.Expr) -> pl.Expr:
    return expr.dt.strftime(_ISO_DAY)


def _day(expr: pl.Expr) -> pl.Expr:
    """The calendar day of an Azure date (ISO; M/D/YYYY, as Azure writes slashed dates
    whatever the header language; YYYY/MM/DD), for the columns derived from it.

    Cheaper than ``to_timestamp`` (three formats, not nine); the vendor column itself is
    still parsed, and a bad value reported, by the pipeline.
    """
    iso = expr.str.extract(r"^(\d{4}-\d{1,2}-\d{1,2})", 1).str.to_datetime(
        "%Y-%m-%d", strict=False, time_unit="us"
    )
    us = expr.str.extract(r"^(\d{1,2}/\d{1,2}/\d{4})", 1).str.to_datetime(
        "%m/%d/%Y", strict=False, time_unit="us"
    )
    slashed_iso = expr.str.extract(r"^(\d{4}/\d{1,2}/\d{1,2})", 1).str.to_datetime(
        "%Y/%m/%d", strict=False, time_unit="us"
    )
    return pl.coalesce([iso, us, slashed_iso])


def _product(price: str, quantity: str, rate: pl.Expr | None, source: str) -> Field:
    """price × quantity (× pricing-to-billing rate), exact to 24 decimals (half-even).

    The raw text is the product itself, so the pipeline reports an input that does not
    parse (the raw is then 'price × quantity', which is not a number) instead of storing
    a silent null.
    """
    price_raw, quantity_raw = col(price), col(quantity)
    value = to_money(price_raw) * to_quantity(quantity_raw)
    missing = price_raw.is_null() | quantity_raw.is_null()
    if rate is not None:
        value = value * to_money(rate)
        missing = missing | rate.is_null()
        source = f"{source} × exchangeRatePricingToBilling"
    operands = [price_raw, quantity_raw] + ([rate] if rate is not None else [])
    broken = pl.concat_str(operands, separator=" × ")  # not a number: reported as such
    raw = (
        pl.when(missing)
        .then(pl.lit(None, dtype=pl.String))
        .when(value.is_null())
        .then(broken)
        .otherwise(value.cast(pl.String))
    )
    return Field(raw, Kind.MONEY, source)


def _scaled_price(price: str, rate: pl.Expr | None) -> Field:
    """A unit price in the billing currency (MCA prices are in the pricing currency)."""
    if rate is None:
        return Field(col(price), Kind.MONEY, price)
    value = to_money(col(price)) * to_money(rate)
    raw = (
        pl.when(col(price).is_null() | rate.is_null())
        .then(pl.lit(None, dtype=pl.String))
        .when(value.is_null())
        .then(pl.concat_str([col(price), rate], separator=" × "))  # reported, not stored
        .otherwise(value.cast(pl.String))
    )
    return Field(raw, Kind.MONEY, f"{price} × exchangeRatePricingToBilling")


def _resource_type(resource_id: pl.Expr) -> pl.Expr:
    """'…/providers/Microsoft.Sql/servers/s1/databases/d1' → 'Microsoft.Sql/servers/databases'."""
    tail = resource_id.str.extract(r"(?i).*/providers/(.+)$", 1)
    parts = tail.str.split("/")
    types = (
        parts.list.slice(1).list.gather_every(2).list.eval(pl.element().filter(pl.element() != ""))
    )
    return pl.concat_str([parts.list.first(), types.list.join("/")], separator="/").str.strip_chars(
        "/"
    )


class AzureReader:
    name = "azure"
    description = (
        "Azure cost details export: EA (PascalCase, Cost or CostInBillingCurrency), MCA "
        "(camelCase), MCA for partners / Azure plan, pay-as-you-go v1 (PreTaxCost); actual "
        "or amortized; localized headers, M/D/YYYY dates, tags without braces"
    )

    def score(self, columns: Sequence[str]) -> int:
        cols = _Columns(columns)
        needed = (COST, DATE, SUBSCRIPTION, MARKERS)
        if all(cols.find(*names) for names in needed):
            return 90  # below FOCUS (100): Azure's FOCUS export is read by the FOCUS reader
        return 0

    def mapping(self, columns: Sequence[str]) -> ColumnMapping:
        cols = _Columns(columns)
        fields: dict[str, Field] = {}

        # ---- money -------------------------------------------------------------------
        self._require(cols)
        cost_col = cols.find(*COST)
        cost = cols.money(*COST)
        assert cost is not None and cost_col is not None  # _require checked it
        fields["billed_cost"] = cost
        fields["billing_currency"] = Field(
            cols.expr(*CURRENCY).str.to_uppercase(), Kind.TEXT, cols.find(*CURRENCY) or ""
        )

        charge_type = cols.expr("chargetype")
        charge_key = charge_type.str.to_lowercase()
        pricing_model = _lookup(cols.expr("pricingmodel"), {"reservation": "r", "savingsplan": "s"})
        benefit = cols.expr("benefitid")
        reservation = cols.expr("reservationid")
        commitment_type = (
            pl.when(benefit.str.to_lowercase().str.contains("/microsoft.capacity/"))
            .then(pl.lit("Reservation"))
            .when(benefit.str.to_lowercase().str.contains("/microsoft.billingbenefits/"))
            .then(pl.lit("Savings Plan"))
            .when(pricing_model == "r")
            .then(pl.lit("Reservation"))
            .when(pricing_model == "s")
            .then(pl.lit("Savings Plan"))
            .when(charge_key == "unusedreservation")
            .then(pl.lit("Reservation"))
            .when(charge_key == "unusedsavingsplan")
            .then(pl.lit("Savings Plan"))
            .when(reservation.is_not_null())
            .then(pl.lit("Reservation"))
            .otherwise(pl.lit(None, dtype=pl.String))
        )
        # FOCUS: a commitment purchase (or its refund) has EffectiveCost 0 — its value is
        # spread over the usage it covers, which only an amortized export shows.
        commitment_purchase = (
            charge_key.is_in(["purchase", "refund"]) & commitment_type.is_not_null()
        )
        fields["effective_cost"] = Field(
            pl.when(commitment_purchase.fill_null(False))
            .then(pl.lit("0"))
            .otherwise(to_money(col(cost_col)).cast(pl.String)),
            Kind.MONEY,
            cost_col,
        )

        quantity = cols.find(*QUANTITY)
        rate = self._rate(cols)
        payg_cost = cols.money("paygcostinbillingcurrency")
        payg_price = cols.find("paygprice")
        unit_price = cols.find("unitprice")
        resource_rate = cols.find("resourcerate")  # pay-as-you-go v1: the retail rate
        if payg_cost is not None:
            fields["list_cost"] = payg_cost
        elif payg_price and quantity:
            fields["list_cost"] = _product(payg_price, quantity, rate, f"{payg_price} × {quantity}")
        elif resource_rate and quantity:
            fields["list_cost"] = _product(
                resource_rate, quantity, None, f"{resource_rate} × {quantity}"
            )
        if unit_price and quantity:
            fields["contracted_cost"] = _product(
                unit_price, quantity, rate, f"{unit_price} × {quantity}"
            )
        elif resource_rate and quantity:
            fields["contracted_cost"] = _product(
                resource_rate, quantity, None, f"{resource_rate} × {quantity}"
            )
        list_price = payg_price or resource_rate
        contracted_price = unit_price or resource_rate
        if list_price:
            fields["list_unit_price"] = _scaled_price(
                list_price, rate if list_price == payg_price else None
            )
        if contracted_price and contracted_price == list_price:
            # Pay-as-you-go v1: one ResourceRate column is both prices; read (and count a
            # rounding) once, then reuse the typed value.
            fields["contracted_unit_price"] = Field(
                to_money(col(contracted_price)).cast(pl.String), Kind.MONEY, contracted_price
            )
        elif contracted_price:
            fields["contracted_unit_price"] = _scaled_price(
                contracted_price, rate if contracted_price == unit_price else None
            )

        # ---- quantities ----------------------------------------------------------------
        if quantity:
            fields["consumed_quantity"] = Field(col(quantity), Kind.QUANTITY, quantity)
            fields["pricing_quantity"] = Field(col(quantity), Kind.QUANTITY, quantity)
        fields["consumed_unit"] = cols.text("unitofmeasure")
        fields["pricing_unit"] = cols.text("unitofmeasure")

        # ---- time ----------------------------------------------------------------------
        date_col = cols.find(*DATE)
        assert date_col is not None
        charge_start = _day(col(date_col))
        fields["charge_period_start"] = Field(col(date_col), Kind.TIMESTAMP, date_col)
        fields["charge_period_end"] = Field(
            _day_text(charge_start + _DAY), Kind.TIMESTAMP, date_col
        )
        period_start_col = cols.find("billingperiodstartdate")
        month_of_charge = _day_text(charge_start.dt.truncate("1mo"))
        period_start = (
            pl.coalesce([col(period_start_col), month_of_charge])
            if period_start_col
            else month_of_charge
        )
        fields["billing_period_start"] = Field(
            period_start, Kind.TIMESTAMP, period_start_col or f"{date_col} (month of)"
        )
        period_end_col = cols.find("billingperiodenddate")
        # Azure writes the period's last day (inclusive); FOCUS wants the exclusive end.
        next_month = _day_text(_day(period_start).dt.offset_by("1mo"))
        if period_end_col:
            inclusive_end = col(period_end_col)
            period_end = (
                pl.when(inclusive_end.is_null())
                .then(next_month)
                .when(_day(inclusive_end).is_null())
                .then(inclusive_end)  # reported as unreadable
                .otherwise(_day_text(_day(inclusive_end) + _DAY))
            )
        else:
            period_end = next_month
        fields["billing_period_end"] = Field(
            period_end, Kind.TIMESTAMP, period_end_col or "billing period start + 1 month"
        )

        # ---- accounts ------------------------------------------------------------------
        subscription = cols.find(*SUBSCRIPTION)
        assert subscription is not None
        billing_account = cols.find("billingaccountid")
        fields["billing_account_id"] = Field(
            pl.coalesce([col(billing_account), col(subscription)])
            if billing_account
            else col(subscription),
            Kind.TEXT,
            billing_account or subscription,
        )
        fields["billing_account_name"] = cols.text("billingaccountname")
        fields["sub_account_id"] = Field(col(subscription), Kind.TEXT, subscription)
        fields["sub_account_name"] = cols.text("subscriptionname")
        fields["invoice_id"] = cols.text("invoiceid")
        # An indirect reseller is invoiced by its indirect provider (partnerName); everyone
        # else (EA, MCA, a direct CSP partner, pay-as-you-go) by Microsoft.
        fields["invoice_issuer_name"] = Field(
            pl.when(
                cols.expr("resellername").is_not_null() & cols.expr("partnername").is_not_null()
            )
            .then(cols.expr("partnername"))
            .otherwise(pl.lit("Microsoft")),
            Kind.TEXT,
            "partnerName",
        )
        fields["provider_name"] = const("Microsoft")
        publisher_type = cols.expr("publishertype").str.to_lowercase()
        fields["publisher_name"] = Field(
            pl.when(cols.expr("publishername").is_not_null())
            .then(cols.expr("publishername"))
            .when(publisher_type == "marketplace")
            .then(pl.lit(None, dtype=pl.String))
            .otherwise(pl.lit("Microsoft")),
            Kind.TEXT,
            "PublisherName",
        )

        # ---- charge classification -----------------------------------------------------
        has_charge_type = cols.find("chargetype") is not None
        category = (
            pl.when(charge_type.is_null())
            .then(pl.lit("Usage"))
            .otherwise(_lookup(charge_type, CHARGE_CATEGORY).fill_null("Adjustment"))
            if has_charge_type
            else pl.lit("Usage")
        )
        fields["charge_category"] = Field(category, Kind.TEXT, "ChargeType")
        previous_invoice = cols.expr("previousinvoiceid")
        fields["charge_class"] = Field(
            pl.when((charge_key == "refund").fill_null(False) | previous_invoice.is_not_null())
            .then(pl.lit("Correction"))
            .otherwise(pl.lit(None, dtype=pl.String)),
            Kind.TEXT,
            "ChargeType",
        )
        frequency = _lookup(cols.expr("frequency"), FREQUENCY)
        fields["charge_frequency"] = Field(
            pl.coalesce(
                [
                    frequency,
                    pl.when(category == "Purchase")
                    .then(pl.lit("One-Time"))
                    .otherwise(pl.lit("Usage-Based")),
                ]
            ),
            Kind.TEXT,
            "Frequency",
        )
        fields["pricing_category"] = Field(
            _lookup(cols.expr("pricingmodel"), PRICING_CATEGORY), Kind.TEXT, "PricingModel"
        )
        fields["charge_description"] = Field(
            pl.coalesce([cols.expr(*PRODUCT), cols.expr("metername")]), Kind.TEXT, "ProductName"
        )

        # ---- service, SKU, location, resource ------------------------------------------
        meter_category = cols.expr("metercategory")
        fields["service_name"] = Field(
            pl.coalesce([meter_category, cols.expr("servicename"), cols.expr("consumedservice")]),
            Kind.TEXT,
            "MeterCategory",
        )
        fields["service_category"] = Field(
            pl.coalesce(
                [
                    _lookup_name(meter_category),
                    _lookup_name(cols.expr("servicefamily")),
                    pl.lit("Other"),
                ]
            ),
            Kind.TEXT,
            "MeterCategory",
        )
        fields["sku_id"] = cols.text("meterid")
        fields["sku_price_id"] = cols.text("partnumber", "productid")
        fields["region_id"] = Field(
            cols.expr("resourcelocation").str.to_lowercase(), Kind.TEXT, "ResourceLocation"
        )
        fields["region_name"] = Field(
            pl.coalesce([cols.expr("location"), cols.expr("meterregion")]), Kind.TEXT, "MeterRegion"
        )
        fields["availability_zone"] = cols.text("availabilityzone")
        resource_id = cols.expr(*RESOURCE_ID)
        fields["resource_id"] = Field(resource_id, Kind.TEXT, cols.find(*RESOURCE_ID) or "")
        fields["resource_name"] = Field(
            pl.coalesce([cols.expr("resourcename"), resource_id.str.extract(r"/([^/]+)$", 1)]),
            Kind.TEXT,
            "ResourceName",
        )
        fields["resource_type"] = Field(
            pl.coalesce([cols.expr("resourcetype"), _resource_type(resource_id)]),
            Kind.TEXT,
            "ResourceType",
        )
        fields["tags"] = Field(tags_from_json_like(cols.expr("tags")), Kind.TEXT, "Tags")

        # ---- commitment discounts --------------------------------------------------------
        fields["commitment_discount_id"] = Field(
            pl.coalesce([benefit, reservation]), Kind.TEXT, "benefitId"
        )
        fields["commitment_discount_name"] = Field(
            pl.coalesce([cols.expr("benefitname"), cols.expr("reservationname")]),
            Kind.TEXT,
            "benefitName",
        )
        fields["commitment_discount_type"] = Field(commitment_type, Kind.TEXT, "benefitId")
        fields["commitment_discount_category"] = Field(
            commitment_type.replace_strict(
                {"Reservation": "Usage", "Savings Plan": "Spend"}, default=None
            ),
            Kind.TEXT,
            "benefitId",
        )
        fields["commitment_discount_status"] = Field(
            pl.when(commitment_type.is_null() | (category != "Usage"))
            .then(pl.lit(None, dtype=pl.String))
            .when(charge_key.str.starts_with("unused").fill_null(False))
            .then(pl.lit("Unused"))
            .otherwise(pl.lit("Used")),
            Kind.TEXT,
            "ChargeType",
        )

        # Azure exports carry no line id: the pipeline identifies a line by its content.
        return ColumnMapping(fields=fields, line_identity=None)

    @staticmethod
    def _require(cols: _Columns) -> None:
        """Columns without which no line can be billed: the file is refused as a whole."""
        needed = {
            "billing currency": (CURRENCY, "BillingCurrency, BillingCurrencyCode or Currency"),
            "cost": (COST, "CostInBillingCurrency, Cost or PreTaxCost"),
            "date": (DATE, "Date or UsageDateTime"),
            "subscription": (SUBSCRIPTION, "SubscriptionId or SubscriptionGuid"),
        }
        for what, (names, spelled) in needed.items():
            if cols.find(*names) is None:
                raise InvalidInput(
                    f"This Azure cost export has no {what} column ({spelled}), so its costs "
                    "cannot be billed; export it again from Cost Management with all columns.",
                    code="missing_column",
                    field=spelled.split(",")[0],
                )

    @staticmethod
    def _rate(cols: _Columns) -> pl.Expr | None:
        """MCA prices are in the pricing currency: the rate to the billing currency, or 1
        when both currencies are the same. None when the export has no pricing currency."""
        rate = cols.find("exchangeratepricingtobilling")
        pricing = cols.find("pricingcurrency")
        if rate is None and pricing is None:
            return None
        billing = cols.expr(*CURRENCY).str.to_uppercase()
        same = cols.expr("pricingcurrency").str.to_uppercase() == billing
        return pl.coalesce(
            [
                col(rate) if rate else pl.lit(None, dtype=pl.String),
                pl.when(same.fill_null(pricing is None)).then(pl.lit("1")),
            ]
        )


def _lookup_name(expr: pl.Expr) -> pl.Expr:
    return (
        expr.str.to_lowercase()
        .str.strip_chars()
        .replace_strict(SERVICE_CATEGORY, default=None, return_dtype=pl.String)
    )


READERS: list[Reader] = [AzureReader()]
