"""The console's customer pages: what they show equals what the API answers for the same
data; suspend / resume / purge go through a confirmation page and the API's service; help
desk reads but never writes; another MSP's ids are 404; forms need their CSRF token."""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event, func, select

from billbyte.app import create_app
from billbyte.connectors.models import ServiceAction
from billbyte.kit.clock import utcnow
from billbyte.runtime import Runtime
from tests.api.factories import make_customer
from tests.conftest import Tenant
from tests.connectors.test_framework import MemoryVendor, _drain, _setup, vendor  # noqa: F401
from tests.invoicing.conftest import add_charges
from tests.web.people import add_portal_user, add_staff, csrf_token, signed_in_client

PERIOD = f"{utcnow():%Y-%m}"


def console(runtime: Runtime, msp_id: str, role: str = "admin") -> TestClient:
    client = TestClient(create_app(runtime), raise_server_exceptions=False)
    return signed_in_client(client, "console", add_staff(runtime, msp_id, role))


def cell(html: str, row_id: str, attribute: str) -> str:
    found = re.search(rf'data-customer="{row_id}".*?{attribute}="([^"]*)"', html, re.S)
    assert found, f"no {attribute} for {row_id}"
    return found.group(1)


def money_sum(amounts: list[str], step: str = "0.01") -> Decimal:
    return sum((Decimal(a) for a in amounts), Decimal(0)).quantize(Decimal(step))


def test_the_list_shows_each_customers_charges_total_and_credit_as_the_api(
    runtime: Runtime, tenant: Tenant
) -> None:
    first = make_customer(tenant, "ACME-1", name="Acme", credit_limit="200")["id"]
    second = make_customer(tenant, "GLOBEX-2", name="Globex", currency="JPY")["id"]
    third = make_customer(tenant, "INI-3", name="Initech")["id"]
    amounts = ["10.004", "20.004", "30.004", "0.333"]  # rounding happens on the total
    add_charges(runtime, tenant.msp_id, first, PERIOD, amounts, currency="USD")
    add_charges(runtime, tenant.msp_id, second, PERIOD, ["1234.6", "0.6"], currency="JPY")
    staff = console(runtime, tenant.msp_id)
    page = staff.get("/console/customers")
    assert page.status_code == 200, page.text
    for customer in (first, second, third):
        api = tenant.get(f"/v1/customers/{customer}/charges", params={"period": PERIOD}).json()
        assert Decimal(cell(page.text, customer, "data-spend")) == Decimal(api["total"])
    # independently: the hand-computed totals
    assert (
        Decimal(cell(page.text, first, "data-spend")) == money_sum(amounts) == Decimal("60.34")
    )  # half-even; per-line rounding: 60.33
    assert Decimal(cell(page.text, second, "data-spend")) == Decimal("1235")
    credit = tenant.get(f"/v1/customers/{first}/credit", params={"period": PERIOD}).json()
    assert Decimal(cell(page.text, first, "data-credit")) == Decimal(credit["percent"])
    assert Decimal(credit["percent"]) == Decimal("30.17")  # 60.34 / 200
    assert cell(page.text, third, "data-credit") == ""  # no limit
    assert "$60.34" in page.text and "¥1,235" in page.text
    found = staff.get("/console/customers", params={"q": "globex"}).text
    assert second in found and first not in found
    assert first in staff.get("/console/customers", params={"q": "acme-1"}).text
    assert third not in staff.get("/console/customers", params={"q": "%"}).text


def test_the_customer_page_shows_charges_invoices_and_portal_users(
    runtime: Runtime, tenant: Tenant
) -> None:
    customer = make_customer(tenant, "ACME-1", name="Acme")["id"]
    add_charges(runtime, tenant.msp_id, customer, PERIOD, ["5.555", "4.444"], currency="EUR")
    add_portal_user(runtime, tenant.msp_id, customer, email="finance@acme.example")
    staff = console(runtime, tenant.msp_id, "billing")
    page = staff.get(f"/console/customers/{customer}")
    assert page.status_code == 200, page.text
    api = tenant.get(f"/v1/customers/{customer}/charges", params={"period": PERIOD}).json()
    total = re.search(r'id="charges-total" data-total="([^"]*)"', page.text)
    assert total and total.group(1) == api["total"] == "10.00"
    assert "finance@acme.example" in page.text
    invoices = tenant.get("/v1/invoices", params={"customer_id": customer}).json()["data"]
    for invoice in invoices:
        assert f"/console/invoices/{invoice['id']}" in page.text


