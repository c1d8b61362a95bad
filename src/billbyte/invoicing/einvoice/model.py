"""The values an e-invoice writes, taken from an ``InvoiceView`` and checked to add up.

Both syntaxes (CII and UBL) serialize the same ``EInvoice``, so they cannot disagree. The
amounts are the view's own, rounded to the currency's minor units and written as decimal
texts: the e-invoice's totals are the JSON invoice's totals. A credit note's amounts are
negative in the view and positive in the e-invoice (its type code says it is a credit).

EN 16931's business rules (the schematron) cannot run here (they are XSLT 2.0), so the rules
that concern our data are checked in ``build`` instead: the lines add up to the line total,
each VAT breakdown's basis is the sum of its lines, the taxes add up to the tax total, and the
grand total is basis plus tax (BR-CO-10, BR-S-08/BR-E-08/BR-AE-08/BR-Z-08, BR-CO-14, BR-CO-15);
the parties have the details EN 16931 requires (BR-06 to BR-11, BR-CO-26, BR-S-02, BR-E-02,
BR-AE-02); an exempt or reverse-charge breakdown has its reason (BR-E-10, BR-AE-10).
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from billbyte.invoicing.models import CREDIT_NOTE, FINALIZED, TAX, TAX_INVOICE
from billbyte.invoicing.parties import Buyer, Seller
from billbyte.invoicing.views import InvoiceView
from billbyte.kit.errors import Conflict
from billbyte.kit.money import format_amount, minor_units, plain_decimal, round_money

INVOICE_TYPE = "380"  # UNTDID 1001 commercial invoice
CREDIT_NOTE_TYPE = "381"  # UNTDID 1001 credit note
SEPA_CREDIT_TRANSFER = "58"  # UNTDID 4461
REVERSE_CHARGE_CODE = "VATEX-EU-AE"
DEFAULT_REASONS = {"AE": "Reverse charge", "E": "Exempt from VAT"}
ONE = "C62"  # UN/ECE Rec 20 "one": the unit of a line whose unit has no code of its own

# UN/ECE Recommendation 20 codes of the units usage data names, by lower-case unit text
# (a leading "1 " is ignored: Azure writes "1 Hour"). Anything else is "one" (C62), and the
# unit stays readable in the line's description.
UNIT_CODES = {
    **dict.fromkeys(("h", "hr", "hrs", "hour", "hours"), "HUR"),
    **dict.fromkeys(("s", "sec", "secs", "second", "seconds"), "SEC"),
    **dict.fromkeys(("min", "mins", "minute", "minutes"), "MIN"),
    **dict.fromkeys(("d", "day", "days"), "DAY"),
    **dict.fromkeys(("mo", "month", "months"), "MON"),
    **dict.fromkeys(("yr", "year", "years"), "ANN"),
    **dict.fromkeys(("byte", "bytes"), "AD"),
    **dict.fromkeys(("kb", "kilobyte", "kilobytes"), "2P"),
    **dict.fromkeys(("mb", "megabyte", "megabytes"), "4L"),
    **dict.fromkeys(("gb", "gigabyte", "gigabytes"), "E34"),
    **dict.fromkeys(("tb", "terabyte", "terabytes"), "E35"),
    **dict.fromkeys(("kwh", "kilowatt hour", "kilowatt hours"), "KWH"),
}


def unit_code(unit: str | None) -> str:
    """The UN/ECE Rec 20 code of a unit text: ``Hours`` → ``HUR``, ``GB`` → ``E34``; C62."""
    text = re.sub(r"\s+", " ", (unit or "").strip().lower())
    text = text[2:] if text.startswith("1 ") else text
    return UNIT_CODES.get(text, ONE)


@dataclass(frozen=True)
class Line:
    id: str
    name: str
    quantity: str  # billed quantity (BT-129), negative on a negative line
    unit_code: str  # BT-130
    price: str  # net price (BT-146), never negative (BR-27)
    base_quantity: str | None  # BT-149, when price is for more than one unit
    amount: str  # line net amount (BT-131)
    category: str  # BT-151
    rate: str  # BT-152


@dataclass(frozen=True)
class VatBreakdown:
    category: str  # BT-118
    rate: str  # BT-119
    taxable: str  # BT-116
    tax: str  # BT-117
    reason: str | None  # BT-120
    reason_code: str | None  # BT-121


@dataclass(frozen=True)
class EInvoice:
    type_code: str
    number: str
    issue_date: date
    due_date: date | None
    payment_terms: str | None
    currency: str
    period_start: date
    period_end: date
    seller: Seller
    buyer: Buyer
    buyer_reference: str
    order_reference: str | None
    preceding_number: str | None
    lines: list[Line]
    vat: list[VatBreakdown]
    line_total: str  # BT-106
    tax_basis: str  # BT-109
    tax_total: str  # BT-110
    grand_total: str  # BT-112
    due_payable: str  # BT-115


def _missing(view: InvoiceView, categories: set[str]) -> list[str]:
    seller, buyer = view.seller or Seller(), view.buyer or Buyer()
    missing = [
        f"{who}.{key}"
        for who, party in (("seller", seller), ("buyer", buyer))
        for key in ("legal_name", "country")
        if not party.get(key)
    ]
    if not seller.get("tax_id") and (
        categories & {"S", "E", "AE", "Z"} or not seller.get("registration")
    ):
        missing.append("seller.tax_id")
    if "AE" in categories and not buyer.get("tax_id"):
        missing.append("buyer.tax_id")
    return missing


def _key(category: str, rate: Decimal | str | None) -> tuple[str, Decimal]:
    return category, Decimal(str(rate if rate is not None else 0)).normalize()


def _last_day(month: str) -> date:
    year, number = int(month[:4]), int(month[5:7])
    return date(year, number, calendar.monthrange(year, number)[1])


def build(view: InvoiceView, preceding_number: str | None = None) -> EInvoice:
    """The e-invoice of a finalized invoice-mode document, or a Conflict saying why not."""
    if view.status != FINALIZED or view.number is None:
        raise Conflict(
            f"{view.id} is a draft: e-invoices exist only for finalized invoices.",
            code="einvoice_not_available",
        )
    if view.mode != TAX_INVOICE:
        raise Conflict(
            f"{view.id} is a statement-mode document (lines without tax, for embedding into "
            "the MSP's own invoice): e-invoices exist only for invoice-mode documents.",
            code="einvoice_not_available",
        )
    currency = view.currency
    if minor_units(currency) > 2:
        raise Conflict(
            f"{view.id} is in {currency}, which has {minor_units(currency)} decimals: EN 16931 "
            "allows at most two in amounts (BR-DEC), so it has no e-invoice.",
            code="einvoice_not_available",
        )
    sign = Decimal(-1) if view.kind == CREDIT_NOTE else Decimal(1)

    def money(value: Decimal) -> Decimal:
        return round_money(sign * value, currency)

    items = [line for line in view.lines or [] if line.kind != TAX]
    if not items:
        raise Conflict(f"{view.id} has no lines to invoice.", code="einvoice_not_available")
    untaxed = [str(line.position) for line in items if not line.tax_category]
    if untaxed:
        raise Conflict(
            f"{view.id}: lines {', '.join(untaxed)} have no VAT category.",
            code="einvoice_inconsistent",
        )
    categories = {str(line.tax_category) for line in items}
    missing = _missing(view, categories)
    if missing:
        raise Conflict(
            f"{view.id} cannot be an EN 16931 e-invoice: its snapshot lacks {', '.join(missing)}.",
            code="einvoice_incomplete",
            missing=missing,
        )

    lines: list[Line] = []
    by_rate: dict[tuple[str, Decimal], Decimal] = {}
    for line in items:
        amount = money(line.amount)
        key = _key(str(line.tax_category), line.tax_rate)
        by_rate[key] = by_rate.get(key, Decimal(0)) + amount
        lines.append(
            _line(
                line.position,
                line.description,
                line.quantity,
                line.unit,
                line.unit_price,
                amount,
                key,
                currency,
            )
        )
    line_total = sum((line_amount for line_amount in by_rate.values()), Decimal(0))

    vat: list[VatBreakdown] = []
    tax_sum = Decimal(0)
    for summary in view.taxes:
        key = _key(summary["category"], summary["rate"])
        taxable, tax = money(Decimal(summary["taxable"])), money(Decimal(summary["tax"]))
        if by_rate.pop(key, None) != taxable:
            raise Conflict(
                f"{view.id}: the VAT breakdown {key[0]} {plain_decimal(key[1])} % is not "
                "the sum of its lines.",
                code="einvoice_inconsistent",
            )
        tax_sum += tax
        reason = summary.get("note") or DEFAULT_REASONS.get(key[0])
        vat.append(
            VatBreakdown(
                category=key[0],
                rate=plain_decimal(key[1]),
                taxable=format_amount(taxable),
                tax=format_amount(tax),
                reason=reason if key[0] in DEFAULT_REASONS else None,
                reason_code=REVERSE_CHARGE_CODE if key[0] == "AE" else None,
            )
        )
    if by_rate:
        raise Conflict(
            f"{view.id}: lines at {sorted((c, plain_decimal(r)) for c, r in by_rate)} have "
            "no VAT breakdown.",
            code="einvoice_inconsistent",
        )
    subtotal = money(view.subtotal if view.subtotal is not None else Decimal(0))
    tax_total = money(view.tax_total if view.tax_total is not None else Decimal(0))
    total = money(view.total)
    if subtotal != line_total or tax_total != tax_sum or subtotal + tax_total != total:
        raise Conflict(
            f"{view.id}: lines {line_total}, taxes {tax_sum} and totals {subtotal} + "
            f"{tax_total} = {total} do not add up.",
            code="einvoice_inconsistent",
        )
    buyer = view.buyer or Buyer()
    terms = view.payment_terms_days
    return EInvoice(
        type_code=CREDIT_NOTE_TYPE if view.kind == CREDIT_NOTE else INVOICE_TYPE,
        number=view.number,
        issue_date=view.issue_date,
        due_date=view.due_date,
        payment_terms=None if terms is None else f"Payable within {terms} days.",
        currency=currency,
        period_start=date(int(view.period_start[:4]), int(view.period_start[5:7]), 1),
        period_end=_last_day(view.period_end),
        seller=view.seller or Seller(),
        buyer=buyer,
        buyer_reference=buyer.get("po_number") or view.customer_external_id,
        order_reference=buyer.get("po_number"),
        preceding_number=preceding_number,
        lines=lines,
        vat=vat,
        line_total=format_amount(line_total),
        tax_basis=format_amount(subtotal),
        tax_total=format_amount(tax_total),
        grand_total=format_amount(total),
        due_payable=format_amount(total),
    )


def _line(
    position: int,
    description: str,
    quantity: Decimal | None,
    unit: str | None,
    unit_price: Decimal | None,
    amount: Decimal,
    key: tuple[str, Decimal],
    currency: str,
) -> Line:
    """Quantity and net price such that quantity × price ÷ base quantity is the amount.

    The line's own unit price is used when it gives the amount exactly (rounded to the
    currency); otherwise (a rounded unit price, a line without quantity) the price is the
    amount for the whole quantity (base quantity = quantity), which is exact by definition.
    """
    direction = Decimal(-1) if amount < 0 else Decimal(1)
    code = unit_code(unit)
    if not quantity:  # no quantity, or zero: one of it
        quantity, code, unit_price = Decimal(1), ONE, None
    billed = direction * abs(quantity)
    base: str | None = None
    if unit_price is not None and round_money(billed * abs(unit_price), currency) == amount:
        price = plain_decimal(abs(unit_price))
    else:
        price = format_amount(abs(amount))
        base = plain_decimal(abs(quantity)) if abs(quantity) != 1 else None
    return Line(
        id=str(position),
        name=description,
        quantity=plain_decimal(billed),
        unit_code=code,
        price=price,
        base_quantity=base,
        amount=format_amount(amount),
        category=key[0],
        rate=plain_decimal(key[1]),
    )
