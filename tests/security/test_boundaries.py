"""Issue #9 finding 6: boundary values gave 500s (and a reset connection).

``after=9223372036854775808`` (SQLite), ``period=0000-01`` on analytics and the FOCUS export,
a subscription starting ``9999-12-31``: each was a 500. ``POST /v1/invoice-runs`` with
``0000-01`` was accepted and then failed forever in the job. Every one must be a 422
problem naming the field, on SQLite and PostgreSQL; an unexpected error must still arrive
as a 500 problem over a connection that stays usable.
"""

from __future__ import annotations

import http.client
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import uvicorn
from sqlalchemy import func, select

from billbyte.app import create_app
from billbyte.jobs.models import Job
from billbyte.kit.periods import Period
from billbyte.runtime import Runtime
from tests.cli.conftest import Cli
from tests.cli.conftest import cli as cli  # the fixture, for the CLI test
from tests.conftest import Tenant

PROBLEM = "application/problem+json"
PERIOD_MESSAGE = "must look like 2026-11 and lie between 2000-01 and 2100-12"
BAD_PERIODS = ["0000-01", "1999-12", "2101-01", "9999-12", "2026-13", "2026-00", "26-11", ""]
MAX_CURSOR = 2**63 - 1


def assert_422(response: Any, field: str, message: str | None = None) -> dict[str, Any]:
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    body = dict(response.json())
    fields = [e["field"] for e in body.get("errors", [])]
    assert field in fields, body
    if message is not None:
        assert message in body["detail"], body
    return body


@pytest.fixture
def customer(tenant: Tenant) -> str:
    response = tenant.post(
        "/v1/customers", json={"external_id": "B-1", "name": "Bounds Ltd", "currency": "EUR"}
    )
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


@pytest.fixture
def offer(tenant: Tenant) -> str:
    response = tenant.post(
        "/v1/catalog",
        json={
            "vendor": "microsoft365",
            "sku_id": "CFQ7TTC0LCHC:0002",
            "name": "Microsoft 365 Business Premium",
            "service_category": "Business Applications",
            "cost_price": "17.60",
            "cost_currency": "EUR",
            "prices": {"EUR": "19.90"},
        },
    )
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def test_the_period_type() -> None:
    leap = Period.parse("2024-02")
    assert (leap.first_day.isoformat(), leap.last_day.isoformat()) == ("2024-02-01", "2024-02-29")
    assert str(Period.parse("2026-12").add_months(1)) == "2027-01"
    assert str(Period.parse("2026-01").add_months(-13)) == "2024-12"
    assert Period.parse("2026-11") < Period.parse("2027-01")
    for edge, step in (("2000-01", -1), ("2100-12", 1)):
        with pytest.raises(ValueError, match="between 2000-01 and 2100-12"):
            Period.parse(edge).add_months(step)
    for text in [*BAD_PERIODS, " 2026-11", "2026-11\n", "２０２６-11", None, 202611]:
        with pytest.raises(ValueError, match="must look like 2026-11"):
            Period.parse(text)


PERIOD_URLS = [
    "/v1/customers/{customer}/analytics",
    "/v1/customers/{customer}/focus",
    "/v1/customers/{customer}/charges",
    "/v1/customers/{customer}/credit",
    "/v1/reports/margin",
    "/v1/usage/summary",
    "/v1/invoices",
    "/v1/price-plans/pp_unknown/preview",
]


@pytest.mark.parametrize("url", PERIOD_URLS)
def test_out_of_range_periods_are_422_naming_the_period(
    tenant: Tenant, customer: str, url: str
) -> None:
    for period in BAD_PERIODS:
        response = tenant.get(url.format(customer=customer), params={"period": period})
        assert_422(response, "period", PERIOD_MESSAGE)


@pytest.mark.parametrize(
    "url",
    [
        "/v1/customers/{customer}/analytics",
        "/v1/customers/{customer}/focus",
        "/v1/customers/{customer}/charges",
        "/v1/reports/margin",
    ],
)
def test_the_first_and_last_supported_periods_work(tenant: Tenant, customer: str, url: str) -> None:
    for period in ("2000-01", "2100-12"):
        response = tenant.get(url.format(customer=customer), params={"period": period})
        assert response.status_code == 200, (period, response.text)


def test_change_feed_cursor_beyond_64_bits_is_422(tenant: Tenant) -> None:
    for after in (str(MAX_CURSOR + 1), "-1", "99999999999999999999999999", "1e3", "x"):
        response = tenant.get("/v1/charges/changes", params={"after": after})
        assert_422(response, "after", "between 0 and 9223372036854775807")
    response = tenant.get("/v1/charges/changes", params={"after": str(MAX_CURSOR)})
    assert response.status_code == 200, response.text
    assert response.json()["data"] == []


