"""Every route that takes a customer or partner-account id, read from the OpenAPI document so
that a route added later is covered without editing this file: another MSP's id is 404 for
every method, and for GET the answer is the same as for an id that never existed."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.api.factories import database_dump, make_customer, make_partner
from tests.conftest import Tenant

OWNED = {"customer_id": "customer", "partner_account_id": "partner_account"}
# Query parameters some reads require; valid values, so only the id can cause a refusal.
QUERY = {"period": "2026-11"}


def _operations(tenant: Tenant) -> list[tuple[str, str, list[str]]]:
    document = tenant.client.get("/openapi.json").json()
    found = []
    for path, operations in document["paths"].items():
        names = re.findall(r"\{(\w+)\}", path)
        if not names or names[0] not in OWNED:
            continue
        for method, operation in operations.items():
            required = [
                p["name"]
                for p in operation.get("parameters", [])
                if p.get("in") == "query" and p.get("required")
            ]
            found.append((method.upper(), path, required))
    return found


def _state(engine: Any) -> list[str]:
    # Rows in a stable order; api_keys left out because the intruder's own key records its
    # last use.
    return sorted(
        row for row in database_dump(engine).split("\n") if not row.startswith("api_keys:")
    )


def _url(path: str, ids: dict[str, str]) -> str:
    return re.sub(r"\{(\w+)\}", lambda m: ids.get(m.group(1), "zz_unknown"), path)


@pytest.mark.storage
def test_every_route_answers_404_to_another_msps_ids(
    tenant: Tenant, other_tenant: Tenant, engine: Any
) -> None:
    victim_customer = make_customer(tenant, "VICTIM-1", name="Victim Secret GmbH")["id"]
    victim_partner = make_partner(tenant)["id"]
    ids = {"customer_id": victim_customer, "partner_account_id": victim_partner}
    operations = _operations(other_tenant)
    assert len(operations) >= 25, operations  # the document really was read

    before = _state(engine)
    for method, path, required in operations:
        params = {name: QUERY.get(name, "x") for name in required}
        response = other_tenant.client.request(
            method,
            _url(path, ids),
            params=params,
            json={} if method in {"POST", "PATCH", "PUT"} else None,
            headers=other_tenant.headers,
        )
        where = f"{method} {path}"
        assert response.status_code in {404, 422}, (where, response.status_code, response.text)
        assert "Victim Secret" not in response.text  # (the 404 may echo the id it was given)
        if method == "GET":
            assert response.status_code == 404, (where, response.text)
            never = other_tenant.client.get(
                _url(path, {k: v + "X" for k, v in ids.items()}),
                params=params,
                headers=other_tenant.headers,
            )
            assert never.status_code == 404 and never.json()["code"] == response.json()["code"]
    # Nothing an intruder sent changed the victim's data (or anything else).
    assert _state(engine) == before
