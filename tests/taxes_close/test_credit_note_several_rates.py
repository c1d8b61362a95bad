"""Credit notes of an invoice of several tax rates: each line credits the rate it names, or
every rate in proportion to what is left of it; each rate's tax is its credited net x rate
rounded half-even, the last of a rate's net takes the rest of its tax, and no rate is ever
credited beyond its base. Expected figures are plain Decimal arithmetic here.

No close makes a several-rate invoice yet (a buyer has one treatment), so the invoice is
written as a close would write one: lines at 19 % and 7 %, its per-rate summary."""

from __future__ import annotations

import csv
import io
from datetime import date
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

from lxml import etree  # type: ignore[import-untyped]
from pypdf import PdfReader

from billbyte.invoicing.documents import DocumentLine
from billbyte.invoicing.models import FINALIZED, INVOICE, TAX_INVOICE, Invoice
from billbyte.invoicing.views import insert_lines
from billbyte.kit.clock import utcnow
from tests.api.factories import assert_problem
from tests.invoicing.conftest import Billing, add_charges, close, customer
from tests.taxes_close.parties import details, invoice_mode

CENT = Decimal("0.01")
RAM = {"ram": "urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:100"}
CBC = {"cbc": "urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2"}
CAC = {
    **CBC,
    "cac": "urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2",
}
AT_19, AT_7 = Decimal("1000.00"), Decimal("234.56")


def _vat(amount: Decimal, percent: int) -> Decimal:
    return (amount * percent / 100).quantize(CENT, rounding=ROUND_HALF_EVEN)


TAX_19, TAX_7 = _vat(AT_19, 19), _vat(AT_7, 7)  # 190.00, 16.42 (16.4192)


def _line(position: int, kind: str, text: str, amount: Decimal, rate: int) -> DocumentLine:
    return DocumentLine(
        position=position, kind=kind, description=text, vendor="aws" if kind == "usage" else None,
        vendor_reference=None, service_name=None, charge_category=None, quantity=None, unit=None,
        unit_price=None, amount=amount, amount_exact=amount, currency="EUR", period="2026-10",
        service_start=None, service_end=None, original_period=None, fx_rates=[],
        tax_category="S", tax_rate=Decimal(rate),
    )  # fmt: skip


def _two_rate_invoice(billing: Billing) -> dict[str, Any]:
    """A finalized invoice-mode invoice of 1000.00 at 19 % and 234.56 at 7 %, with the
    seller and buyer snapshots of a real close of the same customer."""
    invoice_mode(billing)
    msp_id = billing.tenant.msp_id
    cid = customer(billing.tenant, "DE-2R", country="DE")
    details(billing, cid, legal_name="Müller GmbH", country="DE", tax_id="DE136695976")
    add_charges(billing.runtime, msp_id, cid, "2026-09", ["10.00"])
    close(billing.runtime, msp_id, "2026-09")
    [closed] = billing.invoices(status="finalized", customer_id=cid)
    real = billing.invoice(closed["id"])
    summary = [
        {"category": "S", "rate": "19", "name": "VAT", "taxable": "1000.00",
         "tax": str(TAX_19), "note": None},
        {"category": "S", "rate": "7", "name": "VAT", "taxable": "234.56",
         "tax": str(TAX_7), "note": None},
    ]  # fmt: skip
    lines = [
        _line(1, "usage", "Amazon EC2", AT_19, 19),
        _line(2, "usage", "Training (reduced rate)", AT_7, 7),
        _line(3, "tax", "VAT 19 % (S)", TAX_19, 19),
        _line(4, "tax", "VAT 7 % (S)", TAX_7, 7),
    ]
    total = AT_19 + AT_7 + TAX_19 + TAX_7
    with billing.runtime.uow() as uow:
        invoice = Invoice(
            id="inv_tworates", msp_id=msp_id, customer_id=cid, kind=INVOICE, status=FINALIZED,
            number="INV-2R", period_start="2026-10", period_end="2026-10",
            billing_cycle="monthly", issue_date=date(2026, 11, 1), currency="EUR",
            locale="de_DE", customer_name=real["customer_name"], customer_external_id="DE-2R",
            seller_name="Alpha Hosting GmbH", grouping="service", total=total,
            total_exact=total, line_count=4, fx_rates=[], finalized_at=utcnow(),
            mode=TAX_INVOICE, due_date=date(2026, 11, 15), payment_terms_days=14,
            seller=real["seller"], buyer=real["buyer"], subtotal=AT_19 + AT_7,
            tax_total=TAX_19 + TAX_7, taxes=summary,
        )  # fmt: skip
        uow.session.add(invoice)
        uow.session.flush()
        insert_lines(uow.session, invoice, cid, lines)
        uow.commit()
    return billing.invoice("inv_tworates")


