"""An invoice run finalizes its customers in batches, a batch per transaction: one customer
that cannot be invoiced costs only itself, a batch the database refuses is redone one by one,
a run that dies inside a batch leaves nothing of that batch and the next run finishes the
rest, and the numbers stay gap-free and in customer order throughout. The invoice lines of a
batch are written by COPY on PostgreSQL: texts that COPY must escape arrive unchanged."""

from __future__ import annotations

from collections import Counter
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

import pytest
from sqlalchemy import func, select

from billbyte.audit.models import AuditEvent
from billbyte.charges.models import ChargeLine, ClosedPeriod, RatingState
from billbyte.invoicing import runs
from billbyte.invoicing.models import Invoice, InvoiceLine, InvoiceRun
from billbyte.kit.clock import utcnow
from billbyte.runtime import Runtime
from billbyte.webhooks.models import WebhookEvent
from tests.invoicing.conftest import Billing, add_charges, admin, customer

PERIOD = "2026-09"
CENT = Decimal("0.01")


def _customers_with_charges(billing: Billing, count: int) -> tuple[list[str], dict[str, Decimal]]:
    """``count`` customers (ids in creation order) with three charge lines each, and each
    one's total worked out here from the amounts."""
    ids, totals = [], {}
    for index in range(count):
        cid = customer(billing.tenant, f"B{index:02d}")
        amounts = [f"{index + 1}.005", "0.101", f"{2 * index}.333"]
        add_charges(billing.runtime, billing.tenant.msp_id, cid, PERIOD, amounts)
        ids.append(cid)
        exact = sum((Decimal(a) for a in amounts), Decimal(0))
        totals[cid] = exact.quantize(CENT, rounding=ROUND_HALF_EVEN)
    return sorted(ids), totals


def _close(billing: Billing, batch_size: int) -> InvoiceRun:
    runtime = billing.runtime
    with runtime.uow() as uow:
        run = runs.create_run(
            uow.session, admin(billing.tenant.msp_id), PERIOD, True, enqueue_job=False
        )
        uow.commit()
    return runs.execute_run(runtime, run.id, batch_size=batch_size)


def _state(runtime: Runtime) -> dict[str, Any]:
    """Who has what, as stored: invoice numbers and totals, closed months, audit entries and
    webhook events of finalized invoices, invoice lines."""
    with runtime.uow() as uow:
        session = uow.session
        invoices = session.execute(
            select(Invoice.customer_id, Invoice.number, Invoice.total, Invoice.id)
        ).all()
        audited = list(
            session.scalars(
                select(AuditEvent.target_id).where(AuditEvent.action == "invoice.finalized")
            )
        )
        events = session.scalar(
            select(func.count())
            .select_from(WebhookEvent)
            .where(WebhookEvent.type == "invoice.finalized")
        )
        lines = Counter(session.scalars(select(InvoiceLine.customer_id)))
        closed = set(session.scalars(select(ClosedPeriod.customer_id)))
    return {
        "numbers": {cid: number for cid, number, _, _ in invoices},
        "totals": {cid: total for cid, _, total, _ in invoices},
        "audited": sorted(audited),
        "invoice_ids": sorted(i for _, _, _, i in invoices),
        "events": events,
        "lines": dict(lines),
        "closed": closed,
    }


def _numbers_in_order(customers: list[str]) -> dict[str, str]:
    return {cid: f"INV-{n:06d}" for n, cid in enumerate(customers, start=1)}


def test_a_customer_that_cannot_be_invoiced_costs_only_itself(billing: Billing) -> None:
    runtime, msp_id = billing.runtime, billing.tenant.msp_id
    customers, totals = _customers_with_charges(billing, 6)
    broken_rating, other_currency = customers[1], customers[4]
    with runtime.uow() as uow:
        uow.session.add(
            RatingState(
                msp_id=msp_id,
                customer_id=broken_rating,
                period=PERIOD,
                status="error",
                message="no price for SKU X",
            )
        )
        uow.commit()
    add_charges(runtime, msp_id, other_currency, PERIOD, ["1.00"], currency="USD", key_prefix="u")

    run = _close(billing, batch_size=10)  # all six in one batch

    invoiced = [c for c in customers if c not in (broken_rating, other_currency)]
    assert (run.invoices_created, run.failed) == (4, 2)
    assert run.errors == {
        broken_rating: "rating error: no price for SKU X",
        other_currency: "charges are in USD but the customer pays in EUR: re-rate the period first",
    }
    state = _state(runtime)
    assert state["numbers"] == _numbers_in_order(invoiced)  # gap-free, in customer order
    assert state["totals"] == {cid: totals[cid] for cid in invoiced}
    assert state["closed"] == set(invoiced)  # the two stay drafts
    assert state["lines"] == {cid: 1 for cid in invoiced}  # one service: one line each
    assert state["audited"] == state["invoice_ids"] and state["events"] == 4


