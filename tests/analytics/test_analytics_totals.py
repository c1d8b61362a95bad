"""Issue #16 findings 1 and 7: analytics credit a customer only with its own usage, and
their lists add up to their totals.

Every expected amount is written out by hand from the rows uploaded in the test.
"""

from __future__ import annotations

import csv
import io
from decimal import Decimal
from pathlib import Path
from typing import Any

from billbyte.runtime import Runtime
from tests.conftest import Tenant
from tests.rating.factories import Scenario, row

D = Decimal
PERIOD = "2026-09"
BILLING_ACCOUNT = "01A2B3-C4D5E6-F7A8B9"


def _gcp_row(cost: str, project: str, resource: str) -> dict[str, str]:
    return row(
        cost,
        period=PERIOD,
        day=1,
        provider="Google Cloud",
        billing_account=BILLING_ACCOUNT,
        sub=project,
        service="Compute Engine",
        resource=resource,
    )


def _link(tenant: Tenant, s: Scenario, customer_id: str, identifier: str, kind: str) -> None:
    response = tenant.post(
        f"/v1/customers/{customer_id}/vendor-accounts",
        json={
            "partner_account_id": s.accounts["gcp"],
            "vendor_identifier": identifier,
            "kind": kind,
        },
    )
    assert response.status_code == 201, response.text


def _analytics(tenant: Tenant, customer_id: str) -> dict[str, Any]:
    response = tenant.get(f"/v1/customers/{customer_id}/analytics", params={"period": PERIOD})
    assert response.status_code == 200, response.text
    return dict(response.json())


def _google_customers(tenant: Tenant, runtime: Runtime, tmp_path: Path) -> tuple[str, str]:
    """The issue's example: G is linked by the billing subaccount, H by one project under
    it; 10.00 on G's own project, 100.00 on H's."""
    s = Scenario(tenant, runtime, tmp_path)
    s.account("gcp")
    g = s.customer("G")
    h = s.customer("H")
    _link(tenant, s, g, BILLING_ACCOUNT, "gcp_billing_subaccount")
    _link(tenant, s, h, "helix-ml-train", "gcp_project")
    s.upload(
        [
            _gcp_row("10.00", "gamma-web-prod", "vm-gamma"),
            _gcp_row("100.00", "helix-ml-train", "vm-helix"),
        ],
        vendor="gcp",
    )
    s.drain()
    return g, h


def test_analytics_of_a_billing_subaccount_leave_out_a_project_linked_elsewhere(
    tenant: Tenant, runtime: Runtime, tmp_path: Path
) -> None:
    g, h = _google_customers(tenant, runtime, tmp_path)
    charges_g = tenant.get(f"/v1/customers/{g}/charges", params={"period": PERIOD}).json()
    charges_h = tenant.get(f"/v1/customers/{h}/charges", params={"period": PERIOD}).json()
    assert (charges_g["cost_total"], charges_h["cost_total"]) == ("10.00", "100.00")

    mine = _analytics(tenant, g)
    assert mine["total"] == "10"
    assert mine["daily_cost"] == [{"day": "2026-09-01", "currency": "USD", "cost": "10"}]
    assert [(t["resource_id"], t["cost"]) for t in mine["top_resources"]] == [("vm-gamma", "10")]

    theirs = _analytics(tenant, h)
    assert theirs["total"] == "100"
    assert theirs["daily_cost"] == [{"day": "2026-09-01", "currency": "USD", "cost": "100"}]
    assert [(t["resource_id"], t["cost"]) for t in theirs["top_resources"]] == [("vm-helix", "100")]


def test_plan_preview_of_one_customer_leaves_out_a_project_linked_elsewhere(
    tenant: Tenant, runtime: Runtime, tmp_path: Path
) -> None:
    g, h = _google_customers(tenant, runtime, tmp_path)
    plan = tenant.post(
        "/v1/price-plans",
        json={"name": "Flat", "rules": [{"adjustment": "markup_percent", "value": "0"}]},
    ).json()["id"]
    for customer_id, cost in ((g, "10.00"), (h, "100.00")):
        response = tenant.get(
            f"/v1/price-plans/{plan}/preview",
            params={"period": PERIOD, "customer_id": customer_id},
        )
        assert response.status_code == 200, response.text
        rows = response.json()["customers"]
        assert [(r["customer_id"], r["cost"]) for r in rows] == [(customer_id, cost)]


def test_usage_summary_and_export_credit_each_customer_with_its_own_project(
    tenant: Tenant, runtime: Runtime, tmp_path: Path
) -> None:
    g, h = _google_customers(tenant, runtime, tmp_path)
    summary = tenant.get(
        "/v1/usage/summary", params={"period": PERIOD, "group_by": "customer"}
    ).json()
    by_customer = {x["key"]: D(x["billed_cost"]) for x in summary["groups"]}
    assert by_customer == {g: D(10), h: D(100)}

    # The export re-runs the engine for one customer: it must attribute with every link too.
    for customer_id, project, cost in ((g, "gamma-web-prod", D(10)), (h, "helix-ml-train", D(100))):
        response = tenant.get(f"/v1/customers/{customer_id}/focus", params={"period": PERIOD})
        assert response.status_code == 200, response.text
        rows = list(csv.DictReader(io.StringIO(response.text)))
        assert sum(D(r["BilledCost"]) for r in rows) == cost
        assert {r["SubAccountId"] for r in rows} == {project}


def test_services_beyond_twenty_still_add_up_to_the_total(
    tenant: Tenant, runtime: Runtime, tmp_path: Path
) -> None:
    s = Scenario(tenant, runtime, tmp_path)
    s.account("aws")
    a = s.customer("A")
    s.link(a, "111111111111")
    # 25 services costing 1, 2, ..., 25: 325 in all.
    s.upload([row(str(n), period=PERIOD, service=f"Service {n:02d}") for n in range(1, 26)])
    s.drain()
    body = _analytics(tenant, a)
    assert body["total"] == "325"
    services = [(x["service"], D(x["amount"])) for x in body["by_service"]]
    assert sum(amount for _, amount in services) == D(325)
    # Largest first, every service listed.
    assert services == [(f"Service {n:02d}", D(n)) for n in range(25, 0, -1)]
