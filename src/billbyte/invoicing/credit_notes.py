"""Credit notes: finalized negative documents against a finalized invoice."""

from __future__ import annotations

from dataclasses import replace
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
from billbyte.invoicing.schemas import CreditNoteCreate, CreditNoteLineIn
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
from billbyte.tenancy.repository import current_logo_version
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
    taxed = invoice.mode == TAX_INVOICE
    invoice_taxes = cast(list[TaxSummary], invoice.taxes or []) if taxed else []
    named = [_named_rate(invoice, invoice_taxes, i, line) for i, line in enumerate(data.lines)]
    # The counter's row lock serialises the MSP's credit notes: two at once cannot both
    # take the last of an invoice's balance.
    number = next_number(session, subject.msp_id, CREDIT_NOTE_SERIES)
    earlier = list(
        session.scalars(select(Invoice).where(Invoice.credited_invoice_id == invoice.id))
    )
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
    seller = _seller_snapshot(session, invoice)
    tax_fields: dict[str, Any] = {"seller": seller}
    if taxed:
        credited_taxes = [t for n in earlier for t in cast(list[TaxSummary], n.taxes or [])]
        untaxed_net = -sum((n.total for n in earlier if n.subtotal is None), Decimal(0))
        left = taxation.left_to_credit(invoice_taxes, credited_taxes, untaxed_net)
        try:
            lines = _rated_lines(invoice, data, amounts, named, left)
            taxes = taxation.credit(
                lines, invoice.currency, invoice_taxes, credited_taxes, untaxed_net=untaxed_net
            )
        except taxation.CreditExceedsInvoice as exc:
            raise InvalidInput(
                f"Cannot credit {total} {invoice.currency} of invoice {invoice.number} as "
                f"asked: {exc}.",
                code="credit_exceeds_invoice",
                field="lines",
            ) from exc
        lines = [*taxes.lines, *taxes.tax_lines]
        total = -taxes.total
        tax_fields = {
            "mode": TAX_INVOICE,
            "seller": seller,
            "buyer": invoice.buyer,
            "subtotal": taxes.subtotal,
            "tax_total": taxes.tax_total,
            "taxes": [dict(t) for t in taxes.taxes],
        }
    else:
        lines = [
            _credit_line(invoice, index + 1, line.description, amount)
            for index, (line, amount) in enumerate(zip(data.lines, amounts, strict=True))
        ]
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


def _seller_snapshot(session: Session, invoice: Invoice) -> dict[str, Any]:
    """The credited invoice's seller, with the logo the brand shows now: a credit note shows
    the logo of its own issue forever (``views.logo_uri`` reads the version named here), as
    an invoice shows the logo of its close."""
    seller: dict[str, Any] = dict(invoice.seller or {"legal_name": invoice.seller_name})
    seller.pop("logo_version", None)
    logo = current_logo_version(session, invoice.msp_id)
    if logo is not None:
        seller["logo_version"] = str(logo)
    return seller


def _named_rate(
    invoice: Invoice, invoice_taxes: list[TaxSummary], index: int, line: CreditNoteLineIn
) -> taxation.RateKey | None:
    """The invoice's rate a credit line names (``tax_rate``, ``tax_category``), or None."""
    if line.tax_rate is None and line.tax_category is None:
        return None
    where = f"lines.{index}"
    if invoice.mode != TAX_INVOICE:
        raise InvalidInput(
            f"{where}: invoice {invoice.number} is a statement (no tax): a credit line "
            "cannot name a tax rate.",
            code="credit_tax_rate_unknown",
            field=f"{where}.tax_rate",
        )
    percent = None if line.tax_rate is None else parse_decimal(line.tax_rate, "tax_rate")
    keys = [taxation.rate_key(t) for t in invoice_taxes]
    found = [
        (category, rate)
        for category, rate in keys
        if (percent is None or rate == percent)
        and (line.tax_category is None or category == line.tax_category)
    ]
    if len(found) == 1:
        return found[0]
    rates = ", ".join(taxation.rate_label(key) for key in sorted(keys)) or "none"
    if found:
        raise InvalidInput(
            f"{where}: invoice {invoice.number} has several rates of {line.tax_rate} % "
            f"({rates}): name the tax_category too.",
            code="credit_tax_rate_ambiguous",
            field=f"{where}.tax_category",
        )
    raise InvalidInput(
        f"{where}: invoice {invoice.number} has no such tax rate; its rates: {rates}.",
        code="credit_tax_rate_unknown",
        field=f"{where}.tax_rate",
    )


def _rated_lines(
    invoice: Invoice,
    data: CreditNoteCreate,
    amounts: list[Decimal],
    named: list[taxation.RateKey | None],
    left: dict[taxation.RateKey, Decimal],
) -> list[DocumentLine]:
    """The note's net lines, each at one of the invoice's rates (``taxation.rate_parts``):
    a request line shared among several rates becomes one line per rate, its description
    ending with the rate."""
    parts = taxation.rate_parts(list(zip(amounts, named, strict=True)), left, invoice.currency)
    rated: list[DocumentLine] = []
    for line, key, shares in zip(data.lines, named, parts, strict=True):
        for rate, share in shares:
            description = line.description
            if key is None and len(left) > 1:
                suffix = f" — {taxation.rate_label(rate)}"
                description = description[: 500 - len(suffix)] + suffix
            credit_line = _credit_line(invoice, len(rated) + 1, description, share)
            rated.append(replace(credit_line, tax_category=rate[0], tax_rate=rate[1]))
    return rated


def _credit_line(
    invoice: Invoice, position: int, description: str, amount: Decimal
) -> DocumentLine:
    return DocumentLine(
        position=position,
        kind="credit",
        description=description,
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
