"""Rule precedence and every adjustment kind, end to end: API set-up, a small FOCUS file,
the rating job, then the charges — against amounts worked out by hand below."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

from billbyte.runtime import Runtime
from tests.conftest import Tenant
from tests.rating.factories import PERIOD, Scenario, cents, row

D = Decimal
EC2 = "Amazon Elastic Compute Cloud"
S3 = "Amazon Simple Storage Service"


def _all_days_rates(base: str, quote: str, by_day: dict[int, str], default: str) -> list:
    return [(base, quote, f"{PERIOD}-{d:02d}", by_day.get(d, default)) for d in range(1, 32)]


def test_override_beats_plan_and_narrower_scope_wins(
    tenant: Tenant, runtime: Runtime, tmp_path: Path
) -> None:
    s = Scenario(tenant, runtime, tmp_path)
    s.account("aws")
    a, b = s.customer("A"), s.customer("B")
    s.link(a, "111111111111")
    s.link(b, "222222222222")
    # Created narrowest first, so creation order cannot be what decides.
    s.plan(
        [
            {"sku_id": "SKU-SPECIAL", "adjustment": "markup_percent", "value": "30"},
            {"service_name": S3, "adjustment": "markup_percent", "value": "20"},
            {"vendor": "aws", "adjustment": "markup_percent", "value": "10"},
            # Two fields beat one, whatever they are.
            {
                "vendor": "aws",
                "region_id": "us-east-1",
                "adjustment": "discount_percent",
                "value": "50",
            },
        ]
    )
    override = tenant.post(
        f"/v1/customers/{b}/price-rules",
        json={"vendor": "aws", "adjustment": "markup_percent", "value": "5"},
    ).json()
    usage = []
    for sub in ("111111111111", "222222222222"):
        usage += [
            row("100.00", sub=sub, service=EC2, sku="SKU-A", day=1),
            row("10.00", sub=sub, service=EC2, sku="SKU-SPECIAL", day=2),
            row("50.00", sub=sub, service=S3, sku="SKU-S3", category="Storage", day=3),
            row("8.00", sub=sub, service=S3, sku="SKU-S3", region="us-east-1", day=4),
        ]
    s.upload(usage)
    assert s.drain() >= 1

    # A: plan rules. EC2 = 100 x 1.10 + 10 x 1.30; S3 = 50 x 1.20 + 8 x 0.50.
    assert s.by_service(a) == {EC2: D("110") + D("13"), S3: D("60") + D("4")}
    # B: the vendor-wide override beats even the SKU rule of the plan: 168 x 1.05.
    assert s.by_service(b) == {EC2: D("110") * D("1.05"), S3: D("58") * D("1.05")}
    body = s.charges(b)
    assert body["total"] == "176.40" and body["rating"]["status"] == "ok"
    assert {rid for li in s.lines(b) for rid in li["rule_ids"]} == {override["id"]}
    plan_rules = {
        r["sku_id"] or r["service_name"] or r["region_id"] or r["vendor"]: r["id"]
        for r in tenant.get("/v1/price-plans").json()["data"][0]["rules"]
    }
    ec2_a = next(li for li in s.lines(a) if li["service_name"] == EC2)
    assert set(ec2_a["rule_ids"]) == {plan_rules["aws"], plan_rules["SKU-SPECIAL"]}
    assert Decimal(ec2_a["cost"]) == D("110.00") and ec2_a["quantity"] == "2"


def test_effective_windows_follow_the_charge_day(
    tenant: Tenant, runtime: Runtime, tmp_path: Path
) -> None:
    s = Scenario(tenant, runtime, tmp_path)
    s.account("aws")
    a = s.customer("A")
    s.link(a, "111111111111")
    s.plan(
        [
            {"vendor": "aws", "adjustment": "markup_percent", "value": "30",
             "effective_from": "2025-03-20"},
            {"vendor": "aws", "adjustment": "markup_percent", "value": "10"},
            {"vendor": "aws", "adjustment": "markup_percent", "value": "50",
             "effective_from": "2025-03-10", "effective_to": "2025-03-19"},
            # Ended before the period: never applies.
            {"vendor": "aws", "adjustment": "markup_percent", "value": "99",
             "effective_from": "2025-01-01", "effective_to": "2025-02-28"},
        ]
    )  # fmt: skip
    s.upload(
        [
            row("10", day=5),
            row("20", day=10),
            row("30", day=19),
            row("40", day=20),
            row("50", day=31),
        ]
    )
    s.drain()
    expected = D(10) * D("1.1") + (D(20) + D(30)) * D("1.5") + (D(40) + D(50)) * D("1.3")
    assert s.exact(a) == expected == D("203")
    assert s.charges(a)["total"] == "203.00"


def test_credits_taxes_adjustments_pass_through_unless_named(
    tenant: Tenant, runtime: Runtime, tmp_path: Path
) -> None:
    s = Scenario(tenant, runtime, tmp_path)
    s.account("aws")
    a = s.customer("A")
    s.link(a, "111111111111")
    s.plan([{"vendor": "aws", "adjustment": "markup_percent", "value": "10"}])
    override = tenant.post(
        f"/v1/customers/{a}/price-rules",
        json={"adjustment": "markup_percent", "value": "50", "service_name": S3},
    ).json()
    s.upload(
        [
            row("100", day=1),
            row("20", day=2, charge="Purchase"),
            row("-10", day=3, charge="Credit"),
            row("8", day=4, charge="Tax"),
            row("-2", day=5, charge="Adjustment"),
            row("40", day=6, service=S3, category="Storage"),
            row("-4", day=7, service=S3, category="Storage", charge="Credit"),
        ]
    )
    s.drain()

    def by_category() -> dict[tuple[str, str], Decimal]:
        return {
            (li["service_name"], li["charge_category"]): Decimal(li["amount_exact"])
            for li in s.lines(a)
        }

    assert by_category() == {
        (EC2, "Usage"): D("110"),
        (EC2, "Purchase"): D("22"),
        (EC2, "Credit"): D("-10"),
        (EC2, "Tax"): D("8"),
        (EC2, "Adjustment"): D("-2"),
        (S3, "Usage"): D("60"),
        (S3, "Credit"): D("-4"),  # the override does not name Credit either
    }
    s3_usage = next(
        li for li in s.lines(a) if (li["service_name"], li["charge_category"]) == (S3, "Usage")
    )
    assert s3_usage["rule_ids"] == [override["id"]]
    # A rule that names the category prices it.
    plan_id = tenant.get("/v1/price-plans").json()["data"][0]["id"]
    added = tenant.post(
        f"/v1/price-plans/{plan_id}/rules",
        json={"charge_category": "Credit", "adjustment": "discount_percent", "value": "25"},
    )
    assert added.status_code == 201
    s.drain()
    after = by_category()
    assert after[(EC2, "Credit")] == D("-7.5")
    # The customer's S3 override does not match Credit lines (it does not name the
    # category), so the plan's Credit rule prices the S3 credit too.
    assert after[(S3, "Credit")] == D("-3")
    assert after[(EC2, "Tax")] == D("8") and after[(EC2, "Usage")] == D("110")
    assert s.charges(a)["total"] == "187.50"  # 110 + 22 - 7.5 + 8 - 2 + 60 - 3


def test_fixed_unit_price_in_rule_currency(
    tenant: Tenant, runtime: Runtime, tmp_path: Path
) -> None:
    s = Scenario(tenant, runtime, tmp_path)
    s.account("aws")
    usd, eur = s.customer("U"), s.customer("E", currency="EUR")
    s.link(usd, "111111111111")
    s.link(eur, "222222222222")
    s.plan(
        [
            {"vendor": "aws", "adjustment": "markup_percent", "value": "10"},
            {"sku_id": "SKU-FIX", "adjustment": "fixed_unit_price", "value": "0.25",
             "currency": "USD"},
            {"sku_id": "SKU-EUR", "adjustment": "fixed_unit_price", "value": "0.5",
             "currency": "EUR"},
        ]
    )  # fmt: skip
    # USD→EUR for the EUR customer's usage; EUR→USD for the USD customer's EUR price.
    s.rates(
        *_all_days_rates("USD", "EUR", {1: "0.9", 2: "0.8"}, "0.85"),
        *_all_days_rates("EUR", "USD", {1: "1.1", 2: "1.2"}, "1.15"),
    )
    usage = []
    for sub in ("111111111111", "222222222222"):
        usage += [
            row("3.00", sub=sub, sku="SKU-FIX", quantity="10", day=1),
            row("7.00", sub=sub, sku="SKU-FIX", quantity="30", day=2),
            row("1.00", sub=sub, sku="SKU-EUR", quantity="10", day=1, service=S3),
            row("1.00", sub=sub, sku="SKU-EUR", quantity="20", day=2, service=S3),
            row("100", sub=sub, sku="SKU-A", day=1, service="Other"),
        ]
    s.upload(usage)
    s.drain()

    # USD customer: quantity x USD price; EUR price converted at the charge day's rate.
    assert s.by_service(usd) == {
        EC2: (D(10) + D(30)) * D("0.25"),
        S3: D(10) * D("0.5") * D("1.1") + D(20) * D("0.5") * D("1.2"),
        "Other": D("110"),
    }
    # EUR customer: the USD unit price converted, the EUR unit price as is.
    assert s.by_service(eur) == {
        EC2: D(10) * D("0.25") * D("0.9") + D(30) * D("0.25") * D("0.8"),
        S3: (D(10) + D(20)) * D("0.5"),
        "Other": D("110") * D("0.9"),
    }
    ec2 = next(li for li in s.lines(eur) if li["service_name"] == EC2)
    assert ec2["cost"] == "10.00" and Decimal(ec2["cost_local"]) == D("2.7") + D("5.6")
    assert {(r["date"], Decimal(r["rate"])) for r in ec2["fx_rates"]} == {
        ("2025-03-01", D("0.9")),
        ("2025-03-02", D("0.8")),
    }


def test_basis_list_and_estimated_list_price(
    tenant: Tenant, runtime: Runtime, tmp_path: Path
) -> None:
    s = Scenario(tenant, runtime, tmp_path)
    s.account("azure", discount="20")
    a = s.customer("A")
    s.link(a, "sub-1", vendor="azure")
    s.plan([{"vendor": "azure", "basis": "list", "adjustment": "discount_percent", "value": "5"}])
    s.upload(
        [
            # With a list price in the file: list - 5 %.
            row("80", list_cost="120", provider="Microsoft", sub="sub-1", service="VM", day=1),
            # Without one: list = cost / (1 - 20 %) = 100, then - 5 %.
            {**row("80", provider="Microsoft", sub="sub-1", service="Disk", day=2),
             "ListCost": ""},
        ],
        vendor="azure",
    )  # fmt: skip
    s.drain()
    assert s.by_service(a) == {"VM": D("114"), "Disk": D("95")}
    disk = next(li for li in s.lines(a) if li["service_name"] == "Disk")
    assert disk["list_cost"] == "100.00" and disk["margin"] == "15.00"


def _graduated(total: Decimal, brackets: list[tuple[Decimal | None, Decimal]]) -> Decimal:
    """Each slice of the month's spend at its own bracket's markup."""
    sell, lower = D(0), D(0)
    for upper, percent in brackets:
        top = total if upper is None else min(total, upper)
        if top > lower:
            sell += (top - lower) * (1 + percent / 100)
        if upper is None or total <= upper:
            break
        lower = upper
    return sell


def test_tiered_percent_is_graduated_by_monthly_spend(
    tenant: Tenant, runtime: Runtime, tmp_path: Path
) -> None:
    s = Scenario(tenant, runtime, tmp_path)
    s.account("aws")
    small, middle, large = s.customer("S"), s.customer("M"), s.customer("L")
    s.link(small, "111111111111")
    s.link(middle, "222222222222")
    s.link(large, "333333333333")
    brackets = [(D(100), D(10)), (D(300), D(5)), (None, D(2))]
    s.plan(
        [
            {
                "vendor": "aws",
                "adjustment": "tiered_percent",
                "tiers": [
                    {"up_to": "100", "percent": "10"},
                    {"up_to": "300", "percent": "5"},
                    {"up_to": None, "percent": "2"},
                ],
            }
        ]
    )
    spend = {
        small: [("111111111111", "50.00", EC2, 1)],
        middle: [("222222222222", "100.00", EC2, 1), ("222222222222", "150.00", S3, 15)],
        large: [
            ("333333333333", "400.10", EC2, 1),
            ("333333333333", "333.33", EC2, 12),
            ("333333333333", "266.57", S3, 28),
        ],
    }
    s.upload(
        row(cost, sub=sub, service=service, day=day)
        for items in spend.values()
        for sub, cost, service, day in items
    )
    s.drain()
    for customer, items in spend.items():
        total = sum((D(cost) for _, cost, _, _ in items), D(0))
        want = _graduated(total, brackets)
        body = s.charges(customer)
        assert D(body["total"]) == cents(want), customer
        # The month's factor is applied per line at 18 places: exact to far below a cent.
        assert abs(D(body["total_exact"]) - want) < D("1e-12")
    assert _graduated(D(250), brackets) == D("267.5")
    assert _graduated(D(1000), brackets) == D("1034")
    assert s.charges(middle)["total"] == "267.50"
    assert s.charges(large)["total"] == "1034.00"


def test_fixed_fee_once_per_customer_with_usage_in_scope(
    tenant: Tenant, runtime: Runtime, tmp_path: Path
) -> None:
    s = Scenario(tenant, runtime, tmp_path)
    s.account("aws")
    s.account("azure")
    both, s3_only, azure_only, idle = (s.customer(x) for x in ("B", "S", "Z", "I"))
    s.link(both, "111111111111")
    s.link(s3_only, "222222222222")
    s.link(azure_only, "sub-z", vendor="azure")
    s.link(idle, "444444444444")
    s.plan(
        [
            {"vendor": "aws", "adjustment": "markup_percent", "value": "10"},
            {"vendor": "azure", "adjustment": "markup_percent", "value": "10"},
            {"vendor": "aws", "adjustment": "fixed_fee", "value": "25", "currency": "USD"},
            {"service_name": EC2, "adjustment": "fixed_fee", "value": "7.5", "currency": "USD"},
        ]
    )
    s.upload(
        [
            row("10", sub="111111111111", service=EC2, day=1),
            row("10", sub="111111111111", service=EC2, day=2),
            row("10", sub="111111111111", service=S3, day=3),
            row("20", sub="222222222222", service=S3, day=4),
            # Only a credit in scope is not usage in scope.
            row("-5", sub="444444444444", service=EC2, day=4, charge="Credit"),
        ]
    )
    s.upload([row("100", sub="sub-z", provider="Microsoft", service="VM")], vendor="azure")
    s.drain()

    def fees(customer: str) -> list[Decimal]:
        return sorted(D(li["amount_exact"]) for li in s.lines(customer) if li["kind"] == "fee")

    assert fees(both) == [D("7.5"), D("25")]
    assert fees(s3_only) == [D("25")]
    assert fees(azure_only) == []
    assert fees(idle) == []
    assert s.charges(both)["total"] == "65.50"  # 30 x 1.1 + 25 + 7.5
    assert s.charges(s3_only)["total"] == "47.00"
    assert s.charges(azure_only)["total"] == "110.00"
    assert s.charges(idle)["total"] == "-5.00"


def test_large_amounts_in_a_currency_without_minor_units(
    tenant: Tenant, runtime: Runtime, tmp_path: Path
) -> None:
    """Fees of ¥10,000 and more and ten-digit totals: no precision trap on the way."""
    s = Scenario(tenant, runtime, tmp_path)
    s.account("aws")
    yen = s.customer("Y", currency="JPY")
    s.link(yen, "111111111111")
    s.plan(
        [
            {"vendor": "aws", "adjustment": "markup_percent", "value": "10"},
            {"vendor": "aws", "adjustment": "fixed_fee", "value": "15000", "currency": "JPY"},
        ]
    )
    s.upload(
        [
            row("12345678901.5", currency="JPY", day=1),
            row("0.123456789", currency="JPY", day=2, service=S3),
        ]
    )
    s.drain()
    body = s.charges(yen)
    assert body["rating"]["status"] == "ok", body["rating"]
    ec2 = D("12345678901.5") * D("1.1")
    s3 = D("0.123456789") * D("1.1")
    assert s.by_service(yen) == {EC2: ec2, S3: s3, "fee": D("15000")}
    assert D(body["total"]) == cents(ec2 + s3 + D("15000"), D(1)) == D("13580261792")
    assert sum(D(li["amount"]) for li in s.lines(yen)) == D(body["total"])
