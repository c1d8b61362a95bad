"""The webhook API: endpoints registry, event log, replay; tenancy, roles, validation."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from billbyte.runtime import Runtime
from billbyte.webhooks.worker import deliver_due
from tests.api.factories import assert_problem, database_dump
from tests.conftest import Tenant
from tests.webhooks.conftest import T0, emit, make_endpoint
from tests.webhooks.receiver import Receiver


def test_create_shows_the_secret_once_and_stores_it_encrypted(
    runtime: Runtime, tenant: Tenant, receiver: Receiver
) -> None:
    created = make_endpoint(tenant, receiver, "main", ["customer.updated", "customer.created"])
    assert created["secret"].startswith("whsec_") and len(created["secret"]) > 30
    assert created["event_types"] == ["customer.created", "customer.updated"]
    assert created["status"] == "enabled" and created["object"] == "webhook_endpoint"
    fetched = tenant.get(f"/v1/webhook-endpoints/{created['id']}").json()
    assert "secret" not in fetched
    assert fetched == {k: v for k, v in created.items() if k != "secret"}
    listed = tenant.get("/v1/webhook-endpoints").json()
    assert [e["id"] for e in listed["data"]] == [created["id"]]
    assert "secret" not in listed["data"][0]
    assert created["secret"] not in database_dump(runtime.engine)


def test_star_means_every_event_type(tenant: Tenant, receiver: Receiver) -> None:
    response = tenant.post(
        "/v1/webhook-endpoints",
        json={"url": receiver.url("x"), "event_types": ["customer.created", "*"]},
    )
    assert response.status_code == 201, response.text
    assert response.json()["event_types"] == ["*"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"url": "ftp://example.com/hook", "event_types": ["*"]}, "url"),
        ({"url": "javascript:alert(1)", "event_types": ["*"]}, "url"),
        ({"url": "example.com/hook", "event_types": ["*"]}, "url"),
        ({"url": "https://example.com/" + "x" * 500, "event_types": ["*"]}, "url"),
        ({"url": "https://example.com/hook", "event_types": ["customer.deleted"]}, "event_types"),
        ({"url": "https://example.com/hook", "event_types": []}, "event_types"),
        ({"url": "https://example.com/hook"}, "event_types"),
        ({"url": "https://example.com/hook", "event_types": ["*"], "secret": "x"}, "secret"),
    ],
)
def test_bad_endpoints_are_422_problems(tenant: Tenant, body: dict[str, Any], field: str) -> None:
    problem = assert_problem(tenant.post("/v1/webhook-endpoints", json=body), 422)
    assert problem["code"] == "validation_error"
    assert [e["field"] for e in problem["errors"]] == [field]
    assert tenant.get("/v1/webhook-endpoints").json()["data"] == []


def test_unknown_event_type_names_the_known_ones(tenant: Tenant) -> None:
    problem = assert_problem(
        tenant.post(
            "/v1/webhook-endpoints",
            json={"url": "https://example.com/h", "event_types": ["invoice.paid"]},
        ),
        422,
    )
    assert "invoice.paid" in problem["detail"] and "invoice.finalized" in problem["detail"]


ROUTES = [
    ("POST", "/v1/webhook-endpoints"),
    ("GET", "/v1/webhook-endpoints"),
    ("GET", "/v1/webhook-endpoints/we_x"),
    ("DELETE", "/v1/webhook-endpoints/we_x"),
    ("GET", "/v1/webhook-events"),
    ("GET", "/v1/webhook-events/evt_x"),
    ("POST", "/v1/webhook-events/evt_x/replay"),
]


@pytest.mark.parametrize(("method", "url"), ROUTES)
def test_every_route_needs_an_api_key(client: TestClient, method: str, url: str) -> None:
    response = client.request(method, url, json={})
    assert_problem(response, 401)
    bad = client.request(method, url, json={}, headers={"Authorization": "Bearer bb_x_y"})
    assert_problem(bad, 401, "invalid_api_key")


def test_another_msps_ids_are_404_and_its_lists_are_empty(
    runtime: Runtime, tenant: Tenant, other_tenant: Tenant, receiver: Receiver
) -> None:
    endpoint = make_endpoint(tenant, receiver)
    event_id = emit(runtime, tenant.msp_id)
    assert deliver_due(runtime, now=T0) == 1

    intruder = other_tenant
    assert_problem(
        intruder.get(f"/v1/webhook-endpoints/{endpoint['id']}"), 404, "webhook_endpoint_not_found"
    )
    assert_problem(
        intruder.delete(f"/v1/webhook-endpoints/{endpoint['id']}"),
        404,
        "webhook_endpoint_not_found",
    )
    assert_problem(intruder.get(f"/v1/webhook-events/{event_id}"), 404, "webhook_event_not_found")
    assert_problem(
        intruder.post(f"/v1/webhook-events/{event_id}/replay"), 404, "webhook_event_not_found"
    )
    assert intruder.get("/v1/webhook-endpoints").json()["data"] == []
    assert intruder.get("/v1/webhook-events").json()["data"] == []
    # Nor can the owner replay to the other MSP's endpoint.
    theirs = make_endpoint(intruder, receiver, "theirs")
    assert_problem(
        tenant.post(f"/v1/webhook-events/{event_id}/replay", json={"endpoint_id": theirs["id"]}),
        404,
        "webhook_endpoint_not_found",
    )
    # The other MSP's events never reach this MSP's endpoints, and the intrusions changed nothing.
    emit(runtime, intruder.msp_id)
    assert deliver_due(runtime, now=T0 + timedelta(minutes=1)) == 1
    assert len(receiver.at("main")) == 1 and len(receiver.at("theirs")) == 1
    assert tenant.get(f"/v1/webhook-endpoints/{endpoint['id']}").status_code == 200


def test_helpdesk_reads_but_cannot_write(
    runtime: Runtime, tenant: Tenant, receiver: Receiver
) -> None:
    endpoint = make_endpoint(tenant, receiver)
    event_id = emit(runtime, tenant.msp_id)
    helpdesk = Tenant(tenant.msp_id, tenant.issue_key("helpdesk"), tenant.client)
    billing = Tenant(tenant.msp_id, tenant.issue_key("billing"), tenant.client)

    assert helpdesk.get("/v1/webhook-endpoints").status_code == 200
    assert helpdesk.get(f"/v1/webhook-events/{event_id}").status_code == 200
    assert_problem(
        helpdesk.post(
            "/v1/webhook-endpoints", json={"url": receiver.url("h"), "event_types": ["*"]}
        ),
        403,
        "read_only_role",
    )
    assert_problem(
        helpdesk.delete(f"/v1/webhook-endpoints/{endpoint['id']}"), 403, "read_only_role"
    )
    assert_problem(helpdesk.post(f"/v1/webhook-events/{event_id}/replay"), 403, "read_only_role")
    assert billing.post(f"/v1/webhook-events/{event_id}/replay").status_code == 202


def test_replay_redelivers_the_same_event(
    runtime: Runtime, tenant: Tenant, receiver: Receiver
) -> None:
    main = make_endpoint(tenant, receiver, "main", ["customer.created"])
    other = make_endpoint(tenant, receiver, "other", ["invoice.finalized"])
    event_id = emit(runtime, tenant.msp_id, "customer.created", {"customer_id": "cus_9"})
    assert deliver_due(runtime, now=T0) == 1

    replayed = tenant.post(f"/v1/webhook-events/{event_id}/replay")
    assert replayed.status_code == 202, replayed.text
    [delivery] = replayed.json()["deliveries"]
    assert delivery["endpoint_id"] == main["id"] and delivery["status"] == "pending"
    assert delivery["replay"] is True and delivery["event_id"] == event_id
    later = T0 + timedelta(hours=2)
    assert deliver_due(runtime, now=later) == 1

    first, second = receiver.at("main")
    assert first.event_id == second.event_id == event_id
    assert first.body == second.body
    assert second.signature_valid and second.timestamp == int(later.timestamp())

    # To one endpoint, even one not subscribed to the type.
    only = tenant.post(f"/v1/webhook-events/{event_id}/replay", json={"endpoint_id": other["id"]})
    assert only.status_code == 202
    assert [d["endpoint_id"] for d in only.json()["deliveries"]] == [other["id"]]
    assert deliver_due(runtime, now=later) == 1
    [to_other] = receiver.at("other")
    assert to_other.event_id == event_id and to_other.signature_valid
    assert to_other.payload == first.payload

    detail = tenant.get(f"/v1/webhook-events/{event_id}").json()
    assert [(d["replay"], d["status"]) for d in detail["deliveries"]] == [
        (False, "succeeded"),
        (True, "succeeded"),
        (True, "succeeded"),
    ]
    audit = tenant.get("/v1/audit-events", params={"target_id": event_id}).json()["data"]
    assert [a["action"] for a in audit] == ["webhook_event.replayed"] * 2
    assert audit[1]["after"]["endpoint_ids"] == [other["id"]]


def test_replay_to_unknown_or_deleted_endpoint_is_404(
    runtime: Runtime, tenant: Tenant, receiver: Receiver
) -> None:
    endpoint = make_endpoint(tenant, receiver)
    event_id = emit(runtime, tenant.msp_id)
    assert tenant.delete(f"/v1/webhook-endpoints/{endpoint['id']}").status_code == 204
    for endpoint_id in (endpoint["id"], "we_nope"):
        response = tenant.post(
            f"/v1/webhook-events/{event_id}/replay", json={"endpoint_id": endpoint_id}
        )
        assert_problem(response, 404, "webhook_endpoint_not_found")
    assert_problem(tenant.post("/v1/webhook-events/evt_nope/replay"), 404)
    # With no endpoint subscribed, a replay accepts and schedules nothing.
    nothing = tenant.post(f"/v1/webhook-events/{event_id}/replay")
    assert nothing.status_code == 202 and nothing.json()["deliveries"] == []


def test_delete_hides_the_endpoint_and_is_audited(tenant: Tenant, receiver: Receiver) -> None:
    endpoint = make_endpoint(tenant, receiver)
    assert tenant.delete(f"/v1/webhook-endpoints/{endpoint['id']}").status_code == 204
    assert_problem(tenant.get(f"/v1/webhook-endpoints/{endpoint['id']}"), 404)
    assert_problem(tenant.delete(f"/v1/webhook-endpoints/{endpoint['id']}"), 404)
    assert tenant.get("/v1/webhook-endpoints").json()["data"] == []
    audit = tenant.get("/v1/audit-events", params={"target_id": endpoint["id"]}).json()["data"]
    assert [a["action"] for a in audit] == ["webhook_endpoint.created", "webhook_endpoint.deleted"]
    assert all("secret" not in str(a) for a in audit)
    assert audit[0]["after"]["url"] == receiver.url("main")


def test_events_list_filters_by_type_and_pages(runtime: Runtime, tenant: Tenant) -> None:
    created = [emit(runtime, tenant.msp_id, "customer.created", {"n": n}) for n in range(3)]
    updated = emit(runtime, tenant.msp_id, "customer.updated")

    everything = tenant.get("/v1/webhook-events").json()
    assert [e["id"] for e in everything["data"]] == [*created, updated]
    only = tenant.get("/v1/webhook-events", params={"type": "customer.updated"}).json()
    assert [e["id"] for e in only["data"]] == [updated]
    assert only["data"][0]["payload"]["id"] == updated

    page = tenant.get("/v1/webhook-events", params={"limit": 2}).json()
    assert [e["id"] for e in page["data"]] == created[:2] and page["has_more"]
    rest = tenant.get(
        "/v1/webhook-events", params={"limit": 2, "cursor": page["next_cursor"]}
    ).json()
    assert [e["id"] for e in rest["data"]] == [created[2], updated] and not rest["has_more"]


def test_event_without_endpoints_has_no_deliveries(runtime: Runtime, tenant: Tenant) -> None:
    event_id = emit(runtime, tenant.msp_id, "test.ping", {})
    detail = tenant.get(f"/v1/webhook-events/{event_id}").json()
    assert detail["type"] == "test.ping" and detail["deliveries"] == []
    assert detail["payload"]["data"] == {} and detail["created_at"] == "2030-01-01T00:00:00Z"
