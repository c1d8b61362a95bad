"""Signing in to the console and the portal: argon2 passwords, database sessions, CSRF on
every form, lockout, reset links, sign-out everywhere, and areas that never mix."""

from __future__ import annotations

from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from billbyte.app import create_app
from billbyte.auth import web_sessions
from billbyte.auth.models import MspUser, PortalUser, WebSession
from billbyte.kit.clock import utcnow
from billbyte.kit.crypto import hash_secret
from billbyte.runtime import Runtime
from tests.api.factories import make_customer
from tests.conftest import Tenant
from tests.web.people import (
    PASSWORD,
    add_portal_user,
    add_staff,
    csrf_token,
    sign_in,
    signed_in_client,
)


def fresh(runtime: Runtime) -> TestClient:
    return TestClient(create_app(runtime), raise_server_exceptions=False)


def test_the_stored_password_is_an_argon2id_hash(runtime: Runtime, tenant: Tenant) -> None:
    person = add_staff(runtime, tenant.msp_id)
    with runtime.uow(read_only=True) as uow:
        stored = uow.session.get(MspUser, person.id)
        assert stored is not None and stored.password_hash is not None
        assert stored.password_hash.startswith("$argon2id$")
        assert PASSWORD not in stored.password_hash


def test_staff_sign_in_opens_a_database_session_and_the_console(
    runtime: Runtime, client: TestClient, tenant: Tenant
) -> None:
    person = add_staff(runtime, tenant.msp_id)
    response = sign_in(client, "console", person.email.upper())  # addresses ignore case
    assert response.status_code == 303
    token = client.cookies.get("bb_console")
    assert token
    with runtime.uow(read_only=True) as uow:
        row = uow.session.scalar(select(WebSession).where(WebSession.user_id == person.id))
        assert row is not None and row.token_hash == hash_secret(token)  # only the hash stored
    assert client.get("/console", follow_redirects=False).status_code == 303


def test_a_wrong_password_is_refused_without_saying_which_part_was_wrong(
    runtime: Runtime, client: TestClient, tenant: Tenant
) -> None:
    person = add_staff(runtime, tenant.msp_id)
    wrong = sign_in(client, "console", person.email, "not the password at all")
    unknown = sign_in(client, "console", "nobody@msp.example", PASSWORD)
    assert wrong.status_code == unknown.status_code == 401
    assert "Wrong e-mail address or password." in wrong.text
    assert "Wrong e-mail address or password." in unknown.text
    assert client.cookies.get("bb_console") is None


def test_repeated_failures_lock_even_the_right_password_until_a_reset(
    runtime: Runtime, client: TestClient, tenant: Tenant
) -> None:
    person = add_staff(runtime, tenant.msp_id)
    for _ in range(web_sessions.MAX_FAILED_SIGN_INS - 1):
        assert sign_in(client, "console", person.email, "guess guess guess").status_code == 401
    locked = sign_in(client, "console", person.email, "guess guess guess")
    assert locked.status_code == 429
    assert "locked" in locked.text
    assert sign_in(client, "console", person.email, PASSWORD).status_code == 429

    # An admin's reset link unlocks it: the user chooses a new password and signs in.
    with runtime.uow() as uow:
        user = uow.session.get(MspUser, person.id)
        assert user is not None
        token = web_sessions.issue_reset(uow.session, "console", user, "test")
        uow.commit()
    form = client.get(f"/console/reset/{token}")
    assert form.status_code == 200 and person.email in form.text
    new_password = "a brand new passphrase"
    done = client.post(
        f"/console/reset/{token}",
        data={
            "password": new_password,
            "confirm": new_password,
            "csrf_token": csrf_token(form.text),
        },
        follow_redirects=False,
    )
    assert done.status_code == 303
    assert sign_in(client, "console", person.email, new_password).status_code == 303
    # the link was one-time
    assert client.get(f"/console/reset/{token}").status_code == 404


def test_the_lock_expires(runtime: Runtime, tenant: Tenant) -> None:
    person = add_staff(runtime, tenant.msp_id)
    with runtime.uow() as uow:
        user = uow.session.get(MspUser, person.id)
        assert user is not None
        user.locked_until = utcnow() - timedelta(seconds=1)
        uow.commit()
    with runtime.uow() as uow:
        result = web_sessions.sign_in(uow.session, "console", person.email, PASSWORD)
    assert result.token is not None


