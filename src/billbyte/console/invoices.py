"""Console pages: invoices — invoice runs (start one, watch it, its results), invoices and
credit notes with their PDF/CSV, issuing a credit note; and the margin report."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from billbyte.api.deps import RuntimeDep, Uow
from billbyte.console import invoices_views as views
from billbyte.console.common import PAGES, ConsoleForm, Staff, acting, brand, text
from billbyte.kit.errors import Conflict, InvalidInput, NotFound

router = APIRouter(include_in_schema=False)
ACTIVE = "/console/invoices"
MARGIN = "/console/margin"
RUNNING = ("pending", "running")


def _list_page(
    request: Request,
    uow: Any,
    subject: Staff,
    *,
    status: str = "",
    kind: str = "",
    period: str = "",
    cursor: str = "",
    error: str | None = None,
    status_code: int = 200,
    run_period: str = "",
) -> HTMLResponse:
    try:
        page = views.invoices_page(
            uow.session, acting(subject), status=status, kind=kind, period=period, cursor=cursor
        )
    except InvalidInput as refused:
        page = views.invoices_page(
            uow.session, acting(subject), status="", kind="", period="", cursor=None
        )
        error, status_code = refused.detail, refused.status
    return PAGES.render(
        request,
        "invoices/list.html",
        brand=brand(uow.session, subject),
        subject=subject,
        active=ACTIVE,
        status_code=status_code,
        page=page,
        filters={"status": status, "kind": kind, "period": period},
        statuses=views.STATUSES,
        kinds=views.KINDS,
        error=error,
        run_period=run_period,
    )


@router.get("/console/invoices", response_class=HTMLResponse)
def invoice_list(
    request: Request,
    subject: Staff,
    uow: Uow,
    status: Annotated[str, Query(max_length=20)] = "",
    kind: Annotated[str, Query(max_length=20)] = "",
    period: Annotated[str, Query(max_length=20)] = "",
    cursor: Annotated[str, Query(max_length=200)] = "",
) -> HTMLResponse:
    return _list_page(request, uow, subject, status=status, kind=kind, period=period, cursor=cursor)


@router.post("/console/invoices/runs")
def start_run(request: Request, subject: Staff, form: ConsoleForm, runtime: RuntimeDep) -> Response:
    period = text(form, "period")[:20]
    with runtime.uow() as uow:
        try:
            run_id = views.start_run(
                uow.session, acting(subject), period, text(form, "force") == "yes"
            )
        except (InvalidInput, Conflict) as refused:  # Conflict: an incomplete billing profile
            uow.rollback()
            return _list_page(
                request,
                uow,
                subject,
                error=refused.detail,
                status_code=refused.status,
                run_period=period,
            )
        uow.commit()
    return RedirectResponse(f"/console/invoices/runs/{run_id}", status_code=303)


@router.get("/console/invoices/runs/{run_id}", response_class=HTMLResponse)
def run_page(request: Request, run_id: str, subject: Staff, uow: Uow) -> HTMLResponse:
    run = views.run_status(uow.session, acting(subject), run_id)
    return PAGES.render(
        request,
        "invoices/run.html",
        brand=brand(uow.session, subject),
        subject=subject,
        active=ACTIVE,
        run=run,
        running=run.status in RUNNING,
    )


# The downloads come before "/console/invoices/{invoice_id}", which would match "x.csv" too.
@router.get("/console/invoices/{invoice_id}.{kind}")
def download(invoice_id: str, kind: str, subject: Staff, uow: Uow) -> Response:
    if kind not in ("pdf", "csv"):
        raise NotFound("Invoices download as .pdf or .csv.")
    document = views.document(uow.session, acting(subject), invoice_id, kind)
    return Response(
        document.content,
        media_type=document.media_type,
        headers={"Content-Disposition": f'attachment; filename="{document.filename}"'},
    )


def _invoice_page(
    request: Request,
    uow: Any,
    subject: Staff,
    invoice_id: str,
    error: str | None = None,
    status_code: int = 200,
    form: dict[str, str] | None = None,
) -> HTMLResponse:
    detail = views.invoice(uow.session, acting(subject), invoice_id)
    return PAGES.render(
        request,
        "invoices/detail.html",
        brand=brand(uow.session, subject),
        subject=subject,
        active=ACTIVE,
        status_code=status_code,
        invoice=detail,
        error=error,
        form=form or {"description": "", "amount": "", "reason": ""},
    )


@router.get("/console/invoices/{invoice_id}", response_class=HTMLResponse)
def invoice_page(request: Request, invoice_id: str, subject: Staff, uow: Uow) -> HTMLResponse:
    return _invoice_page(request, uow, subject, invoice_id)


@router.post("/console/invoices/{invoice_id}/credit-notes")
def issue_credit_note(
    request: Request,
    invoice_id: str,
    subject: Staff,
    form: ConsoleForm,
    runtime: RuntimeDep,
) -> Response:
    values = {
        "description": text(form, "description")[:500],
        "amount": text(form, "amount")[:40],
        "reason": text(form, "reason")[:1000],
    }
    with runtime.uow() as uow:
        try:
            note_id = views.issue_credit_note(uow.session, acting(subject), invoice_id, **values)
        except (InvalidInput, Conflict) as refused:
            uow.rollback()
            return _invoice_page(
                request, uow, subject, invoice_id, refused.detail, refused.status, values
            )
        uow.commit()
    return RedirectResponse(f"/console/invoices/{note_id}", status_code=303)


@router.get(MARGIN, response_class=HTMLResponse)
def margin(
    request: Request,
    subject: Staff,
    uow: Uow,
    period: Annotated[str, Query(max_length=20)] = "",
    group_by: Annotated[str, Query(max_length=20)] = "customer",
) -> HTMLResponse:
    the_brand = brand(uow.session, subject)
    chosen = period or views.default_margin_period()
    page = views.margin_page(uow.session, acting(subject), chosen, group_by, the_brand.colour)
    return PAGES.render(
        request,
        "invoices/margin.html",
        brand=the_brand,
        subject=subject,
        active=MARGIN,
        page=page,
        groups=views.GROUPS,
    )
