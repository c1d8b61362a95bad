"""Invoicing: settings, live drafts, invoice runs, finalization, credit notes.

Finalizing one customer's billing period is one transaction: lock the MSP row (so rating of
the MSP and other finalizations wait), check the period is still open, copy the charge
lines into invoice lines, take the next number under the counter's row lock, close the
months (``closed_periods``), write the audit entry and the ``invoice.finalized`` webhook,
and count the result on the run. A crash loses at most the customer in progress; the unique
index on (customer, billing period) makes a second invoice impossible whatever overlaps.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any, cast

from sqlalchemy import Table, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from billbyte.audit.service import record
from billbyte.auth.roles import Role
from billbyte.auth.subject import AuthSubject
from billbyte.customers.models import Customer
from billbyte.invoicing import cycles, documents
from billbyte.invoicing.documents import Document, DocumentLine
from billbyte.invoicing.models import (
    CREDIT_NOTE,
    DRAFT,
    FINALIZED,
    INVOICE,
    Invoice,
    InvoiceCounter,
    InvoiceLine,
    InvoiceRun,
    InvoiceSettings,
)
from billbyte.invoicing.schemas import (
    CreditNoteCreate,
    FxRateOut,
    InvoiceDetail,
    InvoiceLineOut,
    InvoiceOut,
    InvoiceRunOut,
    InvoiceSettingsIn,
    ServicePeriod,
)
from billbyte.jobs.service import enqueue
from billbyte.kit.clock import utcnow
from billbyte.kit.errors import InvalidInput, NotFound
from billbyte.kit.ids import new_id
from billbyte.kit.money import parse_decimal, round_money
from billbyte.kit.pagination import Page, parse_sequence_cursor
from billbyte.kit.periods import validate_period
from billbyte.rating.models import ChargeLine, ClosedPeriod, RatingState
from billbyte.runtime import Runtime
from billbyte.tenancy.models import Msp
from billbyte.webhooks import service as webhooks

log = logging.getLogger(__name__)

RUN_JOB = "invoice_run"
INVOICE_SERIES = "INV"
CREDIT_NOTE_SERIES = "CN"
DRAFT_PREFIX = "draft_"
DEFAULT_GRACE_DAYS = 5


# --- settings ---------------------------------------------------------------------------


def settings_for(session: Session, msp_id: str) -> InvoiceSettings:
    found = session.scalar(select(InvoiceSettings).where(InvoiceSettings.msp_id == msp_id))
    return found or InvoiceSettings(
        msp_id=msp_id, grace_days=DEFAULT_GRACE_DAYS, grouping=documents.SERVICE
    )


def set_settings(
    session: Session, subject: AuthSubject, data: InvoiceSettingsIn
) -> InvoiceSettings:
    subject.require_write()
    current = session.scalar(
        select(InvoiceSettings).where(InvoiceSettings.msp_id == subject.msp_id)
    )
    before = None
    if current is None:
        current = InvoiceSettings(msp_id=subject.msp_id)
        session.add(current)
    else:
        before = {"grace_days": current.grace_days, "grouping": current.grouping}
    current.grace_days = data.grace_days
    current.grouping = data.grouping
    session.flush()
    after = {"grace_days": current.grace_days, "grouping": current.grouping}
    if after != before:
        record(
            session,
            subject,
            "invoice_settings.updated",
            "msp",
            subject.msp_id,
            before=before,
            after=after,
        )
    return current


# --- one view of drafts and finalized documents ------------------------------------------


@dataclass
class InvoiceView:
    """A document as every output (JSON, CSV, PDF) renders it."""

    id: str
    kind: str
    status: str
    number: str | None
    customer_id: str
    customer_name: str
    customer_external_id: str
    seller_name: str
    billing_cycle: str
    period_start: str
    period_end: str
    months: list[str]
    issue_date: date
    due_at: datetime | None
    currency: str
    locale: str
    grouping: str
    total: Decimal
    total_exact: Decimal
    line_count: int
    fx_rates: list[dict[str, Any]]
    credited_invoice_id: str | None = None
    reason: str | None = None
    finalized_at: datetime | None = None
    lines: list[DocumentLine] | None = field(default=None)


def draft_id(customer_id: str, period_end: str) -> str:
    return f"{DRAFT_PREFIX}{customer_id}_{period_end}"


def _parse_draft_id(value: str) -> tuple[str, str] | None:
    customer_id, _, period_end = value[len(DRAFT_PREFIX) :].rpartition("_")
    try:
        validate_period(period_end)
    except InvalidInput:
        return None
    return (customer_id, period_end) if customer_id else None


def _months_between(start: str, end: str) -> list[str]:
    months, month = [], start
    while month <= end:
        months.append(month)
        month = cycles.add_months(month, 1)
    return months


def _stored_view(invoice: Invoice, lines: Sequence[InvoiceLine] | None) -> InvoiceView:
    return InvoiceView(
        id=invoice.id,
        kind=invoice.kind,
        status=invoice.status,
        number=invoice.number,
        customer_id=invoice.customer_id,
        customer_name=invoice.customer_name,
        customer_external_id=invoice.customer_external_id,
        seller_name=invoice.seller_name,
        billing_cycle=invoice.billing_cycle,
        period_start=invoice.period_start,
        period_end=invoice.period_end,
        months=_months_between(invoice.period_start, invoice.period_end),
        issue_date=invoice.issue_date,
        due_at=None,
        currency=invoice.currency,
        locale=invoice.locale,
        grouping=invoice.grouping,
        total=invoice.total,
        total_exact=invoice.total_exact,
        line_count=invoice.line_count,
        fx_rates=list(invoice.fx_rates or []),
        credited_invoice_id=invoice.credited_invoice_id,
        reason=invoice.reason,
        finalized_at=invoice.finalized_at,
        lines=None if lines is None else [_document_line(line) for line in lines],
    )


def _document_line(line: InvoiceLine) -> DocumentLine:
    return DocumentLine(
        position=line.position,
        kind=line.kind,
        description=line.description,
        vendor=line.vendor,
        vendor_reference=line.vendor_reference,
        service_name=line.service_name,
        charge_category=line.charge_category,
        quantity=line.quantity,
        unit=line.unit,
        unit_price=line.unit_price,
        amount=line.amount,
        amount_exact=line.amount_exact,
        currency=line.currency,
        period=line.period,
        service_start=line.service_start,
        service_end=line.service_end,
        original_period=line.original_period,
        fx_rates=list(line.fx_rates or []),
        sources=list(line.sources or []),
    )


def _closed_months(session: Session, customer_id: str, months: Sequence[str]) -> set[str]:
    return set(
        session.scalars(
            select(ClosedPeriod.period).where(
                ClosedPeriod.customer_id == customer_id, ClosedPeriod.period.in_(list(months))
            )
        )
    )


def _charge_lines(session: Session, customer_id: str, months: Sequence[str]) -> list[Any]:
    """The customer's charge lines of ``months`` as plain rows (read-only: no ORM objects)."""
    if not months:
        return []
    table = ChargeLine.__table__
    return list(
        session.execute(
            select(table)
            .where(table.c.customer_id == customer_id, table.c.period.in_(list(months)))
            .order_by(table.c.period, table.c.line_key)
        )
    )


