"""Catalogue offers and licence subscriptions through the API: CRUD, validation, rules,
isolation between MSPs, authentication and roles."""

from __future__ import annotations

from typing import Any

from billbyte.charges.models import ClosedPeriod
from billbyte.runtime import Runtime
from tests.api.factories import assert_problem, make_customer
from tests.conftest import Tenant

M365 = {
    "vendor": "microsoft365",
    "sku_id": "CFQ7TTC0LCHC:0002",
    "name": "Microsoft 365 Business Premium",
    "unit": "seat",
    "service_category": "Business Applications",
    "cost_price": "17.60",
    "cost_currency": "EUR",
    "prices": {"EUR": "19.90", "GBP": "17.50"},
    "term": "monthly",
    "billing_frequency": "monthly",
}


def make_offer(tenant: Tenant, **extra: Any) -> dict[str, Any]:
    response = tenant.post("/v1/catalog", json={**M365, **extra})
    assert response.status_code == 201, response.text
    return dict(response.json())


def subscribe(tenant: Tenant, customer_id: str, offer_id: str, **extra: Any) -> dict[str, Any]:
    body = {"offer_id": offer_id, "quantity": 10, "start_date": "2026-04-01", **extra}
    response = tenant.post(f"/v1/customers/{customer_id}/subscriptions", json=body)
    assert response.status_code == 201, response.text
    return dict(response.json())


