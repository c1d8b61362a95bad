"""Demo data for ``make run``: one MSP, partner accounts for each vendor, a few customers.

Idempotent: running it again finds the demo MSP and reuses its key from var/demo_api_key.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from sqlalchemy import select

from billbyte.customers import service as customers
from billbyte.customers.schemas import CustomerCreate, VendorAccountCreate
from billbyte.kit.vendors import Vendor
from billbyte.partners import service as partners
from billbyte.partners.models import PartnerAccount
from billbyte.partners.schemas import PartnerAccountCreate
from billbyte.runtime import Runtime
from billbyte.tenancy import service as tenancy
from billbyte.tenancy.auth import AuthSubject
from billbyte.tenancy.models import Msp
from billbyte.tenancy.roles import Role

DEMO_MSP = "Demo Hosting GmbH"

PARTNERS = [
    (Vendor.AWS, "AWS payer (sandbox)", "111111111111", Decimal(6)),
    (Vendor.AZURE, "Azure plan (sandbox)", "demo-partner-tenant", Decimal(15)),
    (Vendor.MICROSOFT365, "Microsoft 365 CSP (sandbox)", "demo-partner-tenant", Decimal(12)),
    (Vendor.GCP, "Google Cloud Channel (sandbox)", "accounts/C0demo", Decimal(4)),
]

CUSTOMERS = [
    (
        "ACME-001",
        "Acme Robotics AG",
        "EUR",
        "DE",
        "de_DE",
        {Vendor.AWS: "222222222222", Vendor.AZURE: "3c1f0ae2-0c1a-4d8e-9c5b-acme00000001"},
    ),
    (
        "GLOBEX-7",
        "Globex Ltd",
        "GBP",
        "GB",
        "en_GB",
        {Vendor.AWS: "333333333333", Vendor.GCP: "billingAccounts/01ABCD-GLOBEX"},
    ),
    (
        "INITECH-42",
        "Initech KK",
        "JPY",
        "JP",
        "ja_JP",
        {Vendor.MICROSOFT365: "initech.onmicrosoft.com"},
    ),
]


def seed(runtime: Runtime) -> dict[str, Any]:
    key_file = runtime.settings.var_dir / "demo_api_key"
    with runtime.uow() as uow:
        session = uow.session
        msp = session.scalar(select(Msp).where(Msp.name == DEMO_MSP))
        api_key = key_file.read_text().strip() if key_file.exists() else None
        if msp is None:
            msp, issued = tenancy.create_msp(session, DEMO_MSP)
            api_key = issued.secret
        subject = AuthSubject(msp_id=msp.id, actor="demo", role=Role.ADMIN)
        if api_key is None:
            api_key = tenancy.issue_api_key(session, subject, name="demo", role="admin").secret

        by_vendor: dict[Vendor, PartnerAccount] = {}
        for vendor, name, vendor_account_id, discount in PARTNERS:
            existing = session.scalar(
                select(PartnerAccount).where(
                    PartnerAccount.msp_id == msp.id, PartnerAccount.display_name == name
                )
            )
            by_vendor[vendor] = existing or partners.create(
                session,
                subject,
                PartnerAccountCreate(
                    vendor=vendor,
                    display_name=name,
                    vendor_account_id=vendor_account_id,
                    sandbox=True,
                    partner_discount_percent=discount,
                    credentials={"note": "sandbox credentials"},
                ),
                runtime.secret_key,
            )

        for external_id, name, currency, country, locale, links in CUSTOMERS:
            customer, created = customers.create(
                session,
                subject,
                CustomerCreate(
                    external_id=external_id,
                    name=name,
                    currency=currency,
                    country=country,
                    locale=locale,
                    vendors=list(links),
                    credit_limit=Decimal(5000),
                ),
            )
            if created:
                for vendor, identifier in links.items():
                    customers.link_vendor_account(
                        session,
                        subject,
                        customer.id,
                        VendorAccountCreate(
                            partner_account_id=by_vendor[vendor].id, vendor_identifier=identifier
                        ),
                    )
        uow.commit()
    runtime.settings.var_dir.mkdir(parents=True, exist_ok=True)
    key_file.write_text(api_key + "\n")
    key_file.chmod(0o600)
    return {
        "msp_id": msp.id,
        "api_key": api_key,
        "customers": len(CUSTOMERS),
        "partner_accounts": {v.value: a.id for v, a in by_vendor.items()},
    }
