"""Taxes of an invoice-mode document (EN 16931).

Rule: the taxable amount per rate is the sum of the rounded line net amounts at that rate;
the tax is taxable x rate / 100 rounded once per rate (never per line) to the currency's
minor units with the project's rounding rule, ``kit.money.round_money``
(ROUND_HALF_EVEN). Statement mode has no tax at all.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from decimal import Decimal

from billbyte.invoicing.documents import DocumentLine
from billbyte.invoicing.parties import Buyer, TaxSummary
from billbyte.kit.money import format_amount, plain_decimal, round_money

REVERSE_CHARGE_NOTE = (
    "Reverse charge: VAT to be accounted for by the recipient "
    "(Article 196, Council Directive 2006/112/EC)"
)


class MissingTaxRate(Exception):
    """No tax rate for a standard-rated customer's country on the issue date."""


@dataclass(frozen=True)
class Taxation:
    lines: list[DocumentLine]  # the document lines with tax_category/tax_rate set
    tax_lines: list[DocumentLine]  # kind "tax", one per rate, positions after the others
    taxes: list[TaxSummary]
    subtotal: Decimal
    tax_total: Decimal
    total: Decimal


def category_of(buyer: Buyer, standard_rate: Decimal | None) -> tuple[str, Decimal, str | None]:
    """The (category, percent, note) for a buyer's tax treatment."""
    treatment = buyer.get("tax_treatment", "standard")
    if treatment == "exempt":
        return "E", Decimal(0), buyer.get("exemption_reason")
    if treatment == "reverse_charge":
        return "AE", Decimal(0), REVERSE_CHARGE_NOTE
    if standard_rate is None:
        raise MissingTaxRate(f"no tax rate for country {buyer.get('country')!r}")
    return "S", standard_rate, None


def compute(
    lines: list[DocumentLine],
    currency: str,
    mode: str,
    buyer: Buyer,
    standard_rate: Decimal | None,
) -> Taxation:
    subtotal = sum((line.amount for line in lines), Decimal(0))
    if mode != "invoice":
        return Taxation(list(lines), [], [], subtotal, Decimal(0), subtotal)
    category, rate, note = category_of(buyer, standard_rate)
    taxed = [replace(line, tax_category=category, tax_rate=rate) for line in lines]
    by_rate: dict[tuple[str, Decimal], Decimal] = {}
    for line in taxed:
        key = (line.tax_category or category, line.tax_rate if line.tax_rate is not None else rate)
        by_rate[key] = by_rate.get(key, Decimal(0)) + round_money(line.amount, currency)
    next_position = max((line.position for line in lines), default=0) + 1
    tax_lines: list[DocumentLine] = []
    taxes: list[TaxSummary] = []
    tax_total = Decimal(0)
    period = lines[0].period if lines else ""
    for i, ((cat, pct), taxable) in enumerate(sorted(by_rate.items())):
        tax = round_money(taxable * pct / 100, currency)
        tax_total += tax
        taxes.append(_summary(cat, pct, "VAT", taxable, tax, note))
        tax_lines.append(_tax_line(next_position + i, cat, pct, tax, currency, period))
    return Taxation(taxed, tax_lines, taxes, subtotal, tax_total, subtotal + tax_total)


def _summary(
    category: str, rate: Decimal, name: str, taxable: Decimal, tax: Decimal, note: str | None
) -> TaxSummary:
    return TaxSummary(
        category=category,
        rate=plain_decimal(rate),
        name=name,
        taxable=format_amount(taxable),
        tax=format_amount(tax),
        note=note,
    )


def _tax_line(
    position: int, category: str, rate: Decimal, tax: Decimal, currency: str, period: str
) -> DocumentLine:
    """The ``tax`` line of one rate (an invoice's, or a credit note's negative one)."""
    return DocumentLine(
        position=position,
        kind="tax",
        description=f"VAT {plain_decimal(rate)} % ({category})",
        vendor=None,
        vendor_reference=None,
        service_name=None,
        charge_category=None,
        quantity=None,
        unit=None,
        unit_price=None,
        amount=tax,
        amount_exact=tax,
        currency=currency,
        period=period,
        service_start=None,
        service_end=None,
        original_period=None,
        fx_rates=[],
        tax_category=category,
        tax_rate=rate,
    )


class CreditNeedsOneRate(Exception):
    """The credited invoice has several tax rates: a credit line does not say which."""


def credit(
    lines: list[DocumentLine],
    currency: str,
    invoice_taxes: list[TaxSummary],
    credited_taxes: list[TaxSummary],
    *,
    last: bool,
) -> Taxation:
    """The taxes of a credit note against an invoice-mode invoice (``lines`` are its
    negative net lines, rounded to the currency).

    The rate, category, name and note are the credited invoice's own (``invoice_taxes``, its
    per-rate summary written at close), never today's rate table. The tax is the credited
    net x rate / 100 rounded once with the project's rule (``round_money``), as at close,
    but never more than what is left of the invoice's tax after the earlier credit notes
    (``credited_taxes``, their negative summaries); the note that credits the last of the
    invoice's net (``last``) takes exactly the rest of its tax, so crediting an invoice in full, at
    once or in parts, gives exactly the negative of its taxes and its total.
    """
    if len(invoice_taxes) != 1:
        raise CreditNeedsOneRate(f"the invoice has {len(invoice_taxes)} tax rates")
    [original] = invoice_taxes
    category, rate = original["category"], Decimal(original["rate"])
    invoice_tax = Decimal(original["tax"])
    same = [t for t in credited_taxes if (t["category"], Decimal(t["rate"])) == (category, rate)]
    tax_before = -sum((Decimal(t["tax"]) for t in same), Decimal(0))
    taxed = [replace(line, tax_category=category, tax_rate=rate) for line in lines]
    net = -sum((round_money(line.amount, currency) for line in lines), Decimal(0))
    tax_left = invoice_tax - tax_before
    tax = tax_left if last else min(round_money(net * rate / 100, currency), tax_left)
    position = max((line.position for line in lines), default=0) + 1
    period = lines[0].period if lines else ""
    negative_tax = Decimal(0) - tax  # 0 - 0.00 is 0.00, where -0.00 would print as "-0.00"
    tax_line = _tax_line(position, category, rate, negative_tax, currency, period)
    summary = _summary(category, rate, original["name"], -net, negative_tax, original["note"])
    summary["rate"] = original["rate"]  # the invoice's own text
    return Taxation(taxed, [tax_line], [summary], -net, negative_tax, -(net + tax))
