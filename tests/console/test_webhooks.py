"""The console's webhook pages: endpoints through the API's service and outbound guard,
events with their deliveries, replay as the API replays."""

from __future__ import annotations

from dataclasses import replace

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from billbyte.app import create_app
from billbyte.runtime import Runtime
from billbyte.webhooks.models import WebhookDelivery, WebhookEndpoint
from tests.api.factories import make_customer
from tests.conftest import Tenant
from tests.console.admin_helpers import post, staff_client, token_of
from tests.web.people import add_staff, signed_in_client

HOOK = "http://127.0.0.1:9/hook"


def _count(runtime: Runtime, model: type) -> int:
    with runtime.uow(read_only=True) as uow:
        return uow.session.scalar(select(func.count()).select_from(model)) or 0


def _endpoint(tenant: Tenant, url: str = HOOK) -> str:
    response = tenant.post("/v1/webhook-endpoints", json={"url": url, "event_types": ["*"]})
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def test_the_page_lists_the_apis_endpoints_and_events(runtime: Runtime, tenant: Tenant) -> None:
    _endpoint(tenant)
    make_customer(tenant)
    page = staff_client(runtime, tenant.msp_id, "helpdesk").get("/console/webhooks")
    assert page.status_code == 200
    for endpoint in tenant.get("/v1/webhook-endpoints").json()["data"]:
        assert f'data-endpoint="{endpoint["id"]}"' in page.text
        assert endpoint["url"] in page.text
    events = tenant.get("/v1/webhook-events").json()["data"]
    assert events
    for event in events:
        assert f'data-event="{event["id"]}"' in page.text
        detail = tenant.get(f"/v1/webhook-events/{event['id']}").json()
        statuses = [d["status"] for d in detail["deliveries"]]
        assert statuses == ["pending"]
    assert 'action="/console/webhooks/endpoints"' not in page.text  # help desk: no form


def test_creating_an_endpoint_shows_its_secret_once(runtime: Runtime, tenant: Tenant) -> None:
    billing = staff_client(runtime, tenant.msp_id, "billing")
    response = billing.post(
        "/console/webhooks/endpoints",
        data={
            "csrf_token": token_of(billing),
            "url": HOOK,
            "event_types": ["customer.created", "invoice.finalized"],
        },
    )
    assert response.status_code == 200, response.text
    assert "whsec_" in response.text
    (endpoint,) = tenant.get("/v1/webhook-endpoints").json()["data"]
    assert endpoint["url"] == HOOK
    assert endpoint["event_types"] == ["customer.created", "invoice.finalized"]
    assert "whsec_" not in billing.get("/console/webhooks").text


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/hook",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::ffff:127.0.0.1]/x",
        "http://10.0.0.1/x",
        "http://metadata.google.internal/computeMetadata/v1/",
    ],
)
def test_the_outbound_guard_refuses_as_in_the_api(
    runtime: Runtime, tenant: Tenant, url: str
) -> None:
    strict = replace(
        runtime,
        settings=runtime.settings.model_copy(
            update={
                "outbound_allow_private": False,
                "outbound_allow_http": False,
                "outbound_allowed_ports": "443,8443",
            }
        ),
    )
    client = TestClient(create_app(strict), raise_server_exceptions=False)
    api = client.post(
        "/v1/webhook-endpoints", headers=tenant.headers, json={"url": url, "event_types": ["*"]}
    )
    assert api.status_code == 422
    signed_in_client(client, "console", add_staff(strict, tenant.msp_id, "admin"))
    page = post(client, "/console/webhooks/endpoints", {"url": url, "event_types": "*"})
    assert page.status_code == 422, page.text
    assert api.json()["detail"] in page.text.replace("&#39;", "'").replace("&amp;", "&")
    assert _count(runtime, WebhookEndpoint) == 0


def test_bad_endpoint_input_is_a_422_page(runtime: Runtime, tenant: Tenant) -> None:
    admin = staff_client(runtime, tenant.msp_id)
    for data in (
        {"url": "ftp://x.example/", "event_types": "*"},
        {"url": HOOK},
        {"url": HOOK, "event_types": "no.such.event"},
    ):
        assert post(admin, "/console/webhooks/endpoints", data).status_code == 422, data
    assert _count(runtime, WebhookEndpoint) == 0


def test_disable_after_confirmation(runtime: Runtime, tenant: Tenant) -> None:
    endpoint_id = _endpoint(tenant)
    admin = staff_client(runtime, tenant.msp_id)
    confirm = admin.get(f"/console/webhooks/endpoints/{endpoint_id}/disable")
    assert confirm.status_code == 200 and HOOK in confirm.text
    assert post(admin, f"/console/webhooks/endpoints/{endpoint_id}/disable").status_code == 303
    assert tenant.get("/v1/webhook-endpoints").json()["data"] == []


def test_replay_queues_new_deliveries_as_the_api_does(runtime: Runtime, tenant: Tenant) -> None:
    _endpoint(tenant)
    make_customer(tenant)
    (event,) = tenant.get("/v1/webhook-events").json()["data"]
    admin = staff_client(runtime, tenant.msp_id)
    page = admin.get(f"/console/webhooks/events/{event['id']}")
    assert page.status_code == 200 and event["type"] in page.text
    before = _count(runtime, WebhookDelivery)
    assert post(admin, f"/console/webhooks/events/{event['id']}/replay").status_code == 303
    detail = tenant.get(f"/v1/webhook-events/{event['id']}").json()
    assert [d["replay"] for d in detail["deliveries"]] == [False, True]
    assert _count(runtime, WebhookDelivery) == before + 1
