"""The portal's pages for a signed-in customer user: the overview shows the API's charges,
the costs page's breakdowns and CSV follow the filters, invoices download as the API serves
them, and nothing of another customer is ever reachable.

Expected amounts are added up in the tests from the usage uploaded (tests/portal/factories)
or read from the API's own responses, never from the portal's view code.
"""

from __future__ import annotations

import csv
import io
import re
from decimal import Decimal
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from billbyte.kit.clock import utcnow
from billbyte.runtime import Runtime
from tests.conftest import Tenant
from tests.portal.factories import (
    EC2,
    PERIOD,
    PREVIOUS,
    PROD,
    S3,
    TEST,
    USAGE,
    Seeded,
    seed,
    sold,
)
from tests.web.people import signed_in_client

D = Decimal


def _figure(html: str, element_id: str) -> str:
    found = re.search(rf'id="{element_id}">([^<]*)<', html)
    assert found, f"no #{element_id} on the page"
    return found.group(1).replace("\xa0", " ")


def _amount(text: str) -> Decimal:
    """'$19.47' or '19,47 €' → Decimal (only for en/de test fixtures)."""
    digits = re.sub(r"[^0-9,.\-]", "", text)
    if "," in digits and digits.rfind(",") > digits.rfind("."):
        digits = digits.replace(".", "").replace(",", ".")
    return Decimal(digits.replace(",", ""))


@pytest.fixture
def seeded(tenant: Tenant, runtime: Runtime, tmp_path: Path) -> Seeded:
    return seed(tenant, runtime, tmp_path)


@pytest.fixture
def portal(client: TestClient, seeded: Seeded) -> TestClient:
    return signed_in_client(client, "portal", seeded.person)


def test_the_overview_shows_the_apis_charges_total_as_month_to_date(
    portal: TestClient, seeded: Seeded, tenant: Tenant
) -> None:
    api = tenant.get(f"/v1/customers/{seeded.customer_id}/charges", params={"period": PERIOD})
    assert api.status_code == 200
    expected = D(api.json()["total"])
    assert expected == sold([u for u in USAGE if u.period == PERIOD])  # 20.90
    page = portal.get("/portal", params={"period": PERIOD})
    assert page.status_code == 200, page.text
    assert _amount(_figure(page.text, "mtd-total")) == expected
    assert _figure(page.text, "mtd-total") == "$20.90"
    assert _amount(_figure(page.text, "charges-total")) == expected
    # Every group of the API is on the page, with its amount.
    for group in api.json()["groups"]:
        assert f"${D(group['amount']):,.2f}" in page.text
    # The MSP's own cost (19.00) and margin (1.90) are not the customer's business.
    visible = re.sub(r"<[^>]+>", " ", re.sub(r"<style>.*?</style>", "", page.text, flags=re.S))
    assert D(api.json()["cost_total"]) == sum(u.cost for u in USAGE if u.period == PERIOD)
    assert f"${D(api.json()['cost_total']):,.2f}" not in visible
    assert f"${D(api.json()['margin_total']):,.2f}" not in visible
    assert "margin" not in visible.lower()


def test_the_overview_shows_credit_used_of_the_limit(portal: TestClient) -> None:
    page = portal.get("/portal", params={"period": PERIOD})
    # 20.90 of a 100.00 limit.
    assert _figure(page.text, "credit-used") == "20.9%"
    assert "$100.00" in page.text


def test_the_forecast_is_what_was_spent_once_the_period_is_over(portal: TestClient) -> None:
    page = portal.get("/portal", params={"period": PERIOD})  # 2026-11 lies in the past
    assert _figure(page.text, "forecast") == "$20.90"


def _breakdown(html: str) -> dict[str, Decimal]:
    table = html[html.index('id="breakdown"') :]
    table = table[: table.index("</table>")]
    body = table[table.index("<tbody>") : table.index("</tbody>")]
    rows = re.findall(r'<th scope="row">([^<]*)</th><td class="num">([^<]*)</td>', body)
    return {label: _amount(amount) for label, amount in rows}


