"""The console's invoicing pages: invoice runs started from a range-checked form and
watched until done, invoices and credit notes as the API lists them with the same PDF/CSV,
credit notes issued through the API's rule, and the margin report with its chart."""

from __future__ import annotations

import json
import re
from decimal import Decimal

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from billbyte.app import create_app
from billbyte.invoicing.models import Invoice, InvoiceRun, InvoiceSettings
from billbyte.jobs.service import run_pending
from billbyte.runtime import Runtime
from tests.conftest import Tenant
from tests.invoicing.conftest import add_charges, close, customer
from tests.web.people import add_staff, csrf_token, signed_in_client

PERIOD = "2026-09"


def console(runtime: Runtime, msp_id: str, role: str = "admin") -> TestClient:
    client = TestClient(create_app(runtime), raise_server_exceptions=False)
    return signed_in_client(client, "console", add_staff(runtime, msp_id, role))


def count(runtime: Runtime, model: type) -> int:
    with runtime.uow(read_only=True) as uow:
        return int(uow.session.scalar(select(func.count()).select_from(model)) or 0)


def invoiced(runtime: Runtime, tenant: Tenant) -> tuple[str, str]:
    """Two customers with September charges, invoiced; returns (customer, its invoice)."""
    first = customer(tenant, "A")
    second = customer(tenant, "B")
    add_charges(runtime, tenant.msp_id, first, PERIOD, ["10.004", "20.004", "30.004"])
    add_charges(runtime, tenant.msp_id, second, PERIOD, ["0.333", "0.333", "0.334"])
    close(runtime, tenant.msp_id, PERIOD)
    invoice = tenant.get("/v1/invoices", params={"customer_id": first}).json()["data"][0]
    return first, invoice["id"]


def test_a_run_started_from_the_form_is_watched_until_it_has_its_results(
    runtime: Runtime, tenant: Tenant
) -> None:
    first = customer(tenant, "A")
    add_charges(runtime, tenant.msp_id, first, PERIOD, ["10.004", "20.004"])
    staff = console(runtime, tenant.msp_id, "billing")
    page = staff.get("/console/invoices")
    assert page.status_code == 200
    started = staff.post(
        "/console/invoices/runs",
        data={"csrf_token": csrf_token(page.text), "period": PERIOD},
        follow_redirects=False,
    )
    assert started.status_code == 303
    run_id = started.headers["location"].rsplit("/", 1)[1]
    watching = staff.get(started.headers["location"])
    assert 'http-equiv="refresh"' in watching.text and ">pending<" in watching.text
    run_pending(runtime)
    done = staff.get(started.headers["location"])
    api = tenant.get(f"/v1/invoice-runs/{run_id}").json()
    assert api["status"] == "completed" and api["invoices_created"] == 1
    assert 'http-equiv="refresh"' not in done.text and ">completed<" in done.text
    for field in ("customers_due", "invoices_created", "failed", "not_due"):
        assert f'data-field="{field}">{api[field]}<' in done.text
    assert run_id in staff.get("/console/invoices").text


@pytest.mark.parametrize("period", ["1999-13", "2026-13", "1999-12", "abc", ""])
def test_a_bad_period_is_refused_and_no_run_is_recorded(
    runtime: Runtime, tenant: Tenant, period: str
) -> None:
    staff = console(runtime, tenant.msp_id)
    token = csrf_token(staff.get("/console/invoices").text)
    refused = staff.post("/console/invoices/runs", data={"csrf_token": token, "period": period})
    assert refused.status_code == 422 and 'role="alert"' in refused.text
    assert count(runtime, InvoiceRun) == 0


def test_an_incomplete_billing_profile_is_shown_on_the_form_and_no_run_is_recorded(
    runtime: Runtime, tenant: Tenant
) -> None:
    with runtime.uow() as uow:
        uow.session.add(InvoiceSettings(msp_id=tenant.msp_id, mode="invoice"))
        uow.commit()
    staff = console(runtime, tenant.msp_id)
    token = csrf_token(staff.get("/console/invoices").text)
    refused = staff.post("/console/invoices/runs", data={"csrf_token": token, "period": PERIOD})
    assert refused.status_code == 409 and 'role="alert"' in refused.text
    assert "seller.tax_id" in refused.text and "PUT /v1/billing-profile" in refused.text
    assert count(runtime, InvoiceRun) == 0


