"""What the invoicing pages show and do, over the API's own functions: invoice runs
(``POST/GET /v1/invoice-runs``), invoices and credit notes (``GET /v1/invoices``, the same
PDF and CSV documents), issuing a credit note (``POST /v1/invoices/{id}/credit-notes``) and
the margin report (``GET /v1/reports/margin``)."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from pydantic import ValidationError
from sqlalchemy.orm import Session

from billbyte.auth.subject import AuthSubject
from billbyte.charges import service as charges
from billbyte.charges.schemas import MarginReportOut
from billbyte.customers import repository as customers
from billbyte.invoicing import credit_notes, runs, views
from billbyte.invoicing.csv_documents import render_csv
from billbyte.invoicing.pdf import render_pdf
from billbyte.invoicing.schemas import CreditNoteCreate, InvoiceDetail, InvoiceOut, InvoiceRunOut
from billbyte.kit.clock import utcnow
from billbyte.kit.errors import InvalidInput
from billbyte.kit.periods import Period, validate_period
from billbyte.web import charts

RUNS_SHOWN = 20
INVOICES_PAGE = 100
STATUSES = ("draft", "finalized")
KINDS = ("invoice", "credit_note")
GROUPS = ("customer", "vendor", "service")


def default_margin_period() -> str:
    return str(Period.of(utcnow().date()))


def _choice(value: str, allowed: tuple[str, ...], field: str) -> str | None:
    if not value:
        return None
    if value not in allowed:
        raise InvalidInput(f"{field} must be one of {', '.join(allowed)}.", field=field)
    return value


@dataclass(frozen=True)
class InvoicesPage:
    runs: list[InvoiceRunOut]  # the latest first
    invoices: list[InvoiceOut]
    next_cursor: str | None


def invoices_page(
    session: Session,
    subject: AuthSubject,
    *,
    status: str,
    kind: str,
    period: str,
    cursor: str | None,
) -> InvoicesPage:
    """The runs and one page of documents, filtered as ``GET /v1/invoices`` filters them
    (a bad filter is a 422)."""
    page = views.list_views(
        session,
        subject,
        status=_choice(status, STATUSES, "status"),
        period=validate_period(period) if period else None,
        customer_id=None,
        kind=_choice(kind, KINDS, "kind"),
        cursor=cursor or None,
        limit=INVOICES_PAGE,
    )
    every_run = runs.list_runs(session, subject, None, 1000).items
    return InvoicesPage(
        runs=[runs.run_out(run) for run in reversed(every_run)][:RUNS_SHOWN],
        invoices=[views.invoice_out(view) for view in page.items],
        next_cursor=page.next_cursor,
    )


def start_run(session: Session, subject: AuthSubject, period: str, force: bool) -> str:
    """As ``POST /v1/invoice-runs``: the run is recorded and its job queued."""
    run = runs.create_run(session, subject, validate_period(period), force, enqueue_job=True)
    return run.id


def run_status(session: Session, subject: AuthSubject, run_id: str) -> InvoiceRunOut:
    return runs.run_out(runs.get_run(session, subject, run_id))


def invoice(session: Session, subject: AuthSubject, invoice_id: str) -> InvoiceDetail:
    return views.invoice_detail(views.get_view(session, subject, invoice_id))


@dataclass(frozen=True)
class Document:
    content: bytes
    media_type: str
    filename: str


def document(session: Session, subject: AuthSubject, invoice_id: str, kind: str) -> Document:
    """The same PDF or CSV as ``GET /v1/invoices/{id}.pdf|.csv``."""
    view = views.get_view(session, subject, invoice_id)
    name = view.number or view.id
    if kind == "pdf":
        logo = views.logo_uri(session, subject.msp_id, view)
        return Document(render_pdf(view, logo_url=logo), "application/pdf", f"{name}.pdf")
    return Document(render_csv(view), "text/csv; charset=utf-8", f"{name}.csv")


def issue_credit_note(
    session: Session,
    subject: AuthSubject,
    invoice_id: str,
    *,
    description: str,
    amount: str,
    reason: str,
) -> str:
    """As ``POST /v1/invoices/{id}/credit-notes`` with one line; returns the note's id."""
    views.get_view(session, subject, invoice_id)  # another MSP's invoice: 404 first
    try:
        body = CreditNoteCreate.model_validate(
            {"lines": [{"description": description, "amount": amount}], "reason": reason}
        )
    except ValidationError as invalid:
        first = invalid.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        raise InvalidInput(f"{where}: {first['msg']}", field=where) from None
    return credit_notes.create_credit_note(session, subject, invoice_id, body).id


@dataclass(frozen=True)
class MarginPage:
    report: MarginReportOut
    charts: list[tuple[str, dict[str, Any]]]  # (currency, chart spec), one per currency
    labels: dict[str, str]  # a row's key as people read it (customer names for customer ids)


def margin_page(
    session: Session, subject: AuthSubject, period: str, group_by: str, colour: str
) -> MarginPage:
    group = _choice(group_by, GROUPS, "group_by") or "customer"
    report = charges.margin_report(session, subject, validate_period(period), group)
    names: dict[str, str] = {}
    if group == "customer":
        names = {c.id: c.name for c in customers.search(session, subject.msp_id, "", 100_000)}
    labels = {str(row.key): names.get(str(row.key), str(row.key or "—")) for row in report.rows}
    by_currency: dict[str, list[tuple[str, Decimal]]] = defaultdict(list)
    for row in report.rows:
        by_currency[row.currency].append((labels[str(row.key)], Decimal(row.margin)))
    specs = [
        (
            currency,
            charts.bars(
                f"Margin by {group}, {currency}",
                [label for label, _ in items],
                [amount for _, amount in items],
                currency,
                colour,
            ),
        )
        for currency, items in sorted(by_currency.items())
    ]
    return MarginPage(report, specs, labels)
