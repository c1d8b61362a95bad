"""Issue #16 finding 8: usage charged through a billing-subaccount link is not "unassigned".

The import's unassigned list now uses customers.mapping's attribution (sub-account link, or
failing that billing-account link), as the summary and rating do. Identifiers are read here
from the raw GCP export with csv.
"""

from __future__ import annotations

from billbyte.customers import service as customers
from billbyte.customers.schemas import CustomerCreate, VendorAccountCreate, VendorAccountKind
from tests.usage.conftest import DATA, Importer, read_rows

GCP = DATA / "gcp" / "2022-08-01_5.csv"


def test_a_billing_subaccount_link_assigns_every_project_under_it(importer: Importer) -> None:
    rows = read_rows(GCP)
    billing_accounts = {row["billing_account_id"] for row in rows}
    projects = {row["project.id"] for row in rows if row["project.id"]}
    assert len(billing_accounts) == 1 and projects

    unlinked = importer(GCP, vendor="gcp")
    assert set(unlinked.unassigned_sub_accounts) == projects

    with importer.runtime.uow() as uow:
        customer, _ = customers.create(
            uow.session,
            importer.subject,
            CustomerCreate(external_id="c-1", name="Reseller Co", currency="USD"),
        )
        customers.link_vendor_account(
            uow.session,
            importer.subject,
            customer.id,
            VendorAccountCreate(
                partner_account_id=importer.partner_accounts["gcp"],
                vendor_identifier=next(iter(billing_accounts)),
                kind=VendorAccountKind.GCP_BILLING_SUBACCOUNT,
            ),
        )
        uow.commit()
    linked = importer(GCP, vendor="gcp")
    assert linked.unassigned_sub_accounts == []