def test_invoices_show_the_apis_totals_lines_and_documents(
    runtime: Runtime, tenant: Tenant
) -> None:
    _, invoice_id = invoiced(runtime, tenant)
    staff = console(runtime, tenant.msp_id, "helpdesk")
    listing = staff.get("/console/invoices")
    api = tenant.get("/v1/invoices", params={"limit": 100}).json()["data"]
    assert api
    for item in api:
        found = re.search(
            rf'data-invoice="{item["id"]}".*?data-total="([^"]+)"', listing.text, re.S
        )
        assert found and found.group(1) == item["total"]
    assert {i["total"] for i in api if i["status"] == "finalized"} == {"60.01", "1.00"}  # by hand
    page = staff.get(f"/console/invoices/{invoice_id}")
    detail = tenant.get(f"/v1/invoices/{invoice_id}").json()
    assert page.status_code == 200
    shown = re.findall(r'data-amount="([^"]+)"', page.text)
    assert shown == [line["amount"] for line in detail["lines"]]
    assert sum(Decimal(a) for a in shown) == Decimal(detail["total"])
    for kind in ("csv", "pdf"):
        mine = staff.get(f"/console/invoices/{invoice_id}.{kind}")
        theirs = tenant.get(f"/v1/invoices/{invoice_id}.{kind}")
        assert (
            mine.status_code == 200
            and mine.headers["content-type"] == theirs.headers["content-type"]
        )
        assert mine.headers["content-disposition"] == theirs.headers["content-disposition"]
        if kind == "csv":
            assert mine.content == theirs.content
        else:
            assert mine.content.startswith(b"%PDF")
    filtered = staff.get("/console/invoices", params={"kind": "credit_note"})
    assert invoice_id not in filtered.text
    assert staff.get("/console/invoices", params={"period": "2026-13"}).status_code == 422
    assert staff.get("/console/invoices", params={"status": "paid"}).status_code == 422


def test_a_credit_note_is_issued_for_an_invoice_and_over_crediting_is_refused(
    runtime: Runtime, tenant: Tenant
) -> None:
    _, invoice_id = invoiced(runtime, tenant)
    staff = console(runtime, tenant.msp_id, "billing")
    page = staff.get(f"/console/invoices/{invoice_id}")
    token = csrf_token(page.text)
    before = count(runtime, Invoice)
    for amount in ("abc", "-5", "0", "60.02", "1.001"):
        refused = staff.post(
            f"/console/invoices/{invoice_id}/credit-notes",
            data={"csrf_token": token, "description": "Goodwill", "amount": amount, "reason": "r"},
        )
        assert refused.status_code == 422, (amount, refused.status_code)
        assert count(runtime, Invoice) == before
    issued = staff.post(
        f"/console/invoices/{invoice_id}/credit-notes",
        data={"csrf_token": token, "description": "Goodwill", "amount": "5.00", "reason": "late"},
        follow_redirects=False,
    )
    assert issued.status_code == 303
    note_id = issued.headers["location"].rsplit("/", 1)[1]
    note = tenant.get(f"/v1/invoices/{note_id}").json()
    assert note["object"] == "credit_note" and note["credited_invoice_id"] == invoice_id
    assert Decimal(note["total"]).copy_abs() == Decimal("5.00")
    shown = staff.get(f"/console/invoices/{note_id}")
    assert f'data-total="{note["total"]}"' in shown.text
    listed = staff.get("/console/invoices", params={"kind": "credit_note"}).text
    assert note_id in listed


