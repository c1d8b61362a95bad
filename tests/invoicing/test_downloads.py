"""CSV and PDF downloads, formatted in the customer's locale."""

from __future__ import annotations

import csv
import io

import pypdf

from tests.invoicing.conftest import Billing, add_charges, close, customer

NBSP = "\xa0"


def _text(data: bytes) -> str:
    reader = pypdf.PdfReader(io.BytesIO(data))
    return "\n".join(page.extract_text() for page in reader.pages).replace(NBSP, " ")


def test_german_customer_gets_german_numbers_and_dates(billing: Billing) -> None:
    tenant = billing.tenant
    cid = customer(tenant, "DE-1", name="Müller & Söhne GmbH")
    add_charges(billing.runtime, tenant.msp_id, cid, "2026-09", ["1000.00", "234.56"])
    close(billing.runtime, tenant.msp_id, "2026-09")
    invoice = billing.invoices(status="finalized")[0]

    response = tenant.get(f"/v1/invoices/{invoice['id']}.csv")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    assert "INV-000001.csv" in response.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(response.content.decode("utf-8-sig")), delimiter=";"))
    lines = [r for r in rows if r["record"] == "line"]
    total = next(r for r in rows if r["record"] == "total")
    assert total["amount"].replace(NBSP, " ") == "1.234,56 €"
    assert total["amount_decimal"] == "1234.56"
    assert {r["issue_date"] for r in rows} == {"01.10.2026"}
    assert lines[0]["customer"] == "Müller & Söhne GmbH"
    assert lines[0]["service_period_start"] == "01.09.2026"
    assert lines[0]["quantity"] == "3" and lines[0]["unit"] == "Hours"
    assert lines[0]["unit_price"] == "411,52"  # 1234.56 / 3
    fx = [r for r in rows if r["record"] == "fx_rate"]
    assert [(r["description"], r["unit_price"]) for r in fx] == [("USD → EUR", "0,9123")]

    pdf = tenant.get(f"/v1/invoices/{invoice['id']}.pdf")
    assert pdf.status_code == 200 and pdf.headers["content-type"] == "application/pdf"
    assert pdf.content.startswith(b"%PDF")
    text = _text(pdf.content)
    for expected in ("INV-000001", "Müller & Söhne GmbH", "1.234,56 €", "01.10.2026", "0,9123"):
        assert expected in text, expected
    # A finalized invoice downloads byte-identical every time.
    assert tenant.get(f"/v1/invoices/{invoice['id']}.pdf").content == pdf.content
    assert tenant.get(f"/v1/invoices/{invoice['id']}.csv").content == response.content


def test_english_and_draft_downloads(billing: Billing) -> None:
    tenant = billing.tenant
    cid = customer(tenant, "US-1", locale="en_US", currency="USD")
    add_charges(billing.runtime, tenant.msp_id, cid, "2026-10", ["1234.5"], currency="USD")
    draft_id = f"draft_{cid}_2026-10"
    response = tenant.get(f"/v1/invoices/{draft_id}.csv")
    rows = list(csv.DictReader(io.StringIO(response.content.decode("utf-8-sig"))))
    assert [(r["record"], r["number"], r["amount"]) for r in rows] == [
        ("line", "DRAFT", "$1,234.50"),
        ("total", "DRAFT", "$1,234.50"),
    ]
    text = _text(tenant.get(f"/v1/invoices/{draft_id}.pdf").content)
    assert "DRAFT" in text and "$1,234.50" in text and "Nov 1, 2026" in text
