"""Finalizing a batch of customers' billing periods inside the caller's transaction.

An invoice run hands ``finalize_batch`` a few hundred due customers at a time. It

1. takes the MSP lock (rating of the MSP and other finalizations wait), then reads, one query
   each for the whole batch: the customers, their closed months, their rating errors, their
   charge lines and their billing details;
2. builds each customer's document and terms in memory. A customer already closed (by an
   earlier, interrupted run, or by another run that held the lock first) is counted as such;
   one whose charges cannot be invoiced (a rating error, another currency, no tax rate, an
   incomplete seller or buyer) is set aside with the reason, and nothing of it is written;
3. takes the numbers of the customers to invoice as one block under the counter's row lock,
   in the batch's order;
4. writes the invoices, their lines (``COPY`` on PostgreSQL), the closed months, the audit
   entries and the ``invoice.finalized`` events with a statement per table, then the final
   prepaid draw of the customers that have a prepaid balance.

The caller commits, and counts the outcome on the run in the same transaction: the whole
batch commits or nothing of it does, so a killed run leaves whole batches, and the next run
finds their periods closed. A batch the database refuses (``IntegrityError``) is redone by
the caller one customer at a time, each a batch of one, so one bad customer costs only
itself.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from billbyte.audit.service import record_many
from billbyte.auth.subject import AuthSubject
from billbyte.charges import ledger
from billbyte.charges.ledger import Charge
from billbyte.charges.models import ClosedPeriod, RatingState
from billbyte.credit import prepaid
from billbyte.customers.models import Customer
from billbyte.customers.repository import billing_details_of_many
from billbyte.invoicing import bulk_lines, completeness, cycles, documents, terms
from billbyte.invoicing.bulk_lines import DocumentLines
from billbyte.invoicing.completeness import IncompleteInvoice
from billbyte.invoicing.documents import Document
from billbyte.invoicing.models import (
    DOCUMENT_VERSION,
    FINALIZED,
    INVOICE,
    STATEMENT,
    TAX_INVOICE,
    Invoice,
)
from billbyte.invoicing.numbering import INVOICE_SERIES, next_numbers
from billbyte.invoicing.settings import settings_for
from billbyte.invoicing.taxation import MissingTaxRate
from billbyte.invoicing.views import invoice_out, seller_name_of, stored_view
from billbyte.kit.clock import utcnow
from billbyte.kit.ids import new_id
from billbyte.webhooks import service as webhooks

# Customers per transaction: large enough that the per-batch statements cost little per
# customer, small enough that the MSP lock is held for well under a second.
BATCH_SIZE = 200


@dataclass(frozen=True)
class Due:
    """A customer whose billing period ending with the run's period is to be closed."""

    customer_id: str
    months: list[str]


@dataclass
class BatchOutcome:
    """What a batch did, customer by customer (the run's counters are these counts)."""

    invoiced: dict[str, str] = field(default_factory=dict)  # customer → invoice id
    closed_without_charges: list[str] = field(default_factory=list)
    already_closed: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)  # customer → why it stays a draft


@dataclass(frozen=True)
class _Invoiceable:
    customer: Customer
    months: list[str]  # the open months the invoice covers, oldest first
    document: Document
    issued: date
    agreed: terms.Terms


class _CannotFinalize(Exception):
    """The customer's charges are not fit to be invoiced (e.g. a rating error)."""


@dataclass
class _Batch:
    """What the batch's queries read, for every customer of the batch."""

    customers: dict[str, Customer]
    closed: dict[str, set[str]]
    rating_errors: dict[str, str]
    lines: dict[str, dict[str, list[Charge]]]


