"""Invoice runs: finalizing every due customer of a billing period.

Finalizing one customer's billing period is one transaction: lock the MSP row (so rating of
the MSP and other finalizations wait), check the period is still open, copy the charge
lines into invoice lines, take the next number under the counter's row lock, close the
months (``closed_periods``), write the audit entry and the ``invoice.finalized`` webhook,
and count the result on the run. A crash loses at most the customer in progress; the unique
index on (customer, billing period) makes a second invoice impossible whatever overlaps.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from billbyte.audit.service import record
from billbyte.auth.roles import Role
from billbyte.auth.subject import AuthSubject
from billbyte.charges import ledger
from billbyte.charges.models import ClosedPeriod, RatingState
from billbyte.credit import prepaid
from billbyte.customers.models import Customer
from billbyte.invoicing import completeness, cycles, documents, terms
from billbyte.invoicing.completeness import IncompleteInvoice
from billbyte.invoicing.documents import Document
from billbyte.invoicing.models import (
    DOCUMENT_VERSION,
    FINALIZED,
    INVOICE,
    STATEMENT,
    TAX_INVOICE,
    Invoice,
    InvoiceRun,
)
from billbyte.invoicing.numbering import INVOICE_SERIES, next_number
from billbyte.invoicing.schemas import InvoiceRunOut
from billbyte.invoicing.settings import settings_for
from billbyte.invoicing.taxation import MissingTaxRate
from billbyte.invoicing.views import (
    closed_months,
    insert_lines,
    invoice_out,
    seller_name_of,
    stored_view,
)
from billbyte.jobs import follow_up
from billbyte.jobs.service import enqueue
from billbyte.kit.clock import utcnow
from billbyte.kit.errors import Conflict, NotFound
from billbyte.kit.ids import new_id
from billbyte.kit.pagination import Page, paginate
from billbyte.kit.periods import validate_period
from billbyte.kit.repository import get_owned
from billbyte.runtime import Runtime
from billbyte.tenancy.models import Msp
from billbyte.webhooks import service as webhooks

log = logging.getLogger(__name__)

RUN_JOB = "invoice_run"


def run_out(run: InvoiceRun) -> InvoiceRunOut:
    return InvoiceRunOut(
        id=run.id,
        period=run.period,
        force=run.force,
        status=run.status,
        actor=run.actor,
        customers_due=run.customers_due,
        invoices_created=run.invoices_created,
        closed_without_charges=run.closed_without_charges,
        already_closed=run.already_closed,
        not_due=run.not_due,
        failed=run.failed,
        errors=dict(run.errors or {}),
        created_at=run.created_at,
        started_at=run.started_at,
        finished_at=run.finished_at,
    )


def _lock_msp(session: Session, msp_id: str) -> None:
    session.scalar(select(Msp.id).where(Msp.id == msp_id).with_for_update())


def create_run(
    session: Session, subject: AuthSubject, period: str, force: bool, *, enqueue_job: bool
) -> InvoiceRun:
    subject.require_write()
    validate_period(period)
    if settings_for(session, subject.msp_id).mode == TAX_INVOICE:
        # The seller is every invoice's: refuse the whole run rather than fail each customer.
        seller, _ = terms.seller_of(session, subject.msp_id)
        missing = completeness.missing_seller(seller)
        if missing:
            raise Conflict(
                f"Cannot close {period}: {completeness.explain(missing)}.",
                code="invoice_incomplete",
                missing=missing,
            )
    run = InvoiceRun(
        msp_id=subject.msp_id, period=period, force=force, status="pending", actor=subject.actor
    )
    session.add(run)
    session.flush()
    record(
        session,
        subject,
        "invoice_run.created",
        "invoice_run",
        run.id,
        before=None,
        after={"period": period, "force": force},
    )
    if enqueue_job:
        enqueue(session, RUN_JOB, run.id, {"run_id": run.id})
    return run


def get_run(session: Session, subject: AuthSubject, run_id: str) -> InvoiceRun:
    return get_owned(
        session,
        InvoiceRun,
        subject.msp_id,
        run_id,
        what="invoice run",
        code="invoice_run_not_found",
    )


def list_runs(
    session: Session, subject: AuthSubject, cursor: str | None, limit: int
) -> Page[InvoiceRun]:
    stmt = select(InvoiceRun).where(InvoiceRun.msp_id == subject.msp_id)
    return paginate(session, stmt, InvoiceRun.id, cursor, limit)


@dataclass(frozen=True)
class _Due:
    customer_id: str
    months: list[str]


class _CannotFinalize(Exception):
    """The customer's charges are not fit to be invoiced (e.g. a rating error)."""


