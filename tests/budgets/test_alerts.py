"""Budget alerts after rating: exact boundaries, once per budget, period and threshold,
one webhook event each, spend as the charges API totals it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from billbyte.rating.tasks import rate_all
from billbyte.runtime import Runtime
from tests.conftest import Tenant
from tests.rating.factories import Scenario, row

SUB = "000000000001"


def _setup(s: Scenario) -> str:
    s.account("aws")
    customer = s.customer("A")  # USD, priced at cost (no plan)
    s.link(customer, SUB)
    return customer


def _spend(s: Scenario, amount: str, period: str = "2025-03") -> None:
    """The month's usage is now one line of ``amount`` (at cost)."""
    s.upload([row(amount, sub=SUB, period=period)])
    s.drain()


def _alerts(tenant: Tenant, customer: str, period: str | None = "2025-03") -> list[dict[str, Any]]:
    params = {"period": period} if period else {}
    response = tenant.get(f"/v1/customers/{customer}/budget-alerts", params=params)
    assert response.status_code == 200, response.text
    return list(response.json()["data"])


def _events(tenant: Tenant) -> list[dict[str, Any]]:
    response = tenant.get(
        "/v1/webhook-events", params={"type": "budget.threshold_crossed", "limit": 100}
    )
    assert response.status_code == 200, response.text
    return [e["payload"]["data"] for e in response.json()["data"]]


def test_thresholds_fire_at_their_exact_boundary_once_per_period(
    tenant: Tenant, runtime: Runtime, tmp_path: Path
) -> None:
    s = Scenario(tenant, runtime, tmp_path)
    customer = _setup(s)
    made = tenant.post(
        f"/v1/customers/{customer}/budgets",
        json={"name": "Cloud", "amount": "1000.00", "thresholds": [50, 80, 100]},
    )
    assert made.status_code == 201, made.text
    budget = made.json()["id"]

    _spend(s, "499.99")
    assert s.charges(customer)["total"] == "499.99"
    assert _alerts(tenant, customer) == [] and _events(tenant) == []

    # 499.994 is 499.99 as the charges API rounds it: still below 50 %.
    _spend(s, "499.994")
    assert s.charges(customer)["total"] == "499.99"
    assert _alerts(tenant, customer) == []

    # 499.995 rounds (half-even) to 500.00: exactly 50 %.
    _spend(s, "499.995")
    assert s.charges(customer)["total"] == "500.00"
    alerts = _alerts(tenant, customer)
    assert [(a["threshold"], a["spend"], a["amount"], a["currency"]) for a in alerts] == [
        (50, "500.00", "1000.00", "USD")
    ]
    assert alerts[0]["budget_id"] == budget and alerts[0]["period"] == "2025-03"

    # Re-rating the same charges, and a restatement below the next threshold: nothing new.
    rate_all(runtime, tenant.msp_id)
    rate_all(runtime, tenant.msp_id, "2025-03")
    _spend(s, "799.99")
    assert [a["threshold"] for a in _alerts(tenant, customer)] == [50]

    # A credit takes spend back under 50 %; crossing it again in the month fires nothing.
    _spend(s, "10")
    _spend(s, "650")
    assert [a["threshold"] for a in _alerts(tenant, customer)] == [50]

    # Straight past two thresholds at once: both fire, with the spend that crossed them.
    _spend(s, "1000.00")
    rate_all(runtime, tenant.msp_id)
    alerts = _alerts(tenant, customer)
    assert [(a["threshold"], a["spend"]) for a in alerts] == [
        (50, "500.00"),
        (80, "1000.00"),
        (100, "1000.00"),
    ]

    events = _events(tenant)
    assert sorted((e["threshold"], e["spend"]) for e in events) == [
        (50, "500.00"),
        (80, "1000.00"),
        (100, "1000.00"),
    ]
    assert all(
        (e["customer_id"], e["budget_id"], e["period"], e["amount"], e["currency"])
        == (customer, budget, "2025-03", "1000.00", "USD")
        for e in events
    )
    assert {e["external_id"] for e in events} == {"A"}
    assert {e["budget_name"] for e in events} == {"Cloud"}

    # Another month is another set of alerts.
    _spend(s, "800", period="2025-04")
    assert [a["threshold"] for a in _alerts(tenant, customer, "2025-04")] == [50, 80]
    assert len(_alerts(tenant, customer, None)) == 5
    assert len(_events(tenant)) == 5


def test_changing_the_budget_keeps_what_fired_and_fires_what_it_now_reaches(
    tenant: Tenant, runtime: Runtime, tmp_path: Path
) -> None:
    s = Scenario(tenant, runtime, tmp_path)
    customer = _setup(s)
    budget = tenant.post(
        f"/v1/customers/{customer}/budgets", json={"amount": "1000", "thresholds": [50, 100]}
    ).json()["id"]
    _spend(s, "600")
    assert [a["threshold"] for a in _alerts(tenant, customer)] == [50]

    # Halving the amount: spend is now 120 %; 100 fires at the next rating, 50 does not again.
    patched = tenant.patch(
        f"/v1/budgets/{budget}", json={"amount": "500", "thresholds": [50, 100, 110]}
    )
    assert patched.status_code == 200, patched.text
    assert [a["threshold"] for a in _alerts(tenant, customer)] == [50]
    rate_all(runtime, tenant.msp_id)
    alerts = _alerts(tenant, customer)
    assert [(a["threshold"], a["amount"]) for a in alerts] == [
        (50, "1000.00"),
        (100, "500.00"),
        (110, "500.00"),
    ]
    assert len(_events(tenant)) == 3

    # Deleting the budget removes its alerts; the webhook events already sent stay.
    assert tenant.delete(f"/v1/budgets/{budget}").status_code == 204
    assert _alerts(tenant, customer, None) == []
    assert len(_events(tenant)) == 3


def test_two_budgets_fire_independently_and_customers_never_mix(
    tenant: Tenant, runtime: Runtime, tmp_path: Path
) -> None:
    s = Scenario(tenant, runtime, tmp_path)
    customer = _setup(s)
    other = s.customer("B")
    s.link(other, "000000000002")
    small = tenant.post(
        f"/v1/customers/{customer}/budgets", json={"amount": "100", "thresholds": [90]}
    ).json()["id"]
    large = tenant.post(
        f"/v1/customers/{customer}/budgets", json={"amount": "10000", "thresholds": [1, 2]}
    ).json()["id"]
    others = tenant.post(
        f"/v1/customers/{other}/budgets", json={"amount": "1", "thresholds": [1]}
    ).json()["id"]
    s.upload([row("150", sub=SUB), row("0.00", sub="000000000002")])
    s.drain()
    alerts = _alerts(tenant, customer)
    assert sorted((a["budget_id"], a["threshold"]) for a in alerts) == sorted(
        [(small, 90), (large, 1)]
    )
    assert _alerts(tenant, other) == []  # B spent nothing; A's spend is not B's
    assert others not in {a["budget_id"] for a in alerts}