def test_subscription_dates_outside_the_range_are_422(
    tenant: Tenant, customer: str, offer: str
) -> None:
    url = f"/v1/customers/{customer}/subscriptions"
    for start in ("9999-12-31", "0001-01-01", "1999-12-31", "2101-01-01"):
        response = tenant.post(url, json={"offer_id": offer, "quantity": 1, "start_date": start})
        assert_422(response, "start_date", "between 2000-01-01 and 2100-12-31")
    created = tenant.post(url, json={"offer_id": offer, "quantity": 1, "start_date": "2026-04-01"})
    assert created.status_code == 201, created.text
    sub = f"{url}/{created.json()['id']}"
    response = tenant.patch(sub, json={"quantity": 2, "effective_date": "9999-12-31"})
    assert_422(response, "effective_date")
    response = tenant.post(f"{sub}/cancel", json={"effective_date": "9999-12-31"})
    assert_422(response, "effective_date")
    response = tenant.patch(
        f"/v1/catalog/{offer}", json={"prices": {"EUR": "21.00"}, "prices_from": "9999-12-31"}
    )
    assert_422(response, "prices_from")


def test_invoice_run_for_an_out_of_range_period_is_refused_and_never_enqueued(
    tenant: Tenant, runtime: Runtime
) -> None:
    for period in ("0000-01", "2101-01", "9999-12"):
        response = tenant.post("/v1/invoice-runs", json={"period": period})
        assert_422(response, "period", PERIOD_MESSAGE)
    assert tenant.get("/v1/invoice-runs").json()["data"] == []
    with runtime.uow() as uow:
        assert uow.session.scalar(select(func.count()).select_from(Job)) == 0


@pytest.mark.parametrize(
    "args",
    [["invoices", "close", "--period"], ["rate", "--msp", "{msp}", "--period"]],
    ids=["invoices-close", "rate"],
)
def test_the_cli_refuses_an_out_of_range_period(cli: Cli, args: list[str]) -> None:
    msp = cli.json("msp", "create", "--name", "Alpha")
    for period in ("0000-01", "2101-01"):
        result = cli.run(*[a.format(msp=msp["id"]) for a in args], period)
        assert result.exit_code == 1, (result.stdout, result.stderr)
        assert PERIOD_MESSAGE in result.stderr, result.stderr
        assert "Traceback" not in result.stderr + result.stdout


# --- an unexpected error, over a real HTTP connection ------------------------------------


@pytest.fixture
def server(runtime: Runtime) -> Iterator[str]:
    app = create_app(runtime)

    def boom() -> None:
        raise RuntimeError("internal detail that must not leak: /srv/secret.key")

    app.add_api_route("/test-only/boom", boom, methods=["GET", "POST"])
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="critical", lifespan="off")
    instance = uvicorn.Server(config)
    thread = threading.Thread(target=instance.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not instance.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.02)
    port = instance.servers[0].sockets[0].getsockname()[1]
    yield f"127.0.0.1:{port}"
    instance.should_exit = True
    thread.join(timeout=30)


def test_an_unexpected_error_is_a_500_problem_and_the_connection_survives(
    server: str, tenant: Tenant
) -> None:
    with httpx.Client(base_url=f"http://{server}", timeout=30) as client:
        response = client.get("/test-only/boom")
    assert response.status_code == 500
    assert response.headers["content-type"].startswith(PROBLEM)
    body = response.json()
    assert body["code"] == "internal_error"
    assert body["request_id"] and response.headers["x-request-id"] == body["request_id"]
    assert "secret.key" not in response.text and "Traceback" not in response.text

    # The same keep-alive connection answers the next request: the server did not close it.
    connection = http.client.HTTPConnection(server, timeout=30)
    try:
        connection.request("GET", "/test-only/boom")
        first = connection.getresponse()
        first.read()
        assert first.status == 500
        assert (first.getheader("connection") or "").lower() != "close"
        connection.request("GET", "/healthz")
        second = connection.getresponse()
        assert second.status == 200, second.read()
        second.read()
        # A POST with an Idempotency-Key goes through the idempotency middleware too.
        connection.request(
            "POST",
            "/test-only/boom",
            body=b"{}",
            headers={
                "Authorization": f"Bearer {tenant.key}",
                "Idempotency-Key": "boom-1",
                "Content-Type": "application/json",
            },
        )
        third = connection.getresponse()
        third.read()
        assert third.status == 500
        connection.request("GET", "/healthz")
        fourth = connection.getresponse()
        fourth.read()
        assert fourth.status == 200
    finally:
        connection.close()
