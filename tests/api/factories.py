"""Small builders shared by the API tests: every value here is written out by hand."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, inspect, text

from tests.conftest import Tenant

PROBLEM_JSON = "application/problem+json"

# Looks like an AWS secret access key; it must never leave the database in clear text.
AWS_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYzEXAMPLEKEY"
AWS_KEY_ID = "AKIAIOSFODNN7EXAMPLE"


def make_partner(tenant: Tenant, vendor: str = "aws", **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "vendor": vendor,
        "display_name": f"{vendor} partner",
        "partner_discount_percent": "12.5",
        **extra,
    }
    response = tenant.post("/v1/partner-accounts", json=body)
    assert response.status_code == 201, response.text
    return dict(response.json())


def customer_body(external_id: str = "C-1", **extra: Any) -> dict[str, Any]:
    return {
        "external_id": external_id,
        "name": f"Customer {external_id}",
        "currency": "EUR",
        "country": "DE",
        "locale": "de_DE",
        **extra,
    }


def make_customer(tenant: Tenant, external_id: str = "C-1", **extra: Any) -> dict[str, Any]:
    response = tenant.post("/v1/customers", json=customer_body(external_id, **extra))
    assert response.status_code == 201, response.text
    return dict(response.json())


def link(tenant: Tenant, customer_id: str, partner_id: str, identifier: str) -> dict[str, Any]:
    response = tenant.post(
        f"/v1/customers/{customer_id}/vendor-accounts",
        json={"partner_account_id": partner_id, "vendor_identifier": identifier},
    )
    assert response.status_code == 201, response.text
    return dict(response.json())


def issue_key(tenant: Tenant, role: str, name: str | None = None) -> dict[str, Any]:
    response = tenant.post("/v1/api-keys", json={"name": name or role, "role": role})
    assert response.status_code == 201, response.text
    return dict(response.json())


def key_prefix(token: str) -> str:
    """``bb_<prefix>_<secret>`` -> ``<prefix>``, parsed here rather than by the code."""
    assert token.startswith("bb_")
    return token[3:].split("_", 1)[0]


def own_key_id(tenant: Tenant) -> str:
    keys = tenant.get("/v1/api-keys").json()["data"]
    matches = [k["id"] for k in keys if k["prefix"] == key_prefix(tenant.key)]
    assert len(matches) == 1, keys
    return str(matches[0])


def build_world(tenant: Tenant, tag: str = "A") -> dict[str, str]:
    """One object of every kind that has an id in a URL, owned by ``tenant``."""
    partner = make_partner(
        tenant,
        display_name=f"{tag} secret payer",
        credentials={"access_key_id": AWS_KEY_ID, "secret_access_key": AWS_SECRET},
    )
    customer = make_customer(tenant, f"{tag}-EXT-1", name=f"{tag} Confidential GmbH")
    vendor_account = link(tenant, customer["id"], partner["id"], f"{tag}-111122223333")
    spare_key = issue_key(tenant, "billing", f"{tag} spare key")
    return {
        "partner_account": partner["id"],
        "customer": customer["id"],
        "external_id": customer["external_id"],
        "customer_name": customer["name"],
        "vendor_account": vendor_account["id"],
        "api_key": spare_key["id"],
        "api_key_secret": spare_key["secret"],
    }


def fill(template: Any, ids: dict[str, str]) -> Any:
    """Substitute ``{name}`` placeholders in a URL or (nested) JSON body."""
    if isinstance(template, str):
        return template.format(**ids)
    if isinstance(template, dict):
        return {k: fill(v, ids) for k, v in template.items()}
    if isinstance(template, list):
        return [fill(v, ids) for v in template]
    return template


def call(tenant: Tenant, method: str, url: str, body: Any = None, **kw: Any) -> Any:
    if body is not None:
        kw["json"] = body
    return tenant.client.request(
        method, url, headers={**tenant.headers, **kw.pop("headers", {})}, **kw
    )


def assert_problem(response: Any, status: int, code: str | None = None) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM_JSON), response.headers
    problem = dict(response.json())
    assert problem["status"] == status
    assert isinstance(problem["code"], str) and problem["code"]
    assert isinstance(problem["title"], str) and isinstance(problem["detail"], str)
    assert problem["type"].endswith("/" + problem["code"])
    if code is not None:
        assert problem["code"] == code, problem
    return problem


def database_dump(engine: Engine) -> str:
    """Every value of every table, as one string: to prove a secret is stored nowhere."""
    chunks: list[str] = []
    with engine.connect() as connection:
        for table in inspect(connection).get_table_names():
            for row in connection.execute(text(f'SELECT * FROM "{table}"')):
                chunks.append(f"{table}: {tuple(row)!r}")
    return "\n".join(chunks)
