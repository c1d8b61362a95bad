"""Credit notes of invoice-mode invoices carry the invoice's own tax, negative: the expected
figures are plain Decimal arithmetic here (the documented rule: tax = net x rate / 100
rounded once per rate, half-even, to the currency's minor units)."""

from __future__ import annotations

import csv
import io
from decimal import ROUND_HALF_EVEN, ROUND_HALF_UP, Decimal
from typing import Any

from lxml import etree  # type: ignore[import-untyped]
from pypdf import PdfReader
from sqlalchemy import select, update

from billbyte.invoicing.models import InvoiceLine
from billbyte.invoicing.taxation import REVERSE_CHARGE_NOTE
from billbyte.taxes.models import TaxRate
from tests.api.factories import assert_problem
from tests.invoicing.conftest import Billing, add_charges, close, customer
from tests.taxes_close.parties import details, invoice_mode, run_of

CENT = Decimal("0.01")
RAM = {"ram": "urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:100"}
CBC = {"cbc": "urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2"}


def _vat(amount: Decimal, percent: str = "19") -> Decimal:
    return (amount * Decimal(percent) / 100).quantize(CENT, rounding=ROUND_HALF_EVEN)


def _invoice(billing: Billing, cid: str) -> dict[str, Any]:
    """A finalized invoice of two lines: EC2 1000.00 and S3 234.56 (no rounding in the
    lines, so the expected net amounts are the amounts written here)."""
    msp_id = billing.tenant.msp_id
    add_charges(billing.runtime, msp_id, cid, "2026-09", ["1000.00"], key_prefix="ec2")
    add_charges(
        billing.runtime,
        msp_id,
        cid,
        "2026-09",
        ["234.56"],
        service_name="Amazon Simple Storage Service",
        key_prefix="s3",
    )
    run = run_of(billing, close(billing.runtime, msp_id, "2026-09").id)
    assert (run["failed"], run["invoices_created"]) == (0, 1), run
    [summary] = [i for i in billing.invoices(status="finalized") if i["customer_id"] == cid]
    return billing.invoice(summary["id"])


def _german(billing: Billing) -> dict[str, Any]:
    invoice_mode(billing)
    cid = customer(billing.tenant, "DE-1", country="DE")
    details(billing, cid, legal_name="Müller GmbH", country="DE", tax_id="DE136695976")
    return _invoice(billing, cid)


def _credit(billing: Billing, invoice_id: str, *amounts: str) -> Any:
    return billing.tenant.post(
        f"/v1/invoices/{invoice_id}/credit-notes",
        json={
            "reason": "Service outage",
            "lines": [{"description": f"Credit {a}", "amount": a} for a in amounts],
        },
    )


def _negated(taxes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        {**t, "taxable": str(-Decimal(t["taxable"])), "tax": str(-Decimal(t["tax"]))} for t in taxes
    ]


def test_a_full_credit_is_exactly_the_negative_of_the_invoice(billing: Billing) -> None:
    invoice = _german(billing)
    net = Decimal("1234.56")
    assert Decimal(invoice["tax_total"]) == _vat(net) == Decimal("234.57")  # 234.5664
    response = _credit(billing, invoice["id"], "1000.00", "234.56")
    assert response.status_code == 201, response.text
    note = response.json()
    assert note["mode"] == "invoice"
    assert note["taxes"] == _negated(invoice["taxes"])
    assert Decimal(note["subtotal"]) == -Decimal(invoice["subtotal"]) == -net
    assert Decimal(note["tax_total"]) == -Decimal(invoice["tax_total"])
    assert Decimal(note["total"]) == -Decimal(invoice["total"]) == -(net + _vat(net))
    assert note["seller"] == invoice["seller"] and note["buyer"] == invoice["buyer"]
    invoice_tax = [li for li in invoice["lines"] if li["kind"] == "tax"]
    note_tax = [li for li in note["lines"] if li["kind"] == "tax"]
    assert [(li["description"], Decimal(li["amount"])) for li in note_tax] == [
        (li["description"], -Decimal(li["amount"])) for li in invoice_tax
    ]
    assert [(li["kind"], li["amount"]) for li in note["lines"][:2]] == [
        ("credit", "-1000.00"),
        ("credit", "-234.56"),
    ]
    assert sum(Decimal(li["amount"]) for li in note["lines"]) == Decimal(note["total"])
    # Nothing is left to credit, not even a cent.
    assert_problem(_credit(billing, invoice["id"], "0.01"), 422, "credit_exceeds_invoice")


