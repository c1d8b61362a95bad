"""The Money column reads back the shortest exact value: trailing zeros gone, never rounded,
a fraction never in exponent form. The expected value is worked out on the decimal's text."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy.dialects import postgresql, sqlite

from billbyte.db.base import Money


def _shortest(value: Decimal) -> Decimal:
    text = format(value, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return Decimal(text)


# What NUMERIC(38, 18) holds: up to 20 digits before the point, 18 after.
# Built from the digits: arithmetic in the default context (28 digits) would round them.
stored = st.builds(
    lambda units, negative: Decimal(f"{'-' if negative else ''}{units}e-18"),
    st.integers(min_value=0, max_value=10**38 - 1),
    st.booleans(),
)


@given(stored)
def test_a_fraction_reads_back_as_its_shortest_exact_value(value: Decimal) -> None:
    padded = Decimal(f"{value:.18f}")  # PostgreSQL's NUMERIC(38, 18) gives 18 places
    for dialect, raw in ((postgresql.dialect(), padded), (sqlite.dialect(), format(padded, "f"))):
        read = Money().process_result_value(raw, dialect)
        assert read == value
        if value != value.to_integral():
            assert read is not None and read.as_tuple() == _shortest(value).as_tuple()
        else:
            assert read is not None and read.as_tuple() == value.normalize().as_tuple()
