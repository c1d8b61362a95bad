"""The demo's usage history and exchange rates: pure, deterministic data (no database).

Every value is a function of the day and of fixed tables below, never of the day the demo
runs on (except where the current month stops): running the demo twice, or a month later,
produces the same rows for every day already produced, so re-imports change nothing.
Variation comes from CRC-32 of a text key (stable across runs, machines and Python
versions), not from a random generator.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal

from billbyte.kit.periods import Period
from billbyte.kit.vendors import Vendor

# The columns of the generated FOCUS 1.2 files, in order.
FOCUS_COLUMNS = [
    "BillingAccountId",
    "SubAccountId",
    "BillingCurrency",
    "BillingPeriodStart",
    "BillingPeriodEnd",
    "ChargePeriodStart",
    "ChargePeriodEnd",
    "ChargeCategory",
    "ChargeFrequency",
    "ChargeDescription",
    "ProviderName",
    "ServiceName",
    "ServiceCategory",
    "SkuId",
    "RegionId",
    "ResourceId",
    "ResourceName",
    "ResourceType",
    "PricingQuantity",
    "PricingUnit",
    "ListUnitPrice",
    "ListCost",
    "BilledCost",
    "EffectiveCost",
    "Tags",
]

COST_PLACES = Decimal("0.0000000001")
QUANTITY_PLACES = Decimal("0.001")


@dataclass(frozen=True)
class Service:
    name: str
    category: str
    unit: str
    list_price: Decimal  # USD per pricing unit
    sku: str
    resource_type: str


# key: (name, category, pricing unit, USD list price, SKU, resource type)
_SERVICE_TABLE: dict[Vendor, dict[str, tuple[str, str, str, str, str, str]]] = {
    Vendor.AWS: {
        "ec2": ("Amazon Elastic Compute Cloud", "Compute", "Hrs", "0.0928", "m6i.large",
                "Instance"),
        "rds": ("Amazon Relational Database Service", "Databases", "Hrs", "0.2040",
                "db.m6g.large", "DBInstance"),
        "s3": ("Amazon Simple Storage Service", "Storage", "GB-Mo", "0.0245",
               "TimedStorage-ByteHrs", "Bucket"),
        "lambda": ("AWS Lambda", "Compute", "Requests", "0.0000002", "Request", "Function"),
        "cloudfront": ("Amazon CloudFront", "Networking", "GB", "0.0850",
                       "DataTransfer-Out-Bytes", "Distribution"),
    },
    Vendor.AZURE: {
        "vm": ("Virtual Machines", "Compute", "1 Hour", "0.1920", "D4s v5",
               "microsoft.compute/virtualmachines"),
        "sql": ("Azure SQL Database", "Databases", "1 Hour", "0.5040", "vCore GP Gen5",
                "microsoft.sql/servers/databases"),
        "storage": ("Storage", "Storage", "1 GB/Month", "0.0184", "Hot LRS Data Stored",
                    "microsoft.storage/storageaccounts"),
        "aks": ("Azure Kubernetes Service", "Compute", "1 Hour", "0.1000",
                "Standard Uptime SLA", "microsoft.containerservice/managedclusters"),
        "bandwidth": ("Bandwidth", "Networking", "1 GB", "0.0870", "Standard Data Transfer Out",
                      "microsoft.network/publicipaddresses"),
    },
    Vendor.GCP: {
        "compute": ("Compute Engine", "Compute", "hour", "0.0950", "N2 Instance Core",
                    "compute.googleapis.com/Instance"),
        "sql": ("Cloud SQL", "Databases", "hour", "0.1500", "Cloud SQL for PostgreSQL",
                "sqladmin.googleapis.com/Instance"),
        "storage": ("Cloud Storage", "Storage", "gibibyte month", "0.0200", "Standard Storage",
                    "storage.googleapis.com/Bucket"),
        "bigquery": ("BigQuery", "Analytics", "tebibyte", "6.2500", "Analysis",
                     "bigquery.googleapis.com/Dataset"),
    },
}  # fmt: skip
SERVICES = {
    vendor: {
        key: Service(name, category, unit, Decimal(price), sku, kind)
        for key, (name, category, unit, price, sku, kind) in table.items()
    }
    for vendor, table in _SERVICE_TABLE.items()
}

PROVIDERS = {Vendor.AWS: "AWS", Vendor.AZURE: "Microsoft", Vendor.GCP: "Google Cloud"}
# The billing account of the MSP's partner agreement as it appears in the files (GCP's is
# the customer's billing subaccount: each reseller customer has its own).
BILLING_ACCOUNTS = {Vendor.AWS: "111111111111", Vendor.AZURE: "demo-azure-billing-account"}

# (service, region slot 0-2, name, tags, base quantity per day, weekday-only)
Template = tuple[str, int, str, dict[str, str], Decimal, bool]
PROD_WEB = {"env": "prod", "team": "web"}
PROD_DATA = {"env": "prod", "team": "data"}
DEV_PLATFORM = {"env": "dev", "team": "platform"}
STAGING_WEB = {"env": "staging", "team": "web"}
TEMPLATES: dict[Vendor, list[Template]] = {
    Vendor.AWS: [
        ("ec2", 0, "web-1", PROD_WEB, Decimal(96), False),
        ("ec2", 1, "web-2", PROD_WEB, Decimal(72), False),
        ("rds", 0, "orders-db", PROD_DATA, Decimal(48), False),
        ("s3", 0, "assets", PROD_WEB, Decimal(66), False),
        ("lambda", 2, "thumbnailer", DEV_PLATFORM, Decimal(3_000_000), True),
        ("cloudfront", 2, "cdn", PROD_WEB, Decimal(280), False),
        ("ec2", 2, "ci-runner", DEV_PLATFORM, Decimal(24), True),
    ],
    Vendor.AZURE: [
        ("vm", 0, "app-vm-1", PROD_WEB, Decimal(48), False),
        ("sql", 0, "crm-db", PROD_DATA, Decimal(24), False),
        ("storage", 1, "backups", PROD_DATA, Decimal(120), False),
        ("aks", 1, "staging-aks", STAGING_WEB, Decimal(24), True),
        ("bandwidth", 2, "edge-ip", PROD_WEB, Decimal(90), False),
    ],
    Vendor.GCP: [
        ("compute", 0, "api-1", PROD_WEB, Decimal(96), False),
        ("sql", 0, "events-db", PROD_DATA, Decimal(24), False),
        ("storage", 1, "datalake", PROD_DATA, Decimal(900), False),
        ("bigquery", 2, "analytics", PROD_DATA, Decimal("0.9"), True),
    ],
}


@dataclass(frozen=True)
class Estate:
    """One customer's footprint on one vendor: where it runs and how big it is."""

    customer: str  # external id
    vendor: Vendor
    identifier: str  # the linked vendor account (AWS account, subscription, billing account)
    regions: tuple[str, str, str]
    size: Decimal
    # GCP: the projects (sub-accounts) under the linked billing subaccount, by template
    # index modulo their number; elsewhere the sub-account is the linked identifier.
    projects: tuple[str, ...] = field(default=())