def test_crediting_in_parts_adds_up_to_the_invoice_to_the_cent(billing: Billing) -> None:
    invoice = _german(billing)
    first = _credit(billing, invoice["id"], "617.28").json()
    # 617.28 x 0.19 = 117.2832 → 117.28
    assert Decimal(first["tax_total"]) == -_vat(Decimal("617.28")) == Decimal("-117.28")
    second = _credit(billing, invoice["id"], "617.28").json()
    # The last of the net takes the rest of the tax: 234.57 - 117.28 = 117.29, not 117.28.
    assert Decimal(second["tax_total"]) == -(Decimal("234.57") - Decimal("117.28"))
    assert Decimal(first["total"]) + Decimal(second["total"]) == -Decimal(invoice["total"])


def test_a_partial_credit_of_one_line_is_its_amount_times_the_rate(billing: Billing) -> None:
    invoice = _german(billing)
    s3 = Decimal("234.56")
    with billing.runtime.uow() as uow:  # today's table says 16 %: the invoice said 19 %
        uow.session.execute(update(TaxRate).values(rate=Decimal("16")))
        uow.commit()
    note = _credit(billing, invoice["id"], "234.56").json()
    tax = (s3 * Decimal("0.19")).quantize(CENT, rounding=ROUND_HALF_EVEN)  # 44.5664
    assert tax == Decimal("44.57")
    [summary] = note["taxes"]
    assert (summary["category"], summary["rate"], summary["name"]) == ("S", "19", "VAT")
    assert (Decimal(summary["taxable"]), Decimal(summary["tax"])) == (-s3, -tax)
    assert Decimal(note["total"]) == -(s3 + tax)
    with billing.runtime.uow() as uow:  # the stored lines carry the invoice's rate
        stored = uow.session.execute(
            select(InvoiceLine.kind, InvoiceLine.tax_category, InvoiceLine.tax_rate)
            .where(InvoiceLine.invoice_id == note["id"])
            .order_by(InvoiceLine.position)
        ).all()
    assert [tuple(row) for row in stored] == [
        ("credit", "S", Decimal(19)),
        ("tax", "S", Decimal(19)),
    ]
    # The half-even rule where it differs from half-up: 1.50 x 0.19 = 0.285.
    small = _credit(billing, invoice["id"], "1.50").json()
    assert Decimal(small["tax_total"]) == -Decimal("0.28")
    assert Decimal("0.285").quantize(CENT, rounding=ROUND_HALF_UP) == Decimal("0.29")
    # What is left to credit is net: 1234.56 - 234.56 - 1.50.
    assert_problem(_credit(billing, invoice["id"], "998.51"), 422, "credit_exceeds_invoice")
    assert _credit(billing, invoice["id"], "998.50").status_code == 201


def test_a_reverse_charge_credit_note_has_no_tax_and_the_note(billing: Billing) -> None:
    invoice_mode(billing)
    cid = customer(billing.tenant, "FR-1", country="FR")
    details(billing, cid, country="FR", tax_id="FR40303265045", tax_treatment="reverse_charge")
    invoice = _invoice(billing, cid)
    note = _credit(billing, invoice["id"], "100.00").json()
    assert note["taxes"] == [
        {
            "category": "AE",
            "rate": "0",
            "name": "VAT",
            "taxable": "-100.00",
            "tax": "0.00",
            "note": REVERSE_CHARGE_NOTE,
        }
    ]
    assert (note["tax_total"], note["total"]) == ("0.00", "-100.00")


