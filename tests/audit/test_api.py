"""Every state-changing call leaves one audit event: actor, action, target, before/after."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from tests.api.factories import customer_body, issue_key, own_key_id
from tests.conftest import Tenant


def _events(tenant: Tenant, **params: Any) -> list[dict[str, Any]]:
    response = tenant.get("/v1/audit-events", params={"limit": 500, **params})
    assert response.status_code == 200, response.text
    assert response.json()["has_more"] is False
    return list(response.json()["data"])


def test_each_change_is_audited_with_actor_target_before_and_after(tenant: Tenant) -> None:
    actor = f"key:{own_key_id(tenant)}"
    start = len(_events(tenant))

    partner = tenant.post(
        "/v1/partner-accounts",
        json={"vendor": "aws", "display_name": "Payer", "credentials": {"k": "v"}},
    ).json()
    tenant.patch(f"/v1/partner-accounts/{partner['id']}", json={"display_name": "Payer 2"})
    customer = tenant.post("/v1/customers", json=customer_body("AUD-1", name="Old")).json()
    assert tenant.post("/v1/customers", json=customer_body("AUD-1")).status_code == 200
    tenant.patch(f"/v1/customers/{customer['id']}", json={"name": "New", "credit_limit": "100"})
    link = tenant.post(
        f"/v1/customers/{customer['id']}/vendor-accounts",
        json={"partner_account_id": partner["id"], "vendor_identifier": "123456789012"},
    ).json()
    tenant.delete(f"/v1/customers/{customer['id']}/vendor-accounts/{link['id']}")
    key = issue_key(tenant, "helpdesk", "desk")
    tenant.post(f"/v1/api-keys/{key['id']}/revoke")
    # Refused calls leave no trace.
    tenant.patch(f"/v1/customers/{customer['id']}", json={"currency": "XYZ"})
    tenant.get(f"/v1/customers/{customer['id']}")
    tenant.delete(f"/v1/customers/{customer['id']}/vendor-accounts/{link['id']}")

    events = _events(tenant)[start:]
    assert [(e["action"], e["target_type"], e["target_id"]) for e in events] == [
        ("partner_account.created", "partner_account", partner["id"]),
        ("partner_account.updated", "partner_account", partner["id"]),
        ("customer.created", "customer", customer["id"]),
        ("customer.updated", "customer", customer["id"]),
        ("vendor_account.linked", "customer", customer["id"]),
        ("vendor_account.unlinked", "customer", customer["id"]),
        ("api_key.created", "api_key", key["id"]),
        ("api_key.revoked", "api_key", key["id"]),
    ]
    assert {e["actor"] for e in events} == {actor}
    by_action = {e["action"]: e for e in events}

    created = by_action["partner_account.created"]
    assert created["before"] is None
    assert created["after"]["display_name"] == "Payer"
    assert created["after"]["has_credentials"] is True
    updated = by_action["partner_account.updated"]
    assert (updated["before"]["display_name"], updated["after"]["display_name"]) == (
        "Payer",
        "Payer 2",
    )

    assert by_action["customer.created"]["before"] is None
    assert by_action["customer.created"]["after"]["name"] == "Old"
    assert by_action["customer.created"]["after"]["external_id"] == "AUD-1"
    changed = by_action["customer.updated"]
    assert changed["before"]["name"] == "Old" and changed["after"]["name"] == "New"
    assert changed["before"]["credit_limit"] is None
    assert changed["after"]["credit_limit"] == "100"
    assert changed["before"]["currency"] == changed["after"]["currency"] == "EUR"

    linked = by_action["vendor_account.linked"]
    assert linked["before"] is None
    assert linked["after"]["vendor_account_id"] == link["id"]
    assert linked["after"]["vendor_identifier"] == "123456789012"
    unlinked = by_action["vendor_account.unlinked"]
    assert unlinked["after"] is None
    assert unlinked["before"]["vendor_identifier"] == "123456789012"

    assert by_action["api_key.created"]["after"]["role"] == "helpdesk"
    assert key["secret"] not in str(events)
    assert by_action["api_key.revoked"]["after"] == {"revoked": True}

    times = [datetime.fromisoformat(e["occurred_at"]) for e in events]
    assert all(t.tzinfo is not None for t in times)
    assert times == sorted(times)
    assert len({e["id"] for e in events}) == len(events)


def test_the_actor_is_the_key_that_made_the_call(tenant: Tenant) -> None:
    billing = issue_key(tenant, "billing")
    as_billing = Tenant(tenant.msp_id, billing["secret"], tenant.client)
    customer = as_billing.post("/v1/customers", json=customer_body("ACT-1")).json()
    (event,) = _events(tenant, target_id=customer["id"])
    assert event["actor"] == f"key:{billing['id']}"
    assert event["action"] == "customer.created"


def test_msp_creation_is_the_first_event(tenant: Tenant) -> None:
    first, second = _events(tenant)[:2]
    assert (first["action"], first["target_id"], first["actor"]) == (
        "msp.created",
        tenant.msp_id,
        "cli",
    )
    assert second["action"] == "api_key.created" and second["after"]["role"] == "admin"


def test_audit_pages_return_every_event_once_in_order(tenant: Tenant, other_tenant: Tenant) -> None:
    expected = ["msp.created", "api_key.created"]
    for n in range(5):
        customer = tenant.post("/v1/customers", json=customer_body(f"P-{n}")).json()
        other_tenant.post("/v1/customers", json=customer_body(f"P-{n}"))  # interleaved
        tenant.patch(f"/v1/customers/{customer['id']}", json={"name": f"Renamed {n}"})
        expected += ["customer.created", "customer.updated"]

    collected: list[dict[str, Any]] = []
    cursor: str | None = None
    pages = 0
    while True:
        params: dict[str, Any] = {"limit": 3}
        if cursor:
            params["cursor"] = cursor
        page = tenant.get("/v1/audit-events", params=params).json()
        pages += 1
        assert pages < 20
        assert len(page["data"]) <= 3
        collected += page["data"]
        if not page["has_more"]:
            assert page["next_cursor"] is None
            break
        cursor = page["next_cursor"]

    assert pages == 4  # 12 events, 3 per page; the last full page says has_more=False
    assert [e["action"] for e in collected] == expected
    assert len({e["id"] for e in collected}) == len(collected) == 12
    assert collected == _events(tenant)
    renamed = [e["after"]["name"] for e in collected if e["action"] == "customer.updated"]
    assert renamed == [f"Renamed {n}" for n in range(5)]
