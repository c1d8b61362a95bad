"""What the portal's pages show, assembled from the features' services and read models.

Every function takes a ``Session`` and the signed-in portal user and reads only the user's
own customer: the charges as ``GET /v1/customers/{id}/charges`` reports them (the same
function), the credit standing as ``GET /v1/customers/{id}/credit`` computes it, the
analytics rollups (``analytics.repository``: small tables, never raw usage), the finalized
invoices as ``GET /v1/invoices`` lists them. Amounts stay ``Decimal``; the templates format
them in the reader's locale.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode

from sqlalchemy.orm import Session

from billbyte.analytics import repository as analytics
from billbyte.auth.web_sessions import WebSubject
from billbyte.budgets import repository as budgets
from billbyte.charges import repository as charge_reads
from billbyte.charges import service as charges
from billbyte.charges.schemas import ChargesOut
from billbyte.credit import service as credit
from billbyte.customers import repository as customers
from billbyte.customers.models import Customer
from billbyte.invoicing import views as invoices
from billbyte.invoicing.csv_documents import render_csv
from billbyte.invoicing.pdf import render_pdf
from billbyte.kit.csv_writer import CsvTable
from billbyte.kit.errors import InvalidInput, NotFound
from billbyte.kit.periods import Period, parse_period
from billbyte.portal.common import customer_of
from billbyte.web import charts

FINALIZED = "finalized"
_MAX_TEXT = 200  # longest filter value accepted from a query string
_DRIVERS = 3  # movers named in words
_PAGE = 100  # invoices read per page of the invoicing list


def customer_locale(customer: Customer, subject: WebSubject) -> str:
    """The portal user's own locale if set, else the customer's."""
    return subject.locale or customer.locale or "en"


def periods_with_charges(session: Session, subject: WebSubject) -> list[str]:
    """The customer's months that have charge lines, newest first."""
    return charge_reads.periods_of(session, subject.msp_id, customer_of(subject))


def chosen_period(text: str | None, today: date) -> str:
    """A requested ``YYYY-MM`` (422 when malformed), else the current month."""
    if text is None or text == "":
        return str(Period.of(today))
    return str(parse_period(text))


# -- the overview ----------------------------------------------------------------------------


@dataclass(frozen=True)
class ChargeGroupView:
    vendor: str
    service: str
    amount: Decimal
    lines: list[tuple[str, Decimal, str, Decimal]]  # description, quantity, unit, amount


@dataclass(frozen=True)
class CreditView:
    kind: str | None  # credit_limit | prepaid_balance | None (no limit set)
    base: Decimal | None
    spend: Decimal
    percent: Decimal | None


@dataclass(frozen=True)
class Overview:
    customer_name: str
    locale: str
    period: str
    periods: list[str]
    currency: str
    status: str  # open | closed
    month_to_date: Decimal
    forecast: Decimal
    credit: CreditView
    budgets: list[budgets.BudgetStatus]  # every budget's spend and state in the period
    groups: list[ChargeGroupView]
    rated_at: str | None


def _groups(body: ChargesOut) -> list[ChargeGroupView]:
    """The API's groups with only what a customer sees: amounts, never the MSP's cost."""
    return [
        ChargeGroupView(
            vendor=group.vendor,
            service=group.service_name or "",
            amount=Decimal(group.amount),
            lines=[
                (
                    line.description or line.service_name or line.kind,
                    Decimal(line.quantity),
                    line.unit or "",
                    Decimal(line.amount),
                )
                for line in group.lines
            ],
        )
        for group in body.groups
    ]


def overview(
    session: Session, subject: WebSubject, period_text: str | None, today: date
) -> Overview:
    period = chosen_period(period_text, today)
    customer = customers.get_customer(session, subject.msp_id, customer_of(subject))
    body = charges.customer_charges(session, subject.as_auth_subject(), customer.id, period)
    standing = credit.standing(session, customer, period)
    periods = periods_with_charges(session, subject)
    return Overview(
        customer_name=customer.name,
        locale=customer_locale(customer, subject),
        period=period,
        periods=sorted(set(periods) | {period}, reverse=True),
        currency=body.currency,
        status=body.status,
        month_to_date=Decimal(body.total),
        forecast=analytics.forecast(session, subject.msp_id, customer.id, period, today),
        credit=CreditView(
            kind=standing.base_kind,
            base=standing.base,
            spend=standing.spend,
            percent=standing.percent,
        ),
        budgets=budgets.status_for(session, subject.msp_id, customer.id, period),
        groups=_groups(body),
        rated_at=body.rating.get("rated_at"),
    )


