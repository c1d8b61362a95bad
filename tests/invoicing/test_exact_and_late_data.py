"""At finalization the invoice equals the period's charges exactly; data that arrives
later becomes an adjustment on the next invoice and the finalized one stays byte-identical."""

from __future__ import annotations

import csv
from decimal import ROUND_HALF_EVEN, Decimal
from pathlib import Path
from typing import Any

from billbyte.jobs.service import run_pending
from billbyte.rating.tasks import rate_all
from tests.conftest import Tenant
from tests.invoicing.conftest import Billing, close
from tests.rating.test_oracle import SAMPLE, _expected, priced, rate_of
from tests.usage.generate import write_focus

__all__ = ["priced"]  # the oracle's fixture: FOCUS sample, two plans' rules, daily rates
CENT = Decimal("0.01")
LATE_SUB_ACCOUNT = "51738928782"


def _round(value: Decimal) -> Decimal:
    return value.quantize(CENT, rounding=ROUND_HALF_EVEN)


def _snapshot(tenant: Tenant, invoice_id: str) -> tuple[bytes, bytes, bytes]:
    responses = [
        tenant.get(f"/v1/invoices/{invoice_id}{suffix}") for suffix in ("", ".csv", ".pdf")
    ]
    for response in responses:
        assert response.status_code == 200, response.text
    return responses[0].content, responses[1].content, responses[2].content


def _charges_total(tenant: Tenant, customer_id: str, period: str) -> Decimal:
    body = tenant.get(f"/v1/customers/{customer_id}/charges", params={"period": period}).json()
    return Decimal(body["total"])


def _late_file(tmp_path: Path, billed: str, name: str, account: str) -> Path:
    """One AWS usage row of the sample, re-billed under another billing account (a new
    slice: data that arrives after the period was invoiced)."""
    with SAMPLE.open(encoding="utf-8-sig", newline="") as handle:
        rows = list(csv.DictReader(handle))
    row = next(
        r
        for r in rows
        if r["ProviderName"] == "AWS"
        and r["ChargeCategory"] == "Usage"
        and r["SubAccountId"] == LATE_SUB_ACCOUNT
    )
    assert row["ChargePeriodStart"].startswith("2024-09-18")
    row = {**row, "BilledCost": billed, "ListCost": billed, "BillingAccountId": account}
    path = tmp_path / name
    with path.open("w", newline="", encoding="utf-8") as out:
        writer = csv.DictWriter(out, fieldnames=list(row))
        writer.writeheader()
        writer.writerow(row)
    return path


def _import(tenant: Tenant, path: Path) -> None:
    account = next(
        a["id"] for a in tenant.get("/v1/partner-accounts").json()["data"] if a["vendor"] == "aws"
    )
    with path.open("rb") as handle:
        response = tenant.post(
            "/v1/usage/imports",
            data={"partner_account_id": account},
            files={"file": (path.name, handle)},
        )
    assert response.status_code == 201, response.text