def test_the_breakdown_follows_the_dimension_and_the_filters(portal: TestClient) -> None:
    month = [u for u in USAGE if u.period == PERIOD]
    by_service = portal.get("/portal/costs", params={"period": PERIOD, "dimension": "service"})
    assert by_service.status_code == 200, by_service.text
    assert _breakdown(by_service.text) == {
        EC2: sold([u for u in month if u.service == EC2]),
        S3: sold([u for u in month if u.service == S3]),
    }
    by_region = portal.get(
        "/portal/costs", params={"period": PERIOD, "dimension": "region", "service": EC2}
    )
    ec2 = [u for u in month if u.service == EC2]
    assert _breakdown(by_region.text) == {
        "eu-central-1": sold([u for u in ec2 if u.region == "eu-central-1"]),
        "us-east-1": sold([u for u in ec2 if u.region == "us-east-1"]),
    }
    by_account = portal.get(
        "/portal/costs", params={"period": PERIOD, "dimension": "account", "region": "eu-central-1"}
    )
    eu = [u for u in month if u.region == "eu-central-1"]
    assert _breakdown(by_account.text) == {
        PROD: sold([u for u in eu if u.account == PROD]),
        TEST: sold([u for u in eu if u.account == TEST]),
    }
    by_tag = portal.get("/portal/costs", params={"period": PERIOD, "dimension": "tag:env"})
    assert _breakdown(by_tag.text) == {
        "prod": sold([u for u in month if u.tags.get("env") == "prod"]),
        "dev": sold([u for u in month if u.tags.get("env") == "dev"]),
        "(untagged)": sold([u for u in month if "env" not in u.tags]),
    }
    tagged = portal.get(
        "/portal/costs", params={"period": PERIOD, "dimension": "service", "tag": "env=prod"}
    )
    assert _breakdown(tagged.text) == {EC2: sold([u for u in month if u.tags.get("env") == "prod"])}
    early = portal.get(
        "/portal/costs",
        params={
            "period": PERIOD,
            "dimension": "service",
            "date_from": "2026-11-02",
            "date_to": "2026-11-03",
        },
    )
    later = [u for u in month if 2 <= u.day <= 3]
    assert _breakdown(early.text) == {
        EC2: sold([u for u in later if u.service == EC2]),
        S3: sold([u for u in later if u.service == S3]),
    }
    assert _amount(_figure(early.text, "filtered-total")) == sold(later)


def _csv_total(text: str) -> tuple[Decimal, list[dict[str, str]]]:
    rows = list(csv.DictReader(io.StringIO(text)))
    return sum((D(r["amount"]) for r in rows), D(0)), rows


def test_the_costs_csv_adds_up_to_the_api_and_follows_the_filters(
    portal: TestClient, seeded: Seeded, tenant: Tenant
) -> None:
    api = tenant.get(f"/v1/customers/{seeded.customer_id}/charges", params={"period": PERIOD})
    whole = portal.get("/portal/costs.csv", params={"period": PERIOD})
    assert whole.status_code == 200
    assert whole.headers["content-type"].startswith("text/csv")
    total, rows = _csv_total(whole.text)
    assert total == D(api.json()["total"])
    assert {r["account"] for r in rows} == {PROD, TEST}  # never the neighbour's
    filtered = portal.get("/portal/costs.csv", params={"period": PERIOD, "region": "us-east-1"})
    total, rows = _csv_total(filtered.text)
    assert total == sold([u for u in USAGE if u.period == PERIOD and u.region == "us-east-1"])
    assert [r["tags"] for r in rows] == ["env=dev"]