def _read(session: Session, msp_id: str, items: Sequence[Due]) -> _Batch:
    ids = [item.customer_id for item in items]
    customers = {
        c.id: c
        for c in session.scalars(
            select(Customer).where(Customer.msp_id == msp_id, Customer.id.in_(ids))
        )
    }
    months_of = {
        cid: cycles.period_months(c.billing_cycle, items[0].months[-1])
        for cid, c in customers.items()
    }
    all_months = sorted({m for months in months_of.values() for m in months})
    closed: dict[str, set[str]] = {cid: set() for cid in customers}
    for cid, period in session.execute(
        select(ClosedPeriod.customer_id, ClosedPeriod.period).where(
            ClosedPeriod.customer_id.in_(ids), ClosedPeriod.period.in_(all_months)
        )
    ):
        closed[cid].add(period)
    open_of = {
        cid: [m for m in months if m not in closed[cid]] for cid, months in months_of.items()
    }
    rating_errors: dict[str, str] = {}
    for cid, period, message in session.execute(
        select(RatingState.customer_id, RatingState.period, RatingState.message)
        .where(
            RatingState.customer_id.in_(ids),
            RatingState.period.in_(all_months),
            RatingState.status == "error",
        )
        .order_by(RatingState.customer_id, RatingState.period)
    ):
        if period in open_of.get(cid, ()) and cid not in rating_errors:
            rating_errors[cid] = message or "the rating failed"
    lines = ledger.lines_of_customers(
        session,
        {cid: months for cid, months in open_of.items() if cid not in rating_errors},
    )
    return _Batch(customers, closed, rating_errors, lines)


@dataclass(frozen=True)
class _Context:
    """What every invoice of the batch shares."""

    msp_id: str
    grouping: str
    mode: str
    seller: Any  # terms.Seller
    payment_terms_days: int
    seller_name: str


def _invoiceable(
    session: Session,
    context: _Context,
    customer: Customer,
    months: list[str],
    by_month: dict[str, list[Charge]],
    details: Any,
    rates: dict[tuple[str | None, date], Decimal | None],
) -> _Invoiceable:
    lines = [line for month_lines in by_month.values() for line in month_lines]
    wrong = sorted({line.currency for line in lines} - {customer.currency})
    if wrong:
        raise _CannotFinalize(
            f"charges are in {', '.join(wrong)} but the customer pays in {customer.currency}: "
            "re-rate the period first"
        )
    document = documents.build(by_month, months, customer.currency, context.grouping)
    issued = cycles.issue_date(months[-1], customer.billing_anchor_day)
    buyer = terms.buyer_from(customer, details)
    standard = None
    if context.mode == TAX_INVOICE and buyer.get("tax_treatment", "standard") == "standard":
        key = (buyer.get("country"), issued)  # customers share a handful of these
        if key not in rates:
            rates[key] = terms.standard_rate(session, context.msp_id, buyer, issued, context.mode)
        standard = rates[key]
    try:
        agreed = terms.agree(
            document,
            issued,
            context.mode,
            context.seller,
            context.payment_terms_days,
            buyer,
            standard,
        )
        if context.mode == TAX_INVOICE:
            completeness.check(agreed.seller, agreed.buyer)  # before a number is taken
    except MissingTaxRate as exc:
        raise _CannotFinalize(f"{exc}: add one under tax rates, then run again") from exc
    except IncompleteInvoice as exc:
        raise _CannotFinalize(completeness.explain(exc.missing)) from exc
    return _Invoiceable(customer, months, document, issued, agreed)