def test_focus_sample_invoice_equals_charges_and_late_data_is_an_adjustment(
    priced: Any, runtime: Any, billing: Billing, tmp_path: Path
) -> None:
    tenant, customers, customer_of = priced
    run_pending(runtime)
    expected = _expected(customer_of)
    charges = {cid: _charges_total(tenant, cid, "2024-09") for cid in customers.values()}

    run = close(runtime, tenant.msp_id, "2024-09")
    assert run.invoices_created == 3 and run.failed == 0, run.errors
    invoices = {i["customer_id"]: i for i in billing.invoices(status="finalized")}
    for cid in customers.values():
        detail = billing.invoice(invoices[cid]["id"])
        lines_total = sum((Decimal(li["amount"]) for li in detail["lines"]), Decimal(0))
        assert lines_total == Decimal(detail["total"]) == charges[cid]
        assert Decimal(detail["total"]) == _round(expected[(cid, "2024-09")])
        assert detail["fx_rates"] and {r["base"] for r in detail["fx_rates"]} == {"USD"}

    late_customer = customer_of[LATE_SUB_ACCOUNT]
    invoice_id = invoices[late_customer]["id"]
    before = _snapshot(tenant, invoice_id)

    # A row for September arrives after September was invoiced.
    _import(tenant, _late_file(tmp_path, "12.3456", "late.csv", "9999999999999"))
    assert run_pending(runtime) >= 1
    assert _snapshot(tenant, invoice_id) == before
    delta = Decimal("12.3456") * Decimal("1.15") * rate_of(18)  # AWS +15 %, USD->EUR of 09-18
    draft = billing.invoice(f"draft_{late_customer}_2024-10")
    adjustments = [li for li in draft["lines"] if li["kind"] == "adjustment"]
    assert [(a["original_period"], Decimal(a["amount"])) for a in adjustments] == [
        ("2024-09", _round(delta))
    ]
    assert adjustments[0]["description"].startswith("Adjustment for 2024-09: ")
    assert Decimal(adjustments[0]["amount_exact"]) == delta
    other_drafts = [
        d for d in billing.invoices(status="draft") if d["customer_id"] != late_customer
    ]
    assert other_drafts == []

    # Re-rating changes nothing more; closing October invoices the adjustment once.
    rate_all(runtime, tenant.msp_id)
    assert billing.invoice(f"draft_{late_customer}_2024-10")["lines"] == draft["lines"]
    close(runtime, tenant.msp_id, "2024-10")
    october = billing.invoices(status="finalized", period="2024-10")
    assert [(i["customer_id"], Decimal(i["total"])) for i in october] == [
        (late_customer, _round(delta))
    ]
    rate_all(runtime, tenant.msp_id)
    assert billing.invoices(status="draft") == []

    # A correction of the late row (restated to 2.00) is owed only as its difference.
    _import(tenant, _late_file(tmp_path, "2.00", "late-restated.csv", "9999999999999"))
    run_pending(runtime)
    assert _snapshot(tenant, invoice_id) == before
    correction = Decimal("2.00") * Decimal("1.15") * rate_of(18) - delta
    november = billing.invoice(f"draft_{late_customer}_2024-11")
    assert [(li["original_period"], Decimal(li["amount_exact"])) for li in november["lines"]] == [
        ("2024-09", correction)
    ]
    assert Decimal(november["total"]) == _round(correction) < 0


def test_generated_month_invoice_equals_its_exact_total(
    tenant: Tenant, runtime: Any, billing: Billing, tmp_path: Path
) -> None:
    path = tmp_path / "generated.csv"
    totals = write_focus(path, 3000, seed=7, period="2025-06", sub_accounts=5)
    account = tenant.post(
        "/v1/partner-accounts", json={"vendor": "aws", "display_name": "AWS"}
    ).json()["id"]
    plan = tenant.post(
        "/v1/price-plans",
        json={
            "name": "Ten",
            "is_default": True,
            "rules": [{"vendor": "aws", "adjustment": "markup_percent", "value": "10"}],
        },
    )
    assert plan.status_code == 201, plan.text
    body = {"external_id": "G", "name": "Generated Inc", "currency": "USD", "locale": "en_US"}
    cid = tenant.post("/v1/customers", json=body).json()["id"]
    for index in range(5):
        link = tenant.post(
            f"/v1/customers/{cid}/vendor-accounts",
            json={"partner_account_id": account, "vendor_identifier": f"{100000000000 + index}"},
        )
        assert link.status_code == 201, link.text
    _import_file(tenant, account, path)
    run_pending(runtime)
    want = _round(totals["BilledCost"] * Decimal("1.1"))
    assert _charges_total(tenant, cid, "2025-06") == want

    assert close(runtime, tenant.msp_id, "2025-06").invoices_created == 1
    invoice = billing.invoices(status="finalized")[0]
    detail = billing.invoice(invoice["id"])
    assert Decimal(detail["total"]) == want
    assert sum((Decimal(li["amount"]) for li in detail["lines"]), Decimal(0)) == want
    assert Decimal(detail["total_exact"]) == totals["BilledCost"] * Decimal("1.1")
    assert len(detail["lines"]) == 4  # four services in the generator


def _import_file(tenant: Tenant, account: str, path: Path) -> None:
    with path.open("rb") as handle:
        response = tenant.post(
            "/v1/usage/imports",
            data={"partner_account_id": account},
            files={"file": (path.name, handle)},
        )
    assert response.status_code == 201, response.text