def test_a_weak_password_is_refused_and_the_link_stays_usable(
    runtime: Runtime, client: TestClient, tenant: Tenant
) -> None:
    person = add_staff(runtime, tenant.msp_id)
    with runtime.uow() as uow:
        user = uow.session.get(MspUser, person.id)
        assert user is not None
        token = web_sessions.issue_reset(uow.session, "console", user, "test")
        uow.commit()
    form = client.get(f"/console/reset/{token}")
    weak = client.post(
        f"/console/reset/{token}",
        data={"password": "short", "confirm": "short", "csrf_token": csrf_token(form.text)},
    )
    assert weak.status_code == 422 and "12 characters" in weak.text
    assert client.get(f"/console/reset/{token}").status_code == 200


def test_a_sign_in_post_without_the_form_token_is_refused(
    runtime: Runtime, client: TestClient, tenant: Tenant
) -> None:
    person = add_staff(runtime, tenant.msp_id)
    client.get("/console/sign-in")  # the cookie is set, but the form field is missing
    response = client.post(
        "/console/sign-in",
        data={"email": person.email, "password": PASSWORD},
        follow_redirects=False,
    )
    assert response.status_code == 403
    assert client.cookies.get("bb_console") is None


def test_a_signed_in_post_without_the_csrf_token_is_refused(
    runtime: Runtime, client: TestClient, tenant: Tenant
) -> None:
    person = add_staff(runtime, tenant.msp_id)
    signed_in_client(client, "console", person)
    refused = client.post("/console/sign-out", data={}, follow_redirects=False)
    assert refused.status_code == 403
    assert "expired or did not come from this site" in refused.text
    forged = client.post("/console/sign-out", data={"csrf_token": "x" * 43}, follow_redirects=False)
    assert forged.status_code == 403
    assert client.get("/console/account").status_code == 200  # still signed in


def test_sign_out_everywhere_ends_every_browser(runtime: Runtime, tenant: Tenant) -> None:
    person = add_staff(runtime, tenant.msp_id)
    with fresh(runtime) as laptop, fresh(runtime) as phone:
        signed_in_client(laptop, "console", person)
        signed_in_client(phone, "console", person)
        account = laptop.get("/console/account")
        assert account.status_code == 200
        out = laptop.post(
            "/console/sign-out-everywhere",
            data={"csrf_token": csrf_token(account.text)},
            follow_redirects=False,
        )
        assert out.status_code == 303
        for browser in (laptop, phone):
            again = browser.get("/console", follow_redirects=False)
            assert again.status_code == 303
            assert again.headers["location"].startswith("/console/sign-in")


def test_a_portal_session_cannot_reach_the_console(
    runtime: Runtime, client: TestClient, tenant: Tenant
) -> None:
    customer = make_customer(tenant)
    person = add_portal_user(runtime, tenant.msp_id, customer["id"])
    signed_in_client(client, "portal", person)
    assert client.get("/portal").status_code == 200
    # the cookie is scoped to /portal; even sent to the console by hand it is refused
    token = client.cookies.get("bb_portal")
    with fresh(runtime) as other:
        other.cookies.set("bb_console", token or "")
        response = other.get("/console/account", follow_redirects=False)
        assert response.status_code == 303
        assert response.headers["location"].startswith("/console/sign-in")
    # and a staff member's password does not open the portal
    staff = add_staff(runtime, tenant.msp_id)
    assert sign_in(client, "portal", staff.email).status_code == 401


def test_a_disabled_portal_user_is_signed_out(
    runtime: Runtime, client: TestClient, tenant: Tenant
) -> None:
    customer = make_customer(tenant)
    person = add_portal_user(runtime, tenant.msp_id, customer["id"])
    signed_in_client(client, "portal", person)
    disabled = tenant.post(f"/v1/portal-users/{person.id}/disable")
    assert disabled.status_code == 200, disabled.text
    assert client.get("/portal", follow_redirects=False).status_code == 303
    assert sign_in(client, "portal", person.email).status_code == 401


def test_an_expired_session_is_not_accepted(
    runtime: Runtime, client: TestClient, tenant: Tenant
) -> None:
    person = add_staff(runtime, tenant.msp_id)
    signed_in_client(client, "console", person)
    with runtime.uow() as uow:
        for row in uow.session.scalars(select(WebSession)):
            row.expires_at = utcnow() - timedelta(minutes=1)
        uow.commit()
    assert client.get("/console", follow_redirects=False).status_code == 303


