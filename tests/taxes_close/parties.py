"""An invoice-mode MSP (complete billing profile, a DE 19 % rate) and customer billing
details, written straight into the database for the close-time tax tests."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

from billbyte.customers.models import CustomerBillingDetails
from billbyte.invoicing.models import InvoiceSettings
from billbyte.taxes.models import TaxRate
from billbyte.tenancy.models import MspBillingProfile
from tests.invoicing.conftest import Billing

ADDRESS = {"address_line1": "Hauptstraße 1", "postal_code": "10115", "city": "Berlin"}


def invoice_mode(billing: Billing, *, payment_terms_days: int = 14, **profile: Any) -> None:
    """Invoice mode with a complete billing profile (``profile`` overrides its fields)."""
    msp_id = billing.tenant.msp_id
    values: dict[str, Any] = {
        "legal_name": "Alpha Hosting GmbH",
        **ADDRESS,
        "country": "DE",
        "tax_id": "DE136695976",
        "iban": "DE89370400440532013000",
        "payment_terms_days": payment_terms_days,
        **profile,
    }
    with billing.runtime.uow() as uow:
        uow.session.add(
            InvoiceSettings(msp_id=msp_id, grace_days=5, grouping="service", mode="invoice")
        )
        uow.session.add(MspBillingProfile(msp_id=msp_id, **values))
        uow.session.add(
            TaxRate(
                msp_id=msp_id,
                country="DE",
                name="USt.",
                rate=Decimal("19"),
                valid_from=date(2020, 1, 1),
            )
        )
        uow.commit()


def details(billing: Billing, cid: str, **values: object) -> None:
    """Billing details with a complete address unless ``values`` says otherwise."""
    with billing.runtime.uow() as uow:
        uow.session.add(
            CustomerBillingDetails(
                customer_id=cid, msp_id=billing.tenant.msp_id, **{**ADDRESS, **values}
            )
        )
        uow.commit()


def run_of(billing: Billing, run_id: str) -> dict[str, Any]:
    response = billing.tenant.get(f"/v1/invoice-runs/{run_id}")
    assert response.status_code == 200, response.text
    return dict(response.json())
