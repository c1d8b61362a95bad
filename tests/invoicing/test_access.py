"""Every invoicing endpoint: 401 without a key, 404 for another MSP's ids, help desk reads
but never writes, billing writes."""

from __future__ import annotations

from typing import Any

import pytest

from tests.api.factories import assert_problem, call
from tests.conftest import Tenant
from tests.invoicing.conftest import add_charges, close, customer

CN_BODY = {"reason": "r", "lines": [{"description": "d", "amount": "1.00"}]}
# (method, url template, body, success status, writes)
ENDPOINTS: list[tuple[str, str, Any, int, bool]] = [
    ("GET", "/v1/invoice-settings", None, 200, False),
    ("PUT", "/v1/invoice-settings", {"grace_days": 3, "grouping": "account"}, 200, True),
    ("POST", "/v1/invoice-runs", {"period": "2026-08"}, 202, True),
    ("GET", "/v1/invoice-runs", None, 200, False),
    ("GET", "/v1/invoice-runs/{run}", None, 200, False),
    ("GET", "/v1/invoices", None, 200, False),
    ("GET", "/v1/invoices/{invoice}", None, 200, False),
    ("GET", "/v1/invoices/{draft}", None, 200, False),
    ("GET", "/v1/invoices/{invoice}/lines", None, 200, False),
    ("GET", "/v1/invoices/{invoice}.csv", None, 200, False),
    ("GET", "/v1/invoices/{invoice}.pdf", None, 200, False),
    ("GET", "/v1/invoices/{draft}.pdf", None, 200, False),
    ("POST", "/v1/invoices/{invoice}/credit-notes", CN_BODY, 201, True),
]
IDS = [f"{m} {u}" for m, u, *_ in ENDPOINTS]


def _world(tenant: Tenant, runtime: Any, tag: str) -> dict[str, str]:
    cid = customer(tenant, f"{tag}-1", name=f"{tag} Secret Customer")
    add_charges(runtime, tenant.msp_id, cid, "2026-09", ["100.00"])
    add_charges(runtime, tenant.msp_id, cid, "2026-10", ["7.00"])
    run = close(runtime, tenant.msp_id, "2026-09")
    invoice = tenant.get("/v1/invoices", params={"status": "finalized"}).json()["data"][0]
    return {"run": run.id, "invoice": invoice["id"], "draft": f"draft_{cid}_2026-10"}


@pytest.fixture
def worlds(tenant: Tenant, other_tenant: Tenant, runtime: Any) -> tuple[dict, dict]:
    return _world(tenant, runtime, "A"), _world(other_tenant, runtime, "B")


@pytest.mark.parametrize(("method", "template", "body", "ok", "writes"), ENDPOINTS, ids=IDS)
def test_access(
    tenant: Tenant,
    other_tenant: Tenant,
    worlds: tuple[dict, dict],
    method: str,
    template: str,
    body: Any,
    ok: int,
    writes: bool,
) -> None:
    mine, theirs = worlds
    url = template.format(**mine)
    anonymous = tenant.client.request(method, url, json=body)
    assert_problem(anonymous, 401)
    if "{" in template:
        foreign = call(tenant, method, template.format(**theirs), body)
        assert_problem(foreign, 404)
        assert "B Secret" not in foreign.text
    helpdesk = Tenant(tenant.msp_id, tenant.issue_key("helpdesk"), tenant.client)
    response = call(helpdesk, method, url, body)
    if writes:
        assert_problem(response, 403)
    else:
        assert response.status_code == ok, response.text
    billing = Tenant(tenant.msp_id, tenant.issue_key("billing"), tenant.client)
    assert call(billing, method, url, body).status_code == ok


def test_lists_show_only_the_callers_documents(
    tenant: Tenant, other_tenant: Tenant, worlds: tuple[dict, dict]
) -> None:
    mine, theirs = worlds
    listed = {i["id"] for i in tenant.get("/v1/invoices").json()["data"]}
    assert listed == {mine["invoice"], mine["draft"]}
    runs = {r["id"] for r in tenant.get("/v1/invoice-runs").json()["data"]}
    assert runs == {mine["run"]}
    assert theirs["invoice"] not in listed
    filtered = tenant.get("/v1/invoices", params={"customer_id": theirs["draft"][6:-8]})
    assert filtered.json()["data"] == []


def test_pagination_walks_drafts_and_invoices(tenant: Tenant, runtime: Any) -> None:
    for index in range(5):
        cid = customer(tenant, f"P{index}")
        add_charges(runtime, tenant.msp_id, cid, "2026-09", ["1.00"])
        add_charges(runtime, tenant.msp_id, cid, "2026-10", ["2.00"])
    close(runtime, tenant.msp_id, "2026-09")
    seen, cursor = [], None
    while True:
        page = tenant.get(
            "/v1/invoices", params={"limit": 3, **({"cursor": cursor} if cursor else {})}
        ).json()
        seen += [i["id"] for i in page["data"]]
        if not page["has_more"]:
            break
        cursor = page["next_cursor"]
    assert len(seen) == len(set(seen)) == 10 and seen == sorted(seen)
    statuses = {
        i["status"] for i in tenant.get("/v1/invoices", params={"limit": 20}).json()["data"]
    }
    assert statuses == {"draft", "finalized"}