def test_invite_shows_the_link_once_then_reset_disable_and_enable(
    runtime: Runtime, tenant: Tenant
) -> None:
    customer = make_customer(tenant, "ACME-1")["id"]
    staff = console(runtime, tenant.msp_id)
    page = staff.get(f"/console/customers/{customer}")
    token = csrf_token(page.text)
    invited = staff.post(
        f"/console/customers/{customer}/portal-users",
        data={"csrf_token": token, "email": "Boss@Acme.example", "name": "Boss"},
    )
    assert invited.status_code == 201, invited.text
    link = re.search(r'id="one-time-link">([^<]+)<', invited.text)
    assert link and "/portal/reset/" in link.group(1)
    again = staff.get(f"/console/customers/{customer}").text
    assert link.group(1) not in again and "boss@acme.example" in again
    users = tenant.get(f"/v1/customers/{customer}/portal-users").json()["data"]
    assert [u["email"] for u in users] == ["boss@acme.example"]
    user = users[0]["id"]
    duplicate = staff.post(
        f"/console/customers/{customer}/portal-users",
        data={"csrf_token": token, "email": "boss@acme.example"},
    )
    assert duplicate.status_code == 409
    bad = staff.post(
        f"/console/customers/{customer}/portal-users",
        data={"csrf_token": token, "email": "not an address"},
    )
    assert bad.status_code == 422
    assert len(tenant.get(f"/v1/customers/{customer}/portal-users").json()["data"]) == 1
    reset = staff.post(
        f"/console/customers/{customer}/portal-users/{user}/reset", data={"csrf_token": token}
    )
    second = re.search(r'id="one-time-link">([^<]+)<', reset.text)
    assert reset.status_code == 200 and second and second.group(1) != link.group(1)
    disabled = staff.post(
        f"/console/customers/{customer}/portal-users/{user}/disable",
        data={"csrf_token": token},
        follow_redirects=False,
    )
    assert disabled.status_code == 303
    listed = tenant.get(f"/v1/customers/{customer}/portal-users").json()["data"][0]
    assert listed["disabled_at"] is not None
    staff.post(
        f"/console/customers/{customer}/portal-users/{user}/enable", data={"csrf_token": token}
    )
    listed = tenant.get(f"/v1/customers/{customer}/portal-users").json()["data"][0]
    assert listed["disabled_at"] is None


def _actions(runtime: Runtime) -> int:
    with runtime.uow(read_only=True) as uow:
        return int(uow.session.scalar(select(func.count()).select_from(ServiceAction)) or 0)


def test_suspend_through_the_confirmation_page_changes_the_vendor_state(
    runtime: Runtime,
    tenant: Tenant,
    vendor: MemoryVendor,  # noqa: F811
) -> None:
    _, customer = _setup(tenant)
    _drain(runtime)
    account = tenant.get(f"/v1/customers/{customer}").json()["vendor_states"][0]
    staff = console(runtime, tenant.msp_id, "billing")
    confirm = staff.get(f"/console/customers/{customer}/suspend")
    assert confirm.status_code == 200
    assert "Newco" in confirm.text and "NEW-1" in confirm.text
    assert account["vendor_identifier"] in confirm.text and ">aws<" in confirm.text
    assert _actions(runtime) == 0  # the confirmation page changes nothing
    refused = staff.post(f"/console/customers/{customer}/suspend", data={"reason": "x"})
    assert refused.status_code == 403 and _actions(runtime) == 0
    done = staff.post(
        f"/console/customers/{customer}/suspend",
        data={"csrf_token": csrf_token(confirm.text), "reason": "overdue"},
        follow_redirects=False,
    )
    assert done.status_code == 303
    status_url = done.headers["location"]
    running = staff.get(status_url)
    assert 'http-equiv="refresh"' in running.text
    _drain(runtime)
    after = staff.get(status_url)
    assert 'http-equiv="refresh"' not in after.text
    api = tenant.get(f"/v1/customers/{customer}").json()
    assert (
        api["status"] == "suspended" and vendor.states[account["vendor_identifier"]] == "suspended"
    )
    assert 'id="customer-status">suspended<' in after.text
    assert re.search(r"aws</span>: <span class=\"status status-suspended\">suspended", after.text)
    # suspending again is refused by the service, shown on the confirmation page
    again = staff.post(
        f"/console/customers/{customer}/suspend",
        data={"csrf_token": csrf_token(confirm.text)},
    )
    assert again.status_code == 409 and "Cannot suspend" in again.text


