"""Synthetic FOCUS files with independently known totals (for tests and benchmarks).

Values are built as integers of 10^-10 and written as text, so the expected totals are
plain integer sums here — independent of the code under test.
"""

from __future__ import annotations

import csv
import random
from decimal import Decimal
from pathlib import Path

HEADER = [
    "BilledCost",
    "EffectiveCost",
    "ListCost",
    "ContractedCost",
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
    "Tags",
]

SERVICES = [
    ("Amazon Elastic Compute Cloud", "Compute"),
    ("Amazon Simple Storage Service", "Storage"),
    ("AWS Lambda", "Compute"),
    ("Amazon Relational Database Service", "Databases"),
]


def write_focus(
    path: Path,
    rows: int,
    *,
    seed: int = 1,
    period: str = "2026-10",
    sub_accounts: int = 5,
    currency: str = "USD",
    billing_account: str = "999",
    scale: int = 1,
) -> dict[str, Decimal]:
    """Write ``rows`` lines; return the exact expected totals of each cost column."""
    rng = random.Random(seed)
    year, month = (int(p) for p in period.split("-"))
    next_period = f"{year + month // 12}-{month % 12 + 1:02d}"
    cents = {"BilledCost": 0, "EffectiveCost": 0, "ListCost": 0, "ContractedCost": 0}
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(HEADER)
        for index in range(rows):
            billed = rng.randint(-2_000, 5_000_000_000) * scale  # units of 1e-10
            effective = billed - rng.randint(0, 1000)
            listed = billed + rng.randint(0, 10**9)
            contracted = billed
            for key, value in (
                ("BilledCost", billed),
                ("EffectiveCost", effective),
                ("ListCost", listed),
                ("ContractedCost", contracted),
            ):
                cents[key] += value
            day = 1 + index % 28
            service, category = SERVICES[index % len(SERVICES)]
            writer.writerow(
                [
                    _text(billed),
                    _text(effective),
                    _text(listed),
                    _text(contracted),
                    billing_account,
                    currency,
                    f"{period}-01T00:00:00Z",
                    f"{next_period}-01T00:00:00Z",
                    f"{period}-{day:02d}T00:00:00Z",
                    f"{period}-{day:02d}T01:00:00Z",
                    "Usage",
                    "Usage-Based",
                    "AWS",
                    service,
                    category,
                    f"SKU{index % 97}",
                    "eu-central-1",
                    f"res-{index}",
                    f"{100000000000 + index % sub_accounts}",
                    str(rng.randint(1, 1000)),
                    "Hours",
                    '{"env": "prod"}' if index % 3 else "",
                ]
            )
    return {key: Decimal(value).scaleb(-10) for key, value in cents.items()}


def _text(units: int) -> str:
    return format(Decimal(units).scaleb(-10), "f")
