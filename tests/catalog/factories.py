"""One MSP billing one customer for AWS usage and two licence subscriptions in April 2026,
set up through the API, with the expected amounts computed by hand in plain Decimal."""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

from billbyte.jobs.service import run_pending
from billbyte.rating import tasks as _rating  # noqa: F401  (registers the job handler)
from billbyte.runtime import Runtime
from tests.conftest import Tenant

PERIOD = "2026-04"
MARKUP = Decimal("1.15")
FEE = Decimal("49")

HEADER = [
    "BilledCost",
    "ListCost",
    "BillingAccountId",
    "BillingCurrency",
    "BillingPeriodStart",
    "BillingPeriodEnd",
    "ChargePeriodStart",
    "ChargePeriodEnd",
    "ChargeCategory",
    "ProviderName",
    "ServiceName",
    "ServiceCategory",
    "SkuId",
    "RegionId",
    "RegionName",
    "ResourceId",
    "SubAccountId",
    "SubAccountName",
    "PricingQuantity",
    "PricingUnit",
    "Tags",
]
EC2 = ("Amazon Elastic Compute Cloud", "Compute")
S3 = ("Amazon Simple Storage Service", "Storage")
FRA = ("eu-central-1", "Europe (Frankfurt)")
IAD = ("us-east-1", "US East (N. Virginia)")


def rate(day: date) -> Decimal:
    """USD→EUR on ``day``: 0.90 + day/10000 in April, 0.89 + day/10000 in March."""
    base = Decimal("0.9000") if day.month == 4 else Decimal("0.8900")
    return base + Decimal(day.day) / Decimal(10000)


# (cost USD, charge day, service, sku, region, charge category, quantity, unit, tags, sub)
USAGE: list[tuple[str, date, tuple[str, str], str, tuple[str, str] | None, str, str, str,
                  dict[str, str] | None, str]] = [
    ("100.00", date(2026, 4, 3), EC2, "SKU-A", FRA, "Usage", "10", "Hrs",
     {"env": "prod", "team": "web"}, "111111111111"),
    ("50.00", date(2026, 4, 3), EC2, "SKU-A", FRA, "Usage", "5", "Hrs", {"env": "dev"},
     "111111111111"),
    ("33.33", date(2026, 4, 10), EC2, "SKU-B", IAD, "Usage", "3", "Hrs", None, "111111111111"),
    ("12.345678", date(2026, 4, 15), S3, "SKU-S", FRA, "Usage", "100", "GB-Mo", None,
     "111111111111"),
    ("20.00", date(2026, 4, 5), S3, "SKU-S", FRA, "Usage", "50", "GB-Mo", None, "222222222222"),
    ("-5.00", date(2026, 4, 20), EC2, "", None, "Credit", "", "", None, "111111111111"),
    ("7.77", date(2026, 4, 30), EC2, "", None, "Tax", "", "", None, "111111111111"),
    # A correction of March usage, billed in April.
    ("-2.50", date(2026, 3, 30), EC2, "SKU-A", FRA, "Usage", "-0.25", "Hrs", None,
     "111111111111"),
]  # fmt: skip


def usage_rows() -> list[dict[str, str]]:
    rows = []
    for index, (cost, day, service, sku, region, charge, qty, unit, tags, sub) in enumerate(USAGE):
        rows.append(
            {
                "BilledCost": cost,
                "ListCost": "",
                "BillingAccountId": "999",
                "BillingCurrency": "USD",
                "BillingPeriodStart": "2026-04-01T00:00:00Z",
                "BillingPeriodEnd": "2026-05-01T00:00:00Z",
                "ChargePeriodStart": f"{day.isoformat()}T00:00:00Z",
                "ChargePeriodEnd": f"{day.isoformat()}T01:00:00Z",
                "ChargeCategory": charge,
                "ProviderName": "AWS",
                "ServiceName": service[0],
                "ServiceCategory": service[1],
                "SkuId": sku,
                "RegionId": region[0] if region else "",
                "RegionName": region[1] if region else "",
                "ResourceId": f"r-{index}",
                "SubAccountId": sub,
                "SubAccountName": "",
                "PricingQuantity": qty,
                "PricingUnit": unit,
                "Tags": json.dumps(tags) if tags else "",
            }
        )
    return rows


def expected_usage() -> Decimal:
    """EUR: +15 % on Usage, Credit and Tax at cost, each at its charge day's rate."""
    total = Decimal(0)
    for cost, day, _service, _sku, _region, charge, *_ in USAGE:
        sell = Decimal(cost) * (MARKUP if charge == "Usage" else 1)
        total += sell * rate(day)
    return total


