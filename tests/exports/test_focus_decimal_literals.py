"""Issue 12: every cost and quantity column of the FOCUS export is a decimal literal (with a
fraction), in every currency — JPY has no minor unit, so its costs were written as integers
such as ``36`` — and in an adjustment-only month, whose quantities were all ``0``. The
FinOps validator reads a column of whole numbers as INTEGER and rejects it as not DECIMAL;
with decimal literals exactly one rule fails, InvoiceId-C-005-C (docs/exports.md)."""

from __future__ import annotations

import re
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from billbyte.jobs.service import run_pending
from billbyte.rating import tasks as _rating  # noqa: F401  (registers the job handler)
from billbyte.runtime import Runtime
from tests.conftest import Tenant
from tests.exports.test_focus_export import DECIMALS, check_focus, export, run_validator

LITERAL = re.compile(r"^-?\d+\.\d+$")
HEADER = (
    "BilledCost,BillingCurrency,BillingPeriodStart,BillingPeriodEnd,ChargePeriodStart,"
    "ChargePeriodEnd,ChargeCategory,ProviderName,ServiceName,ServiceCategory,SkuId,"
    "SubAccountId,ResourceId,PricingQuantity,PricingUnit"
)
APRIL = ("2026-04-01T00:00:00Z", "2026-05-01T00:00:00Z")
# USD usage: 3 whole hours (a whole quantity), 0.5 h, and storage.
USAGE = [
    ("0.24", "2026-04-03", "Amazon Elastic Compute Cloud", "Compute", "SKU-A", "i-1", "3", "Hrs"),
    ("0.04", "2026-04-04", "Amazon Elastic Compute Cloud", "Compute", "SKU-A", "i-2", "0.5", "Hrs"),
    ("1.20", "2026-04-05", "Amazon Simple Storage Service", "Storage", "SKU-S", "b-1", "52", "GB"),
]
JPY_PER_USD = Decimal("150")


def _ok(response: Any, status: int = 201) -> dict[str, Any]:
    assert response.status_code == status, response.text
    return dict(response.json())


def _import(tenant: Tenant, account: str, path: Path, rows: list[tuple[str, ...]]) -> None:
    lines = [HEADER]
    for cost, day, service, category, sku, resource, quantity, unit in rows:
        lines.append(
            f"{cost},USD,{APRIL[0]},{APRIL[1]},{day}T00:00:00Z,{day}T01:00:00Z,Usage,AWS,"
            f"{service},{category},{sku},111111111111,{resource},{quantity},{unit}"
        )
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with path.open("rb") as handle:
        _ok(
            tenant.post(
                "/v1/usage/imports",
                data={"partner_account_id": account},
                files={"file": (path.name, handle)},
            )
        )


def _customer(tenant: Tenant, runtime: Runtime, tmp_path: Path, currency: str) -> tuple[str, str]:
    """One customer billed in ``currency`` for USD usage at cost +20 %; no licences, no fee."""
    account = _ok(
        tenant.post("/v1/partner-accounts", json={"vendor": "aws", "display_name": "AWS payer"})
    )["id"]
    _ok(
        tenant.post(
            "/v1/price-plans",
            json={
                "name": "Standard",
                "is_default": True,
                "rules": [{"vendor": "aws", "adjustment": "markup_percent", "value": "20"}],
            },
        )
    )
    if currency != "USD":
        rate = str(JPY_PER_USD) if currency == "JPY" else "0.9"
        days = [date(2026, 4, d) for d in range(1, 31)]
        body = {
            "rates": [
                {"base": "USD", "quote": currency, "date": d.isoformat(), "rate": rate}
                for d in days
            ]
        }
        _ok(tenant.client.put("/v1/fx-rates", json=body, headers=tenant.headers), 200)
    customer = _ok(
        tenant.post(
            "/v1/customers",
            json={"external_id": f"C-{currency}", "name": f"{currency} Co", "currency": currency},
        )
    )["id"]
    _ok(
        tenant.post(
            f"/v1/customers/{customer}/vendor-accounts",
            json={"partner_account_id": account, "vendor_identifier": "111111111111"},
        )
    )
    _import(tenant, account, tmp_path / "usage.csv", USAGE)
    run_pending(runtime)
    return customer, account


def _assert_decimal_literals(rows: list[dict[str, str]]) -> None:
    for row in rows:
        for name in DECIMALS:
            assert row[name] == "" or LITERAL.match(row[name]), (name, row[name])


def _validated(text: str, path: Path) -> None:
    path.write_text(text, encoding="utf-8")
    code, failed, output = run_validator(path)
    assert failed == {"InvoiceId-C-005-C"}, output
    assert "Fail: 1 " in output and code == 1, output


@pytest.mark.parametrize("currency", ["USD", "JPY"])
def test_every_currency_writes_decimal_literals_and_fails_only_the_invoice_id_rule(
    tenant: Tenant, runtime: Runtime, tmp_path: Path, currency: str
) -> None:
    customer, _ = _customer(tenant, runtime, tmp_path, currency)
    text, rows = export(tenant, customer, "2026-04")
    check_focus(text, rows)
    _assert_decimal_literals(rows)
    billed = sorted(Decimal(r["BilledCost"]) for r in rows)
    if currency == "JPY":
        # cost × 1.20 × 150 JPY/USD, to whole yen: 0.24 → 43.2 → 43; 0.04 → 7.2 → 7; 1.20 → 216
        assert billed == [Decimal("7"), Decimal("43"), Decimal("216")]
        assert {r["BilledCost"] for r in rows} == {"7.0", "43.0", "216.0"}
    else:
        # cost × 1.20 to the cent: 0.288 → 0.29, 0.048 → 0.05, 1.44
        assert billed == [Decimal("0.05"), Decimal("0.29"), Decimal("1.44")]
    quantities = sorted(r["PricingQuantity"] for r in rows)
    assert quantities == ["0.5", "3.0", "52.0"]
    _validated(text, tmp_path / f"focus-{currency}.csv")


def test_an_adjustment_only_month_writes_decimal_literals(
    tenant: Tenant, runtime: Runtime, tmp_path: Path
) -> None:
    """April invoiced, then April delivered again with one cost corrected (same quantity):
    May holds only the adjustment, whose quantity is zero."""
    customer, account = _customer(tenant, runtime, tmp_path, "EUR")
    run = tenant.post("/v1/invoice-runs", json={"period": "2026-04", "force": True})
    assert run.status_code == 202, run.text
    run_pending(runtime)
    corrected = [("10.24", *USAGE[0][1:]), *USAGE[1:]]  # i-1: 0.24 → 10.24 USD
    _import(tenant, account, tmp_path / "corrected.csv", corrected)
    run_pending(runtime)
    text, rows = export(tenant, customer, "2026-05")
    assert rows and {r["x_ChargeKind"] for r in rows} == {"adjustment"}
    check_focus(text, rows)
    _assert_decimal_literals(rows)
    # +10.00 USD × 1.20 × 0.9 EUR/USD = 10.80 EUR, no change of quantity
    assert [(r["BilledCost"], r["PricingQuantity"]) for r in rows] == [("10.80", "0.0")]
    _validated(text, tmp_path / "focus-adjustment.csv")
