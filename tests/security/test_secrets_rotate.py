"""Key rotation: the secret key is a ring (first encrypts, all decrypt) and
``billbyte secrets rotate`` re-encrypts every stored secret under the first key, so the old
key can then be removed."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from billbyte.api.app import create_app
from billbyte.idempotency.models import IdempotencyRecord
from billbyte.kit.crypto import decrypt_json, encrypt_json
from billbyte.partners.models import PartnerAccount
from billbyte.partners.repository import credentials_of
from billbyte.runtime import Runtime
from billbyte.tenancy.key_rotation import rotate_secrets
from billbyte.webhooks.models import WebhookEndpoint
from billbyte.webhooks.service import decrypt_secret
from tests.cli.conftest import SECRET_KEY as CLI_SECRET_KEY
from tests.cli.conftest import Cli
from tests.cli.conftest import cli as cli  # the fixture
from tests.conftest import Tenant

OLD = "test-secret-key"  # the runtime fixture's key
NEW = "a-brand-new-secret-key"
CREDENTIALS = {"access_key_id": "AKIAROTATIONTEST0001", "secret_access_key": "s3cr3t/value"}
PARTNERS = "partner_accounts.credentials_encrypted"
WEBHOOKS = "webhook_endpoints.secret_encrypted"
IDEMPOTENCY = "idempotency_records.response_body"


def test_a_key_ring_encrypts_with_its_first_key_and_decrypts_with_any() -> None:
    sealed = encrypt_json("new, old", {"x": 1})
    assert decrypt_json("new", sealed) == {"x": 1}
    with pytest.raises(ValueError):
        decrypt_json("old", sealed)
    assert decrypt_json("new,old", encrypt_json("old", {"y": 2})) == {"y": 2}


@dataclass
class Seeded:
    partner_id: str
    webhook_id: str
    webhook_secret: str
    idempotent_secrets: dict[str, str]  # Idempotency-Key → the API key secret it returned


KEY_BODY = {"name": "integration", "role": "billing"}


def seed(tenant: Tenant) -> Seeded:
    partner = tenant.post(
        "/v1/partner-accounts",
        json={"vendor": "aws", "display_name": "Payer", "credentials": CREDENTIALS},
    )
    assert partner.status_code == 201, partner.text
    without = tenant.post("/v1/partner-accounts", json={"vendor": "gcp", "display_name": "None"})
    assert without.status_code == 201, without.text
    webhook = tenant.post(
        "/v1/webhook-endpoints", json={"url": "http://127.0.0.1:9/hook", "event_types": ["*"]}
    )
    assert webhook.status_code == 201, webhook.text
    idempotent = {}
    for key in ("idem-one", "idem-two"):
        response = tenant.post("/v1/api-keys", json=KEY_BODY, headers={"Idempotency-Key": key})
        assert response.status_code == 201, response.text
        idempotent[key] = response.json()["secret"]
    return Seeded(
        partner_id=partner.json()["id"],
        webhook_id=webhook.json()["id"],
        webhook_secret=webhook.json()["secret"],
        idempotent_secrets=idempotent,
    )


def keyed(runtime: Runtime, secret_key: str) -> Runtime:
    return dataclasses.replace(runtime, secret_key=secret_key)


def read_everything(runtime: Runtime, seeded: Seeded) -> dict[str, Any]:
    """Every seeded secret, decrypted with the runtime's key (ValueError if it cannot)."""
    with runtime.uow() as uow:
        partner = uow.session.get(PartnerAccount, seeded.partner_id)
        webhook = uow.session.get(WebhookEndpoint, seeded.webhook_id)
        assert partner is not None and webhook is not None
        bodies = [
            json.loads(decrypt_json(runtime.secret_key, sealed)["body"])["secret"]
            for sealed in uow.session.scalars(
                IdempotencyRecord.__table__.select()
                .with_only_columns(IdempotencyRecord.response_body)
                .order_by(IdempotencyRecord.idempotency_key)
            )
        ]
        return {
            "credentials": credentials_of(partner, runtime.secret_key),
            "webhook": decrypt_secret(webhook.secret_encrypted, runtime.secret_key),
            "idempotent": bodies,
            "partner_updated_at": partner.updated_at,
        }


def rewritten(outcomes: Any) -> dict[str, int]:
    return {o.column: o.rewritten for o in outcomes}


