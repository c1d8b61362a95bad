"""Demo data for ``make run``: one MSP, partner accounts for each vendor, a few customers.

Idempotent: running it again finds the demo MSP and reuses its key from var/demo_api_key.
"""

from __future__ import annotations

import csv
import tempfile
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import select

from billbyte.auth.roles import Role
from billbyte.auth.subject import AuthSubject
from billbyte.connectors.service import sync_for
from billbyte.customers import service as customers
from billbyte.customers.schemas import CustomerCreate, VendorAccountCreate
from billbyte.fx import rates as fx
from billbyte.fx.schemas import FxRatesPut
from billbyte.kit.outbound import LOCAL_SANDBOXES
from billbyte.kit.vendors import Vendor
from billbyte.partners import service as partners
from billbyte.partners.models import PartnerAccount
from billbyte.partners.schemas import PartnerAccountCreate
from billbyte.pricing import service as pricing
from billbyte.pricing.models import PricePlan
from billbyte.pricing.schemas import PricePlanIn, PriceRuleIn
from billbyte.runtime import Runtime
from billbyte.tenancy import service as tenancy
from billbyte.tenancy.models import Msp
from billbyte.usage import service as usage

DEMO_MSP = "Demo Hosting GmbH"

# Partner accounts point at the simulators that `billbyte serve --sandbox` (make run) starts
# on these fixed ports; credentials are the simulators' own throw-away ones.
SANDBOX = "http://127.0.0.1"
AWS_SANDBOX_CREDENTIALS = {
    "access_key_id": "billbyte-sandbox",
    "secret_access_key": "billbyte-sandbox",
    "region": "us-east-1",
    "cur_bucket": "billbyte-cur",
    "cur_prefix": "cur",
    "cur_report": "billbyte",
}
PARTNERS: list[tuple[Vendor, str, str | None, Decimal, str, dict[str, Any]]] = [
    (
        Vendor.AWS,
        "AWS payer (sandbox)",
        "123456789012",
        Decimal(6),
        f"{SANDBOX}:8811",
        AWS_SANDBOX_CREDENTIALS,
    ),
    (
        Vendor.AZURE,
        "Azure plan (sandbox)",
        None,
        Decimal(15),
        f"{SANDBOX}:8812",
        {"currencies": "EUR,USD"},
    ),
    (
        Vendor.MICROSOFT365,
        "Microsoft 365 CSP (sandbox)",
        None,
        Decimal(12),
        f"{SANDBOX}:8812",
        {"currencies": "EUR,USD"},
    ),
    (Vendor.GCP, "Google Cloud Channel (sandbox)", None, Decimal(4), f"{SANDBOX}:8813", {}),
]

