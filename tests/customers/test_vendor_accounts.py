"""Vendor account links: kinds per vendor, one owner per identifier and partner account."""

from __future__ import annotations

import pytest

from tests.api.factories import assert_problem, link, make_customer, make_partner
from tests.conftest import Tenant


@pytest.mark.parametrize(
    ("vendor", "identifier", "default_kind", "other_kind"),
    [
        ("aws", "123456789012", "aws_account", None),
        ("azure", "3c1f0ae2-0c1a-4d8e-9c5b-000000000001", "azure_subscription", "azure_tenant"),
        ("gcp", "billingAccounts/01ABCD-234567", "gcp_billing_subaccount", "gcp_project"),
        ("microsoft365", "contoso.onmicrosoft.com", "microsoft_tenant", None),
    ],
)
def test_kinds_per_vendor(
    tenant: Tenant, vendor: str, identifier: str, default_kind: str, other_kind: str | None
) -> None:
    partner = make_partner(tenant, vendor)
    customer = make_customer(tenant)
    url = f"/v1/customers/{customer['id']}/vendor-accounts"
    linked = link(tenant, customer["id"], partner["id"], identifier)
    assert linked["kind"] == default_kind
    assert linked["customer_id"] == customer["id"]
    assert linked["partner_account_id"] == partner["id"]
    assert linked["vendor_identifier"] == identifier
    if other_kind:
        second = tenant.post(
            url,
            json={
                "partner_account_id": partner["id"],
                "vendor_identifier": identifier + "-2",
                "kind": other_kind,
                "display_name": "second",
            },
        )
        assert second.status_code == 201, second.text
        assert second.json()["kind"] == other_kind
        assert second.json()["display_name"] == "second"
    wrong = "aws_account" if vendor != "aws" else "gcp_project"
    refused = tenant.post(
        url,
        json={"partner_account_id": partner["id"], "vendor_identifier": "x-1", "kind": wrong},
    )
    assert_problem(refused, 422, "wrong_vendor_account_kind")


def test_get_list_and_delete(tenant: Tenant) -> None:
    partner = make_partner(tenant)
    customer = make_customer(tenant)
    base = f"/v1/customers/{customer['id']}/vendor-accounts"
    first = link(tenant, customer["id"], partner["id"], "111111111111")
    second = link(tenant, customer["id"], partner["id"], "222222222222")
    listed = tenant.get(base).json()
    assert [v["id"] for v in listed["data"]] == [first["id"], second["id"]]
    assert tenant.get(f"{base}/{first['id']}").json() == first

    gone = tenant.delete(f"{base}/{first['id']}")
    assert gone.status_code == 204 and gone.content == b""
    assert_problem(tenant.get(f"{base}/{first['id']}"), 404, "vendor_account_not_found")
    assert_problem(tenant.delete(f"{base}/{first['id']}"), 404, "vendor_account_not_found")
    assert [v["id"] for v in tenant.get(base).json()["data"]] == [second["id"]]


def test_an_identifier_has_one_owner_per_partner_account(tenant: Tenant) -> None:
    payer_a = make_partner(tenant, display_name="Payer A")
    payer_b = make_partner(tenant, display_name="Payer B")
    acme = make_customer(tenant, "ACME")
    globex = make_customer(tenant, "GLOBEX")
    link(tenant, acme["id"], payer_a["id"], "123456789012")
    for customer in (acme, globex):  # same customer again, or another one: 409
        clash = tenant.post(
            f"/v1/customers/{customer['id']}/vendor-accounts",
            # surrounding blanks are not a way around the rule
            json={"partner_account_id": payer_a["id"], "vendor_identifier": " 123456789012 "},
        )
        assert_problem(clash, 409, "vendor_account_taken")
    # Under another partner account the same identifier is a different account.
    link(tenant, globex["id"], payer_b["id"], "123456789012")
    assert len(tenant.get(f"/v1/customers/{acme['id']}/vendor-accounts").json()["data"]) == 1


def test_unknown_customer_or_partner_account(tenant: Tenant) -> None:
    partner = make_partner(tenant)
    customer = make_customer(tenant)
    body = {"partner_account_id": partner["id"], "vendor_identifier": "123456789012"}
    assert_problem(
        tenant.post("/v1/customers/cus_missing/vendor-accounts", json=body),
        404,
        "customer_not_found",
    )
    assert_problem(
        tenant.post(
            f"/v1/customers/{customer['id']}/vendor-accounts",
            json={**body, "partner_account_id": "pa_missing"},
        ),
        404,
        "partner_account_not_found",
    )
    assert_problem(tenant.get("/v1/customers/cus_missing/vendor-accounts"), 404)