def test_rotate_then_remove_the_old_key(runtime: Runtime, tenant: Tenant) -> None:
    seeded = seed(tenant)
    before = read_everything(runtime, seeded)
    assert before["credentials"] == CREDENTIALS
    assert before["webhook"] == seeded.webhook_secret
    assert before["idempotent"] == [seeded.idempotent_secrets[k] for k in ("idem-one", "idem-two")]
    with pytest.raises(ValueError):
        read_everything(keyed(runtime, NEW), seeded)  # so that what follows means something

    # batch_size=1: every row is its own transaction, so batching is exercised too.
    outcomes = rotate_secrets(keyed(runtime, f"{NEW},{OLD}"), batch_size=1)
    assert rewritten(outcomes) == {PARTNERS: 1, WEBHOOKS: 1, IDEMPOTENCY: 2}
    assert all(not o.undecryptable for o in outcomes)

    assert read_everything(keyed(runtime, NEW), seeded) == before  # updated_at kept as well
    with pytest.raises(ValueError):
        read_everything(keyed(runtime, OLD), seeded)

    # The API, now configured with the new key only, still replays a stored response.
    api = TestClient(create_app(keyed(runtime, NEW)), raise_server_exceptions=False)
    replay = api.post(
        "/v1/api-keys", json=KEY_BODY, headers={**tenant.headers, "Idempotency-Key": "idem-one"}
    )
    assert replay.headers.get("idempotent-replayed") == "true"
    assert replay.json()["secret"] == seeded.idempotent_secrets["idem-one"]


def test_rotation_is_rerunnable(runtime: Runtime, tenant: Tenant) -> None:
    seed(tenant)
    ring = keyed(runtime, f"{NEW},{OLD}")
    rotate_secrets(ring)
    again = rotate_secrets(ring)
    assert rewritten(again) == {PARTNERS: 0, WEBHOOKS: 0, IDEMPOTENCY: 0}
    assert {o.column: o.examined for o in again} == {PARTNERS: 1, WEBHOOKS: 1, IDEMPOTENCY: 2}


def test_a_value_no_key_can_decrypt_is_reported_not_lost(runtime: Runtime, tenant: Tenant) -> None:
    seeded = seed(tenant)
    foreign = encrypt_json("a-key-nobody-configured", {"secret": "whsec_foreign"})
    with runtime.engine.begin() as connection:
        connection.execute(
            text("UPDATE webhook_endpoints SET secret_encrypted = :value WHERE id = :id"),
            {"value": foreign, "id": seeded.webhook_id},
        )
    outcomes = {o.column: o for o in rotate_secrets(keyed(runtime, f"{NEW},{OLD}"))}
    assert outcomes[WEBHOOKS].undecryptable == [seeded.webhook_id]
    assert outcomes[PARTNERS].rewritten == 1  # the rest is still rotated
    with runtime.engine.connect() as connection:
        kept = connection.execute(
            text("SELECT secret_encrypted FROM webhook_endpoints WHERE id = :id"),
            {"id": seeded.webhook_id},
        ).scalar_one()
    assert kept == foreign


def test_the_cli_command(cli: Cli) -> None:
    msp = cli.json("msp", "create", "--name", "Alpha Hosting")
    api = cli.api()
    created = api.post(
        "/v1/partner-accounts",
        headers={"Authorization": f"Bearer {msp['api_key']}"},
        json={"vendor": "aws", "display_name": "Payer", "credentials": CREDENTIALS},
    )
    assert created.status_code == 201, created.text
    ring = f"{NEW},{CLI_SECRET_KEY}"

    first = cli.run("secrets", "rotate", "--json", BILLBYTE_SECRET_KEY=ring)
    assert first.exit_code == 0, first.stderr
    assert json.loads(first.stdout)["rewritten"] == 1  # the partner credentials
    second = cli.run("secrets", "rotate", BILLBYTE_SECRET_KEY=ring)
    assert second.exit_code == 0, second.stderr
    assert "0 of 1 re-encrypted" in second.stdout

    with cli.engine().connect() as connection:
        sealed = connection.execute(text("SELECT credentials_encrypted FROM partner_accounts"))
        assert decrypt_json(NEW, sealed.scalar_one()) == CREDENTIALS

    # Someone removed the old key before rotating: refused, with what to do.
    wrong = cli.run("secrets", "rotate", BILLBYTE_SECRET_KEY="yet-another-key")
    assert wrong.exit_code == 1
    assert "cannot be decrypted with any configured key" in wrong.stderr
    assert "Do not remove old keys" in wrong.stderr


def test_partner_credentials_survive_an_update_after_rotation(
    runtime: Runtime, tenant: Tenant
) -> None:
    seeded = seed(tenant)
    rotate_secrets(keyed(runtime, f"{NEW},{OLD}"))
    api = TestClient(create_app(keyed(runtime, NEW)), raise_server_exceptions=False)
    patched = api.patch(
        f"/v1/partner-accounts/{seeded.partner_id}",
        headers=tenant.headers,
        json={"display_name": "Renamed"},
    )
    assert patched.status_code == 200, patched.text
    assert read_everything(keyed(runtime, NEW), seeded)["credentials"] == CREDENTIALS
