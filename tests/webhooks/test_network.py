"""Webhook destinations must be public addresses unless the operator allows private ones:
an MSP must not be able to make BillByte call internal services."""

from __future__ import annotations

import pytest

from billbyte.kit.outbound import OutboundPolicy, refusal
from billbyte.runtime import Runtime
from billbyte.webhooks import service, worker
from tests.conftest import Tenant
from tests.webhooks.conftest import T0, make_endpoint
from tests.webhooks.receiver import Receiver


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:9/hook",
        "http://localhost/hook",
        "http://10.1.2.3/hook",
        "http://172.16.0.1/hook",
        "http://192.168.1.1/hook",
        "http://169.254.169.254/latest",
        "http://[::1]/hook",
        "http://[fd00::1]/hook",
        "http://0.0.0.0/hook",
    ],
)
def test_non_public_destinations_are_refused(tenant: Tenant, runtime: Runtime, url: str) -> None:
    runtime.settings.webhook_allow_private = False
    response = tenant.post("/v1/webhook-endpoints", json={"url": url, "event_types": ["*"]})
    assert response.status_code == 422, (url, response.text)
    assert response.json()["code"] == "webhook_url_not_public"
    assert tenant.get("/v1/webhook-endpoints").json()["data"] == []


def test_public_literal_and_unresolvable_names_are_accepted(
    tenant: Tenant, runtime: Runtime
) -> None:
    runtime.settings.webhook_allow_private = False
    for url in ("https://93.184.216.34/hook", "https://hooks.example.invalid/billbyte"):
        response = tenant.post("/v1/webhook-endpoints", json={"url": url, "event_types": ["*"]})
        assert response.status_code == 201, (url, response.text)
    assert refusal("https://8.8.8.8/x", OutboundPolicy()) is None
    assert refusal("https://127.0.0.1/x", OutboundPolicy()) == "127.0.0.1 is not a public address"


def test_delivery_rechecks_the_destination(
    tenant: Tenant, runtime: Runtime, receiver: Receiver
) -> None:
    make_endpoint(tenant, receiver)  # registered while private addresses were allowed
    runtime.settings.webhook_allow_private = False
    with runtime.uow() as uow:
        event = service.emit(uow.session, tenant.msp_id, "test.ping", {"n": 1}, now=T0)
        uow.commit()
    assert worker.deliver_due(runtime, now=T0) == 1
    assert receiver.received == []
    detail = tenant.get(f"/v1/webhook-events/{event.id}").json()
    attempts = [a for d in detail["deliveries"] for a in d["attempts"]]
    assert attempts and "not a public address" in attempts[0]["error"]
