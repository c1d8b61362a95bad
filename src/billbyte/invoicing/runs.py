"""Invoice runs: finalizing every due customer of a billing period.

A run lists the customers due (their billing period ends with the run's period, it is past
their due date or the run is forced, and the period is still open), re-rates the months
about to be closed, and finalizes the customers in batches, each batch one transaction
(``finalize.finalize_batch``): the invoices, their lines and numbers, the closed months,
audit entries, webhook events and the run's counters of a batch commit together or not at
all. A crash loses at most the batch in progress, which the next run finalizes; the unique
index on (customer, billing period) makes a second invoice impossible whatever overlaps.
"""

from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from billbyte.audit.service import record
from billbyte.auth.roles import Role
from billbyte.auth.subject import AuthSubject
from billbyte.charges.models import ClosedPeriod
from billbyte.customers.models import Customer
from billbyte.invoicing import completeness, cycles, finalize, terms
from billbyte.invoicing.finalize import BatchOutcome, Due, finalize_batch
from billbyte.invoicing.models import (
    TAX_INVOICE,
    InvoiceRun,
)
from billbyte.invoicing.schemas import InvoiceRunOut
from billbyte.invoicing.settings import settings_for
from billbyte.jobs import follow_up
from billbyte.jobs.service import enqueue
from billbyte.kit.clock import utcnow
from billbyte.kit.errors import Conflict, NotFound
from billbyte.kit.pagination import Page, paginate
from billbyte.kit.periods import validate_period
from billbyte.kit.repository import get_owned
from billbyte.runtime import Runtime

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
        enqueue(session, RUN_JOB, run.id, {"run_id": run.id}, msp_id=run.msp_id)
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


def execute_run(
    runtime: Runtime,
    run_id: str,
    *,
    now: datetime | None = None,
    batch_size: int = finalize.BATCH_SIZE,
) -> InvoiceRun:
    """Finalize every due invoice of the run's period, ``batch_size`` customers per
    transaction; safe to call again after a crash."""
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
            Due(cid, cycles.period_months(cycle, period))
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
    for first in range(0, len(due), batch_size):
        _finalize(runtime, subject, run_id, due[first : first + batch_size], grouping)

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


def _finalize(
    runtime: Runtime, subject: AuthSubject, run_id: str, batch: list[Due], grouping: str
) -> None:
    """One batch in one transaction with its counts on the run; a batch the database
    refuses is redone one customer at a time, so the others keep their invoices."""
    try:
        with runtime.uow() as uow:
            outcome = finalize_batch(uow.session, subject, run_id, batch, grouping)
            _count(uow.session, run_id, outcome)
            uow.commit()
    except IntegrityError as exc:
        if len(batch) > 1:
            log.info("invoice run %s: a batch was refused (%s), one by one", run_id, exc.orig)
            for item in batch:
                _finalize(runtime, subject, run_id, [item], grouping)
            return
        outcome = _refused(runtime, batch[0], exc)
        with runtime.uow() as uow:
            _count(uow.session, run_id, outcome)
            uow.commit()
    for customer_id, message in outcome.failed.items():
        log.warning("invoice run %s: customer %s stays a draft: %s", run_id, customer_id, message)


def _refused(runtime: Runtime, item: Due, exc: IntegrityError) -> BatchOutcome:
    with runtime.uow() as uow:
        closed = uow.session.scalar(
            select(ClosedPeriod.id).where(
                ClosedPeriod.customer_id == item.customer_id,
                ClosedPeriod.period == item.months[-1],
            )
        )
    if closed is not None:  # another run finalized it between our check and our insert
        return BatchOutcome(already_closed=[item.customer_id])
    return BatchOutcome(failed={item.customer_id: f"database refused the invoice: {exc.orig}"})


def _count(session: Session, run_id: str, outcome: BatchOutcome) -> None:
    run = session.get(InvoiceRun, run_id, with_for_update=True)
    assert run is not None
    run.invoices_created += len(outcome.invoiced)
    run.closed_without_charges += len(outcome.closed_without_charges)
    run.already_closed += len(outcome.already_closed)
    run.failed += len(outcome.failed)
    if outcome.failed:
        run.errors = {**(run.errors or {}), **outcome.failed}
    run.updated_at = utcnow()
