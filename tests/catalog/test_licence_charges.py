"""Licence subscriptions in the customer's charges, beside usage, with the right totals."""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal
from pathlib import Path

import pytest

from billbyte.rating.tasks import rate_all
from billbyte.runtime import Runtime
from tests.catalog.factories import (
    DEVOPS,
    FEE,
    M365_CHANGE,
    M365_CHARGE,
    PERIOD,
    World,
    build,
    expected_usage,
)
from tests.conftest import Tenant

CENT = Decimal("0.01")


def cents(value: Decimal) -> Decimal:
    return value.quantize(CENT, rounding=ROUND_HALF_EVEN)


@pytest.fixture
def world(tenant: Tenant, runtime: Runtime, tmp_path: Path) -> World:
    return build(tenant, runtime, tmp_path)


def test_licence_lines_sit_beside_usage_and_add_up(world: World) -> None:
    charges = world.charges()
    assert charges["rating"]["status"] == "ok", charges["rating"]
    lines = world.lines()
    kinds = sorted({line["kind"] for line in lines})
    assert kinds == ["fee", "licence", "usage"]
    licences = {
        (line["description"].split(":")[0], line["quantity"]): line
        for line in lines
        if line["kind"] == "licence"
    }
    assert set(licences) == {
        ("Microsoft 365 Business Premium", "10"),
        ("Microsoft 365 Business Premium", "5"),
        ("Azure DevOps Basic", "3"),
    }
    advance = licences[("Microsoft 365 Business Premium", "10")]
    assert Decimal(advance["amount_exact"]) == M365_CHARGE
    assert advance["service_period"] == {"start": "2026-04-01", "end": "2026-04-30"}
    assert advance["unit"] == "seat" and advance["charge_category"] == "Purchase"
    assert Decimal(advance["cost_local"]) == Decimal("176.00")  # 10 x 17.60
    change = licences[("Microsoft 365 Business Premium", "5")]
    assert abs(Decimal(change["amount_exact"]) - M365_CHANGE) < Decimal("1e-17")
    assert change["service_period"] == {"start": "2026-04-12", "end": "2026-04-30"}
    assert "19/30 days" in change["description"]
    devops = licences[("Azure DevOps Basic", "3")]
    assert Decimal(devops["amount_exact"]) == DEVOPS  # USD price converted on 16 April
    assert devops["fx_rates"] == [{"date": "2026-04-16", "rate": "0.9016"}]
    assert devops["billing_currency"] == "USD" and devops["currency"] == "EUR"

    usage = sum((Decimal(li["amount_exact"]) for li in lines if li["kind"] == "usage"), Decimal(0))
    assert cents(usage) == cents(expected_usage())
    exact = expected_usage() + M365_CHARGE + M365_CHANGE + DEVOPS + FEE
    assert Decimal(charges["total"]) == cents(exact)
    assert sum((Decimal(li["amount"]) for li in lines), Decimal(0)) == Decimal(charges["total"])
    # The change feed carries the licence lines like any other.
    feed = world.tenant.get("/v1/charges/changes", params={"limit": 500}).json()["data"]
    created = {c["line_key"] for c in feed if c["change"] == "created"}
    assert {li["line_key"] for li in lines} <= created


def test_rerating_changes_nothing_and_changes_follow_the_subscription(world: World) -> None:
    feed = world.tenant.get("/v1/charges/changes", params={"limit": 500}).json()
    cursor = feed["next_cursor"]
    rate_all(world.runtime, world.tenant.msp_id)
    assert world.tenant.get("/v1/charges/changes", params={"after": cursor}).json()["data"] == []

    before = Decimal(world.charges()["total_exact"])
    url = f"/v1/customers/{world.customer}/subscriptions/{world.m365}/cancel"
    assert world.tenant.post(url, json={"effective_date": "2026-04-25"}).status_code == 200
    world.drain()
    credit = [
        li for li in world.lines() if li["kind"] == "licence" and li["description"].count("cancel")
    ]
    assert len(credit) == 1
    # 15 seats x 19.90 for 26..30 April (5 of 30 days) credited.
    expected = Decimal(-15) * Decimal("19.90") * 5 / 30
    assert Decimal(credit[0]["amount_exact"]) == expected
    assert credit[0]["service_period"] == {"start": "2026-04-26", "end": "2026-04-30"}
    assert Decimal(world.charges()["total_exact"]) == before + expected
    changes = world.tenant.get("/v1/charges/changes", params={"after": cursor}).json()["data"]
    assert [c["change"] for c in changes if c["period"] == PERIOD] == ["created"]
    # The months already charged in advance since then lose their Microsoft 365 line.
    later = [c for c in changes if c["period"] != PERIOD]
    assert later and {c["change"] for c in later} == {"deleted"}
    assert all("Microsoft" in c["previous"]["description"] for c in later)
    # May: nothing is charged for a subscription that ended in April...
    may = [li for li in world.lines("2026-05") if "Microsoft" in li["description"]]
    assert may == []
    # ...while the renewing one is charged in advance for the whole month.
    devops_may = [li for li in world.lines("2026-05") if li["kind"] == "licence"]
    assert [Decimal(li["quantity"]) for li in devops_may] == [Decimal(3)]


def test_a_price_change_applies_from_its_day(world: World) -> None:
    april = {li["line_key"]: li["amount_exact"] for li in world.lines() if li["kind"] == "licence"}
    offer = world.tenant.get("/v1/catalog", params={"vendor": "microsoft365"}).json()["data"][0]
    changed = world.tenant.patch(
        f"/v1/catalog/{offer['id']}",
        json={"prices": {"EUR": "21.00"}, "prices_from": "2026-05-01"},
    )
    assert changed.status_code == 200, changed.text
    world.drain()
    # April was charged before the change: unchanged. May is charged at the new price.
    assert {
        li["line_key"]: li["amount_exact"] for li in world.lines() if li["kind"] == "licence"
    } == april
    may = [li for li in world.lines("2026-05") if "Microsoft" in li["description"]]
    assert [Decimal(li["amount_exact"]) for li in may] == [Decimal("315.00")]  # 15 x 21.00


def test_a_missing_rate_is_a_rating_error_not_a_zero(world: World) -> None:
    customer = world.tenant.post(
        "/v1/customers", json={"external_id": "CRM-8", "name": "Fabrikam", "currency": "CHF"}
    ).json()["id"]
    offer = world.tenant.get("/v1/catalog").json()["data"][0]["id"]
    response = world.tenant.post(
        f"/v1/customers/{customer}/subscriptions",
        json={"offer_id": offer, "quantity": 1, "start_date": "2026-04-01"},
    )
    assert response.status_code == 201
    world.drain()
    charges = world.tenant.get(
        f"/v1/customers/{customer}/charges", params={"period": PERIOD}
    ).json()
    assert charges["rating"]["status"] == "error"
    assert "CHF" in charges["rating"]["message"]
    assert charges["groups"] == []
    # The other customer is not held back by it.
    assert world.charges()["rating"]["status"] == "ok"
