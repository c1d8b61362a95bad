"""``kit.money.plain_decimal``: the one shortest plain text of a decimal."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from billbyte.kit.money import plain_decimal


@given(st.decimals(allow_nan=False, allow_infinity=False, places=None))
def test_plain_decimal_is_the_same_number_without_exponent_or_zeros(value: Decimal) -> None:
    text = plain_decimal(value)
    assert Decimal(text) == value
    assert "e" not in text.lower()
    if "." in text:
        assert not text.endswith("0") and not text.endswith(".")
    assert text != "-0"


def test_plain_decimal_examples() -> None:
    assert plain_decimal(Decimal("1.50")) == "1.5"
    assert plain_decimal(Decimal("1E+2")) == "100"
    assert plain_decimal(Decimal("-0.000")) == "0"
    assert plain_decimal(Decimal("0.000000000000000001")) == "0.000000000000000001"
    assert plain_decimal(Decimal("-12.340")) == "-12.34"
