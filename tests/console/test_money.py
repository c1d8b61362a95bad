"""The console's FX & credit page: rates, the FX policy and the credit defaults as the API
stores and reports them; customers' own credit settings."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import func, select

from billbyte.fx.models import FxRate
from billbyte.runtime import Runtime
from tests.api.factories import make_customer
from tests.conftest import Tenant
from tests.console.admin_helpers import post, staff_client


def _rates(runtime: Runtime) -> int:
    with runtime.uow(read_only=True) as uow:
        return uow.session.scalar(select(func.count()).select_from(FxRate)) or 0


def test_the_page_shows_the_apis_rates_and_policies(runtime: Runtime, tenant: Tenant) -> None:
    put = tenant.client.put(
        "/v1/fx-rates",
        headers=tenant.headers,
        json={
            "rates": [
                {"base": "EUR", "quote": "USD", "date": "2026-10-01", "rate": "1.0832"},
                {"base": "EUR", "quote": "JPY", "date": "2026-10-01", "rate": "161.5"},
            ]
        },
    )
    assert put.status_code == 200, put.text
    make_customer(tenant, credit_limit="5000.00")
    page = staff_client(runtime, tenant.msp_id, "helpdesk").get("/console/fx")
    assert page.status_code == 200
    for rate in tenant.get("/v1/fx-rates").json()["data"]:
        assert re.search(
            rf'data-rate="{rate["id"]}".*?data-value="{re.escape(rate["rate"])}"', page.text, re.S
        )
    fx = tenant.get("/v1/fx-policy").json()
    assert f'value="{fx["base_currency"]}"' in page.text
    credit = tenant.get("/v1/credit-policy").json()
    assert f'value="{", ".join(str(t) for t in credit["thresholds"])}"' in page.text
    (customer,) = tenant.get("/v1/customers").json()["data"]
    assert f'data-customer="{customer["id"]}"' in page.text
    assert "5,000.00" in page.text


def test_adding_rates_stores_what_the_api_then_lists(runtime: Runtime, tenant: Tenant) -> None:
    billing = staff_client(runtime, tenant.msp_id, "billing")
    response = post(
        billing,
        "/console/fx/rates",
        {"date": "2026-11-02", "base": "eur", "rates": "USD 1.10\nGBP=0.85"},
    )
    assert response.status_code == 303, response.text
    listed = {
        (r["base"], r["quote"], r["date"], r["rate"])
        for r in tenant.get("/v1/fx-rates").json()["data"]
    }
    assert listed == {("EUR", "USD", "2026-11-02", "1.1"), ("EUR", "GBP", "2026-11-02", "0.85")}


@pytest.mark.parametrize(
    "data",
    [
        {"date": "2026-11-02", "base": "EUR", "rates": "USD -1"},
        {"date": "2026-11-02", "base": "EUR", "rates": "USD 1e5"},
        {"date": "2026-11-02", "base": "EUR", "rates": "EUR 1"},
        {"date": "2026-11-02", "base": "XXQ", "rates": "USD 1"},
        {"date": "2026-02-30", "base": "EUR", "rates": "USD 1"},
        {"date": "99999-01-01", "base": "EUR", "rates": "USD 1"},
        {"date": "2026-11-02", "base": "EUR", "rates": "USD"},
        {"date": "2026-11-02", "base": "EUR", "rates": ""},
    ],
)
def test_bad_rates_are_a_422_page_and_nothing_is_stored(
    runtime: Runtime, tenant: Tenant, data: dict[str, str]
) -> None:
    response = post(staff_client(runtime, tenant.msp_id), "/console/fx/rates", data)
    assert response.status_code == 422, response.text
    assert _rates(runtime) == 0


def test_policies_are_saved_through_the_api_services(runtime: Runtime, tenant: Tenant) -> None:
    admin = staff_client(runtime, tenant.msp_id)
    assert (
        post(
            admin,
            "/console/fx/policy",
            {"base_currency": "USD", "mode": "period_close", "max_staleness_days": "3"},
        ).status_code
        == 303
    )
    fx = tenant.get("/v1/fx-policy").json()
    assert (fx["base_currency"], fx["mode"], fx["max_staleness_days"]) == ("USD", "period_close", 3)
    assert (
        post(
            admin,
            "/console/fx/credit-policy",
            {
                "thresholds": "90, 70",
                "action": "suspend",
                "suspend_at": "120",
                "prepaid_overdraft": "yes",
            },
        ).status_code
        == 303
    )
    assert tenant.get("/v1/credit-policy").json() == {
        "thresholds": [70, 90],
        "action": "suspend",
        "suspend_at": 120,
        "prepaid_overdraft": True,
    }


@pytest.mark.parametrize(
    ("url", "data"),
    [
        (
            "/console/fx/policy",
            {"base_currency": "EUR", "mode": "weekly", "max_staleness_days": "3"},
        ),
        (
            "/console/fx/policy",
            {"base_currency": "EUR", "mode": "charge_day", "max_staleness_days": "-1"},
        ),
        (
            "/console/fx/policy",
            {"base_currency": "EUR", "mode": "charge_day", "max_staleness_days": "999"},
        ),
        ("/console/fx/credit-policy", {"thresholds": "", "action": "notify", "suspend_at": "100"}),
        ("/console/fx/credit-policy", {"thresholds": "0", "action": "notify", "suspend_at": "100"}),
        (
            "/console/fx/credit-policy",
            {"thresholds": "80", "action": "explode", "suspend_at": "100"},
        ),
        (
            "/console/fx/credit-policy",
            {"thresholds": "80", "action": "notify", "suspend_at": "1e3"},
        ),
    ],
)
def test_bad_policies_are_a_422_page_and_nothing_changes(
    runtime: Runtime, tenant: Tenant, url: str, data: dict[str, str]
) -> None:
    before = (tenant.get("/v1/fx-policy").json(), tenant.get("/v1/credit-policy").json())
    assert post(staff_client(runtime, tenant.msp_id), url, data).status_code == 422
    assert (tenant.get("/v1/fx-policy").json(), tenant.get("/v1/credit-policy").json()) == before


def test_a_bad_rate_filter_is_a_422_page(runtime: Runtime, tenant: Tenant) -> None:
    client = staff_client(runtime, tenant.msp_id)
    assert client.get("/console/fx", params={"base": "NOPE"}).status_code == 422
    assert client.get("/console/fx", params={"cursor": "'; --"}).status_code == 422
