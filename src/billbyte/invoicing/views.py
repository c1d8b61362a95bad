"""One view of drafts and finalized documents, as every output (JSON, CSV, PDF) renders it.

A draft is live: it is built from the open charge lines whenever it is read, and has an id
of its own (``draft_<customer>_<YYYY-MM>``) until its period is closed.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any, cast

from sqlalchemy import Table, insert, select
from sqlalchemy.orm import Session

from billbyte.auth.subject import AuthSubject
from billbyte.charges import ledger
from billbyte.charges.models import ChargeLine, ClosedPeriod
from billbyte.customers.models import Customer
from billbyte.invoicing import cycles, documents, terms
from billbyte.invoicing.documents import DocumentLine
from billbyte.invoicing.models import (
    DOCUMENT_VERSION,
    DRAFT,
    FINALIZED,
    INVOICE,
    STATEMENT,
    Invoice,
    InvoiceLine,
    InvoiceSettings,
)
from billbyte.invoicing.parties import Buyer, Seller, TaxSummary
from billbyte.invoicing.schemas import (
    FxRateOut,
    InvoiceDetail,
    InvoiceLineOut,
    InvoiceOut,
    ServicePeriod,
)
from billbyte.invoicing.settings import settings_for
from billbyte.invoicing.taxation import MissingTaxRate
from billbyte.kit.errors import InvalidInput, NotFound
from billbyte.kit.ids import new_id
from billbyte.kit.money import format_amount, plain_decimal, round_money
from billbyte.kit.pagination import Page, parse_sequence_cursor
from billbyte.kit.periods import validate_period
from billbyte.kit.repository import get_owned
from billbyte.tenancy.models import Msp
from billbyte.tenancy.repository import logo_version_of

DRAFT_PREFIX = "draft_"


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
    # issue 12: version 1 documents render with the version-1 PDF and CSV writers
    document_version: int = DOCUMENT_VERSION
    mode: str = STATEMENT
    due_date: date | None = None
    payment_terms_days: int | None = None
    seller: Seller | None = None
    buyer: Buyer | None = None
    subtotal: Decimal | None = None  # without tax; None in statement mode
    tax_total: Decimal | None = None
    taxes: list[TaxSummary] = field(default_factory=list)


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


def stored_view(invoice: Invoice, lines: Sequence[InvoiceLine] | None) -> InvoiceView:
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
        document_version=invoice.document_version,
        mode=invoice.mode,
        due_date=invoice.due_date,
        payment_terms_days=invoice.payment_terms_days,
        seller=cast(Seller | None, invoice.seller),
        buyer=cast(Buyer | None, invoice.buyer),
        subtotal=invoice.subtotal,
        tax_total=invoice.tax_total,
        taxes=cast(list[TaxSummary], list(invoice.taxes or [])),
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
        tax_category=line.tax_category,
        tax_rate=line.tax_rate,
    )


def closed_months(session: Session, customer_id: str, months: Sequence[str]) -> set[str]:
    return set(
        session.scalars(
            select(ClosedPeriod.period).where(
                ClosedPeriod.customer_id == customer_id, ClosedPeriod.period.in_(list(months))
            )
        )
    )


def seller_name_of(session: Session, msp_id: str) -> str:
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
    closed = closed_months(session, customer.id, months)
    if period_end in closed:
        return None
    open_months = [m for m in months if m not in closed]
    document = documents.build(
        ledger.lines_by_month(session, customer.id, open_months),
        open_months,
        customer.currency,
        settings.grouping,
    )
    issued = cycles.issue_date(period_end, customer.billing_anchor_day)
    mode = settings.mode or STATEMENT
    try:
        agreed = terms.apply(session, customer, document, issued, mode)
    except MissingTaxRate:
        # The draft still shows its lines; finalizing will refuse until a rate exists.
        agreed = terms.apply(session, customer, document, issued, STATEMENT)
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
        issue_date=issued,
        due_at=cycles.due_at(period_end, customer.billing_anchor_day, settings.grace_days),
        currency=customer.currency,
        locale=customer.locale,
        grouping=settings.grouping,
        total=agreed.total,
        total_exact=agreed.total_exact,
        line_count=len(agreed.lines),
        fx_rates=document.fx_rates,
        lines=agreed.lines,
        mode=mode,
        due_date=agreed.due_date,
        payment_terms_days=agreed.payment_terms_days,
        seller=agreed.seller,
        buyer=agreed.buyer,
        subtotal=agreed.subtotal,
        tax_total=agreed.tax_total,
        taxes=agreed.taxes,
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
            seller_name_of(session, subject.msp_id),
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
    invoice = get_owned(
        session, Invoice, subject.msp_id, invoice_id, what="invoice", code="invoice_not_found"
    )
    lines = list(
        session.scalars(
            select(InvoiceLine)
            .where(InvoiceLine.invoice_id == invoice.id)
            .order_by(InvoiceLine.position)
        )
    )
    return stored_view(invoice, lines)


def open_billing_periods(
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
        keys = open_billing_periods(session, subject.msp_id, customer_id)
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
    seller = seller_name_of(session, subject.msp_id)
    views: list[InvoiceView] = []
    for _, item in candidates:
        if isinstance(item, Invoice):
            views.append(stored_view(item, None))
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


LOGO_SINCE = 3  # the document version whose PDF shows the seller's logo


def logo_uri(session: Session, msp_id: str, view: InvoiceView) -> str | None:
    """The seller's logo of ``view`` as a ``data:`` URI for its PDF, or None: the version
    named by the document's seller snapshot, read from the database (tenancy keeps every
    version), so rendering fetches nothing and a later logo never changes a finalized
    document. Documents older than version 3 never had a logo and keep their bytes."""
    version = (view.seller or {}).get("logo_version")
    if view.document_version < LOGO_SINCE or not version or not str(version).isdigit():
        return None
    found = logo_version_of(session, msp_id, int(version))
    if found is None:
        return None
    data, content_type = found
    return f"data:{content_type};base64,{base64.b64encode(data).decode('ascii')}"


# --- JSON outputs -------------------------------------------------------------------------


def _text(value: Decimal | None) -> str | None:
    return None if value is None else plain_decimal(value)


def money_text(value: Decimal, currency: str) -> str:
    """A rounded amount with the currency's minor units written out (``7.50``)."""
    return format_amount(round_money(value, currency))


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
        amount_exact=plain_decimal(line.amount_exact),
        currency=line.currency,
        period=line.period,
        service_period=ServicePeriod(start=line.service_start, end=line.service_end),
        original_period=line.original_period,
        fx_rates=[FxRateOut(**rate) for rate in line.fx_rates],
        source_line_keys=[str(s["line_key"]) for s in line.sources],
        tax_category=line.tax_category,
        tax_rate=_text(line.tax_rate),
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
        total_exact=plain_decimal(view.total_exact),
        line_count=view.line_count,
        fx_rates=[FxRateOut(**rate) for rate in view.fx_rates],
        credited_invoice_id=view.credited_invoice_id,
        reason=view.reason,
        finalized_at=view.finalized_at,
        mode=view.mode,
        due_date=view.due_date,
        payment_terms_days=view.payment_terms_days,
        seller=dict(view.seller) if view.seller is not None else None,
        buyer=dict(view.buyer) if view.buyer is not None else None,
        subtotal=None if view.subtotal is None else money_text(view.subtotal, view.currency),
        tax_total=None if view.tax_total is None else money_text(view.tax_total, view.currency),
        taxes=[dict(t) for t in view.taxes],
    )


def invoice_detail(view: InvoiceView) -> InvoiceDetail:
    return InvoiceDetail(
        **invoice_out(view).model_dump(), lines=[line_out(li) for li in view.lines or []]
    )


# --- document lines as stored -----------------------------------------------------------


def insert_lines(
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
                "tax_category": line.tax_category,
                "tax_rate": line.tax_rate,
            }
            for line in lines
        ],
    )
