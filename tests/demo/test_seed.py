"""The demo data of ``make run``: three months of usage for each customer with vendor
accounts, rated, the two past months invoiced; seeding again changes nothing.

The expected amounts are computed here from the generated FOCUS rows (the demo's input)
with the plan's rules, the partner discounts and the day's USD rates written out below,
not by the rating engine or the invoicing code.
"""

from __future__ import annotations

import json
from collections import defaultdict
from datetime import date, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from billbyte.auth.models import PortalUser
from billbyte.auth.passwords import hash_password
from billbyte.charges.models import ChargeLine
from billbyte.demo import history, seed
from billbyte.invoicing.models import InvoiceRun
from billbyte.kit.vendors import Vendor
from billbyte.runtime import Runtime
from billbyte.usage.models import UsageSlice
from tests.web import people

# Who each generated sub-account (or, for Google, billing subaccount) belongs to.
OWNERS = {
    "222222222222": "ACME-001",
    "3c1f0ae2-0c1a-4d8e-9c5b-acme00000001": "ACME-001",
    "333333333333": "GLOBEX-7",
    "billingAccounts/01ABCD-GLOBEX": "GLOBEX-7",
    "444444444444": "INITECH-42",
    "7d2e4b1c-5f3a-4c9e-8b1d-initech00042": "INITECH-42",
}
CURRENCY = {"ACME-001": "EUR", "GLOBEX-7": "GBP", "INITECH-42": "JPY"}
MINOR = {"EUR": Decimal("0.01"), "GBP": Decimal("0.01"), "JPY": Decimal(1)}
# Partner discounts of the demo's partner accounts (billed = list less the discount).
DISCOUNT = {Vendor.AWS: Decimal(6), Vendor.AZURE: Decimal(15), Vendor.GCP: Decimal(4)}


def _sell_usd(vendor: Vendor, row: dict[str, str]) -> Decimal:
    """The default plan: AWS cost + 15 %, Azure list - 5 %, Google cost + 10 %."""
    if vendor == Vendor.AWS:
        return Decimal(row["BilledCost"]) * Decimal("1.15")
    if vendor == Vendor.AZURE:
        return Decimal(row["ListCost"]) * Decimal("0.95")
    return Decimal(row["BilledCost"]) * Decimal("1.10")


def _expected(today: date, first: date) -> dict[tuple[str, str], Decimal]:
    """(customer, period) → the exact sell in the customer's currency."""
    days = [first + timedelta(days=n) for n in range((today - first).days)]
    totals: dict[tuple[str, str], Decimal] = defaultdict(Decimal)
    for vendor in (Vendor.AWS, Vendor.AZURE, Vendor.GCP):
        for row in history.usage_rows(vendor, days, DISCOUNT[vendor]):
            owner = OWNERS.get(row["SubAccountId"]) or OWNERS[row["BillingAccountId"]]
            day = date.fromisoformat(row["ChargePeriodStart"][:10])
            rate = history.fx_rate(CURRENCY[owner], day)
            totals[(owner, row["BillingPeriodStart"][:7])] += _sell_usd(vendor, row) * rate
    return totals


def _api(client: TestClient, key: str) -> Any:
    headers = {"Authorization": f"Bearer {key}"}

    def get(url: str, **params: Any) -> Any:
        response = client.get(url, headers=headers, params=params)
        assert response.status_code == 200, response.text
        return response.json()

    return get


def _customers(get: Any) -> dict[str, str]:
    return {c["external_id"]: c["id"] for c in get("/v1/customers", limit=100)["data"]}


def _finalized(get: Any, customer_id: str) -> list[dict[str, Any]]:
    invoices = get(
        "/v1/invoices", customer_id=customer_id, status="finalized", kind="invoice", limit=100
    )["data"]
    return sorted(invoices, key=lambda i: i["period_start"])


