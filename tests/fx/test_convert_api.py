"""GET /v1/fx-rates/convert and GET/PUT /v1/fx-policy."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from tests.conftest import Tenant
from tests.fx.factories import assert_problem, exact, half_even_18, put, put_rates, set_policy

# 2024 dates: the tests must not depend on what "today" is.
RATES = (
    ("EUR", "USD", "2024-01-10", "1.0950"),
    ("EUR", "JPY", "2024-01-10", "159.22"),
    ("EUR", "USD", "2024-01-12", "1.0946"),
    ("EUR", "JPY", "2024-01-12", "158.94"),
    ("EUR", "USD", "2024-01-31", "1.0837"),
    ("EUR", "JPY", "2024-01-31", "160.19"),
    ("GBP", "EUR", "2024-01-12", "1.1650"),
)


def convert(tenant: Tenant, amount: str, source: str, target: str, day: str) -> Any:
    params = {"amount": amount, "from": source, "to": target, "date": day}
    return tenant.get("/v1/fx-rates/convert", params=params)


def test_direct_inverse_and_triangulated(tenant: Tenant) -> None:
    put_rates(tenant, *RATES)
    direct = convert(tenant, "250.10", "EUR", "USD", "2024-01-12").json()
    assert direct == {
        "object": "fx_conversion",
        "from_currency": "EUR",
        "to_currency": "USD",
        "amount": "250.10",
        "converted": str(Decimal("250.10") * Decimal("1.0946")),
        "rate": "1.0946",
        "rate_date": "2024-01-12",
        "path": ["EUR", "USD"],
    }
    assert direct["converted"] == "273.759460"

    inverse = convert(tenant, "100", "USD", "EUR", "2024-01-12").json()
    rate = half_even_18(1 / exact("1.0946"))
    assert inverse["rate"] == "0.913575735428467020" == str(rate)
    assert inverse["converted"] == str(100 * rate) and inverse["path"] == ["USD", "EUR"]

    cross = convert(tenant, "100", "USD", "JPY", "2024-01-12").json()
    rate = half_even_18(exact("158.94") / exact("1.0946"))
    assert cross["rate"] == str(rate) == "145.203727389000548145"
    assert cross["path"] == ["USD", "EUR", "JPY"] and cross["rate_date"] == "2024-01-12"
    assert Decimal(cross["converted"]) == 100 * rate

    # GBP -> USD: the GBP leg is stored as GBP->EUR (an inverse of EUR->GBP).
    gbp = convert(tenant, "1", "GBP", "USD", "2024-01-12").json()
    assert gbp["path"] == ["GBP", "EUR", "USD"]
    assert gbp["rate"] == str(half_even_18(exact("1.0946") * exact("1.1650")))


def test_same_currency_is_rate_one(tenant: Tenant) -> None:
    result = convert(tenant, "-12.345", "chf", "CHF", "2024-01-12").json()
    assert (result["converted"], result["rate"], result["path"]) == ("-12.345", "1", ["CHF"])


def test_charge_day_uses_the_latest_rate_within_staleness(tenant: Tenant) -> None:
    put_rates(tenant, *RATES)
    # Sunday 2024-01-14: Friday's rate.
    sunday = convert(tenant, "1", "EUR", "USD", "2024-01-14").json()
    assert (sunday["rate"], sunday["rate_date"]) == ("1.0946", "2024-01-12")
    # 2024-01-19 is 7 days after the 12th: still allowed by default; the 20th is not.
    assert convert(tenant, "1", "EUR", "USD", "2024-01-19").json()["rate_date"] == "2024-01-12"
    missing = assert_problem(
        convert(tenant, "1", "EUR", "USD", "2024-01-20"), 422, "fx_rate_missing"
    )
    assert missing["from_currency"] == "EUR" and missing["to_currency"] == "USD"
    assert missing["day"] == "2024-01-20" and "2024-01-20" in missing["detail"]
    set_policy(tenant, max_staleness_days=1)
    assert_problem(convert(tenant, "1", "EUR", "USD", "2024-01-14"), 422, "fx_rate_missing")
    # Before the first rate there is nothing.
    assert_problem(convert(tenant, "1", "EUR", "USD", "2024-01-09"), 422, "fx_rate_missing")


def test_period_close_applies_the_month_end_rate_to_the_whole_month(tenant: Tenant) -> None:
    put_rates(tenant, *RATES)
    set_policy(tenant, mode="period_close")
    for day in ("2024-01-01", "2024-01-12", "2024-01-31"):
        result = convert(tenant, "1", "USD", "JPY", day).json()
        assert result["rate_date"] == "2024-01-31", day
        assert result["rate"] == str(half_even_18(exact("160.19") / exact("1.0837")))
    # February has no rate within 7 days of its last day.
    assert_problem(convert(tenant, "1", "EUR", "USD", "2024-02-01"), 422, "fx_rate_missing")


def test_triangulation_uses_the_policy_base_currency(tenant: Tenant) -> None:
    put_rates(tenant, ("USD", "JPY", "2024-01-12", "145"), ("USD", "CHF", "2024-01-12", "0.85"))
    assert_problem(convert(tenant, "1", "JPY", "CHF", "2024-01-12"), 422, "fx_rate_missing")
    set_policy(tenant, base_currency="usd")
    result = convert(tenant, "1", "JPY", "CHF", "2024-01-12").json()
    assert result["path"] == ["JPY", "USD", "CHF"]
    assert result["rate"] == str(half_even_18(exact("0.85") / exact("145")))


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"amount": "1e400"}, "amount"),
        ({"amount": "NaN"}, "amount"),
        ({"amount": "-Infinity"}, "amount"),
        ({"amount": "1.5E3"}, "amount"),
        ({"amount": "12,50"}, "amount"),
        ({"amount": "0.0000000000000000001"}, "amount"),
        ({"amount": "100000000000000000000"}, "amount"),
        ({"from": "XYZ"}, "from"),
        ({"to": "EURO"}, "to"),
        ({"date": "2024-02-30"}, "date"),
        ({"date": "1705000000"}, "date"),
    ],
)
def test_bad_conversion_parameters_are_422(
    tenant: Tenant, params: dict[str, Any], field: str
) -> None:
    query = {"amount": "1", "from": "EUR", "to": "USD", "date": "2024-01-12", **params}
    problem = assert_problem(tenant.get("/v1/fx-rates/convert", params=query), 422)
    assert [e["field"] for e in problem["errors"]] == [field], problem


def test_missing_parameters_are_422(tenant: Tenant) -> None:
    problem = assert_problem(tenant.get("/v1/fx-rates/convert"), 422, "validation_error")
    assert {e["field"] for e in problem["errors"]} == {"amount", "from", "to"}


def test_policy_defaults_update_and_audit(tenant: Tenant, other_tenant: Tenant) -> None:
    default = tenant.get("/v1/fx-policy").json()
    assert default == {
        "object": "fx_policy",
        "base_currency": "EUR",
        "mode": "charge_day",
        "max_staleness_days": 7,
        "updated_at": None,
    }
    updated = set_policy(tenant, base_currency="usd", mode="period_close", max_staleness_days=3)
    assert (updated["base_currency"], updated["mode"], updated["max_staleness_days"]) == (
        "USD",
        "period_close",
        3,
    )
    assert updated["updated_at"] is not None
    assert tenant.get("/v1/fx-policy").json() == updated
    assert other_tenant.get("/v1/fx-policy").json() == default

    set_policy(tenant, base_currency="USD", mode="period_close", max_staleness_days=3)
    set_policy(tenant)  # PUT replaces: back to the defaults
    events = [
        e
        for e in tenant.get("/v1/audit-events", params={"limit": 500}).json()["data"]
        if e["action"] == "fx_policy.updated"
    ]
    assert [(e["before"], e["after"]) for e in events] == [
        (None, {"base_currency": "USD", "mode": "period_close", "max_staleness_days": 3}),
        (
            {"base_currency": "USD", "mode": "period_close", "max_staleness_days": 3},
            {"base_currency": "EUR", "mode": "charge_day", "max_staleness_days": 7},
        ),
    ]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"base_currency": "XYZ"}, "base_currency"),
        ({"mode": "monthly_average"}, "mode"),
        ({"max_staleness_days": -1}, "max_staleness_days"),
        ({"max_staleness_days": 367}, "max_staleness_days"),
        ({"max_staleness_days": "7 days"}, "max_staleness_days"),
        ({"surprise": True}, "surprise"),
    ],
)
def test_bad_policies_are_422(tenant: Tenant, body: dict[str, Any], field: str) -> None:
    problem = assert_problem(put(tenant, "/v1/fx-policy", body), 422, "validation_error")
    assert [e["field"] for e in problem["errors"]] == [field]
    assert tenant.get("/v1/fx-policy").json()["updated_at"] is None
