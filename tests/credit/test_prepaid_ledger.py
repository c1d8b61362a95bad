"""Issue #15, finding 2: prepaid balances never decreased.

Every expected balance here is computed in the test from the amounts it uploads and tops up
(usage is priced at cost: no plan), never read back from the code under test.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

from billbyte.rating.tasks import rate_all
from billbyte.runtime import Runtime
from tests.conftest import Tenant
from tests.invoicing.conftest import close
from tests.rating.factories import Scenario, row

D = Decimal
SUB = "000000000001"


def _customer(s: Scenario, external: str, **extra: Any) -> str:
    if "aws" not in s.accounts:
        s.account("aws")
    customer = s.customer(external, **extra)
    s.link(customer, SUB if external == "PP" else f"{len(external):012d}"[-12:])
    return customer


def _balance(tenant: Tenant, customer: str) -> Decimal:
    body = tenant.get(f"/v1/customers/{customer}").json()
    return D(body["prepaid_balance"])


def _ledger(tenant: Tenant, customer: str) -> list[dict[str, Any]]:
    response = tenant.get(f"/v1/customers/{customer}/prepaid-movements")
    assert response.status_code == 200, response.text
    return list(response.json()["data"])


def _march(s: Scenario, *amounts: str) -> None:
    s.upload(row(a, day=i + 1, sub=SUB) for i, a in enumerate(amounts))
    s.drain()


def test_balance_is_top_ups_minus_charges_through_restatements_rerating_and_close(
    tenant: Tenant, runtime: Runtime, tmp_path: Path
) -> None:
    s = Scenario(tenant, runtime, tmp_path)
    customer = _customer(s, "PP", prepaid_balance="500")
    top_ups = D("500")

    # The issue's numbers: 500 prepaid, 253.01 of charges → 246.99 left.
    _march(s, "100.00", "153.01")
    assert _balance(tenant, customer) == D("246.99")
    credit = tenant.get(f"/v1/customers/{customer}/credit", params={"period": "2025-03"}).json()
    assert D(credit["spend"]) == D("253.01") and D(credit["prepaid_remaining"]) == D("246.99")
    assert D(credit["prepaid_drawn"]) == D("253.01")

    top_up = tenant.post(
        f"/v1/customers/{customer}/prepaid-top-ups",
        json={"amount": "200", "reference": "PAY-1", "note": "bank transfer"},
    )
    assert top_up.status_code == 201, top_up.text
    top_ups += D("200")
    assert _balance(tenant, customer) == top_ups - D("253.01")

    # Re-rating the same charges draws nothing more.
    before = len(_ledger(tenant, customer))
    rate_all(runtime, tenant.msp_id)
    rate_all(runtime, tenant.msp_id)
    assert len(_ledger(tenant, customer)) == before
    assert _balance(tenant, customer) == top_ups - D("253.01")

    # A restatement that lowers March gives back the difference.
    _march(s, "100.00", "120.00")
    assert _balance(tenant, customer) == top_ups - D("220.00")
    # April's charges draw too.
    s.upload([row("50.25", period="2025-04", sub=SUB)])
    s.drain()
    assert _balance(tenant, customer) == top_ups - D("220.00") - D("50.25")

    # March is invoiced: the draw becomes final and the balance does not move.
    run = close(runtime, tenant.msp_id, "2025-03")
    assert run.status == "completed", run
    invoices = tenant.get("/v1/invoices", params={"customer_id": customer}).json()["data"]
    march = [i for i in invoices if i.get("period_end") == "2025-03" and i["status"] == "finalized"]
    assert [D(i["total"]) for i in march] == [D("220.00")]
    assert _balance(tenant, customer) == top_ups - D("270.25")

    # Late March data after the close is an adjustment on April, drawn with it.
    _march(s, "100.00", "120.00", "30.00")
    expected = top_ups - (D("220.00") + D("50.25") + D("30.00"))
    assert _balance(tenant, customer) == expected == D("399.75")
    rate_all(runtime, tenant.msp_id)
    assert _balance(tenant, customer) == expected

    ledger = _ledger(tenant, customer)
    assert sum(D(m["amount"]) for m in ledger) == expected
    assert D(ledger[-1]["balance_after"]) == expected
    assert {m["kind"] for m in ledger} == {"top_up", "draw_down"}
    assert sum(D(m["amount"]) for m in ledger if m["kind"] == "top_up") == top_ups
    assert all(D(m["amount"]) == D(m["amount"]).quantize(D("0.01")) for m in ledger)

    # Every movement is audited and in the change feed.
    audit = tenant.get("/v1/audit-events", params={"target_id": customer, "limit": 200}).json()
    audited = [e for e in audit["data"] if e["action"].startswith("prepaid.")]
    assert len(audited) == len(ledger)
    feed, _ = s.feed()
    prepaid_feed = [c for c in feed if c["change"] == "prepaid"]
    assert sorted(c["line"]["id"] for c in prepaid_feed) == sorted(m["id"] for m in ledger)


def test_top_ups_are_idempotent_and_validated(
    tenant: Tenant, other_tenant: Tenant, runtime: Runtime, tmp_path: Path
) -> None:
    s = Scenario(tenant, runtime, tmp_path)
    customer = _customer(s, "TOP")  # not prepaid yet: the first top-up makes it so
    url = f"/v1/customers/{customer}/prepaid-top-ups"
    first = tenant.post(url, json={"amount": "75.50", "reference": "PAY-9"})
    assert first.status_code == 201, first.text
    again = tenant.post(url, json={"amount": "75.50", "reference": "PAY-9"})
    assert again.status_code == 200 and again.json()["id"] == first.json()["id"]
    assert _balance(tenant, customer) == D("75.50")
    reused = tenant.post(url, json={"amount": "80", "reference": "PAY-9"})
    assert reused.status_code == 409 and reused.json()["code"] == "reference_reused"
    for bad in (
        {"amount": "0", "reference": "X"},
        {"amount": "-5", "reference": "X"},
        {"amount": "1.005", "reference": "X"},  # finer than USD's cent
        {"amount": 10.5, "reference": "X"},  # a float
        {"amount": "10"},
    ):
        response = tenant.post(url, json=bad)
        assert response.status_code == 422, (bad, response.text)
        assert response.headers["content-type"].startswith("application/problem+json")
    assert _balance(tenant, customer) == D("75.50")
    assert other_tenant.post(url, json={"amount": "1", "reference": "Y"}).status_code == 404
    helpdesk = tenant.issue_key("helpdesk")
    forbidden = tenant.client.post(
        url,
        json={"amount": "1", "reference": "Z"},
        headers={"Authorization": f"Bearer {helpdesk}"},
    )
    assert forbidden.status_code == 403


def test_no_overdraft_unless_the_msp_allows_it(
    tenant: Tenant, runtime: Runtime, tmp_path: Path
) -> None:
    s = Scenario(tenant, runtime, tmp_path)
    capped = _customer(s, "CAP", prepaid_balance="100")
    s.upload([row("150.00", sub=f"{3:012d}")])
    s.drain()
    assert _balance(tenant, capped) == D("0")
    credit = tenant.get(f"/v1/customers/{capped}/credit", params={"period": "2025-03"}).json()
    assert D(credit["prepaid_drawn"]) == D("100") and D(credit["percent"]) == D("150")
    # A top-up funds what the empty balance could not: 50 of it is drawn at once.
    tenant.post(f"/v1/customers/{capped}/prepaid-top-ups", json={"amount": "80", "reference": "P"})
    assert _balance(tenant, capped) == D("30")

    policy = tenant.client.put(
        "/v1/credit-policy",
        headers=tenant.headers,
        json={"thresholds": [50, 80, 100], "prepaid_overdraft": True},
    )
    assert policy.status_code == 200 and policy.json()["prepaid_overdraft"] is True
    s.upload([row("150.00", sub=f"{3:012d}"), row("200.00", day=2, sub=f"{3:012d}")])
    s.drain()
    assert _balance(tenant, capped) == D("180") - D("350")
