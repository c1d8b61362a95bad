"""Re-rating: what makes rating run again, what it may and may not touch."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import select

from billbyte.charges.models import ClosedPeriod
from billbyte.jobs.models import Job
from billbyte.runtime import Runtime
from tests.conftest import Tenant
from tests.rating.factories import PERIOD, Scenario, row

D = Decimal
EC2 = "Amazon Elastic Compute Cloud"


def _pending_rating_jobs(runtime: Runtime) -> int:
    with runtime.uow() as uow:
        return len(
            list(
                uow.session.scalars(select(Job).where(Job.kind == "rate", Job.status == "pending"))
            )
        )


def _usd_setup(s: Scenario) -> tuple[str, str]:
    s.account("aws")
    a = s.customer("A")
    s.link(a, "111111111111")
    plan = s.plan([{"vendor": "aws", "adjustment": "markup_percent", "value": "10"}])
    s.upload([row("60", day=1), row("40", day=2)])
    s.drain()
    return a, plan


def test_each_change_enqueues_rating(tenant: Tenant, runtime: Runtime, tmp_path: Path) -> None:
    s = Scenario(tenant, runtime, tmp_path)
    a, plan = _usd_setup(s)
    assert s.exact(a) == D("110")
    rule_id = tenant.get(f"/v1/price-plans/{plan}").json()["rules"][0]["id"]

    def after(change: Any, expected: Decimal) -> None:
        response = change()
        assert response.status_code in (200, 201, 204), response.text
        assert _pending_rating_jobs(runtime) >= 1
        assert s.drain() >= 1
        assert _pending_rating_jobs(runtime) == 0
        assert s.exact(a) == expected

    # Replacing a rule.
    after(
        lambda: tenant.client.put(
            f"/v1/price-rules/{rule_id}",
            json={"vendor": "aws", "adjustment": "markup_percent", "value": "20"},
            headers=tenant.headers,
        ),
        D("120"),
    )
    # Adding a narrower rule to the plan.
    added: dict[str, Any] = {}

    def add() -> Any:
        response = tenant.post(
            f"/v1/price-plans/{plan}/rules",
            json={"service_name": EC2, "adjustment": "discount_percent", "value": "10"},
        )
        added.update(response.json())
        return response

    after(add, D("90"))
    # Deleting it again.
    after(lambda: tenant.delete(f"/v1/price-rules/{added['id']}"), D("120"))
    # A customer override.
    override: dict[str, Any] = {}

    def add_override() -> Any:
        response = tenant.post(
            f"/v1/customers/{a}/price-rules",
            json={"adjustment": "markup_percent", "value": "1"},
        )
        override.update(response.json())
        return response

    after(add_override, D("101"))
    after(lambda: tenant.delete(f"/v1/price-rules/{override['id']}"), D("120"))
    # Assigning another plan to the customer.
    other = s.plan(
        [{"vendor": "aws", "adjustment": "markup_percent", "value": "30"}],
        default=False,
        name="Other",
    )
    after(lambda: tenant.patch(f"/v1/customers/{a}", json={"price_plan_id": other}), D("130"))
    # Moving the MSP's default does not affect a customer with its own plan ...
    after(lambda: tenant.patch(f"/v1/price-plans/{plan}", json={"is_default": False}), D("130"))
    # ... but un-assigning it falls back to no default plan at all: priced at cost.
    after(lambda: tenant.patch(f"/v1/customers/{a}", json={"price_plan_id": None}), D("100"))
    after(lambda: tenant.patch(f"/v1/price-plans/{plan}", json={"is_default": True}), D("120"))

    # Currency: the customer moves to EUR; rates come later.
    after(lambda: tenant.patch(f"/v1/customers/{a}", json={"currency": "EUR"}), D("120"))
    body = s.charges(a)
    assert body["rating"]["status"] == "error" and "EUR" in body["rating"]["message"]
    assert {li["currency"] for li in s.lines(a)} == {"USD"}  # the last good lines stay

    def put_rates(rate: str) -> Any:
        rates = [
            {"base": "USD", "quote": "EUR", "date": f"{PERIOD}-{d:02d}", "rate": rate}
            for d in range(1, 32)
        ]
        return tenant.client.put("/v1/fx-rates", json={"rates": rates}, headers=tenant.headers)

    after(lambda: put_rates("0.5"), D("60"))  # 120 x 0.5
    assert s.charges(a)["rating"]["status"] == "ok"
    assert {li["currency"] for li in s.lines(a)} == {"EUR"}
    # A changed rate re-rates too.
    after(lambda: put_rates("0.25"), D("30"))
    # Unlinking the sub-account removes its usage from the customer.
    link = tenant.get(f"/v1/customers/{a}/vendor-accounts").json()["data"][0]
    after(lambda: tenant.delete(f"/v1/customers/{a}/vendor-accounts/{link['id']}"), D("0"))
    assert s.lines(a) == []


def test_closed_period_is_never_touched(tenant: Tenant, runtime: Runtime, tmp_path: Path) -> None:
    s = Scenario(tenant, runtime, tmp_path)
    s.account("aws")
    closed, open_ = s.customer("CLOSED"), s.customer("OPEN")
    s.link(closed, "111111111111")
    s.link(open_, "222222222222")
    plan = s.plan([{"vendor": "aws", "adjustment": "markup_percent", "value": "10"}])
    s.upload([row("100", sub="111111111111"), row("100", sub="222222222222")])
    s.drain()
    before = s.lines(closed)
    assert [D(li["amount_exact"]) for li in before] == [D("110")]
    with runtime.uow() as uow:
        uow.session.add(ClosedPeriod(msp_id=tenant.msp_id, customer_id=closed, period=PERIOD))
        uow.commit()
    assert s.charges(closed)["status"] == "closed"
    _, cursor = s.feed()
    rated_at = s.charges(closed)["rating"]["rated_at"]

    rule_id = tenant.get(f"/v1/price-plans/{plan}").json()["rules"][0]["id"]
    tenant.client.put(
        f"/v1/price-rules/{rule_id}",
        json={"vendor": "aws", "adjustment": "markup_percent", "value": "50"},
        headers=tenant.headers,
    )
    tenant.post(f"/v1/customers/{closed}/price-rules", json={"adjustment": "fixed_fee",
                "value": "5", "currency": "USD"})  # fmt: skip
    # Restated usage for both (a different file for the same month).
    s.upload([row("200", sub="111111111111"), row("300", sub="222222222222")])
    tenant.patch(f"/v1/customers/{closed}", json={"currency": "EUR"})
    assert s.drain() >= 1

    assert s.lines(closed) == before
    assert s.charges(closed)["rating"]["rated_at"] == rated_at
    assert s.exact(open_) == D("450")
    changes, _ = s.feed(cursor)
    # (Late data for a closed period may show up elsewhere, e.g. as an adjustment on a
    # later invoice; the closed period's own lines never change.)
    assert {c["customer_id"] for c in changes if c["period"] == PERIOD} == {open_}


def test_linking_later_moves_unassigned_usage(
    tenant: Tenant, runtime: Runtime, tmp_path: Path
) -> None:
    s = Scenario(tenant, runtime, tmp_path)
    s.account("aws")
    a = s.customer("A")
    s.link(a, "111111111111")
    s.plan([{"vendor": "aws", "adjustment": "markup_percent", "value": "10"}])
    imported = s.upload(
        [row("100", sub="111111111111"), row("50", sub="555555555555", service="Lambda")]
    )
    assert imported["unassigned_sub_accounts"] == ["555555555555"]
    s.drain()
    assert s.by_service(a) == {EC2: D("110")}
    _, cursor = s.feed()

    s.link(a, "555555555555")
    assert _pending_rating_jobs(runtime) >= 1
    s.drain()
    assert s.by_service(a) == {EC2: D("110"), "Lambda": D("55")}
    changes, _ = s.feed(cursor)
    assert [(c["change"], c["line"]["service_name"]) for c in changes] == [("created", "Lambda")]


def test_missing_fx_rate_is_an_error_and_changes_nothing(
    tenant: Tenant, runtime: Runtime, tmp_path: Path
) -> None:
    s = Scenario(tenant, runtime, tmp_path)
    s.account("aws")
    eur, usd = s.customer("E", currency="EUR"), s.customer("U")
    s.link(eur, "111111111111")
    s.link(usd, "222222222222")
    s.plan([{"vendor": "aws", "adjustment": "markup_percent", "value": "10"}])
    s.upload([row("100", sub="111111111111"), row("100", sub="222222222222")])
    s.drain()
    body = s.charges(eur)
    assert body["rating"]["status"] == "error"
    assert "USD" in body["rating"]["message"] and "EUR" in body["rating"]["message"]
    assert body["groups"] == [] and body["total"] == "0.00"
    # Another customer of the same MSP is rated regardless.
    assert s.charges(usd)["rating"]["status"] == "ok" and s.exact(usd) == D("110")

    s.rates(*[("USD", "EUR", f"{PERIOD}-{d:02d}", "0.9") for d in range(1, 32)])
    s.drain()
    assert s.charges(eur)["rating"]["status"] == "ok"
    assert s.exact(eur) == D("99")
    good = s.lines(eur)
    _, cursor = s.feed()

    tenant.patch(f"/v1/customers/{eur}", json={"currency": "GBP"})
    s.drain()
    body = s.charges(eur)
    assert body["rating"]["status"] == "error" and "GBP" in body["rating"]["message"]
    assert s.lines(eur) == good
    changes, _ = s.feed(cursor)
    assert changes == []


def test_correction_for_an_earlier_month_is_converted_not_dropped(
    tenant: Tenant, runtime: Runtime, tmp_path: Path
) -> None:
    """A negative correction billed in March for usage of February: it is charged in March
    at the rate of its own (February) charge day."""
    s = Scenario(tenant, runtime, tmp_path)
    s.account("aws")
    usd, eur = s.customer("U"), s.customer("E", currency="EUR")
    s.link(usd, "111111111111")
    s.link(eur, "222222222222")
    s.plan([{"vendor": "aws", "adjustment": "markup_percent", "value": "10"}])
    s.rates(
        ("USD", "EUR", "2025-02-27", "0.8"),
        ("USD", "EUR", "2025-02-28", "0.5"),
        *[("USD", "EUR", f"{PERIOD}-{d:02d}", "0.9") for d in range(1, 32)],
    )
    usage = []
    for sub in ("111111111111", "222222222222"):
        usage += [
            row("100", sub=sub, day=3),
            row("-20", sub=sub, day=28, charge_period="2025-02", service="Fix"),
        ]
    s.upload(usage)
    s.drain()
    assert s.charges(usd)["rating"]["status"] == "ok"
    assert s.by_service(usd) == {EC2: D("110"), "Fix": D("-22")}
    assert s.by_service(eur) == {EC2: D("110") * D("0.9"), "Fix": D("-22") * D("0.5")}
    fix = next(li for li in s.lines(eur) if li["service_name"] == "Fix")
    assert [(r["date"], D(r["rate"])) for r in fix["fx_rates"]] == [("2025-02-28", D("0.5"))]
    assert fix["service_period"] == {"start": "2025-02-28", "end": "2025-02-28"}
    assert s.charges(eur)["total"] == "88.00"  # 99 - 11


def test_charge_day_after_the_period_without_a_rate_is_an_error_not_zero(
    tenant: Tenant, runtime: Runtime, tmp_path: Path
) -> None:
    s = Scenario(tenant, runtime, tmp_path)
    s.account("aws")
    eur = s.customer("E", currency="EUR")
    s.link(eur, "111111111111")
    s.rates(*[("USD", "EUR", f"{PERIOD}-{d:02d}", "0.9") for d in range(1, 32)])
    s.upload([row("100", day=3), row("30", day=2, charge_period="2025-04")])
    s.drain()
    body = s.charges(eur)
    # Either it is converted, or the customer's rating says why it is not: never a silent 0.
    if body["rating"]["status"] == "ok":
        assert D(body["total_exact"]) == D("130") * D("0.9")
    else:
        assert "2025-04-02" in body["rating"]["message"] and body["groups"] == []
