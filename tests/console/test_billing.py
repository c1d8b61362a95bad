"""The console's billing pages: the MSP's billing profile and invoice settings, its tax
rates, and a customer's billing details. Saved through the API's own services, so what a
form saves is what the API then answers; a refused VAT id or IBAN re-renders the form with
the message next to its field; help desk reads but may not write; another MSP's ids are
404; no form is accepted without its CSRF token."""

from __future__ import annotations

import re
from html import unescape
from typing import Any

import pytest
from fastapi.testclient import TestClient

from billbyte.runtime import Runtime
from tests.api.factories import make_customer
from tests.conftest import Tenant
from tests.console.admin_helpers import post, staff_client, token_of
from tests.web.test_accessibility import problems

PROFILE = {
    "legal_name": "Alpha Hosting GmbH",
    "address_line1": "Hauptstraße 1",
    "address_line2": "",
    "postal_code": "10115",
    "city": "Berlin",
    "country": "de",
    "tax_id": "DE 136 695 976",
    "registration": "HRB 12345 B",
    "email": "billing@alpha.example",
    "phone": "+49 30 123456",
    "bank_name": "Alpha Bank",
    "iban": "DE89 3704 0044 0532 0130 00",
    "bic": "COBADEFFXXX",
    "payment_terms_days": "14",
    "footer_text": "Thank you for your business.",
}
SETTINGS = {"mode": "invoice", "grouping": "account", "grace_days": "3"}
RATE = {"country": "DE", "name": "VAT", "rate": "19", "valid_from": "2026-01-01"}
DETAILS = {
    "legal_name": "Client SARL",
    "address_line1": "1 rue de la Paix",
    "postal_code": "75002",
    "city": "Paris",
    "country": "FR",
    "tax_id": "FR 40 303 265 045",
    "po_number": "PO-77",
    "invoice_email": "ap@client.example",
    "tax_treatment": "reverse_charge",
    "exemption_reason": "",
}


def field_error(html: str, name: str) -> str:
    """The message shown next to the field ``name`` (the field points at it)."""
    found = re.search(rf'<p class="field-error" id="f-{name}-error">([^<]*)</p>', html)
    assert found, f"no error next to {name}"
    assert re.search(rf'id="f-{name}"[^>]*aria-invalid="true"', html, re.S), name
    assert re.search(rf'id="f-{name}"[^>]*aria-describedby="f-{name}-error', html, re.S), name
    return unescape(found.group(1))


def rates_of(tenant: Tenant) -> list[dict[str, Any]]:
    return list(tenant.get("/v1/tax-rates").json()["data"])


# --- the billing profile and the invoice settings -------------------------------------------


def test_the_billing_profile_saved_on_the_page_is_what_the_api_answers(
    runtime: Runtime, tenant: Tenant
) -> None:
    admin = staff_client(runtime, tenant.msp_id)
    page = admin.get("/console/billing")
    assert page.status_code == 200
    assert 'value="30"' in page.text  # the default payment terms, before anything is saved
    response = post(admin, "/console/billing/profile", PROFILE)
    assert response.status_code == 303
    assert response.headers["location"] == "/console/billing?done=profile"
    api = tenant.get("/v1/billing-profile").json()
    # Expected by hand: VAT id and IBAN without their spaces, the country upper case.
    assert api["tax_id"] == "DE136695976"
    assert api["iban"] == "DE89370400440532013000"
    assert api["country"] == "DE"
    assert api["payment_terms_days"] == 14
    assert api["legal_name"] == "Alpha Hosting GmbH"
    assert api["address_line2"] is None
    shown = admin.get("/console/billing?done=profile").text
    assert "The billing profile was saved" in shown
    assert 'value="DE89370400440532013000"' in shown and 'value="14"' in shown