def _credit(billing: Billing, *lines: dict[str, str]) -> Any:
    return billing.tenant.post(
        "/v1/invoices/inv_tworates/credit-notes", json={"reason": "Outage", "lines": list(lines)}
    )


def _taxes(note: dict[str, Any]) -> dict[str, tuple[Decimal, Decimal]]:
    return {t["rate"]: (Decimal(t["taxable"]), Decimal(t["tax"])) for t in note["taxes"]}


def test_crediting_several_rates_in_parts_gives_back_each_rate_exactly(billing: Billing) -> None:
    invoice = _two_rate_invoice(billing)
    # Half the net, no rate named: in proportion 1000.00 : 234.56 → 500.00 and 117.28.
    half = _credit(billing, {"description": "Half", "amount": "617.28"})
    assert half.status_code == 201, half.text
    first = half.json()
    assert _taxes(first) == {
        "19": (Decimal("-500.00"), -_vat(Decimal("500.00"), 19)),  # 95.00
        "7": (Decimal("-117.28"), -_vat(Decimal("117.28"), 7)),  # 8.2096 → 8.21
    }
    assert [(li["description"], li["amount"], li["tax_rate"]) for li in first["lines"]] == [
        ("Half — VAT 7 % (S)", "-117.28", "7"),  # by category, then rate, as at close
        ("Half — VAT 19 % (S)", "-500.00", "19"),
        ("VAT 7 % (S)", "-8.21", "7"),
        ("VAT 19 % (S)", "-95.00", "19"),
    ]
    assert Decimal(first["total"]) == -(Decimal("617.28") + Decimal("95.00") + Decimal("8.21"))
    # A line naming its rate: 100.00 at 7 % → 7.00 tax.
    named = _credit(billing, {"description": "Training", "amount": "100.00", "tax_rate": "7"})
    assert named.status_code == 201, named.text
    assert _taxes(named.json()) == {"7": (Decimal("-100.00"), Decimal("-7.00"))}
    # 234.56 - 117.28 - 100.00 = 17.28 left at 7 %: a cent more is refused, naming the rate.
    over = _credit(billing, {"description": "Too much", "amount": "17.29", "tax_rate": "7"})
    assert_problem(over, 422, "credit_exceeds_invoice")
    assert "VAT 7 % (S): 17.28 left" in over.json()["detail"]
    # All that is left, in proportion: each rate's base used up takes the rest of its tax.
    rest = _credit(billing, {"description": "Rest", "amount": "517.28"})
    assert rest.status_code == 201, rest.text
    assert _taxes(rest.json()) == {
        "19": (Decimal("-500.00"), -(TAX_19 - Decimal("95.00"))),
        "7": (Decimal("-17.28"), -(TAX_7 - Decimal("8.21") - Decimal("7.00"))),  # 1.21
    }
    notes = [first, named.json(), rest.json()]
    assert sum(Decimal(n["total"]) for n in notes) == -Decimal(invoice["total"])
    for rate, tax in (("19", TAX_19), ("7", TAX_7)):
        assert sum(_taxes(n).get(rate, (0, 0))[1] for n in notes) == -tax
    assert_problem(_credit(billing, {"description": "x", "amount": "0.01"}), 422,
                   "credit_exceeds_invoice")  # fmt: skip


def test_naming_a_rate_the_invoice_does_not_have(billing: Billing) -> None:
    _two_rate_invoice(billing)
    response = _credit(billing, {"description": "x", "amount": "1.00", "tax_rate": "16"})
    assert_problem(response, 422, "credit_tax_rate_unknown")
    assert "its rates: VAT 7 % (S), VAT 19 % (S)." in response.json()["detail"]
    wrong = _credit(billing, {"description": "x", "amount": "1.00", "tax_category": "Z"})
    assert_problem(wrong, 422, "credit_tax_rate_unknown")
    bad = _credit(billing, {"description": "x", "amount": "1.00", "tax_rate": "abc"})
    assert bad.status_code == 422