# -- costs -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class CostQuery:
    """The costs page's query string, checked."""

    period: str
    dimension: str
    filters: analytics.CostFilter
    chosen: dict[str, str]  # what the form shows as selected (field name → value)


def _text(params: Mapping[str, str], name: str) -> str:
    value = params.get(name, "") or ""
    if len(value) > _MAX_TEXT:
        raise InvalidInput(f"{name} is longer than {_MAX_TEXT} characters.", field=name)
    return value


def _day(params: Mapping[str, str], name: str) -> date | None:
    value = _text(params, name)
    if not value:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise InvalidInput(f"{name} must be a date such as 2026-11-30.", field=name) from None


def cost_query(params: Mapping[str, str], today: date) -> CostQuery:
    """Parse the costs page's (or its CSV's) query string: 422 for anything malformed."""
    period = chosen_period(_text(params, "period"), today)
    dimension = _text(params, "dimension") or "service"
    if dimension not in analytics.DIMENSIONS and not (
        dimension.startswith(analytics.TAG_PREFIX) and len(dimension) > len(analytics.TAG_PREFIX)
    ):
        choices = ", ".join(analytics.DIMENSIONS)
        raise InvalidInput(f"dimension must be one of {choices} or tag:<key>.", field="dimension")
    tag_text = _text(params, "tag")
    tag: tuple[str, str] | None = None
    if tag_text:
        key, found, value = tag_text.partition("=")
        if not found or not key:
            raise InvalidInput("tag must look like key=value.", field="tag")
        tag = (key, value)
    vendor, service = _text(params, "vendor"), _text(params, "service")
    account, region = _text(params, "account"), _text(params, "region")
    date_from, date_to = _day(params, "date_from"), _day(params, "date_to")
    filters = analytics.CostFilter(
        date_from=date_from,
        date_to=date_to,
        vendors=(vendor,) if vendor else (),
        services=(service,) if service else (),
        accounts=(account,) if account else (),
        regions=(region,) if region else (),
        tag=tag,
    )
    chosen = {
        "period": period,
        "dimension": dimension,
        "vendor": vendor,
        "service": service,
        "account": account,
        "region": region,
        "tag": tag_text,
        "date_from": date_from.isoformat() if date_from else "",
        "date_to": date_to.isoformat() if date_to else "",
    }
    return CostQuery(period=period, dimension=dimension, filters=filters, chosen=chosen)


# The month comparison's sentences (message ids of the German catalogue, too).
SENTENCES = {
    "not_started": "This period has not started yet.",
    "no_previous": "There are no costs in %(previous_period)s to compare with.",
    "higher": "Over the first %(days)s days your costs are %(current)s, %(delta)s more than "
    "over the same days of %(previous_period)s (%(previous)s).",
    "lower": "Over the first %(days)s days your costs are %(current)s, %(delta)s less than "
    "over the same days of %(previous_period)s (%(previous)s).",
    "same": "Over the first %(days)s days your costs are %(current)s, the same as over the "
    "same days of %(previous_period)s.",
    "up": "%(label)s went up by %(delta)s (from %(previous)s to %(current)s).",
    "down": "%(label)s went down by %(delta)s (from %(previous)s to %(current)s).",
}


@dataclass(frozen=True)
class Sentence:
    """One sentence of the month comparison: its message, its words and its amounts (the
    template formats the amounts as money in the reader's locale)."""

    message: str
    words: dict[str, Any]
    amounts: dict[str, Decimal]


