"""What a document adds to its lines: the seller and buyer it names, its payment terms and
due date, and in invoice mode its taxes (``taxation``). The live draft and the finalizing
transaction both call ``apply``, so a draft shows what its invoice will say."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

from sqlalchemy.orm import Session

from billbyte.customers.models import Customer, CustomerBillingDetails
from billbyte.customers.repository import billing_details_of
from billbyte.invoicing import taxation
from billbyte.invoicing.documents import Document, DocumentLine
from billbyte.invoicing.models import TAX_INVOICE
from billbyte.invoicing.parties import Buyer, Seller, TaxSummary
from billbyte.taxes.repository import rate_for
from billbyte.tenancy.models import Msp
from billbyte.tenancy.repository import billing_profile_of, current_logo_version

DEFAULT_PAYMENT_TERMS_DAYS = 30
_ADDRESS = ("address_line1", "address_line2", "postal_code", "city", "country", "tax_id")


@dataclass(frozen=True)
class Terms:
    seller: Seller
    buyer: Buyer
    payment_terms_days: int
    due_date: date
    lines: list[DocumentLine]  # the document's lines, then its tax lines
    taxes: list[TaxSummary]
    subtotal: Decimal | None  # None in statement mode
    tax_total: Decimal | None
    total: Decimal
    total_exact: Decimal


def seller_of(session: Session, msp_id: str) -> tuple[Seller, int]:
    profile = billing_profile_of(session, msp_id)
    msp = session.get(Msp, msp_id)
    seller: Seller = {"legal_name": (profile and profile.legal_name) or (msp.name if msp else "")}
    logo = current_logo_version(session, msp_id)
    if logo is not None:
        seller["logo_version"] = str(logo)
    if profile is None:
        return seller, DEFAULT_PAYMENT_TERMS_DAYS
    for name in (
        *_ADDRESS,
        "registration",
        "email",
        "phone",
        "bank_name",
        "iban",
        "bic",
        "footer_text",
    ):
        seller[name] = getattr(profile, name)  # type: ignore[literal-required]
    return seller, profile.payment_terms_days


def buyer_of(session: Session, customer: Customer) -> Buyer:
    return buyer_from(customer, billing_details_of(session, customer.msp_id, customer.id))


def buyer_from(customer: Customer, details: CustomerBillingDetails | None) -> Buyer:
    """The buyer an invoice names: the customer's billing details where set."""
    buyer: Buyer = {
        "legal_name": (details and details.legal_name) or customer.name,
        "country": (details and details.country) or customer.country,
        "tax_treatment": details.tax_treatment if details else "standard",
    }
    if details is not None:
        for name in (*_ADDRESS[:4], "tax_id", "po_number", "invoice_email", "exemption_reason"):
            buyer[name] = getattr(details, name)  # type: ignore[literal-required]
    return buyer


def standard_rate(
    session: Session, msp_id: str, buyer: Buyer, issue_date: date, mode: str
) -> Decimal | None:
    """The standard tax rate an invoice-mode document of a standard-rated buyer applies
    (None otherwise, or when the MSP has none for the buyer's country)."""
    if mode != TAX_INVOICE or buyer.get("tax_treatment", "standard") != "standard":
        return None
    found = rate_for(session, msp_id, buyer.get("country"), issue_date)
    return found.rate if found is not None else None


def apply(
    session: Session,
    customer: Customer,
    document: Document,
    issue_date: date,
    mode: str,
) -> Terms:
    """The document's parties, terms and taxes. Raises ``taxation.MissingTaxRate`` when an
    invoice-mode document of a standard-rated customer has no rate for its country."""
    seller, days = seller_of(session, customer.msp_id)
    buyer = buyer_of(session, customer)
    standard = standard_rate(session, customer.msp_id, buyer, issue_date, mode)
    return agree(document, issue_date, mode, seller, days, buyer, standard)


def agree(
    document: Document,
    issue_date: date,
    mode: str,
    seller: Seller,
    payment_terms_days: int,
    buyer: Buyer,
    standard: Decimal | None,
) -> Terms:
    """``apply`` with the parties and the standard rate already read (an invoice run reads
    them for many customers at once)."""
    taxed = taxation.compute(document.lines, document.currency, mode, buyer, standard)
    invoice_mode = mode == TAX_INVOICE
    return Terms(
        seller=seller,
        buyer=buyer,
        payment_terms_days=payment_terms_days,
        due_date=issue_date + timedelta(days=payment_terms_days),
        lines=[*taxed.lines, *taxed.tax_lines],
        taxes=taxed.taxes,
        subtotal=document.total if invoice_mode else None,
        tax_total=taxed.tax_total if invoice_mode else None,
        total=document.total + taxed.tax_total,
        total_exact=document.total_exact + taxed.tax_total,
    )
