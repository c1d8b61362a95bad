"""The shapes that an invoice copies when it is finalized: the seller (the MSP's billing
profile), the buyer (the customer's billing details) and the tax summary per rate.

They are stored as JSON on the invoice (``invoices.seller``, ``invoices.buyer``,
``invoices.taxes``) and read by every output: JSON, CSV, PDF and the e-invoice XML. Amounts
and rates are decimal texts (``"19"``, ``"1234.56"``), never floats.
"""

from __future__ import annotations

from typing import TypedDict


class Seller(TypedDict, total=False):
    legal_name: str
    address_line1: str | None
    address_line2: str | None
    postal_code: str | None
    city: str | None
    country: str | None  # ISO 3166-1 alpha-2
    tax_id: str | None  # VAT id, compact ("DE123456789")
    registration: str | None
    email: str | None
    phone: str | None
    bank_name: str | None
    iban: str | None  # compact
    bic: str | None
    footer_text: str | None
    # The brand's logo when the document was made (``tenancy`` keeps every version); the
    # PDF shows it. Absent without a logo and on documents made before issue 12's logo.
    logo_version: str


class Buyer(TypedDict, total=False):
    legal_name: str
    address_line1: str | None
    address_line2: str | None
    postal_code: str | None
    city: str | None
    country: str | None
    tax_id: str | None
    po_number: str | None
    invoice_email: str | None
    tax_treatment: str  # standard | exempt | reverse_charge
    exemption_reason: str | None


class TaxSummary(TypedDict):
    """One tax rate of a document: EN 16931's VAT breakdown (BG-23)."""

    category: str  # S standard, E exempt, AE reverse charge, Z zero rated
    rate: str  # percent, "19"
    name: str  # "VAT"
    taxable: str  # the sum of the net amounts of the lines at this rate (BT-116)
    tax: str  # rounded (BT-117)
    note: str | None  # the exemption or reverse-charge wording (BT-120)
