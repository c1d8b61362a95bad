"""Small hand-written FOCUS files and an API-driven scenario for the rating tests.

Every amount in these files is chosen so the expected charges can be computed by hand,
in the test, with plain Decimal arithmetic.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable
from decimal import ROUND_HALF_EVEN, Decimal
from pathlib import Path
from typing import Any

from billbyte.jobs.service import run_pending
from billbyte.rating import tasks as _rating  # noqa: F401  (registers the job handler)
from billbyte.runtime import Runtime
from tests.conftest import Tenant

PERIOD = "2025-03"
CENT = Decimal("0.01")

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
    "ChargeFrequency",
    "ProviderName",
    "ServiceName",
    "ServiceCategory",
    "SkuId",
    "RegionId",
    "ResourceId",
    "SubAccountId",
    "ConsumedQuantity",
    "ConsumedUnit",
    "PricingQuantity",
    "PricingUnit",
]


def row(
    cost: str,
    *,
    day: int = 1,
    period: str = PERIOD,
    sub: str = "111111111111",
    service: str = "Amazon Elastic Compute Cloud",
    category: str = "Compute",
    sku: str = "SKU-A",
    charge: str = "Usage",
    list_cost: str | None = None,
    quantity: str = "1",
    currency: str = "USD",
    provider: str = "AWS",
    region: str = "eu-central-1",
    resource: str | None = None,
    billing_account: str = "999",
    charge_period: str | None = None,
) -> dict[str, str]:
    """One FOCUS row; ``charge_period`` (YYYY-MM) defaults to the billing period."""
    year, month = (int(p) for p in period.split("-"))
    following = f"{year + month // 12}-{month % 12 + 1:02d}"
    charged = charge_period or period
    return {
        "BilledCost": cost,
        "ListCost": list_cost if list_cost is not None else cost,
        "BillingAccountId": billing_account,
        "BillingCurrency": currency,
        "BillingPeriodStart": f"{period}-01T00:00:00Z",
        "BillingPeriodEnd": f"{following}-01T00:00:00Z",
        "ChargePeriodStart": f"{charged}-{day:02d}T00:00:00Z",
        "ChargePeriodEnd": f"{charged}-{day:02d}T01:00:00Z",
        "ChargeCategory": charge,
        "ChargeFrequency": "Usage-Based",
        "ProviderName": provider,
        "ServiceName": service,
        "ServiceCategory": category,
        "SkuId": sku,
        "RegionId": region,
        "ResourceId": resource or "",
        "SubAccountId": sub,
        "ConsumedQuantity": quantity,
        "ConsumedUnit": "Hours",
        "PricingQuantity": quantity,
        "PricingUnit": "Hours",
    }


def write_csv(path: Path, rows: Iterable[dict[str, str]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=HEADER)
        writer.writeheader()
        # The resource id makes each row distinct (exact duplicates collapse on import).
        for index, item in enumerate(rows):
            writer.writerow({**item, "ResourceId": item["ResourceId"] or f"r-{index}"})
    return path


def cents(value: Decimal, step: Decimal = CENT) -> Decimal:
    return value.quantize(step, rounding=ROUND_HALF_EVEN)


class Scenario:
    """One MSP set up through the API: partner accounts, customers, links, plans, usage."""

    def __init__(self, tenant: Tenant, runtime: Runtime, tmp_path: Path) -> None:
        self.tenant = tenant
        self.runtime = runtime
        self.tmp_path = tmp_path
        self.accounts: dict[str, str] = {}
        self._files = 0

    # -- set-up -------------------------------------------------------------------------
    def account(self, vendor: str = "aws", discount: str = "0") -> str:
        response = self.tenant.post(
            "/v1/partner-accounts",
            json={
                "vendor": vendor,
                "display_name": f"{vendor} partner",
                "partner_discount_percent": discount,
            },
        )
        assert response.status_code == 201, response.text
        self.accounts[vendor] = response.json()["id"]
        return self.accounts[vendor]

    def customer(self, external: str, currency: str = "USD", **extra: Any) -> str:
        body = {"external_id": external, "name": f"Customer {external}", "currency": currency}
        response = self.tenant.post("/v1/customers", json={**body, **extra})
        assert response.status_code == 201, response.text
        return str(response.json()["id"])

    def link(self, customer_id: str, sub: str, vendor: str = "aws") -> None:
        response = self.tenant.post(
            f"/v1/customers/{customer_id}/vendor-accounts",
            json={"partner_account_id": self.accounts[vendor], "vendor_identifier": sub},
        )
        assert response.status_code == 201, response.text

    def plan(self, rules: list[dict[str, Any]], *, default: bool = True, name: str = "P") -> str:
        response = self.tenant.post(
            "/v1/price-plans", json={"name": name, "is_default": default, "rules": rules}
        )
        assert response.status_code == 201, response.text
        return str(response.json()["id"])

    def rates(self, *items: tuple[str, str, str, str]) -> None:
        body = {"rates": [{"base": b, "quote": q, "date": d, "rate": r} for b, q, d, r in items]}
        response = self.tenant.client.put("/v1/fx-rates", json=body, headers=self.tenant.headers)
        assert response.status_code == 200, response.text

    def upload(self, rows: Iterable[dict[str, str]], vendor: str = "aws") -> dict[str, Any]:
        self._files += 1
        path = write_csv(self.tmp_path / f"usage-{self._files}.csv", rows)
        with path.open("rb") as handle:
            response = self.tenant.post(
                "/v1/usage/imports",
                data={"partner_account_id": self.accounts[vendor]},
                files={"file": (path.name, handle)},
            )
        assert response.status_code == 201, response.text
        return dict(response.json())

    # -- reading ------------------------------------------------------------------------
    def drain(self) -> int:
        return run_pending(self.runtime)

    def charges(self, customer_id: str, period: str = PERIOD) -> dict[str, Any]:
        response = self.tenant.get(
            f"/v1/customers/{customer_id}/charges", params={"period": period}
        )
        assert response.status_code == 200, response.text
        return dict(response.json())

    def lines(self, customer_id: str, period: str = PERIOD) -> list[dict[str, Any]]:
        body = self.charges(customer_id, period)
        return [line for group in body["groups"] for line in group["lines"]]

    def exact(self, customer_id: str, period: str = PERIOD) -> Decimal:
        """The unrounded total of the customer's open lines."""
        return Decimal(self.charges(customer_id, period)["total_exact"])

    def by_service(self, customer_id: str, period: str = PERIOD) -> dict[str, Decimal]:
        """Exact sell amount per (service name or fee description)."""
        out: dict[str, Decimal] = {}
        for line in self.lines(customer_id, period):
            key = line["service_name"] if line["kind"] == "usage" else "fee"
            out[key] = out.get(key, Decimal(0)) + Decimal(line["amount_exact"])
        return out

    def feed(self, after: str | None = None, limit: int = 500) -> tuple[list[dict[str, Any]], str]:
        """Every change after ``after``, paging with ``limit``; returns (changes, cursor)."""
        changes: list[dict[str, Any]] = []
        cursor = after
        while True:
            params: dict[str, Any] = {"limit": limit}
            if cursor:
                params["after"] = cursor
            response = self.tenant.get("/v1/charges/changes", params=params)
            assert response.status_code == 200, response.text
            page = response.json()
            assert len(page["data"]) <= limit
            changes += page["data"]
            if page["next_cursor"]:
                cursor = page["next_cursor"]
            if not page["has_more"]:
                return changes, cursor or ""
