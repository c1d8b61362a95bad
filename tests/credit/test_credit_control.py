"""Credit control after rating: one event per threshold crossing and period, webhooks,
suspension requests, prepaid balances before credit limits."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

from billbyte.rating.tasks import rate_all
from billbyte.runtime import Runtime
from tests.conftest import Tenant
from tests.rating.factories import Scenario, row

D = Decimal
# Marked for suspension; once the vendor connectors act on the request, suspended.
REQUESTED = ("suspension_requested", "suspended")


def _setup(s: Scenario, **customers: dict[str, Any]) -> dict[str, str]:
    """Customers (USD, priced at cost: no plan) each linked to their own sub-account."""
    s.account("aws")
    ids = {}
    for index, (name, extra) in enumerate(customers.items()):
        ids[name] = s.customer(name, **extra)
        s.link(ids[name], f"{index + 1:012d}")
    return ids


def _spend(s: Scenario, amounts: dict[str, str], customers: dict[str, str]) -> None:
    """Replace the month's usage: each customer spends the given amount (at cost)."""
    names = list(customers)
    s.upload(row(amount, sub=f"{names.index(n) + 1:012d}") for n, amount in amounts.items())
    s.drain()


def _credit(s: Scenario, customer: str, period: str = "2025-03") -> dict[str, Any]:
    response = s.tenant.get(f"/v1/customers/{customer}/credit", params={"period": period})
    assert response.status_code == 200, response.text
    return dict(response.json())


def _webhooks(tenant: Tenant) -> list[dict[str, Any]]:
    response = tenant.get(
        "/v1/webhook-events", params={"type": "credit.threshold_reached", "limit": 100}
    )
    assert response.status_code == 200, response.text
    events = response.json()["data"]
    assert all(e["type"] == "credit.threshold_reached" for e in events)
    return [e["payload"]["data"] for e in events]


def test_each_threshold_once_per_period(tenant: Tenant, runtime: Runtime, tmp_path: Path) -> None:
    policy = tenant.client.put(
        "/v1/credit-policy",
        json={"thresholds": [100, 50, 80], "action": "notify"},
        headers=tenant.headers,
    )
    assert policy.status_code == 200, policy.text
    assert policy.json() == {
        "thresholds": [50, 80, 100],
        "action": "notify",
        "suspend_at": 100,
        "prepaid_overdraft": False,
    }
    assert tenant.get("/v1/credit-policy").json()["thresholds"] == [50, 80, 100]
    s = Scenario(tenant, runtime, tmp_path)
    ids = _setup(s, A={"credit_limit": "1000"}, NOLIMIT={})
    a = ids["A"]

    _spend(s, {"A": "333.333", "NOLIMIT": "5000"}, ids)
    standing = _credit(s, a)
    assert (standing["spend"], standing["base"], standing["base_kind"]) == (
        "333.33",
        "1000",
        "credit_limit",
    )
    assert D(standing["percent"]) == D("33.33") and standing["events"] == []
    assert _webhooks(tenant) == []
    nolimit = _credit(s, ids["NOLIMIT"])
    assert nolimit["percent"] is None and nolimit["base"] is None and nolimit["events"] == []

    _spend(s, {"A": "612.50", "NOLIMIT": "5000"}, ids)
    assert [e["threshold"] for e in _credit(s, a)["events"]] == [50]
    # Re-rating and a restatement below the next threshold raise nothing new.
    rate_all(runtime, tenant.msp_id)
    _spend(s, {"A": "700", "NOLIMIT": "5000"}, ids)
    assert [e["threshold"] for e in _credit(s, a)["events"]] == [50]
    # Dropping below 50 % and crossing it again in the same period: still once.
    _spend(s, {"A": "10", "NOLIMIT": "5000"}, ids)
    _spend(s, {"A": "800", "NOLIMIT": "5000"}, ids)
    assert [e["threshold"] for e in _credit(s, a)["events"]] == [50, 80]
    _spend(s, {"A": "1000.00", "NOLIMIT": "5000"}, ids)
    rate_all(runtime, tenant.msp_id)
    standing = _credit(s, a)
    assert D(standing["percent"]) == D("100")
    events = standing["events"]
    assert [(e["threshold"], e["action_taken"], e["currency"]) for e in events] == [
        (50, "notified", "USD"),
        (80, "notified", "USD"),
        (100, "notified", "USD"),
    ]
    assert [D(e["spend"]) for e in events] == [D("612.50"), D("800"), D("1000")]
    assert all(D(e["limit"]) == D("1000") for e in events)
    assert standing["status"] == "active"

    hooks = _webhooks(tenant)
    assert sorted((h["customer_id"], h["threshold"]) for h in hooks) == [
        (a, 50),
        (a, 80),
        (a, 100),
    ]
    assert all(h["external_id"] == "A" and h["period"] == "2025-03" for h in hooks)

    # Another period is another set of crossings.
    s.upload([row("900", sub="000000000001", period="2025-04")])
    s.drain()
    april = _credit(s, a, "2025-04")
    assert [e["threshold"] for e in april["events"]] == [50, 80]
    assert len(_credit(s, a)["events"]) == 3
    assert len(_webhooks(tenant)) == 5


