"""Invoice runs in invoice mode: tax lines per rate at close, equal to a plain Decimal
computation here; statement mode stays exactly as before (no tax, same total)."""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal

from tests.invoicing.conftest import Billing, add_charges, close, customer
from tests.taxes_close.parties import details, invoice_mode, run_of

AMOUNTS = ["1000.00", "234.56", "0.015"]  # lines of one group: 1234.575 exact


def _close_one(billing: Billing, cid: str) -> dict:
    add_charges(billing.runtime, billing.tenant.msp_id, cid, "2026-09", AMOUNTS)
    run = run_of(billing, close(billing.runtime, billing.tenant.msp_id, "2026-09").id)
    assert (run["failed"], run["invoices_created"]) == (0, 1), str(run)
    [summary] = [i for i in billing.invoices(status="finalized") if i["customer_id"] == cid]
    return billing.invoice(summary["id"])


def test_statement_mode_has_no_tax_and_the_old_total(billing: Billing) -> None:
    cid = customer(billing.tenant, "ST-1")
    invoice = _close_one(billing, cid)
    assert invoice["mode"] == "statement"
    assert invoice["total"] == "1234.58"  # the allocated sum of the charges, as before
    assert invoice["taxes"] == [] and invoice["tax_total"] is None
    assert invoice["due_date"] == "2026-10-31"  # 1 Oct + the default 30 days


def test_german_customer_pays_19_percent_per_rate(billing: Billing) -> None:
    invoice_mode(billing)
    cid = customer(billing.tenant, "DE-1", country="DE")
    details(billing, cid, legal_name="Müller GmbH", country="DE", tax_id="DE136695976")
    invoice = _close_one(billing, cid)
    net = Decimal("1234.58")
    tax = (net * Decimal("0.19")).quantize(Decimal("0.01"), rounding=ROUND_HALF_EVEN)
    assert tax == Decimal("234.57")  # 234.5702
    assert invoice["mode"] == "invoice"
    assert Decimal(invoice["subtotal"]) == net
    assert Decimal(invoice["tax_total"]) == tax
    assert Decimal(invoice["total"]) == net + tax
    [summary] = invoice["taxes"]
    assert (summary["category"], Decimal(summary["rate"])) == ("S", Decimal(19))
    assert Decimal(summary["taxable"]) == net and Decimal(summary["tax"]) == tax
    assert invoice["seller"]["legal_name"] == "Alpha Hosting GmbH"
    assert invoice["buyer"]["legal_name"] == "Müller GmbH"
    assert (invoice["payment_terms_days"], invoice["due_date"]) == (14, "2026-10-15")
    lines = billing.tenant.get(f"/v1/invoices/{invoice['id']}/lines").json()["data"]
    tax_lines = [line for line in lines if line["kind"] == "tax"]
    assert [Decimal(line["amount"]) for line in tax_lines] == [tax]
    assert sum(Decimal(line["amount"]) for line in lines) == net + tax


def test_exempt_and_reverse_charge_customers_pay_no_tax_with_the_note(billing: Billing) -> None:
    invoice_mode(billing)
    exempt = customer(billing.tenant, "EX-1", country="DE")
    details(billing, exempt, tax_treatment="exempt", exemption_reason="§ 4 Nr. 21 UStG")
    foreign = customer(billing.tenant, "FR-1", country="FR")
    details(billing, foreign, country="FR", tax_id="FR40303265045", tax_treatment="reverse_charge")
    for cid in (exempt, foreign):
        add_charges(billing.runtime, billing.tenant.msp_id, cid, "2026-09", AMOUNTS)
    run = run_of(billing, close(billing.runtime, billing.tenant.msp_id, "2026-09").id)
    assert (run["failed"], run["invoices_created"]) == (0, 2), str(run)
    invoices = {i["customer_id"]: i["id"] for i in billing.invoices(status="finalized")}
    for cid, category, note in (
        (exempt, "E", "§ 4 Nr. 21 UStG"),
        (foreign, "AE", "Reverse charge"),
    ):
        invoice = billing.invoice(invoices[cid])
        [summary] = invoice["taxes"]
        assert summary["category"] == category and Decimal(summary["tax"]) == 0
        assert note in (summary["note"] or "")
        assert Decimal(invoice["total"]) == Decimal("1234.58")


def test_a_missing_rate_fails_the_customer_and_issues_nothing(billing: Billing) -> None:
    invoice_mode(billing)
    cid = customer(billing.tenant, "US-1", country="US", currency="EUR")
    add_charges(billing.runtime, billing.tenant.msp_id, cid, "2026-09", AMOUNTS)
    run = run_of(billing, close(billing.runtime, billing.tenant.msp_id, "2026-09").id)
    assert run["failed"] == 1 and "no tax rate" in run["errors"][cid], run
    assert [i for i in billing.invoices(status="finalized") if i["customer_id"] == cid] == []


def test_service_and_account_grouping_keeps_accounts_apart_within_a_service(
    billing: Billing,
) -> None:
    from billbyte.charges import ledger
    from billbyte.invoicing import documents

    cid = customer(billing.tenant, "GR-1")
    add_charges(
        billing.runtime,
        billing.tenant.msp_id,
        cid,
        "2026-09",
        ["1", "2", "4"],
        sub_accounts=("111111111111", "222222222222"),
    )
    with billing.runtime.uow() as uow:
        lines = ledger.lines_by_month(uow.session, cid, ["2026-09"])
    by_service = documents.build(lines, ["2026-09"], "EUR", documents.SERVICE)
    both = documents.build(lines, ["2026-09"], "EUR", documents.SERVICE_AND_ACCOUNT)
    assert [line.amount for line in by_service.lines] == [Decimal("7.00")]
    # 1 + 4 on the first account, 2 on the second
    assert sorted(line.amount for line in both.lines) == [Decimal("2.00"), Decimal("5.00")]
    assert both.total == by_service.total == Decimal("7.00")
