from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query, Response, status

from billbyte.api.deps import DEFAULT_PAGE, Cursor, Limit, OptionalPeriodQuery, PeriodQuery, Uow
from billbyte.api.responses import CONFLICT, READ, READ_ONE, WRITE
from billbyte.auth.deps import Subject
from billbyte.invoicing import credit_notes, readiness, runs, settings, views
from billbyte.invoicing.csv_documents import render_csv
from billbyte.invoicing.einvoice import service as einvoice
from billbyte.invoicing.pdf import render_pdf
from billbyte.invoicing.schemas import (
    CreditNoteCreate,
    InvoiceDetail,
    InvoiceLinesOut,
    InvoiceOut,
    InvoiceReadinessOut,
    InvoiceRunCreate,
    InvoiceRunOut,
    InvoiceSettingsIn,
    InvoiceSettingsOut,
)
from billbyte.kit.pagination import ListResponse

router = APIRouter(tags=["invoicing"])


@router.get(
    "/v1/invoice-settings",
    summary="The MSP's invoicing settings (grace period, line grouping, invoice mode)",
    response_model=InvoiceSettingsOut,
    responses=READ,
)
def get_settings(subject: Subject, uow: Uow) -> InvoiceSettingsOut:
    current = settings.settings_for(uow.session, subject.msp_id)
    return settings.to_out(current)


@router.put(
    "/v1/invoice-settings",
    summary="Set the MSP's invoicing settings",
    response_model=InvoiceSettingsOut,
    responses=WRITE,
)
def put_settings(body: InvoiceSettingsIn, subject: Subject, uow: Uow) -> InvoiceSettingsOut:
    current = settings.set_settings(uow.session, subject, body)
    uow.commit()
    return settings.to_out(current)


@router.post(
    "/v1/invoice-runs",
    summary="Finalize every due invoice of a period (runs in the background)",
    description="In invoice mode, an MSP whose billing profile lacks a field every tax "
    "invoice needs (legal name, address, country, VAT id) is answered with 409 "
    "`invoice_incomplete`, its `missing` listing them (`seller.tax_id`, ...). A customer "
    "whose billing details lack a field (legal name, address, country; the VAT id under "
    "reverse charge) stays a draft: the run counts it under `failed` and names the fields "
    "in `errors`.",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=InvoiceRunOut,
    responses={**WRITE, **CONFLICT},
)
def create_run(body: InvoiceRunCreate, subject: Subject, uow: Uow) -> InvoiceRunOut:
    run = runs.create_run(uow.session, subject, body.period, body.force, enqueue_job=True)
    uow.commit()
    return runs.run_out(run)


@router.get(
    "/v1/invoice-runs",
    summary="List invoice runs",
    response_model=ListResponse[InvoiceRunOut],
    responses=READ,
)
def list_runs(
    subject: Subject, uow: Uow, cursor: Cursor = None, limit: Limit = DEFAULT_PAGE
) -> ListResponse[InvoiceRunOut]:
    return ListResponse.of(runs.list_runs(uow.session, subject, cursor, limit), runs.run_out)


@router.get(
    "/v1/invoice-runs/{run_id}",
    summary="An invoice run and its progress",
    response_model=InvoiceRunOut,
    responses=READ_ONE,
)
def get_run(run_id: str, subject: Subject, uow: Uow) -> InvoiceRunOut:
    return runs.run_out(runs.get_run(uow.session, subject, run_id))


@router.get(
    "/v1/invoices",
    summary="List invoices, credit notes and live drafts",
    response_model=ListResponse[InvoiceOut],
    responses=READ,
)
def list_invoices(
    subject: Subject,
    uow: Uow,
    status: Literal["draft", "finalized"] | None = None,
    period: OptionalPeriodQuery = None,
    customer_id: str | None = None,
    kind: Literal["invoice", "credit_note"] | None = None,
    cursor: Cursor = None,
    limit: Limit = DEFAULT_PAGE,
) -> ListResponse[InvoiceOut]:
    page = views.list_views(
        uow.session,
        subject,
        status=status,
        period=period,
        customer_id=customer_id,
        kind=kind,
        cursor=cursor,
        limit=limit,
    )
    return ListResponse.of(page, views.invoice_out)


@router.get(
    "/v1/invoices/readiness",
    summary="Before a run: the customers whose invoice of a period would stay a draft",
    description="Asks what an invoice run of `period` would refuse, without finalizing "
    "anything: in invoice mode, the billing-profile fields the whole run would be refused "
    "for (`seller_missing`), and each customer with open charges whose billing period ends "
    "with `period` whose billing details lack a field a tax invoice needs, or whose country "
    "has no tax rate (`blocked`). In statement mode nothing is refused.",
    response_model=InvoiceReadinessOut,
    responses=READ,
)
def get_readiness(period: PeriodQuery, subject: Subject, uow: Uow) -> InvoiceReadinessOut:
    return readiness.readiness_out(readiness.readiness(uow.session, subject, period))


