"""The version-2 invoice PDF (WeasyPrint): pages, headers, determinism, fonts, lines."""

from __future__ import annotations

import io
import re
from decimal import Decimal

import pytest
from pypdf import PdfReader

from billbyte.invoicing import pdf, pdf_v1
from billbyte.invoicing.csv_documents import LocaleFormat
from tests.invoice_render.factory import line, many_lines, view


@pytest.fixture(scope="module")
def big_pdf() -> bytes:
    return pdf.render_pdf(view(many_lines(2000)))


def test_2000_lines_have_page_numbers_and_repeated_header(big_pdf: bytes) -> None:
    reader = PdfReader(io.BytesIO(big_pdf))
    n = len(reader.pages)
    assert n > 10
    for number, page in enumerate(reader.pages, start=1):
        text = page.extract_text()
        assert f"Page {number} of {n}" in text
        assert "Description" in text and "Unit price" in text  # the repeated thead
    last = reader.pages[-1].extract_text()
    assert "1998 AWS Lambda" in last  # grouped by service: Lambda (positions 3, 6, …) last
    # 2,000 lines at 1.25 each
    assert LocaleFormat("en").money(Decimal("2500.00"), "EUR") in last


def test_finalized_renders_are_byte_identical() -> None:
    v = view([line(1), line(2, unit="GB-Mo", quantity=Decimal("12.3456789"))])
    assert pdf.render_pdf(v) == pdf.render_pdf(v)


def test_fonts_are_embedded(big_pdf: bytes) -> None:
    reader = PdfReader(io.BytesIO(big_pdf))
    fonts = reader.pages[0]["/Resources"]["/Font"]
    embedded = []
    for ref in fonts.values():
        font = ref.get_object()
        descendants = font.get("/DescendantFonts")
        target = descendants[0].get_object() if descendants else font
        descriptor = target["/FontDescriptor"].get_object()
        embedded.append("/FontFile2" in descriptor)
    assert embedded and all(embedded)


def test_pdfa_variant_renders() -> None:
    out = pdf.render_pdf(view([line(1)]), pdfa=True)
    root = PdfReader(io.BytesIO(out)).trailer["/Root"]
    assert "/OutputIntents" in root
    xmp = root["/Metadata"].get_object().get_data()
    assert b"pdfaid" in xmp and b"3" in xmp


def test_readable_descriptions_and_quantities() -> None:
    fmt = LocaleFormat("en")
    assert pdf.quantity_text(fmt, Decimal("1492.000000000000000000"), "Hrs") == "1,492 h"
    assert pdf.quantity_text(fmt, Decimal("3.093013220278452"), "Hrs") == "3.09 h"
    assert pdf.quantity_text(fmt, Decimal("12.3456789"), "GB-Mo") == "12.346 GB-month"
    assert pdf.quantity_text(fmt, Decimal("5"), "GB-Mo") == "5.00 GB-month"
    assert pdf.quantity_text(fmt, Decimal("1200.7"), "Requests") == "1,201 requests"
    assert pdf.quantity_text(LocaleFormat("de_DE"), Decimal("1492.5"), "Hrs") == "1.492,5 h"
    text = PdfReader(io.BytesIO(pdf.render_pdf(view([line(1)])))).pages[0].extract_text()
    assert "Amazon Elastic Compute Cloud — Usage — 1,492 h" in text
    assert "September 2026" in text
    assert "2026-09 - 2026-09" not in text


def test_period_text() -> None:
    fmt = LocaleFormat("en")
    assert pdf.period_text(fmt, view([], period_start="2026-09", period_end="2026-09")) == (
        "September 2026"
    )
    assert (
        pdf.period_text(fmt, view([], period_start="2026-09-01", period_end="2026-09-15"))
        == "1–15 Sep 2026"
    )


def test_fx_summary_one_line_per_pair() -> None:
    rates = [
        {"base": "USD", "quote": "EUR", "date": f"2026-09-{d:02d}", "rate": "0.92"}
        for d in range(1, 31)
    ]
    summary = pdf.fx_summary(LocaleFormat("en"), rates)
    assert len(summary) == 1
    assert summary[0]["rates"] == "0.92"
    assert summary[0]["range"] == "Sep 1, 2026 – Sep 30, 2026"
    varied = [
        {"base": "USD", "quote": "EUR", "date": f"2026-09-0{d}", "rate": r}
        for d, r in ((1, "0.90"), (2, "0.91"), (3, "0.92"), (4, "0.93"))
    ]
    # average of 0.90, 0.91, 0.92, 0.93 = 0.915
    assert pdf.fx_summary(LocaleFormat("en"), varied)[0]["rates"] == "0.915"


def test_invoice_mode_shows_taxes_and_statement_does_not() -> None:
    taxes = [
        {
            "category": "AE",
            "rate": "0",
            "name": "VAT",
            "taxable": "62.07",
            "tax": "0.00",
            "note": "Reverse charge: VAT to be accounted for by the recipient",
        }
    ]
    v = view(
        [line(1)], mode="invoice", taxes=taxes, subtotal=Decimal("62.07"), tax_total=Decimal(0)
    )
    text = PdfReader(io.BytesIO(pdf.render_pdf(v))).pages[0].extract_text()
    assert "Reverse charge" in text and "Tax total" in text
    text = PdfReader(io.BytesIO(pdf.render_pdf(view([line(1)])))).pages[0].extract_text()
    assert "Tax total" not in text


def test_version_1_uses_fpdf2_unchanged() -> None:
    v = view([line(1)], document_version=1)
    out = pdf.render_pdf(v)
    assert out == pdf_v1.render_pdf(v)
    assert re.search(rb"/Producer\s*\(BillByte\)", out) or b"BillByte" in out
    assert b"WeasyPrint" not in out


def test_tax_lines_are_shown_in_the_summary_not_as_a_group_of_the_table() -> None:
    tax_line = line(2, kind="tax", description="VAT 19 % (S)", amount=Decimal("11.79"))
    v = view(
        [line(1), tax_line],
        mode="invoice",
        taxes=[
            {
                "category": "S",
                "rate": "19",
                "name": "VAT",
                "taxable": "62.07",
                "tax": "11.79",
                "note": None,
            }
        ],
        subtotal=Decimal("62.07"),
        tax_total=Decimal("11.79"),
    )
    titles = [group.title for group in pdf.groups_of(LocaleFormat("en"), v)]
    assert "Tax" not in titles and len(titles) == 1
