"""The console's audit log: the API's events, filtered by action and target, paginated
with the API's cursor; a bad cursor is a 4xx page."""

from __future__ import annotations

import re

import pytest

from billbyte.runtime import Runtime
from tests.conftest import Tenant
from tests.console.admin_helpers import staff_client

ROW = re.compile(r'data-audit="([^"]+)"')


def _seed(tenant: Tenant, plans: int) -> None:
    for n in range(plans):
        assert tenant.post("/v1/price-plans", json={"name": f"P{n}"}).status_code == 201


def test_the_log_is_the_apis_page_by_page(runtime: Runtime, tenant: Tenant) -> None:
    _seed(tenant, 55)
    client = staff_client(runtime, tenant.msp_id, "helpdesk")
    api = tenant.get("/v1/audit-events").json()
    page = client.get("/console/audit")
    assert page.status_code == 200
    assert ROW.findall(page.text) == [e["id"] for e in api["data"]]
    assert api["next_cursor"] and f"cursor={api['next_cursor']}" in page.text
    api2 = tenant.get("/v1/audit-events", params={"cursor": api["next_cursor"]}).json()
    page2 = client.get("/console/audit", params={"cursor": api["next_cursor"]})
    assert ROW.findall(page2.text) == [e["id"] for e in api2["data"]]
    assert len(api["data"]) + len(api2["data"]) == 57  # the MSP, its first key and 55 plans


def test_filters_by_target_and_action(runtime: Runtime, tenant: Tenant) -> None:
    _seed(tenant, 3)
    plan_id = tenant.get("/v1/price-plans").json()["data"][1]["id"]
    client = staff_client(runtime, tenant.msp_id)
    by_target = tenant.get("/v1/audit-events", params={"target_id": plan_id}).json()["data"]
    page = client.get("/console/audit", params={"target": plan_id})
    assert ROW.findall(page.text) == [e["id"] for e in by_target] and len(by_target) == 1
    everything = tenant.get("/v1/audit-events").json()["data"]
    created = [e["id"] for e in everything if e["action"] == "price_plan.created"]
    page = client.get("/console/audit", params={"action": "price_plan.created"})
    assert ROW.findall(page.text) == created and len(created) == 3


@pytest.mark.parametrize("cursor", ["x' OR 1=1 --", "9" * 400, "aud_", "AUD_01J000"])
def test_a_bad_cursor_is_a_4xx_page(runtime: Runtime, tenant: Tenant, cursor: str) -> None:
    client = staff_client(runtime, tenant.msp_id)
    response = client.get("/console/audit", params={"cursor": cursor})
    assert 400 <= response.status_code < 500
    assert "text/html" in response.headers["content-type"]


def test_another_msps_events_are_not_shown(
    runtime: Runtime, tenant: Tenant, other_tenant: Tenant
) -> None:
    _seed(other_tenant, 2)
    theirs = {e["id"] for e in other_tenant.get("/v1/audit-events").json()["data"]}
    page = staff_client(runtime, tenant.msp_id).get("/console/audit")
    assert not theirs & set(ROW.findall(page.text))
