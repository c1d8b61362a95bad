"""Shared by the admin areas' console tests: a signed-in staff client per role, and
posting a page's form with its CSRF token."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from billbyte.app import create_app
from billbyte.runtime import Runtime
from tests.web.people import add_staff, csrf_token, signed_in_client


def staff_client(runtime: Runtime, msp_id: str, role: str = "admin") -> TestClient:
    """A new browser-like client signed in to the console as a fresh ``role`` user."""
    client = TestClient(create_app(runtime), raise_server_exceptions=False)
    return signed_in_client(client, "console", add_staff(runtime, msp_id, role))


def token_of(client: TestClient, page: str = "/console/pricing") -> str:
    response = client.get(page)
    assert response.status_code == 200, response.text
    return csrf_token(response.text)


def post(client: TestClient, url: str, data: dict[str, Any] | None = None, **kw: Any) -> Any:
    """POST a console form with the session's CSRF token (taken from a console page)."""
    body = {"csrf_token": token_of(client), **(data or {})}
    return client.post(url, data=body, follow_redirects=False, **kw)
