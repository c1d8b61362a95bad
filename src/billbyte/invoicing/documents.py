"""From charge lines to invoice lines: grouping and rounding, in plain Python.

Each month of the billing period is rounded on its own with ``kit.money.allocate`` — the
rule the charges API uses — over the *grouped* exact amounts: so the lines of a month add up
to that month's charges total exactly, the invoice total is the sum of its months' charges
totals, and no invoice line is more than one minor unit away from its exact amount.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from billbyte.charges.ledger import Charge
from billbyte.kit.money import allocate, plain_decimal

SERVICE = "service"
ACCOUNT = "account"
SERVICE_AND_ACCOUNT = "service_and_account"  # one line per service and account, by service
ADJUSTMENT = "adjustment"
ADJUSTMENT_PREFIX = "adj:"
UNIT_PRICE_PLACES = Decimal("1e-6")
_KIND_ORDER = {"usage": 0, "fee": 1, ADJUSTMENT: 2}
VENDOR_LABELS = {
    "aws": "AWS",
    "azure": "Microsoft Azure",
    "gcp": "Google Cloud",
    "microsoft365": "Microsoft 365",
}
# Amount fields of a charge line kept in an invoice line's sources (late data is diffed
# against them); all exact, in the units the charge line has.
SOURCE_AMOUNTS = (
    "quantity",
    "cost",
    "list_cost",
    "sell",
    "cost_local",
    "list_local",
    "sell_local",
)


@dataclass
class DocumentLine:
    """A line of an invoice or credit note as shown and stored: a group of charge lines
    (or a copied invoice line), rounded — not a charge line, so not a ``Charge``."""

    position: int
    kind: str
    description: str
    vendor: str | None
    vendor_reference: str | None
    service_name: str | None
    charge_category: str | None
    quantity: Decimal | None
    unit: str | None
    unit_price: Decimal | None
    amount: Decimal
    amount_exact: Decimal
    currency: str
    period: str
    service_start: str | None
    service_end: str | None
    original_period: str | None
    fx_rates: list[dict[str, Any]]
    sources: list[dict[str, Any]] = field(default_factory=list)
    # invoice mode only: EN 16931 VAT category and percent of this line
    tax_category: str | None = None
    tax_rate: Decimal | None = None


@dataclass
class Document:
    currency: str
    lines: list[DocumentLine]
    total: Decimal
    total_exact: Decimal
    fx_rates: list[dict[str, Any]]


def adjustment_key(original_period: str, line_key: str) -> str:
    return f"{ADJUSTMENT_PREFIX}{original_period}:{line_key}"


def parse_adjustment_key(line_key: str) -> tuple[str, str] | None:
    """``adj:2026-10:<key>`` → (``2026-10``, ``<key>``); None for other keys."""
    if not line_key.startswith(ADJUSTMENT_PREFIX):
        return None
    period, _, key = line_key[len(ADJUSTMENT_PREFIX) :].partition(":")
    return (period, key) if key else None


def _group_key(line: Charge, grouping: str) -> tuple[Any, ...]:
    adjusted = parse_adjustment_key(line.line_key)
    original = adjusted[0] if adjusted else None
    base: tuple[Any, ...] = (
        _KIND_ORDER.get(line.kind, 9),
        line.kind,
        original or "",
        line.vendor,
    )
    if line.kind == "fee":
        return (*base, line.description, line.line_key)
    service = line.service_name or line.service_category or ""
    if grouping == SERVICE_AND_ACCOUNT:
        return (
            *base,
            service,
            line.partner_account_id or "",
            line.sub_account_id or "",
            line.charge_category or "",
            line.pricing_unit or "",
        )
    if grouping == ACCOUNT:
        return (
            *base,
            line.partner_account_id or "",
            line.sub_account_id or "",
            service,
            line.charge_category or "",
            line.pricing_unit or "",
        )
    return (*base, service, line.charge_category or "", line.pricing_unit or "")


def _references(lines: Sequence[Charge]) -> str | None:
    accounts = sorted({line.sub_account_id for line in lines if line.sub_account_id})
    if not accounts:
        return None
    shown = ", ".join(accounts[:3])
    more = len(accounts) - 3
    return (shown + (f" +{more} more" if more > 0 else ""))[:300]


def _description(first: Charge, grouping: str) -> str:
    if first.kind in ("fee", ADJUSTMENT):
        return first.description[:500]
    vendor = VENDOR_LABELS.get(first.vendor, first.vendor)
    return f"{vendor}: {first.description}"[:500]


def _rates(lines: Iterable[Charge]) -> list[dict[str, Any]]:
    seen = {
        (line.billing_currency, line.currency, str(rate["date"]), str(rate["rate"]))
        for line in lines
        if line.billing_currency != line.currency
        for rate in line.fx_rates or []
    }
    return [{"base": f, "quote": t, "date": d, "rate": r} for f, t, d, r in sorted(seen, key=str)]


def source_of(period: str, line: Charge) -> dict[str, Any]:
    source: dict[str, Any] = {"period": period, "line_key": line.line_key}
    for name in SOURCE_AMOUNTS:
        source[name] = plain_decimal(getattr(line, name))
    return source


def build(
    charge_lines: Mapping[str, Sequence[Charge]],
    months: Sequence[str],
    currency: str,
    grouping: str,
) -> Document:
    """Invoice lines for ``months`` from their charge lines (month → lines), grouped per
    ``grouping``."""
    by_month: dict[str, list[Charge]] = {m: [] for m in months}
    for month, month_lines in charge_lines.items():
        by_month.setdefault(month, []).extend(month_lines)
    lines: list[DocumentLine] = []
    total = Decimal(0)
    total_exact = Decimal(0)
    for month in sorted(by_month):
        groups: dict[tuple[Any, ...], list[Charge]] = {}
        for line in by_month[month]:
            groups.setdefault(_group_key(line, grouping), []).append(line)
        keys = sorted(groups)
        exact = [sum((li.sell_local for li in groups[k]), Decimal(0)) for k in keys]
        rounded, month_total = allocate(exact, currency, ["\x1f".join(map(str, k)) for k in keys])
        total += month_total
        total_exact += sum(exact, Decimal(0))
        for key, amount, amount_exact in zip(keys, rounded, exact, strict=True):
            members = sorted(groups[key], key=lambda li: li.line_key)
            first = members[0]
            quantity = sum((li.quantity for li in members), Decimal(0))
            adjusted = parse_adjustment_key(first.line_key)
            starts = [li.first_day for li in members if li.first_day]
            ends = [li.last_day for li in members if li.last_day]
            lines.append(
                DocumentLine(
                    position=len(lines) + 1,
                    kind=first.kind,
                    description=_description(first, grouping),
                    vendor=first.vendor,
                    vendor_reference=_references(members),
                    service_name=first.service_name or first.service_category,
                    charge_category=first.charge_category,
                    quantity=quantity,
                    unit=first.pricing_unit,
                    unit_price=(
                        (amount_exact / quantity).quantize(UNIT_PRICE_PLACES) if quantity else None
                    ),
                    amount=amount,
                    amount_exact=amount_exact,
                    currency=currency,
                    period=month,
                    service_start=min(starts) if starts else None,
                    service_end=max(ends) if ends else None,
                    original_period=adjusted[0] if adjusted else None,
                    fx_rates=_rates(members),
                    sources=[source_of(month, li) for li in members],
                )
            )
    return Document(
        currency=currency,
        lines=lines,
        total=total,
        total_exact=total_exact,
        fx_rates=_rates(li for month_lines in charge_lines.values() for li in month_lines),
    )


# --- presentation (issue 12): readable descriptions and quantities; amounts untouched ---

# vendor unit → (short unit, minimum decimals, maximum decimals); see docs/invoicing.md
UNITS: dict[str, tuple[str, int, int]] = {
    "hrs": ("h", 0, 2),
    "hours": ("h", 0, 2),
    "hour": ("h", 0, 2),
    "h": ("h", 0, 2),
    "gb-mo": ("GB-month", 2, 3),
    "gb-month": ("GB-month", 2, 3),
    "gb": ("GB", 2, 3),
    "gib": ("GiB", 2, 3),
    "tb": ("TB", 2, 3),
    "requests": ("requests", 0, 0),
    "request": ("requests", 0, 0),
    "count": ("", 0, 0),
    "licenses": ("licences", 0, 0),
    "seats": ("seats", 0, 0),
    "users": ("users", 0, 0),
}
DEFAULT_PRECISION = (0, 3)


def readable_unit(unit: str | None) -> tuple[str, int, int]:
    """A vendor unit as a short readable one with its decimals: ``Hrs`` → ``("h", 0, 2)``."""
    if not unit:
        return ("", *DEFAULT_PRECISION)
    key = unit.strip().lower()
    if key in UNITS:
        return UNITS[key]
    if key.startswith(("1k ", "1,000 ", "10k ", "1m ")):
        return (unit.strip(), 0, 0)
    return (unit.strip(), *DEFAULT_PRECISION)


def readable_description(line: DocumentLine, quantity_text: str) -> str:
    """``Amazon Elastic Compute Cloud — Usage — 1,492 h`` for usage lines; fees, adjustments
    and tax lines keep their stored description."""
    if line.kind != "usage" or not line.service_name:
        return line.description
    parts = [line.service_name]
    if line.charge_category:
        parts.append(line.charge_category)
    if quantity_text:
        parts.append(quantity_text)
    return " — ".join(parts)
