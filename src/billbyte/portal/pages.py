"""The portal's pages. Thin: parse, call one function of ``portal.views``, render."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import HTMLResponse

from billbyte.api.deps import RuntimeDep, Uow
from billbyte.auth.web_sessions import PORTAL
from billbyte.exports import service as exports
from billbyte.kit.clock import utcnow
from billbyte.portal import budgets, views
from billbyte.portal.common import PAGES, Person, brand, customer_of
from billbyte.tenancy import repository as tenancy
from billbyte.web.signin import sign_in_routes

router = APIRouter(include_in_schema=False)
router.include_router(sign_in_routes(PORTAL, PAGES, tenancy.brand_of))
router.include_router(budgets.router)

PeriodParam = Annotated[str | None, Query(max_length=20)]


def _download(content: bytes | str, media_type: str, filename: str) -> Response:
    return Response(
        content,
        media_type=media_type,
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


@router.get("/portal", response_class=HTMLResponse)
def overview(
    request: Request, uow: Uow, subject: Person, period: PeriodParam = None
) -> HTMLResponse:
    page = views.overview(uow.session, subject, period, utcnow().date())
    return PAGES.render(
        request,
        "overview.html",
        brand=brand(uow.session, subject),
        subject=subject,
        locale=page.locale,
        active="/portal",
        customer_name=page.customer_name,
        page=page,
    )


@router.get("/portal/costs", response_class=HTMLResponse)
def costs(request: Request, uow: Uow, subject: Person) -> HTMLResponse:
    query = views.cost_query(request.query_params, utcnow().date())
    page_brand = brand(uow.session, subject)
    page = views.costs(uow.session, subject, query, utcnow().date(), page_brand.colour)
    return PAGES.render(
        request,
        "costs.html",
        brand=page_brand,
        subject=subject,
        locale=page.locale,
        active="/portal/costs",
        customer_name=page.customer_name,
        page=page,
    )


@router.get("/portal/costs.csv")
def costs_csv(request: Request, uow: Uow, subject: Person) -> Response:
    query = views.cost_query(request.query_params, utcnow().date())
    text = views.costs_csv(uow.session, subject, query)
    return _download(text, "text/csv; charset=utf-8", f"costs-{query.period}.csv")


@router.get("/portal/focus.csv")
def focus_csv(
    runtime: RuntimeDep, uow: Uow, subject: Person, period: PeriodParam = None
) -> Response:
    chosen = views.chosen_period(period, utcnow().date())
    customer_id = customer_of(subject)
    text = exports.customer_focus(
        runtime, uow.session, subject.as_auth_subject(), customer_id, chosen
    )
    return _download(text, "text/csv; charset=utf-8", f"focus-{customer_id}-{chosen}.csv")


@router.get("/portal/invoices", response_class=HTMLResponse)
def invoices(request: Request, uow: Uow, subject: Person) -> HTMLResponse:
    page = views.invoices_page(uow.session, subject)
    return PAGES.render(
        request,
        "invoices.html",
        brand=brand(uow.session, subject),
        subject=subject,
        locale=page.locale,
        active="/portal/invoices",
        customer_name=page.customer_name,
        page=page,
    )


# The downloads are the only routes under /portal/invoices/: ".pdf" and ".csv" end the id.
@router.get("/portal/invoices/{invoice_id}.pdf")
def invoice_pdf(invoice_id: str, uow: Uow, subject: Person) -> Response:
    document = views.invoice_document(uow.session, subject, invoice_id, "pdf")
    return _download(document.content, document.media_type, document.filename)


@router.get("/portal/invoices/{invoice_id}.csv")
def invoice_csv(invoice_id: str, uow: Uow, subject: Person) -> Response:
    document = views.invoice_document(uow.session, subject, invoice_id, "csv")
    return _download(document.content, document.media_type, document.filename)


# After the downloads, so "x.pdf" is not taken for an id: the invoice as a page, from the
# same template as its PDF (invoicing/templates/invoice_document.html).
@router.get("/portal/invoices/{invoice_id}", response_class=HTMLResponse)
def invoice_page(request: Request, invoice_id: str, uow: Uow, subject: Person) -> HTMLResponse:
    from billbyte.invoicing.pdf import TEMPLATES

    document = views.invoice_document(uow.session, subject, invoice_id, "html")
    page = views.invoices_page(uow.session, subject)
    return PAGES.render(
        request,
        "invoice.html",
        brand=brand(uow.session, subject),
        subject=subject,
        locale=page.locale,
        active="/portal/invoices",
        customer_name=page.customer_name,
        document=document.content,
        document_title=document.filename,
        invoice_id=invoice_id,
        css=(TEMPLATES / "invoice.css").read_text().split("@page")[0].replace("{{FONT_DIR}}", ""),
    )
