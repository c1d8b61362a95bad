"""CSV download of an invoice, and the locale formatting shared with the PDF.

Numbers and dates are formatted for the customer's locale with Babel (``de_DE``:
``1.234,56 €``, ``01.11.2026``). Where the locale writes decimals with a comma the CSV uses
``;`` between fields, as spreadsheets of that locale expect. Each line also carries its
amount as a plain decimal (``amount_decimal``) for programs; the JSON API is the
machine-readable form.

Text cells (customer name, descriptions, vendor references, units) are neutralised against
spreadsheet formulas by the one CSV writer (``billbyte.kit.csv_writer``); the number
columns (``NUMERIC``) are written as formatted, so ``-12,50 €`` stays a number.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from babel import Locale, UnknownLocaleError
from babel.dates import format_date
from babel.numbers import format_currency, format_decimal, get_decimal_symbol

from billbyte.invoicing.documents import DocumentLine
from billbyte.invoicing.models import TAX, TAX_INVOICE
from billbyte.invoicing.views import InvoiceView, money_text
from billbyte.kit.csv_writer import CsvTable
from billbyte.kit.money import plain_decimal

COLUMNS = [
    "record",
    "document",
    "number",
    "issue_date",
    "customer",
    "position",
    "description",
    "vendor",
    "vendor_reference",
    "service_period_start",
    "service_period_end",
    "original_period",
    "quantity",
    "unit",
    "unit_price",
    "amount",
    "currency",
    "amount_decimal",
]
# Formatted by BillByte from Decimals (never vendor text): left as they are in the CSV.
NUMERIC = ("quantity", "unit_price", "amount", "amount_decimal")
# Invoice-mode documents of version 3 and later: the columns above, then the line's tax and
# the document's parties and terms (repeated on every row, like ``number`` and
# ``customer``). Appended at the end, so a program reading the earlier columns by position
# reads them unchanged.
TAX_COLUMNS = [
    *COLUMNS,
    "tax_category",
    "tax_rate",
    "taxable_amount_decimal",
    "due_date",
    "payment_terms_days",
    "seller",
    "seller_vat_id",
    "buyer",
    "buyer_tax_id",
    "po_number",
]
TAX_NUMERIC = (*NUMERIC, "tax_rate", "taxable_amount_decimal", "payment_terms_days")
TAX_COLUMNS_SINCE = 3  # the document version that added TAX_COLUMNS


class LocaleFormat:
    """Formatting in one locale; unknown locales fall back to English."""

    def __init__(self, locale: str) -> None:
        try:
            self.locale = Locale.parse(locale or "en")
        except (UnknownLocaleError, ValueError):
            self.locale = Locale.parse("en")

    def money(self, amount: Decimal, currency: str) -> str:
        return str(format_currency(amount, currency, locale=self.locale))

    def number(self, value: Decimal | None) -> str:
        if value is None:
            return ""
        return str(format_decimal(value, locale=self.locale, decimal_quantization=False))

    def day(self, value: date | str | None) -> str:
        if value is None or value == "":
            return ""
        if isinstance(value, str):
            value = date.fromisoformat(value)
        return str(format_date(value, format="medium", locale=self.locale))

    @property
    def delimiter(self) -> str:
        return ";" if get_decimal_symbol(self.locale) == "," else ","


def render_csv(view: InvoiceView) -> bytes:
    """The CSV of ``view``. Invoice-mode documents of version 3 and later have the tax,
    party and terms columns (``render_tax_csv``); every other document keeps the layout it
    had when it was finalized, byte for byte."""
    if view.mode == TAX_INVOICE and view.document_version >= TAX_COLUMNS_SINCE:
        return render_tax_csv(view)
    fmt = LocaleFormat(view.locale)
    writer = CsvTable(COLUMNS, numeric=NUMERIC, delimiter=fmt.delimiter)
    head = [view.kind, view.number or "DRAFT", fmt.day(view.issue_date), view.customer_name]
    for line in view.lines or []:
        writer.row(_line_cells(fmt, head, line))
    total = fmt.money(view.total, view.currency)
    writer.row(
        [
            "total",
            *head,
            "",
            "Total",
            *[""] * 8,
            total,
            view.currency,
            money_text(view.total, view.currency),
        ]
    )
    for rate in view.fx_rates:
        writer.row(
            [
                "fx_rate",
                *head,
                "",
                f"{rate['base']} → {rate['quote']}",
                *[""] * 2,
                fmt.day(rate["date"]),
                *[""] * 4,
                fmt.number(Decimal(rate["rate"])),
                "",
                rate["quote"],
                plain_decimal(Decimal(rate["rate"])),
            ]
        )
    return writer.text().encode("utf-8-sig")


def render_tax_csv(view: InvoiceView) -> bytes:
    """An invoice-mode document: its lines (``line``) with their tax category and rate, then
    ``subtotal`` (the net amount), one ``tax`` row per rate (its taxable amount and tax), the
    ``total`` and the ``fx_rate`` rows; every row repeats the seller, buyer and terms."""
    fmt = LocaleFormat(view.locale)
    writer = CsvTable(TAX_COLUMNS, numeric=TAX_NUMERIC, delimiter=fmt.delimiter)
    seller = view.seller or {}
    buyer = view.buyer or {}
    head = [view.kind, view.number or "DRAFT", fmt.day(view.issue_date), view.customer_name]
    parties = [
        fmt.day(view.due_date),
        "" if view.payment_terms_days is None else view.payment_terms_days,
        seller.get("legal_name") or view.seller_name,
        seller.get("tax_id") or "",
        buyer.get("legal_name") or view.customer_name,
        buyer.get("tax_id") or "",
        buyer.get("po_number") or "",
    ]
    taxable = {(t["category"], t["rate"]): t["taxable"] for t in view.taxes}
    blank = [""] * 8
    for line in view.lines or []:
        if line.kind == TAX:
            continue  # written below, as the tax rows of the summary
        writer.row(
            [
                *_line_cells(fmt, head, line),
                line.tax_category or "",
                _percent(fmt, line.tax_rate),
                "",
                *parties,
            ]
        )

    def summary(record: str, label: str, amount: Decimal, tax: list[object]) -> None:
        writer.row(
            [
                record,
                *head,
                "",
                label,
                *blank,
                fmt.money(amount, view.currency),
                view.currency,
                money_text(amount, view.currency),
                *tax,
                *parties,
            ]
        )

    if view.subtotal is not None:
        summary("subtotal", "Subtotal", view.subtotal, ["", "", ""])
    for line in view.lines or []:
        if line.kind != TAX:
            continue
        percent = plain_decimal(line.tax_rate) if line.tax_rate is not None else ""
        base = taxable.get((line.tax_category or "", percent))
        summary(
            "tax",
            line.description,
            line.amount,
            [
                line.tax_category or "",
                _percent(fmt, line.tax_rate),
                "" if base is None else money_text(Decimal(base), view.currency),
            ],
        )
    summary("total", "Total", view.total, ["", "", ""])
    for rate in view.fx_rates:
        writer.row(
            [
                "fx_rate",
                *head,
                "",
                f"{rate['base']} → {rate['quote']}",
                *[""] * 2,
                fmt.day(rate["date"]),
                *[""] * 4,
                fmt.number(Decimal(rate["rate"])),
                "",
                rate["quote"],
                plain_decimal(Decimal(rate["rate"])),
                "",
                "",
                "",
                *parties,
            ]
        )
    return writer.text().encode("utf-8-sig")


def _line_cells(fmt: LocaleFormat, head: list[str], line: DocumentLine) -> list[object]:
    """A ``line`` row's first eighteen columns, the same in every CSV version."""
    return [
        "line",
        *head,
        line.position,
        line.description,
        line.vendor or "",
        line.vendor_reference or "",
        fmt.day(line.service_start),
        fmt.day(line.service_end),
        line.original_period or "",
        fmt.number(line.quantity),
        line.unit or "",
        fmt.number(line.unit_price),
        fmt.money(line.amount, line.currency),
        line.currency,
        money_text(line.amount, line.currency),
    ]


def _percent(fmt: LocaleFormat, rate: Decimal | None) -> str:
    """``19``, ``7,7`` (de): the shortest text, whatever decimals the database kept."""
    return "" if rate is None else fmt.number(Decimal(plain_decimal(rate)))
