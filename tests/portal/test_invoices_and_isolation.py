"""Invoices and credit notes in the portal download as the API serves them; every URL of
another customer is 404; the portal's forms refuse a POST without the CSRF token; a German
reader gets German text and German amounts."""

from __future__ import annotations

import re
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from billbyte.app import create_app
from billbyte.jobs.service import run_pending
from billbyte.runtime import Runtime
from tests.conftest import Tenant
from tests.portal.factories import PERIOD, PREVIOUS, USAGE, Seeded, seed, sold
from tests.web.people import add_portal_user, signed_in_client

D = Decimal


def _finalize(tenant: Tenant, runtime: Runtime) -> list[dict[str, object]]:
    response = tenant.post("/v1/invoice-runs", json={"period": PREVIOUS, "force": True})
    assert response.status_code == 202, response.text
    run_pending(runtime)
    listed = tenant.get("/v1/invoices", params={"status": "finalized"})
    assert listed.status_code == 200
    return list(listed.json()["data"])


@pytest.fixture
def invoiced(tenant: Tenant, runtime: Runtime, tmp_path: Path) -> tuple[Seeded, str, str]:
    seeded = seed(tenant, runtime, tmp_path)
    documents = _finalize(tenant, runtime)
    mine = [d for d in documents if d["customer_id"] == seeded.customer_id]
    assert len(mine) == 1
    invoice_id = str(mine[0]["id"])
    note = tenant.post(
        f"/v1/invoices/{invoice_id}/credit-notes",
        json={"reason": "Outage", "lines": [{"description": "Outage credit", "amount": "1.00"}]},
    )
    assert note.status_code == 201, note.text
    return seeded, invoice_id, str(note.json()["id"])


def test_the_invoices_page_lists_the_customers_invoice_and_credit_note(
    client: TestClient, invoiced: tuple[Seeded, str, str], tenant: Tenant
) -> None:
    seeded, invoice_id, note_id = invoiced
    portal = signed_in_client(client, "portal", seeded.person)
    page = portal.get("/portal/invoices")
    assert page.status_code == 200, page.text
    invoice = tenant.get(f"/v1/invoices/{invoice_id}").json()
    note = tenant.get(f"/v1/invoices/{note_id}").json()
    assert invoice["number"] in page.text and note["number"] in page.text
    # October's one row: 4.00 x 1.1.
    assert D(invoice["total"]) == sold([u for u in USAGE if u.period == PREVIOUS])
    assert f"${D(invoice['total']):,.2f}" in page.text
    assert "Credit note" in page.text and "Outage" in page.text
    for kind in ("pdf", "csv"):
        for document in (invoice_id, note_id):
            mine = portal.get(f"/portal/invoices/{document}.{kind}")
            api = tenant.get(f"/v1/invoices/{document}.{kind}")
            assert mine.status_code == api.status_code == 200
            assert mine.headers["content-type"] == api.headers["content-type"]
            if kind == "csv":
                assert mine.text == api.text
            else:
                assert mine.content[:5] == b"%PDF-"


def test_each_listed_invoice_links_to_its_page_by_number(
    client: TestClient, invoiced: tuple[Seeded, str, str], tenant: Tenant
) -> None:
    seeded, invoice_id, note_id = invoiced
    portal = signed_in_client(client, "portal", seeded.person)
    page = portal.get("/portal/invoices").text
    for document in (invoice_id, note_id):
        number = tenant.get(f"/v1/invoices/{document}").json()["number"]
        # the number is the link's text: a screen reader's list of links names each one
        assert f'<a href="/portal/invoices/{document}">{number}</a>' in page
        followed = portal.get(f"/portal/invoices/{document}")
        assert followed.status_code == 200, followed.text
        assert 'class="invoice-document' in followed.text and number in followed.text


def test_the_due_column_shows_the_payment_due_date(
    client: TestClient, invoiced: tuple[Seeded, str, str], tenant: Tenant
) -> None:
    """Due is when payment is due (issue date + the MSP's payment terms, 30 days by default),
    not a draft's finalization time, which a finalized document does not have (the column
    was empty)."""
    seeded, invoice_id, _ = invoiced
    invoice = tenant.get(f"/v1/invoices/{invoice_id}").json()
    issued = date.fromisoformat(invoice["issue_date"])
    due = issued + timedelta(days=30)
    assert invoice["due_date"] == due.isoformat()
    page = signed_in_client(client, "portal", seeded.person).get("/portal/invoices").text
    row = page[page.index(f'<a href="/portal/invoices/{invoice_id}">') :]
    row = row[: row.index("</tr>")]
    # the portal's English dates, e.g. "Nov 30, 2026"
    assert f"<td>{due:%b} {due.day}, {due.year}</td>" in row, row


