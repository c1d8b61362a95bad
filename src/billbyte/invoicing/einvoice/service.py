"""E-invoice downloads of a finalized invoice-mode document: the CII or UBL XML, and the
Factur-X PDF/A-3. Drafts and statement-mode documents are refused with a 409 problem
(``einvoice_not_available``); another MSP's id is a 404, as everywhere."""

from __future__ import annotations

from typing import Literal

from sqlalchemy import select
from sqlalchemy.orm import Session

from billbyte.auth.subject import AuthSubject
from billbyte.invoicing import pdf, views
from billbyte.invoicing.einvoice import cii, facturx_pdf, model, ubl
from billbyte.invoicing.models import Invoice

Syntax = Literal["cii", "ubl"]


def base_pdf(view: views.InvoiceView, logo_url: str | None = None) -> bytes:
    """The invoice's own PDF, into which the Factur-X XML is embedded (the one call to the
    PDF renderer, so a change of its signature is adapted here); ``logo_url`` is the
    ``data:`` URI of ``views.logo_uri``."""
    return pdf.render_pdf(view, logo_url=logo_url)


def _load(
    session: Session, subject: AuthSubject, invoice_id: str
) -> tuple[views.InvoiceView, model.EInvoice]:
    view = views.get_view(session, subject, invoice_id)
    preceding = None
    if view.credited_invoice_id:
        preceding = session.scalar(
            select(Invoice.number).where(
                Invoice.id == view.credited_invoice_id, Invoice.msp_id == subject.msp_id
            )
        )
    return view, model.build(view, preceding)


def xml_document(
    session: Session, subject: AuthSubject, invoice_id: str, syntax: Syntax
) -> tuple[str, bytes]:
    """(file name, XML) of a finalized invoice-mode document, validated against its XSD."""
    _, doc = _load(session, subject, invoice_id)
    if syntax == "ubl":
        xml = ubl.build_ubl(doc)
        ubl.validate(xml)
        return f"{doc.number}.ubl.xml", xml
    xml = cii.build_cii(doc)
    cii.validate(xml)
    return f"{doc.number}.xml", xml


def facturx_document(session: Session, subject: AuthSubject, invoice_id: str) -> tuple[str, bytes]:
    """(file name, Factur-X PDF/A-3) of a finalized invoice-mode document."""
    view, doc = _load(session, subject, invoice_id)
    seller = str(doc.seller.get("legal_name") or view.seller_name)
    kind = "Credit note" if doc.type_code == model.CREDIT_NOTE_TYPE else "Invoice"
    assert view.finalized_at is not None  # model.build accepts finalized documents only
    data = facturx_pdf.embed(
        base_pdf(view, views.logo_uri(session, subject.msp_id, view)),
        cii.build_cii(doc),
        moment=view.finalized_at,
        title=f"{seller}: {kind} {doc.number}",
        author=seller,
        lang=view.locale,
    )
    return f"{doc.number}.facturx.pdf", data
