"""Invoice documents of version 3: each line's tax as stored at close, the invoice-mode
CSV's tax, party and terms columns, and the seller's logo on the PDF, snapshotted at close;
statement mode and older documents keep their bytes."""

from __future__ import annotations

import csv
import io
import socket
import struct
import threading
import zlib
from decimal import ROUND_HALF_EVEN, Decimal

from sqlalchemy import select, update

from billbyte.invoicing import pdf
from billbyte.invoicing.models import Invoice
from billbyte.taxes.models import TaxRate
from billbyte.tenancy import service as tenancy
from tests.invoice_render.factory import line, view
from tests.invoicing.conftest import Billing, add_charges, admin, close, customer
from tests.taxes_close.parties import details as buyer_details
from tests.taxes_close.parties import invoice_mode

AMOUNTS = ["1000.00", "234.56", "0.015"]  # one group: 1234.575 exact, 1234.58 rounded
NET = Decimal("1234.58")
TAX = (NET * Decimal("0.19")).quantize(Decimal("0.01"), rounding=ROUND_HALF_EVEN)  # 234.57


def png(width: int, rgb: bytes) -> bytes:
    """A real PNG of one colour, ``width`` x 1 pixels."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    ihdr = struct.pack(">IIBBBBB", width, 1, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" + rgb * width)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def _invoice_mode(billing: Billing) -> None:
    """Invoice mode with a complete billing profile and a DE 19 % rate (an incomplete seller
    is refused at close)."""
    invoice_mode(billing)


def _close_one(billing: Billing, external_id: str, **details: object) -> str:
    cid = customer(billing.tenant, external_id, country="DE")
    buyer_details(billing, cid, **details)  # with an address: an incomplete buyer is refused
    add_charges(billing.runtime, billing.tenant.msp_id, cid, "2026-09", AMOUNTS)
    close(billing.runtime, billing.tenant.msp_id, "2026-09")
    [found] = [i for i in billing.invoices(status="finalized") if i["customer_id"] == cid]
    return str(found["id"])


def _lines(billing: Billing, invoice_id: str) -> list[dict]:
    response = billing.tenant.get(f"/v1/invoices/{invoice_id}/lines")
    assert response.status_code == 200, response.text
    return list(response.json()["data"])


def _csv(billing: Billing, invoice_id: str) -> list[dict[str, str]]:
    response = billing.tenant.get(f"/v1/invoices/{invoice_id}.csv")
    assert response.status_code == 200, response.text
    text = response.content.decode("utf-8-sig")
    delimiter = ";" if text.splitlines()[0].count(";") > 3 else ","
    return list(csv.DictReader(io.StringIO(text), delimiter=delimiter))


def _set_logo(billing: Billing, data: bytes | None) -> None:
    with billing.runtime.uow() as uow:
        if data is None:
            tenancy.remove_logo(uow.session, admin(billing.tenant.msp_id))
        else:
            tenancy.set_logo(uow.session, admin(billing.tenant.msp_id), data)
        uow.commit()


def _pdf(billing: Billing, invoice_id: str) -> bytes:
    response = billing.tenant.get(f"/v1/invoices/{invoice_id}.pdf")
    assert response.status_code == 200, response.text
    return response.content


# -- lines ---------------------------------------------------------------------------------


def test_invoice_mode_lines_carry_the_tax_stored_at_close(billing: Billing) -> None:
    _invoice_mode(billing)
    invoice_id = _close_one(billing, "DE-1", legal_name="Müller GmbH", country="DE")
    # The rate table changes after the close: the finalized lines keep what was applied.
    with billing.runtime.uow() as uow:
        uow.session.execute(update(TaxRate).values(rate=Decimal("16")))
        uow.commit()
    lines = _lines(billing, invoice_id)
    usage = [li for li in lines if li["kind"] != "tax"]
    [tax] = [li for li in lines if li["kind"] == "tax"]
    assert usage and all((li["tax_category"], li["tax_rate"]) == ("S", "19") for li in usage)
    assert (tax["tax_category"], tax["tax_rate"], tax["amount"]) == ("S", "19", str(TAX))
    detail = billing.tenant.get(f"/v1/invoices/{invoice_id}").json()["lines"]
    assert [(li["tax_category"], li["tax_rate"]) for li in detail] == [
        (li["tax_category"], li["tax_rate"]) for li in lines
    ]


def test_exempt_lines_are_category_e_at_zero(billing: Billing) -> None:
    _invoice_mode(billing)
    invoice_id = _close_one(billing, "EX-1", tax_treatment="exempt", exemption_reason="§ 4")
    assert {(li["tax_category"], li["tax_rate"]) for li in _lines(billing, invoice_id)} == {
        ("E", "0")
    }


def test_statement_mode_lines_have_no_tax(billing: Billing) -> None:
    invoice_id = _close_one(billing, "ST-1")
    lines = _lines(billing, invoice_id)
    assert lines and all(li["tax_category"] is None and li["tax_rate"] is None for li in lines)


# -- CSV -----------------------------------------------------------------------------------


def test_invoice_mode_csv_has_tax_parties_and_terms(billing: Billing) -> None:
    _invoice_mode(billing)
    invoice_id = _close_one(
        billing,
        "DE-2",
        legal_name='=HYPERLINK("http://x")',  # a formula, neutralised by the one writer
        country="DE",
        tax_id="DE136695976",
        po_number="PO-77",
    )
    invoice = billing.invoice(invoice_id)
    rows = _csv(billing, invoice_id)
    records = [row["record"] for row in rows]
    assert records[:4] == ["line", "subtotal", "tax", "total"]
    assert set(records[4:]) <= {"fx_rate"}
    for row in rows:
        assert row["seller"] == "Alpha Hosting GmbH" and row["seller_vat_id"] == "DE136695976"
        assert row["buyer"] == '\'=HYPERLINK("http://x")'
        assert (row["buyer_tax_id"], row["po_number"]) == ("DE136695976", "PO-77")
        assert row["payment_terms_days"] == "14"
        assert row["number"] == invoice["number"]
    line_row, subtotal, tax, total = rows[:4]
    assert (line_row["tax_category"], line_row["tax_rate"]) == ("S", "19")
    assert Decimal(line_row["amount_decimal"]) == NET
    assert Decimal(subtotal["amount_decimal"]) == NET
    assert (tax["tax_category"], tax["tax_rate"]) == ("S", "19")
    assert Decimal(tax["taxable_amount_decimal"]) == NET
    assert Decimal(tax["amount_decimal"]) == TAX
    assert Decimal(total["amount_decimal"]) == NET + TAX
    # the dates as the customer's locale writes them, the same on every row
    assert len({row["due_date"] for row in rows}) == 1 and rows[0]["due_date"]
    assert rows[0]["due_date"] != rows[0]["issue_date"]  # 14 days later


def test_statement_mode_csv_keeps_the_version_2_columns(billing: Billing) -> None:
    invoice_id = _close_one(billing, "ST-2")
    rows = _csv(billing, invoice_id)
    assert "tax_category" not in rows[0] and "seller" not in rows[0]
    assert [row["record"] for row in rows if row["record"] != "fx_rate"] == ["line", "total"]


def test_a_version_2_invoice_mode_csv_keeps_its_columns(billing: Billing) -> None:
    _invoice_mode(billing)
    invoice_id = _close_one(billing, "V2-1")
    with billing.runtime.uow(read_only=True) as uow:
        invoice = uow.session.scalar(select(Invoice).where(Invoice.id == invoice_id))
        assert invoice is not None and invoice.document_version == 3
    from billbyte.invoicing import csv_documents, views

    with billing.runtime.uow(read_only=True) as uow:
        stored = views.get_view(uow.session, admin(billing.tenant.msp_id), invoice_id)
    stored.document_version = 2  # as finalized before version 3
    header = csv_documents.render_csv(stored).decode("utf-8-sig").splitlines()[0]
    fields = header.replace(";", ",").split(",")
    assert fields[0] == "record" and fields[-1] == "amount_decimal" and len(fields) == 18


# -- the logo ------------------------------------------------------------------------------


def test_the_pdf_shows_the_logo_of_its_close_forever(billing: Billing) -> None:
    plain = _close_one(billing, "NL-1")
    assert b"/Subtype /Image" not in _pdf(billing, plain)  # no logo: no image
    _set_logo(billing, png(4, b"\xff\x00\x00"))
    assert b"/Subtype /Image" not in _pdf(billing, plain)  # closed without a logo
    with_logo = _close_one(billing, "LG-1")
    first = _pdf(billing, with_logo)
    assert first.count(b"/Subtype /Image") == 1
    # A new logo, then none: the finalized PDF keeps the logo it was closed with.
    _set_logo(billing, png(6, b"\x00\x00\xff"))
    assert _pdf(billing, with_logo) == first
    _set_logo(billing, None)
    assert _pdf(billing, with_logo) == first
    assert billing.invoice(with_logo)["seller"]["logo_version"] == "1"


def test_the_logo_is_in_the_portal_and_console_pdf_too(billing: Billing) -> None:
    _set_logo(billing, png(4, b"\xff\x00\x00"))
    invoice_id = _close_one(billing, "LG-2")
    from billbyte.console import invoices_views

    with billing.runtime.uow(read_only=True) as uow:
        document = invoices_views.document(
            uow.session, admin(billing.tenant.msp_id), invoice_id, "pdf"
        )
    assert document.content == _pdf(billing, invoice_id)
    assert b"/Subtype /Image" in document.content


def test_a_version_2_document_never_shows_a_logo(billing: Billing) -> None:
    from billbyte.invoicing import views

    _set_logo(billing, png(4, b"\xff\x00\x00"))
    invoice_id = _close_one(billing, "LG-3")
    with billing.runtime.uow(read_only=True) as uow:
        shown = views.get_view(uow.session, admin(billing.tenant.msp_id), invoice_id)
        uri = views.logo_uri(uow.session, billing.tenant.msp_id, shown)
        shown.document_version = 2  # as finalized before version 3, with the same snapshot
        old = views.logo_uri(uow.session, billing.tenant.msp_id, shown)
    assert uri is not None and uri.startswith("data:image/png;base64,")
    assert old is None


def test_rendering_fetches_nothing_from_the_network() -> None:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    listener.settimeout(3)
    port = listener.getsockname()[1]
    connected: list[bool] = []

    def accept() -> None:
        try:
            conn, _ = listener.accept()
            connected.append(True)
            conn.close()
        except OSError:
            pass

    thread = threading.Thread(target=accept)
    thread.start()
    out = pdf.render_pdf(view([line(1)]), logo_url=f"http://127.0.0.1:{port}/logo.png")
    listener.close()
    thread.join()
    assert out[:5] == b"%PDF-" and connected == []
    assert b"/Subtype /Image" not in out
