"""Invoice runs: what is due, idempotency, numbering, grace and live drafts, cycles."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from sqlalchemy import func, select

from billbyte.charges.models import ClosedPeriod
from billbyte.invoicing.models import Invoice
from billbyte.jobs.service import run_pending
from tests.invoicing.conftest import Billing, add_charges, close, customer


def test_a_run_finalizes_each_due_customer_once_and_a_second_run_changes_nothing(
    billing: Billing,
) -> None:
    tenant, runtime = billing.tenant, billing.runtime
    first = customer(tenant, "A")
    second = customer(tenant, "B")
    idle = customer(tenant, "C")
    add_charges(runtime, tenant.msp_id, first, "2026-09", ["10.004", "20.004", "30.004"])
    add_charges(runtime, tenant.msp_id, second, "2026-09", ["0.333", "0.333", "0.334"])

    run = close(runtime, tenant.msp_id, "2026-09")
    assert (run.status, run.invoices_created, run.closed_without_charges) == ("completed", 2, 1)
    invoices = billing.invoices(status="finalized")
    assert sorted(i["number"] for i in invoices) == ["INV-000001", "INV-000002"]
    totals = {i["customer_id"]: Decimal(i["total"]) for i in invoices}
    # 60.012 -> 60.01; 1.000 -> 1.00 (written out by hand)
    assert totals == {first: Decimal("60.01"), second: Decimal("1.00")}
    for invoice in invoices:
        detail = billing.invoice(invoice["id"])
        assert sum(Decimal(li["amount"]) for li in detail["lines"]) == Decimal(detail["total"])

    before = billing.invoices()
    again = close(runtime, tenant.msp_id, "2026-09")
    assert (again.invoices_created, again.already_closed, again.closed_without_charges) == (0, 3, 0)
    assert billing.invoices() == before
    with runtime.uow() as uow:
        assert uow.session.scalar(select(func.count()).select_from(Invoice)) == 2
        closed = set(uow.session.scalars(select(ClosedPeriod.customer_id)))
    assert closed == {first, second, idle}


def test_during_grace_the_invoice_is_a_live_draft(billing: Billing) -> None:
    tenant, runtime = billing.tenant, billing.runtime
    assert tenant.client.put(
        "/v1/invoice-settings", json={"grace_days": 5}, headers=tenant.headers
    ).json() == {
        "object": "invoice_settings",
        "grace_days": 5,
        "grouping": "service",
        "mode": "statement",
    }
    cid = customer(tenant, "A")
    add_charges(runtime, tenant.msp_id, cid, "2026-10", ["5.00"])
    drafts = billing.invoices(status="draft")
    assert [d["id"] for d in drafts] == [f"draft_{cid}_2026-10"]
    assert drafts[0]["due_at"] == "2026-11-06T00:00:00Z"
    assert drafts[0]["total"] == "5.00" and drafts[0]["number"] is None

    # Still in grace on 2026-11-05: nothing is finalized, the draft follows new data.
    in_grace = datetime(2026, 11, 5, 23, 59, tzinfo=UTC)
    run = close(runtime, tenant.msp_id, "2026-10", now=in_grace)
    assert (run.not_due, run.invoices_created) == (1, 0)
    add_charges(runtime, tenant.msp_id, cid, "2026-10", ["2.50"], key_prefix="late")
    draft = billing.invoice(f"draft_{cid}_2026-10")
    assert draft["status"] == "draft" and draft["total"] == "7.50"
    assert len(draft["lines"]) == 1  # same vendor and service: one line

    after_grace = datetime(2026, 11, 6, tzinfo=UTC)
    run = close(runtime, tenant.msp_id, "2026-10", now=after_grace)
    assert run.invoices_created == 1
    final = billing.invoices(status="finalized")
    assert [(i["total"], i["issue_date"]) for i in final] == [("7.50", "2026-11-01")]
    gone = tenant.get(f"/v1/invoices/draft_{cid}_2026-10")
    assert gone.status_code == 404 and final[0]["id"] in gone.json()["detail"]


def test_force_ignores_the_grace_period(billing: Billing) -> None:
    tenant, runtime = billing.tenant, billing.runtime
    cid = customer(tenant, "A")
    add_charges(runtime, tenant.msp_id, cid, "2026-10", ["1.00"])
    early = datetime(2026, 11, 2, tzinfo=UTC)
    assert close(runtime, tenant.msp_id, "2026-10", now=early).invoices_created == 0
    assert close(runtime, tenant.msp_id, "2026-10", now=early, force=True).invoices_created == 1


def test_anchor_day_dates_the_invoice_and_delays_it(billing: Billing) -> None:
    tenant, runtime = billing.tenant, billing.runtime
    cid = customer(tenant, "A", billing_anchor_day=15)
    add_charges(runtime, tenant.msp_id, cid, "2026-10", ["1.00"])
    assert billing.invoices(status="draft")[0]["due_at"] == "2026-11-15T00:00:00Z"
    assert close(runtime, tenant.msp_id, "2026-10", now=datetime(2026, 11, 14, tzinfo=UTC)).not_due
    close(runtime, tenant.msp_id, "2026-10", now=datetime(2026, 11, 15, tzinfo=UTC))
    assert billing.invoices(status="finalized")[0]["issue_date"] == "2026-11-15"


def test_quarterly_customers_are_invoiced_for_the_quarter(billing: Billing) -> None:
    tenant, runtime = billing.tenant, billing.runtime
    quarterly = customer(tenant, "Q", billing_cycle="quarterly")
    monthly = customer(tenant, "M")
    for month, amount in (("2026-07", "1.001"), ("2026-08", "2.001"), ("2026-09", "3.001")):
        add_charges(runtime, tenant.msp_id, quarterly, month, [amount])
        add_charges(runtime, tenant.msp_id, monthly, month, [amount])
    # August ends no quarter: only the monthly customer is invoiced.
    run = close(runtime, tenant.msp_id, "2026-08")
    assert (run.customers_due, run.invoices_created) == (1, 1)
    assert [d["period_end"] for d in billing.invoices(status="draft", customer_id=quarterly)] == [
        "2026-09"
    ]
    run = close(runtime, tenant.msp_id, "2026-09")
    assert run.invoices_created == 2
    invoice = billing.invoices(status="finalized", customer_id=quarterly)[0]
    assert (invoice["period_start"], invoice["period_end"]) == ("2026-07", "2026-09")
    assert invoice["months"] == ["2026-07", "2026-08", "2026-09"]
    # Each month is rounded like its charges: 1.00 + 2.00 + 3.00.
    assert invoice["total"] == "6.00"
    lines = billing.invoice(invoice["id"])["lines"]
    assert [(li["period"], li["amount"]) for li in lines] == [
        ("2026-07", "1.00"),
        ("2026-08", "2.00"),
        ("2026-09", "3.00"),
    ]
    assert billing.invoices(period="2026-08", customer_id=quarterly)[0]["id"] == invoice["id"]


def test_grouping_by_service_or_by_account(billing: Billing) -> None:
    tenant, runtime = billing.tenant, billing.runtime
    by_service = customer(tenant, "S")
    add_charges(
        runtime,
        tenant.msp_id,
        by_service,
        "2026-09",
        ["1.005", "2.005", "3.005", "4.005"],
        sub_accounts=("111", "222"),
    )
    draft = billing.invoice(f"draft_{by_service}_2026-09")
    assert [(li["vendor_reference"], li["amount"]) for li in draft["lines"]] == [
        ("111, 222", "10.02")
    ]
    assert draft["lines"][0]["quantity"] == "10" and draft["lines"][0]["unit"] == "Hours"
    tenant.client.put("/v1/invoice-settings", json={"grouping": "account"}, headers=tenant.headers)
    draft = billing.invoice(f"draft_{by_service}_2026-09")
    # 4.010 and 6.010 exact; 10.02 in all: rounded lines must still add up.
    assert [(li["vendor_reference"], li["amount"]) for li in draft["lines"]] == [
        ("111", "4.01"),
        ("222", "6.01"),
    ]
    assert draft["total"] == "10.02"


def test_the_run_api_works_in_the_background(billing: Billing) -> None:
    tenant, runtime = billing.tenant, billing.runtime
    cid = customer(tenant, "A")
    add_charges(runtime, tenant.msp_id, cid, "2026-09", ["9.99"])
    response = tenant.post("/v1/invoice-runs", json={"period": "2026-09"})
    assert response.status_code == 202, response.text
    run = response.json()
    assert run["status"] == "pending"
    assert run_pending(runtime) >= 1
    done = tenant.get(f"/v1/invoice-runs/{run['id']}").json()
    assert (done["status"], done["invoices_created"]) == ("completed", 1)
    assert [r["id"] for r in tenant.get("/v1/invoice-runs").json()["data"]] == [run["id"]]
    assert tenant.post("/v1/invoice-runs", json={"period": "2026-9"}).status_code == 422