def close_period(
    runtime: Runtime,
    subject: AuthSubject,
    period: str,
    *,
    force: bool = False,
    now: datetime | None = None,
) -> InvoiceRun:
    """Create a run and execute it here and now (the CLI's ``billbyte invoices close``)."""
    with runtime.uow() as uow:
        run = create_run(uow.session, subject, period, force, enqueue_job=False)
        uow.commit()
    return execute_run(runtime, run.id, now=now)


def execute_run(runtime: Runtime, run_id: str, *, now: datetime | None = None) -> InvoiceRun:
    """Finalize every due invoice of the run's period; safe to call again after a crash."""
    now = now or utcnow()
    with runtime.uow() as uow:
        session = uow.session
        run = session.get(InvoiceRun, run_id)
        if run is None:
            raise NotFound(f"No invoice run {run_id!r}.", code="invoice_run_not_found")
        if run.status == "completed":
            return run
        msp_id, period, force = run.msp_id, run.period, run.force
        settings = settings_for(session, msp_id)
        grace, grouping = settings.grace_days, settings.grouping
        ending = [
            (cid, cycle, anchor)
            for cid, cycle, anchor in session.execute(
                select(Customer.id, Customer.billing_cycle, Customer.billing_anchor_day)
                .where(Customer.msp_id == msp_id)
                .order_by(Customer.id)
            )
            if cycles.is_period_end(cycle, period)
        ]
        closed = set(
            session.scalars(
                select(ClosedPeriod.customer_id).where(
                    ClosedPeriod.msp_id == msp_id, ClosedPeriod.period == period
                )
            )
        )
        not_due = {
            cid
            for cid, _, anchor in ending
            if not force and now < cycles.due_at(period, anchor, grace)
        }
        due = [
            _Due(cid, cycles.period_months(cycle, period))
            for cid, cycle, _ in ending
            if cid not in closed and cid not in not_due
        ]
        run.status = "running"
        run.started_at = run.started_at or now
        run.updated_at = utcnow()
        run.customers_due = len(ending) - len(not_due)
        run.not_due = len(not_due)
        # Customers this very run closed before an interruption are in its own counters.
        run.already_closed = (
            len(closed & {cid for cid, _, _ in ending})
            - run.invoices_created
            - run.closed_without_charges
        )
        run.failed = 0
        run.errors = {}
        actor = run.actor
        uow.commit()

    # The months about to be invoiced are re-rated first, so that late imports are in.
    follow_up.rate_now(runtime, msp_id, {m for d in due for m in d.months})
    subject = AuthSubject(msp_id=msp_id, actor=actor, role=Role.ADMIN)
    for item in due:
        try:
            _finalize_customer(runtime, subject, run_id, item, period, grouping)
        except _CannotFinalize as exc:
            log.warning(
                "invoice run %s: customer %s stays a draft: %s", run_id, item.customer_id, exc
            )
            _count_failure(runtime, run_id, item.customer_id, str(exc))

    with runtime.uow() as uow:
        run = uow.session.get(InvoiceRun, run_id)
        assert run is not None
        run.status = "completed"
        run.finished_at = utcnow()
        run.updated_at = run.finished_at
        uow.commit()
    log.info(
        "invoice run %s (%s %s): %d invoices, %d closed without charges, %d already closed, "
        "%d not due, %d failed",
        run.id,
        msp_id,
        period,
        run.invoices_created,
        run.closed_without_charges,
        run.already_closed,
        run.not_due,
        run.failed,
    )
    return run


def _bump(session: Session, run_id: str, counter: str) -> None:
    column = getattr(InvoiceRun, counter)
    session.execute(
        update(InvoiceRun)
        .where(InvoiceRun.id == run_id)
        .values({counter: column + 1, "updated_at": utcnow()})
    )


def _count_failure(runtime: Runtime, run_id: str, customer_id: str, message: str) -> None:
    with runtime.uow() as uow:
        run = uow.session.get(InvoiceRun, run_id, with_for_update=True)
        assert run is not None
        run.failed += 1
        run.errors = {**(run.errors or {}), customer_id: message}
        run.updated_at = utcnow()
        uow.commit()


def _finalize_customer(
    runtime: Runtime,
    subject: AuthSubject,
    run_id: str,
    due: _Due,
    period_end: str,
    grouping: str,
) -> str:
    try:
        with runtime.uow() as uow:
            outcome = _finalize_in(uow.session, subject, run_id, due, period_end, grouping)
            uow.commit()
            return outcome
    except IntegrityError as exc:
        with runtime.uow() as uow:
            closed = uow.session.scalar(
                select(ClosedPeriod.id).where(
                    ClosedPeriod.customer_id == due.customer_id, ClosedPeriod.period == period_end
                )
            )
            if closed is None:
                raise _CannotFinalize(f"database refused the invoice: {exc.orig}") from exc
            # Another run finalized this customer between our check and our insert.
            _bump(uow.session, run_id, "already_closed")
            uow.commit()
        return "already_closed"