ESTATES = [
    Estate(
        "ACME-001",
        Vendor.AWS,
        "222222222222",
        ("eu-central-1", "eu-west-1", "us-east-1"),
        Decimal(1),
    ),
    Estate(
        "ACME-001",
        Vendor.AZURE,
        "3c1f0ae2-0c1a-4d8e-9c5b-acme00000001",
        ("germanywestcentral", "westeurope", "northeurope"),
        Decimal("0.8"),
    ),
    Estate(
        "GLOBEX-7",
        Vendor.AWS,
        "333333333333",
        ("eu-west-2", "eu-west-1", "us-east-1"),
        Decimal("1.4"),
    ),
    Estate(
        "GLOBEX-7",
        Vendor.GCP,
        "billingAccounts/01ABCD-GLOBEX",
        ("europe-west2", "europe-west1", "us-central1"),
        Decimal("1.2"),
        projects=("globex-web-prod", "globex-data-prod"),
    ),
    Estate(
        "INITECH-42",
        Vendor.AWS,
        "444444444444",
        ("ap-northeast-1", "ap-northeast-3", "us-west-2"),
        Decimal("0.7"),
    ),
    Estate(
        "INITECH-42",
        Vendor.AZURE,
        "7d2e4b1c-5f3a-4c9e-8b1d-initech00042",
        ("japaneast", "japanwest", "eastasia"),
        Decimal("0.9"),
    ),
]


def history_periods(today: date, months: int = 3) -> list[Period]:
    """The months of history: the ``months - 1`` full months before ``today``'s, and its."""
    current = Period.of(today)
    return [current.add_months(offset) for offset in range(1 - months, 1)]


def history_days(today: date, months: int = 3) -> list[date]:
    """The days with usage: from the first of the oldest month up to yesterday (a vendor
    delivers complete days; on the 1st the current month has none yet)."""
    first = history_periods(today, months)[0].first_day
    return [first + timedelta(days=n) for n in range((today - first).days)]