def test_a_statement_credit_line_cannot_name_a_rate(billing: Billing) -> None:
    cid = customer(billing.tenant, "ST-1")
    add_charges(billing.runtime, billing.tenant.msp_id, cid, "2026-09", ["10.00"])
    close(billing.runtime, billing.tenant.msp_id, "2026-09")
    [invoice] = billing.invoices(status="finalized", customer_id=cid)
    response = billing.tenant.post(
        f"/v1/invoices/{invoice['id']}/credit-notes",
        json={"reason": "x", "lines": [{"description": "x", "amount": "1.00", "tax_rate": "19"}]},
    )
    assert_problem(response, 422, "credit_tax_rate_unknown")


def test_the_per_rate_tax_in_csv_pdf_and_e_invoice(billing: Billing) -> None:
    _two_rate_invoice(billing)
    note = _credit(billing, {"description": "Half", "amount": "617.28"}).json()
    tenant = billing.tenant
    text = tenant.get(f"/v1/invoices/{note['id']}.csv").content.decode("utf-8-sig")
    rows = list(csv.DictReader(io.StringIO(text), delimiter=";"))
    assert [(r["record"], r["tax_rate"], r["amount_decimal"]) for r in rows] == [
        ("line", "7", "-117.28"),
        ("line", "19", "-500.00"),
        ("subtotal", "", "-617.28"),
        ("tax", "7", "-8.21"),
        ("tax", "19", "-95.00"),
        ("total", "", "-720.49"),
    ]
    assert [r["taxable_amount_decimal"] for r in rows if r["record"] == "tax"] == [
        "-117.28",
        "-500.00",
    ]
    pdf = tenant.get(f"/v1/invoices/{note['id']}.pdf").content
    page = PdfReader(io.BytesIO(pdf)).pages[0].extract_text()
    assert "VAT 19 % on -500,00" in page and "VAT 7 % on -117,28" in page
    assert "-95,00" in page and "-8,21" in page
    cii = etree.fromstring(tenant.get(f"/v1/invoices/{note['id']}.xml").content)
    breakdown = [
        (t.findtext("ram:RateApplicablePercent", namespaces=RAM),
         t.findtext("ram:BasisAmount", namespaces=RAM),
         t.findtext("ram:CalculatedAmount", namespaces=RAM))
        for t in cii.iterfind(".//ram:ApplicableTradeTax", namespaces=RAM)
        if t.findtext("ram:BasisAmount", namespaces=RAM) is not None
    ]  # fmt: skip
    assert sorted(breakdown) == [("19", "500.00", "95.00"), ("7", "117.28", "8.21")]
    ubl = etree.fromstring(tenant.get(f"/v1/invoices/{note['id']}.xml?syntax=ubl").content)
    subtotals = [
        (s.findtext("cac:TaxCategory/cbc:Percent", namespaces=CAC),
         s.findtext("cbc:TaxableAmount", namespaces=CAC),
         s.findtext("cbc:TaxAmount", namespaces=CAC))
        for s in ubl.iterfind(".//cac:TaxSubtotal", namespaces=CAC)
    ]  # fmt: skip
    assert sorted(subtotals) == [("19", "500.00", "95.00"), ("7", "117.28", "8.21")]
    assert tenant.get(f"/v1/invoices/{note['id']}/facturx.pdf").status_code == 200


def test_two_rates_of_one_percent_need_the_category() -> None:
    """An invoice with exempt and zero-rated lines has two 0 % rates: a line naming "0"
    alone is ambiguous; with its category it is not."""
    import pytest

    from billbyte.invoicing.credit_notes import _named_rate
    from billbyte.invoicing.schemas import CreditNoteLineIn
    from billbyte.kit.errors import InvalidInput

    invoice = Invoice(mode=TAX_INVOICE, number="INV-0")
    taxes: list[Any] = [
        {"category": "E", "rate": "0", "name": "VAT", "taxable": "10.00", "tax": "0.00",
         "note": "Art. 132"},
        {"category": "Z", "rate": "0", "name": "VAT", "taxable": "5.00", "tax": "0.00",
         "note": None},
    ]  # fmt: skip
    zero = CreditNoteLineIn(description="x", amount="1.00", tax_rate="0")
    with pytest.raises(InvalidInput) as refused:
        _named_rate(invoice, taxes, 0, zero)
    assert refused.value.code == "credit_tax_rate_ambiguous"
    named = CreditNoteLineIn(description="x", amount="1.00", tax_rate="0", tax_category="Z")
    assert _named_rate(invoice, taxes, 0, named) == ("Z", Decimal(0))
    by_category = CreditNoteLineIn(description="x", amount="1.00", tax_category="E")
    assert _named_rate(invoice, taxes, 0, by_category) == ("E", Decimal(0))
