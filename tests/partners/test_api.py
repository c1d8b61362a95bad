"""Partner accounts: credentials are write-only and encrypted at rest; PATCH is partial."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from billbyte.partners.models import PartnerAccount
from billbyte.partners.repository import credentials_of
from billbyte.runtime import Runtime
from tests.api.factories import AWS_KEY_ID, AWS_SECRET, database_dump, make_partner
from tests.conftest import Tenant

CREDENTIALS = {"access_key_id": AWS_KEY_ID, "secret_access_key": AWS_SECRET, "region": "eu-west-1"}
NEW_SECRET = "Zq8/rotated+SecretValue/0000000000EXAMPLE"


def _stored(runtime: Runtime, partner_id: str) -> dict[str, object] | None:
    with runtime.uow() as uow:
        account = uow.session.get(PartnerAccount, partner_id)
        assert account is not None
        return credentials_of(account, runtime.secret_key)


def _raw_column(runtime: Runtime, partner_id: str) -> str | None:
    with runtime.engine.connect() as connection:
        value = connection.execute(
            text("SELECT credentials_encrypted FROM partner_accounts WHERE id = :id"),
            {"id": partner_id},
        ).scalar_one()
    return None if value is None else str(value)


def test_create_returns_everything_but_the_credentials(tenant: Tenant) -> None:
    response = tenant.post(
        "/v1/partner-accounts",
        json={
            "vendor": "aws",
            "display_name": "AWS payer",
            "vendor_account_id": "111122223333",
            "credentials": CREDENTIALS,
            "sandbox": True,
            "endpoint_url": "http://127.0.0.1:5000",
            "partner_discount_percent": "15.5",
            "discount_terms": {"edp": "2026"},
        },
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["vendor"] == "aws" and body["display_name"] == "AWS payer"
    assert body["vendor_account_id"] == "111122223333"
    assert body["sandbox"] is True
    assert body["endpoint_url"].startswith("http://127.0.0.1:5000")
    assert body["partner_discount_percent"] == "15.5"
    assert body["discount_terms"] == {"edp": "2026"}
    assert body["status"] == "active" and body["has_credentials"] is True
    assert body["object"] == "partner_account" and body["id"].startswith("pa_")
    assert "credentials" not in body
    assert AWS_SECRET not in response.text and AWS_KEY_ID not in response.text


def test_credentials_never_come_back_and_are_encrypted_at_rest(
    tenant: Tenant, runtime: Runtime
) -> None:
    partner = make_partner(tenant, credentials=CREDENTIALS)
    url = f"/v1/partner-accounts/{partner['id']}"
    responses = [
        tenant.get(url),
        tenant.get("/v1/partner-accounts"),
        tenant.patch(url, json={"display_name": "Renamed payer"}),
        tenant.patch(url, json={"credentials": {**CREDENTIALS, "secret_access_key": NEW_SECRET}}),
        tenant.get("/v1/audit-events", params={"limit": 500}),
    ]
    for response in responses:
        assert response.status_code == 200, response.text
        for secret in (AWS_SECRET, AWS_KEY_ID, NEW_SECRET):
            assert secret not in response.text
        assert '"credentials"' not in response.text

    raw = _raw_column(runtime, partner["id"])
    assert raw is not None
    for secret in (AWS_SECRET, AWS_KEY_ID, NEW_SECRET, "secret_access_key"):
        assert secret not in raw
    dump = database_dump(runtime.engine)  # not in audit rows, idempotency rows, anywhere
    assert AWS_SECRET not in dump and NEW_SECRET not in dump and AWS_KEY_ID not in dump
    # Connectors can still read them back with the operator's secret key.
    assert _stored(runtime, partner["id"]) == {**CREDENTIALS, "secret_access_key": NEW_SECRET}


def test_credentials_need_the_right_secret_key(tenant: Tenant, runtime: Runtime) -> None:
    partner = make_partner(tenant, credentials=CREDENTIALS)
    with runtime.uow() as uow:
        account = uow.session.get(PartnerAccount, partner["id"])
        assert account is not None
        assert credentials_of(account, runtime.secret_key) == CREDENTIALS
        with pytest.raises(ValueError, match="cannot be decrypted"):
            credentials_of(account, "another-secret-key")


def test_idempotent_create_does_not_store_credentials_in_clear(
    tenant: Tenant, runtime: Runtime
) -> None:
    body = {"vendor": "azure", "display_name": "Plan", "credentials": CREDENTIALS}
    headers = {"Idempotency-Key": "pa-with-secret"}
    first = tenant.post("/v1/partner-accounts", json=body, headers=headers)
    replay = tenant.post("/v1/partner-accounts", json=body, headers=headers)
    assert first.status_code == replay.status_code == 201
    assert AWS_SECRET not in replay.text
    assert AWS_SECRET not in database_dump(runtime.engine)


def test_patch_changes_only_what_is_sent(tenant: Tenant, runtime: Runtime) -> None:
    partner = make_partner(
        tenant,
        vendor_account_id="111122223333",
        credentials=CREDENTIALS,
        sandbox=True,
        endpoint_url="https://sandbox.example.com/",
        discount_terms={"tier": "gold"},
    )
    url = f"/v1/partner-accounts/{partner['id']}"
    patched = tenant.patch(url, json={"display_name": "New name"})
    assert patched.status_code == 200
    unchanged = {k: v for k, v in partner.items() if k not in ("display_name", "updated_at")}
    assert {k: v for k, v in patched.json().items() if k in unchanged} == unchanged
    assert patched.json()["display_name"] == "New name"
    assert tenant.get(url).json() == patched.json()
    assert _stored(runtime, partner["id"]) == CREDENTIALS  # untouched when not sent

    disabled = tenant.patch(url, json={"status": "disabled", "partner_discount_percent": "20"})
    assert disabled.json()["status"] == "disabled"
    assert disabled.json()["partner_discount_percent"] == "20"
    assert disabled.json()["display_name"] == "New name"

    cleared = tenant.patch(url, json={"credentials": None, "endpoint_url": None})
    assert cleared.status_code == 200
    assert cleared.json()["has_credentials"] is False
    assert cleared.json()["endpoint_url"] is None
    assert _stored(runtime, partner["id"]) is None
    assert _raw_column(runtime, partner["id"]) is None


def test_list_filters_by_vendor(tenant: Tenant) -> None:
    aws = make_partner(tenant, "aws")
    gcp = make_partner(tenant, "gcp")
    azure = make_partner(tenant, "azure")
    ids = [p["id"] for p in tenant.get("/v1/partner-accounts").json()["data"]]
    assert ids == [aws["id"], gcp["id"], azure["id"]]
    only_gcp = tenant.get("/v1/partner-accounts", params={"vendor": "gcp"}).json()["data"]
    assert [p["id"] for p in only_gcp] == [gcp["id"]]
    assert tenant.get("/v1/partner-accounts", params={"vendor": "microsoft365"}).json() == {
        "data": [],
        "next_cursor": None,
        "has_more": False,
    }
