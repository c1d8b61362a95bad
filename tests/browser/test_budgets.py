"""The portal's budgets page in a real browser: a customer's user sees its spend against its
budget and the alert it raised, and creates a budget through the form."""

from __future__ import annotations

from pathlib import Path

from playwright.sync_api import Browser, expect

from billbyte.runtime import Runtime
from tests.conftest import Tenant
from tests.rating.factories import Scenario, row
from tests.web.people import add_portal_user

SCREENSHOTS = Path(__file__).resolve().parents[2] / "build" / "screenshots"


def test_portal_budgets_page(
    browser: Browser, live_server: str, tenant: Tenant, runtime: Runtime, tmp_path: Path
) -> None:
    s = Scenario(tenant, runtime, tmp_path)
    s.account("aws")
    customer = s.customer("ACME", name="Acme Corp")
    s.link(customer, "000000000001")
    for body in (
        {"name": "Cloud total", "amount": "1000", "thresholds": [50, 80, 100]},
        {"name": "AWS only", "amount": "500", "thresholds": [90, 100], "vendor": "aws"},
    ):
        response = tenant.post(f"/v1/customers/{customer}/budgets", json=body)
        assert response.status_code == 201, response.text
    s.upload([row("512.40", sub="000000000001"), row("330.10", sub="000000000001", day=2)])
    s.drain()
    total = s.charges(customer)["total"]
    assert total == "842.50"  # 512.40 + 330.10: 84.25 % of 1000, 168.50 % of 500
    person = add_portal_user(runtime, tenant.msp_id, customer)

    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    page.goto(f"{live_server}/portal/sign-in?next=/portal/budgets%3Fperiod%3D2025-03")
    page.get_by_label("E-mail address").fill(person.email)
    page.get_by_label("Password").fill(person.password)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Budgets", exact=True)).to_be_visible()

    table = page.get_by_role("table")
    cloud = table.get_by_role("row", name="Cloud total")
    expect(cloud).to_contain_text("$842.50")
    expect(cloud).to_contain_text("$1,000.00")
    expect(cloud).to_contain_text("84.25\u00a0%")
    expect(cloud).to_contain_text("Alerted")
    aws = table.get_by_role("row", name="AWS only")
    expect(aws).to_contain_text("168.50\u00a0%")
    expect(aws).to_contain_text("Over budget")
    expect(aws).to_contain_text("AWS")
    alerts = page.locator("ul.alerts li")
    expect(alerts).to_have_count(4)  # 50 and 80 of the first; 90 and 100 of the second
    expect(alerts.first).to_contain_text("reached")

    page.get_by_label("Name (optional)").fill("Azure")
    page.get_by_label("Monthly amount in USD").fill("200")
    page.get_by_label("Alert thresholds (%)").fill("75, 100")
    page.get_by_label("Counts").select_option("azure")
    page.get_by_role("button", name="Create budget").click()
    expect(page.get_by_role("status").filter(has_text="Budget created.")).to_be_visible()
    page.goto(f"{live_server}/portal/budgets?period=2025-03")
    expect(page.get_by_role("row", name="Azure")).to_contain_text("$0.00")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "portal-budgets.png"), full_page=True)
    context.close()

    listed = tenant.get(f"/v1/customers/{customer}/budgets").json()["data"]
    assert [(b["name"], b["amount"], b["vendor"]) for b in listed] == [
        ("Cloud total", "1000.00", None),
        ("AWS only", "500.00", "aws"),
        ("Azure", "200.00", "azure"),
    ]