def _finalize_in(
    session: Session,
    subject: AuthSubject,
    run_id: str,
    due: _Due,
    period_end: str,
    grouping: str,
) -> str:
    msp_id = subject.msp_id
    _lock_msp(session, msp_id)
    customer = session.get(Customer, due.customer_id)
    assert customer is not None
    months = cycles.period_months(customer.billing_cycle, period_end)
    closed = closed_months(session, customer.id, months)
    if period_end in closed:
        _bump(session, run_id, "already_closed")
        return "already_closed"
    open_months = [m for m in months if m not in closed]
    problem = session.scalar(
        select(RatingState.message).where(
            RatingState.customer_id == customer.id,
            RatingState.period.in_(open_months),
            RatingState.status == "error",
        )
    )
    if problem is not None:
        raise _CannotFinalize(f"rating error: {problem}")
    by_month = ledger.lines_by_month(session, customer.id, open_months)
    lines = [line for month_lines in by_month.values() for line in month_lines]
    wrong = sorted({line.currency for line in lines} - {customer.currency})
    if wrong:
        raise _CannotFinalize(
            f"charges are in {', '.join(wrong)} but the customer pays in {customer.currency}: "
            "re-rate the period first"
        )
    for month in open_months:
        session.add(ClosedPeriod(msp_id=msp_id, customer_id=customer.id, period=month))
    if not lines:
        session.flush()
        prepaid.close(session, customer, open_months, Decimal(0), None)
        _bump(session, run_id, "closed_without_charges")
        return "closed_without_charges"
    document = documents.build(by_month, open_months, customer.currency, grouping)
    try:
        invoice = _store_invoice(
            session, subject, customer, document, open_months, grouping, run_id
        )
    except MissingTaxRate as exc:
        raise _CannotFinalize(f"{exc}: add one under tax rates, then run again") from exc
    except IncompleteInvoice as exc:
        raise _CannotFinalize(completeness.explain(exc.missing)) from exc
    session.flush()
    prepaid.close(session, customer, open_months, invoice.total, invoice.id)
    _bump(session, run_id, "invoices_created")
    return invoice.id


def _store_invoice(
    session: Session,
    subject: AuthSubject,
    customer: Customer,
    document: Document,
    months: list[str],
    grouping: str,
    run_id: str | None,
) -> Invoice:
    period_end = months[-1]
    issued = cycles.issue_date(period_end, customer.billing_anchor_day)
    mode = settings_for(session, subject.msp_id).mode or STATEMENT
    agreed = terms.apply(session, customer, document, issued, mode)
    if mode == TAX_INVOICE:
        completeness.check(agreed.seller, agreed.buyer)  # before a number is taken
    invoice = Invoice(
        id=new_id("inv"),
        msp_id=subject.msp_id,
        customer_id=customer.id,
        kind=INVOICE,
        status=FINALIZED,
        number=next_number(session, subject.msp_id, INVOICE_SERIES),
        period_start=months[0],
        period_end=period_end,
        billing_cycle=customer.billing_cycle,
        issue_date=issued,
        currency=customer.currency,
        locale=customer.locale,
        customer_name=customer.name,
        customer_external_id=customer.external_id,
        seller_name=seller_name_of(session, subject.msp_id),
        grouping=grouping,
        total=agreed.total,
        total_exact=agreed.total_exact,
        line_count=len(agreed.lines),
        fx_rates=document.fx_rates,
        run_id=run_id,
        finalized_at=utcnow(),
        document_version=DOCUMENT_VERSION,
        mode=mode,
        due_date=agreed.due_date,
        payment_terms_days=agreed.payment_terms_days,
        seller=dict(agreed.seller),
        buyer=dict(agreed.buyer),
        subtotal=agreed.subtotal,
        tax_total=agreed.tax_total,
        taxes=[dict(t) for t in agreed.taxes],
    )
    session.add(invoice)
    session.flush()
    insert_lines(session, invoice, customer.id, agreed.lines)
    view = stored_view(invoice, None)
    summary = invoice_out(view).model_dump(mode="json")
    record(
        session,
        subject,
        "invoice.finalized",
        "invoice",
        invoice.id,
        before=None,
        after={k: summary[k] for k in ("number", "period_start", "period_end", "total")},
    )
    webhooks.emit(session, subject.msp_id, "invoice.finalized", summary)
    return invoice