def test_the_invoice_mode_saved_on_the_page_is_what_the_api_answers(
    runtime: Runtime, tenant: Tenant
) -> None:
    assert tenant.get("/v1/invoice-settings").json()["mode"] == "statement"
    billing = staff_client(runtime, tenant.msp_id, "billing")
    assert post(billing, "/console/billing/invoice-settings", SETTINGS).status_code == 303
    api = tenant.get("/v1/invoice-settings").json()
    assert (api["mode"], api["grouping"], api["grace_days"]) == ("invoice", "account", 3)
    page = billing.get("/console/billing").text
    assert '<option value="invoice" selected>' in page


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("tax_id", "DE136695977", "is not a valid EU VAT id"),
        ("tax_id", "FR40303265045", "is not of the country DE"),
        ("iban", "DE89 3704 0044 0532 0130 01", "is not a valid IBAN"),
        ("iban", "not an iban", "is not a valid IBAN"),
        ("country", "XX", "unknown country"),
        ("payment_terms_days", "400", "is not between 0 and 365"),
    ],
)
def test_a_refused_profile_is_the_form_again_with_the_error_next_to_its_field(
    runtime: Runtime, tenant: Tenant, field: str, value: str, message: str
) -> None:
    admin = staff_client(runtime, tenant.msp_id)
    response = post(admin, "/console/billing/profile", {**PROFILE, field: value})
    assert response.status_code == 422
    assert 'role="alert"' in response.text
    assert message in field_error(response.text, field)
    assert f'value="{value}"' in response.text  # what was typed is kept
    assert 'value="Alpha Hosting GmbH"' in response.text
    assert problems(response.text) == []
    assert tenant.get("/v1/billing-profile").json()["legal_name"] is None  # nothing written


def test_refused_invoice_settings_are_the_form_again(runtime: Runtime, tenant: Tenant) -> None:
    admin = staff_client(runtime, tenant.msp_id)
    response = post(admin, "/console/billing/invoice-settings", {**SETTINGS, "grace_days": "x"})
    assert response.status_code == 422
    assert "grace_days" in field_error(response.text, "grace_days")
    response = post(admin, "/console/billing/invoice-settings", {**SETTINGS, "mode": "bill"})
    assert response.status_code == 422
    assert "mode" in field_error(response.text, "mode")
    assert tenant.get("/v1/invoice-settings").json()["mode"] == "statement"


# --- tax rates ------------------------------------------------------------------------------


def test_a_tax_rate_is_added_listed_ended_and_deleted(runtime: Runtime, tenant: Tenant) -> None:
    admin = staff_client(runtime, tenant.msp_id)
    assert "No tax rates yet" in admin.get("/console/billing/tax-rates").text
    assert post(admin, "/console/billing/tax-rates", RATE).status_code == 303
    assert (
        post(
            admin, "/console/billing/tax-rates", {**RATE, "country": "", "rate": "8.1"}
        ).status_code
        == 303
    )
    (every, de) = rates_of(tenant)  # the rate for every other country is listed first
    assert (de["country"], de["rate"], de["valid_from"], de["valid_until"]) == (
        "DE",
        "19",
        "2026-01-01",
        None,
    )
    assert (every["country"], every["rate"]) == (None, "8.1")
    page = admin.get("/console/billing/tax-rates").text
    row = re.search(rf'<tr data-rate="{de["id"]}">(.*?)</tr>', page, re.S)
    assert row and 'data-value="19"' in row.group(1) and "2026-01-01" in row.group(1)
    assert "every other country" in page

    ended = post(admin, f"/console/billing/tax-rates/{de['id']}/end", {"valid_until": "2027-01-01"})
    assert ended.status_code == 303
    assert rates_of(tenant)[1]["valid_until"] == "2027-01-01"

    confirm = admin.get(f"/console/billing/tax-rates/{de['id']}/delete")
    assert confirm.status_code == 200 and "Delete the tax rate VAT 19 %?" in confirm.text
    assert problems(confirm.text) == []
    assert post(admin, f"/console/billing/tax-rates/{de['id']}/delete").status_code == 303
    assert [r["id"] for r in rates_of(tenant)] == [every["id"]]


