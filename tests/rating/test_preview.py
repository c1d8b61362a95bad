"""Plan preview: what a plan would have charged for a past period, with nothing saved."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

from sqlalchemy import func, select

from billbyte.charges.models import ChargeChange, RatingState
from billbyte.jobs.models import Job
from billbyte.runtime import Runtime
from tests.conftest import Tenant
from tests.rating.factories import PERIOD, Scenario, row

D = Decimal
S3 = "Amazon Simple Storage Service"


def _counts(runtime: Runtime) -> tuple[int, int, int]:
    with runtime.uow() as uow:
        return (
            uow.session.scalar(select(func.count()).select_from(ChargeChange)) or 0,
            uow.session.scalar(select(func.count()).select_from(Job)) or 0,
            uow.session.scalar(select(func.count()).select_from(RatingState)) or 0,
        )


def test_preview_prices_every_customer_and_writes_nothing(
    tenant: Tenant, runtime: Runtime, tmp_path: Path
) -> None:
    s = Scenario(tenant, runtime, tmp_path)
    s.account("aws")
    usd, eur = s.customer("U"), s.customer("E", currency="EUR")
    idle = s.customer("I")
    s.link(usd, "111111111111")
    s.link(eur, "222222222222")
    s.link(idle, "333333333333")
    s.plan([{"vendor": "aws", "adjustment": "markup_percent", "value": "10"}])
    # The customer's own override is not part of the plan being previewed.
    tenant.post(f"/v1/customers/{usd}/price-rules", json={"adjustment": "markup_percent",
                "value": "90"})  # fmt: skip
    candidate = s.plan(
        [
            {"vendor": "aws", "basis": "list", "adjustment": "discount_percent", "value": "5"},
            {"service_name": S3, "adjustment": "markup_percent", "value": "50"},
            {"vendor": "aws", "adjustment": "fixed_fee", "value": "20", "currency": "USD"},
        ],
        default=False,
        name="Candidate",
    )
    s.rates(
        *[("USD", "EUR", f"{PERIOD}-{d:02d}", "0.5" if d == 2 else "0.8") for d in range(1, 32)]
    )
    usage = []
    for sub in ("111111111111", "222222222222"):
        usage += [
            row("80", list_cost="100", sub=sub, day=1),
            row("160", list_cost="200", sub=sub, day=2),
            row("10", sub=sub, service=S3, day=2),
            row("-4", sub=sub, day=3, charge="Credit"),
        ]
    s.upload(usage)
    s.drain()
    charges = {c: s.charges(c) for c in (usd, eur, idle)}
    counts = _counts(runtime)

    response = tenant.get(f"/v1/price-plans/{candidate}/preview", params={"period": PERIOD})
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["object"], body["plan_id"], body["period"]) == (
        "price_plan_preview",
        candidate,
        PERIOD,
    )
    results = {c["customer_id"]: c for c in body["customers"]}
    assert set(results) == {usd, eur}  # the idle customer has no usage

    # USD: list 100 and 200 at -5 %, S3 at +50 %, the credit at cost, the fee.
    usd_sell = D(100) * D("0.95") + D(200) * D("0.95") + D(15) - D(4) + D(20)
    usd_cost = D(80) + D(160) + D(10) - D(4)
    assert (D(results[usd]["amount"]), D(results[usd]["cost"])) == (usd_sell, usd_cost)
    assert D(results[usd]["margin"]) == usd_sell - usd_cost
    # EUR: day 1 at 0.8, day 2 at 0.5, day 3 at 0.8; the fee at the last day's rate.
    eur_sell = D(95) * D("0.8") + (D(190) + D(15)) * D("0.5") - D(4) * D("0.8") + D(20) * D("0.8")
    eur_cost = D(80) * D("0.8") + (D(160) + D(10)) * D("0.5") - D(4) * D("0.8")
    assert results[eur]["currency"] == "EUR"
    assert (D(results[eur]["amount"]), D(results[eur]["cost"])) == (eur_sell, eur_cost)

    # One customer only.
    one = tenant.get(
        f"/v1/price-plans/{candidate}/preview", params={"period": PERIOD, "customer_id": eur}
    ).json()
    assert [c["customer_id"] for c in one["customers"]] == [eur]
    assert one["customers"][0]["amount"] == results[eur]["amount"]
    # A period without usage previews nothing.
    empty = tenant.get(f"/v1/price-plans/{candidate}/preview", params={"period": "2024-01"})
    assert empty.status_code == 200 and empty.json()["customers"] == []
    bad = tenant.get(f"/v1/price-plans/{candidate}/preview", params={"period": "2025-3"})
    assert bad.status_code == 422

    # Nothing was written: same charges, no change, no job, no rating state.
    assert {c: s.charges(c) for c in (usd, eur, idle)} == charges
    assert _counts(runtime) == counts
    # The charges are still those of the customers' own pricing.
    assert s.exact(usd) == (D(80) + D(160) + D(10)) * D("1.9") - D(4)
    assert tenant.get(f"/v1/price-plans/{candidate}").json()["is_default"] is False


def test_preview_reports_missing_rates(tenant: Tenant, runtime: Runtime, tmp_path: Path) -> None:
    s = Scenario(tenant, runtime, tmp_path)
    s.account("aws")
    chf = s.customer("C", currency="CHF")
    s.link(chf, "111111111111")
    plan = s.plan([{"vendor": "aws", "adjustment": "markup_percent", "value": "10"}])
    s.upload([row("10")])
    s.drain()
    body = tenant.get(f"/v1/price-plans/{plan}/preview", params={"period": PERIOD}).json()
    assert body["customers"] == [] and body["errors"]
    assert any("CHF" in message for message in body["errors"])