def test_purge_needs_the_external_id_typed(
    runtime: Runtime,
    tenant: Tenant,
    vendor: MemoryVendor,  # noqa: F811
) -> None:
    runtime.settings.purge_hold_hours = 0
    _, customer = _setup(tenant)
    _drain(runtime)
    tenant.post(f"/v1/customers/{customer}/suspend", json={})
    _drain(runtime)
    before = _actions(runtime)
    staff = console(runtime, tenant.msp_id)
    page = staff.get(f"/console/customers/{customer}/purge")
    assert page.status_code == 200 and 'name="confirm"' in page.text
    token = csrf_token(page.text)
    wrong = staff.post(
        f"/console/customers/{customer}/purge", data={"csrf_token": token, "confirm": "nope"}
    )
    assert wrong.status_code == 422 and _actions(runtime) == before
    right = staff.post(
        f"/console/customers/{customer}/purge",
        data={"csrf_token": token, "confirm": "NEW-1"},
        follow_redirects=False,
    )
    assert right.status_code == 303 and _actions(runtime) == before + 1
    _drain(runtime)
    assert tenant.get(f"/v1/customers/{customer}").json()["status"] == "purged"


def test_help_desk_reads_every_page_and_every_post_is_403(runtime: Runtime, tenant: Tenant) -> None:
    customer = make_customer(tenant, "ACME-1")["id"]
    user = add_portal_user(runtime, tenant.msp_id, customer).id
    desk = console(runtime, tenant.msp_id, "helpdesk")
    for path in ("", f"/{customer}", f"/{customer}/suspend", f"/{customer}/purge"):
        assert desk.get(f"/console/customers{path}").status_code == 200, path
    token = csrf_token(desk.get(f"/console/customers/{customer}").text)
    posts: list[tuple[str, dict[str, Any]]] = [
        (f"/{customer}/suspend", {}),
        (f"/{customer}/resume", {}),
        (f"/{customer}/purge", {"confirm": "ACME-1"}),
        (f"/{customer}/portal-users", {"email": "a@b.example"}),
        (f"/{customer}/portal-users/{user}/reset", {}),
        (f"/{customer}/portal-users/{user}/disable", {}),
        (f"/{customer}/portal-users/{user}/enable", {}),
    ]
    for path, data in posts:
        answer = desk.post(f"/console/customers{path}", data={"csrf_token": token, **data})
        assert answer.status_code == 403, (path, answer.status_code)
    assert _actions(runtime) == 0
    assert tenant.get(f"/v1/customers/{customer}").json()["status"] == "active"
    assert len(tenant.get(f"/v1/customers/{customer}/portal-users").json()["data"]) == 1


@pytest.mark.parametrize("role", ["admin", "helpdesk"])
def test_another_msps_customer_is_404_on_every_page_and_post(
    runtime: Runtime, tenant: Tenant, other_tenant: Tenant, role: str
) -> None:
    theirs = make_customer(other_tenant, "THEIRS")["id"]
    their_user = add_portal_user(runtime, other_tenant.msp_id, theirs).id
    mine = make_customer(tenant, "MINE")["id"]
    my_user = add_portal_user(runtime, tenant.msp_id, mine).id
    staff = console(runtime, tenant.msp_id, role)
    token = csrf_token(staff.get("/console/customers").text)
    for path in ("", "/suspend", "/resume", "/purge", "/actions/sva_nothing"):
        assert staff.get(f"/console/customers/{theirs}{path}").status_code == 404, path
    for path in (
        "/suspend",
        "/resume",
        "/purge",
        "/portal-users",
        f"/portal-users/{their_user}/reset",
        f"/portal-users/{their_user}/disable",
    ):
        answer = staff.post(
            f"/console/customers/{theirs}{path}",
            data={"csrf_token": token, "email": "x@y.example", "confirm": "THEIRS"},
        )
        assert answer.status_code == 404, (path, answer.status_code)
    # another customer's user under my own customer's URL: 404 too
    assert (
        staff.post(
            f"/console/customers/{mine}/portal-users/{their_user}/disable",
            data={"csrf_token": token},
        ).status_code
        == 404
    )
    assert "THEIRS" not in staff.get("/console/customers").text
    assert my_user  # my own user exists and stays


def _statements(runtime: Runtime, client: TestClient, url: str) -> int:
    seen: list[str] = []

    def count(*args: Any) -> None:
        seen.append(str(args[2]))

    event.listen(runtime.engine, "before_cursor_execute", count)
    try:
        assert client.get(url).status_code == 200
    finally:
        event.remove(runtime.engine, "before_cursor_execute", count)
    return len(seen)


def test_the_list_asks_the_database_the_same_number_of_times_for_3_or_30_customers(
    runtime: Runtime, tenant: Tenant
) -> None:
    staff = console(runtime, tenant.msp_id, "helpdesk")

    def add(first: int, last: int) -> None:
        for index in range(first, last):
            created = make_customer(tenant, f"C-{index:03d}", credit_limit="100")["id"]
            add_charges(runtime, tenant.msp_id, created, PERIOD, ["1.25", "2.50"], currency="USD")

    add(0, 3)
    few = _statements(runtime, staff, "/console/customers")
    add(3, 30)
    many = _statements(runtime, staff, "/console/customers")
    assert many == few  # no query per customer
    assert staff.get("/console/customers").text.count("$3.75") == 30