def _seller_name(session: Session, msp_id: str) -> str:
    return session.scalar(select(Msp.name).where(Msp.id == msp_id)) or ""


def _draft_view(
    session: Session,
    customer: Customer,
    period_end: str,
    settings: InvoiceSettings,
    seller_name: str,
) -> InvoiceView | None:
    """The live draft of a billing period, or None once the period is closed."""
    months = cycles.period_months(customer.billing_cycle, period_end)
    closed = _closed_months(session, customer.id, months)
    if period_end in closed:
        return None
    open_months = [m for m in months if m not in closed]
    document = documents.build(
        _charge_lines(session, customer.id, open_months),
        open_months,
        customer.currency,
        settings.grouping,
    )
    return InvoiceView(
        id=draft_id(customer.id, period_end),
        kind=INVOICE,
        status=DRAFT,
        number=None,
        customer_id=customer.id,
        customer_name=customer.name,
        customer_external_id=customer.external_id,
        seller_name=seller_name,
        billing_cycle=customer.billing_cycle,
        period_start=open_months[0],
        period_end=period_end,
        months=open_months,
        issue_date=cycles.issue_date(period_end, customer.billing_anchor_day),
        due_at=cycles.due_at(period_end, customer.billing_anchor_day, settings.grace_days),
        currency=customer.currency,
        locale=customer.locale,
        grouping=settings.grouping,
        total=document.total,
        total_exact=document.total_exact,
        line_count=len(document.lines),
        fx_rates=document.fx_rates,
        lines=document.lines,
    )


