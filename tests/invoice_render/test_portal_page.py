"""The portal's invoice page shows the same document as the PDF: the same lines, from the
same template."""

from __future__ import annotations

import html
import io
import re

from fastapi.testclient import TestClient
from pypdf import PdfReader

from tests.conftest import Tenant
from tests.portal.factories import Seeded
from tests.portal.test_invoices_and_isolation import invoiced  # noqa: F401  (fixture)
from tests.web.people import signed_in_client


def test_portal_invoice_page_has_the_pdf_lines(
    client: TestClient,
    invoiced: tuple[Seeded, str, str],  # noqa: F811
    tenant: Tenant,
) -> None:
    seeded, invoice_id, _note = invoiced
    portal = signed_in_client(client, "portal", seeded.person)
    page = portal.get(f"/portal/invoices/{invoice_id}")
    assert page.status_code == 200, page.text
    assert 'class="invoice-document' in page.text
    rows = re.findall(r'<tr class="line [^"]*">(.*?)</tr>', page.text, re.S)
    assert rows
    text = PdfReader(io.BytesIO(portal.get(f"/portal/invoices/{invoice_id}.pdf").content))
    pdf_text = " ".join(p.extract_text() for p in text.pages)
    number = tenant.get(f"/v1/invoices/{invoice_id}").json()["number"]
    assert number in page.text and number in pdf_text
    for row in rows:
        description = html.unescape(re.findall(r"<td>(.*?)</td>", row, re.S)[0])
        assert description in pdf_text.replace("\n", " ")
    assert page.text.count("<h1") == 1
    assert portal.get("/portal/invoices/inv_nope").status_code == 404
