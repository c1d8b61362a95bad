"""Issue #9 finding 8: no security headers, not even ``Cache-Control: no-store`` on the
response that carries a new API key."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from fastapi.testclient import TestClient

from billbyte.app import create_app
from billbyte.runtime import Runtime
from tests.conftest import Tenant

EVERY_RESPONSE = {
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "content-security-policy": "frame-ancestors 'none'",
    "referrer-policy": "no-referrer",
}


def assert_secured(response: Any, *, api: bool = True) -> None:
    for name, value in EVERY_RESPONSE.items():
        assert response.headers.get(name) == value, (name, response.status_code)
    if api:
        assert response.headers.get("cache-control") == "no-store", response.status_code


def test_a_new_api_key_is_never_cached(tenant: Tenant) -> None:
    response = tenant.post("/v1/api-keys", json={"name": "ci", "role": "billing"})
    assert response.status_code == 201, response.text
    assert response.json()["secret"]
    assert_secured(response)


def test_a_replayed_idempotent_response_is_never_cached(tenant: Tenant) -> None:
    headers = {"Idempotency-Key": "key-for-replay"}
    body = {"name": "ci", "role": "billing"}
    first = tenant.post("/v1/api-keys", json=body, headers=headers)
    replay = tenant.post("/v1/api-keys", json=body, headers=headers)
    assert replay.headers.get("idempotent-replayed") == "true"
    assert replay.json()["secret"] == first.json()["secret"]
    assert_secured(replay)


@pytest.mark.parametrize(
    ("method", "url", "body", "status"),
    [
        ("GET", "/v1/customers", None, 200),
        ("GET", "/v1/customers/cus_does_not_exist", None, 404),
        ("GET", "/v1/no-such-route", None, 404),
        ("POST", "/v1/customers", {"name": ""}, 422),
        ("GET", "/v1/api-keys", None, 200),
    ],
)
def test_api_responses_and_errors(
    tenant: Tenant, method: str, url: str, body: Any, status: int
) -> None:
    response = tenant.client.request(method, url, json=body, headers=tenant.headers)
    assert response.status_code == status, response.text
    assert_secured(response)


def test_unauthenticated(client: TestClient) -> None:
    response = client.get("/v1/customers", headers={"Authorization": "Bearer bb_x_wrong"})
    assert response.status_code == 401
    assert_secured(response)


def test_throttled(runtime: Runtime) -> None:
    settings = runtime.settings.model_copy(update={"rate_limit_per_ip": "1/minute"})
    client = TestClient(create_app(dataclasses.replace(runtime, settings=settings)))
    client.get("/v1/customers")
    response = client.get("/v1/customers")
    assert response.status_code == 429
    assert_secured(response)


def test_unexpected_error(runtime: Runtime) -> None:
    app = create_app(runtime)

    @app.get("/v1/boom")
    def boom() -> None:
        raise RuntimeError("boom")

    response = TestClient(app, raise_server_exceptions=False).get("/v1/boom")
    assert response.status_code == 500
    assert_secured(response)


@pytest.mark.parametrize("url", ["/healthz", "/openapi.json", "/docs", "/redoc"])
def test_outside_the_api(client: TestClient, url: str) -> None:
    response = client.get(url)
    assert response.status_code == 200
    assert_secured(response, api=False)