# The downloads come before "/v1/invoices/{invoice_id}", which would match "x.csv" too.
@router.get(
    "/v1/invoices/{invoice_id}.csv",
    summary="Download an invoice as CSV (customer's locale)",
    response_class=Response,
    responses={200: {"content": {"text/csv": {}}, "description": "The CSV."}, **READ_ONE},
)
def download_csv(invoice_id: str, subject: Subject, uow: Uow) -> Response:
    view = views.get_view(uow.session, subject, invoice_id)
    return Response(
        render_csv(view),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{_filename(view)}.csv"'},
    )


@router.get(
    "/v1/invoices/{invoice_id}.pdf",
    summary="Download an invoice as PDF (customer's locale)",
    response_class=Response,
    responses={200: {"content": {"application/pdf": {}}, "description": "The PDF."}, **READ_ONE},
)
def download_pdf(invoice_id: str, subject: Subject, uow: Uow) -> Response:
    view = views.get_view(uow.session, subject, invoice_id)
    return Response(
        render_pdf(view, logo_url=views.logo_uri(uow.session, subject.msp_id, view)),
        media_type="application/pdf",
        headers={"Content-Disposition": f'attachment; filename="{_filename(view)}.pdf"'},
    )


_EINVOICE_ONLY = (
    " Only for finalized invoice-mode documents: a draft or a statement-mode document is "
    "answered with 409 `einvoice_not_available`."
)


@router.get(
    "/v1/invoices/{invoice_id}.xml",
    summary="Download the EN 16931 e-invoice XML (Factur-X CII, or UBL / PEPPOL BIS 3.0)",
    description="`syntax=cii` (default): the Factur-X / ZUGFeRD CII XML, profile EN 16931; "
    "`syntax=ubl`: the UBL 2.1 Invoice or CreditNote of PEPPOL BIS Billing 3.0." + _EINVOICE_ONLY,
    response_class=Response,
    responses={
        200: {"content": {"application/xml": {}}, "description": "The XML."},
        **READ_ONE,
        **CONFLICT,
    },
)
def download_xml(
    invoice_id: str,
    subject: Subject,
    uow: Uow,
    syntax: Annotated[
        Literal["cii", "ubl"], Query(description="cii (Factur-X, default) or ubl (PEPPOL).")
    ] = "cii",
) -> Response:
    filename, xml = einvoice.xml_document(uow.session, subject, invoice_id, syntax)
    return Response(
        xml,
        media_type="application/xml",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


@router.get(
    "/v1/invoices/{invoice_id}/facturx.pdf",
    summary="Download the Factur-X PDF/A-3 (the PDF with the CII XML embedded)",
    description="The invoice PDF with `factur-x.xml` (EN 16931 profile) attached." + _EINVOICE_ONLY,
    response_class=Response,
    responses={
        200: {"content": {"application/pdf": {}}, "description": "The PDF."},
        **READ_ONE,
        **CONFLICT,
    },
)
def download_facturx(invoice_id: str, subject: Subject, uow: Uow) -> Response:
    filename, data = einvoice.facturx_document(uow.session, subject, invoice_id)
    return Response(
        data,
        media_type="application/pdf",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


def _filename(view: views.InvoiceView) -> str:
    return view.number or view.id


@router.get(
    "/v1/invoices/{invoice_id}",
    summary="An invoice, credit note or live draft, with its lines",
    response_model=InvoiceDetail,
    responses=READ_ONE,
)
def get_invoice(invoice_id: str, subject: Subject, uow: Uow) -> InvoiceDetail:
    return views.invoice_detail(views.get_view(uow.session, subject, invoice_id))


@router.get(
    "/v1/invoices/{invoice_id}/lines",
    summary="The lines of an invoice (to embed in the MSP's own invoice)",
    response_model=InvoiceLinesOut,
    responses=READ_ONE,
)
def invoice_lines(
    invoice_id: str,
    subject: Subject,
    uow: Uow,
    cursor: Annotated[
        str | None, Query(description="Position of the last line of the previous page.")
    ] = None,
    limit: Limit = DEFAULT_PAGE,
) -> InvoiceLinesOut:
    view = views.get_view(uow.session, subject, invoice_id)
    lines, next_cursor = views.lines_page(view, cursor, limit)
    return InvoiceLinesOut(
        data=[views.line_out(li) for li in lines],
        next_cursor=next_cursor,
        has_more=next_cursor is not None,
    )


@router.post(
    "/v1/invoices/{invoice_id}/credit-notes",
    summary="Credit part of a finalized invoice (creates a finalized credit note)",
    description="Statement mode: the amounts credit the invoice's total. Invoice mode: the "
    "amounts are net; the credit note carries the invoice's own tax per rate (category, "
    "rate, note), negative, computed as at close, so that crediting the whole net gives "
    "exactly the negative of the invoice's taxes and total.",
    status_code=status.HTTP_201_CREATED,
    response_model=InvoiceDetail,
    responses=WRITE,
)
def create_credit_note(
    invoice_id: str, body: CreditNoteCreate, subject: Subject, uow: Uow
) -> InvoiceDetail:
    view = credit_notes.create_credit_note(uow.session, subject, invoice_id, body)
    uow.commit()
    return views.invoice_detail(view)
