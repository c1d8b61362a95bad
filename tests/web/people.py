"""Builders for the people who use the pages: staff with a console password, a customer's
portal user, and signing them in through the real sign-in form (tests/web, tests/portal,
tests/console and tests/browser use these)."""

from __future__ import annotations

import re
from dataclasses import dataclass

import httpx
from fastapi.testclient import TestClient

from billbyte.auth.models import MspUser, PortalUser
from billbyte.auth.passwords import hash_password
from billbyte.runtime import Runtime

PASSWORD = "correct horse battery staple"
_HIDDEN = re.compile(r'name="csrf_token" value="([^"]*)"')


@dataclass(frozen=True)
class Person:
    id: str
    email: str
    password: str = PASSWORD


def add_staff(
    runtime: Runtime, msp_id: str, role: str = "admin", email: str | None = None
) -> Person:
    address = email or f"{role}-{msp_id[-6:]}@msp.example"
    with runtime.uow() as uow:
        user = MspUser(
            msp_id=msp_id,
            email=address.lower(),
            role=role,
            name=role.title(),
            password_hash=hash_password(PASSWORD),
        )
        uow.session.add(user)
        uow.session.flush()
        person = Person(user.id, user.email)
        uow.commit()
    return person


def add_portal_user(
    runtime: Runtime, msp_id: str, customer_id: str, email: str | None = None
) -> Person:
    address = email or f"finance-{customer_id[-6:]}@customer.example"
    with runtime.uow() as uow:
        user = PortalUser(
            msp_id=msp_id,
            customer_id=customer_id,
            email=address.lower(),
            name="Finance",
            password_hash=hash_password(PASSWORD),
        )
        uow.session.add(user)
        uow.session.flush()
        person = Person(user.id, user.email)
        uow.commit()
    return person


def csrf_token(html: str) -> str:
    found = _HIDDEN.search(html)
    assert found, "the page has no form with a csrf_token"
    return found.group(1)


def sign_in(
    client: TestClient, audience: str, email: str, password: str = PASSWORD, next: str = ""
) -> httpx.Response:
    """Post the sign-in form as a browser does (the form's token and its cookie)."""
    page = client.get(f"/{audience}/sign-in")
    assert page.status_code == 200, page.text
    return client.post(
        f"/{audience}/sign-in",
        data={
            "email": email,
            "password": password,
            "csrf_token": csrf_token(page.text),
            "next": next,
        },
        follow_redirects=False,
    )


def signed_in_client(client: TestClient, audience: str, person: Person) -> TestClient:
    response = sign_in(client, audience, person.email, person.password)
    assert response.status_code == 303, response.text
    return client