def get_view(session: Session, subject: AuthSubject, invoice_id: str) -> InvoiceView:
    """A finalized document, or a live draft (``draft_<customer>_<YYYY-MM>``)."""
    if invoice_id.startswith(DRAFT_PREFIX):
        parsed = _parse_draft_id(invoice_id)
        if parsed is None:
            raise NotFound(f"No invoice {invoice_id!r}.", code="invoice_not_found")
        customer_id, period_end = parsed
        customer = session.scalar(
            select(Customer).where(Customer.id == customer_id, Customer.msp_id == subject.msp_id)
        )
        if customer is None or not cycles.is_period_end(customer.billing_cycle, period_end):
            raise NotFound(f"No invoice {invoice_id!r}.", code="invoice_not_found")
        view = _draft_view(
            session,
            customer,
            period_end,
            settings_for(session, subject.msp_id),
            _seller_name(session, subject.msp_id),
        )
        if view is None:
            final = session.scalar(
                select(Invoice.id).where(
                    Invoice.customer_id == customer.id,
                    Invoice.period_end == period_end,
                    Invoice.kind == INVOICE,
                )
            )
            raise NotFound(
                f"The period of {invoice_id!r} is closed"
                + (f": its invoice is {final}." if final else " (it had no charges)."),
                code="invoice_not_found",
                invoice_id=final,
            )
        return view
    invoice = session.scalar(
        select(Invoice).where(Invoice.id == invoice_id, Invoice.msp_id == subject.msp_id)
    )
    if invoice is None:
        raise NotFound(f"No invoice {invoice_id!r}.", code="invoice_not_found")
    lines = list(
        session.scalars(
            select(InvoiceLine)
            .where(InvoiceLine.invoice_id == invoice.id)
            .order_by(InvoiceLine.position)
        )
    )
    return _stored_view(invoice, lines)


def _draft_keys(
    session: Session, msp_id: str, customer_id: str | None
) -> dict[tuple[str, str], Customer]:
    """(customer, period end) of every billing period with open charge lines."""
    lines = select(ChargeLine.customer_id, ChargeLine.period).where(ChargeLine.msp_id == msp_id)
    closed = select(ClosedPeriod.customer_id, ClosedPeriod.period).where(
        ClosedPeriod.msp_id == msp_id
    )
    people = select(Customer).where(Customer.msp_id == msp_id)
    if customer_id is not None:
        lines = lines.where(ChargeLine.customer_id == customer_id)
        closed = closed.where(ClosedPeriod.customer_id == customer_id)
        people = people.where(Customer.id == customer_id)
    closed_set = {(c, p) for c, p in session.execute(closed)}
    by_id = {c.id: c for c in session.scalars(people)}
    keys: dict[tuple[str, str], Customer] = {}
    for cid, month in session.execute(lines.distinct()):
        customer = by_id.get(cid)
        if customer is None or (cid, month) in closed_set:
            continue
        end = cycles.period_end_for(customer.billing_cycle, month)
        if (cid, end) not in closed_set:
            keys[(cid, end)] = customer
    return keys


def list_views(
    session: Session,
    subject: AuthSubject,
    *,
    status: str | None,
    period: str | None,
    customer_id: str | None,
    kind: str | None,
    cursor: str | None,
    limit: int,
) -> Page[InvoiceView]:
    """Finalized documents and live drafts, one keyset page ordered by id."""
    if period is not None:
        validate_period(period)
    candidates: list[tuple[str, Any]] = []
    if status in (None, FINALIZED):
        stmt = select(Invoice).where(Invoice.msp_id == subject.msp_id)
        if customer_id is not None:
            stmt = stmt.where(Invoice.customer_id == customer_id)
        if kind is not None:
            stmt = stmt.where(Invoice.kind == kind)
        if period is not None:
            stmt = stmt.where(Invoice.period_start <= period, Invoice.period_end >= period)
        if cursor:
            stmt = stmt.where(Invoice.id > cursor)
        stmt = stmt.order_by(Invoice.id).limit(limit + 1)
        candidates += [(invoice.id, invoice) for invoice in session.scalars(stmt)]
    if status in (None, DRAFT) and kind in (None, INVOICE):
        keys = _draft_keys(session, subject.msp_id, customer_id)
        drafts = []
        for (cid, end), customer in keys.items():
            identifier = draft_id(cid, end)
            if cursor and identifier <= cursor:
                continue
            if period is not None and period not in cycles.period_months(
                customer.billing_cycle, end
            ):
                continue
            drafts.append((identifier, (customer, end)))
        candidates += sorted(drafts, key=lambda item: item[0])[: limit + 1]
    candidates.sort(key=lambda item: item[0])
    has_more = len(candidates) > limit
    candidates = candidates[:limit]
    settings = settings_for(session, subject.msp_id)
    seller = _seller_name(session, subject.msp_id)
    views: list[InvoiceView] = []
    for _, item in candidates:
        if isinstance(item, Invoice):
            views.append(_stored_view(item, None))
            continue
        customer, end = item
        view = _draft_view(session, customer, end, settings, seller)
        if view is not None:
            view.lines = None
            views.append(view)
    next_cursor = candidates[-1][0] if has_more and candidates else None
    return Page(items=views, next_cursor=next_cursor)


