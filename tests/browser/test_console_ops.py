"""MSP staff in a real browser: suspend a customer through the confirmation page and see the
vendor state change; upload a vendor file (with the progress bar's script) and see the
import's reconciliation. Screenshots of the main pages go to build/screenshots/."""

from __future__ import annotations

import re
import shutil
from decimal import Decimal
from pathlib import Path

from playwright.sync_api import Browser, Page, expect
from playwright.sync_api import Error as PlaywrightError

from billbyte.kit.clock import utcnow
from billbyte.runtime import Runtime
from tests.api.factories import make_customer, make_partner
from tests.conftest import Tenant
from tests.connectors.test_framework import MemoryVendor, _drain, _setup, vendor  # noqa: F401
from tests.invoicing.conftest import add_charges, close, customer
from tests.usage.generate import write_focus
from tests.web.people import PASSWORD, add_staff

ROOT = Path(__file__).resolve().parents[2]
SHOTS = ROOT / "build" / "screenshots"
DOCS = ROOT / "docs" / "screenshots"
VIEWPORT = {"width": 1280, "height": 800}


def signed_in_page(browser: Browser, base: str, email: str) -> Page:
    page = browser.new_context(viewport=VIEWPORT).new_page()
    page.goto(f"{base}/console/sign-in")
    page.get_by_label("E-mail").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name=re.compile("Sign in", re.I)).click()
    expect(page).to_have_url(re.compile(r"/console/customers$"))
    return page


def shoot(page: Page, name: str, docs: bool = False) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    target = SHOTS / f"{name}.png"
    for attempt in range(3):
        try:
            page.screenshot(path=str(target))
            break
        except PlaywrightError as error:
            # Chromium sometimes answers "Unable to capture screenshot" when both cores are
            # busy (a compositor frame missed); the page itself was already checked above.
            if attempt == 2 or "Unable to capture screenshot" not in str(error):
                raise
            page.wait_for_timeout(500)
    if docs:
        DOCS.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(target, DOCS / f"{name}.png")


def test_staff_suspend_a_customer_through_the_confirmation_page(
    browser: Browser,
    live_server: str,
    runtime: Runtime,
    tenant: Tenant,
    vendor: MemoryVendor,  # noqa: F811
) -> None:
    period = f"{utcnow():%Y-%m}"
    _, customer = _setup(tenant)  # "Newco", provisioned on the in-memory AWS
    _drain(runtime)
    for external, name, currency, limit, amounts in (
        ("ACME-01", "Acme Industries", "EUR", "5000", ["1210.40", "388.15", "42.004"]),
        ("GLOBEX-02", "Globex Corporation", "GBP", "2500", ["2050.10", "77.70"]),
        ("INITECH-03", "Initech", "JPY", None, ["184200", "9100"]),
    ):
        body = {"name": name, "currency": currency}
        if limit:
            body["credit_limit"] = limit
        created = make_customer(tenant, external, **body)["id"]
        add_charges(runtime, tenant.msp_id, created, period, amounts, currency=currency)
    add_charges(runtime, tenant.msp_id, customer, period, ["312.25", "18.90"], currency="USD")
    staff = add_staff(runtime, tenant.msp_id, "billing")
    page = signed_in_page(browser, live_server, staff.email)
    api = tenant.get(f"/v1/customers/{customer}/charges", params={"period": period}).json()
    row = page.locator(f'tr[data-customer="{customer}"]')
    expect(row.locator("td[data-spend]")).to_have_attribute("data-spend", api["total"])
    shoot(page, "console-customers", docs=True)

    row.get_by_role("link", name="Newco").click()
    expect(page.locator("#charges-total")).to_have_attribute("data-total", api["total"])
    shoot(page, "console-customer", docs=True)
    page.get_by_role("link", name="Suspend…").click()
    account = vendor.states and next(iter(vendor.states))
    expect(page.get_by_role("heading", level=1)).to_contain_text("Suspend Newco (NEW-1)")
    expect(page.locator("table")).to_contain_text(str(account))
    expect(page.locator("table")).to_contain_text("aws")
    shoot(page, "console-suspend-confirm")
    page.get_by_label("Reason (recorded in the audit log)").fill("overdue invoices")
    page.get_by_role("button", name="Suspend Newco").click()
    expect(page).to_have_url(re.compile(r"/actions/sva_"))
    _drain(runtime)  # the service action's job (the worker thread in production)
    # the page refreshes itself while the action runs
    expect(page.locator("#customer-status")).to_have_text("suspended", timeout=15_000)
    expect(page.locator("#vendor-states")).to_contain_text("aws: suspended")
    assert vendor.states[str(account)] == "suspended"
    assert tenant.get(f"/v1/customers/{customer}").json()["status"] == "suspended"
    shoot(page, "console-suspended")
    page.context.close()


def test_staff_upload_a_vendor_file_and_see_the_reconciliation(
    browser: Browser, live_server: str, runtime: Runtime, tenant: Tenant, tmp_path: Path
) -> None:
    account = make_partner(tenant, display_name="AWS payer")["id"]
    path = tmp_path / "focus-2026-10.csv"
    expected = write_focus(path, 3000, seed=11)
    staff = add_staff(runtime, tenant.msp_id, "admin")
    page = signed_in_page(browser, live_server, staff.email)
    page.get_by_role("link", name="Partner accounts").click()
    shoot(page, "console-partners")
    page.locator(f'tr[data-partner="{account}"]').get_by_role("link", name="Upload a file").click()
    page.get_by_label(re.compile("^File")).set_input_files(str(path))
    sent: list[str] = []
    page.on(
        "request",
        lambda request: sent.append(request.resource_type) if request.method == "POST" else None,
    )
    page.get_by_role("button", name="Upload and import").click()
    expect(page).to_have_url(re.compile(r"/imports/"), timeout=60_000)
    assert sent == ["xhr"]  # sent by upload.js, whose progress events feed the <progress>
    billed = page.locator('tr[data-currency="USD"][data-field="billed_cost"]')
    expect(billed.locator("td[data-file]")).to_have_attribute(
        "data-file", str(expected["BilledCost"])
    )
    stored = billed.locator("td[data-stored]").get_attribute("data-stored")
    assert stored is not None and Decimal(stored) == expected["BilledCost"]
    expect(page.locator("#reconciliation .status-error")).to_have_count(0)
    shoot(page, "console-import")
    page.context.close()


def test_staff_see_invoices_and_the_margin_chart(
    browser: Browser, live_server: str, runtime: Runtime, tenant: Tenant
) -> None:
    for external, amounts in (("A", ["1210.40", "388.15"]), ("B", ["650.10", "77.70"])):
        created = customer(tenant, external)
        add_charges(runtime, tenant.msp_id, created, "2026-09", amounts)
    close(runtime, tenant.msp_id, "2026-09")
    staff = add_staff(runtime, tenant.msp_id, "billing")
    page = signed_in_page(browser, live_server, staff.email)
    page.get_by_role("link", name="Invoices").click()
    expect(page.locator("#invoice-list")).to_contain_text("INV-000002")
    shoot(page, "console-invoices")
    page.goto(f"{live_server}/console/margin?period=2026-09&group_by=customer")
    expect(page.locator(".chart .main-svg").first).to_be_visible(timeout=30_000)
    api = tenant.get("/v1/reports/margin", params={"period": "2026-09"}).json()["rows"]
    expect(page.locator("#margin tbody tr")).to_have_count(len(api))
    shoot(page, "console-margin")
    page.context.close()
