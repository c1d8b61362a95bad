"""Currencies (ISO 4217 via Babel) and the one rounding rule.

Amounts are ``Decimal`` end to end. Usage lines keep full precision; rounding to the
currency's minor unit happens only where an amount becomes a charge or invoice line,
always ROUND_HALF_EVEN ("banker's rounding"), so that rounding errors do not drift in
one direction over many lines.
"""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation, localcontext
from functools import lru_cache

from babel.numbers import get_currency_precision, list_currencies

from billbyte.kit.errors import InvalidInput

ROUNDING = ROUND_HALF_EVEN


@lru_cache(maxsize=1)
def known_currencies() -> frozenset[str]:
    return frozenset(list_currencies())


def validate_currency(code: str) -> str:
    normalized = code.strip().upper()
    if normalized not in known_currencies():
        raise InvalidInput(
            f"Unknown currency {code!r}: expected an ISO 4217 code such as EUR.",
            code="unknown_currency",
        )
    return normalized


@lru_cache(maxsize=512)  # called per rounded amount; Babel's look-up is the slow part
def minor_units(currency: str) -> int:
    """Digits after the decimal point: JPY 0, USD 2, KWD 3."""
    return int(get_currency_precision(validate_currency(currency)))


def quantum(currency: str) -> Decimal:
    return Decimal(1).scaleb(-minor_units(currency))


def round_money(amount: Decimal, currency: str) -> Decimal:
    return amount.quantize(quantum(currency), rounding=ROUNDING)


def parse_decimal(value: str | int | Decimal, field: str = "amount") -> Decimal:
    """Parse a decimal string strictly (no floats, no NaN/Infinity)."""
    if isinstance(value, float):  # pragma: no cover - guarded by callers' types
        raise InvalidInput(f"{field} must be a decimal string, not a float.")
    try:
        result = Decimal(str(value).strip())
    except (InvalidOperation, ValueError):
        raise InvalidInput(f"{field} is not a decimal number: {value!r}.") from None
    if not result.is_finite():
        raise InvalidInput(f"{field} must be finite: {value!r}.")
    return result


def format_amount(amount: Decimal) -> str:
    """Decimal as a plain string without exponent (``1E+2`` becomes ``100``)."""
    text = format(amount, "f")
    return text


def plain_decimal(value: Decimal) -> str:
    """The shortest plain text of a decimal: no exponent, no trailing zeros (``1.50`` → ``1.5``,
    ``-0.0`` → ``0``). Stored comparisons and line identities use it, so it never changes."""
    text = format(value, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text in ("", "-0") else text


def allocate(
    amounts: list[Decimal], currency: str, keys: list[str] | None = None
) -> tuple[list[Decimal], Decimal]:
    """Round each amount to the currency's minor unit so that the rounded lines add up
    exactly to the rounded total (largest-remainder method).

    Each line is first rounded half-even; the few minor units the total is off by are then
    moved, one each, to the lines whose rounding moved them furthest in the other
    direction (ties broken by ``keys``, so the result is deterministic). No line moves
    more than one minor unit from its exact value.
    """
    step = quantum(currency)
    with localcontext() as context:
        # Exact arithmetic: the default 28 significant digits would round a sum of
        # amounts kept at 18 or 24 places, and could move the total by a minor unit.
        context.prec = max(context.prec, _digits_needed([*amounts, step]))
        exact_total = sum(amounts, Decimal(0))
        total = round_money(exact_total, currency)
        rounded = [round_money(a, currency) for a in amounts]
        gap = int((total - sum(rounded, Decimal(0))) / step)
        if gap:
            order_keys = keys or [f"{i:012d}" for i in range(len(amounts))]
            residual = [a - r for a, r in zip(amounts, rounded, strict=True)]
            direction = 1 if gap > 0 else -1
            # Lines whose exact value lies furthest above (or below) their rounding go first.
            candidates = sorted(
                range(len(amounts)), key=lambda i: (-direction * residual[i], order_keys[i])
            )
            for index in candidates[: abs(gap)]:
                rounded[index] += direction * step
    return rounded, total


def _digits_needed(amounts: list[Decimal]) -> int:
    """Significant digits that hold the sum of ``amounts`` exactly."""
    finite = [a for a in amounts if a.is_finite() and a]
    if not finite:
        return 1
    lowest = min(int(a.as_tuple().exponent) for a in finite)
    highest = max(a.adjusted() for a in finite)
    return highest - lowest + len(str(len(finite))) + 2