def test_refused_tax_rates_are_the_form_again(runtime: Runtime, tenant: Tenant) -> None:
    admin = staff_client(runtime, tenant.msp_id)
    assert post(admin, "/console/billing/tax-rates", RATE).status_code == 303
    overlap = post(admin, "/console/billing/tax-rates", {**RATE, "valid_from": "2026-06-01"})
    assert overlap.status_code == 409
    assert "overlaps" in overlap.text and 'role="alert"' in overlap.text
    bad = post(admin, "/console/billing/tax-rates", {**RATE, "rate": "101"})
    assert bad.status_code == 422
    assert "not between 0 and 100" in field_error(bad.text, "rate")
    assert 'value="101"' in bad.text
    assert problems(bad.text) == []
    rate_id = rates_of(tenant)[0]["id"]
    backwards = post(
        admin, f"/console/billing/tax-rates/{rate_id}/end", {"valid_until": "2025-01-01"}
    )
    assert backwards.status_code == 422 and "must be after valid_from" in backwards.text
    empty = post(admin, f"/console/billing/tax-rates/{rate_id}/end", {"valid_until": ""})
    assert empty.status_code == 422
    assert len(rates_of(tenant)) == 1 and rates_of(tenant)[0]["valid_until"] is None


# --- a customer's billing details -----------------------------------------------------------


def test_billing_details_saved_on_the_page_are_what_the_api_answers(
    runtime: Runtime, tenant: Tenant
) -> None:
    customer = make_customer(tenant, name="Client")["id"]
    admin = staff_client(runtime, tenant.msp_id)
    detail = admin.get(f"/console/customers/{customer}").text
    assert 'id="billing-details"' in detail
    assert f'href="/console/customers/{customer}/billing-details"' in detail
    form = admin.get(f"/console/customers/{customer}/billing-details")
    assert form.status_code == 200 and '<option value="standard" selected>' in form.text
    saved = post(admin, f"/console/customers/{customer}/billing-details", DETAILS)
    assert saved.status_code == 303
    api = tenant.get(f"/v1/customers/{customer}/billing-details").json()
    assert api["tax_id"] == "FR40303265045"  # by hand: the id without its spaces
    assert api["tax_treatment"] == "reverse_charge"
    assert (api["po_number"], api["invoice_email"]) == ("PO-77", "ap@client.example")
    assert api["exemption_reason"] is None
    shown = admin.get(saved.headers["location"]).text
    assert "The billing details were saved" in shown
    assert "FR40303265045" in shown and '<dd id="tax-treatment">reverse charge' in shown


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"tax_id": "FR40303265046"}, "tax_id", "is not a valid EU VAT id"),
        ({"tax_treatment": "exempt"}, "exemption_reason", "needs the reason"),
        ({"tax_id": ""}, "tax_id", "needs the customer's valid EU VAT id"),
        ({"invoice_email": "nobody"}, "invoice_email", "invoice_email"),
    ],
)
def test_refused_billing_details_are_the_form_again_with_the_error_next_to_its_field(
    runtime: Runtime, tenant: Tenant, changes: dict[str, str], field: str, message: str
) -> None:
    customer = make_customer(tenant)["id"]
    admin = staff_client(runtime, tenant.msp_id)
    response = post(admin, f"/console/customers/{customer}/billing-details", {**DETAILS, **changes})
    assert response.status_code == 422
    assert message in field_error(response.text, field)
    assert 'value="Client SARL"' in response.text
    assert problems(response.text) == []
    assert tenant.get(f"/v1/customers/{customer}/billing-details").json()["legal_name"] is None


# --- roles, tenancy, CSRF, navigation -------------------------------------------------------


def _writes(customer: str, rate: str) -> list[tuple[str, dict[str, str]]]:
    return [
        ("/console/billing/profile", PROFILE),
        ("/console/billing/invoice-settings", SETTINGS),
        ("/console/billing/tax-rates", {**RATE, "country": "FR"}),
        (f"/console/billing/tax-rates/{rate}/end", {"valid_until": "2027-01-01"}),
        (f"/console/billing/tax-rates/{rate}/delete", {}),
        (f"/console/customers/{customer}/billing-details", DETAILS),
    ]


