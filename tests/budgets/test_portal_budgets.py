"""The portal's budgets page: a customer's user sees spend against its budgets and the alerts,
manages its own customer's budgets with CSRF-checked forms, and never sees another's."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from billbyte.app import create_app
from billbyte.runtime import Runtime
from tests.api.factories import make_customer
from tests.conftest import Tenant
from tests.rating.factories import Scenario, row
from tests.web.people import add_portal_user, csrf_token, signed_in_client


@pytest.fixture
def browser_of(runtime: Runtime) -> Iterator[Any]:
    """A new browser (own cookies) signed in as a given portal user."""
    opened: list[TestClient] = []

    def open_for(tenant: Tenant, customer_id: str) -> TestClient:
        client = TestClient(create_app(runtime), raise_server_exceptions=False)
        client.__enter__()
        opened.append(client)
        person = add_portal_user(runtime, tenant.msp_id, customer_id)
        return signed_in_client(client, "portal", person)

    yield open_for
    for client in opened:
        client.__exit__(None, None, None)


def _budgets(tenant: Tenant, customer: str) -> list[dict[str, Any]]:
    response = tenant.get(f"/v1/customers/{customer}/budgets")
    assert response.status_code == 200, response.text
    return list(response.json()["data"])


def _create(client: TestClient, **fields: str) -> Any:
    page = client.get("/portal/budgets")
    assert page.status_code == 200, page.text
    body = {"name": "", "amount": "", "thresholds": "50, 80, 100", "vendor": ""}
    return client.post(
        "/portal/budgets",
        data={**body, **fields, "csrf_token": csrf_token(page.text)},
        follow_redirects=False,
    )


def _text(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def test_a_portal_user_sees_spend_against_its_budget_and_the_alerts(
    tenant: Tenant, runtime: Runtime, tmp_path: Path, browser_of: Any
) -> None:
    s = Scenario(tenant, runtime, tmp_path)
    s.account("aws")
    customer = s.customer("A")  # USD
    s.link(customer, "000000000001")
    made = tenant.post(
        f"/v1/customers/{customer}/budgets",
        json={"name": "Cloud spend", "amount": "1000", "thresholds": [50, 80, 100]},
    )
    assert made.status_code == 201
    s.upload([row("400.25", sub="000000000001"), row("212.25", sub="000000000001", day=2)])
    s.drain()
    total = s.charges(customer)["total"]
    assert total == "612.50"  # 400.25 + 212.25

    portal = browser_of(tenant, customer)
    page = portal.get("/portal/budgets", params={"period": "2025-03"})
    assert page.status_code == 200, page.text
    text = _text(page.text)
    assert "Cloud spend" in text
    assert "$612.50" in text and "$1,000.00" in text
    assert "61.25&nbsp;%" in page.text  # 612.50 / 1000
    assert "Cloud spend reached 50 %: $612.50 of $1,000.00." in text
    assert 'aria-current="page"' in page.text
    # Another month: no alert, no spend.
    april = _text(portal.get("/portal/budgets", params={"period": "2025-04"}).text)
    assert "No budget reached an alert threshold this month." in april and "$0.00" in april


def test_a_portal_user_creates_edits_and_deletes_its_own_budgets(
    tenant: Tenant, browser_of: Any
) -> None:
    customer = make_customer(tenant, currency="EUR")["id"]
    portal = browser_of(tenant, customer)
    created = _create(portal, name="Team", amount="2500.50", thresholds="50, 90", vendor="aws")
    assert created.status_code == 303
    assert created.headers["location"] == "/portal/budgets?done=created"
    [budget] = _budgets(tenant, customer)
    assert (budget["name"], budget["amount"], budget["currency"], budget["thresholds"]) == (
        "Team",
        "2500.50",
        "EUR",
        [50, 90],
    )
    assert budget["vendor"] == "aws"
    listed = portal.get("/portal/budgets?done=created")
    assert "Budget created." in listed.text and "Team" in listed.text

    edit = portal.get(f"/portal/budgets/{budget['id']}/edit")
    assert edit.status_code == 200 and 'value="2500.5"' in edit.text
    saved = portal.post(
        f"/portal/budgets/{budget['id']}",
        data={
            "name": "Team",
            "amount": "3000",
            "thresholds": "75 100",
            "vendor": "",
            "csrf_token": csrf_token(edit.text),
        },
        follow_redirects=False,
    )
    assert saved.status_code == 303, saved.text
    [budget] = _budgets(tenant, customer)
    assert (budget["amount"], budget["thresholds"], budget["vendor"]) == (
        "3000.00",
        [75, 100],
        None,
    )

    confirm = portal.get(f"/portal/budgets/{budget['id']}/delete")
    assert confirm.status_code == 200
    assert "Delete this budget?" in confirm.text and "Team" in confirm.text
    gone = portal.post(
        f"/portal/budgets/{budget['id']}/delete",
        data={"csrf_token": csrf_token(confirm.text)},
        follow_redirects=False,
    )
    assert gone.status_code == 303
    assert _budgets(tenant, customer) == []


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"amount": "-5"}, "amount must be a positive"),
        ({"amount": "0"}, "amount must be a positive"),
        ({"amount": "abc"}, "not a decimal number"),
        ({"amount": ""}, "Enter the budget"),
        ({"amount": "10.001"}, "more decimals"),
        ({"amount": "100", "thresholds": "0"}, "between 1 and 1000"),
        ({"amount": "100", "thresholds": "1001"}, "between 1 and 1000"),
        ({"amount": "100", "thresholds": "80, 50"}, "ascending order"),
        ({"amount": "100", "thresholds": "50, 50"}, "ascending order"),
        ({"amount": "100", "thresholds": "fifty"}, "whole-number percentages"),
        ({"amount": "100", "thresholds": "50.5"}, "whole-number percentages"),
        ({"amount": "100", "thresholds": ""}, "whole-number percentages"),
        ({"amount": "100", "vendor": "oracle"}, "vendor must be one of"),
    ],
)
def test_a_bad_form_is_shown_again_with_the_reason_and_422(
    tenant: Tenant, browser_of: Any, fields: dict[str, str], message: str
) -> None:
    customer = make_customer(tenant, currency="EUR")["id"]
    portal = browser_of(tenant, customer)
    response = _create(portal, name="Kept", **fields)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("text/html")
    assert message in response.text
    assert 'value="Kept"' in response.text  # what was typed stays in the form
    assert _budgets(tenant, customer) == []


def test_every_form_refuses_a_post_without_its_csrf_token(tenant: Tenant, browser_of: Any) -> None:
    customer = make_customer(tenant)["id"]
    portal = browser_of(tenant, customer)
    assert _create(portal, amount="100").status_code == 303
    [budget] = _budgets(tenant, customer)
    posts = [
        ("/portal/budgets", {"amount": "5", "thresholds": "50"}),
        (f"/portal/budgets/{budget['id']}", {"amount": "5", "thresholds": "50"}),
        (f"/portal/budgets/{budget['id']}/delete", {}),
    ]
    for url, data in posts:
        for token in ({}, {"csrf_token": "x" * 43}):
            refused = portal.post(url, data={**data, **token}, follow_redirects=False)
            assert refused.status_code == 403, (url, token, refused.text)
    assert [(b["id"], b["amount"]) for b in _budgets(tenant, customer)] == [
        (budget["id"], "100.00")
    ]


def test_another_customers_budgets_are_404_in_the_portal(
    tenant: Tenant, other_tenant: Tenant, browser_of: Any
) -> None:
    mine = make_customer(tenant, "MINE")["id"]
    neighbour = make_customer(tenant, "NEIGHBOUR")["id"]
    foreign = make_customer(other_tenant, "FOREIGN")["id"]
    theirs = [
        tenant.post(
            f"/v1/customers/{neighbour}/budgets", json={"amount": "7", "name": "Neighbour plan"}
        ),
        other_tenant.post(
            f"/v1/customers/{foreign}/budgets", json={"amount": "9", "name": "Foreign plan"}
        ),
    ]
    assert [t.status_code for t in theirs] == [201, 201]
    portal = browser_of(tenant, mine)
    token = csrf_token(portal.get("/portal/budgets").text)
    for budget in (t.json()["id"] for t in theirs):
        requests = [
            portal.get(f"/portal/budgets/{budget}/edit"),
            portal.get(f"/portal/budgets/{budget}/delete"),
            portal.post(
                f"/portal/budgets/{budget}",
                data={"amount": "1", "thresholds": "50", "csrf_token": token},
            ),
            portal.post(f"/portal/budgets/{budget}/delete", data={"csrf_token": token}),
        ]
        assert [r.status_code for r in requests] == [404] * 4, budget
        assert all(r.headers["content-type"].startswith("text/html") for r in requests)
    page = portal.get("/portal/budgets")
    assert "Neighbour plan" not in page.text and "Foreign plan" not in page.text
    assert "bud_" not in page.text and "No budgets yet." in page.text
    # Unchanged on both sides.
    assert [b["amount"] for b in _budgets(tenant, neighbour)] == ["7.00"]
    assert [b["amount"] for b in _budgets(other_tenant, foreign)] == ["9.00"]


def test_the_page_needs_a_portal_sign_in_and_a_valid_month(
    tenant: Tenant, client: TestClient, browser_of: Any
) -> None:
    away = client.get("/portal/budgets", follow_redirects=False)
    assert away.status_code == 303 and away.headers["location"].startswith("/portal/sign-in")
    portal = browser_of(tenant, make_customer(tenant)["id"])
    for period in ("2025-13", "soon", "1700-01"):
        assert portal.get("/portal/budgets", params={"period": period}).status_code == 422