def lines_page(
    view: InvoiceView, cursor: str | None, limit: int
) -> tuple[list[DocumentLine], str | None]:
    """Lines after position ``cursor``, and the cursor of the next page."""
    after = parse_sequence_cursor(cursor, "cursor")
    lines = [line for line in view.lines or [] if line.position > after]
    page = lines[:limit]
    return page, (str(page[-1].position) if len(lines) > limit and page else None)


# --- JSON outputs -------------------------------------------------------------------------


def _text(value: Decimal | None) -> str | None:
    return None if value is None else documents.plain(value)


def money_text(value: Decimal, currency: str) -> str:
    """A rounded amount with the currency's minor units written out (``7.50``)."""
    return format(round_money(value, currency), "f")


def line_out(line: DocumentLine) -> InvoiceLineOut:
    return InvoiceLineOut(
        position=line.position,
        kind=line.kind,
        description=line.description,
        vendor=line.vendor,
        vendor_reference=line.vendor_reference,
        service_name=line.service_name,
        charge_category=line.charge_category,
        quantity=_text(line.quantity),
        unit=line.unit,
        unit_price=_text(line.unit_price),
        amount=money_text(line.amount, line.currency),
        amount_exact=documents.plain(line.amount_exact),
        currency=line.currency,
        period=line.period,
        service_period=ServicePeriod(start=line.service_start, end=line.service_end),
        original_period=line.original_period,
        fx_rates=[FxRateOut(**rate) for rate in line.fx_rates],
        source_line_keys=[str(s["line_key"]) for s in line.sources],
    )


def invoice_out(view: InvoiceView) -> InvoiceOut:
    return InvoiceOut(
        object=view.kind,
        id=view.id,
        status=view.status,
        number=view.number,
        customer_id=view.customer_id,
        customer_name=view.customer_name,
        customer_external_id=view.customer_external_id,
        billing_cycle=view.billing_cycle,
        period_start=view.period_start,
        period_end=view.period_end,
        months=view.months,
        issue_date=view.issue_date,
        due_at=view.due_at,
        currency=view.currency,
        locale=view.locale,
        grouping=view.grouping,
        total=money_text(view.total, view.currency),
        total_exact=documents.plain(view.total_exact),
        line_count=view.line_count,
        fx_rates=[FxRateOut(**rate) for rate in view.fx_rates],
        credited_invoice_id=view.credited_invoice_id,
        reason=view.reason,
        finalized_at=view.finalized_at,
    )


def invoice_detail(view: InvoiceView) -> InvoiceDetail:
    return InvoiceDetail(
        **invoice_out(view).model_dump(), lines=[line_out(li) for li in view.lines or []]
    )


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


# --- numbers ------------------------------------------------------------------------------


def _next_number(session: Session, msp_id: str, series: str) -> str:
    """The next number of the series, under a row lock held until the caller commits."""

    def locked() -> InvoiceCounter | None:
        return session.scalar(
            select(InvoiceCounter)
            .where(InvoiceCounter.msp_id == msp_id, InvoiceCounter.series == series)
            .with_for_update()
        )

    counter = locked()
    if counter is None:
        try:
            with session.begin_nested():
                session.add(InvoiceCounter(msp_id=msp_id, series=series, last_number=0))
                session.flush()
        except IntegrityError:
            pass  # a concurrent transaction created it first
        counter = locked()
        assert counter is not None
    counter.last_number += 1
    session.flush()
    return f"{series}-{counter.last_number:06d}"