def test_help_desk_reads_and_every_post_is_403(runtime: Runtime, tenant: Tenant) -> None:
    _, invoice_id = invoiced(runtime, tenant)
    desk = console(runtime, tenant.msp_id, "helpdesk")
    for path in ("/console/invoices", f"/console/invoices/{invoice_id}", "/console/margin"):
        assert desk.get(path).status_code == 200, path
    token = csrf_token(desk.get("/console/invoices").text)
    runs_before, documents = count(runtime, InvoiceRun), count(runtime, Invoice)
    assert (
        desk.post(
            "/console/invoices/runs", data={"csrf_token": token, "period": PERIOD}
        ).status_code
        == 403
    )
    assert (
        desk.post(
            f"/console/invoices/{invoice_id}/credit-notes",
            data={"csrf_token": token, "description": "x", "amount": "1.00", "reason": "x"},
        ).status_code
        == 403
    )
    assert (count(runtime, InvoiceRun), count(runtime, Invoice)) == (runs_before, documents)


def test_a_post_without_the_csrf_token_is_refused(runtime: Runtime, tenant: Tenant) -> None:
    staff = console(runtime, tenant.msp_id)
    assert staff.post("/console/invoices/runs", data={"period": PERIOD}).status_code == 403
    assert count(runtime, InvoiceRun) == 0


@pytest.mark.parametrize("role", ["admin", "helpdesk"])
def test_another_msps_invoice_and_run_are_404(
    runtime: Runtime, tenant: Tenant, other_tenant: Tenant, role: str
) -> None:
    _, theirs = invoiced(runtime, other_tenant)
    their_run = other_tenant.post("/v1/invoice-runs", json={"period": PERIOD}).json()["id"]
    staff = console(runtime, tenant.msp_id, role)
    token = csrf_token(staff.get("/console/invoices").text)
    for path in (theirs, f"{theirs}.pdf", f"{theirs}.csv", f"runs/{their_run}"):
        assert staff.get(f"/console/invoices/{path}").status_code == 404, path
    documents = count(runtime, Invoice)
    answer = staff.post(
        f"/console/invoices/{theirs}/credit-notes",
        data={"csrf_token": token, "description": "x", "amount": "1.00", "reason": "x"},
    )
    assert answer.status_code == 404 and count(runtime, Invoice) == documents
    assert theirs not in staff.get("/console/invoices").text
    assert "INV-" not in staff.get("/console/invoices").text
    margin = staff.get("/console/margin", params={"period": PERIOD}).text
    assert "No charges in this period." in margin


@pytest.mark.parametrize("group_by", ["customer", "vendor", "service"])
def test_the_margin_report_and_its_chart_show_the_apis_figures(
    runtime: Runtime, tenant: Tenant, group_by: str
) -> None:
    first = customer(tenant, "A", name="Alpha AG")
    second = customer(tenant, "B")
    add_charges(runtime, tenant.msp_id, first, PERIOD, ["10.004", "20.004"])
    add_charges(
        runtime, tenant.msp_id, second, PERIOD, ["7.5"], service_name="AWS Lambda", key_prefix="l"
    )
    staff = console(runtime, tenant.msp_id, "billing")
    page = staff.get("/console/margin", params={"period": PERIOD, "group_by": group_by})
    assert page.status_code == 200
    api = tenant.get("/v1/reports/margin", params={"period": PERIOD, "group_by": group_by}).json()
    assert len(api["rows"]) == {"customer": 2, "vendor": 1, "service": 2}[group_by]
    rows = re.findall(
        r'data-key="([^"]*)" data-currency="([^"]+)">.*?data-amount="([^"]+)".*?'
        r'data-cost="([^"]+)".*?data-margin="([^"]+)"',
        page.text,
        re.S,
    )
    assert rows == [
        (str(r["key"]), r["currency"], r["amount"], r["cost"], r["margin"]) for r in api["rows"]
    ]
    spec = json.loads(re.search(r'id="margin-1-data">(.*?)</script>', page.text, re.S).group(1))
    assert spec["data"][0]["y"] == [r["margin"] for r in api["rows"]]
    if group_by == "customer":
        assert "Alpha AG" in spec["data"][0]["x"]
        # by hand: sell 30.008 -> 30.01, cost 27.0072 -> 27.01, margin 3.00
        assert api["rows"][0]["margin"] == "3.00"
    assert staff.get("/console/margin", params={"period": "1999-13"}).status_code == 422
    assert staff.get("/console/margin", params={"group_by": "colour"}).status_code == 422