@dataclass(frozen=True)
class CostsPage:
    customer_name: str
    locale: str
    query: CostQuery
    periods: list[str]
    currency: str
    total: Decimal
    trend: list[tuple[date, Decimal]]
    breakdown: list[tuple[str, Decimal]]
    options: analytics.FilterOptions
    dimensions: list[tuple[str, str]]  # value, label (tags as "tag:<key>")
    choices: dict[str, list[tuple[str, str]]]  # filter field → (value, text) options
    resources: list[analytics.RankedResource]
    comparison: analytics.MonthComparison | None
    sentences: list[Sentence]
    drivers: list[analytics.Driver]
    export_query: str  # the filters as a query string, for the CSV link
    trend_chart: dict[str, Any]
    breakdown_chart: dict[str, Any]
    drivers_chart: dict[str, Any]


def _sentences(comparison: analytics.MonthComparison) -> list[Sentence]:
    """'Why is this higher than last month', in words: the change, then the biggest movers
    among services (the dimension people recognise first)."""
    words: dict[str, Any] = {"previous_period": comparison.previous_period}
    if comparison.days == 0:
        return [Sentence(SENTENCES["not_started"], {}, {})]
    if comparison.previous_currency is None:
        return [Sentence(SENTENCES["no_previous"], words, {})]
    words["days"] = comparison.days
    amounts = {
        "current": comparison.current,
        "previous": comparison.previous,
        "delta": abs(comparison.delta),
    }
    change = "higher" if comparison.delta > 0 else "lower" if comparison.delta < 0 else "same"
    found = [Sentence(SENTENCES[change], words, amounts)]
    for driver in comparison.drivers.get("service", [])[:_DRIVERS]:
        if driver.delta == 0:
            continue
        found.append(
            Sentence(
                SENTENCES["up" if driver.delta > 0 else "down"],
                {"label": driver.label},
                {
                    "delta": abs(driver.delta),
                    "previous": driver.previous,
                    "current": driver.current,
                },
            )
        )
    return found


def _export_query(query: CostQuery) -> str:
    return urlencode({k: v for k, v in query.chosen.items() if v})


def _pairs(values: list[str]) -> list[tuple[str, str]]:
    return [(value, value) for value in values]


def costs(
    session: Session, subject: WebSubject, query: CostQuery, today: date, colour: str
) -> CostsPage:
    """Everything the costs page shows (charts untitled: the page's headings name them)."""
    customer = customers.get_customer(session, subject.msp_id, customer_of(subject))
    msp_id, period, filters = subject.msp_id, query.period, query.filters
    options = analytics.filter_options(session, msp_id, customer.id, period)
    trend = analytics.daily_trend(session, msp_id, customer.id, period, filters)
    total, currency = analytics.period_total(session, msp_id, customer.id, period, filters)
    try:
        comparison: analytics.MonthComparison | None = analytics.month_comparison(
            session, msp_id, customer.id, period, today
        )
    except InvalidInput:  # the first supported period has no previous one
        comparison = None
    periods = periods_with_charges(session, subject)
    breakdown = analytics.breakdown(session, msp_id, customer.id, period, query.dimension, filters)
    drivers = (
        [d for d in comparison.drivers.get("service", []) if d.delta][:10] if comparison else []
    )
    tags = [f"{key}={value}" for key, values in options.tags.items() for value in values]
    return CostsPage(
        customer_name=customer.name,
        locale=customer_locale(customer, subject),
        query=query,
        periods=sorted(set(periods) | {period}, reverse=True),
        currency=currency,
        total=total,
        trend=trend,
        breakdown=breakdown,
        options=options,
        dimensions=[(d, d) for d in analytics.DIMENSIONS]
        + [(f"{analytics.TAG_PREFIX}{key}", key) for key in options.tags],
        choices={
            "vendor": _pairs(options.vendors),
            "service": _pairs(options.services),
            "account": _pairs(options.accounts),
            "region": _pairs(options.regions),
            "tag": _pairs(tags),
        },
        resources=analytics.top_resources(session, msp_id, customer.id, period),
        comparison=comparison,
        sentences=_sentences(comparison) if comparison else [],
        drivers=drivers,
        export_query=_export_query(query),
        trend_chart=charts.line(
            "",
            [day.isoformat() for day, _ in trend],
            {currency: [a for _, a in trend]},
            currency,
            colour,
        ),
        breakdown_chart=charts.bars(
            "",
            [label for label, _ in breakdown[:15]],
            [a for _, a in breakdown[:15]],
            currency,
            colour,
            horizontal=True,
        ),
        drivers_chart=charts.bars(
            "",
            [d.label for d in drivers],
            [d.delta for d in drivers],
            currency,
            colour,
            horizontal=True,
        ),
    )


