"""MSP staff in a real browser: create a price rule and see its preview before saving;
issue an API key and see its secret once; set a brand colour and see it on the portal's
sign-in page. Screenshots go to build/screenshots/."""

from __future__ import annotations

from pathlib import Path

from playwright.sync_api import Browser, Page, expect

from billbyte.runtime import Runtime
from tests.conftest import Tenant
from tests.console.test_branding import png
from tests.rating.factories import PERIOD, Scenario, row
from tests.web.people import PASSWORD, add_staff

SHOTS = Path(__file__).resolve().parents[2] / "build" / "screenshots"


def _signed_in(browser: Browser, base: str, email: str) -> Page:
    page = browser.new_context(viewport={"width": 1280, "height": 800}).new_page()
    page.goto(f"{base}/console/sign-in")
    page.get_by_label("E-mail address").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{base}/console/**")
    return page


def _shot(page: Page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"))


def test_staff_create_a_price_rule_and_see_the_preview_first(
    browser: Browser, live_server: str, runtime: Runtime, tenant: Tenant, tmp_path: Path
) -> None:
    s = Scenario(tenant, runtime, tmp_path)
    s.account("aws")
    acme = s.customer("ACME")
    s.link(acme, "111111111111")
    plan_id = s.plan([{"vendor": "aws", "adjustment": "markup_percent", "value": "10"}])
    s.upload([row("80", day=1), row("20", day=2, service="Amazon Simple Storage Service")])
    s.drain()
    page = _signed_in(browser, live_server, add_staff(runtime, tenant.msp_id, "billing").email)
    page.goto(f"{live_server}/console/pricing")
    page.get_by_role("link", name="P", exact=True).click()
    page.get_by_label("Adjustment").select_option("markup_percent")
    page.get_by_label("Value (percent, unit price or fee)").fill("50")
    page.get_by_label("Service name").fill("Amazon Simple Storage Service")
    page.get_by_label("Preview period").fill(PERIOD)
    page.get_by_role("button", name="Preview effect").click()
    preview = page.locator("#preview")
    expect(preview).to_contain_text(f"Effect on {PERIOD} (not saved yet)")
    # 80 at +10 % and 20 at +50 % instead of +10 %: 110.00 before, 118.00 after.
    expect(preview.locator(f'tr[data-customer="{acme}"]')).to_contain_text("$110.00")
    expect(preview.locator(f'tr[data-customer="{acme}"]')).to_contain_text("$118.00")
    expect(preview.locator(".chart .main-svg").first).to_be_visible()  # plotly drew it
    assert tenant.get(f"/v1/price-plans/{plan_id}").json()["rules"].__len__() == 1
    _shot(page, "console-pricing")
    page.get_by_role("button", name="Save rule").click()
    expect(page.get_by_role("status")).to_contain_text("The rule was added")
    rules = tenant.get(f"/v1/price-plans/{plan_id}").json()["rules"]
    assert [r["value"] for r in rules] == ["10", "50"]


def test_an_admin_issues_an_api_key_and_sees_the_secret_once(
    browser: Browser, live_server: str, runtime: Runtime, tenant: Tenant
) -> None:
    page = _signed_in(browser, live_server, add_staff(runtime, tenant.msp_id, "admin").email)
    page.goto(f"{live_server}/console/access")
    form = page.locator('form[action="/console/access/keys"]')
    form.get_by_label("Name").fill("billing export")
    form.get_by_label("Role").select_option("billing")
    form.get_by_role("button", name="Issue key").click()
    secret = page.get_by_label("Secret").input_value()
    assert secret.startswith("bb_")
    _shot(page, "console-api-key-issued")
    works = tenant.client.get("/v1/price-plans", headers={"Authorization": f"Bearer {secret}"})
    assert works.status_code == 200
    page.goto(f"{live_server}/console/access")  # back to the list: the secret is gone
    expect(page.locator("tr[data-key]").filter(has_text="billing export")).to_be_visible()
    assert secret not in page.content()
    _shot(page, "console-access")


def test_a_brand_colour_shows_on_the_portal_sign_in(
    browser: Browser, live_server: str, runtime: Runtime, tenant: Tenant, tmp_path: Path
) -> None:
    page = _signed_in(browser, live_server, add_staff(runtime, tenant.msp_id, "admin").email)
    page.goto(f"{live_server}/console/branding")
    page.get_by_label("Display name").fill("Alpha Cloud")
    page.get_by_label("Primary colour (#rrggbb)").fill("#7a1f5c")
    page.get_by_label("Support e-mail").fill("help@alpha.example")
    page.get_by_role("button", name="Save brand").click()
    expect(page.get_by_role("status")).to_contain_text("The brand was saved")
    logo = tmp_path / "logo.png"
    logo.write_bytes(png(width=96, height=32))
    page.get_by_label("Logo file (PNG or JPEG, at most 256 KB)").set_input_files(str(logo))
    page.get_by_role("button", name="Upload logo").click()
    expect(page.get_by_role("status")).to_contain_text("The logo was uploaded")
    _shot(page, "console-branding")
    portal = page.context.new_page()
    portal.goto(f"{live_server}/portal/sign-in?brand={tenant.msp_id}")
    header = portal.locator("header.top")
    expect(header).to_have_css("background-color", "rgb(122, 31, 92)")
    expect(header).to_contain_text("Alpha Cloud")
    expect(portal.locator("header img.logo")).to_have_attribute(
        "src", f"/brand/{tenant.msp_id}/logo?v=1"
    )
    assert portal.evaluate("document.querySelector('header img.logo').naturalWidth") == 96
    _shot(portal, "portal-sign-in-branded")
