"""401 problem+json for a missing, malformed, wrong or revoked key, on every endpoint."""

from __future__ import annotations

from typing import Any

import pytest

from billbyte.auth.roles import Role
from billbyte.auth.subject import AuthSubject
from billbyte.runtime import Runtime
from billbyte.tenancy import service as tenancy
from tests.api.factories import (
    assert_problem,
    build_world,
    customer_body,
    fill,
    issue_key,
    key_prefix,
)
from tests.conftest import Tenant

# Every authenticated operation, with a body that would succeed for a valid admin key.
ENDPOINTS: list[tuple[str, str, Any]] = [
    ("POST", "/v1/partner-accounts", {"vendor": "gcp", "display_name": "Channel"}),
    ("GET", "/v1/partner-accounts", None),
    ("GET", "/v1/partner-accounts/{partner_account}", None),
    ("PATCH", "/v1/partner-accounts/{partner_account}", {"display_name": "renamed"}),
    ("POST", "/v1/customers", customer_body("NEW-1")),
    ("GET", "/v1/customers", None),
    ("GET", "/v1/customers/{customer}", None),
    ("PATCH", "/v1/customers/{customer}", {"name": "renamed"}),
    (
        "POST",
        "/v1/customers/{customer}/vendor-accounts",
        {"partner_account_id": "{partner_account}", "vendor_identifier": "444455556666"},
    ),
    ("GET", "/v1/customers/{customer}/vendor-accounts", None),
    ("GET", "/v1/customers/{customer}/vendor-accounts/{vendor_account}", None),
    ("DELETE", "/v1/customers/{customer}/vendor-accounts/{vendor_account}", None),
    ("GET", "/v1/audit-events", None),
    ("GET", "/v1/api-keys", None),
    ("POST", "/v1/api-keys", {"name": "ci", "role": "billing"}),
    ("POST", "/v1/api-keys/{api_key}/revoke", None),
]


def _send(
    tenant: Tenant, method: str, url: str, body: Any, headers: dict[str, str], **kw: Any
) -> Any:
    if body is not None:
        kw["json"] = body
    return tenant.client.request(method, url, headers=headers, **kw)


def _revoked_keys(tenant: Tenant, runtime: Runtime) -> dict[str, str]:
    """Two admin keys: one revoked through the API, one through the service the CLI uses."""
    by_api = issue_key(tenant, "admin", "revoked by api")
    assert tenant.post(f"/v1/api-keys/{by_api['id']}/revoke").status_code == 200
    by_cli = issue_key(tenant, "admin", "revoked by cli")
    with runtime.uow() as uow:
        subject = AuthSubject(msp_id=tenant.msp_id, actor="cli", role=Role.ADMIN)
        tenancy.revoke_api_key(uow.session, subject, by_cli["id"])
        uow.commit()
    return {"api": by_api["secret"], "cli": by_cli["secret"]}


@pytest.mark.parametrize(
    ("method", "template", "body"), ENDPOINTS, ids=[f"{m} {u}" for m, u, _ in ENDPOINTS]
)
def test_every_endpoint_refuses_bad_credentials(
    tenant: Tenant, runtime: Runtime, method: str, template: str, body: Any
) -> None:
    ids = build_world(tenant)
    revoked = _revoked_keys(tenant, runtime)
    url, payload = fill(template, ids), fill(body, ids)
    prefix = key_prefix(tenant.key)
    cases: dict[str, tuple[dict[str, str], str]] = {
        "missing": ({}, "missing_api_key"),
        "empty bearer": ({"Authorization": "Bearer "}, "missing_api_key"),
        "not a bearer": ({"Authorization": f"Basic {tenant.key}"}, "missing_api_key"),
        "malformed": ({"Authorization": "Bearer not-a-billbyte-key"}, "invalid_api_key"),
        "no secret": ({"Authorization": f"Bearer bb_{prefix}_"}, "invalid_api_key"),
        "wrong secret": (
            {"Authorization": f"Bearer bb_{prefix}_{'x' * 43}"},
            "invalid_api_key",
        ),
        "unknown prefix": (
            {"Authorization": "Bearer " + tenant.key.replace(prefix, "f" * len(prefix))},
            "invalid_api_key",
        ),
        "revoked via api": ({"Authorization": f"Bearer {revoked['api']}"}, "revoked_api_key"),
        "revoked via cli": ({"Authorization": f"Bearer {revoked['cli']}"}, "revoked_api_key"),
    }
    audit_before = tenant.get("/v1/audit-events", params={"limit": 500}).json()["data"]
    for name, (headers, code) in cases.items():
        response = _send(tenant, method, url, payload, headers)
        problem = assert_problem(response, 401, code)
        assert response.headers.get("www-authenticate") == "Bearer", name
        assert "data" not in problem and "id" not in problem, name
        # With an Idempotency-Key the answer is the same (the middleware must not bypass it).
        keyed = _send(tenant, method, url, payload, {**headers, "Idempotency-Key": f"k-{name}"})
        assert_problem(keyed, 401, code)
    # Nothing happened on the MSP's behalf.
    audit_after = tenant.get("/v1/audit-events", params={"limit": 500}).json()["data"]
    assert audit_after == audit_before
    # And the valid key still does.
    assert _send(tenant, method, url, payload, tenant.headers).status_code < 300


def test_revocation_is_immediate_and_only_for_that_key(tenant: Tenant) -> None:
    spare = issue_key(tenant, "billing")
    spare_tenant = Tenant(tenant.msp_id, spare["secret"], tenant.client)
    assert spare_tenant.get("/v1/customers").status_code == 200
    revoked = tenant.post(f"/v1/api-keys/{spare['id']}/revoke")
    assert revoked.status_code == 200
    assert revoked.json()["revoked_at"] is not None
    assert_problem(spare_tenant.get("/v1/customers"), 401, "revoked_api_key")
    assert tenant.get("/v1/customers").status_code == 200
    listed = {k["id"]: k for k in tenant.get("/v1/api-keys").json()["data"]}
    assert listed[spare["id"]]["revoked_at"] is not None
    # Revoking again is harmless and keeps the first revocation time.
    again = tenant.post(f"/v1/api-keys/{spare['id']}/revoke")
    assert again.status_code == 200
    assert again.json()["revoked_at"] == revoked.json()["revoked_at"]


def test_an_admin_can_revoke_its_own_key(tenant: Tenant) -> None:
    keys = tenant.get("/v1/api-keys").json()["data"]
    (own,) = [k for k in keys if k["prefix"] == key_prefix(tenant.key)]
    assert tenant.post(f"/v1/api-keys/{own['id']}/revoke").status_code == 200
    assert_problem(tenant.get("/v1/customers"), 401, "revoked_api_key")


def test_key_secret_is_shown_once_and_last_use_is_recorded(tenant: Tenant) -> None:
    issued = issue_key(tenant, "helpdesk", "desk")
    assert issued["secret"].startswith(f"bb_{issued['prefix']}_")
    assert issued["last_used_at"] is None and issued["revoked_at"] is None
    listed = tenant.get("/v1/api-keys").json()
    assert issued["secret"] not in str(listed)
    assert all("secret" not in k for k in listed["data"])
    desk = Tenant(tenant.msp_id, issued["secret"], tenant.client)
    assert desk.get("/v1/customers").status_code == 200
    (row,) = [k for k in tenant.get("/v1/api-keys").json()["data"] if k["id"] == issued["id"]]
    assert row["last_used_at"] is not None
    assert row["role"] == "helpdesk" and row["name"] == "desk"


def test_healthz_needs_no_key(client: Any, backend: str) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": backend}