def test_suspend_policy_requests_suspension_at_its_threshold(
    tenant: Tenant, runtime: Runtime, tmp_path: Path
) -> None:
    response = tenant.client.put(
        "/v1/credit-policy",
        json={"thresholds": [50, 80, 100], "action": "suspend", "suspend_at": 80},
        headers=tenant.headers,
    )
    assert response.status_code == 200, response.text
    s = Scenario(tenant, runtime, tmp_path)
    ids = _setup(
        s,
        LOW={"credit_limit": "100"},
        HIGH={"credit_limit": "100"},
        NOTIFY={"credit_limit": "100", "credit_action": "notify"},
        OWN={"credit_limit": "100", "credit_thresholds": [10]},
    )
    _spend(s, {"LOW": "79.99", "HIGH": "90", "NOTIFY": "150", "OWN": "15"}, ids)

    low = _credit(s, ids["LOW"])
    assert low["status"] == "active"
    assert [(e["threshold"], e["action_taken"]) for e in low["events"]] == [(50, "notified")]
    high = _credit(s, ids["HIGH"])
    assert high["status"] in REQUESTED
    assert [(e["threshold"], e["action_taken"]) for e in high["events"]] == [
        (50, "notified"),
        (80, "suspension_requested"),
    ]
    customer = tenant.get(f"/v1/customers/{ids['HIGH']}").json()
    assert customer["status"] in REQUESTED
    audit = tenant.get("/v1/audit-events", params={"target_id": ids["HIGH"], "limit": 100}).json()[
        "data"
    ]
    assert "customer.suspension_requested" in {e["action"] for e in audit}
    notify = _credit(s, ids["NOTIFY"])
    assert notify["status"] == "active"
    assert [(e["threshold"], e["action_taken"]) for e in notify["events"]] == [
        (50, "notified"),
        (80, "notified"),
        (100, "notified"),
    ]
    own = _credit(s, ids["OWN"])
    assert [e["threshold"] for e in own["events"]] == [10]
    hooks = {(h["customer_id"], h["threshold"]): h["action"] for h in _webhooks(tenant)}
    assert hooks[(ids["HIGH"], 80)] == "suspension_requested"
    assert hooks[(ids["HIGH"], 50)] == "notified"
    assert len(hooks) == 1 + 2 + 3 + 1
    # Crossing the next threshold later does not request it twice.
    _spend(s, {"LOW": "79.99", "HIGH": "120", "NOTIFY": "150", "OWN": "15"}, ids)
    high = _credit(s, ids["HIGH"])
    assert [(e["threshold"], e["action_taken"]) for e in high["events"]][-1] == (
        100,
        "suspension_requested",
    )
    assert high["status"] in REQUESTED


def test_prepaid_balance_takes_precedence_over_credit_limit(
    tenant: Tenant, runtime: Runtime, tmp_path: Path
) -> None:
    s = Scenario(tenant, runtime, tmp_path)
    ids = _setup(
        s,
        BOTH={"credit_limit": "1000", "prepaid_balance": "200"},
        PREPAID={"prepaid_balance": "50"},
    )
    _spend(s, {"BOTH": "170", "PREPAID": "10"}, ids)
    both = _credit(s, ids["BOTH"])
    assert (both["base"], both["base_kind"], D(both["percent"])) == (
        "200",
        "prepaid_balance",
        D("85"),
    )
    assert [(e["threshold"], D(e["limit"])) for e in both["events"]] == [
        (50, D("200")),
        (80, D("200")),
    ]
    prepaid = _credit(s, ids["PREPAID"])
    assert D(prepaid["percent"]) == D("20") and prepaid["events"] == []
    # The balance is drawn down by the charges: 200 - 170 left.
    assert (D(both["prepaid_remaining"]), D(both["prepaid_drawn"])) == (D("30"), D("170"))
    # Writing prepaid_balance sets the *remaining* balance (an audited adjustment of +970),
    # so the period's base is 1000 left + 170 drawn.
    tenant.patch(f"/v1/customers/{ids['BOTH']}", json={"prepaid_balance": "1000"})
    s.drain()
    both = _credit(s, ids["BOTH"])
    assert D(both["prepaid_remaining"]) == D("1000") and D(both["base"]) == D("1170")
    assert D(both["percent"]) == D("14.53") and len(both["events"]) == 2
