"""Another MSP's ids are invisible: 404 (never 403, never the data) on every endpoint."""

from __future__ import annotations

from typing import Any

import pytest

from tests.api.factories import (
    AWS_SECRET,
    assert_problem,
    build_world,
    call,
    customer_body,
    fill,
    link,
    make_customer,
    make_partner,
)
from tests.conftest import Tenant

# Every endpoint that takes an id: (method, url template, body template, success status).
# "{own_partner_account}" is the *caller's* partner account, so that a 404 can only come
# from the id in the URL.
ID_ENDPOINTS: list[tuple[str, str, Any, int]] = [
    ("GET", "/v1/partner-accounts/{partner_account}", None, 200),
    ("PATCH", "/v1/partner-accounts/{partner_account}", {"display_name": "hijacked"}, 200),
    ("GET", "/v1/customers/{customer}", None, 200),
    ("PATCH", "/v1/customers/{customer}", {"name": "hijacked"}, 200),
    (
        "POST",
        "/v1/customers/{customer}/vendor-accounts",
        {"partner_account_id": "{own_partner_account}", "vendor_identifier": "999988887777"},
        201,
    ),
    ("GET", "/v1/customers/{customer}/vendor-accounts", None, 200),
    ("GET", "/v1/customers/{customer}/vendor-accounts/{vendor_account}", None, 200),
    ("DELETE", "/v1/customers/{customer}/vendor-accounts/{vendor_account}", None, 204),
    ("POST", "/v1/api-keys/{api_key}/revoke", None, 200),
]
IDS = [f"{m} {u}" for m, u, _, _ in ID_ENDPOINTS]


@pytest.fixture
def worlds(tenant: Tenant, other_tenant: Tenant) -> tuple[dict[str, str], dict[str, str]]:
    mine = build_world(tenant, "A")
    theirs = build_world(other_tenant, "B")
    return mine, theirs


@pytest.mark.parametrize(("method", "template", "body", "ok"), ID_ENDPOINTS, ids=IDS)
def test_another_msps_id_is_404_with_no_data(
    tenant: Tenant,
    other_tenant: Tenant,
    worlds: tuple[dict[str, str], dict[str, str]],
    method: str,
    template: str,
    body: Any,
    ok: int,
) -> None:
    victim, intruder = worlds
    ids = {**victim, "own_partner_account": intruder["partner_account"]}
    response = call(other_tenant, method, fill(template, ids), fill(body, ids))
    problem = assert_problem(response, 404)
    assert problem["code"].endswith("not_found")
    for secret in (victim["customer_name"], victim["external_id"], "A secret payer", AWS_SECRET):
        assert secret not in response.text

    # Indistinguishable from an id that never existed.
    never = {k: v + "X" if k != "own_partner_account" else v for k, v in ids.items()}
    unknown = call(other_tenant, method, fill(template, never), fill(body, never))
    assert unknown.status_code == 404
    assert unknown.json()["code"] == problem["code"]

    # The same request by the owner works: the 404 above is about tenancy, not the URL.
    own = {**victim, "own_partner_account": victim["partner_account"]}
    assert call(tenant, method, fill(template, own), fill(body, own)).status_code == ok


def test_failed_intrusions_change_nothing(
    tenant: Tenant, other_tenant: Tenant, worlds: tuple[dict[str, str], dict[str, str]]
) -> None:
    victim, intruder = worlds
    before = {
        "customer": tenant.get(f"/v1/customers/{victim['customer']}").json(),
        "partner": tenant.get(f"/v1/partner-accounts/{victim['partner_account']}").json(),
        "links": tenant.get(f"/v1/customers/{victim['customer']}/vendor-accounts").json(),
        "audit": tenant.get("/v1/audit-events", params={"limit": 500}).json(),
    }
    ids = {**victim, "own_partner_account": intruder["partner_account"]}
    for method, template, body, _ in ID_ENDPOINTS:
        assert call(other_tenant, method, fill(template, ids), fill(body, ids)).status_code == 404
    after = {
        "customer": tenant.get(f"/v1/customers/{victim['customer']}").json(),
        "partner": tenant.get(f"/v1/partner-accounts/{victim['partner_account']}").json(),
        "links": tenant.get(f"/v1/customers/{victim['customer']}/vendor-accounts").json(),
        "audit": tenant.get("/v1/audit-events", params={"limit": 500}).json(),
    }
    assert after == before
    # The spare key the intruder tried to revoke still works.
    spare = Tenant(tenant.msp_id, victim["api_key_secret"], tenant.client)
    assert spare.get("/v1/customers").status_code == 200


