"""``Idempotency-Key`` on POST: replay the first response, refuse a different body."""

from __future__ import annotations

import hashlib
import json
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from billbyte.auth.roles import Role
from billbyte.auth.subject import AuthSubject
from billbyte.idempotency import service
from billbyte.idempotency.lease import LeaseKeeper
from billbyte.idempotency.models import IdempotencyRecord
from billbyte.runtime import Runtime
from tests.api.factories import (
    assert_problem,
    customer_body,
    database_dump,
    make_customer,
    make_partner,
    own_key_id,
)
from tests.conftest import Tenant

PARTNER = {"vendor": "azure", "display_name": "Azure plan", "partner_discount_percent": "15"}


def _count(tenant: Tenant, url: str) -> int:
    return len(tenant.get(url, params={"limit": 500}).json()["data"])


def _post(tenant: Tenant, url: str, body: Any, key: str) -> Any:
    return tenant.post(url, content=_encoded(body), headers={**JSON_BODY, "Idempotency-Key": key})


JSON_BODY = {"content-type": "application/json"}


def _encoded(body: Any) -> bytes:
    return json.dumps(body).encode()


def _request_hash(path: str, body: Any) -> str:
    """How a request is fingerprinted: method, path and query, then the body bytes."""
    return hashlib.sha256(f"POST {path}?\n".encode() + _encoded(body)).hexdigest()


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


def test_keys_belong_to_the_api_key_not_to_the_msp(tenant: Tenant) -> None:
    """Changed by issue #9: another API key re-using the string makes its own request."""
    first = _post(tenant, "/v1/partner-accounts", PARTNER, "retry-me")
    billing = Tenant(tenant.msp_id, tenant.issue_key("billing"), tenant.client)
    own = _post(billing, "/v1/partner-accounts", PARTNER, "retry-me")
    assert own.status_code == 201
    assert "idempotent-replayed" not in own.headers
    assert own.json()["id"] != first.json()["id"]
    # Each key still gets its own replay.
    assert _post(billing, "/v1/partner-accounts", PARTNER, "retry-me").json() == own.json()
    assert _post(tenant, "/v1/partner-accounts", PARTNER, "retry-me").json() == first.json()
    assert _count(tenant, "/v1/partner-accounts") == 2


def test_error_responses_are_not_stored(tenant: Tenant) -> None:
    """Changed by issue #9: only a 2xx is replayed; an error is answered afresh."""
    bad = {**PARTNER, "vendor": "oracle"}
    first = _post(tenant, "/v1/partner-accounts", bad, "bad-1")
    assert_problem(first, 422, "validation_error")
    again = _post(tenant, "/v1/partner-accounts", bad, "bad-1")
    assert_problem(again, 422, "validation_error")
    assert "idempotent-replayed" not in again.headers
    # A different body under the key is then not "reused": it is the corrected retry.
    assert _post(tenant, "/v1/partner-accounts", PARTNER, "bad-1").status_code == 201


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


# --- the lease on an in-progress key -------------------------------------------------

LEASE = timedelta(seconds=60)


def _subject(tenant: Tenant) -> AuthSubject:
    return AuthSubject(msp_id=tenant.msp_id, actor=f"key:{own_key_id(tenant)}", role=Role.ADMIN)


def _claim(runtime: Runtime, subject: AuthSubject, key: str, request_hash: str = "h") -> Any:
    with runtime.uow() as uow:
        claimed = service.claim(uow.session, subject, key, request_hash, LEASE)
        uow.commit()
    return claimed


def _records(runtime: Runtime) -> list[IdempotencyRecord]:
    with runtime.uow() as uow:
        return list(uow.session.scalars(select(IdempotencyRecord)))


def test_a_dead_requests_expired_claim_is_taken_over_by_the_retry(
    tenant: Tenant, runtime: Runtime
) -> None:
    subject = _subject(tenant)
    # What a request killed mid-way leaves behind: in progress, its lease run out.
    body = customer_body("C-3")
    request_hash = _request_hash("/v1/customers", body)
    with runtime.uow() as uow:
        uow.session.add(
            IdempotencyRecord(
                msp_id=subject.msp_id,
                principal=subject.actor,
                principal_role=subject.role.value,
                idempotency_key="cust-3",
                request_hash=request_hash,
                state="in_progress",
                lease_expires_at=datetime.now(UTC) - timedelta(seconds=1),
            )
        )
        uow.commit()
    retried = _post(tenant, "/v1/customers", body, "cust-3")
    assert retried.status_code == 201, retried.text
    replay = _post(tenant, "/v1/customers", body, "cust-3")
    assert replay.headers["idempotent-replayed"] == "true"
    assert replay.json()["id"] == retried.json()["id"]
    assert _count(tenant, "/v1/customers") == 1
    assert [(r.state, r.lease_expires_at) for r in _records(runtime)] == [("done", None)]


def test_a_live_claim_is_not_taken_over_and_a_stale_one_only_once(
    tenant: Tenant, runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    subject = _subject(tenant)
    first = _claim(runtime, subject, "k")
    assert first.outcome == "run"
    assert _claim(runtime, subject, "k").outcome == "in_progress"
    assert _claim(runtime, subject, "k", "other body").outcome == "mismatch"

    later = datetime.now(UTC) + LEASE + timedelta(seconds=1)
    monkeypatch.setattr(service, "utcnow", lambda: later)
    second = _claim(runtime, subject, "k")
    assert second.outcome == "run" and second.record_id != first.record_id
    # The new claim holds a fresh lease: a third retry does not run the request again.
    assert _claim(runtime, subject, "k").outcome == "in_progress"
    # The presumed-dead first request, should it finish after all, cannot overwrite it.
    with runtime.uow() as uow:
        service.complete(uow.session, str(first.record_id), 201, {}, "late")
        assert not service.renew(uow.session, str(first.record_id), LEASE)
        uow.commit()
    (record,) = _records(runtime)
    assert (record.id, record.state) == (second.record_id, "in_progress")


def test_a_running_request_keeps_renewing_its_lease(tenant: Tenant, runtime: Runtime) -> None:
    claimed = _claim(runtime, _subject(tenant), "long-upload")
    (before,) = _records(runtime)
    keeper = LeaseKeeper(runtime, str(claimed.record_id), timedelta(seconds=0.3))
    keeper.start()
    try:
        deadline = time.monotonic() + 30
        while _records(runtime)[0].lease_expires_at == before.lease_expires_at:
            assert time.monotonic() < deadline, "the lease was never renewed"
            time.sleep(0.05)
    finally:
        keeper.stop()