def test_offer_crud(tenant: Tenant) -> None:
    offer = make_offer(tenant)
    assert offer["id"].startswith("off_")
    assert offer["prices"] == {"EUR": "19.90", "GBP": "17.50"}
    assert offer["cost_price"] == "17.60" and offer["active"] is True
    assert tenant.get(f"/v1/catalog/{offer['id']}").json() == offer
    annual = make_offer(tenant, term="annual", billing_frequency="annual", prices={"EUR": "238.80"})
    listed = tenant.get("/v1/catalog").json()["data"]
    assert [o["id"] for o in listed] == [offer["id"], annual["id"]]

    changed = tenant.patch(
        f"/v1/catalog/{offer['id']}", json={"prices": {"eur": "20.50"}, "active": False}
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["prices"] == {"EUR": "20.50"}
    active = tenant.get("/v1/catalog", params={"active": "true"}).json()["data"]
    assert [o["id"] for o in active] == [annual["id"]]
    audit = tenant.get("/v1/audit-events", params={"target_id": offer["id"]}).json()["data"]
    assert {e["action"] for e in audit} == {"catalog_offer.created", "catalog_offer.updated"}


INVALID_OFFERS: list[tuple[dict[str, Any], str]] = [
    ({"cost_currency": "XYZ"}, "validation_error"),
    ({"prices": {"EUR": "-1"}}, "validation_error"),
    ({"prices": {}}, "validation_error"),
    ({"prices": {"ABC": "1"}}, "validation_error"),
    ({"term": "weekly"}, "validation_error"),
    ({"service_category": "Licences"}, "validation_error"),
    ({"unit": "seat/month"}, "validation_error"),
    ({"vendor": "oracle"}, "validation_error"),
    ({"cost_price": "1.0000000000000000001"}, "validation_error"),
    ({"billing_frequency": "annual"}, "invalid_billing_frequency"),
]


def test_offer_validation(tenant: Tenant) -> None:
    for change, code in INVALID_OFFERS:
        assert_problem(tenant.post("/v1/catalog", json={**M365, **change}), 422, code)
    assert tenant.get("/v1/catalog").json()["data"] == []


def test_price_changes_are_dated(tenant: Tenant, runtime: Runtime) -> None:
    offer = make_offer(tenant)
    url = f"/v1/catalog/{offer['id']}"
    future = tenant.patch(url, json={"prices": {"EUR": "21.00"}, "prices_from": "2099-01-01"})
    assert future.status_code == 200, future.text
    body = future.json()
    assert body["prices"] == {"EUR": "19.90", "GBP": "17.50"}  # still in force today
    assert [(v["effective_from"], v["prices"]) for v in body["price_history"]] == [
        (None, {"EUR": "19.90", "GBP": "17.50"}),
        ("2099-01-01", {"EUR": "21.00"}),
    ]
    assert body["price_history"][1]["cost_price"] == "17.60"  # kept from the version before
    # Same day again replaces that version; an earlier date than the latest is refused.
    again = tenant.patch(url, json={"cost_price": "18", "prices_from": "2099-01-01"}).json()
    assert len(again["price_history"]) == 2 and again["price_history"][1]["cost_price"] == "18.00"
    assert_problem(
        tenant.patch(url, json={"prices": {"EUR": "1"}, "prices_from": "2098-01-01"}),
        409,
        "later_price_change_exists",
    )
    assert_problem(tenant.patch(url, json={"prices_from": "2099-02-01"}), 422)
    assert_problem(tenant.patch(url, json={"prices": None}), 422)
    # A backdated price may not reach a subscriber's invoiced period.
    other = make_offer(tenant, sku_id="OTHER")
    customer = make_customer(tenant, "LIC-5")
    subscribe(tenant, customer["id"], other["id"])
    with runtime.uow() as uow:
        uow.session.add(
            ClosedPeriod(msp_id=tenant.msp_id, customer_id=customer["id"], period="2026-04")
        )
        uow.commit()
    assert_problem(
        tenant.patch(
            f"/v1/catalog/{other['id']}",
            json={"prices": {"EUR": "1"}, "prices_from": "2026-04-15"},
        ),
        409,
        "period_closed",
    )
    moved = tenant.patch(
        f"/v1/catalog/{other['id']}", json={"prices": {"EUR": "1"}, "prices_from": "2026-05-01"}
    )
    assert moved.status_code == 200, moved.text


def test_duplicate_offer_is_a_conflict(tenant: Tenant) -> None:
    make_offer(tenant)
    assert_problem(tenant.post("/v1/catalog", json=M365), 409, "offer_exists")
    make_offer(tenant, term="annual")  # another term is another offer


def test_subscription_lifecycle(tenant: Tenant) -> None:
    offer = make_offer(tenant)
    customer = make_customer(tenant, "LIC-1")
    sub = subscribe(tenant, customer["id"], offer["id"])
    assert sub["quantity_changes"] == [{"effective_date": "2026-04-01", "quantity": 10}]
    assert (sub["offer_name"], sub["sku_id"]) == (M365["name"], M365["sku_id"])
    assert sub["auto_renew"] is True and sub["last_day"] is None
    url = f"/v1/customers/{customer['id']}/subscriptions/{sub['id']}"

    more = tenant.patch(url, json={"quantity": 15, "effective_date": "2026-04-12"})
    assert more.status_code == 200, more.text
    assert more.json()["quantity_changes"][-1] == {"effective_date": "2026-04-12", "quantity": 15}
    # A second change the same day replaces it; an earlier one is refused.
    again = tenant.patch(url, json={"quantity": 14, "effective_date": "2026-04-12"})
    assert len(again.json()["quantity_changes"]) == 2
    assert again.json()["quantity_changes"][-1]["quantity"] == 14
    assert_problem(
        tenant.patch(url, json={"quantity": 9, "effective_date": "2026-04-05"}),
        409,
        "later_change_exists",
    )
    assert_problem(tenant.patch(url, json={"quantity": 9, "effective_date": "2026-03-31"}), 422)
    assert_problem(tenant.patch(url, json={"quantity": 0}), 422)

    listed = tenant.get(f"/v1/customers/{customer['id']}/subscriptions").json()["data"]
    assert [s["id"] for s in listed] == [sub["id"]]
    cancelled = tenant.post(f"{url}/cancel", json={"effective_date": "2026-05-10"})
    assert cancelled.status_code == 200, cancelled.text
    body = cancelled.json()
    assert (body["last_day"], body["cancel_requested_for"]) == ("2026-05-10", "2026-05-10")
    assert body["status"] == "cancelled" and body["auto_renew"] is False
    assert_problem(tenant.post(f"{url}/cancel", json={}), 409, "subscription_cancelled")
    assert_problem(
        tenant.patch(url, json={"quantity": 20, "effective_date": "2026-06-01"}),
        422,
        "subscription_ended",
    )
    actions = [
        e["action"]
        for e in tenant.get("/v1/audit-events", params={"target_id": customer["id"]}).json()["data"]
    ]
    assert actions.count("licence_subscription.updated") == 2
    assert "licence_subscription.cancelled" in actions


def test_annual_term_rules(tenant: Tenant) -> None:
    offer = make_offer(tenant, term="annual", billing_frequency="annual", prices={"EUR": "238.80"})
    customer = make_customer(tenant, "LIC-2")
    sub = subscribe(tenant, customer["id"], offer["id"], start_date="2026-01-15")
    url = f"/v1/customers/{customer['id']}/subscriptions/{sub['id']}"
    assert sub["current_term"] is None or sub["current_term"]["start"] >= "2026-01-15"
    # Fewer seats on day 8 of the term: refused, with the renewal date to use instead.
    late = assert_problem(
        tenant.patch(url, json={"quantity": 8, "effective_date": "2026-01-22"}),
        422,
        "seat_reduction_not_allowed",
    )
    assert "2027-01-15" in late["detail"]
    # On day 7 it is allowed; more seats any day.
    assert (
        tenant.patch(url, json={"quantity": 8, "effective_date": "2026-01-21"}).status_code == 200
    )
    assert (
        tenant.patch(url, json={"quantity": 12, "effective_date": "2026-03-01"}).status_code == 200
    )
    # A late cancellation runs to the end of the term.
    cancelled = tenant.post(f"{url}/cancel", json={"effective_date": "2026-06-30"}).json()
    assert (cancelled["last_day"], cancelled["cancel_requested_for"]) == (
        "2027-01-14",
        "2026-06-30",
    )
    # Within 7 days of its start another subscription is cancelled that day.
    early = subscribe(tenant, customer["id"], offer["id"], start_date="2026-02-01")
    body = tenant.post(
        f"/v1/customers/{customer['id']}/subscriptions/{early['id']}/cancel",
        json={"effective_date": "2026-02-03"},
    ).json()
    assert body["last_day"] == "2026-02-03"


def test_auto_renew_off_ends_with_the_term(tenant: Tenant) -> None:
    offer = make_offer(tenant, term="annual", billing_frequency="monthly")
    customer = make_customer(tenant, "LIC-3")
    sub = subscribe(tenant, customer["id"], offer["id"], start_date="2099-03-10", auto_renew=False)
    assert (sub["last_day"], sub["status"], sub["renews_on"]) == ("2100-03-09", "pending", None)
    url = f"/v1/customers/{customer['id']}/subscriptions/{sub['id']}"
    renewing = tenant.patch(url, json={"auto_renew": True}).json()
    assert (renewing["last_day"], renewing["renews_on"]) == (None, "2100-03-10")


def test_inactive_offer_and_closed_period(tenant: Tenant, runtime: Runtime) -> None:
    offer = make_offer(tenant)
    customer = make_customer(tenant, "LIC-4")
    sub = subscribe(tenant, customer["id"], offer["id"])
    tenant.patch(f"/v1/catalog/{offer['id']}", json={"active": False})
    assert_problem(
        tenant.post(
            f"/v1/customers/{customer['id']}/subscriptions",
            json={"offer_id": offer["id"], "quantity": 1},
        ),
        422,
        "offer_inactive",
    )
    with runtime.uow() as uow:
        uow.session.add(
            ClosedPeriod(msp_id=tenant.msp_id, customer_id=customer["id"], period="2026-05")
        )
        uow.commit()
    url = f"/v1/customers/{customer['id']}/subscriptions/{sub['id']}"
    # April is before an invoiced May: a change dated then would never be billed.
    assert_problem(
        tenant.patch(url, json={"quantity": 11, "effective_date": "2026-04-20"}),
        409,
        "period_closed",
    )
    assert (
        tenant.patch(url, json={"quantity": 11, "effective_date": "2026-06-01"}).status_code == 200
    )


def _world(tenant: Tenant) -> dict[str, str]:
    offer = make_offer(tenant)
    customer = make_customer(tenant, "ISO-1")
    sub = subscribe(tenant, customer["id"], offer["id"])
    return {"offer": offer["id"], "customer": customer["id"], "sub": sub["id"]}


ROUTES = [
    ("GET", "/v1/catalog/{offer}", None),
    ("PATCH", "/v1/catalog/{offer}", {"name": "x"}),
    ("GET", "/v1/customers/{customer}/subscriptions", None),
    ("POST", "/v1/customers/{customer}/subscriptions", {"offer_id": "{offer}", "quantity": 1}),
    ("GET", "/v1/customers/{customer}/subscriptions/{sub}", None),
    ("PATCH", "/v1/customers/{customer}/subscriptions/{sub}", {"quantity": 3}),
    ("POST", "/v1/customers/{customer}/subscriptions/{sub}/cancel", {}),
    ("GET", "/v1/customers/{customer}/focus?period=2026-04", None),
]


def _fill(value: Any, ids: dict[str, str]) -> Any:
    if isinstance(value, str):
        return value.format(**ids)
    if isinstance(value, dict):
        return {k: _fill(v, ids) for k, v in value.items()}
    return value


def test_another_msps_objects_are_not_found(tenant: Tenant, other_tenant: Tenant) -> None:
    ids = _world(tenant)
    for method, url, body in ROUTES:
        kw = {"json": _fill(body, ids)} if body is not None else {}
        response = other_tenant.client.request(
            method, _fill(url, ids), headers=other_tenant.headers, **kw
        )
        assert_problem(response, 404)
    assert other_tenant.get("/v1/catalog").json()["data"] == []


def test_subscribing_to_another_msps_offer_is_not_found(
    tenant: Tenant, other_tenant: Tenant
) -> None:
    theirs = _world(other_tenant)
    mine = make_customer(tenant, "ISO-2")
    response = tenant.post(
        f"/v1/customers/{mine['id']}/subscriptions",
        json={"offer_id": theirs["offer"], "quantity": 1},
    )
    assert_problem(response, 404, "offer_not_found")


def test_a_key_is_required(tenant: Tenant) -> None:
    ids = _world(tenant)
    for method, url, body in [("GET", "/v1/catalog", None), ("POST", "/v1/catalog", M365), *ROUTES]:
        kw = {"json": _fill(body, ids)} if body is not None else {}
        assert_problem(tenant.client.request(method, _fill(url, ids), **kw), 401)


def test_help_desk_reads_but_cannot_write(tenant: Tenant) -> None:
    ids = _world(tenant)
    helpdesk = Tenant(tenant.msp_id, tenant.issue_key("helpdesk"), tenant.client)
    for method, url, body in [("POST", "/v1/catalog", {**M365, "sku_id": "X"}), *ROUTES]:
        kw = {"json": _fill(body, ids)} if body is not None else {}
        response = helpdesk.client.request(method, _fill(url, ids), headers=helpdesk.headers, **kw)
        if method == "GET":
            assert response.status_code == 200, (url, response.text)
        else:
            assert_problem(response, 403, "read_only_role")
    billing = Tenant(tenant.msp_id, tenant.issue_key("billing"), tenant.client)
    assert billing.post("/v1/catalog", json={**M365, "sku_id": "Y"}).status_code == 201
