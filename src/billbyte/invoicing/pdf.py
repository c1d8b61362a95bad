"""The invoice document: one Jinja HTML/CSS template rendered to PDF with WeasyPrint and
included by the portal's invoice page, so the two cannot drift.

Documents of version 1 (finalized before issue 12) keep the fpdf2 renderer of
``pdf_v1`` byte-for-byte. Version 2 is deterministic for a finalized document: the PDF's
dates are the finalization time and WeasyPrint writes no random identifiers, so two renders
are byte-identical. The fonts are embedded (``@font-face`` in ``invoice.css``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from babel.numbers import format_decimal
from jinja2 import Environment, FileSystemLoader, select_autoescape

from billbyte.invoicing import pdf_v1
from billbyte.invoicing.csv_documents import LocaleFormat
from billbyte.invoicing.documents import (
    VENDOR_LABELS,
    DocumentLine,
    readable_description,
    readable_unit,
)
from billbyte.invoicing.views import InvoiceView

TEMPLATES = Path(__file__).parent / "templates"
FONT_DIR = Path("/usr/share/fonts/truetype/dejavu")
_env = Environment(
    loader=FileSystemLoader(TEMPLATES),
    autoescape=select_autoescape(["html"]),
    trim_blocks=True,
    lstrip_blocks=True,
)
_MONTH = {"en": "%B %Y"}
LOCAL_PROTOCOLS = frozenset({"file", "data"})


@dataclass
class Row:
    position: int
    description: str
    period: str
    reference: str
    quantity: str
    unit_price: str
    amount: str
    kind: str
    tax: str


@dataclass
class Group:
    title: str
    rows: list[Row]
    subtotal: str


def quantity_text(fmt: LocaleFormat, quantity: Decimal | None, unit: str | None) -> str:
    """``1492.000000000000000000`` Hrs → ``1,492 h`` (decimals per the unit table)."""
    if quantity is None:
        return ""
    short, low, high = readable_unit(unit)
    pattern = "#,##0" + ("." + "0" * low + "#" * (high - low) if high else "")
    value = quantity.quantize(Decimal(1).scaleb(-high)) if high else quantity.quantize(Decimal(1))
    text = str(format_decimal(value, format=pattern, locale=fmt.locale))
    return f"{text} {short}".strip()


def period_text(fmt: LocaleFormat, view: InvoiceView) -> str:
    """``September 2026``, ``September – November 2026`` or ``1–15 Sep 2026``."""
    from babel.dates import format_date

    loc = fmt.locale
    start = date.fromisoformat(_day(view.period_start, True))
    end = date.fromisoformat(_day(view.period_end, False))
    if start.day == 1 and _is_month_end(end):
        first = str(format_date(start, "LLLL y", locale=fmt.locale))
        if (start.year, start.month) == (end.year, end.month):
            return first
        return (
            f"{format_date(start, 'LLLL', locale=loc)} – {format_date(end, 'LLLL y', locale=loc)}"
        )
    if (start.year, start.month) == (end.year, end.month):
        return f"{start.day}–{format_date(end, 'd MMM y', locale=fmt.locale)}"
    return (
        f"{format_date(start, 'd MMM y', locale=loc)} – {format_date(end, 'd MMM y', locale=loc)}"
    )


def _day(value: str, first: bool) -> str:
    if len(value) == 7:  # a month
        if first:
            return value + "-01"
        year, month = int(value[:4]), int(value[5:7])
        nxt = date(year + month // 12, month % 12 + 1, 1)
        return date.fromordinal(nxt.toordinal() - 1).isoformat()
    return value


def _is_month_end(day: date) -> bool:
    return date.fromordinal(day.toordinal() + 1).day == 1


def fx_summary(fmt: LocaleFormat, rates: Sequence[dict[str, Any]]) -> list[dict[str, str]]:
    """One entry per currency pair: date range and the distinct rates applied (or their
    average when there are more than three distinct ones)."""
    pairs: dict[tuple[str, str], list[tuple[str, Decimal]]] = {}
    for rate in rates:
        pairs.setdefault((rate["base"], rate["quote"]), []).append(
            (str(rate["date"]), Decimal(str(rate["rate"])))
        )
    out = []
    for (base, quote), items in sorted(pairs.items()):
        days = sorted(d for d, _ in items)
        distinct = sorted({r for _, r in items})
        if len(distinct) <= 3:
            shown = ", ".join(fmt.number(r) for r in distinct)
            label = "rate" if len(distinct) == 1 else "distinct rates"
        else:
            average = (sum((r for _, r in items), Decimal(0)) / len(items)).quantize(
                Decimal("1e-6")
            )
            shown = fmt.number(average)
            label = f"average of {len(items)} daily rates"
        out.append(
            {
                "pair": f"{base} → {quote}",
                "range": f"{fmt.day(days[0])} – {fmt.day(days[-1])}"
                if days[0] != days[-1]
                else fmt.day(days[0]),
                "label": label,
                "rates": shown,
                "count": str(len(items)),
            }
        )
    return out


def _group_title(line: DocumentLine, grouping: str) -> str:
    if line.kind != "usage":
        return {"fee": "Fees", "adjustment": "Adjustments"}.get(line.kind, line.kind.title())
    vendor = VENDOR_LABELS.get(line.vendor or "", line.vendor or "")
    if grouping == "account":
        return f"{vendor} — {line.vendor_reference or 'no account'}"
    if grouping == "service_and_account":
        return f"{vendor} — {line.service_name or ''} — {line.vendor_reference or ''}"
    return f"{vendor} — {line.service_name or ''}"


def groups_of(fmt: LocaleFormat, view: InvoiceView) -> list[Group]:
    groups: dict[str, tuple[list[Row], Decimal]] = {}
    for line in view.lines or []:
        if line.kind == "tax":
            continue  # shown once, in the tax summary under the lines
        qty = quantity_text(fmt, line.quantity, line.unit)
        if line.service_start and line.service_end and line.service_start != line.service_end:
            period = f"{fmt.day(line.service_start)} – {fmt.day(line.service_end)}"
        else:
            period = fmt.day(line.service_start) if line.service_start else line.period
        if line.original_period:
            period += f" (for {line.original_period})"
        row = Row(
            position=line.position,
            description=readable_description(line, qty),
            period=period,
            reference=line.vendor_reference or "",
            quantity=qty,
            unit_price=fmt.number(line.unit_price) if line.unit_price is not None else "",
            amount=fmt.money(line.amount, line.currency),
            kind=line.kind,
            tax=f"{fmt.number(line.tax_rate)} %" if line.tax_rate is not None else "",
        )
        title = _group_title(line, view.grouping)
        rows, subtotal = groups.get(title, ([], Decimal(0)))
        rows.append(row)
        groups[title] = (rows, subtotal + line.amount)
    return [Group(t, r, fmt.money(s, view.currency)) for t, (r, s) in groups.items()]


def context(view: InvoiceView) -> dict[str, Any]:
    """What ``invoice_document.html`` renders: shared by the PDF and the portal page."""
    fmt = LocaleFormat(view.locale)
    if view.kind == "credit_note":
        title = "Credit note"
    elif view.mode == "invoice":
        title = "Invoice"
    else:
        title = "Statement"
    taxes = [
        {
            **t,
            "rate_text": f"{fmt.number(Decimal(t['rate']))} %",
            "taxable_text": fmt.money(Decimal(t["taxable"]), view.currency),
            "tax_text": fmt.money(Decimal(t["tax"]), view.currency),
        }
        for t in view.taxes
    ]
    return {
        "view": view,
        "title": title,
        "draft": view.status == "draft",
        "period": period_text(fmt, view),
        "issue_date": fmt.day(view.issue_date),
        "due_date": fmt.day(view.due_date) if view.due_date else "",
        "groups": groups_of(fmt, view),
        "fx": fx_summary(fmt, view.fx_rates),
        "show_tax": view.mode == "invoice",
        "taxes": taxes,
        "subtotal": fmt.money(view.subtotal, view.currency) if view.subtotal is not None else "",
        "tax_total": fmt.money(view.tax_total, view.currency) if view.tax_total is not None else "",
        "total": fmt.money(view.total, view.currency),
        "seller": view.seller or {"legal_name": view.seller_name},
        "buyer": view.buyer or {"legal_name": view.customer_name},
    }


def render_html(view: InvoiceView, *, logo_url: str | None = None, standalone: bool = True) -> str:
    css = (TEMPLATES / "invoice.css").read_text().replace("{{FONT_DIR}}", FONT_DIR.as_uri())
    template = _env.get_template("invoice_page.html")
    return template.render(**context(view), css=css, logo_url=logo_url, standalone=standalone)


def render_pdf(view: InvoiceView, *, pdfa: bool = False, logo_url: str | None = None) -> bytes:
    """The PDF of ``view``: version 1 with fpdf2 (unchanged bytes), later versions with
    WeasyPrint; ``pdfa`` writes PDF/A-3b (the e-invoice embeds its XML afterwards).
    ``logo_url`` is the seller's logo as a ``data:`` URI (``views.logo_uri``, None before
    version 3); no other scheme than ``data:`` and ``file:`` is ever fetched."""
    if view.document_version == 1:
        return pdf_v1.render_pdf(view)
    from weasyprint import HTML, URLFetcher  # type: ignore[import-untyped]

    when = (view.finalized_at or datetime(2000, 1, 1, tzinfo=UTC)).astimezone(UTC)
    html = render_html(view, logo_url=logo_url).replace(
        "{{PDF_DATE}}", when.strftime("%Y-%m-%dT%H:%M:%SZ")
    )
    options: dict[str, Any] = {"uncompressed_pdf": False}
    if pdfa:
        options["pdf_variant"] = "pdf/a-3b"
    # Only the fonts and styles on disk and ``data:`` URIs (the logo, read from the database):
    # rendering never reaches the network, whatever a template or a URL says.
    fetcher = URLFetcher(allowed_protocols=LOCAL_PROTOCOLS)
    out = HTML(string=html, base_url=str(TEMPLATES), url_fetcher=fetcher).write_pdf(**options)
    assert out is not None
    return bytes(out)


def document_html(view: InvoiceView) -> str:
    """The document alone (``invoice_document.html``), for the portal's invoice page: the
    same template and context as the PDF, so the two cannot drift."""
    return _env.get_template("invoice_document.html").render(**context(view), logo_url=None)
