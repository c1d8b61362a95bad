"""The OpenAPI document matches what the API answers: three drifts that fuzzing found.

- a 405 did not say which methods the resource supports (RFC 9110 requires ``Allow``);
- ``0`` / ``1`` (and ``"yes"``, ``"on"`` ...) were accepted where the document says boolean;
- 400s were answered that no operation documented.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.api.factories import PROBLEM_JSON, assert_problem, build_world, fill
from tests.conftest import Tenant


def _allowed(response: Any) -> set[str]:
    return {method.strip() for method in response.headers["allow"].split(",")}


# (method sent, URL, the methods the resource serves — written out from the route table;
# FastAPI serves HEAD only where it is declared, and it is declared nowhere)
UNSUPPORTED: list[tuple[str, str, set[str]]] = [
    ("DELETE", "/v1/customers", {"GET", "POST"}),
    ("TRACE", "/v1/customers", {"GET", "POST"}),
    ("DELETE", "/v1/customers/{customer}", {"GET", "PATCH"}),
    ("PUT", "/v1/partner-accounts/{partner_account}", {"GET", "PATCH"}),
    ("GET", "/v1/api-keys/{api_key}/revoke", {"POST"}),
    ("POST", "/v1/credit-policy", {"GET", "PUT"}),
    ("OPTIONS", "/v1/fx-rates", {"GET", "PUT"}),
]


@pytest.mark.parametrize(("method", "url", "served"), UNSUPPORTED)
def test_405_says_which_methods_the_resource_supports(
    tenant: Tenant, method: str, url: str, served: set[str]
) -> None:
    ids = build_world(tenant)
    response = tenant.client.request(method, fill(url, ids), headers=tenant.headers)
    problem = assert_problem(response, 405, "method_not_allowed")
    assert problem["instance"] == fill(url, ids)
    assert _allowed(response) == served


def test_405_allow_header_without_credentials(tenant: Tenant) -> None:
    """Routing answers before authentication: the header is there for anyone."""
    response = tenant.client.request("PATCH", "/v1/customers")
    assert response.status_code == 405
    assert _allowed(response) == {"GET", "POST"}


# (method, URL, JSON body without the boolean, the boolean field)
BOOLEAN_BODIES: list[tuple[str, str, dict[str, Any], str]] = [
    ("POST", "/v1/partner-accounts", {"vendor": "aws", "display_name": "Payer"}, "sandbox"),
    ("PATCH", "/v1/partner-accounts/{partner_account}", {}, "sandbox"),
    ("POST", "/v1/price-plans", {"name": "Plan"}, "is_default"),
    ("POST", "/v1/invoice-runs", {"period": "2026-08"}, "force"),
]
NOT_BOOLEANS: list[Any] = [0, 1, "true", "false", "1", "yes", "on"]


@pytest.mark.parametrize(("method", "url", "body", "field"), BOOLEAN_BODIES)
@pytest.mark.parametrize("value", NOT_BOOLEANS, ids=repr)
def test_json_booleans_are_true_or_false_only(
    tenant: Tenant, method: str, url: str, body: dict[str, Any], field: str, value: Any
) -> None:
    ids = build_world(tenant)
    response = tenant.client.request(
        method, fill(url, ids), json={**body, field: value}, headers=tenant.headers
    )
    problem = assert_problem(response, 422, "validation_error")
    assert [e["field"] for e in problem["errors"]] == [field]


@pytest.mark.parametrize(("method", "url", "body", "field"), BOOLEAN_BODIES)
@pytest.mark.parametrize("value", [True, False])
def test_json_booleans_true_and_false_are_accepted(
    tenant: Tenant, method: str, url: str, body: dict[str, Any], field: str, value: bool
) -> None:
    ids = build_world(tenant)
    response = tenant.client.request(
        method, fill(url, ids), json={**body, field: value}, headers=tenant.headers
    )
    assert response.status_code in (200, 201, 202), response.text


@pytest.mark.parametrize("value", ["0", "1", "yes", "no", "on", "off", "t", "f", "True", "FALSE"])
def test_query_booleans_are_true_or_false_only(tenant: Tenant, value: str) -> None:
    response = tenant.get("/v1/catalog", params={"active": value})
    problem = assert_problem(response, 422, "validation_error")
    assert [e["field"] for e in problem["errors"]] == ["active"]


@pytest.mark.parametrize("value", ["true", "false"])
def test_query_booleans_true_and_false_are_accepted(tenant: Tenant, value: str) -> None:
    response = tenant.get("/v1/catalog", params={"active": value})
    assert response.status_code == 200, response.text
    assert response.json()["data"] == []


def _documented(tenant: Tenant, method: str, path: str, status: int) -> dict[str, Any]:
    document = tenant.client.get("/openapi.json").json()
    responses = document["paths"][path][method.lower()]["responses"]
    assert str(status) in responses, f"{method} {path} answers {status} but does not say so"
    content = responses[str(status)]["content"]
    assert list(content) == [PROBLEM_JSON]
    return dict(content[PROBLEM_JSON]["schema"])


# A body that is not UTF-8 cannot be read as JSON: the framework answers 400.
NOT_UTF8 = b'{"name": "\xff\xfe"}'


@pytest.mark.parametrize(
    ("method", "url", "path"),
    [
        ("POST", "/v1/customers", "/v1/customers"),
        ("PATCH", "/v1/customers/{customer}", "/v1/customers/{customer_id}"),
        ("PUT", "/v1/credit-policy", "/v1/credit-policy"),
        ("POST", "/v1/api-keys", "/v1/api-keys"),
    ],
)
def test_an_unreadable_body_is_a_documented_400(
    tenant: Tenant, method: str, url: str, path: str
) -> None:
    ids = build_world(tenant)
    response = tenant.client.request(
        method,
        fill(url, ids),
        content=NOT_UTF8,
        headers={**tenant.headers, "Content-Type": "application/json"},
    )
    assert_problem(response, 400)
    assert _documented(tenant, method, path, 400) == {"$ref": "#/components/schemas/Problem"}


@pytest.mark.parametrize(
    ("url", "path"),
    [
        ("/v1/customers", "/v1/customers"),
        ("/v1/api-keys/{api_key}/revoke", "/v1/api-keys/{api_key_id}/revoke"),
        (
            "/v1/partner-accounts/{partner_account}/collect",
            "/v1/partner-accounts/{partner_account_id}/collect",
        ),
    ],
)
def test_a_bad_idempotency_key_is_a_documented_400(tenant: Tenant, url: str, path: str) -> None:
    ids = build_world(tenant)
    response = tenant.client.post(
        fill(url, ids), json={}, headers={**tenant.headers, "Idempotency-Key": "k" * 256}
    )
    assert_problem(response, 400, "invalid_idempotency_key")
    assert _documented(tenant, "POST", path, 400) == {"$ref": "#/components/schemas/Problem"}


# (method, URL, JSON body without the integer, the integer field) — the mirror image: a
# JSON boolean was read as 0 or 1 where the document says integer.
INTEGER_BODIES: list[tuple[str, str, dict[str, Any], str]] = [
    ("PUT", "/v1/invoice-settings", {"grouping": "service"}, "grace_days"),
    ("PUT", "/v1/fx-policy", {"base_currency": "EUR", "mode": "charge_day"}, "max_staleness_days"),
    ("PUT", "/v1/credit-policy", {"thresholds": [80]}, "suspend_at"),
    ("PATCH", "/v1/customers/{customer}", {}, "billing_anchor_day"),
]


@pytest.mark.parametrize(("method", "url", "body", "field"), INTEGER_BODIES)
# true would be read as 1, a valid value of each of these fields (false as 0 is out of range
# for some of them, so it is refused anyway and proves nothing).
@pytest.mark.parametrize("value", [True, "5"], ids=repr)
def test_json_integers_are_not_booleans_or_strings(
    tenant: Tenant, method: str, url: str, body: dict[str, Any], field: str, value: Any
) -> None:
    ids = build_world(tenant)
    response = tenant.client.request(
        method, fill(url, ids), json={**body, field: value}, headers=tenant.headers
    )
    problem = assert_problem(response, 422, "validation_error")
    assert [e["field"] for e in problem["errors"]] == [field]


@pytest.mark.parametrize(("method", "url", "body", "field"), INTEGER_BODIES)
def test_json_integers_are_accepted(
    tenant: Tenant, method: str, url: str, body: dict[str, Any], field: str
) -> None:
    ids = build_world(tenant)
    response = tenant.client.request(
        method, fill(url, ids), json={**body, field: 5}, headers=tenant.headers
    )
    assert response.status_code == 200, response.text
    assert response.json()[field] == 5
