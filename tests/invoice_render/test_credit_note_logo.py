"""Credit notes carry the seller's logo of their own issue, as invoices carry the logo of
their close: a later logo (or none) never changes an issued credit note's bytes, and a new
credit note shows the logo of its day."""

from __future__ import annotations

import io
from typing import Any

from pypdf import PdfReader

from billbyte.tenancy import service as tenancy
from tests.invoice_lines.test_lines_csv_logo import png
from tests.invoicing.conftest import Billing, add_charges, admin, close, customer
from tests.taxes_close.parties import details, invoice_mode

RED, BLUE = png(4, b"\xff\x00\x00"), png(6, b"\x00\x00\xff")


def _set_logo(billing: Billing, data: bytes | None) -> None:
    with billing.runtime.uow() as uow:
        if data is None:
            tenancy.remove_logo(uow.session, admin(billing.tenant.msp_id))
        else:
            tenancy.set_logo(uow.session, admin(billing.tenant.msp_id), data)
        uow.commit()


def _invoice(billing: Billing, external_id: str) -> dict[str, Any]:
    cid = customer(billing.tenant, external_id, country="DE")
    details(billing, cid, legal_name="Müller GmbH", country="DE", tax_id="DE136695976")
    add_charges(billing.runtime, billing.tenant.msp_id, cid, "2026-09", ["100.00"])
    close(billing.runtime, billing.tenant.msp_id, "2026-09")
    [found] = billing.invoices(status="finalized", customer_id=cid)
    return billing.invoice(found["id"])


def _credit(billing: Billing, invoice_id: str) -> dict[str, Any]:
    response = billing.tenant.post(
        f"/v1/invoices/{invoice_id}/credit-notes",
        json={"reason": "Outage", "lines": [{"description": "Credit", "amount": "10.00"}]},
    )
    assert response.status_code == 201, response.text
    return dict(response.json())


def _pdf(billing: Billing, document_id: str) -> bytes:
    response = billing.tenant.get(f"/v1/invoices/{document_id}.pdf")
    assert response.status_code == 200, response.text
    return response.content


def _images(pdf: bytes) -> list[tuple[int, int]]:
    """(width, height) of each image on the first page."""
    return [i.image.size for i in PdfReader(io.BytesIO(pdf)).pages[0].images if i.image]


def test_a_credit_note_keeps_the_logo_of_its_issue(billing: Billing) -> None:
    _set_logo(billing, RED)
    invoice = _invoice(billing, "ST-LOGO")
    first = _credit(billing, invoice["id"])
    assert first["seller"]["logo_version"] == "1"
    issued = _pdf(billing, first["id"])
    assert _images(issued) == [(4, 1)]  # the red logo, 4 x 1 pixels
    _set_logo(billing, BLUE)
    assert _pdf(billing, first["id"]) == issued  # byte for byte
    second = _credit(billing, invoice["id"])
    assert second["seller"]["logo_version"] == "2"
    assert _images(_pdf(billing, second["id"])) == [(6, 1)]  # the blue one
    _set_logo(billing, None)
    third = _credit(billing, invoice["id"])
    assert "logo_version" not in third["seller"] and _images(_pdf(billing, third["id"])) == []
    assert _pdf(billing, first["id"]) == issued
    # The invoice keeps the logo of its close throughout.
    assert billing.invoice(invoice["id"])["seller"]["logo_version"] == "1"


def test_an_invoice_mode_credit_note_names_the_invoices_seller_with_todays_logo(
    billing: Billing,
) -> None:
    invoice_mode(billing)
    invoice = _invoice(billing, "DE-LOGO")
    assert "logo_version" not in invoice["seller"]  # closed without a logo
    _set_logo(billing, RED)
    note = _credit(billing, invoice["id"])
    assert note["seller"] == {**invoice["seller"], "logo_version": "1"}
    assert note["buyer"] == invoice["buyer"]
    pdf = _pdf(billing, note["id"])
    assert _images(pdf) == [(4, 1)]
    facturx = billing.tenant.get(f"/v1/invoices/{note['id']}/facturx.pdf")
    assert facturx.status_code == 200 and _images(facturx.content) == [(4, 1)]
    _set_logo(billing, BLUE)
    assert _pdf(billing, note["id"]) == pdf
