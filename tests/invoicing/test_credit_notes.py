"""Credit notes: finalized negative documents against an invoice, never above it."""

from __future__ import annotations

from decimal import Decimal

from tests.api.factories import assert_problem
from tests.invoicing.conftest import Billing, add_charges, close, customer


def _invoice(billing: Billing) -> tuple[str, str]:
    cid = customer(billing.tenant, "A")
    add_charges(billing.runtime, billing.tenant.msp_id, cid, "2026-09", ["60.00", "40.00"])
    close(billing.runtime, billing.tenant.msp_id, "2026-09")
    return cid, str(billing.invoices(status="finalized")[0]["id"])


def test_credit_notes_are_numbered_and_cannot_exceed_the_invoice(billing: Billing) -> None:
    tenant = billing.tenant
    cid, invoice_id = _invoice(billing)
    invoice_before = tenant.get(f"/v1/invoices/{invoice_id}").content
    url = f"/v1/invoices/{invoice_id}/credit-notes"
    first = tenant.post(
        url,
        json={
            "reason": "Service outage",
            "lines": [
                {"description": "Outage credit", "amount": "10.00"},
                {"description": "Goodwill", "amount": "5.5"},
            ],
        },
    )
    assert first.status_code == 201, first.text
    note = first.json()
    assert (note["object"], note["status"], note["number"]) == (
        "credit_note",
        "finalized",
        "CN-000001",
    )
    assert note["credited_invoice_id"] == invoice_id and note["customer_id"] == cid
    assert note["total"] == "-15.50" and note["reason"] == "Service outage"
    assert [(li["kind"], li["amount"]) for li in note["lines"]] == [
        ("credit", "-10.00"),
        ("credit", "-5.50"),
    ]

    too_much = tenant.post(
        url, json={"reason": "x", "lines": [{"description": "rest", "amount": "84.51"}]}
    )
    assert_problem(too_much, 422, "credit_exceeds_invoice")
    rest = tenant.post(
        url, json={"reason": "x", "lines": [{"description": "rest", "amount": "84.50"}]}
    )
    assert rest.status_code == 201 and rest.json()["number"] == "CN-000002"
    nothing_left = tenant.post(
        url, json={"reason": "x", "lines": [{"description": "cent", "amount": "0.01"}]}
    )
    assert_problem(nothing_left, 422, "credit_exceeds_invoice")

    notes = billing.invoices(kind="credit_note")
    assert sorted(n["number"] for n in notes) == ["CN-000001", "CN-000002"]
    assert sum(Decimal(n["total"]) for n in notes) == Decimal("-100.00")
    assert tenant.get(f"/v1/invoices/{invoice_id}").content == invoice_before
    # Invoice numbers are a series of their own.
    assert [i["number"] for i in billing.invoices(kind="invoice")] == ["INV-000001"]


def test_bad_credit_notes_are_refused(billing: Billing) -> None:
    tenant = billing.tenant
    cid, invoice_id = _invoice(billing)
    url = f"/v1/invoices/{invoice_id}/credit-notes"
    for amount in ("1.001", "-5", "0", "abc"):
        response = tenant.post(
            url, json={"reason": "x", "lines": [{"description": "d", "amount": amount}]}
        )
        assert_problem(response, 422)
    assert_problem(tenant.post(url, json={"reason": "x", "lines": []}), 422)
    note = tenant.post(url, json={"reason": "x", "lines": [{"description": "d", "amount": "1"}]})
    assert note.status_code == 201
    credit_of_credit = tenant.post(
        f"/v1/invoices/{note.json()['id']}/credit-notes",
        json={"reason": "x", "lines": [{"description": "d", "amount": "1"}]},
    )
    assert_problem(credit_of_credit, 422, "not_an_invoice")
    add_charges(billing.runtime, tenant.msp_id, cid, "2026-10", ["3.00"])
    draft = tenant.post(
        f"/v1/invoices/draft_{cid}_2026-10/credit-notes",
        json={"reason": "x", "lines": [{"description": "d", "amount": "1"}]},
    )
    assert_problem(draft, 422, "invoice_not_finalized")
    missing = tenant.post(
        "/v1/invoices/inv_nope/credit-notes",
        json={"reason": "x", "lines": [{"description": "d", "amount": "1"}]},
    )
    assert_problem(missing, 404, "invoice_not_found")