def finalize_batch(
    session: Session,
    subject: AuthSubject,
    run_id: str,
    items: Sequence[Due],
    grouping: str,
) -> BatchOutcome:
    """Finalize ``items`` (all of one period end, in numbering order); never commits."""
    msp_id = subject.msp_id
    ledger.lock_msp(session, msp_id)
    outcome = BatchOutcome()
    if not items:
        return outcome
    period_end = items[0].months[-1]
    batch = _read(session, msp_id, items)
    seller, days = terms.seller_of(session, msp_id)
    context = _Context(
        msp_id=msp_id,
        grouping=grouping,
        mode=settings_for(session, msp_id).mode or STATEMENT,
        seller=seller,
        payment_terms_days=days,
        seller_name=seller_name_of(session, msp_id),
    )
    details = billing_details_of_many(session, msp_id, batch.lines)
    rates: dict[tuple[str | None, date], Decimal | None] = {}
    to_invoice: list[_Invoiceable] = []
    to_close: list[tuple[Customer, list[str]]] = []  # without charges
    for item in items:
        customer = batch.customers[item.customer_id]
        closed = batch.closed[customer.id]
        if period_end in closed:
            outcome.already_closed.append(customer.id)
            continue
        months = [
            m for m in cycles.period_months(customer.billing_cycle, period_end) if m not in closed
        ]
        if customer.id in batch.rating_errors:
            outcome.failed[customer.id] = f"rating error: {batch.rating_errors[customer.id]}"
            continue
        by_month = batch.lines.get(customer.id, {})
        if not by_month:
            to_close.append((customer, months))
            continue
        try:
            to_invoice.append(
                _invoiceable(
                    session, context, customer, months, by_month, details.get(customer.id), rates
                )
            )
        except _CannotFinalize as exc:
            outcome.failed[customer.id] = str(exc)

    _close_months(session, msp_id, [*to_close, *((i.customer, i.months) for i in to_invoice)])
    invoices = _store_invoices(session, subject, context, run_id, to_invoice) if to_invoice else []
    for customer, months in to_close:
        prepaid.close(session, customer, months, Decimal(0), None)
        outcome.closed_without_charges.append(customer.id)
    for invoiceable, invoice in zip(to_invoice, invoices, strict=True):
        customer = invoiceable.customer
        prepaid.close(session, customer, invoiceable.months, invoice.total, invoice.id)
        outcome.invoiced[customer.id] = invoice.id
    return outcome


def _close_months(
    session: Session, msp_id: str, closing: Sequence[tuple[Customer, list[str]]]
) -> None:
    rows = [
        {"id": new_id("cpd"), "msp_id": msp_id, "customer_id": customer.id, "period": month}
        for customer, months in closing
        for month in months
    ]
    if rows:
        now = utcnow()
        session.execute(insert(ClosedPeriod), [{**row, "closed_at": now} for row in rows])


def _store_invoices(
    session: Session,
    subject: AuthSubject,
    context: _Context,
    run_id: str,
    to_invoice: Sequence[_Invoiceable],
) -> list[Invoice]:
    numbers = next_numbers(session, context.msp_id, INVOICE_SERIES, len(to_invoice))
    invoices: list[Invoice] = []
    for item, number in zip(to_invoice, numbers, strict=True):
        customer, agreed = item.customer, item.agreed
        invoices.append(
            Invoice(
                id=new_id("inv"),
                msp_id=context.msp_id,
                customer_id=customer.id,
                kind=INVOICE,
                status=FINALIZED,
                number=number,
                period_start=item.months[0],
                period_end=item.months[-1],
                billing_cycle=customer.billing_cycle,
                issue_date=item.issued,
                currency=customer.currency,
                locale=customer.locale,
                customer_name=customer.name,
                customer_external_id=customer.external_id,
                seller_name=context.seller_name,
                grouping=context.grouping,
                total=agreed.total,
                total_exact=agreed.total_exact,
                line_count=len(agreed.lines),
                fx_rates=item.document.fx_rates,
                credited_invoice_id=None,
                reason=None,
                run_id=run_id,
                finalized_at=utcnow(),
                document_version=DOCUMENT_VERSION,
                mode=context.mode,
                due_date=agreed.due_date,
                payment_terms_days=agreed.payment_terms_days,
                seller=dict(agreed.seller),
                buyer=dict(agreed.buyer),
                subtotal=agreed.subtotal,
                tax_total=agreed.tax_total,
                taxes=[dict(t) for t in agreed.taxes],
            )
        )
    session.add_all(invoices)
    session.flush()
    bulk_lines.write(
        session,
        [
            DocumentLines(invoice.id, invoice.msp_id, invoice.customer_id, item.agreed.lines)
            for item, invoice in zip(to_invoice, invoices, strict=True)
        ],
    )
    summaries = [
        invoice_out(stored_view(invoice, None)).model_dump(mode="json") for invoice in invoices
    ]
    record_many(
        session,
        subject,
        "invoice.finalized",
        "invoice",
        [
            (
                invoice.id,
                None,
                {k: summary[k] for k in ("number", "period_start", "period_end", "total")},
            )
            for invoice, summary in zip(invoices, summaries, strict=True)
        ],
    )
    webhooks.emit_many(session, context.msp_id, "invoice.finalized", summaries)
    return invoices
