"""The published OpenAPI 3.1 document: every route, a summary and its error responses."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine

from billbyte.app import create_app
from billbyte.runtime import Runtime
from billbyte.settings import Settings

FOUNDATION_OPERATIONS = {
    ("post", "/v1/partner-accounts"),
    ("get", "/v1/partner-accounts"),
    ("get", "/v1/partner-accounts/{partner_account_id}"),
    ("patch", "/v1/partner-accounts/{partner_account_id}"),
    ("post", "/v1/customers"),
    ("get", "/v1/customers"),
    ("get", "/v1/customers/{customer_id}"),
    ("patch", "/v1/customers/{customer_id}"),
    ("post", "/v1/customers/{customer_id}/vendor-accounts"),
    ("get", "/v1/customers/{customer_id}/vendor-accounts"),
    ("get", "/v1/customers/{customer_id}/vendor-accounts/{vendor_account_id}"),
    ("delete", "/v1/customers/{customer_id}/vendor-accounts/{vendor_account_id}"),
    ("get", "/v1/audit-events"),
    ("get", "/v1/api-keys"),
    ("post", "/v1/api-keys"),
    ("post", "/v1/api-keys/{api_key_id}/revoke"),
    ("get", "/healthz"),
}
ADMIN_ONLY = {("get", "/v1/api-keys")}
# Operations' probes: unauthenticated (a load balancer or orchestrator calls them).
PROBES = {"/healthz", "/readyz"}
METHODS = {"get", "post", "put", "patch", "delete"}


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    """The document does not depend on the database: an empty in-memory one will do (no
    request below gets past authentication)."""
    settings = Settings(var_dir=tmp_path_factory.mktemp("var"), secret_key="openapi")
    runtime = Runtime(settings=settings, engine=create_engine("sqlite://"), secret_key="x")
    with TestClient(create_app(runtime), raise_server_exceptions=False) as test_client:
        yield test_client


@pytest.fixture(scope="module")
def document(client: TestClient) -> dict[str, Any]:
    response = client.get("/openapi.json")
    assert response.status_code == 200
    return dict(response.json())


def _operations(document: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {
        (method, path): operation
        for path, item in document["paths"].items()
        for method, operation in item.items()
        if method in METHODS
    }


def test_it_is_openapi_3_1(document: dict[str, Any]) -> None:
    assert document["openapi"].startswith("3.1")
    assert document["info"]["title"] and document["info"]["version"]


def test_every_route_is_listed_and_every_listed_route_is_served(
    client: TestClient, document: dict[str, Any]
) -> None:
    operations = _operations(document)
    assert set(operations) >= FOUNDATION_OPERATIONS
    for method, path in operations:
        url = re.sub(r"\{[^}]+\}", "some_id", path)
        response = client.request(method.upper(), url)  # no API key
        expected = 200 if path in PROBES else 401  # served, and behind authentication
        assert response.status_code == expected, (method, path, response.text)


def test_every_operation_has_a_summary_and_declares_its_errors(
    document: dict[str, Any],
) -> None:
    problems: list[str] = []
    for (method, path), operation in _operations(document).items():
        name = f"{method.upper()} {path}"
        if not operation.get("summary"):
            problems.append(f"{name}: no summary")
        if path in PROBES:
            continue
        declared = set(operation["responses"])
        wanted = {"401", "422"}
        if "{" in path:
            wanted.add("404")
        if method in ("post", "patch", "put", "delete") or (method, path) in ADMIN_ONLY:
            wanted.add("403")
        if missing := wanted - declared:
            problems.append(f"{name}: undeclared {sorted(missing)}")
        for status in declared:
            if status.startswith(("4", "5")):
                content = operation["responses"][status].get("content", {})
                schema = content.get("application/problem+json", {}).get("schema")
                if not schema:
                    problems.append(f"{name} {status}: no application/problem+json schema")
                if "application/json" in content:
                    problems.append(f"{name} {status}: documented as application/json")
    assert problems == []


def test_problem_schema_has_the_rfc_9457_members(document: dict[str, Any]) -> None:
    problem = document["components"]["schemas"]["Problem"]
    assert {"type", "title", "status", "code", "detail"} <= set(problem["required"])
    assert {"instance", "errors"} <= set(problem["properties"])


def test_credentials_are_write_only_in_the_schema(document: dict[str, Any]) -> None:
    schemas = document["components"]["schemas"]
    assert "credentials" in schemas["PartnerAccountCreate"]["properties"]
    assert "credentials" in schemas["PartnerAccountUpdate"]["properties"]
    assert "credentials" not in schemas["PartnerAccountOut"]["properties"]
    assert "secret" not in schemas["ApiKeyOut"]["properties"]


def test_bearer_security_and_docs_page(client: TestClient, document: dict[str, Any]) -> None:
    schemes = document["components"]["securitySchemes"]
    assert any(s.get("scheme", "").lower() == "bearer" for s in schemes.values())
    docs = client.get("/docs")
    assert docs.status_code == 200 and "text/html" in docs.headers["content-type"]