def test_the_credit_notes_tax_in_csv_pdf_and_e_invoice(billing: Billing) -> None:
    invoice = _german(billing)
    note = _credit(billing, invoice["id"], "234.56").json()
    tenant = billing.tenant
    csv_text = tenant.get(f"/v1/invoices/{note['id']}.csv").content.decode("utf-8-sig")
    rows = list(csv.DictReader(io.StringIO(csv_text), delimiter=";"))
    # version 3: the lines, a subtotal, one tax row per rate, the total
    assert [(r["record"], r["amount_decimal"]) for r in rows] == [
        ("line", "-234.56"),
        ("subtotal", "-234.56"),
        ("tax", "-44.57"),
        ("total", "-279.13"),
    ]
    assert rows[0]["description"] == "Credit 234.56"
    assert (rows[2]["tax_category"], rows[2]["tax_rate"]) == ("S", "19")
    pdf = tenant.get(f"/v1/invoices/{note['id']}.pdf").content
    text = PdfReader(io.BytesIO(pdf)).pages[0].extract_text()
    assert "Credit note" in text and "Tax total" in text and "44,57" in text
    assert "Müller GmbH" in text
    for syntax in ("cii", "ubl"):
        xml = tenant.get(f"/v1/invoices/{note['id']}.xml", params={"syntax": syntax})
        assert xml.status_code == 200, xml.text  # validated against the XSD when built
        root = etree.fromstring(xml.content)
        if syntax == "cii":
            assert root.findtext(".//ram:TypeCode", namespaces=RAM) == "381"
            grand = root.findtext(".//ram:GrandTotalAmount", namespaces=RAM)
            tax = root.findtext(".//ram:TaxTotalAmount", namespaces=RAM)
        else:
            assert root.findtext("cbc:CreditNoteTypeCode", namespaces=CBC) == "381"
            grand = root.findtext(".//cbc:TaxInclusiveAmount", namespaces=CBC)
            tax = root.findtext(".//cbc:TaxAmount", namespaces=CBC)
        assert (Decimal(grand), Decimal(tax)) == (Decimal("279.13"), Decimal("44.57"))
    assert tenant.get(f"/v1/invoices/{note['id']}/facturx.pdf").status_code == 200


def test_statement_mode_credit_notes_have_no_tax(billing: Billing) -> None:
    cid = customer(billing.tenant, "ST-1")
    invoice = _invoice(billing, cid)
    assert invoice["mode"] == "statement"
    note = _credit(billing, invoice["id"], "1234.56").json()
    assert (note["mode"], note["taxes"], note["tax_total"], note["subtotal"]) == (
        "statement",
        [],
        None,
        None,
    )
    assert note["total"] == "-1234.56"
    assert [li["kind"] for li in note["lines"]] == ["credit"]


def test_partial_credits_never_take_more_tax_than_the_invoice_had() -> None:
    from billbyte.invoicing.documents import DocumentLine
    from billbyte.invoicing.parties import TaxSummary
    from billbyte.invoicing.taxation import credit

    # 0.26 at 25 % = 0.065 → 0.06; each credit of 0.06 alone would be 0.015 → 0.02.
    invoice_tax = (Decimal("0.26") * Decimal("0.25")).quantize(CENT, rounding=ROUND_HALF_EVEN)
    assert invoice_tax == Decimal("0.06")
    summary = TaxSummary(category="S", rate="25", name="VAT", taxable="0.26", tax="0.06", note=None)

    def line(amount: str) -> DocumentLine:
        return DocumentLine(
            position=1,
            kind="credit",
            description="credit",
            vendor=None,
            vendor_reference=None,
            service_name=None,
            charge_category=None,
            quantity=None,
            unit=None,
            unit_price=None,
            amount=-Decimal(amount),
            amount_exact=-Decimal(amount),
            currency="EUR",
            period="2026-09",
            service_start=None,
            service_end=None,
            original_period=None,
            fx_rates=[],
        )

    earlier: list[TaxSummary] = []
    taxes = []
    for amount in ("0.06",) * 4 + ("0.02",):
        note = credit([line(amount)], "EUR", [summary], earlier)
        earlier += note.taxes
        taxes.append(note.tax_total)
    assert taxes == [Decimal(t) for t in ("-0.02", "-0.02", "-0.02", "0.00", "0.00")]
    assert sum(taxes) == -invoice_tax
