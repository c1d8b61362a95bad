"""Roles: help desk reads only; billing writes but cannot manage keys; admin can."""

from __future__ import annotations

from typing import Any

import pytest

from tests.api.factories import assert_problem, build_world, call, customer_body, fill
from tests.conftest import Tenant

READS: list[tuple[str, str]] = [
    ("GET", "/v1/partner-accounts"),
    ("GET", "/v1/partner-accounts/{partner_account}"),
    ("GET", "/v1/customers"),
    ("GET", "/v1/customers/{customer}"),
    ("GET", "/v1/customers/{customer}/vendor-accounts"),
    ("GET", "/v1/customers/{customer}/vendor-accounts/{vendor_account}"),
    ("GET", "/v1/audit-events"),
]
WRITES: list[tuple[str, str, Any, int]] = [
    ("POST", "/v1/partner-accounts", {"vendor": "azure", "display_name": "Plan"}, 201),
    ("PATCH", "/v1/partner-accounts/{partner_account}", {"display_name": "renamed"}, 200),
    ("POST", "/v1/customers", customer_body("ROLE-1"), 201),
    ("PATCH", "/v1/customers/{customer}", {"credit_limit": "10"}, 200),
    (
        "POST",
        "/v1/customers/{customer}/vendor-accounts",
        {"partner_account_id": "{partner_account}", "vendor_identifier": "777766665555"},
        201,
    ),
    ("DELETE", "/v1/customers/{customer}/vendor-accounts/{vendor_account}", None, 204),
]
KEY_ADMIN: list[tuple[str, str, Any, int]] = [
    ("GET", "/v1/api-keys", None, 200),
    ("POST", "/v1/api-keys", {"name": "escalate", "role": "admin"}, 201),
    ("POST", "/v1/api-keys/{api_key}/revoke", None, 200),
]


def _as(tenant: Tenant, role: str) -> Tenant:
    return Tenant(tenant.msp_id, tenant.issue_key(role), tenant.client)


def _snapshot(tenant: Tenant) -> dict[str, Any]:
    """Everything an MSP has, as the admin sees it."""
    customers = tenant.get("/v1/customers", params={"limit": 500}).json()["data"]
    return {
        "customers": customers,
        "links": {
            c["id"]: tenant.get(f"/v1/customers/{c['id']}/vendor-accounts").json()
            for c in customers
        },
        "partners": tenant.get("/v1/partner-accounts", params={"limit": 500}).json(),
        "keys": [
            {k: v for k, v in key.items() if k != "last_used_at"}
            for key in tenant.get("/v1/api-keys").json()["data"]
        ],
        "audit": tenant.get("/v1/audit-events", params={"limit": 500}).json(),
    }


def test_helpdesk_reads_everything_the_admin_reads(tenant: Tenant) -> None:
    ids = build_world(tenant)
    helpdesk = _as(tenant, "helpdesk")
    for method, template in READS:
        response = call(helpdesk, method, fill(template, ids))
        assert response.status_code == 200, (template, response.text)
        assert response.json() == call(tenant, method, fill(template, ids)).json(), template


def test_helpdesk_cannot_write_anything(tenant: Tenant) -> None:
    ids = build_world(tenant)
    helpdesk = _as(tenant, "helpdesk")
    before = _snapshot(tenant)
    for method, template, body, _ in WRITES:
        response = call(helpdesk, method, fill(template, ids), fill(body, ids))
        assert_problem(response, 403, "read_only_role")
    # Posting an existing external_id is not a loophole to read through a write.
    existing = helpdesk.post("/v1/customers", json=customer_body(ids["external_id"]))
    assert_problem(existing, 403, "read_only_role")
    for method, template, body, _ in KEY_ADMIN:
        response = call(helpdesk, method, fill(template, ids), fill(body, ids))
        assert_problem(response, 403, "admin_required")
    assert _snapshot(tenant) == before


@pytest.mark.parametrize("role", ["billing", "admin"])
def test_billing_and_admin_can_write(tenant: Tenant, role: str) -> None:
    ids = build_world(tenant)
    writer = tenant if role == "admin" else _as(tenant, role)
    for method, template, body, status in WRITES:
        response = call(writer, method, fill(template, ids), fill(body, ids))
        assert response.status_code == status, (method, template, response.text)


def test_billing_cannot_manage_api_keys(tenant: Tenant) -> None:
    ids = build_world(tenant)
    billing = _as(tenant, "billing")
    before = _snapshot(tenant)
    for method, template, body, _ in KEY_ADMIN:
        response = call(billing, method, fill(template, ids), fill(body, ids))
        assert_problem(response, 403, "admin_required")
    assert _snapshot(tenant) == before


def test_admin_manages_api_keys(tenant: Tenant) -> None:
    ids = build_world(tenant)
    for method, template, body, status in KEY_ADMIN:
        response = call(tenant, method, fill(template, ids), fill(body, ids))
        assert response.status_code == status, response.text
    issued = tenant.post("/v1/api-keys", json={"name": "robot", "role": "billing"}).json()
    assert issued["role"] == "billing"
    robot = Tenant(tenant.msp_id, issued["secret"], tenant.client)
    assert robot.post("/v1/customers", json=customer_body("ROBOT-1")).status_code == 201
    assert_problem(robot.get("/v1/api-keys"), 403, "admin_required")
