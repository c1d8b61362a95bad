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
from billbyte.kit.money import allocate, format_amount, plain_decimal, round_money

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
        description=rate_label((category, rate)),
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


RateKey = tuple[str, Decimal]  # (EN 16931 category, percent) of one of an invoice's rates


def rate_key(summary: TaxSummary) -> RateKey:
    return summary["category"], Decimal(summary["rate"])


def rate_label(key: RateKey) -> str:
    """``VAT 19 % (S)``: how a rate is named in tax lines and messages."""
    return f"VAT {plain_decimal(key[1])} % ({key[0]})"


def left_to_credit(
    invoice_taxes: list[TaxSummary], credited_taxes: list[TaxSummary], untaxed_net: Decimal
) -> dict[RateKey, Decimal]:
    """The net left to credit at each of the invoice's rates: its taxable amount less the
    (negative) taxable amounts of the earlier credit notes at that rate. ``untaxed_net`` is
    the net of earlier credit notes written before credit notes carried tax (one-rate
    invoices only, as every invoice then was): it is taken from the invoice's one rate."""
    left = {rate_key(t): Decimal(t["taxable"]) for t in invoice_taxes}
    for earlier in credited_taxes:
        key = rate_key(earlier)
        if key in left:
            left[key] += Decimal(earlier["taxable"])
    if untaxed_net and len(left) == 1:
        [key] = left
        left[key] -= untaxed_net
    return left


def split_by_rate(
    amount: Decimal, left: dict[RateKey, Decimal], currency: str
) -> dict[RateKey, Decimal]:
    """A net credit not naming a rate, shared among the rates in proportion to what is left
    of each (only rates with something left), each share rounded so the shares add up to
    ``amount`` exactly (``kit.money.allocate``, largest remainder). No share exceeds what is
    left of its rate when ``amount`` is at most what is left in all: each exact share is
    below its rate's rest and is moved by less than one minor unit, onto a minor unit."""
    open_rates = sorted(key for key, rest in left.items() if rest > 0)
    whole = sum((left[key] for key in open_rates), Decimal(0))
    if not open_rates or amount > whole:
        raise CreditExceedsInvoice(f"{format_amount(max(whole, Decimal(0)))} left")
    exact = [amount * left[key] / whole for key in open_rates]
    shares, _ = allocate(exact, currency, [f"{c}\x1f{r}" for c, r in open_rates])
    return {key: share for key, share in zip(open_rates, shares, strict=True) if share}


def rate_parts(
    requests: list[tuple[Decimal, RateKey | None]], left: dict[RateKey, Decimal], currency: str
) -> list[list[tuple[RateKey, Decimal]]]:
    """The (rate, net) parts of each credit line ``(amount, named rate or None)``. A line
    naming its rate credits that rate; on a one-rate invoice every line credits the one
    rate; otherwise a line is shared among the rates in proportion to what is left of each
    after the lines that name theirs and the lines before it (``split_by_rate``). Whether a
    rate is credited beyond its base is ``credit``'s check."""
    rest = dict(left)
    for amount, key in requests:
        if key is not None:
            rest[key] -= amount
    parts: list[list[tuple[RateKey, Decimal]]] = []
    for amount, key in requests:
        if key is not None or len(left) == 1:
            parts.append([(key if key is not None else next(iter(left)), amount)])
            continue
        shares = split_by_rate(amount, rest, currency)
        for rate, share in shares.items():
            rest[rate] -= share
        parts.append(sorted(shares.items()))
    return parts


class CreditExceedsInvoice(Exception):
    """A credit of more than is left of the invoice (at a rate, or in all)."""


def credit(
    lines: list[DocumentLine],
    currency: str,
    invoice_taxes: list[TaxSummary],
    credited_taxes: list[TaxSummary],
    *,
    untaxed_net: Decimal = Decimal(0),
) -> Taxation:
    """The taxes of a credit note against an invoice-mode invoice. ``lines`` are its
    negative net lines, rounded to the currency, each with the category and rate it credits
    (``tax_category``/``tax_rate``, one of the invoice's; a line without them credits the
    invoice's one rate).

    The rate, category, name and note are the credited invoice's own (``invoice_taxes``, its
    per-rate summary written at close), never today's rate table. Per rate, the tax is the
    credited net x rate / 100 rounded once with the project's rule (``round_money``), as at
    close, but never more than what is left of that rate's tax after the earlier credit
    notes (``credited_taxes``, their negative summaries); the note that credits the last of
    a rate's net takes exactly the rest of that rate's tax, so crediting an invoice in full,
    at once or in parts, gives exactly the negative of its taxes and its total, rate by rate.
    Raises ``CreditExceedsInvoice`` when a rate's net would be credited beyond its base.
    """
    originals = {rate_key(t): t for t in invoice_taxes}
    left = left_to_credit(invoice_taxes, credited_taxes, untaxed_net)
    taxed: list[DocumentLine] = []
    for line in lines:
        if line.tax_category is None or line.tax_rate is None:
            if len(originals) != 1:
                raise ValueError("a credit line of a several-rate invoice names its rate")
            [(category, rate)] = originals
            line = replace(line, tax_category=category, tax_rate=rate)
        if (line.tax_category, line.tax_rate) not in originals:
            raise ValueError(f"the invoice has no rate {line.tax_category} {line.tax_rate}")
        taxed.append(line)
    net_by_rate: dict[RateKey, Decimal] = {}
    for line in taxed:
        key = (str(line.tax_category), Decimal(str(line.tax_rate)))
        net_by_rate[key] = net_by_rate.get(key, Decimal(0)) - round_money(line.amount, currency)
    position = max((line.position for line in lines), default=0) + 1
    period = lines[0].period if lines else ""
    tax_lines: list[DocumentLine] = []
    taxes: list[TaxSummary] = []
    net_total = tax_total = Decimal(0)
    for key in sorted(net_by_rate):
        net, original = net_by_rate[key], originals[key]
        if net > left[key]:
            raise CreditExceedsInvoice(
                f"{rate_label(key)}: {format_amount(max(left[key], Decimal(0)))} left"
            )
        tax_before = -sum(
            (Decimal(t["tax"]) for t in credited_taxes if rate_key(t) == key), Decimal(0)
        )
        tax_left = Decimal(original["tax"]) - tax_before
        category, rate = key
        if net == left[key]:  # the last of this rate's net: exactly the rest of its tax
            tax = tax_left
        else:
            tax = min(round_money(net * rate / 100, currency), tax_left)
        negative_tax = Decimal(0) - tax  # 0 - 0.00 is 0.00, where -0.00 would print as "-0.00"
        tax_lines.append(
            _tax_line(position + len(tax_lines), category, rate, negative_tax, currency, period)
        )
        summary = _summary(category, rate, original["name"], -net, negative_tax, original["note"])
        summary["rate"] = original["rate"]  # the invoice's own text
        taxes.append(summary)
        net_total += net
        tax_total += tax
    return Taxation(
        taxed, tax_lines, taxes, -net_total, Decimal(0) - tax_total, -(net_total + tax_total)
    )