@pytest.mark.parametrize(
    ("today", "periods"),
    [
        (date(2026, 12, 2), ["2026-10", "2026-11", "2026-12"]),
        # On the 1st the current month has no complete day of usage yet.
        (date(2026, 11, 1), ["2026-09", "2026-10", "2026-11"]),
    ],
)
def test_seed_rates_three_months_and_invoices_the_two_past_ones(
    runtime: Runtime, client: TestClient, today: date, periods: list[str]
) -> None:
    result = seed(runtime, today=today)
    assert result["periods"] == periods
    assert result["invoices"] == 6  # three customers with usage × two past months
    get = _api(client, result["api_key"])
    ids = _customers(get)
    expected = _expected(today, date.fromisoformat(periods[0] + "-01"))

    with runtime.uow() as uow:
        lines = dict(
            uow.session.execute(
                select(
                    ChargeLine.customer_id.concat("|").concat(ChargeLine.period),
                    func.count(ChargeLine.id),
                ).group_by(ChargeLine.customer_id, ChargeLine.period)
            ).all()
        )
    for external_id, currency in CURRENCY.items():
        customer_id = ids[external_id]
        for period in periods[:2]:
            assert lines.get(f"{customer_id}|{period}", 0) > 0, (external_id, period)
        current = lines.get(f"{customer_id}|{periods[2]}", 0)
        assert (current > 0) == (today.day > 1), (external_id, current)

        invoices = _finalized(get, customer_id)
        assert [i["period_start"][:7] for i in invoices] == periods[:2]
        for invoice in invoices:
            exact = expected[(external_id, invoice["period_start"][:7])]
            assert invoice["currency"] == currency
            assert Decimal(invoice["total_exact"]) == exact
            assert Decimal(invoice["total"]) == exact.quantize(MINOR[currency], ROUND_HALF_EVEN)
            assert invoice["line_count"] > 3
        charges = get(f"/v1/customers/{customer_id}/charges", period=periods[2])
        assert charges["status"] == "open"
        assert Decimal(charges["total_exact"]) == expected.get(
            (external_id, periods[2]), Decimal(0)
        )
    # Newco has no usage (it arrives from the sandboxes): its past months close empty.
    assert _finalized(get, ids["NEWCO-9"]) == []


