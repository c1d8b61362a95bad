"""Price plans, rules and customer overrides through the API: CRUD, the single default,
validation problems with field paths, tenant isolation and roles on every endpoint of
pricing, charges, credit control and analytics."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import Tenant
from tests.rating.factories import PERIOD

PROBLEM = "application/problem+json"
MARKUP = {"vendor": "aws", "adjustment": "markup_percent", "value": "15"}


def _plan(tenant: Tenant, name: str, *, default: bool = False, rules: Any = None) -> dict:
    response = tenant.post(
        "/v1/price-plans",
        json={"name": name, "is_default": default, "rules": rules if rules is not None else []},
    )
    assert response.status_code == 201, response.text
    return dict(response.json())


def _customer(tenant: Tenant, external: str) -> str:
    body = {"external_id": external, "name": external, "currency": "USD"}
    response = tenant.post("/v1/customers", json=body)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def _defaults(tenant: Tenant) -> set[str]:
    plans = tenant.get("/v1/price-plans", params={"limit": 100}).json()["data"]
    return {p["id"] for p in plans if p["is_default"]}


def test_plan_crud_and_single_default(tenant: Tenant) -> None:
    first = _plan(
        tenant,
        "Standard",
        default=True,
        rules=[MARKUP, {"adjustment": "discount_percent", "value": "5", "basis": "list"}],
    )
    assert first["object"] == "price_plan" and first["is_default"] is True
    assert sorted((r["adjustment"], r["value"]) for r in first["rules"]) == [
        ("discount_percent", "5"),
        ("markup_percent", "15"),
    ]
    assert all(r["plan_id"] == first["id"] and r["customer_id"] is None for r in first["rules"])
    assert _defaults(tenant) == {first["id"]}

    # Creating another default moves the flag: one default per MSP.
    second = _plan(tenant, "Premium", default=True)
    assert _defaults(tenant) == {second["id"]}
    assert tenant.get(f"/v1/price-plans/{first['id']}").json()["is_default"] is False

    # PATCH moves it back; renaming keeps it.
    patched = tenant.patch(f"/v1/price-plans/{first['id']}", json={"is_default": True})
    assert patched.status_code == 200, patched.text
    assert patched.json()["is_default"] is True
    assert _defaults(tenant) == {first["id"]}
    renamed = tenant.patch(
        f"/v1/price-plans/{first['id']}", json={"name": "Standard 2025", "description": "d"}
    ).json()
    assert (renamed["name"], renamed["description"], renamed["is_default"]) == (
        "Standard 2025",
        "d",
        True,
    )
    # A third, non-default plan does not disturb the default.
    third = _plan(tenant, "Basic")
    assert third["is_default"] is False and _defaults(tenant) == {first["id"]}
    # Un-defaulting leaves the MSP without a default.
    tenant.patch(f"/v1/price-plans/{first['id']}", json={"is_default": False})
    assert _defaults(tenant) == set()

    listed = tenant.get("/v1/price-plans", params={"limit": 2}).json()
    assert len(listed["data"]) == 2 and listed["has_more"] is True
    rest = tenant.get(
        "/v1/price-plans", params={"limit": 2, "cursor": listed["next_cursor"]}
    ).json()
    ids = [p["id"] for p in listed["data"] + rest["data"]]
    assert sorted(ids) == sorted([first["id"], second["id"], third["id"]])
    assert rest["has_more"] is False


def test_rules_add_replace_delete(tenant: Tenant) -> None:
    plan = _plan(tenant, "Standard", rules=[MARKUP])
    added = tenant.post(
        f"/v1/price-plans/{plan['id']}/rules",
        json={
            "name": "EC2 tiers",
            "service_name": "Amazon Elastic Compute Cloud",
            "adjustment": "tiered_percent",
            "tiers": [{"up_to": "1000", "percent": "20"}, {"up_to": None, "percent": "10"}],
            "effective_from": "2025-01-01",
            "effective_to": "2025-12-31",
        },
    )
    assert added.status_code == 201, added.text
    rule = added.json()
    assert rule["object"] == "price_rule" and rule["plan_id"] == plan["id"]
    assert rule["tiers"] == [
        {"up_to": "1000", "percent": "20"},
        {"up_to": None, "percent": "10"},
    ]
    assert (rule["effective_from"], rule["effective_to"]) == ("2025-01-01", "2025-12-31")
    assert len(tenant.get(f"/v1/price-plans/{plan['id']}").json()["rules"]) == 2

    replaced = tenant.client.put(
        f"/v1/price-rules/{rule['id']}",
        json={
            "sku_id": "SKU-A",
            "adjustment": "fixed_unit_price",
            "value": "0.5",
            "currency": "eur",
        },
        headers=tenant.headers,
    )
    assert replaced.status_code == 200, replaced.text
    body = replaced.json()
    assert body["id"] == rule["id"] and body["plan_id"] == plan["id"]
    assert (body["adjustment"], body["value"], body["currency"]) == (
        "fixed_unit_price",
        "0.5",
        "EUR",
    )
    # PUT replaces the whole rule: fields not given are cleared.
    assert body["service_name"] is None and body["tiers"] is None
    assert body["effective_from"] is None and body["name"] == ""
    stored = {r["id"]: r for r in tenant.get(f"/v1/price-plans/{plan['id']}").json()["rules"]}
    assert stored[rule["id"]]["sku_id"] == "SKU-A"

    assert tenant.delete(f"/v1/price-rules/{rule['id']}").status_code == 204
    remaining = tenant.get(f"/v1/price-plans/{plan['id']}").json()["rules"]
    assert [r["adjustment"] for r in remaining] == ["markup_percent"]
    assert tenant.delete(f"/v1/price-rules/{rule['id']}").status_code == 404
    put_gone = tenant.client.put(
        f"/v1/price-rules/{rule['id']}", json=MARKUP, headers=tenant.headers
    )
    assert put_gone.status_code == 404


def test_customer_overrides(tenant: Tenant) -> None:
    customer = _customer(tenant, "C1")
    other = _customer(tenant, "C2")
    assert tenant.get(f"/v1/customers/{customer}/price-rules").json()["data"] == []
    created = tenant.post(
        f"/v1/customers/{customer}/price-rules",
        json={"vendor": "aws", "adjustment": "markup_percent", "value": "7.5"},
    )
    assert created.status_code == 201, created.text
    rule = created.json()
    assert rule["customer_id"] == customer and rule["plan_id"] is None
    listed = tenant.get(f"/v1/customers/{customer}/price-rules").json()["data"]
    assert [(r["id"], r["value"]) for r in listed] == [(rule["id"], "7.5")]
    assert tenant.get(f"/v1/customers/{other}/price-rules").json()["data"] == []
    # An override is edited and deleted through /v1/price-rules like any rule.
    put = tenant.client.put(
        f"/v1/price-rules/{rule['id']}",
        json={"adjustment": "discount_percent", "value": "3"},
        headers=tenant.headers,
    )
    assert put.status_code == 200 and put.json()["customer_id"] == customer
    assert tenant.delete(f"/v1/price-rules/{rule['id']}").status_code == 204
    assert tenant.get(f"/v1/customers/{customer}/price-rules").json()["data"] == []
    # Plans never show customer overrides.
    plan = _plan(tenant, "Standard", rules=[MARKUP])
    assert all(r["customer_id"] is None for r in plan["rules"])


BAD_RULES: list[tuple[str, dict[str, Any], str]] = [
    ("markup without value", {"adjustment": "markup_percent"}, "value"),
    (
        "fixed unit price without currency",
        {"adjustment": "fixed_unit_price", "value": "1"},
        "currency",
    ),
    ("fixed fee without currency", {"adjustment": "fixed_fee", "value": "10"}, "currency"),
    (
        "tiers not increasing",
        {
            "adjustment": "tiered_percent",
            "tiers": [
                {"up_to": "500", "percent": "10"},
                {"up_to": "100", "percent": "5"},
                {"percent": "1"},
            ],
        },
        "tier",
    ),
    (
        "last tier bounded",
        {"adjustment": "tiered_percent", "tiers": [{"up_to": "500", "percent": "10"}]},
        "tier",
    ),
    ("tiered without tiers", {"adjustment": "tiered_percent"}, "tiers"),
    (
        "unknown currency",
        {"adjustment": "fixed_unit_price", "value": "1", "currency": "XYZ"},
        "currency",
    ),
    ("discount over 100", {"adjustment": "discount_percent", "value": "100.01"}, "discount"),
    (
        "effective_to before effective_from",
        {
            "adjustment": "markup_percent",
            "value": "1",
            "effective_from": "2025-03-10",
            "effective_to": "2025-03-09",
        },
        "effective_to",
    ),
]


def _problem(response: Any) -> dict[str, Any]:
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    body = dict(response.json())
    assert body["status"] == 422 and body["code"] == "validation_error"
    assert body["errors"], body
    return body


def test_invalid_rules_are_422_with_field_paths(tenant: Tenant) -> None:
    plan = _plan(tenant, "Standard")
    customer = _customer(tenant, "C1")
    ok_rule = tenant.post(f"/v1/price-plans/{plan['id']}/rules", json=MARKUP).json()
    failures: list[str] = []
    for case, rule, word in BAD_RULES:
        # Inside a plan: the path points at the offending rule.
        nested = _problem(
            tenant.post("/v1/price-plans", json={"name": "X", "rules": [MARKUP, rule]})
        )
        if not any(e["field"].startswith("rules.1") for e in nested["errors"]):
            failures.append(f"{case}: nested path {nested['errors']}")
        if not any(word in e["message"] for e in nested["errors"]):
            failures.append(f"{case}: nested message {nested['errors']}")
        # A rule on its own (plan rule, replacement, customer override).
        for response in (
            tenant.post(f"/v1/price-plans/{plan['id']}/rules", json=rule),
            tenant.client.put(
                f"/v1/price-rules/{ok_rule['id']}", json=rule, headers=tenant.headers
            ),
            tenant.post(f"/v1/customers/{customer}/price-rules", json=rule),
        ):
            body = _problem(response)
            if not any(word in e["message"] for e in body["errors"]):
                failures.append(f"{case}: {response.request.url.path} {body['errors']}")
            if not all(e["field"] for e in body["errors"]):
                failures.append(f"{case}: no field path {body['errors']}")
    assert failures == []
    # Nothing was written: no new plan, the replaced rule unchanged, no override.
    assert [p["name"] for p in tenant.get("/v1/price-plans").json()["data"]] == ["Standard"]
    rules = tenant.get(f"/v1/price-plans/{plan['id']}").json()["rules"]
    assert [(r["id"], r["adjustment"], r["value"]) for r in rules] == [
        (ok_rule["id"], "markup_percent", "15")
    ]
    assert tenant.get(f"/v1/customers/{customer}/price-rules").json()["data"] == []


def test_unknown_and_malformed_fields(tenant: Tenant) -> None:
    plan = _plan(tenant, "Standard")
    body = _problem(tenant.post(f"/v1/price-plans/{plan['id']}/rules", json={**MARKUP, "foo": 1}))
    assert [e["field"] for e in body["errors"]] == ["foo"]
    body = _problem(
        tenant.post("/v1/price-plans", json={"name": "X", "rules": [{**MARKUP, "colour": "red"}]})
    )
    assert [e["field"] for e in body["errors"]] == ["rules.0.colour"]
    body = _problem(tenant.post("/v1/price-plans", json={"name": "X", "shared": True}))
    assert [e["field"] for e in body["errors"]] == ["shared"]
    body = _problem(tenant.patch(f"/v1/price-plans/{plan['id']}", json={"rules": []}))
    assert [e["field"] for e in body["errors"]] == ["rules"]
    body = _problem(
        tenant.post(
            f"/v1/price-plans/{plan['id']}/rules",
            json={**MARKUP, "charge_category": "Refund"},
        )
    )
    assert [e["field"] for e in body["errors"]] == ["charge_category"]
    body = _problem(
        tenant.post(f"/v1/price-plans/{plan['id']}/rules", json={**MARKUP, "vendor": "oracle"})
    )
    assert [e["field"] for e in body["errors"]] == ["vendor"]
    body = _problem(
        tenant.post(
            f"/v1/price-plans/{plan['id']}/rules",
            json={
                "adjustment": "tiered_percent",
                "tiers": [{"up_to": "-5", "percent": "1"}, {"percent": "1"}],
            },
        )
    )
    assert [e["field"] for e in body["errors"]] == ["tiers.0.up_to"]
    body = _problem(tenant.post("/v1/price-plans", json={"name": ""}))
    assert [e["field"] for e in body["errors"]] == ["name"]
    assert tenant.get(f"/v1/price-plans/{plan['id']}").json()["rules"] == []


# ---------------------------------------------------------------------------------------
# Tenant isolation: another MSP's ids are 404 on every endpoint, never 403 or 200.


@pytest.fixture
def foreign(other_tenant: Tenant) -> dict[str, str]:
    """Ids that belong to the other MSP."""
    plan = _plan(other_tenant, "Theirs", rules=[MARKUP])
    customer = _customer(other_tenant, "THEIRS")
    override = other_tenant.post(f"/v1/customers/{customer}/price-rules", json=MARKUP).json()
    account = other_tenant.post(
        "/v1/partner-accounts", json={"vendor": "aws", "display_name": "theirs"}
    ).json()
    return {
        "plan": plan["id"],
        "rule": plan["rules"][0]["id"],
        "override": override["id"],
        "customer": customer,
        "account": account["id"],
    }


# (method, url template, json body, query); {plan} {rule} {override} {customer} {mine}
FOREIGN_CALLS: list[tuple[str, str, Any, dict[str, str]]] = [
    ("GET", "/v1/price-plans/{plan}", None, {}),
    ("PATCH", "/v1/price-plans/{plan}", {"name": "stolen"}, {}),
    ("POST", "/v1/price-plans/{plan}/rules", MARKUP, {}),
    ("GET", "/v1/price-plans/{plan}/preview", None, {"period": PERIOD}),
    ("GET", "/v1/price-plans/{mine}/preview", None, {"period": PERIOD, "customer_id": "C"}),
    ("PUT", "/v1/price-rules/{rule}", MARKUP, {}),
    ("PUT", "/v1/price-rules/{override}", MARKUP, {}),
    ("DELETE", "/v1/price-rules/{rule}", None, {}),
    ("DELETE", "/v1/price-rules/{override}", None, {}),
    ("POST", "/v1/customers/{customer}/price-rules", MARKUP, {}),
    ("GET", "/v1/customers/{customer}/price-rules", None, {}),
    ("PATCH", "/v1/customers/{mycustomer}", {"price_plan_id": "{plan}"}, {}),
    ("POST", "/v1/customers", "plan-on-create", {}),
    ("POST", "/v1/price-plans/{mine}/rules", {**MARKUP, "partner_account_id": "{account}"}, {}),
    ("GET", "/v1/customers/{customer}/charges", None, {"period": PERIOD}),
    ("GET", "/v1/customers/{customer}/credit", None, {"period": PERIOD}),
    ("GET", "/v1/customers/{customer}/analytics", None, {"period": PERIOD}),
]


def _fill(value: Any, ids: dict[str, str]) -> Any:
    if isinstance(value, str):
        for key, real in ids.items():
            value = value.replace("{" + key + "}", real)
        return value
    if isinstance(value, dict):
        return {k: _fill(v, ids) for k, v in value.items()}
    return value


def _call(tenant: Tenant, method: str, url: str, body: Any, query: dict[str, str]) -> Any:
    kwargs: dict[str, Any] = {"headers": tenant.headers, "params": query}
    if body is not None:
        kwargs["json"] = body
    return tenant.client.request(method, url, **kwargs)


def test_other_msps_ids_are_not_found_on_every_endpoint(
    tenant: Tenant, other_tenant: Tenant, foreign: dict[str, str]
) -> None:
    mine = _plan(tenant, "Mine")
    ids = {**foreign, "mine": mine["id"], "mycustomer": _customer(tenant, "MINE")}
    failures: list[str] = []
    for method, url, body, query in FOREIGN_CALLS:
        query = {k: (foreign["customer"] if v == "C" else v) for k, v in query.items()}
        if body == "plan-on-create":
            body = {
                "external_id": "NEW",
                "name": "New",
                "currency": "USD",
                "price_plan_id": foreign["plan"],
            }
        response = _call(tenant, method, _fill(url, ids), _fill(body, ids), query)
        if (
            response.status_code != 404
            or not response.headers["content-type"].startswith(PROBLEM)
            or not response.json()["code"].endswith("not_found")
        ):
            failures.append(f"{method} {url} {body}: {response.status_code} {response.text}")
    assert failures == []
    # The other MSP's objects are untouched.
    theirs = other_tenant.get(f"/v1/price-plans/{foreign['plan']}").json()
    assert theirs["name"] == "Theirs"
    assert [(r["id"], r["value"]) for r in theirs["rules"]] == [(foreign["rule"], "15")]
    overrides = other_tenant.get(f"/v1/customers/{foreign['customer']}/price-rules").json()
    assert [(r["id"], r["value"]) for r in overrides["data"]] == [(foreign["override"], "15")]
    assert _customers_plans(tenant) == {None}
    assert [c["external_id"] for c in tenant.get("/v1/customers").json()["data"]] == ["MINE"]
    assert tenant.get(f"/v1/price-plans/{mine['id']}").json()["rules"] == []


def _customers_plans(tenant: Tenant) -> set[str | None]:
    return {c["price_plan_id"] for c in tenant.get("/v1/customers").json()["data"]}


def test_lists_show_only_own_objects(
    tenant: Tenant, other_tenant: Tenant, foreign: dict[str, str]
) -> None:
    mine = _plan(tenant, "Mine")
    assert [p["id"] for p in tenant.get("/v1/price-plans").json()["data"]] == [mine["id"]]
    assert tenant.get("/v1/charges/changes").json()["data"] == []
    margin = tenant.get("/v1/reports/margin", params={"period": PERIOD})
    assert margin.status_code == 200 and margin.json()["rows"] == []


ALL_CALLS: list[tuple[str, str, Any, dict[str, str]]] = [
    ("GET", "/v1/price-plans", None, {}),
    ("POST", "/v1/price-plans", {"name": "X"}, {}),
    ("GET", "/v1/price-plans/{plan}", None, {}),
    ("PATCH", "/v1/price-plans/{plan}", {"name": "Y"}, {}),
    ("POST", "/v1/price-plans/{plan}/rules", MARKUP, {}),
    ("GET", "/v1/price-plans/{plan}/preview", None, {"period": PERIOD}),
    ("PUT", "/v1/price-rules/{rule}", MARKUP, {}),
    ("DELETE", "/v1/price-rules/{rule}", None, {}),
    ("POST", "/v1/customers/{customer}/price-rules", MARKUP, {}),
    ("GET", "/v1/customers/{customer}/price-rules", None, {}),
    ("GET", "/v1/customers/{customer}/charges", None, {"period": PERIOD}),
    ("GET", "/v1/charges/changes", None, {}),
    ("GET", "/v1/reports/margin", None, {"period": PERIOD}),
    ("GET", "/v1/credit-policy", None, {}),
    ("PUT", "/v1/credit-policy", {"thresholds": [50]}, {}),
    ("GET", "/v1/customers/{customer}/credit", None, {"period": PERIOD}),
    ("GET", "/v1/customers/{customer}/analytics", None, {"period": PERIOD}),
]
WRITES = {"POST", "PATCH", "PUT", "DELETE"}


def _own_ids(tenant: Tenant) -> dict[str, str]:
    plan = _plan(tenant, "Mine", rules=[MARKUP])
    return {"plan": plan["id"], "rule": plan["rules"][0]["id"], "customer": _customer(tenant, "M")}


def test_every_endpoint_needs_a_key(tenant: Tenant) -> None:
    ids = _own_ids(tenant)
    for method, url, body, query in ALL_CALLS:
        for headers in ({}, {"Authorization": "Bearer bb_nope_wrong"}):
            response = tenant.client.request(
                method, _fill(url, ids), json=body, params=query, headers=headers
            )
            assert response.status_code == 401, (method, url, response.text)
            assert response.headers["content-type"].startswith(PROBLEM)
    # Nothing changed.
    plan = tenant.get(f"/v1/price-plans/{ids['plan']}").json()
    assert plan["name"] == "Mine" and len(plan["rules"]) == 1


def test_helpdesk_reads_but_never_writes(tenant: Tenant) -> None:
    ids = _own_ids(tenant)
    helpdesk = {"Authorization": f"Bearer {tenant.issue_key('helpdesk')}"}
    for method, url, body, query in ALL_CALLS:
        response = tenant.client.request(
            method, _fill(url, ids), json=body, params=query, headers=helpdesk
        )
        if method in WRITES:
            assert response.status_code == 403, (method, url, response.text)
            assert response.headers["content-type"].startswith(PROBLEM)
        else:
            assert response.status_code == 200, (method, url, response.text)
    plan = tenant.get(f"/v1/price-plans/{ids['plan']}").json()
    assert plan["name"] == "Mine" and [r["value"] for r in plan["rules"]] == ["15"]
    assert [p["name"] for p in tenant.get("/v1/price-plans").json()["data"]] == ["Mine"]
    assert tenant.get(f"/v1/customers/{ids['customer']}/price-rules").json()["data"] == []
    assert tenant.get("/v1/credit-policy").json()["thresholds"] == [50, 80, 100]
    # The billing role may write pricing.
    billing = {"Authorization": f"Bearer {tenant.issue_key('billing')}"}
    response = tenant.client.post(
        f"/v1/price-plans/{ids['plan']}/rules", json=MARKUP, headers=billing
    )
    assert response.status_code == 201, response.text