COST_COLUMNS = ("date", "vendor", "service", "account", "region", "tags", "amount", "currency")


def costs_csv(session: Session, subject: WebSubject, query: CostQuery) -> str:
    """The filtered cost rows as CSV (kit.csv_writer); they add up to the filtered total."""
    rows = analytics.cost_rows(
        session, subject.msp_id, customer_of(subject), query.period, query.filters
    )
    table = CsvTable(COST_COLUMNS, numeric=("amount",))
    table.rows(
        (
            row.day.isoformat(),
            row.vendor,
            row.service,
            row.account,
            row.region,
            ";".join(f"{k}={v}" for k, v in sorted(row.tags.items())),
            format(row.amount, "f"),
            row.currency,
        )
        for row in rows
    )
    return table.text()


# -- invoices --------------------------------------------------------------------------------


@dataclass(frozen=True)
class InvoiceRow:
    id: str
    kind: str
    number: str | None
    period_start: str
    period_end: str
    issue_date: date
    due: date | None
    total: Decimal
    currency: str
    credited: str | None  # a credit note's invoice number (or id)
    reason: str | None


@dataclass(frozen=True)
class InvoicesPage:
    customer_name: str
    locale: str
    rows: list[InvoiceRow]


def invoices_page(session: Session, subject: WebSubject) -> InvoicesPage:
    """The customer's finalized invoices and credit notes, newest first."""
    customer = customers.get_customer(session, subject.msp_id, customer_of(subject))
    found: list[invoices.InvoiceView] = []
    cursor: str | None = None
    while True:
        page = invoices.list_views(
            session,
            subject.as_auth_subject(),
            status=FINALIZED,
            period=None,
            customer_id=customer.id,
            kind=None,
            cursor=cursor,
            limit=_PAGE,
        )
        found += page.items
        cursor = page.next_cursor
        if cursor is None:
            break
    numbers = {view.id: view.number for view in found}
    rows = [
        InvoiceRow(
            id=view.id,
            kind=view.kind,
            number=view.number,
            period_start=view.period_start,
            period_end=view.period_end,
            issue_date=view.issue_date,
            due=view.due_date,  # the payment due date (due_at is a draft's finalization time)
            total=view.total,
            currency=view.currency,
            credited=(numbers.get(view.credited_invoice_id) or view.credited_invoice_id)
            if view.credited_invoice_id
            else None,
            reason=view.reason,
        )
        for view in found
    ]
    rows.sort(key=lambda r: (r.issue_date, r.id), reverse=True)
    return InvoicesPage(customer.name, customer_locale(customer, subject), rows)


@dataclass(frozen=True)
class Download:
    content: bytes | str
    media_type: str
    filename: str


def invoice_document(session: Session, subject: WebSubject, invoice_id: str, kind: str) -> Download:
    """The PDF or CSV ``GET /v1/invoices/{id}.pdf|.csv`` serves, for the user's own finalized
    documents only: another customer's (or a draft) is 404."""
    view = invoices.get_view(session, subject.as_auth_subject(), invoice_id)
    if view.customer_id != customer_of(subject) or view.status != FINALIZED:
        raise NotFound(f"No invoice {invoice_id!r}.", code="invoice_not_found")
    name = view.number or view.id
    if kind == "html":
        from billbyte.invoicing.pdf import document_html

        return Download(document_html(view), "text/html", name)
    if kind == "pdf":
        logo = invoices.logo_uri(session, subject.msp_id, view)
        return Download(render_pdf(view, logo_url=logo), "application/pdf", f"{name}.pdf")
    return Download(render_csv(view), "text/csv; charset=utf-8", f"{name}.csv")