def _lock_msp(session: Session, msp_id: str) -> None:
    session.scalar(select(Msp.id).where(Msp.id == msp_id).with_for_update())


# --- invoice runs -------------------------------------------------------------------------


def create_run(
    session: Session, subject: AuthSubject, period: str, force: bool, *, enqueue_job: bool
) -> InvoiceRun:
    subject.require_write()
    validate_period(period)
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
    run = session.scalar(
        select(InvoiceRun).where(InvoiceRun.id == run_id, InvoiceRun.msp_id == subject.msp_id)
    )
    if run is None:
        raise NotFound(f"No invoice run {run_id!r}.", code="invoice_run_not_found")
    return run


def list_runs(
    session: Session, subject: AuthSubject, cursor: str | None, limit: int
) -> Page[InvoiceRun]:
    from billbyte.kit.pagination import paginate

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

    _rate_months(runtime, msp_id, sorted({m for d in due for m in d.months}))
    subject = AuthSubject(msp_id=msp_id, actor=actor, role=Role.ADMIN)
    for item in due:
        try:
            _finalize_customer(runtime, subject, run_id, item, period, grouping)
        except _CannotFinalize as exc:
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


def _rate_months(runtime: Runtime, msp_id: str, months: list[str]) -> None:
    """Re-rate the months about to be invoiced, so late imports are in (those with usage)."""
    from billbyte.rating import service as rating

    with runtime.uow() as uow:
        with_usage = set(rating.open_periods(uow.session, msp_id))
    for month in months:
        if month in with_usage:
            rating.rate_period(runtime, msp_id, month)


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
    closed = _closed_months(session, customer.id, months)
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
    lines = _charge_lines(session, customer.id, open_months)
    wrong = sorted({line.currency for line in lines} - {customer.currency})
    if wrong:
        raise _CannotFinalize(
            f"charges are in {', '.join(wrong)} but the customer pays in {customer.currency}: "
            "re-rate the period first"
        )
    for month in open_months:
        session.add(ClosedPeriod(msp_id=msp_id, customer_id=customer.id, period=month))
    from billbyte.credit import prepaid

    if not lines:
        session.flush()
        prepaid.close(session, customer, open_months, Decimal(0), None)
        _bump(session, run_id, "closed_without_charges")
        return "closed_without_charges"
    document = documents.build(lines, open_months, customer.currency, grouping)
    invoice = _store_invoice(session, subject, customer, document, open_months, grouping, run_id)
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
    invoice = Invoice(
        id=new_id("inv"),
        msp_id=subject.msp_id,
        customer_id=customer.id,
        kind=INVOICE,
        status=FINALIZED,
        number=_next_number(session, subject.msp_id, INVOICE_SERIES),
        period_start=months[0],
        period_end=period_end,
        billing_cycle=customer.billing_cycle,
        issue_date=cycles.issue_date(period_end, customer.billing_anchor_day),
        currency=customer.currency,
        locale=customer.locale,
        customer_name=customer.name,
        customer_external_id=customer.external_id,
        seller_name=_seller_name(session, subject.msp_id),
        grouping=grouping,
        total=document.total,
        total_exact=document.total_exact,
        line_count=len(document.lines),
        fx_rates=document.fx_rates,
        run_id=run_id,
        finalized_at=utcnow(),
    )
    session.add(invoice)
    session.flush()
    _insert_lines(session, invoice, customer.id, document.lines)
    view = _stored_view(invoice, None)
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


def _insert_lines(
    session: Session, invoice: Invoice, customer_id: str, lines: Sequence[DocumentLine]
) -> None:
    if not lines:
        return
    session.execute(
        insert(cast(Table, InvoiceLine.__table__)),  # Core: no ORM bookkeeping per row
        [
            {
                "id": new_id("inl"),
                "invoice_id": invoice.id,
                "msp_id": invoice.msp_id,
                "customer_id": customer_id,
                "position": line.position,
                "kind": line.kind,
                "description": line.description,
                "vendor": line.vendor,
                "vendor_reference": line.vendor_reference,
                "service_name": line.service_name,
                "charge_category": line.charge_category,
                "quantity": line.quantity,
                "unit": line.unit,
                "unit_price": line.unit_price,
                "amount": line.amount,
                "amount_exact": line.amount_exact,
                "currency": line.currency,
                "period": line.period,
                "service_start": line.service_start,
                "service_end": line.service_end,
                "original_period": line.original_period,
                "fx_rates": line.fx_rates,
                "sources": line.sources,
            }
            for line in lines
        ],
    )


