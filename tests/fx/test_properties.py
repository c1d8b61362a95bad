"""Hypothesis properties of conversion, against the tolerances stated in docs/fx.md.

Every bound is evaluated with exact fractions from the *stored* rates, so the test does not
rely on the code's own arithmetic.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from billbyte.fx import conversion
from billbyte.fx import rates as fx_rates
from billbyte.kit.errors import InvalidInput
from billbyte.runtime import Runtime
from tests.fx.factories import Msp, new_msp

DAY = date(2024, 3, 15)
E18 = Fraction(1, 10**18)
E27 = Fraction(1, 10**27)
PROPERTY = settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

# Positive rates from 10^-12 to 10^10 with up to 18 decimal places, as an MSP may store.
rates = st.builds(
    lambda mantissa, places: Decimal(mantissa).scaleb(-places),
    st.integers(1, 10**10),
    st.integers(0, 18),
).filter(lambda r: Decimal("1e-12") <= r < Decimal("1e10"))
# Amounts with up to 18 decimals, below 10^15 in magnitude, either sign.
amounts = st.builds(
    lambda mantissa, places: Decimal(mantissa).scaleb(-places),
    st.integers(-(10**15), 10**15),
    st.integers(0, 18),
).filter(lambda a: abs(a) < Decimal("1e15"))


def store(msp: Msp, *rates: tuple[str, str, Decimal]) -> None:
    entries = [fx_rates.RateEntry(b, q, DAY, r) for b, q, r in rates]
    with msp.runtime.uow() as uow:
        fx_rates.upsert_rates(uow.session, msp.subject, entries, source="manual")
        uow.commit()


def convert(msp: Msp, amount: Decimal, source: str, target: str) -> conversion.Conversion:
    with msp.runtime.uow() as uow:
        return conversion.convert(uow.session, msp.msp_id, amount, source, target, DAY)


def stored_ratio(shape: str, first: Decimal, second: Decimal) -> Fraction:
    """The exact USD→JPY ratio that the stored rates of ``shape`` imply."""
    f, s = Fraction(first), Fraction(second)
    return {
        "direct": f,  # USD→JPY = first
        "inverse": 1 / f,  # JPY→USD = first
        "via_base": s / f,  # EUR→USD = first, EUR→JPY = second
        "via_base_mixed": s * f,  # USD→EUR = first, EUR→JPY = second
    }[shape]


def store_shape(msp: Msp, shape: str, first: Decimal, second: Decimal) -> None:
    if shape == "direct":
        store(msp, ("USD", "JPY", first))
    elif shape == "inverse":
        store(msp, ("JPY", "USD", first))
    elif shape == "via_base":
        store(msp, ("EUR", "USD", first), ("EUR", "JPY", second))
    else:
        store(msp, ("USD", "EUR", first), ("EUR", "JPY", second))


@PROPERTY
@given(
    shape=st.sampled_from(["direct", "inverse", "via_base", "via_base_mixed"]),
    first=rates,
    second=rates,
    amount=amounts,
)
def test_round_trip_is_within_the_documented_tolerance(
    runtime: Runtime, shape: str, first: Decimal, second: Decimal, amount: Decimal
) -> None:
    """|x − back(convert(x))| ≤ |x| × (r + 1/r) × 10⁻¹⁸, r the exact stored ratio."""
    ratio = stored_ratio(shape, first, second)
    assume(Fraction(1, 10**9) <= ratio <= 10**9)
    msp = new_msp(runtime)
    store_shape(msp, shape, first, second)

    there = convert(msp, amount, "USD", "JPY")
    back = convert(msp, there.converted, "JPY", "USD")

    # FX never rounds an amount: converted is amount × rate exactly.
    assert Fraction(there.converted) == Fraction(amount) * Fraction(there.rate)
    assert Fraction(back.converted) == Fraction(there.converted) * Fraction(back.rate)
    x = Fraction(amount)
    assert abs(Fraction(back.converted) - x) <= abs(x) * (ratio + 1 / ratio) * E18
    # Each derived rate is within half a unit of the 18th place (+ prec-28 term) of exact.
    for result, exact_rate in ((there, ratio), (back, 1 / ratio)):
        error = abs(Fraction(result.rate) - exact_rate)
        assert error <= E18 / 2 + exact_rate * Fraction(5, 10**28)


@PROPERTY
@given(to_usd=rates, to_jpy=rates, amount=amounts, mixed=st.booleans())
def test_triangulation_agrees_with_going_through_the_base(
    runtime: Runtime, to_usd: Decimal, to_jpy: Decimal, amount: Decimal, mixed: bool
) -> None:
    """USD→JPY via EUR equals USD→EUR then EUR→JPY within |x|·((1 + t)·10⁻¹⁸ + r·10⁻²⁷),
    t the EUR→JPY rate and r the exact USD→JPY ratio."""
    # With mixed, the USD leg is stored as USD→EUR.
    ratio = Fraction(to_jpy) * Fraction(to_usd) if mixed else Fraction(to_jpy) / Fraction(to_usd)
    assume(Fraction(1, 10**9) <= ratio <= 10**9)
    msp = new_msp(runtime)
    usd_leg = ("USD", "EUR", to_usd) if mixed else ("EUR", "USD", to_usd)
    store(msp, usd_leg, ("EUR", "JPY", to_jpy))

    direct = convert(msp, amount, "USD", "JPY")
    assert direct.path == ("USD", "EUR", "JPY")
    step = convert(msp, amount, "USD", "EUR")
    two_steps = convert(msp, step.converted, "EUR", "JPY")
    assert two_steps.rate == to_jpy and two_steps.path == ("EUR", "JPY")

    x, t = abs(Fraction(amount)), Fraction(to_jpy)
    difference = abs(Fraction(direct.converted) - Fraction(two_steps.converted))
    assert difference <= x * ((1 + t) * E18 + ratio * E27)


def test_a_cross_rate_beyond_the_storable_range_is_a_clear_error(runtime: Runtime) -> None:
    msp = new_msp(runtime)
    store(
        msp,
        ("EUR", "USD", Decimal("0.000000000000000001")),
        ("EUR", "JPY", Decimal("10000000000000000000")),
        ("EUR", "CHF", Decimal("0.000000000000000002")),
    )
    with pytest.raises(InvalidInput) as caught:
        convert(msp, Decimal(1), "USD", "JPY")  # 10^37
    assert caught.value.code == "fx_rate_out_of_range"
    with pytest.raises(InvalidInput) as caught:
        convert(msp, Decimal(1), "JPY", "USD")  # 10^-37 rounds to zero
    assert caught.value.code == "fx_rate_out_of_range"
    assert convert(msp, Decimal(1), "USD", "CHF").rate == Decimal(2)


@pytest.mark.parametrize("amount", [Decimal("NaN"), Decimal("Infinity"), 1.5])
def test_convert_refuses_non_finite_and_float_amounts(runtime: Runtime, amount: object) -> None:
    msp = new_msp(runtime)
    with pytest.raises(InvalidInput), msp.runtime.uow() as uow:
        conversion.convert(uow.session, msp.msp_id, amount, "EUR", "EUR", DAY)  # type: ignore[arg-type]
