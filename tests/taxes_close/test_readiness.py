"""Before the run: ``GET /v1/invoices/readiness`` names the customers whose invoice-mode
invoice of a period would stay a draft, and why — the same customers and reasons as the run
then gives — and the console warns on the customer page and the billing profile page."""

from __future__ import annotations

from typing import Any

from billbyte.kit.clock import utcnow
from billbyte.kit.periods import Period
from billbyte.tenancy.models import MspBillingProfile
from tests.api.factories import assert_problem
from tests.conftest import Tenant
from tests.console.admin_helpers import staff_client
from tests.invoicing.conftest import Billing, add_charges, close, customer
from tests.taxes_close.parties import details, invoice_mode, run_of

ADDRESS_FIELDS = ["buyer.address_line1", "buyer.postal_code", "buyer.city"]


def _readiness(tenant: Tenant, period: str) -> dict[str, Any]:
    response = tenant.get("/v1/invoices/readiness", params={"period": period})
    assert response.status_code == 200, response.text
    return dict(response.json())


def _customers(billing: Billing, period: str) -> dict[str, str]:
    """Five customers, four with charges in ``period``: one ready, three blocked."""
    msp_id = billing.tenant.msp_id
    ids = {
        "ready": customer(billing.tenant, "DE-OK", country="DE"),
        "no_address": customer(billing.tenant, "DE-NA", country="DE"),
        "no_vat_id": customer(billing.tenant, "FR-RC", country="FR"),
        "no_rate": customer(billing.tenant, "US-1", country="US"),
        "no_charges": customer(billing.tenant, "DE-NC", country="DE"),
    }
    details(billing, ids["ready"], legal_name="Müller GmbH", country="DE")
    details(billing, ids["no_vat_id"], country="FR", tax_treatment="reverse_charge")
    details(billing, ids["no_rate"], legal_name="Acme Inc.", country="US")
    for name, cid in ids.items():
        if name != "no_charges":
            add_charges(billing.runtime, msp_id, cid, period, ["100.00"])
    return ids


def test_readiness_names_who_the_run_will_refuse_and_why(billing: Billing) -> None:
    invoice_mode(billing)
    ids = _customers(billing, "2026-09")
    found = _readiness(billing.tenant, "2026-09")
    assert (found["mode"], found["ready"], found["seller_missing"]) == ("invoice", False, [])
    assert found["customers_checked"] == 4  # not the one without charges
    blocked = {b["customer_id"]: b for b in found["blocked"]}
    assert {cid: b["missing"] for cid, b in blocked.items()} == {
        ids["no_address"]: ADDRESS_FIELDS,
        ids["no_vat_id"]: ["buyer.tax_id"],
        ids["no_rate"]: ["tax_rate"],
    }
    assert [b["customer_id"] for b in found["blocked"]] == sorted(blocked)
    assert blocked[ids["no_rate"]]["external_id"] == "US-1"
    assert "no tax rate for country 'US'" in blocked[ids["no_rate"]]["message"]
    assert "buyer.address_line1" in blocked[ids["no_address"]]["message"]
    # The run then refuses exactly those, for those reasons.
    run = run_of(billing, close(billing.runtime, billing.tenant.msp_id, "2026-09").id)
    assert (run["invoices_created"], run["failed"]) == (1, 3)
    assert set(run["errors"]) == set(blocked)
    assert "'US'" in run["errors"][ids["no_rate"]]
    assert "buyer.tax_id" in run["errors"][ids["no_vat_id"]]
    # The closed customer is no longer checked; the drafts still are, until completed.
    details(billing, ids["no_address"], legal_name="Neu GmbH", country="DE")
    again = _readiness(billing.tenant, "2026-09")
    assert again["customers_checked"] == 3
    assert {b["customer_id"] for b in again["blocked"]} == {ids["no_vat_id"], ids["no_rate"]}


def test_an_incomplete_seller_is_named(billing: Billing) -> None:
    invoice_mode(billing, tax_id=None)
    found = _readiness(billing.tenant, "2026-09")
    assert (found["ready"], found["seller_missing"], found["blocked"]) == (
        False,
        ["seller.tax_id"],
        [],
    )


def test_statement_mode_refuses_nothing(billing: Billing) -> None:
    _customers(billing, "2026-09")
    found = _readiness(billing.tenant, "2026-09")
    assert (found["mode"], found["ready"], found["blocked"]) == ("statement", True, [])
    assert found["customers_checked"] == 4


def test_a_bad_period_and_another_msp(billing: Billing, other_tenant: Tenant) -> None:
    invoice_mode(billing)
    _customers(billing, "2026-09")
    assert_problem(billing.tenant.get("/v1/invoices/readiness", params={"period": "2026-13"}), 422)
    assert billing.tenant.get("/v1/invoices/readiness").status_code == 422
    theirs = _readiness(other_tenant, "2026-09")
    assert (theirs["customers_checked"], theirs["blocked"]) == (0, [])


def test_the_console_warns_on_the_customer_and_billing_pages(billing: Billing) -> None:
    invoice_mode(billing)
    this_month = str(Period.of(utcnow().date()))
    ids = _customers(billing, this_month)
    console = staff_client(billing.runtime, billing.tenant.msp_id)
    page = console.get(f"/console/customers/{ids['no_address']}").text
    assert 'id="invoice-blockers"' in page
    assert all(f"<code>{name}</code>" in page for name in ADDRESS_FIELDS)
    rate_page = console.get(f"/console/customers/{ids['no_rate']}").text
    assert "<code>tax_rate</code>" in rate_page and "/console/billing/tax-rates" in rate_page
    assert 'id="invoice-blockers"' not in console.get(f"/console/customers/{ids['ready']}").text
    billing_page = console.get("/console/billing").text
    assert f'id="not-ready-{this_month}"' in billing_page
    assert "3 of 4 customers with charges would stay drafts" in billing_page
    for name in ("no_address", "no_vat_id", "no_rate"):
        assert f"/console/customers/{ids[name]}/billing-details" in billing_page
    assert f"/console/customers/{ids['ready']}/billing-details" not in billing_page


def test_the_console_says_nothing_in_statement_mode(billing: Billing) -> None:
    ids = _customers(billing, str(Period.of(utcnow().date())))
    console = staff_client(billing.runtime, billing.tenant.msp_id)
    assert 'id="invoice-blockers"' not in console.get(f"/console/customers/{ids['no_rate']}").text
    assert "not-ready-" not in console.get("/console/billing").text


def test_completing_the_profile_clears_the_billing_page(billing: Billing) -> None:
    invoice_mode(billing, tax_id=None)
    console = staff_client(billing.runtime, billing.tenant.msp_id)
    assert "<code>seller.tax_id</code>" in console.get("/console/billing").text
    with billing.runtime.uow() as uow:
        profile = uow.session.get(MspBillingProfile, billing.tenant.msp_id)
        assert profile is not None
        profile.tax_id = "DE136695976"
        uow.commit()
    assert "not-ready-" not in console.get("/console/billing").text
