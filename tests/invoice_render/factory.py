"""Invoice views built by hand for the rendering tests."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from billbyte.invoicing.documents import DocumentLine
from billbyte.invoicing.views import InvoiceView


def line(position: int, **over: Any) -> DocumentLine:
    values: dict[str, Any] = {
        "position": position,
        "kind": "usage",
        "description": "AWS: Amazon Elastic Compute Cloud / Usage",
        "vendor": "aws",
        "vendor_reference": "111122223333",
        "service_name": "Amazon Elastic Compute Cloud",
        "charge_category": "Usage",
        "quantity": Decimal("1492.000000000000000000"),
        "unit": "Hrs",
        "unit_price": Decimal("0.041600"),
        "amount": Decimal("62.07"),
        "amount_exact": Decimal("62.0672"),
        "currency": "EUR",
        "period": "2026-09",
        "service_start": "2026-09-01",
        "service_end": "2026-09-30",
        "original_period": None,
        "fx_rates": [],
    }
    values.update(over)
    return DocumentLine(**values)


def view(lines: list[DocumentLine], **over: Any) -> InvoiceView:
    total = sum((li.amount for li in lines), Decimal(0))
    values: dict[str, Any] = {
        "id": "inv_1",
        "kind": "invoice",
        "status": "finalized",
        "number": "INV-2026-0042",
        "customer_id": "cus_1",
        "customer_name": "Acme GmbH",
        "customer_external_id": "acme",
        "seller_name": "Cloudy MSP Ltd",
        "billing_cycle": "monthly",
        "period_start": "2026-09",
        "period_end": "2026-09",
        "months": ["2026-09"],
        "issue_date": date(2026, 10, 1),
        "due_at": None,
        "currency": "EUR",
        "locale": "en",
        "grouping": "service",
        "total": total,
        "total_exact": total,
        "line_count": len(lines),
        "fx_rates": [],
        "finalized_at": datetime(2026, 10, 1, 6, 0, tzinfo=UTC),
        "lines": lines,
        "document_version": 2,
        "seller": {
            "legal_name": "Cloudy MSP Ltd",
            "address_line1": "1 Main Street",
            "postal_code": "D02 X285",
            "city": "Dublin",
            "country": "IE",
            "tax_id": "IE6388047V",
            "registration": "CRO 123456",
            "iban": "IE29AIBK93115212345678",
            "bic": "AIBKIE2D",
            "footer_text": "Thank you for your business.",
        },
        "buyer": {
            "legal_name": "Acme GmbH",
            "address_line1": "Hauptstraße 5",
            "postal_code": "10115",
            "city": "Berlin",
            "country": "DE",
            "tax_id": "DE136695976",
            "po_number": "PO-77",
        },
        "due_date": date(2026, 10, 31),
        "payment_terms_days": 30,
    }
    values.update(over)
    return InvoiceView(**values)


def many_lines(n: int) -> list[DocumentLine]:
    services = ["Amazon Elastic Compute Cloud", "Amazon Simple Storage Service", "AWS Lambda"]
    return [
        line(
            i + 1,
            service_name=services[i % 3],
            amount=Decimal("1.25"),
            vendor_reference=f"acct-{i % 7}",
        )
        for i in range(n)
    ]