# --- credit notes -------------------------------------------------------------------------


def create_credit_note(
    session: Session, subject: AuthSubject, invoice_id: str, data: CreditNoteCreate
) -> InvoiceView:
    """A finalized negative document against a finalized invoice, never crediting more than
    what is left of it."""
    subject.require_write()
    if invoice_id.startswith(DRAFT_PREFIX):
        get_view(session, subject, invoice_id)  # 404 unless it is a live draft
        raise InvalidInput(
            "A draft cannot be credited: change its charges, or credit it once finalized.",
            code="invoice_not_finalized",
        )
    invoice = session.scalar(
        select(Invoice).where(Invoice.id == invoice_id, Invoice.msp_id == subject.msp_id)
    )
    if invoice is None:
        raise NotFound(f"No invoice {invoice_id!r}.", code="invoice_not_found")
    if invoice.kind != INVOICE:
        raise InvalidInput("Only an invoice can be credited.", code="not_an_invoice")
    amounts = []
    for index, line in enumerate(data.lines):
        amount = parse_decimal(line.amount, f"lines.{index}.amount")
        if round_money(amount, invoice.currency) != amount:
            raise InvalidInput(
                f"lines.{index}.amount {line.amount} has more decimals than "
                f"{invoice.currency} allows.",
                field=f"lines.{index}.amount",
            )
        amounts.append(amount)
    # The counter's row lock serialises the MSP's credit notes: two at once cannot both
    # take the last of an invoice's balance.
    number = _next_number(session, subject.msp_id, CREDIT_NOTE_SERIES)
    credited = -sum(
        session.scalars(select(Invoice.total).where(Invoice.credited_invoice_id == invoice.id)),
        Decimal(0),
    )
    total = sum(amounts, Decimal(0))
    remaining = invoice.total - credited
    if total > remaining:
        raise InvalidInput(
            f"Cannot credit {total} {invoice.currency}: invoice {invoice.number} is "
            f"{invoice.total}, {credited} already credited, {max(remaining, Decimal(0))} left.",
            code="credit_exceeds_invoice",
            field="lines",
        )
    now = utcnow()
    note = Invoice(
        id=new_id("cn"),
        msp_id=subject.msp_id,
        customer_id=invoice.customer_id,
        kind=CREDIT_NOTE,
        status=FINALIZED,
        number=number,
        period_start=invoice.period_start,
        period_end=invoice.period_end,
        billing_cycle=invoice.billing_cycle,
        issue_date=now.date(),
        currency=invoice.currency,
        locale=invoice.locale,
        customer_name=invoice.customer_name,
        customer_external_id=invoice.customer_external_id,
        seller_name=invoice.seller_name,
        grouping=invoice.grouping,
        total=-total,
        total_exact=-total,
        line_count=len(amounts),
        fx_rates=[],
        credited_invoice_id=invoice.id,
        reason=data.reason,
        finalized_at=now,
    )
    session.add(note)
    session.flush()
    lines = [
        DocumentLine(
            position=index + 1,
            kind="credit",
            description=line.description,
            vendor=None,
            vendor_reference=invoice.number,
            service_name=None,
            charge_category=None,
            quantity=None,
            unit=None,
            unit_price=None,
            amount=-amount,
            amount_exact=-amount,
            currency=invoice.currency,
            period=invoice.period_end,
            service_start=None,
            service_end=None,
            original_period=None,
            fx_rates=[],
        )
        for index, (line, amount) in enumerate(zip(data.lines, amounts, strict=True))
    ]
    _insert_lines(session, note, invoice.customer_id, lines)
    view = _stored_view(note, None)
    view.lines = lines
    summary = invoice_out(view).model_dump(mode="json")
    record(
        session,
        subject,
        "credit_note.created",
        "invoice",
        note.id,
        before=None,
        after={"number": number, "credited_invoice_id": invoice.id, "total": summary["total"]},
    )
    webhooks.emit(session, subject.msp_id, "invoice.finalized", summary)
    return view
