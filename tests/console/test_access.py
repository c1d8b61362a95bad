"""The console's users and API keys: admin writes, secrets shown once, revocation after a
confirmation page; the API's view of the same keys."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from billbyte.app import create_app
from billbyte.auth.models import ApiKey, MspUser
from billbyte.runtime import Runtime
from tests.conftest import Tenant
from tests.console.admin_helpers import post, staff_client
from tests.web.people import add_staff, csrf_token, signed_in_client

SECRET = re.compile(r'id="secret" class="secret" type="text" readonly value="([^"]+)"')


def _count(runtime: Runtime, model: type) -> int:
    with runtime.uow(read_only=True) as uow:
        return uow.session.scalar(select(func.count()).select_from(model)) or 0


def test_the_key_list_is_the_apis_and_never_shows_a_secret(
    runtime: Runtime, tenant: Tenant
) -> None:
    tenant.issue_key("billing")
    admin = staff_client(runtime, tenant.msp_id)
    page = admin.get("/console/access")
    assert page.status_code == 200
    for key in tenant.get("/v1/api-keys").json()["data"]:
        assert f'data-key="{key["id"]}"' in page.text
        assert f"bb_{key['prefix']}_…" in page.text
    assert tenant.key not in page.text


@pytest.mark.parametrize("role", ["billing", "helpdesk"])
def test_billing_and_help_desk_see_users_but_not_keys(
    runtime: Runtime, tenant: Tenant, role: str
) -> None:
    page = staff_client(runtime, tenant.msp_id, role).get("/console/access")
    assert page.status_code == 200
    assert "Only an admin may see the API keys" in page.text
    assert "data-key=" not in page.text
    # the API says the same for a key of that role
    key = tenant.issue_key(role)
    assert (
        tenant.client.get("/v1/api-keys", headers={"Authorization": f"Bearer {key}"}).status_code
        == 403
    )


def test_issuing_a_key_shows_its_secret_once_and_the_secret_works(
    runtime: Runtime, tenant: Tenant
) -> None:
    admin = staff_client(runtime, tenant.msp_id)
    response = post(admin, "/console/access/keys", {"name": "ci", "role": "billing"})
    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"
    found = SECRET.search(response.text)
    assert found
    secret = found.group(1)
    me = tenant.client.get("/v1/price-plans", headers={"Authorization": f"Bearer {secret}"})
    assert me.status_code == 200  # a real key
    assert secret not in admin.get("/console/access").text  # never again
    keys = {k["name"]: k for k in tenant.get("/v1/api-keys").json()["data"]}
    assert keys["ci"]["role"] == "billing" and secret.startswith(f"bb_{keys['ci']['prefix']}_")


def test_revoking_asks_first_then_the_key_stops_working(runtime: Runtime, tenant: Tenant) -> None:
    secret = tenant.issue_key("billing")
    key_id = next(
        k["id"] for k in tenant.get("/v1/api-keys").json()["data"] if k["name"] == "billing"
    )
    admin = staff_client(runtime, tenant.msp_id)
    confirm = admin.get(f"/console/access/keys/{key_id}/revoke")
    assert confirm.status_code == 200 and "Revoke the API key billing?" in confirm.text
    assert (
        tenant.client.get(
            "/v1/price-plans", headers={"Authorization": f"Bearer {secret}"}
        ).status_code
        == 200
    )
    done = post(admin, f"/console/access/keys/{key_id}/revoke")
    assert done.status_code == 303
    assert (
        tenant.client.get(
            "/v1/price-plans", headers={"Authorization": f"Bearer {secret}"}
        ).status_code
        == 401
    )


def test_adding_a_user_shows_a_sign_in_link_that_sets_a_password(
    runtime: Runtime, tenant: Tenant
) -> None:
    admin = staff_client(runtime, tenant.msp_id)
    response = post(admin, "/console/access/users", {"email": "New@MSP.example", "role": "billing"})
    assert response.status_code == 200, response.text
    found = SECRET.search(response.text)
    assert found and "/console/reset/" in found.group(1)
    path = found.group(1).split("://", 1)[-1].split("/", 1)[1]
    fresh = TestClient(create_app(runtime))
    form = fresh.get(f"/{path}")
    assert form.status_code == 200
    set_password = fresh.post(
        f"/{path}",
        data={
            "password": "a long new password 123",
            "confirm": "a long new password 123",
            "csrf_token": csrf_token(form.text),
        },
        follow_redirects=False,
    )
    assert set_password.status_code == 303
    page = admin.get("/console/access").text
    assert "new@msp.example" in page
    # the same address again is a 409 page, nothing added
    users = _count(runtime, MspUser)
    again = post(admin, "/console/access/users", {"email": "new@msp.example", "role": "billing"})
    assert again.status_code == 409 and _count(runtime, MspUser) == users


def test_disable_enable_and_role_change(runtime: Runtime, tenant: Tenant) -> None:
    other = add_staff(runtime, tenant.msp_id, "billing")
    admin = staff_client(runtime, tenant.msp_id)
    assert post(admin, f"/console/access/users/{other.id}/disable").status_code == 303
    with runtime.uow(read_only=True) as uow:
        assert uow.session.get(MspUser, other.id).disabled_at is not None  # type: ignore[union-attr]
    assert post(admin, f"/console/access/users/{other.id}/enable").status_code == 303
    assert (
        post(admin, f"/console/access/users/{other.id}/role", {"role": "helpdesk"}).status_code
        == 303
    )
    bad = post(admin, f"/console/access/users/{other.id}/role", {"role": "owner"})
    assert bad.status_code == 422
    with runtime.uow(read_only=True) as uow:
        user = uow.session.get(MspUser, other.id)
        assert user is not None and user.disabled_at is None and user.role == "helpdesk"


def test_an_admin_cannot_disable_themself(runtime: Runtime, tenant: Tenant) -> None:
    me = add_staff(runtime, tenant.msp_id, "admin", email="me@msp.example")
    client = signed_in_client(TestClient(create_app(runtime)), "console", me)
    assert post(client, f"/console/access/users/{me.id}/disable").status_code == 409


def test_bad_key_input_is_a_422_page_and_nothing_is_issued(
    runtime: Runtime, tenant: Tenant
) -> None:
    admin = staff_client(runtime, tenant.msp_id)
    keys = _count(runtime, ApiKey)
    for data in (
        {"name": "", "role": "billing"},
        {"name": "x", "role": "root"},
        {"name": "x" * 201, "role": "admin"},
    ):
        response = post(admin, "/console/access/keys", data)
        assert response.status_code == 422, data
    assert _count(runtime, ApiKey) == keys
