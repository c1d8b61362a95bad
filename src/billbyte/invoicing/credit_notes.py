"""Credit notes: finalized negative documents against a finalized invoice."""

from __future__ import annotations

from decimal import Decimal
from typing import Any, cast

from sqlalchemy import select
from sqlalchemy.orm import Session

from billbyte.audit.service import record
from billbyte.auth.subject import AuthSubject
from billbyte.invoicing import taxation
from billbyte.invoicing.documents import DocumentLine
from billbyte.invoicing.models import (
    CREDIT_NOTE,
    FINALIZED,
    INVOICE,
    TAX_INVOICE,
    Invoice,
)
from billbyte.invoicing.numbering import CREDIT_NOTE_SERIES, next_number
from billbyte.invoicing.parties import TaxSummary
from billbyte.invoicing.schemas import CreditNoteCreate
from billbyte.invoicing.views import (
    DRAFT_PREFIX,
    InvoiceView,
    get_view,
    insert_lines,
    invoice_out,
    stored_view,
)
from billbyte.kit.clock import utcnow
from billbyte.kit.errors import InvalidInput
from billbyte.kit.ids import new_id
from billbyte.kit.money import parse_decimal, round_money
from billbyte.kit.repository import get_owned
from billbyte.webhooks import service as webhooks


def create_credit_note(
    session: Session, subject: AuthSubject, invoice_id: str, data: CreditNoteCreate
) -> InvoiceView:
    """A finalized negative document against a finalized invoice, never crediting more than
    what is left of it. Against an invoice-mode invoice the amounts are net and the note
    carries the invoice's own tax, negative (``taxation.credit``)."""
    subject.require_write()
    if invoice_id.startswith(DRAFT_PREFIX):
        get_view(session, subject, invoice_id)  # 404 unless it is a live draft
        raise InvalidInput(
            "A draft cannot be credited: change its charges, or credit it once finalized.",
            code="invoice_not_finalized",
        )
    invoice = get_owned(
        session, Invoice, subject.msp_id, invoice_id, what="invoice", code="invoice_not_found"
    )
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
    number = next_number(session, subject.msp_id, CREDIT_NOTE_SERIES)
    earlier = list(
        session.scalars(select(Invoice).where(Invoice.credited_invoice_id == invoice.id))
    )
    taxed = invoice.mode == TAX_INVOICE
    # An invoice-mode invoice is credited by net amounts (its tax follows); a statement by
    # amounts of its total. Credit notes of invoice-mode invoices written before they carried
    # tax have no subtotal: their total was net.
    if taxed:
        credited = -sum(
            (n.subtotal if n.subtotal is not None else n.total for n in earlier), Decimal(0)
        )
        creditable, what = invoice.subtotal or Decimal(0), "before tax"
    else:
        credited = -sum((n.total for n in earlier), Decimal(0))
        creditable, what = invoice.total, ""
    total = sum(amounts, Decimal(0))
    remaining = creditable - credited
    if total > remaining:
        raise InvalidInput(
            f"Cannot credit {total} {invoice.currency}: invoice {invoice.number} is "
            f"{creditable}{' ' + what if what else ''}, {credited} already credited, "
            f"{max(remaining, Decimal(0))} left.",
            code="credit_exceeds_invoice",
            field="lines",
        )
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
    tax_fields: dict[str, Any] = {}
    if taxed:
        try:
            taxes = taxation.credit(
                lines,
                invoice.currency,
                cast(list[TaxSummary], invoice.taxes or []),
                [t for n in earlier for t in cast(list[TaxSummary], n.taxes or [])],
                last=total == remaining,
            )
        except taxation.CreditNeedsOneRate as exc:
            raise InvalidInput(
                f"Invoice {invoice.number}: {exc}, and a credit line does not say which "
                "rate it credits: a credit note needs an invoice of exactly one rate.",
                code="credit_note_several_tax_rates",
            ) from exc
        lines = [*taxes.lines, *taxes.tax_lines]
        total = -taxes.total
        tax_fields = {
            "mode": TAX_INVOICE,
            "seller": invoice.seller,
            "buyer": invoice.buyer,
            "subtotal": taxes.subtotal,
            "tax_total": taxes.tax_total,
            "taxes": [dict(t) for t in taxes.taxes],
        }
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
        line_count=len(lines),
        fx_rates=[],
        credited_invoice_id=invoice.id,
        reason=data.reason,
        finalized_at=now,
        **tax_fields,
    )
    session.add(note)
    session.flush()
    insert_lines(session, note, invoice.customer_id, lines)
    view = stored_view(note, None)
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