def test_the_focus_export_is_the_apis(portal: TestClient, seeded: Seeded, tenant: Tenant) -> None:
    api = tenant.get(f"/v1/customers/{seeded.customer_id}/focus", params={"period": PERIOD})
    page = portal.get("/portal/focus.csv", params={"period": PERIOD})
    assert page.status_code == api.status_code == 200
    assert page.text == api.text


def test_the_comparison_with_last_month_names_the_change_in_words(portal: TestClient) -> None:
    page = portal.get("/portal/costs", params={"period": PERIOD})
    now = sold([u for u in USAGE if u.period == PERIOD])
    then = sold([u for u in USAGE if u.period == PREVIOUS])
    text = re.sub(r"\s+", " ", page.text.replace("\xa0", " "))
    assert f"your costs are ${now:,.2f}, ${now - then:,.2f} more than" in text
    assert "2026-10" in text


def test_top_resources_list_the_costliest_first(portal: TestClient) -> None:
    page = portal.get("/portal/costs", params={"period": PERIOD})
    found = re.findall(r'<th scope="row" class="resource">([^<]*)</th>', page.text)
    month = sorted((u for u in USAGE if u.period == PERIOD), key=lambda u: -u.cost)
    assert found == [u.resource for u in month]
    assert "vm-n" not in page.text  # the neighbour's resource


@pytest.mark.parametrize(
    "params",
    [
        {"period": "2026-13"},
        {"period": "x" * 300},
        {"period": PERIOD, "date_from": "not a date"},
        {"period": PERIOD, "date_from": "2026-12-01"},
        {"period": PERIOD, "date_from": "2026-11-20", "date_to": "2026-11-10"},
        {"period": PERIOD, "dimension": "colour"},
        {"period": PERIOD, "tag": "no-equals-sign"},
        {"period": PERIOD, "vendor": "v" * 500},
    ],
)
def test_hostile_cost_queries_are_422_never_500(portal: TestClient, params: dict[str, str]) -> None:
    for path in ("/portal/costs", "/portal/costs.csv"):
        assert portal.get(path, params=params).status_code == 422, (path, params)


def test_the_overview_shows_each_budgets_spend(
    portal: TestClient, seeded: Seeded, tenant: Tenant
) -> None:
    assert "No budget is set." in portal.get("/portal", params={"period": PERIOD}).text
    created = tenant.post(
        f"/v1/customers/{seeded.customer_id}/budgets",
        json={"name": "Cloud", "amount": "40.00", "thresholds": [50, 80, 100]},
    )
    assert created.status_code == 201, created.text
    page = portal.get("/portal", params={"period": PERIOD})
    status = page.text[page.text.index('id="budget-status"') :]
    status = re.sub(r"\s+", " ", status[: status.index("</div>")])
    # 20.90 of 40.00 is 52.25 %.
    assert "Cloud</strong>: $20.90 of $40.00" in status
    assert "52.2%" in status or "52.3%" in status


def test_without_a_period_the_pages_show_the_current_month_even_when_it_is_empty(
    portal: TestClient,
) -> None:
    current = utcnow().strftime("%Y-%m")  # the seeded usage lies in 2026-10/11 only
    for path in ("/portal", "/portal/costs", "/portal/invoices", "/portal/costs.csv"):
        response = portal.get(path)
        assert response.status_code == 200, (path, response.text)
    overview = portal.get("/portal").text
    if current not in (PERIOD, PREVIOUS):
        assert _figure(overview, "mtd-total") == "$0.00"
        assert "No charges in this period yet." in overview
    # The period selector offers the months with charges.
    assert f'<option value="{PERIOD}"' in overview and f'<option value="{PREVIOUS}"' in overview


def test_a_bad_filter_is_a_page_that_says_what_is_wrong(portal: TestClient) -> None:
    response = portal.get("/portal/costs", params={"period": PERIOD, "date_from": "2026-12-01"})
    assert response.status_code == 422
    assert response.headers["content-type"].startswith("text/html")
    assert "date_from must lie within the period 2026-11." in response.text
