"""PUT/GET /v1/fx-rates: upsert, listing, validation, roles, tenancy."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from billbyte.runtime import Runtime
from tests.conftest import Tenant
from tests.fx.factories import assert_problem, put, put_rates, rows_of


def test_put_inserts_then_is_idempotent(tenant: Tenant, runtime: Runtime) -> None:
    rates = [("EUR", "USD", "2026-10-01", "1.0842"), ("EUR", "JPY", "2026-10-01", "161.11")]
    first = put_rates(tenant, *rates)
    assert first == {
        "object": "fx_rate_upsert",
        "received": 2,
        "inserted": 2,
        "updated": 0,
        "unchanged": 0,
    }
    stored = rows_of(runtime, tenant.msp_id)
    again = put_rates(tenant, *rates)
    assert again["inserted"] == 0 and again["unchanged"] == 2
    assert rows_of(runtime, tenant.msp_id) == stored

    listed = tenant.get("/v1/fx-rates").json()["data"]
    assert [(r["base"], r["quote"], r["date"], r["rate"], r["source"]) for r in listed] == [
        ("EUR", "JPY", "2026-10-01", "161.11", "manual"),
        ("EUR", "USD", "2026-10-01", "1.0842", "manual"),
    ]


def test_put_replaces_a_rate_and_audits_the_change(tenant: Tenant, runtime: Runtime) -> None:
    put_rates(tenant, ("EUR", "USD", "2026-10-01", "1.0842"))
    before = rows_of(runtime, tenant.msp_id)
    result = put_rates(tenant, ("eur", "usd", "2026-10-01", "1.0850"), source="ecb")
    assert (result["updated"], result["inserted"]) == (1, 0)
    after = rows_of(runtime, tenant.msp_id)
    assert len(after) == 1 and after[0][0] == before[0][0]  # same row, new value
    assert after[0][4] == Decimal("1.0850") and after[0][5] == "ecb"

    events = tenant.get("/v1/audit-events", params={"limit": 500}).json()["data"]
    fx_events = [e for e in events if e["action"] == "fx_rates.upserted"]
    assert len(fx_events) == 2
    change = fx_events[-1]["after"]["changes"][0]
    assert change == {
        "base": "EUR",
        "quote": "USD",
        "date": "2026-10-01",
        "rate": "1.0850",
        "previous_rate": "1.0842",
        "previous_source": "manual",
    }
    # Unchanged rates write no audit event.
    put_rates(tenant, ("EUR", "USD", "2026-10-01", "1.085"), source="ecb")
    events = tenant.get("/v1/audit-events", params={"limit": 500}).json()["data"]
    assert len([e for e in events if e["action"] == "fx_rates.upserted"]) == 2


def test_rates_keep_every_decimal(tenant: Tenant) -> None:
    put_rates(
        tenant,
        ("EUR", "IDR", "2026-10-01", "17654.123456789012345678"),
        ("KWD", "EUR", "2026-10-01", "0.000000000000000001"),
        ("EUR", "VND", "2026-10-01", "99999999999999999999"),
    )
    listed = {r["quote"]: r["rate"] for r in tenant.get("/v1/fx-rates").json()["data"]}
    assert listed == {
        "IDR": "17654.123456789012345678",
        "EUR": "0.000000000000000001",
        "VND": "99999999999999999999",
    }


def test_list_filters_and_paginates(tenant: Tenant) -> None:
    put_rates(
        tenant,
        *[("EUR", "USD", f"2026-10-{day:02d}", f"1.0{day:02d}") for day in range(1, 11)],
        ("EUR", "GBP", "2026-10-05", "0.85"),
        ("USD", "JPY", "2026-10-05", "150"),
    )
    usd = tenant.get(
        "/v1/fx-rates",
        params={"base": "eur", "quote": "USD", "from": "2026-10-03", "to": "2026-10-07"},
    ).json()
    assert [r["date"] for r in usd["data"]] == [f"2026-10-{d:02d}" for d in range(3, 8)]
    assert [r["rate"] for r in usd["data"]] == ["1.003", "1.004", "1.005", "1.006", "1.007"]

    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 5, **({"cursor": cursor} if cursor else {})}
        page = tenant.get("/v1/fx-rates", params=params).json()
        seen += [r["id"] for r in page["data"]]
        if not page["has_more"]:
            break
        cursor = page["next_cursor"]
    assert len(seen) == len(set(seen)) == 12
    by_quote = tenant.get("/v1/fx-rates", params={"quote": "JPY"}).json()["data"]
    assert [(r["base"], r["rate"]) for r in by_quote] == [("USD", "150")]


def test_401_without_or_with_a_bad_key(tenant: Tenant) -> None:
    client = tenant.client
    body = {"rates": [{"base": "EUR", "quote": "USD", "date": "2026-10-01", "rate": "1.1"}]}
    for response in (
        client.put("/v1/fx-rates", json=body),
        client.get("/v1/fx-rates"),
        client.get("/v1/fx-rates/convert", params={"amount": "1", "from": "EUR", "to": "USD"}),
        client.get("/v1/fx-policy"),
        client.put("/v1/fx-policy", json={}),
        client.put("/v1/fx-rates", json=body, headers={"Authorization": "Bearer bb_nope_nope"}),
    ):
        assert_problem(response, 401)
        assert response.headers["www-authenticate"] == "Bearer"


def _item(**overrides: Any) -> dict[str, Any]:
    return {"base": "EUR", "quote": "USD", "date": "2026-10-01", "rate": "1.0842", **overrides}


@pytest.mark.parametrize(
    ("item", "field"),
    [
        (_item(base="XYZ"), "rates.0.base"),
        (_item(quote="usdollar"), "rates.0.quote"),
        (_item(quote=7), "rates.0.quote"),
        (_item(quote="EUR"), "rates.0"),
        (_item(date="2026-02-30"), "rates.0.date"),
        (_item(date="01/10/2026"), "rates.0.date"),
        (_item(date=1790000000), "rates.0.date"),
        (_item(rate="1e400"), "rates.0.rate"),
        (_item(rate="1E2"), "rates.0.rate"),
        (_item(rate="NaN"), "rates.0.rate"),
        (_item(rate="Infinity"), "rates.0.rate"),
        (_item(rate="-1.2"), "rates.0.rate"),
        (_item(rate="0"), "rates.0.rate"),
        (_item(rate="0.0000000000000000001"), "rates.0.rate"),  # 19 decimals
        (_item(rate="100000000000000000000"), "rates.0.rate"),  # 10^20
        (_item(rate=1.0842), "rates.0.rate"),  # a JSON number is a float
        (_item(rate=True), "rates.0.rate"),
        (_item(rate="1,0842"), "rates.0.rate"),
        (_item(extra="x"), "rates.0.extra"),
    ],
)
def test_bad_rates_are_422_problems_and_store_nothing(
    tenant: Tenant, runtime: Runtime, item: dict[str, Any], field: str
) -> None:
    good = _item(quote="GBP", rate="0.85")
    response = put(tenant, "/v1/fx-rates", {"rates": [item, good]})
    problem = assert_problem(response, 422, "validation_error")
    assert field in [e["field"] for e in problem["errors"]], problem
    assert rows_of(runtime, tenant.msp_id) == []


@pytest.mark.parametrize(
    "body",
    [
        {"rates": []},
        {},
        {"rates": "EUR"},
        {"rates": [_item()], "source": "Not a source!"},
    ],
)
def test_bad_bodies_are_422(tenant: Tenant, body: dict[str, Any]) -> None:
    assert_problem(put(tenant, "/v1/fx-rates", body), 422, "validation_error")


def test_a_rate_given_twice_is_refused(tenant: Tenant, runtime: Runtime) -> None:
    response = put(tenant, "/v1/fx-rates", {"rates": [_item(), _item(rate="1.09")]})
    problem = assert_problem(response, 422, "duplicate_rate")
    assert problem["errors"][0]["field"] == "rates.1"
    assert rows_of(runtime, tenant.msp_id) == []


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"base": "XYZ"}, "base"),
        ({"quote": "EURO"}, "quote"),
        ({"from": "2026-13-01"}, "from"),
        ({"to": "yesterday"}, "to"),
        ({"from": "2026-10-05", "to": "2026-10-01"}, "from"),
        ({"limit": 0}, "limit"),
    ],
)
def test_bad_list_parameters_are_422(tenant: Tenant, params: dict[str, Any], field: str) -> None:
    problem = assert_problem(tenant.get("/v1/fx-rates", params=params), 422)
    assert [e["field"] for e in problem["errors"]] == [field]


def test_helpdesk_reads_but_cannot_write(tenant: Tenant, runtime: Runtime) -> None:
    put_rates(tenant, ("EUR", "USD", "2026-10-01", "1.0842"))
    helpdesk = tenant.issue_key("helpdesk")
    headers = {"Authorization": f"Bearer {helpdesk}"}
    listed = tenant.client.get("/v1/fx-rates", headers=headers)
    assert listed.status_code == 200 and len(listed.json()["data"]) == 1
    converted = tenant.client.get(
        "/v1/fx-rates/convert",
        params={"amount": "10", "from": "EUR", "to": "USD", "date": "2026-10-01"},
        headers=headers,
    )
    assert converted.status_code == 200 and converted.json()["converted"] == "10.8420"
    assert tenant.client.get("/v1/fx-policy", headers=headers).status_code == 200

    stored = rows_of(runtime, tenant.msp_id)
    denied = put(tenant, "/v1/fx-rates", {"rates": [_item(rate="2")]}, key=helpdesk)
    assert_problem(denied, 403, "read_only_role")
    denied = put(tenant, "/v1/fx-policy", {"mode": "period_close"}, key=helpdesk)
    assert_problem(denied, 403, "read_only_role")
    assert rows_of(runtime, tenant.msp_id) == stored
    assert tenant.get("/v1/fx-policy").json()["mode"] == "charge_day"

    billing = tenant.issue_key("billing")
    allowed = put(tenant, "/v1/fx-rates", {"rates": [_item(rate="2")]}, key=billing)
    assert allowed.status_code == 200 and allowed.json()["updated"] == 1


def test_another_msp_sees_none_of_the_rates(
    tenant: Tenant, other_tenant: Tenant, runtime: Runtime
) -> None:
    put_rates(tenant, ("EUR", "USD", "2026-10-01", "1.0842"), ("EUR", "JPY", "2026-10-01", "161"))
    assert other_tenant.get("/v1/fx-rates").json()["data"] == []
    assert other_tenant.get("/v1/fx-rates", params={"base": "EUR"}).json()["data"] == []
    missing = other_tenant.get(
        "/v1/fx-rates/convert",
        params={"amount": "1", "from": "USD", "to": "JPY", "date": "2026-10-01"},
    )
    assert_problem(missing, 422, "fx_rate_missing")

    # The same key in two MSPs: two rows, each MSP converts with its own.
    put_rates(other_tenant, ("EUR", "USD", "2026-10-01", "2"))
    assert rows_of(runtime, tenant.msp_id)[1][4] == Decimal("1.0842")
    params = {"amount": "1", "from": "EUR", "to": "USD", "date": "2026-10-01"}
    assert tenant.get("/v1/fx-rates/convert", params=params).json()["rate"] == "1.0842"
    assert other_tenant.get("/v1/fx-rates/convert", params=params).json()["rate"] == "2"
    # An update by one MSP leaves the other's row alone.
    put_rates(other_tenant, ("EUR", "USD", "2026-10-01", "3"))
    assert tenant.get("/v1/fx-rates/convert", params=params).json()["rate"] == "1.0842"
    assert [e["action"] for e in other_tenant.get("/v1/audit-events").json()["data"]].count(
        "fx_rates.upserted"
    ) == 2