# The licences, by hand (docs/catalog.md): 10 seats of 19.90 EUR for April, +5 from 12 April
# (19 of 30 days); 3 seats of a USD 6.00 offer from 16 April (15 of 30 days) at 0.9016.
M365_CHARGE = Decimal("199.00")
M365_CHANGE = Decimal("1890.5") / Decimal(30)  # 5 x 19.90 x 19/30
DEVOPS = Decimal("9.00") * Decimal("0.9016")  # 3 x 6.00 x 15/30 USD, converted on 16 April


@dataclass
class World:
    tenant: Tenant
    runtime: Runtime
    customer: str
    m365: str
    devops: str
    account: str

    def charges(self, period: str = PERIOD) -> dict[str, Any]:
        response = self.tenant.get(
            f"/v1/customers/{self.customer}/charges", params={"period": period}
        )
        assert response.status_code == 200, response.text
        return dict(response.json())

    def lines(self, period: str = PERIOD) -> list[dict[str, Any]]:
        return [line for g in self.charges(period)["groups"] for line in g["lines"]]

    def drain(self) -> None:
        run_pending(self.runtime)


def build(tenant: Tenant, runtime: Runtime, tmp_path: Path) -> World:
    def ok(response: Any, status: int = 201) -> dict[str, Any]:
        assert response.status_code == status, response.text
        return dict(response.json())

    account = ok(
        tenant.post(
            "/v1/partner-accounts",
            json={"vendor": "aws", "display_name": "AWS payer", "partner_discount_percent": "10"},
        )
    )["id"]
    ok(
        tenant.post(
            "/v1/price-plans",
            json={
                "name": "Standard",
                "is_default": True,
                "rules": [
                    {"vendor": "aws", "adjustment": "markup_percent", "value": "15"},
                    {
                        "vendor": "aws",
                        "adjustment": "fixed_fee",
                        "value": str(FEE),
                        "currency": "EUR",
                        "name": "Management fee",
                    },
                ],
            },
        )
    )
    days = [date(2026, 3, d) for d in range(25, 32)] + [date(2026, 4, d) for d in range(1, 31)]
    body = {
        "rates": [
            {"base": "USD", "quote": "EUR", "date": d.isoformat(), "rate": str(rate(d))}
            for d in days
        ]
    }
    ok(tenant.client.put("/v1/fx-rates", json=body, headers=tenant.headers), 200)
    customer = ok(
        tenant.post(
            "/v1/customers",
            json={"external_id": "CRM-7", "name": "Contoso GmbH", "currency": "EUR"},
        )
    )["id"]
    for identifier, name in (("111111111111", None), ("222222222222", "Web account")):
        ok(
            tenant.post(
                f"/v1/customers/{customer}/vendor-accounts",
                json={
                    "partner_account_id": account,
                    "vendor_identifier": identifier,
                    **({"display_name": name} if name else {}),
                },
            )
        )
    path = tmp_path / "usage.csv"
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=HEADER)
        writer.writeheader()
        writer.writerows(usage_rows())
    with path.open("rb") as handle:
        ok(
            tenant.post(
                "/v1/usage/imports",
                data={"partner_account_id": account},
                files={"file": (path.name, handle)},
            )
        )
    m365 = ok(
        tenant.post(
            "/v1/catalog",
            json={
                "vendor": "microsoft365",
                "sku_id": "CFQ7TTC0LCHC:0002",
                "name": "Microsoft 365 Business Premium",
                "service_category": "Business Applications",
                "cost_price": "17.60",
                "cost_currency": "EUR",
                "prices": {"EUR": "19.90", "GBP": "17.50"},
            },
        )
    )["id"]
    devops = ok(
        tenant.post(
            "/v1/catalog",
            json={
                "vendor": "azure",
                "sku_id": "DEVOPS-BASIC",
                "name": "Azure DevOps Basic",
                "unit": "user",
                "service_category": "Developer Tools",
                "cost_price": "5.00",
                "cost_currency": "USD",
                "prices": {"USD": "6.00"},
            },
        )
    )["id"]
    subs = f"/v1/customers/{customer}/subscriptions"
    m365_sub = ok(
        tenant.post(subs, json={"offer_id": m365, "quantity": 10, "start_date": "2026-04-01"})
    )["id"]
    ok(
        tenant.patch(f"{subs}/{m365_sub}", json={"quantity": 15, "effective_date": "2026-04-12"}),
        200,
    )
    devops_sub = ok(
        tenant.post(subs, json={"offer_id": devops, "quantity": 3, "start_date": "2026-04-16"})
    )["id"]
    world = World(tenant, runtime, customer, m365_sub, devops_sub, account)
    world.drain()
    return world