def _wobble(key: str, spread: int) -> Decimal:
    """A deterministic factor in [1 - spread/1000, 1 + spread/1000] for ``key``."""
    step = zlib.crc32(key.encode()) % (2 * spread + 1) - spread
    return 1 + Decimal(step) / 1000


def _resource_id(estate: Estate, sub_account: str, service: str, region: str, name: str) -> str:
    if estate.vendor == Vendor.AWS:
        return f"arn:aws:{service}:{region}:{sub_account}:{name}"
    if estate.vendor == Vendor.AZURE:
        return (
            f"/subscriptions/{sub_account}/resourceGroups/{estate.customer.lower()}-{region}"
            f"/providers/{SERVICES[estate.vendor][service].resource_type}/{name}"
        )
    api = SERVICES[estate.vendor][service].resource_type.split("/")[0]
    return f"//{api}/projects/{sub_account}/{name}"


def usage_rows(
    vendor: Vendor, days: list[date], discount_percent: Decimal
) -> Iterator[dict[str, str]]:
    """FOCUS rows (column → text) of every estate on ``vendor`` for ``days``: one row per
    resource and day. Billed cost is list cost less the partner's discount."""
    keep = 1 - discount_percent / 100
    for estate in (e for e in ESTATES if e.vendor == vendor):
        billing_account = BILLING_ACCOUNTS.get(vendor, estate.identifier)
        for index, (key, slot, name, tags, base, weekday_only) in enumerate(TEMPLATES[vendor]):
            service = SERVICES[vendor][key]
            region = estate.regions[slot]
            sub_account = (
                estate.projects[index % len(estate.projects)]
                if estate.projects
                else estate.identifier
            )
            resource = _resource_id(estate, sub_account, key, region, name)
            for day in days:
                if weekday_only and day.weekday() >= 5:
                    continue
                quantity = (base * estate.size * _wobble(f"{resource}|{day}", 120)).quantize(
                    QUANTITY_PLACES
                )
                listed = (quantity * service.list_price).quantize(COST_PLACES)
                billed = (listed * keep).quantize(COST_PLACES)
                period = Period.of(day)
                yield {
                    "BillingAccountId": billing_account,
                    "SubAccountId": sub_account,
                    "BillingCurrency": "USD",
                    "BillingPeriodStart": f"{period.first_day}T00:00:00Z",
                    "BillingPeriodEnd": f"{period.last_day + timedelta(days=1)}T00:00:00Z",
                    "ChargePeriodStart": f"{day}T00:00:00Z",
                    "ChargePeriodEnd": f"{day + timedelta(days=1)}T00:00:00Z",
                    "ChargeCategory": "Usage",
                    "ChargeFrequency": "Usage-Based",
                    "ChargeDescription": f"{service.sku} in {region}",
                    "ProviderName": PROVIDERS[vendor],
                    "ServiceName": service.name,
                    "ServiceCategory": service.category,
                    "SkuId": service.sku,
                    "RegionId": region,
                    "ResourceId": resource,
                    "ResourceName": name,
                    "ResourceType": service.resource_type,
                    "PricingQuantity": str(quantity),
                    "PricingUnit": service.unit,
                    "ListUnitPrice": str(service.list_price),
                    "ListCost": str(listed),
                    "BilledCost": str(billed),
                    "EffectiveCost": str(billed),
                    "Tags": json.dumps(tags, separators=(",", ":"), sort_keys=True),
                }


# USD → customer currencies; each day's rate moves up to ±1 % around these.
BASE_RATES = {"EUR": Decimal("0.9210"), "GBP": Decimal("0.7850"), "JPY": Decimal("151.20")}
RATE_PLACES = {"EUR": Decimal("0.0001"), "GBP": Decimal("0.0001"), "JPY": Decimal("0.01")}


def fx_rate(quote: str, day: date) -> Decimal:
    """The demo's USD→``quote`` rate for ``day``."""
    return (BASE_RATES[quote] * _wobble(f"USD{quote}|{day}", 10)).quantize(RATE_PLACES[quote])


def rate_days(today: date, months: int = 3) -> list[date]:
    """Every day of the history's months, to the end of the current one: usage the
    sandboxes deliver later this month finds its rate too."""
    periods = history_periods(today, months)
    first, last = periods[0].first_day, periods[-1].last_day
    return [first + timedelta(days=n) for n in range((last - first).days + 1)]