def test_the_neighbours_invoices_are_404_and_not_listed(
    client: TestClient, invoiced: tuple[Seeded, str, str], runtime: Runtime
) -> None:
    seeded, invoice_id, note_id = invoiced
    neighbour = signed_in_client(
        TestClient(create_app(runtime), raise_server_exceptions=False),
        "portal",
        seeded.neighbour_person,
    )
    listing = neighbour.get("/portal/invoices")
    assert listing.status_code == 200
    assert invoice_id not in listing.text and note_id not in listing.text
    for document in (invoice_id, note_id):
        for kind in ("pdf", "csv"):
            assert neighbour.get(f"/portal/invoices/{document}.{kind}").status_code == 404
        assert neighbour.get(f"/portal/invoices/{document}").status_code == 404  # the page
    # A live draft id (even of the user's own customer) is not a finalized document.
    draft = f"draft_{seeded.neighbour_id}_{PERIOD}"
    assert neighbour.get(f"/portal/invoices/{draft}.pdf").status_code == 404
    assert neighbour.get("/portal/invoices/inv_nope.csv").status_code == 404


def test_another_msps_invoice_is_404(
    client: TestClient,
    invoiced: tuple[Seeded, str, str],
    other_tenant: Tenant,
    runtime: Runtime,
) -> None:
    _, invoice_id, _ = invoiced
    stranger_customer = other_tenant.post(
        "/v1/customers", json={"external_id": "X", "name": "X", "currency": "USD"}
    ).json()["id"]
    stranger = add_portal_user(runtime, other_tenant.msp_id, stranger_customer)
    portal = signed_in_client(client, "portal", stranger)
    assert portal.get(f"/portal/invoices/{invoice_id}.pdf").status_code == 404
    assert invoice_id not in portal.get("/portal/invoices").text


def test_the_neighbours_data_never_shows_on_any_page(
    client: TestClient, tenant: Tenant, runtime: Runtime, tmp_path: Path
) -> None:
    seeded = seed(tenant, runtime, tmp_path)
    portal = signed_in_client(client, "portal", seeded.neighbour_person)
    # The neighbour's own month: 70 x 1.1; none of ACME's accounts or resources.
    overview = portal.get("/portal", params={"period": PERIOD})
    assert "$77.00" in overview.text
    costs = portal.get("/portal/costs", params={"period": PERIOD, "dimension": "account"})
    assert "111111111111" not in costs.text and "vm-web" not in costs.text
    # Filtering by ACME's account selects nothing of the neighbour's, and nothing of ACME's.
    csv_text = portal.get("/portal/costs.csv", params={"period": PERIOD, "account": "111111111111"})
    assert csv_text.status_code == 200 and csv_text.text.count("\n") == 1  # the header only


def test_signed_out_the_pages_send_you_to_sign_in(client: TestClient) -> None:
    for path in ("/portal", "/portal/costs", "/portal/costs.csv", "/portal/invoices"):
        response = client.get(path, follow_redirects=False)
        assert response.status_code == 303
        assert response.headers["location"].startswith("/portal/sign-in")


def test_a_portal_session_cannot_open_the_console(
    client: TestClient, tenant: Tenant, runtime: Runtime, tmp_path: Path
) -> None:
    seeded = seed(tenant, runtime, tmp_path)
    portal = signed_in_client(client, "portal", seeded.person)
    response = portal.get("/console", follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"].startswith("/console/sign-in")


def test_a_post_without_the_csrf_token_is_refused(
    client: TestClient, tenant: Tenant, runtime: Runtime, tmp_path: Path
) -> None:
    seeded = seed(tenant, runtime, tmp_path)
    portal = signed_in_client(client, "portal", seeded.person)
    refused = portal.post("/portal/sign-out", data={}, follow_redirects=False)
    assert refused.status_code == 403
    wrong = portal.post("/portal/sign-out", data={"csrf_token": "forged"}, follow_redirects=False)
    assert wrong.status_code == 403
    assert portal.get("/portal", follow_redirects=False).status_code == 200  # still signed in


def test_a_german_customer_reads_german_text_and_german_amounts(
    client: TestClient, tenant: Tenant, runtime: Runtime, tmp_path: Path
) -> None:
    seeded = seed(tenant, runtime, tmp_path, currency="EUR", locale="de_DE")
    portal = signed_in_client(client, "portal", seeded.person)
    page = portal.get("/portal", params={"period": PERIOD})
    assert page.status_code == 200
    text = page.text.replace("\xa0", " ")
    # 20.90 USD at 2 EUR per USD, written the German way.
    expected = sold([u for u in USAGE if u.period == PERIOD]) * 2
    assert expected == D("41.80")
    assert re.search(r'id="mtd-total">41,80 €<', text)
    assert "Bisheriger Monat" in text or "Monat bis heute" in text
    assert "Offene Posten" in text
    costs = portal.get("/portal/costs", params={"period": PERIOD}).text
    assert "Kosten nach" in costs and "Month to date" not in page.text
    assert 'lang="de"' in page.text