def _state(tenant: Tenant, customer: str) -> list[Any]:
    return [
        tenant.get("/v1/billing-profile").json(),
        tenant.get("/v1/invoice-settings").json(),
        rates_of(tenant),
        tenant.get(f"/v1/customers/{customer}/billing-details").json(),
    ]


@pytest.fixture
def world(tenant: Tenant) -> tuple[str, str]:
    customer = make_customer(tenant)["id"]
    rate = tenant.post("/v1/tax-rates", json=RATE)
    assert rate.status_code == 201, rate.text
    return customer, rate.json()["id"]


def test_help_desk_reads_the_pages_but_may_change_nothing(
    runtime: Runtime, tenant: Tenant, world: tuple[str, str]
) -> None:
    customer, rate = world
    helpdesk = staff_client(runtime, tenant.msp_id, "helpdesk")
    for url in (
        "/console/billing",
        "/console/billing/tax-rates",
        f"/console/customers/{customer}/billing-details",
    ):
        page = helpdesk.get(url)
        assert page.status_code == 200, url
        assert 'method="post"' not in page.text.split("<main", 1)[1], url  # no form offered
        assert problems(page.text) == [], url
    assert 'data-value="19"' in helpdesk.get("/console/billing/tax-rates").text
    before = _state(tenant, customer)
    for url, data in _writes(customer, rate):
        assert post(helpdesk, url, data).status_code == 403, url
    assert _state(tenant, customer) == before


def test_billing_staff_may_change_them(
    runtime: Runtime, tenant: Tenant, world: tuple[str, str]
) -> None:
    customer, rate = world
    billing = staff_client(runtime, tenant.msp_id, "billing")
    for url, data in _writes(customer, rate):
        assert post(billing, url, data).status_code == 303, url
    profile, settings, rates, details = _state(tenant, customer)
    assert profile["iban"] == "DE89370400440532013000" and settings["mode"] == "invoice"
    assert [r["country"] for r in rates] == ["FR"] and details["po_number"] == "PO-77"


def test_another_msps_customer_and_tax_rate_are_404(
    runtime: Runtime, tenant: Tenant, other_tenant: Tenant, world: tuple[str, str]
) -> None:
    customer, rate = world
    stranger = staff_client(runtime, other_tenant.msp_id)
    for url in (
        f"/console/customers/{customer}/billing-details",
        f"/console/billing/tax-rates/{rate}/delete",
    ):
        assert stranger.get(url).status_code == 404, url
    before = _state(tenant, customer)
    for url, data in _writes(customer, rate)[3:]:
        assert post(stranger, url, data).status_code == 404, url
    assert _state(tenant, customer) == before
    assert rates_of(other_tenant) == []


def test_no_billing_form_is_accepted_without_its_csrf_token(
    runtime: Runtime, tenant: Tenant, world: tuple[str, str]
) -> None:
    customer, rate = world
    admin = staff_client(runtime, tenant.msp_id)
    token_of(admin, "/console/billing")  # the session has a token; the posts lack it
    before = _state(tenant, customer)
    for url, data in _writes(customer, rate):
        for token in (None, "forged-token-value-1234567890"):
            body = dict(data) if token is None else {**data, "csrf_token": token}
            assert admin.post(url, data=body, follow_redirects=False).status_code == 403, url
    assert _state(tenant, customer) == before


def test_the_pages_are_in_the_navigation(runtime: Runtime, tenant: Tenant) -> None:
    admin = staff_client(runtime, tenant.msp_id)
    for url in ("/console/billing", "/console/billing/tax-rates"):
        page = admin.get("/console/customers").text
        assert f'<a href="{url}">' in page, url
        assert f'<a href="{url}" aria-current="page">' in admin.get(url).text, url


def test_signed_out_billing_pages_send_to_sign_in(
    client: TestClient, world: tuple[str, str]
) -> None:
    customer, _ = world
    for url in (
        "/console/billing",
        "/console/billing/tax-rates",
        f"/console/customers/{customer}/billing-details",
    ):
        response = client.get(url, follow_redirects=False)
        assert response.status_code == 303, url
        assert response.headers["location"].startswith("/console/sign-in"), url
