"""The budgets API: create, read, change, delete; validation; tenant isolation and roles."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import Tenant


def _customer(tenant: Tenant, external: str = "ACME", currency: str = "EUR") -> str:
    response = tenant.post(
        "/v1/customers", json={"external_id": external, "name": external, "currency": currency}
    )
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def _budget(tenant: Tenant, customer: str, **body: Any) -> dict[str, Any]:
    response = tenant.post(f"/v1/customers/{customer}/budgets", json={"amount": "1000.00", **body})
    assert response.status_code == 201, response.text
    return dict(response.json())


def test_create_list_change_and_delete_a_budget(tenant: Tenant) -> None:
    customer = _customer(tenant)
    created = _budget(tenant, customer, name="Cloud", thresholds=[50, 90, 120], vendor="aws")
    assert {k: created[k] for k in ("object", "customer_id", "name", "amount", "currency")} == {
        "object": "budget",
        "customer_id": customer,
        "name": "Cloud",
        "amount": "1000.00",
        "currency": "EUR",  # the customer's
    }
    assert created["thresholds"] == [50, 90, 120] and created["vendor"] == "aws"
    assert created["period"] == "monthly"
    default = _budget(tenant, customer, amount="250")
    assert default["thresholds"] == [50, 80, 100] and default["name"] is None
    assert default["vendor"] is None

    listed = tenant.get(f"/v1/customers/{customer}/budgets")
    assert listed.status_code == 200
    assert [b["id"] for b in listed.json()["data"]] == [created["id"], default["id"]]

    changed = tenant.patch(f"/v1/budgets/{created['id']}", json={"amount": "1500.5"})
    assert changed.status_code == 200, changed.text
    body = changed.json()
    assert (body["amount"], body["name"], body["thresholds"], body["vendor"]) == (
        "1500.50",
        "Cloud",
        [50, 90, 120],
        "aws",
    )
    cleared = tenant.patch(f"/v1/budgets/{created['id']}", json={"name": None, "vendor": None})
    assert cleared.status_code == 200, cleared.text
    assert (cleared.json()["name"], cleared.json()["vendor"]) == (None, None)

    gone = tenant.delete(f"/v1/budgets/{created['id']}")
    assert gone.status_code == 204
    assert tenant.delete(f"/v1/budgets/{created['id']}").status_code == 404
    listed = tenant.get(f"/v1/customers/{customer}/budgets").json()["data"]
    assert [b["id"] for b in listed] == [default["id"]]

    audit = tenant.get("/v1/audit-events", params={"limit": 100}).json()["data"]
    actions = [e["action"] for e in audit if e["target_id"] == created["id"]]
    assert sorted(actions) == [
        "budget.created",
        "budget.deleted",
        "budget.updated",
        "budget.updated",
    ]


BAD_BODIES = [
    {"amount": "-1"},
    {"amount": "0"},
    {"amount": "abc"},
    {"amount": 12.5},  # a JSON number: floats are never money
    {"amount": "NaN"},
    {"amount": "Infinity"},
    {"amount": "1.001"},  # EUR has two decimals
    {"amount": "1e30"},
    {"amount": "100", "thresholds": [0]},
    {"amount": "100", "thresholds": [1001]},
    {"amount": "100", "thresholds": [-50]},
    {"amount": "100", "thresholds": ["fifty"]},
    {"amount": "100", "thresholds": [50.5]},
    {"amount": "100", "thresholds": [80, 50]},
    {"amount": "100", "thresholds": [50, 50]},
    {"amount": "100", "thresholds": []},
    {"amount": "100", "thresholds": "50"},
    {"amount": "100", "thresholds": list(range(1, 30))},
    {"amount": "100", "vendor": "oracle"},
    {"amount": "100", "name": ""},
    {"amount": "100", "name": "x" * 201},
    {"amount": "100", "name": "a\u0000b"},
    {"amount": "100", "surprise": True},
    {"thresholds": [50]},
]


@pytest.mark.parametrize("body", BAD_BODIES)
def test_invalid_budgets_are_422(tenant: Tenant, body: dict[str, Any]) -> None:
    customer = _customer(tenant)
    response = tenant.post(f"/v1/customers/{customer}/budgets", json=body)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert tenant.get(f"/v1/customers/{customer}/budgets").json()["data"] == []


@pytest.mark.parametrize(
    "body",
    [
        {"amount": "-5"},
        {"amount": None},
        {"thresholds": None},
        {"thresholds": [100, 50]},
        {"thresholds": [0, 50]},
        {"amount": "12.345"},
        {"vendor": "ibm"},
    ],
)
def test_invalid_changes_are_422_and_change_nothing(tenant: Tenant, body: dict[str, Any]) -> None:
    customer = _customer(tenant)
    budget = _budget(tenant, customer)
    response = tenant.patch(f"/v1/budgets/{budget['id']}", json=body)
    assert response.status_code == 422, response.text
    after = tenant.get(f"/v1/customers/{customer}/budgets").json()["data"][0]
    assert (after["amount"], after["thresholds"]) == ("1000.00", [50, 80, 100])


def test_a_yen_budget_has_no_decimals(tenant: Tenant) -> None:
    customer = _customer(tenant, "YEN", "JPY")
    refused = tenant.post(f"/v1/customers/{customer}/budgets", json={"amount": "100.5"})
    assert refused.status_code == 422
    assert _budget(tenant, customer, amount="150000")["currency"] == "JPY"


def test_another_msps_customer_and_budget_are_404(tenant: Tenant, other_tenant: Tenant) -> None:
    theirs = _customer(other_tenant, "THEIRS")
    budget = _budget(other_tenant, theirs)
    attempts = [
        tenant.post(f"/v1/customers/{theirs}/budgets", json={"amount": "10"}),
        tenant.get(f"/v1/customers/{theirs}/budgets"),
        tenant.get(f"/v1/customers/{theirs}/budget-alerts"),
        tenant.patch(f"/v1/budgets/{budget['id']}", json={"amount": "1"}),
        tenant.delete(f"/v1/budgets/{budget['id']}"),
    ]
    assert [a.status_code for a in attempts] == [404] * 5
    assert all("THEIRS" not in a.text and other_tenant.msp_id not in a.text for a in attempts)
    # Exactly what an id that never existed gets.
    missing = tenant.patch("/v1/budgets/bud_missing", json={"amount": "1"}).json()
    assert attempts[3].json()["code"] == missing["code"] == "budget_not_found"
    # Nothing changed on their side.
    still = other_tenant.get(f"/v1/customers/{theirs}/budgets").json()["data"]
    assert [(b["id"], b["amount"]) for b in still] == [(budget["id"], "1000.00")]


def test_help_desk_reads_but_cannot_write(tenant: Tenant) -> None:
    customer = _customer(tenant)
    budget = _budget(tenant, customer)
    helpdesk = {"Authorization": f"Bearer {tenant.issue_key('helpdesk')}"}
    client = tenant.client
    assert client.get(f"/v1/customers/{customer}/budgets", headers=helpdesk).status_code == 200
    assert (
        client.get(f"/v1/customers/{customer}/budget-alerts", headers=helpdesk).status_code == 200
    )
    writes = [
        client.post(f"/v1/customers/{customer}/budgets", json={"amount": "5"}, headers=helpdesk),
        client.patch(f"/v1/budgets/{budget['id']}", json={"amount": "5"}, headers=helpdesk),
        client.delete(f"/v1/budgets/{budget['id']}", headers=helpdesk),
    ]
    assert [w.status_code for w in writes] == [403, 403, 403]
    billing = {"Authorization": f"Bearer {tenant.issue_key('billing')}"}
    made = client.post(f"/v1/customers/{customer}/budgets", json={"amount": "5"}, headers=billing)
    assert made.status_code == 201


def test_alerts_period_is_validated(tenant: Tenant) -> None:
    customer = _customer(tenant)
    for period in ("2025-13", "soon", "1800-01"):
        response = tenant.get(f"/v1/customers/{customer}/budget-alerts", params={"period": period})
        assert response.status_code == 422, (period, response.text)


def test_a_customer_has_at_most_twenty_budgets(tenant: Tenant) -> None:
    customer = _customer(tenant)
    for _ in range(20):
        _budget(tenant, customer, amount="1")
    response = tenant.post(f"/v1/customers/{customer}/budgets", json={"amount": "1"})
    assert response.status_code == 409 and response.json()["code"] == "too_many_budgets"
