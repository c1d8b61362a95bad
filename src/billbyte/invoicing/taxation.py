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
    for i, ((cat, pct), taxable) in enumerate(sorted(by_rate.items())):
        tax = round_money(taxable * pct / 100, currency)
        tax_total += tax
        taxes.append(
            TaxSummary(
                category=cat,
                rate=plain_decimal(pct),
                name="VAT",
                taxable=format_amount(taxable),
                tax=format_amount(tax),
                note=note,
            )
        )
        period = lines[0].period if lines else ""
        tax_lines.append(
            DocumentLine(
                position=next_position + i,
                kind="tax",
                description=f"VAT {plain_decimal(pct)} % ({cat})",
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
                tax_category=cat,
                tax_rate=pct,
            )
        )
    return Taxation(taxed, tax_lines, taxes, subtotal, tax_total, subtotal + tax_total)
