"""``Idempotency-Key`` on POST: replay the first response, refuse a different body."""

from __future__ import annotations

from typing import Any

from billbyte.runtime import Runtime
from tests.api.factories import (
    assert_problem,
    customer_body,
    database_dump,
    make_customer,
    make_partner,
)
from tests.conftest import Tenant

PARTNER = {"vendor": "azure", "display_name": "Azure plan", "partner_discount_percent": "15"}


def _count(tenant: Tenant, url: str) -> int:
    return len(tenant.get(url, params={"limit": 500}).json()["data"])


def _post(tenant: Tenant, url: str, body: Any, key: str) -> Any:
    return tenant.post(url, json=body, headers={"Idempotency-Key": key})


def test_same_key_same_body_replays_and_creates_nothing_more(tenant: Tenant) -> None:
    first = _post(tenant, "/v1/partner-accounts", PARTNER, "create-azure-1")
    assert first.status_code == 201, first.text
    assert "idempotent-replayed" not in first.headers
    audit = _count(tenant, "/v1/audit-events")
    for _ in range(2):
        again = _post(tenant, "/v1/partner-accounts", PARTNER, "create-azure-1")
        assert again.status_code == 201
        assert again.headers["idempotent-replayed"] == "true"
        assert again.headers["content-type"] == first.headers["content-type"]
        assert again.json() == first.json()
    assert _count(tenant, "/v1/partner-accounts") == 1
    assert _count(tenant, "/v1/audit-events") == audit
    # Control: without the header the same body does create a second account.
    assert tenant.post("/v1/partner-accounts", json=PARTNER).status_code == 201
    assert _count(tenant, "/v1/partner-accounts") == 2


def test_replay_keeps_the_first_status_of_an_idempotent_customer_create(tenant: Tenant) -> None:
    first = _post(tenant, "/v1/customers", customer_body("C-9"), "cust-9")
    assert first.status_code == 201
    replay = _post(tenant, "/v1/customers", customer_body("C-9"), "cust-9")
    assert (replay.status_code, replay.json()["id"]) == (201, first.json()["id"])
    assert replay.headers["idempotent-replayed"] == "true"
    # A new key with the same external_id is the "already exists" answer, not a replay.
    fresh = _post(tenant, "/v1/customers", customer_body("C-9"), "cust-9-bis")
    assert (fresh.status_code, fresh.json()["id"]) == (200, first.json()["id"])
    assert "idempotent-replayed" not in fresh.headers
    assert _count(tenant, "/v1/customers") == 1


def test_same_key_different_body_is_422(tenant: Tenant) -> None:
    assert _post(tenant, "/v1/partner-accounts", PARTNER, "k1").status_code == 201
    other = {**PARTNER, "display_name": "Another plan"}
    assert_problem(
        _post(tenant, "/v1/partner-accounts", other, "k1"), 422, "idempotency_key_reused"
    )
    # Same body on another path is a different request too.
    assert_problem(
        _post(tenant, "/v1/customers", customer_body(), "k1"), 422, "idempotency_key_reused"
    )
    assert _count(tenant, "/v1/partner-accounts") == 1
    assert _count(tenant, "/v1/customers") == 0
    assert [p["display_name"] for p in tenant.get("/v1/partner-accounts").json()["data"]] == [
        "Azure plan"
    ]


def test_keys_are_per_msp(tenant: Tenant, other_tenant: Tenant) -> None:
    mine = _post(tenant, "/v1/partner-accounts", PARTNER, "shared-key")
    theirs = _post(other_tenant, "/v1/partner-accounts", PARTNER, "shared-key")
    assert mine.status_code == theirs.status_code == 201
    assert "idempotent-replayed" not in theirs.headers
    assert mine.json()["id"] != theirs.json()["id"]
    assert _count(tenant, "/v1/partner-accounts") == 1
    assert _count(other_tenant, "/v1/partner-accounts") == 1
    # A different body under the same key at the other MSP is not a conflict either.
    other_body = {**PARTNER, "display_name": "Theirs"}
    assert _post(other_tenant, "/v1/partner-accounts", other_body, "mine-only").status_code == 201
    assert _post(tenant, "/v1/partner-accounts", PARTNER, "mine-only").status_code == 201


def test_keys_belong_to_the_msp_not_to_the_api_key(tenant: Tenant) -> None:
    first = _post(tenant, "/v1/partner-accounts", PARTNER, "retry-me")
    billing = Tenant(tenant.msp_id, tenant.issue_key("billing"), tenant.client)
    replay = _post(billing, "/v1/partner-accounts", PARTNER, "retry-me")
    assert replay.headers.get("idempotent-replayed") == "true"
    assert replay.json()["id"] == first.json()["id"]


def test_error_responses_are_replayed_too(tenant: Tenant) -> None:
    bad = {**PARTNER, "vendor": "oracle"}
    first = _post(tenant, "/v1/partner-accounts", bad, "bad-1")
    assert_problem(first, 422, "validation_error")
    again = _post(tenant, "/v1/partner-accounts", bad, "bad-1")
    assert_problem(again, 422, "validation_error")
    assert again.headers["idempotent-replayed"] == "true"
    assert again.json() == first.json()


def test_other_posts_honour_the_key(tenant: Tenant) -> None:
    partner = make_partner(tenant)
    customer = make_customer(tenant)
    url = f"/v1/customers/{customer['id']}/vendor-accounts"
    body = {"partner_account_id": partner["id"], "vendor_identifier": "123456789012"}
    first = _post(tenant, url, body, "link-1")
    replay = _post(tenant, url, body, "link-1")
    assert first.status_code == replay.status_code == 201  # not a 409 "already linked"
    assert replay.json() == first.json()
    assert len(tenant.get(url).json()["data"]) == 1


def test_issued_api_key_replays_but_its_secret_is_not_stored_in_clear(
    tenant: Tenant, runtime: Runtime
) -> None:
    body = {"name": "integration", "role": "billing"}
    first = _post(tenant, "/v1/api-keys", body, "issue-1")
    replay = _post(tenant, "/v1/api-keys", body, "issue-1")
    assert first.status_code == replay.status_code == 201
    assert replay.json()["secret"] == first.json()["secret"]
    assert len(tenant.get("/v1/api-keys").json()["data"]) == 2
    secret = first.json()["secret"]
    assert Tenant(tenant.msp_id, secret, tenant.client).get("/v1/customers").status_code == 200
    dump = database_dump(runtime.engine)
    assert secret.rsplit("_", 1)[1] not in dump


def test_invalid_keys_and_non_posts(tenant: Tenant) -> None:
    too_long = tenant.post(
        "/v1/customers", json=customer_body(), headers={"Idempotency-Key": "k" * 256}
    )
    assert_problem(too_long, 400, "invalid_idempotency_key")
    assert _count(tenant, "/v1/customers") == 0
    longest = tenant.post(
        "/v1/customers", json=customer_body(), headers={"Idempotency-Key": "k" * 255}
    )
    assert longest.status_code == 201
    # GET ignores the header.
    listed = tenant.get("/v1/customers", headers={"Idempotency-Key": "k" * 255})
    assert listed.status_code == 200 and "idempotent-replayed" not in listed.headers