# (external id, name, currency, country, locale, existing vendor accounts to link,
#  vendors to provision through the sandboxes)
CUSTOMERS: list[tuple[str, str, str, str, str, dict[Vendor, str], list[Vendor]]] = [
    (
        "ACME-001",
        "Acme Robotics AG",
        "EUR",
        "DE",
        "de_DE",
        {Vendor.AWS: "222222222222", Vendor.AZURE: "3c1f0ae2-0c1a-4d8e-9c5b-acme00000001"},
        [],
    ),
    (
        "GLOBEX-7",
        "Globex Ltd",
        "GBP",
        "GB",
        "en_GB",
        {Vendor.AWS: "333333333333", Vendor.GCP: "billingAccounts/01ABCD-GLOBEX"},
        [],
    ),
    (
        "INITECH-42",
        "Initech KK",
        "JPY",
        "JP",
        "ja_JP",
        {Vendor.MICROSOFT365: "initech.onmicrosoft.com"},
        [],
    ),
    # Created with vendors: provisioned on the sandboxes, then its usage arrives by itself.
    (
        "NEWCO-9",
        "Newco Cloud Ltd",
        "EUR",
        "IE",
        "en_IE",
        {},
        [Vendor.AWS, Vendor.AZURE, Vendor.GCP],
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
        for vendor, name, vendor_account_id, discount, endpoint, credentials in PARTNERS:
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
                    endpoint_url=endpoint,
                    partner_discount_percent=discount,
                    credentials=credentials,
                ),
                runtime.secret_key,
                # The demo's accounts point at the local simulators of `serve --sandbox`.
                outbound=LOCAL_SANDBOXES,
            )

        for account in by_vendor.values():
            # Collect every minute from the sandboxes, so the demo shows usage arriving.
            sync_for(session, account, interval=1).interval_minutes = 1
        for external_id, name, currency, country, locale, links, provision in CUSTOMERS:
            customer, created = customers.create(
                session,
                subject,
                CustomerCreate(
                    external_id=external_id,
                    name=name,
                    currency=currency,
                    country=country,
                    locale=locale,
                    vendors=list(provision),
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
    _seed_pricing_and_usage(runtime, subject, by_vendor[Vendor.AWS].id)
    return {
        "msp_id": msp.id,
        "api_key": api_key,
        "customers": len(CUSTOMERS),
        "partner_accounts": {v.value: a.id for v, a in by_vendor.items()},
    }


AWS_SERVICES = [
    ("Amazon Elastic Compute Cloud", "Compute", "Hrs", Decimal("0.0928")),
    ("Amazon Simple Storage Service", "Storage", "GB-Mo", Decimal("0.0245")),
    ("Amazon Relational Database Service", "Databases", "Hrs", Decimal("0.2040")),
    ("AWS Lambda", "Compute", "Requests", Decimal("0.0000002")),
]
DEMO_RATES = {"EUR": Decimal("0.9210"), "GBP": Decimal("0.7850"), "JPY": Decimal("151.20")}


def _seed_pricing_and_usage(runtime: Runtime, subject: AuthSubject, aws_account_id: str) -> None:
    """A default plan, USD rates for this month, and this month's AWS usage so far, so
    that the demo shows charges at once. Idempotent like the rest of the demo."""
    today = date.today()
    first = today.replace(day=1)
    with runtime.uow() as uow:
        if (
            uow.session.scalar(select(PricePlan.id).where(PricePlan.msp_id == subject.msp_id))
            is None
        ):
            pricing.create_plan(
                uow.session,
                subject,
                PricePlanIn(
                    name="Standard",
                    is_default=True,
                    rules=[
                        PriceRuleIn(
                            vendor=Vendor.AWS, adjustment="markup_percent", value=Decimal(15)
                        ),
                        PriceRuleIn(
                            vendor=Vendor.AZURE,
                            basis="list",
                            adjustment="discount_percent",
                            value=Decimal(5),
                        ),
                    ],
                ),
            )
        days = [first + timedelta(days=n) for n in range(40)]
        fx.put_rates(
            uow.session,
            subject,
            FxRatesPut(
                rates=[
                    {"base": "USD", "quote": quote, "date": day.isoformat(), "rate": str(rate)}
                    for day in days
                    for quote, rate in DEMO_RATES.items()
                ],
                source="demo",
            ),
        )
        uow.commit()

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"demo-aws-{first:%Y-%m}.csv"
        with path.open("w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(
                [
                    "BillingAccountId",
                    "SubAccountId",
                    "BillingCurrency",
                    "BillingPeriodStart",
                    "BillingPeriodEnd",
                    "ChargePeriodStart",
                    "ChargePeriodEnd",
                    "ChargeCategory",
                    "ChargeFrequency",
                    "ProviderName",
                    "ServiceName",
                    "ServiceCategory",
                    "RegionId",
                    "ResourceId",
                    "PricingQuantity",
                    "PricingUnit",
                    "ListCost",
                    "BilledCost",
                    "EffectiveCost",
                ]
            )
            end = (first + timedelta(days=32)).replace(day=1)
            for offset in range(max((today - first).days, 1)):
                day = first + timedelta(days=offset)
                for account_index, account in enumerate(("222222222222", "333333333333")):
                    for index, (service, category, unit, price) in enumerate(AWS_SERVICES):
                        quantity = Decimal(24 * (index + 1) * (account_index + 2) + offset % 5)
                        listed = (quantity * price).quantize(Decimal("0.0000000001"))
                        billed = (listed * Decimal("0.94")).quantize(Decimal("0.0000000001"))
                        writer.writerow(
                            [
                                "111111111111",
                                account,
                                "USD",
                                f"{first}T00:00:00Z",
                                f"{end}T00:00:00Z",
                                f"{day}T00:00:00Z",
                                f"{day + timedelta(days=1)}T00:00:00Z",
                                "Usage",
                                "Usage-Based",
                                "AWS",
                                service,
                                category,
                                "eu-central-1",
                                f"arn:aws:demo:{account}:{index}",
                                quantity,
                                unit,
                                listed,
                                billed,
                                billed,
                            ]
                        )
        usage.import_files(runtime, subject, aws_account_id, [(path, path.name)])
