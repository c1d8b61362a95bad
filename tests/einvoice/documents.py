"""Invoice-mode documents written by hand: the amounts, taxes and totals below are chosen
here and checked with plain arithmetic, so the tests' expected values never come from the
code under test."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from billbyte.invoicing.documents import DocumentLine
from billbyte.invoicing.parties import Buyer, Seller, TaxSummary
from billbyte.invoicing.views import InvoiceView

FINALIZED_AT = datetime(2026, 10, 1, 6, 30, 0, tzinfo=UTC)

SELLER = Seller(
    legal_name="Cloudhaus GmbH",
    address_line1="Hauptstraße 1",
    postal_code="10115",
    city="Berlin",
    country="DE",
    tax_id="DE136695976",
    registration="HRB 12345",
    email="billing@cloudhaus.example",
    iban="DE89370400440532013000",
    bic="COBADEFFXXX",
)
BUYER_DE = Buyer(
    legal_name="Müller & Söhne GmbH",
    address_line1="Marktplatz 5",
    address_line2="3. OG",
    postal_code="80331",
    city="München",
    country="DE",
    tax_id="DE129273398",
    po_number="PO-4711",
    invoice_email="ap@mueller.example",
    tax_treatment="standard",
)
BUYER_EXEMPT = Buyer(
    legal_name="Klinikum Nord gGmbH",
    address_line1="Am Park 2",
    postal_code="20095",
    city="Hamburg",
    country="DE",
    tax_treatment="exempt",
    exemption_reason="Steuerfrei nach § 4 Nr. 14 UStG",
)
BUYER_FR = Buyer(
    legal_name="Nuage SARL",
    address_line1="1 rue de Rivoli",
    postal_code="75001",
    city="Paris",
    country="FR",
    tax_id="FR40303265045",
    tax_treatment="reverse_charge",
)
REVERSE_CHARGE_NOTE = (
    "Reverse charge: VAT due by the recipient (Article 196, Directive 2006/112/EC)"
)


def line(
    position: int,
    description: str,
    amount: str,
    *,
    kind: str = "usage",
    quantity: str | None = None,
    unit: str | None = None,
    unit_price: str | None = None,
    category: str | None = "S",
    rate: str | None = "19",
) -> DocumentLine:
    return DocumentLine(
        position=position,
        kind=kind,
        description=description,
        vendor="aws" if kind == "usage" else None,
        vendor_reference=None,
        service_name=None,
        charge_category=None,
        quantity=None if quantity is None else Decimal(quantity),
        unit=unit,
        unit_price=None if unit_price is None else Decimal(unit_price),
        amount=Decimal(amount),
        amount_exact=Decimal(amount),
        currency="EUR",
        period="2026-09",
        service_start="2026-09-01",
        service_end="2026-09-30",
        original_period=None,
        fx_rates=[],
        tax_category=None if kind == "tax" else category,
        tax_rate=None if kind == "tax" or rate is None else Decimal(rate),
    )


def view(
    lines: list[DocumentLine],
    taxes: list[TaxSummary],
    *,
    subtotal: str,
    tax_total: str,
    total: str,
    buyer: Buyer = BUYER_DE,
    **extra: Any,
) -> InvoiceView:
    base = InvoiceView(
        id="inv_test",
        kind="invoice",
        status="finalized",
        number="INV-000042",
        customer_id="cus_test",
        customer_name=buyer.get("legal_name", ""),
        customer_external_id="EXT-1",
        seller_name="Cloudhaus",
        billing_cycle="monthly",
        period_start="2026-09",
        period_end="2026-09",
        months=["2026-09"],
        issue_date=date(2026, 10, 1),
        due_at=None,
        currency="EUR",
        locale="de_DE",
        grouping="service",
        total=Decimal(total),
        total_exact=Decimal(total),
        line_count=len(lines),
        fx_rates=[],
        finalized_at=FINALIZED_AT,
        lines=lines,
        mode="invoice",
        due_date=date(2026, 10, 15),
        payment_terms_days=14,
        seller=SELLER,
        buyer=buyer,
        subtotal=Decimal(subtotal),
        tax_total=Decimal(tax_total),
        taxes=taxes,
    )
    return replace(base, **extra)


def tax(category: str, rate: str, taxable: str, amount: str, note: str | None = None) -> TaxSummary:
    return TaxSummary(
        category=category, rate=rate, name="VAT", taxable=taxable, tax=amount, note=note
    )


def german() -> InvoiceView:
    """DE customer, 19 %: 62.07 + 0.07 + 1.40 + 150.00 - 10.00 = 203.54 net;
    19 % of it is 38.6726, rounded 38.67; 203.54 + 38.67 = 242.21."""
    return view(
        [
            line(
                1,
                "Amazon EC2 — t3.medium, eu-west-1 — 1,492 h",
                "62.07",
                quantity="1492",
                unit="Hours",
                unit_price="0.0416",
            ),
            line(
                2,
                "Amazon S3 — Standard storage — 3.09 GB",
                "0.07",
                quantity="3.093013220278452",
                unit="GB",
                unit_price="0.023",
            ),
            # 1,000,000 requests at a unit price rounded to 0.000001: 1.00, not 1.40
            line(
                3,
                "AWS Lambda — requests",
                "1.40",
                quantity="1000000",
                unit="Requests",
                unit_price="0.000001",
            ),
            line(4, "Managed service fee", "150.00", kind="fee"),
            line(5, "Goodwill credit", "-10.00", kind="adjustment"),
            line(6, "VAT 19 %", "38.67", kind="tax"),
        ],
        [tax("S", "19", "203.54", "38.67")],
        subtotal="203.54",
        tax_total="38.67",
        total="242.21",
    )


def exempt() -> InvoiceView:
    """Exempt customer: 500.00 + 25.50 = 525.50, no tax."""
    return view(
        [
            line(
                1,
                "Microsoft 365 E3 — 20 seats",
                "500.00",
                quantity="20",
                unit="Seats",
                unit_price="25",
                category="E",
                rate="0",
            ),
            line(2, "Support", "25.50", kind="fee", category="E", rate="0"),
        ],
        [tax("E", "0", "525.50", "0.00", "Steuerfrei nach § 4 Nr. 14 UStG")],
        subtotal="525.50",
        tax_total="0.00",
        total="525.50",
        buyer=BUYER_EXEMPT,
    )


def reverse_charge() -> InvoiceView:
    """EU reverse charge (FR customer): 1,000.00 + 234.56 = 1,234.56, no tax."""
    return view(
        [
            line(
                1,
                "Google Cloud — Compute Engine — 720 h",
                "1000.00",
                quantity="720",
                unit="hour",
                unit_price="1.388889",
                category="AE",
                rate="0",
            ),
            line(
                2,
                "Google Cloud — Cloud Storage — 100 GB",
                "234.56",
                quantity="100",
                unit="GB",
                unit_price="2.3456",
                category="AE",
                rate="0",
            ),
        ],
        [tax("AE", "0", "1234.56", "0.00", REVERSE_CHARGE_NOTE)],
        subtotal="1234.56",
        tax_total="0.00",
        total="1234.56",
        buyer=BUYER_FR,
        locale="fr_FR",
    )


def credit_note() -> InvoiceView:
    """A credit note of 100.00 net + 19.00 VAT = 119.00, negative in the view."""
    return view(
        [
            line(1, "Credit: Amazon EC2 overcharge", "-100.00", kind="credit"),
            line(2, "VAT 19 %", "-19.00", kind="tax"),
        ],
        [tax("S", "19", "-100.00", "-19.00")],
        subtotal="-100.00",
        tax_total="-19.00",
        total="-119.00",
        kind="credit_note",
        number="CN-000003",
        credited_invoice_id="inv_credited",
        reason="Overcharge in September",
    )
