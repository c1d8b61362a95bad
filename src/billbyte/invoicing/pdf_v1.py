"""The invoice as a PDF, with fpdf2 (pure Python: no system packages).

Text uses the PDF core font Helvetica in the Windows-1252 encoding, which covers Western
European languages and the €, £ and ¥ signs; a character outside it is printed as ``?``.
The output is deterministic — the creation date is the finalization time — so a finalized
invoice downloads byte-identical every time.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from fpdf import FPDF
from fpdf.enums import TableCellFillMode

from billbyte.invoicing.csv_documents import LocaleFormat
from billbyte.invoicing.views import InvoiceView

ENCODING = "windows-1252"
_HEADINGS = (
    "#",
    "Description",
    "Service period",
    "Vendor reference",
    "Quantity",
    "Unit",
    "Unit price",
    "Amount",
)
_WIDTHS = (8, 78, 40, 40, 28, 22, 28, 33)


def _safe(text: str) -> str:
    text = text.replace("→", "->")
    return text.encode(ENCODING, errors="replace").decode(ENCODING)


def render_pdf(view: InvoiceView) -> bytes:
    fmt = LocaleFormat(view.locale)
    pdf = FPDF(orientation="landscape", format="A4")
    pdf.core_fonts_encoding = ENCODING
    pdf.set_creation_date(view.finalized_at or datetime(2000, 1, 1, tzinfo=UTC))
    pdf.set_title(_safe(f"{view.number or 'Draft invoice'} {view.customer_name}"))
    pdf.set_author(_safe(view.seller_name or "BillByte"))
    pdf.set_creator("BillByte")
    pdf.set_producer("BillByte")
    pdf.set_auto_page_break(auto=True, margin=15)
    pdf.add_page()

    title = "Credit note" if view.kind == "credit_note" else "Invoice"
    if view.status == "draft":
        title = "DRAFT invoice (not final: follows new data until it is finalized)"
    pdf.set_font("helvetica", "B", 16)
    pdf.cell(0, 9, _safe(f"{title} {view.number or ''}".strip()), new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("helvetica", size=10)
    facts = [
        ("From", view.seller_name),
        ("To", f"{view.customer_name} ({view.customer_external_id})"),
        ("Invoice date", fmt.day(view.issue_date)),
        (
            "Billing period",
            f"{view.months[0]} - {view.months[-1]}" if view.months else view.period_end,
        ),
        ("Currency", view.currency),
    ]
    if view.credited_invoice_id:
        facts.append(("Credits invoice", view.credited_invoice_id))
    if view.reason:
        facts.append(("Reason", view.reason))
    if view.due_at:
        facts.append(("Final from", fmt.day(view.due_at.date())))
    for label, value in facts:
        pdf.set_font("helvetica", "B", 10)
        pdf.cell(35, 6, _safe(label))
        pdf.set_font("helvetica", size=10)
        pdf.cell(0, 6, _safe(value), new_x="LMARGIN", new_y="NEXT")
    pdf.ln(4)

    pdf.set_font("helvetica", size=8)
    with pdf.table(
        col_widths=_WIDTHS,
        text_align=("RIGHT", "LEFT", "LEFT", "LEFT", "RIGHT", "LEFT", "RIGHT", "RIGHT"),
        cell_fill_color=245,
        cell_fill_mode=TableCellFillMode.ROWS,
        line_height=4.5,
    ) as table:
        table.row([_safe(h) for h in _HEADINGS])
        for line in view.lines or []:
            description = line.description
            if line.original_period:
                description += f" (period {line.original_period})"
            period = " - ".join(
                fmt.day(d) for d in (line.service_start, line.service_end) if d
            ) or (line.period)
            table.row(
                [
                    str(line.position),
                    _safe(description),
                    _safe(period),
                    _safe(line.vendor_reference or ""),
                    _safe(fmt.number(line.quantity)),
                    _safe(line.unit or ""),
                    _safe(fmt.number(line.unit_price)),
                    _safe(fmt.money(line.amount, line.currency)),
                ]
            )
    pdf.ln(3)
    pdf.set_font("helvetica", "B", 11)
    pdf.cell(
        0,
        7,
        _safe(f"Total: {fmt.money(view.total, view.currency)}"),
        align="R",
        new_x="LMARGIN",
        new_y="NEXT",
    )
    if view.fx_rates:
        pdf.ln(2)
        pdf.set_font("helvetica", "B", 9)
        pdf.cell(0, 5, "Exchange rates used", new_x="LMARGIN", new_y="NEXT")
        pdf.set_font("helvetica", size=8)
        text = "; ".join(
            f"{fmt.day(r['date'])} {r['base']}->{r['quote']} {fmt.number(Decimal(r['rate']))}"
            for r in view.fx_rates
        )
        pdf.multi_cell(0, 4, _safe(text), new_x="LMARGIN", new_y="NEXT")
    return bytes(pdf.output())
