"""Every page a person uses, checked for what assistive technology needs: a language, one
main heading, a label for every control, alternative text for every image, header cells in
tables, the skip link and no positive tabindex (keyboard order follows the page)."""

from __future__ import annotations

from html.parser import HTMLParser

import pytest
from fastapi.testclient import TestClient

from billbyte.app import create_app
from billbyte.runtime import Runtime
from tests.api.factories import make_customer, make_partner
from tests.conftest import Tenant
from tests.web.people import add_portal_user, add_staff, signed_in_client

CONTROLS = {"input", "select", "textarea"}
UNLABELLED_TYPES = {"hidden", "submit", "button", "reset", "image"}


class Audit(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.lang: str | None = None
        self.h1 = 0
        self.labels: set[str] = set()
        self.controls: list[dict[str, str]] = []
        self.images_without_alt: list[str] = []
        self.tables = 0
        self.header_cells = 0
        self.skip_link = False
        self.positive_tabindex: list[str] = []
        self._label_depth = 0
        self.wrapped: list[dict[str, str]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = {name: value or "" for name, value in attrs}
        if tag == "html":
            self.lang = attributes.get("lang")
        if tag == "h1":
            self.h1 += 1
        if tag == "label":
            self._label_depth += 1
            if attributes.get("for"):
                self.labels.add(attributes["for"])
        if tag in CONTROLS and attributes.get("type", "text") not in UNLABELLED_TYPES:
            (self.wrapped if self._label_depth else self.controls).append(attributes)
        if tag == "img" and "alt" not in attributes:
            self.images_without_alt.append(attributes.get("src", "?"))
        if tag == "table":
            self.tables += 1
        if tag == "th":
            self.header_cells += 1
        if tag == "a" and attributes.get("class") == "skip-link":
            self.skip_link = True
        tabindex = attributes.get("tabindex")
        if tabindex and tabindex.lstrip("-").isdigit() and int(tabindex) > 0:
            self.positive_tabindex.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if tag == "label":
            self._label_depth -= 1


def problems(html: str) -> list[str]:
    audit = Audit()
    audit.feed(html)
    found = []
    if not audit.lang:
        found.append("no lang on <html>")
    if audit.h1 != 1:
        found.append(f"{audit.h1} <h1> headings")
    if not audit.skip_link:
        found.append("no skip link")
    for control in audit.controls:
        named = control.get("id") in audit.labels or control.get("aria-label")
        if not named:
            found.append(f"unlabelled control {control.get('name') or control}")
    found += [f"image without alt: {src}" for src in audit.images_without_alt]
    if audit.tables and audit.header_cells == 0:
        found.append("table without header cells")
    found += [f"positive tabindex on <{tag}>" for tag in audit.positive_tabindex]
    return found


@pytest.fixture
def world(runtime: Runtime, tenant: Tenant) -> dict[str, str]:
    customer = make_customer(tenant)
    partner = make_partner(tenant)
    return {"customer": customer["id"], "partner": partner["id"]}


PORTAL_PAGES = [
    "/portal",
    "/portal/costs",
    "/portal/invoices",
    "/portal/budgets",
    "/portal/account",
]
CONSOLE_PAGES = [
    "/console/customers",
    "/console/customers/{customer}",
    "/console/customers/{customer}/billing-details",
    "/console/partners",
    "/console/pricing",
    "/console/fx",
    "/console/invoices",
    "/console/margin",
    "/console/billing",
    "/console/billing/tax-rates",
    "/console/webhooks",
    "/console/access",
    "/console/audit",
    "/console/branding",
    "/console/account",
]


def test_the_sign_in_pages_are_accessible(client: TestClient) -> None:
    for path in ("/portal/sign-in", "/console/sign-in"):
        assert problems(client.get(path).text) == [], path


def test_every_portal_page_is_accessible(
    runtime: Runtime, tenant: Tenant, world: dict[str, str]
) -> None:
    person = add_portal_user(runtime, tenant.msp_id, world["customer"])
    with TestClient(create_app(runtime)) as browser:
        signed_in_client(browser, "portal", person)
        for path in PORTAL_PAGES:
            page = browser.get(path)
            assert page.status_code == 200, path
            assert problems(page.text) == [], path


def test_every_console_page_is_accessible(
    runtime: Runtime, tenant: Tenant, world: dict[str, str]
) -> None:
    person = add_staff(runtime, tenant.msp_id, "admin")
    with TestClient(create_app(runtime)) as browser:
        signed_in_client(browser, "console", person)
        for template in CONSOLE_PAGES:
            path = template.format(**world)
            page = browser.get(path)
            assert page.status_code == 200, path
            assert problems(page.text) == [], path


def test_the_audit_finds_an_unlabelled_control() -> None:
    page = (
        '<html lang="en"><body><a class="skip-link" href="#m">skip</a><h1>x</h1>'
        '<input name="q"><label for="b">B</label><input id="b" name="b"></body></html>'
    )
    assert problems(page) == ["unlabelled control q"]
