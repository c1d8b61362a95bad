"""The enterprise portal in a real browser: sign in, see the API's month-to-date total,
change the breakdown and the filters, download the CSV, and fail to open another customer's
invoice. Screenshots of the main pages go to build/screenshots/.

Expected amounts come from the API's responses or are added up here from the usage rows the
test uploads (tests/portal/factories), never from the portal's code.
"""

from __future__ import annotations

import csv
import io
import re
from decimal import Decimal
from pathlib import Path

from playwright.sync_api import Browser, Page, expect

from billbyte.jobs.service import run_pending
from billbyte.runtime import Runtime
from tests.conftest import Tenant
from tests.portal.factories import EC2, PERIOD, PREVIOUS, Seeded, month_of_usage, seed, sold
from tests.web.people import Person

D = Decimal
SHOTS = Path(__file__).resolve().parents[2] / "build" / "screenshots"
NOVEMBER = month_of_usage(PERIOD, 30, 10)
OCTOBER = month_of_usage(PREVIOUS, 31, 8)


def _amount(text: str) -> Decimal:
    """'$1,234.50' → Decimal('1234.50') (English figures only)."""
    return D(re.sub(r"[^0-9.\-]", "", text))


def _sign_in(browser: Browser, base: str, person: Person, locale: str = "en-US") -> Page:
    context = browser.new_context(viewport={"width": 1280, "height": 800}, locale=locale)
    page = context.new_page()
    page.goto(f"{base}/portal/sign-in")
    page.get_by_label("E-mail address").fill(person.email)
    page.get_by_label("Password").fill(person.password)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(f"{base}/portal")
    return page


def _shot(page: Page, name: str, full_page: bool = False) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.wait_for_timeout(300)  # let plotly finish drawing
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=full_page)


def _seed(tenant: Tenant, runtime: Runtime, tmp_path: Path) -> Seeded:
    seeded = seed(tenant, runtime, tmp_path, credit_limit="2000", usage=[*OCTOBER, *NOVEMBER])
    response = tenant.post("/v1/invoice-runs", json={"period": PREVIOUS, "force": True})
    assert response.status_code == 202, response.text
    run_pending(runtime)
    budget = tenant.post(
        f"/v1/customers/{seeded.customer_id}/budgets",
        json={"name": "Cloud", "amount": "500.00", "thresholds": [50, 80, 100]},
    )
    assert budget.status_code == 201, budget.text
    return seeded


def _breakdown(page: Page) -> dict[str, Decimal]:
    rows = page.locator("#breakdown tbody tr")
    found: dict[str, Decimal] = {}
    for index in range(rows.count()):
        cells = rows.nth(index)
        found[cells.locator("th").inner_text()] = _amount(cells.locator("td").first.inner_text())
    return found


def test_a_customer_user_sees_the_apis_total_filters_costs_and_downloads_the_csv(
    browser: Browser, live_server: str, tenant: Tenant, runtime: Runtime, tmp_path: Path
) -> None:
    seeded = _seed(tenant, runtime, tmp_path)
    api = tenant.get(f"/v1/customers/{seeded.customer_id}/charges", params={"period": PERIOD})
    assert api.status_code == 200
    api_total = D(api.json()["total"])
    assert api_total == sold(NOVEMBER)

    page = _sign_in(browser, live_server, seeded.person)
    page.get_by_label("Billing period").select_option(PERIOD)
    page.get_by_role("button", name="Show").click()
    expect(page.locator("#mtd-total")).to_be_visible()
    assert _amount(page.locator("#mtd-total").inner_text()) == api_total
    assert _amount(page.locator("#charges-total").inner_text()) == api_total
    _shot(page, "portal-overview")

    page.get_by_role("link", name="Costs", exact=True).click()
    page.get_by_label("Billing period").select_option(PERIOD)
    page.get_by_label("Break down by").select_option("region")
    page.get_by_role("button", name="Apply").click()
    expect(page.locator("#breakdown")).to_contain_text("us-east-1")
    assert _breakdown(page) == {
        region: sold([u for u in NOVEMBER if u.region == region])
        for region in ("eu-central-1", "us-east-1")
    }
    page.locator(".chart .main-svg").first.wait_for()  # plotly drew the charts
    _shot(page, "portal-costs", full_page=True)

    # A filter changes the breakdown to what the filtered rows add up to.
    page.get_by_label("Service", exact=True).select_option(EC2)
    page.get_by_role("button", name="Apply").click()
    expect(page.locator("#filtered-total")).to_have_text(
        f"${sold([u for u in NOVEMBER if u.service == EC2]):,.2f}"
    )
    assert _breakdown(page) == {
        region: sold([u for u in NOVEMBER if u.region == region and u.service == EC2])
        for region in ("eu-central-1", "us-east-1")
    }

    # The CSV of everything adds up to the API's total.
    page.get_by_role("link", name="Reset filters").click()
    with page.expect_download() as download_info:
        page.locator("#costs-csv").click()
    path = download_info.value.path()
    rows = list(csv.DictReader(io.StringIO(Path(path).read_text(encoding="utf-8"))))
    assert sum((D(r["amount"]) for r in rows), D(0)) == api_total

    page.get_by_role("link", name="Invoices", exact=True).click()
    expect(page.locator("#invoices")).to_be_visible()
    _shot(page, "portal-invoices")
    page.context.close()


def test_another_customers_invoice_is_404_and_a_post_without_csrf_is_refused(
    browser: Browser, live_server: str, tenant: Tenant, runtime: Runtime, tmp_path: Path
) -> None:
    seeded = _seed(tenant, runtime, tmp_path)
    documents = tenant.get("/v1/invoices", params={"status": "finalized"}).json()["data"]
    theirs = [d["id"] for d in documents if d["customer_id"] == seeded.customer_id]
    assert theirs
    page = _sign_in(browser, live_server, seeded.neighbour_person)
    response = page.goto(f"{live_server}/portal/invoices/{theirs[0]}.pdf")
    assert response is not None and response.status == 404
    expect(page.get_by_role("heading", level=1)).to_contain_text("404")
    refused = page.request.post(f"{live_server}/portal/sign-out", form={"next": "/portal"})
    assert refused.status == 403
    page.goto(f"{live_server}/portal")
    expect(page.locator("#mtd-total")).to_be_visible()  # still signed in
    page.context.close()


def test_a_german_user_reads_german_text_and_german_amounts(
    browser: Browser, live_server: str, tenant: Tenant, runtime: Runtime, tmp_path: Path
) -> None:
    seeded = seed(tenant, runtime, tmp_path, currency="EUR", locale="de_DE", usage=NOVEMBER)
    api = tenant.get(f"/v1/customers/{seeded.customer_id}/charges", params={"period": PERIOD})
    total = D(api.json()["total"])
    assert total == sold(NOVEMBER) * 2  # 2 EUR per USD
    page = _sign_in(browser, live_server, seeded.person, locale="en-US")
    page.goto(f"{live_server}/portal?period={PERIOD}")
    expect(page.get_by_role("heading", level=1)).to_have_text("Übersicht")
    german = f"{total:,.2f}".replace(",", " ").replace(".", ",").replace(" ", ".") + "\xa0€"
    expect(page.locator("#mtd-total")).to_have_text(german)
    expect(page.get_by_text("Offene Posten", exact=True)).to_be_visible()
    page.context.close()