def test_the_generated_usage_has_regions_resources_services_and_tags() -> None:
    days = [date(2026, 10, 1) + timedelta(days=n) for n in range(14)]
    by_customer: dict[str, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
    for vendor in (Vendor.AWS, Vendor.AZURE, Vendor.GCP):
        for row in history.usage_rows(vendor, days, DISCOUNT[vendor]):
            owner = OWNERS.get(row["SubAccountId"]) or OWNERS[row["BillingAccountId"]]
            seen = by_customer[owner]
            seen["vendor"].add(vendor.value)
            seen["region"].add(row["RegionId"])
            seen["resource"].add(row["ResourceId"])
            seen["service"].add(row["ServiceName"])
            tags = json.loads(row["Tags"])
            assert set(tags) == {"env", "team"}
            seen["team"].add(tags["team"])
            assert Decimal(row["BilledCost"]) < Decimal(row["ListCost"])
    assert set(by_customer) == set(CURRENCY)
    for owner, seen in by_customer.items():
        assert len(seen["vendor"]) >= 2, owner
        assert len(seen["region"]) >= 3, owner
        assert len(seen["resource"]) >= 5, owner
        assert len(seen["service"]) >= 5, owner
        assert len(seen["team"]) >= 2, owner
    # The same day gives the same rows however long the history is.
    short = list(history.usage_rows(Vendor.AWS, days[:3], DISCOUNT[Vendor.AWS]))
    longer = list(history.usage_rows(Vendor.AWS, days, DISCOUNT[Vendor.AWS]))
    assert short == [r for r in longer if r["ChargePeriodStart"][:10] <= str(days[2])]


def _snapshot(runtime: Runtime, get: Any) -> dict[str, Any]:
    ids = _customers(get)
    with runtime.uow() as uow:
        lines = sorted(
            (line.customer_id, line.period, line.line_key, str(line.sell_local), str(line.cost))
            for line in uow.session.scalars(select(ChargeLine))
        )
        slices = sorted(
            (s.partner_account_id, s.billing_period, s.scope_key, s.fingerprint)
            for s in uow.session.scalars(select(UsageSlice).where(UsageSlice.is_current))
        )
        runs = uow.session.scalar(select(func.count(InvoiceRun.id)))
    invoices = {
        external_id: [get(f"/v1/invoices/{i['id']}") for i in _finalized(get, customer_id)]
        for external_id, customer_id in ids.items()
    }
    return {"lines": lines, "slices": slices, "runs": runs, "invoices": invoices}


def test_seeding_again_changes_no_total_and_adds_no_invoice(
    runtime: Runtime, client: TestClient
) -> None:
    first = seed(runtime, today=date(2026, 12, 2))
    get = _api(client, first["api_key"])
    before = _snapshot(runtime, get)
    second = seed(runtime, today=date(2026, 12, 2))
    assert second == first
    assert _snapshot(runtime, get) == before

    # A month later: November and October stay as invoiced, December is invoiced too.
    later = seed(runtime, today=date(2027, 1, 5))
    assert later["periods"] == ["2026-11", "2026-12", "2027-01"]
    assert later["invoices"] == 9
    after = _snapshot(runtime, get)
    for external_id, invoices in before["invoices"].items():
        assert after["invoices"][external_id][: len(invoices)] == invoices
        assert len(after["invoices"][external_id]) == len(invoices) + (1 if invoices else 0)
    # December, invoiced a month later, holds all of December's usage (31 days).
    december = _expected(date(2027, 1, 1), date(2026, 12, 1))
    for external_id, currency in CURRENCY.items():
        invoice = after["invoices"][external_id][-1]
        assert invoice["period_start"][:7] == "2026-12"
        assert Decimal(invoice["total_exact"]) == december[(external_id, "2026-12")]
        assert invoice["currency"] == currency


def test_the_printed_demo_users_sign_in_to_the_portal_and_the_console(
    runtime: Runtime, client: TestClient
) -> None:
    result = seed(runtime, today=date(2026, 12, 2))
    sign_in = result["sign_in"]
    assert sign_in["portal_url"].endswith(f"/portal/sign-in?brand={result['msp_id']}")
    for email in sign_in["portal_users"]:
        client.cookies.clear()
        response = people.sign_in(client, "portal", email, sign_in["password"])
        assert response.status_code == 303, email
    for role, email in sign_in["staff"].items():
        client.cookies.clear()
        response = people.sign_in(client, "console", email, sign_in["password"])
        assert response.status_code == 303, role
    # seeding again keeps a password its user changed
    with runtime.uow() as uow:
        user = uow.session.scalar(
            select(PortalUser).where(PortalUser.email == sign_in["portal_users"][0])
        )
        assert user is not None
        user.password_hash = hash_password("changed by the user since")
        uow.commit()
    seed(runtime, today=date(2026, 12, 2))
    client.cookies.clear()
    kept = people.sign_in(client, "portal", sign_in["portal_users"][0], "changed by the user since")
    assert kept.status_code == 303


def test_every_demo_customer_with_usage_has_a_budget_above_its_last_invoice(
    runtime: Runtime, client: TestClient
) -> None:
    result = seed(runtime, today=date(2026, 12, 2))
    get = _api(client, result["api_key"])
    for external_id, customer_id in _customers(get).items():
        invoices = _finalized(get, customer_id)
        if not invoices:
            continue
        budgets = get(f"/v1/customers/{customer_id}/budgets")["data"]
        assert len(budgets) == 1, external_id
        last = max(invoices, key=lambda invoice: invoice["period_start"])
        assert Decimal(budgets[0]["amount"]) >= Decimal(last["total"]) * Decimal("1.1")
    seed(runtime, today=date(2026, 12, 2))  # again: still one budget each
    for customer_id in _customers(get).values():
        assert len(get(f"/v1/customers/{customer_id}/budgets")["data"]) <= 1