def test_a_batch_the_database_refuses_is_redone_one_by_one(billing: Billing) -> None:
    runtime, msp_id = billing.runtime, billing.tenant.msp_id
    customers, totals = _customers_with_charges(billing, 5)
    refused = customers[2]
    # An invoice for the period without its closed month: the unique index on (customer,
    # period) refuses the run's invoice, which only the database notices.
    with runtime.uow() as uow:
        uow.session.add(
            Invoice(
                id="inv_planted",
                msp_id=msp_id,
                customer_id=refused,
                kind="invoice",
                status="finalized",
                number="OLD-1",
                period_start=PERIOD,
                period_end=PERIOD,
                billing_cycle="monthly",
                issue_date=utcnow().date(),
                currency="EUR",
                locale="de_DE",
                customer_name="x",
                customer_external_id="x",
                seller_name="x",
                grouping="service",
                total=Decimal(0),
                total_exact=Decimal(0),
            )
        )
        uow.commit()

    run = _close(billing, batch_size=10)

    invoiced = [c for c in customers if c != refused]
    assert (run.invoices_created, run.failed, list(run.errors)) == (4, 1, [refused])
    assert run.errors[refused].startswith("database refused the invoice")
    state = _state(runtime)
    # The refused batch's numbers were given back: the retried customers have no gap.
    assert state["numbers"] == {**_numbers_in_order(invoiced), refused: "OLD-1"}
    assert state["totals"] == {**{cid: totals[cid] for cid in invoiced}, refused: Decimal(0)}
    assert state["closed"] == set(invoiced)
    assert state["events"] == 4 and len(state["audited"]) == 4


def test_a_run_that_dies_inside_a_batch_is_finished_by_the_next_without_doubling(
    billing: Billing, monkeypatch: pytest.MonkeyPatch
) -> None:
    runtime = billing.runtime
    customers, totals = _customers_with_charges(billing, 7)
    real = runs.finalize_batch
    calls = []

    def dies_in_the_second_batch(*args: Any, **kwargs: Any) -> Any:
        outcome = real(*args, **kwargs)
        calls.append(outcome)
        if len(calls) == 2:  # the batch is written, not yet committed
            raise RuntimeError("killed")
        return outcome

    monkeypatch.setattr(runs, "finalize_batch", dies_in_the_second_batch)
    with pytest.raises(RuntimeError, match="killed"):
        _close(billing, batch_size=3)
    monkeypatch.undo()

    first_batch = customers[:3]
    state = _state(runtime)
    assert state["numbers"] == _numbers_in_order(first_batch)  # nothing of the second batch
    assert state["closed"] == set(first_batch)
    assert state["lines"] == {cid: 1 for cid in first_batch}
    assert state["events"] == 3 and len(state["audited"]) == 3
    with runtime.uow() as uow:
        (killed,) = uow.session.scalars(select(InvoiceRun))
        assert (killed.status, killed.invoices_created) == ("running", 3)

    rerun = _close(billing, batch_size=3)
    assert (rerun.invoices_created, rerun.already_closed, rerun.failed) == (4, 3, 0)
    state = _state(runtime)
    assert state["numbers"] == _numbers_in_order(customers)  # one each, gap-free, in order
    assert state["totals"] == totals
    assert state["closed"] == set(customers)
    assert state["audited"] == state["invoice_ids"] and state["events"] == 7


def test_texts_that_copy_escapes_arrive_unchanged(billing: Billing) -> None:
    runtime, msp_id = billing.runtime, billing.tenant.msp_id
    cid = customer(billing.tenant, "ESC")
    awkward = 'Tab\there, new\nline, back\\slash \\N, "quotes", Ümläut €, \\.'
    add_charges(runtime, msp_id, cid, PERIOD, ["1.25"], service_name=awkward)
    with runtime.uow() as uow:  # a null and an awkward text on the same line
        line = uow.session.scalars(select(ChargeLine)).one()
        line.first_day = None
        uow.commit()

    run = _close(billing, batch_size=10)

    assert run.invoices_created == 1
    with runtime.uow() as uow:
        stored = uow.session.scalars(select(InvoiceLine)).one()
        assert stored.description == f"AWS: {awkward} / Usage"
        assert stored.service_name == awkward
        assert stored.service_start is None and stored.service_end == f"{PERIOD}-28"
        assert stored.amount == Decimal("1.25") and stored.quantity == Decimal(1)
        assert stored.sources[0]["line_key"] == f"k{PERIOD}0000"
        assert stored.sources[0]["sell_local"] == "1.25"