@pytest.mark.parametrize(
    "target, lands",
    [
        ("/console/customers", "/console/customers"),
        ("https://evil.example/", "/console"),
        ("//evil.example/console", "/console"),
        ("/consolex", "/console"),
        ("/portal", "/console"),
    ],
)
def test_after_sign_in_only_a_page_of_the_same_area_is_followed(
    runtime: Runtime, client: TestClient, tenant: Tenant, target: str, lands: str
) -> None:
    person = add_staff(runtime, tenant.msp_id)
    response = sign_in(client, "console", person.email, next=target)
    assert response.status_code == 303
    assert response.headers["location"] == lands


def test_invited_portal_user_sets_a_password_from_the_link(
    runtime: Runtime, client: TestClient, tenant: Tenant
) -> None:
    customer = make_customer(tenant)
    invited = tenant.post(
        f"/v1/customers/{customer['id']}/portal-users",
        json={"email": "Ana@Customer.example", "name": "Ana"},
    )
    assert invited.status_code == 201, invited.text
    body = invited.json()
    assert body["email"] == "ana@customer.example"
    path = body["sign_in_link"].split("://", 1)[1].split("/", 1)[1]
    form = client.get(f"/{path}")
    assert form.status_code == 200 and "ana@customer.example" in form.text
    chosen = "my own long passphrase"
    client.post(
        f"/{path}",
        data={"password": chosen, "confirm": chosen, "csrf_token": csrf_token(form.text)},
    )
    assert sign_in(client, "portal", "ana@customer.example", chosen).status_code == 303
    again = tenant.post(
        f"/v1/customers/{customer['id']}/portal-users", json={"email": "ana@customer.example"}
    )
    assert again.status_code == 409


def test_portal_users_of_another_msp_are_not_found(
    runtime: Runtime, tenant: Tenant, other_tenant: Tenant
) -> None:
    customer = make_customer(tenant)
    person = add_portal_user(runtime, tenant.msp_id, customer["id"])
    assert other_tenant.get(f"/v1/customers/{customer['id']}/portal-users").status_code == 404
    for action in ("disable", "enable", "sign-in-link"):
        assert other_tenant.post(f"/v1/portal-users/{person.id}/{action}").status_code == 404
    assert (
        other_tenant.post(
            f"/v1/customers/{customer['id']}/portal-users", json={"email": "x@y.example"}
        ).status_code
        == 404
    )
    with runtime.uow(read_only=True) as uow:
        assert (
            uow.session.scalar(select(PortalUser).where(PortalUser.email == "x@y.example")) is None
        )


def test_a_help_desk_key_cannot_invite(runtime: Runtime, tenant: Tenant) -> None:
    customer = make_customer(tenant)
    helpdesk = tenant.issue_key("helpdesk")
    response = tenant.client.post(
        f"/v1/customers/{customer['id']}/portal-users",
        json={"email": "a@b.example"},
        headers={"Authorization": f"Bearer {helpdesk}"},
    )
    assert response.status_code == 403


def test_pages_forbid_inline_scripts_and_caching(client: TestClient) -> None:
    page = client.get("/portal/sign-in")
    policy = page.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "unsafe-inline" not in policy.split("style-src")[0]
    assert page.headers["cache-control"] == "no-store"
    assert "<script>" not in page.text  # no inline script element


def test_an_unknown_page_is_an_html_404(client: TestClient) -> None:
    response = client.get("/portal/nothing-here")
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("text/html")


def test_plotly_is_served_from_the_package(client: TestClient) -> None:
    response = client.get("/static/vendor/plotly.min.js")
    assert response.status_code == 200
    assert b"plotly.js" in response.content[:2000]
    assert client.get("/static/web/app.css").status_code == 200


def test_the_sign_in_page_speaks_german_to_a_german_browser(client: TestClient) -> None:
    page = client.get("/portal/sign-in", headers={"Accept-Language": "de-DE,de;q=0.9"})
    assert '<html lang="de">' in page.text
    assert "E-Mail-Adresse" in page.text and "Anmelden" in page.text
    english = client.get("/portal/sign-in", headers={"Accept-Language": "fr-FR"})
    assert "E-mail address" in english.text
