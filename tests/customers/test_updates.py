"""PATCH /v1/customers/{id}: only the fields sent change, with the same validation as POST."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

import pytest

from tests.api.factories import assert_problem, make_customer
from tests.conftest import Tenant

FULL = {
    "name": "Acme Robotics AG",
    "currency": "CHF",
    "country": "CH",
    "locale": "de_CH",
    "billing_cycle": "quarterly",
    "billing_anchor_day": 15,
    "credit_limit": "2500.75",
    "vendors": ["gcp", "aws"],
    "metadata": {"crm": "42"},
}
VOLATILE = ("updated_at",)


def _without(record: dict[str, Any], *names: str) -> dict[str, Any]:
    return {k: v for k, v in record.items() if k not in (*names, *VOLATILE)}


@pytest.fixture
def customer(tenant: Tenant) -> dict[str, Any]:
    created = make_customer(tenant, "ACME-1", **FULL)
    assert created["vendors"] == ["aws", "gcp"]  # a set, kept sorted
    return dict(tenant.get(f"/v1/customers/{created['id']}").json())


PATCHES: list[tuple[dict[str, Any], dict[str, Any]]] = [
    ({"name": "Acme Holding"}, {"name": "Acme Holding"}),
    ({"currency": "usd"}, {"currency": "USD"}),
    ({"country": "at"}, {"country": "AT"}),
    ({"country": None}, {"country": None}),
    ({"locale": "fr-CH"}, {"locale": "fr_CH"}),
    ({"billing_cycle": "annual"}, {"billing_cycle": "annual"}),
    ({"billing_anchor_day": 28}, {"billing_anchor_day": 28}),
    ({"billing_anchor_day": 1}, {"billing_anchor_day": 1}),
    ({"credit_limit": None}, {"credit_limit": None}),
    ({"vendors": ["microsoft365", "azure", "azure"]}, {"vendors": ["azure", "microsoft365"]}),
    ({"vendors": []}, {"vendors": []}),
    ({"metadata": {"crm": "43", "tier": "gold"}}, {"metadata": {"crm": "43", "tier": "gold"}}),
]


def test_patch_changes_only_the_fields_sent(tenant: Tenant) -> None:
    for n, (change, expected) in enumerate(PATCHES):
        created = make_customer(tenant, f"PATCH-{n}", **FULL)
        url = f"/v1/customers/{created['id']}"
        customer = tenant.get(url).json()
        response = tenant.patch(url, json=change)
        assert response.status_code == 200, (change, response.text)
        # Adding vendors also starts provisioning on them: vendor_states changes with them.
        follows = ("vendor_states",) if "vendors" in change else ()
        for body in (response.json(), tenant.get(url).json()):
            assert {k: body[k] for k in expected} == expected, change
            assert _without(body, *expected, *follows) == _without(customer, *expected, *follows), (
                change
            )
            updated = datetime.fromisoformat(body["updated_at"])
            assert updated >= datetime.fromisoformat(customer["updated_at"])


def test_credit_limit_can_be_set_cleared_and_set_again(
    tenant: Tenant, customer: dict[str, Any]
) -> None:
    url = f"/v1/customers/{customer['id']}"
    assert Decimal(customer["credit_limit"]) == Decimal("2500.75")
    assert tenant.patch(url, json={"credit_limit": None}).json()["credit_limit"] is None
    assert tenant.get(url).json()["credit_limit"] is None
    again = tenant.patch(url, json={"credit_limit": "0"})
    assert again.status_code == 200 and Decimal(again.json()["credit_limit"]) == 0
    big = tenant.patch(url, json={"credit_limit": "99999999999999999999.999999999999999999"})
    assert big.status_code == 200
    assert Decimal(tenant.get(url).json()["credit_limit"]) == Decimal(
        "99999999999999999999.999999999999999999"
    )


def test_invalid_patch_changes_nothing(tenant: Tenant, customer: dict[str, Any]) -> None:
    url = f"/v1/customers/{customer['id']}"
    # One bad field spoils the whole patch: the valid name is not applied either.
    response = tenant.patch(url, json={"name": "Partial", "currency": "XYZ"})
    problem = assert_problem(response, 422, "validation_error")
    assert [e["field"] for e in problem["errors"]] == ["currency"]
    bad_null = tenant.patch(url, json={"name": "Partial", "billing_cycle": None})
    assert_problem(bad_null, 422, "validation_error")
    assert tenant.get(url).json() == customer


def test_empty_patch_is_a_no_op(tenant: Tenant, customer: dict[str, Any]) -> None:
    url = f"/v1/customers/{customer['id']}"
    events = len(tenant.get("/v1/audit-events", params={"limit": 500}).json()["data"])
    response = tenant.patch(url, json={})
    assert response.status_code == 200
    assert _without(response.json()) == _without(customer)
    # Re-sending current values is not a change worth auditing either.
    same = tenant.patch(url, json={"name": customer["name"], "currency": "chf"})
    assert same.status_code == 200
    assert len(tenant.get("/v1/audit-events", params={"limit": 500}).json()["data"]) == events


def test_status_and_identity_are_not_patchable(tenant: Tenant, customer: dict[str, Any]) -> None:
    url = f"/v1/customers/{customer['id']}"
    for change in ({"status": "suspended"}, {"id": "cus_other"}, {"external_id": "ACME-2"}):
        assert_problem(tenant.patch(url, json=change), 422, "validation_error")
    assert tenant.get(url).json() == customer


def test_defaults_on_create(tenant: Tenant) -> None:
    response = tenant.post(
        "/v1/customers", json={"external_id": "MIN-1", "name": "Minimal", "currency": "jpy"}
    )
    assert response.status_code == 201, response.text
    body = response.json()
    expected: dict[str, Any] = {
        "object": "customer",
        "external_id": "MIN-1",
        "name": "Minimal",
        "currency": "JPY",
        "country": None,
        "locale": "en",
        "billing_cycle": "monthly",
        "billing_anchor_day": 1,
        "credit_limit": None,
        "vendors": [],
        "status": "active",
        "metadata": {},
    }
    assert {k: body[k] for k in expected} == expected
    assert body["id"].startswith("cus_")
    assert body["created_at"].endswith("Z") or body["created_at"].endswith("+00:00")
