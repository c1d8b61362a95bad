"""GET /v1/invoices/{id}.xml and /v1/invoices/{id}/facturx.pdf on stored documents.

The invoice-mode documents are written straight through the ORM (the close-time taxation
is another part of issue 12), from the hand-written views of ``documents.py``."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

import facturx  # type: ignore[import-untyped]
import pytest
from lxml import etree  # type: ignore[import-untyped]

from billbyte.invoicing.models import Invoice
from billbyte.invoicing.views import InvoiceView, insert_lines
from billbyte.runtime import Runtime
from tests.conftest import Tenant
from tests.einvoice import documents
from tests.invoicing.conftest import add_charges, close, customer

pytestmark = pytest.mark.storage

RAM = {"ram": "urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:100"}
CBC = {"cbc": "urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2"}


def store(runtime: Runtime, msp_id: str, customer_id: str, view: InvoiceView, id_: str) -> str:
    with runtime.uow() as uow:
        invoice = Invoice(
            id=id_,
            msp_id=msp_id,
            customer_id=customer_id,
            kind=view.kind,
            status="finalized",
            number=view.number,
            period_start=view.period_start,
            period_end=view.period_end,
            billing_cycle=view.billing_cycle,
            issue_date=view.issue_date,
            currency=view.currency,
            locale=view.locale,
            customer_name=view.customer_name,
            customer_external_id=view.customer_external_id,
            seller_name=view.seller_name,
            grouping=view.grouping,
            total=view.total,
            total_exact=view.total_exact,
            line_count=view.line_count,
            fx_rates=[],
            credited_invoice_id=view.credited_invoice_id,
            reason=view.reason,
            finalized_at=view.finalized_at,
            mode=view.mode,
            due_date=view.due_date,
            payment_terms_days=view.payment_terms_days,
            seller=dict(view.seller or {}),
            buyer=dict(view.buyer or {}),
            subtotal=view.subtotal,
            tax_total=view.tax_total,
            taxes=[dict(t) for t in view.taxes],
        )
        uow.session.add(invoice)
        uow.session.flush()
        insert_lines(uow.session, invoice, customer_id, view.lines or [])
        uow.commit()
    return id_


def _grand_total(xml: bytes) -> Decimal:
    return Decimal(etree.fromstring(xml).findtext(".//ram:GrandTotalAmount", namespaces=RAM))


def test_xml_and_facturx_downloads_of_an_invoice_mode_invoice(
    tenant: Tenant, runtime: Runtime
) -> None:
    cid = customer(tenant, "DE-19")
    invoice_id = store(runtime, tenant.msp_id, cid, documents.german(), "inv_einv_de")

    response = tenant.get(f"/v1/invoices/{invoice_id}.xml")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/xml"
    assert 'filename="INV-000042.xml"' in response.headers["content-disposition"]
    assert facturx.xml_check_xsd(response.content, flavor="factur-x", level="en16931")
    # the e-invoice's total is the JSON invoice's total
    json_total = Decimal(tenant.get(f"/v1/invoices/{invoice_id}").json()["total"])
    assert _grand_total(response.content) == json_total == Decimal("242.21")
    assert tenant.get(f"/v1/invoices/{invoice_id}.xml").content == response.content

    ubl = tenant.get(f"/v1/invoices/{invoice_id}.xml", params={"syntax": "ubl"})
    assert ubl.status_code == 200, ubl.text
    assert 'filename="INV-000042.ubl.xml"' in ubl.headers["content-disposition"]
    assert facturx.xml_check_xsd(ubl.content, flavor="ubl-2.1-invoice")
    payable = etree.fromstring(ubl.content).findtext(".//cbc:PayableAmount", namespaces=CBC)
    assert Decimal(payable) == json_total
    assert tenant.get(f"/v1/invoices/{invoice_id}.xml", params={"syntax": "pdf"}).status_code == 422

    pdf = tenant.get(f"/v1/invoices/{invoice_id}/facturx.pdf")
    assert pdf.status_code == 200, pdf.text
    assert pdf.headers["content-type"] == "application/pdf"
    assert 'filename="INV-000042.facturx.pdf"' in pdf.headers["content-disposition"]
    assert facturx.get_xml_from_pdf(pdf.content) == ("factur-x.xml", response.content)
    # a finalized invoice downloads byte-identical every time
    assert tenant.get(f"/v1/invoices/{invoice_id}/facturx.pdf").content == pdf.content


def test_a_credit_note_refers_to_its_invoice(tenant: Tenant, runtime: Runtime) -> None:
    cid = customer(tenant, "DE-CN")
    credited = store(
        runtime, tenant.msp_id, cid, replace(documents.german(), number="INV-000007"), "inv_cred"
    )
    note = replace(documents.credit_note(), credited_invoice_id=credited)
    note_id = store(runtime, tenant.msp_id, cid, note, "inv_note")
    response = tenant.get(f"/v1/invoices/{note_id}.xml")
    assert response.status_code == 200, response.text
    tree = etree.fromstring(response.content)
    assert [e.text for e in tree.iterfind(".//{*}ExchangedDocument/ram:TypeCode", RAM)] == ["381"]
    assert (
        tree.findtext(".//ram:InvoiceReferencedDocument/ram:IssuerAssignedID", namespaces=RAM)
        == "INV-000007"
    )
    json_total = Decimal(tenant.get(f"/v1/invoices/{note_id}").json()["total"])
    assert json_total == Decimal("-119.00")
    assert _grand_total(response.content) == -json_total
    ubl = tenant.get(f"/v1/invoices/{note_id}.xml", params={"syntax": "ubl"})
    assert facturx.xml_check_xsd(ubl.content, flavor="ubl-2.1-creditnote")


def test_statement_documents_drafts_and_other_tenants(
    tenant: Tenant, other_tenant: Tenant, runtime: Runtime
) -> None:
    cid = customer(tenant, "ST-1")
    add_charges(runtime, tenant.msp_id, cid, "2026-09", ["100.00"])
    close(runtime, tenant.msp_id, "2026-09")
    add_charges(runtime, tenant.msp_id, cid, "2026-10", ["5.00"], key_prefix="o")
    statement = tenant.get("/v1/invoices", params={"status": "finalized"}).json()["data"][0]
    for path in (f"{statement['id']}.xml", f"{statement['id']}/facturx.pdf"):
        response = tenant.get(f"/v1/invoices/{path}")
        assert response.status_code == 409, response.text
        problem = response.json()
        assert problem["code"] == "einvoice_not_available"
        assert "statement-mode" in problem["detail"]
        assert "only for invoice-mode documents" in problem["detail"]
    draft = tenant.get(f"/v1/invoices/draft_{cid}_2026-10.xml")
    assert draft.status_code == 409
    assert "draft" in draft.json()["detail"]

    other = customer(tenant, "DE-2")
    invoice_id = store(runtime, tenant.msp_id, other, documents.german(), "inv_einv_iso")
    for path in (f"{invoice_id}.xml", f"{invoice_id}.xml?syntax=ubl", f"{invoice_id}/facturx.pdf"):
        assert other_tenant.get(f"/v1/invoices/{path}").status_code == 404
        assert tenant.get(f"/v1/invoices/{path}").status_code == 200