def test_lists_never_show_another_msps_objects(
    tenant: Tenant, other_tenant: Tenant, worlds: tuple[dict[str, str], dict[str, str]]
) -> None:
    mine, theirs = worlds

    def ids_of(who: Tenant, url: str, **params: Any) -> set[str]:
        response = who.get(url, params={"limit": 500, **params})
        assert response.status_code == 200, response.text
        return {item["id"] for item in response.json()["data"]}

    for who, own, other in ((tenant, mine, theirs), (other_tenant, theirs, mine)):
        assert ids_of(who, "/v1/customers") == {own["customer"]}
        assert ids_of(who, "/v1/partner-accounts") == {own["partner_account"]}
        api_keys = ids_of(who, "/v1/api-keys")
        assert own["api_key"] in api_keys and other["api_key"] not in api_keys
        assert len(api_keys) == 2  # the admin key from set-up and the spare one
        audit = who.get("/v1/audit-events", params={"limit": 500}).json()["data"]
        targets = {event["target_id"] for event in audit}
        assert own["customer"] in targets
        assert not targets & {other["customer"], other["partner_account"], other["api_key"]}
        assert other["customer_name"] not in str(audit)
        # Filters do not open a door either.
        assert ids_of(who, "/v1/customers", external_id=other["external_id"]) == set()
        assert ids_of(who, "/v1/audit-events", target_id=other["customer"]) == set()


def test_linking_another_msps_partner_account_is_404(tenant: Tenant, other_tenant: Tenant) -> None:
    theirs = make_partner(other_tenant)
    customer = make_customer(tenant)
    response = tenant.post(
        f"/v1/customers/{customer['id']}/vendor-accounts",
        json={"partner_account_id": theirs["id"], "vendor_identifier": "123456789012"},
    )
    assert_problem(response, 404, "partner_account_not_found")
    assert tenant.get(f"/v1/customers/{customer['id']}/vendor-accounts").json()["data"] == []


def test_vendor_account_of_another_customer_is_404(tenant: Tenant) -> None:
    partner = make_partner(tenant)
    first = make_customer(tenant, "C-1")
    second = make_customer(tenant, "C-2")
    linked = link(tenant, first["id"], partner["id"], "123456789012")
    url = f"/v1/customers/{second['id']}/vendor-accounts/{linked['id']}"
    assert_problem(tenant.get(url), 404, "vendor_account_not_found")
    assert_problem(tenant.delete(url), 404, "vendor_account_not_found")
    own = tenant.get(f"/v1/customers/{first['id']}/vendor-accounts/{linked['id']}")
    assert own.status_code == 200


def test_external_ids_and_vendor_identifiers_are_per_msp(
    tenant: Tenant, other_tenant: Tenant
) -> None:
    mine = tenant.post("/v1/customers", json=customer_body("SHARED-1"))
    theirs = other_tenant.post("/v1/customers", json=customer_body("SHARED-1", name="Other"))
    assert mine.status_code == 201 and theirs.status_code == 201
    assert mine.json()["id"] != theirs.json()["id"]
    assert theirs.json()["name"] == "Other"
    # Both MSPs may map the same AWS account id under their own partner accounts.
    link(tenant, mine.json()["id"], make_partner(tenant)["id"], "123456789012")
    link(other_tenant, theirs.json()["id"], make_partner(other_tenant)["id"], "123456789012")
