"""Proration against a table of cases computed by hand, and a property over random histories.

Every expected figure below was worked out on paper from the rule in docs/catalog.md
(charged in advance per billing period; a change prorated from its effective day, which
counts, to the period's end; amount = price × seats × days / days in the period), not by
running the code. Amounts are compared rounded half-even to the cent, as a charge line is.
"""

from __future__ import annotations

from datetime import date, timedelta
from decimal import ROUND_HALF_EVEN, Context, Decimal, localcontext

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from billbyte.catalog.proration import (
    Frequency,
    Term,
    billing_periods,
    cancellation,
    decrease_allowed,
    pieces,
    seat_days,
    term_containing,
)

CENT = Decimal("0.01")
D = date

# (case, price, term, billing, start, seats [(from, n)], last_day, until,
#  expected [(kind, charged on, seats, days covered, days in period, amount)])
CASES = [
    (
        "10 -> 15 seats on day 12 of a 30-day month (the change day counts: 12..30 = 19 days)",
        "19.90",
        Term.MONTHLY,
        Frequency.MONTHLY,
        D(2026, 4, 1),
        [(D(2026, 4, 1), 10), (D(2026, 4, 12), 15)],
        None,
        D(2026, 4, 30),
        [
            ("charge", D(2026, 4, 1), 10, 30, 30, "199.00"),
            ("change", D(2026, 4, 12), 5, 19, 30, "63.02"),  # 5 x 19.90 x 19/30 = 63.0166..
        ],
    ),
    (
        "10 -> 15 seats on day 12 of a 31-day month (12..31 = 20 days)",
        "19.90",
        Term.MONTHLY,
        Frequency.MONTHLY,
        D(2026, 3, 1),
        [(D(2026, 3, 1), 10), (D(2026, 3, 12), 15)],
        None,
        D(2026, 3, 31),
        [
            ("charge", D(2026, 3, 1), 10, 31, 31, "199.00"),
            ("change", D(2026, 3, 12), 5, 20, 31, "64.19"),  # 1990/31 = 64.1935..
        ],
    ),
    (
        "10 -> 15 seats on day 12 of February 2026, 28 days (12..28 = 17 days)",
        "19.90",
        Term.MONTHLY,
        Frequency.MONTHLY,
        D(2026, 2, 1),
        [(D(2026, 2, 1), 10), (D(2026, 2, 12), 15)],
        None,
        D(2026, 2, 28),
        [
            ("charge", D(2026, 2, 1), 10, 28, 28, "199.00"),
            ("change", D(2026, 2, 12), 5, 17, 28, "60.41"),  # 1691.5/28 = 60.4107..
        ],
    ),
    (
        "the same change in February 2028, a leap year (12..29 = 18 of 29 days)",
        "19.90",
        Term.MONTHLY,
        Frequency.MONTHLY,
        D(2028, 2, 1),
        [(D(2028, 2, 1), 10), (D(2028, 2, 12), 15)],
        None,
        D(2028, 2, 29),
        [
            ("charge", D(2028, 2, 1), 10, 29, 29, "199.00"),
            ("change", D(2028, 2, 12), 5, 18, 29, "61.76"),  # 1791/29 = 61.7586..
        ],
    ),
    (
        "start mid-month: 16..30 April is 15 of 30 days; May is charged whole on 1 May",
        "19.90",
        Term.MONTHLY,
        Frequency.MONTHLY,
        D(2026, 4, 16),
        [(D(2026, 4, 16), 10)],
        None,
        D(2026, 5, 31),
        [
            ("charge", D(2026, 4, 16), 10, 15, 30, "99.50"),
            ("charge", D(2026, 5, 1), 10, 31, 31, "199.00"),
        ],
    ),
    (
        "quantity decrease 10 -> 6 on 21 April: a credit for 21..30 (10 of 30 days)",
        "19.90",
        Term.MONTHLY,
        Frequency.MONTHLY,
        D(2026, 4, 1),
        [(D(2026, 4, 1), 10), (D(2026, 4, 21), 6)],
        None,
        D(2026, 5, 31),
        [
            ("charge", D(2026, 4, 1), 10, 30, 30, "199.00"),
            ("change", D(2026, 4, 21), -4, 10, 30, "-26.53"),  # -796/30 = -26.5333..
            ("charge", D(2026, 5, 1), 6, 31, 31, "119.40"),
        ],
    ),
    (
        "monthly term cancelled effective 10 May: credit for 11..31 May (21 of 31 days)",
        "19.90",
        Term.MONTHLY,
        Frequency.MONTHLY,
        D(2026, 4, 1),
        [(D(2026, 4, 1), 10)],
        D(2026, 5, 10),
        D(2026, 6, 30),
        [
            ("charge", D(2026, 4, 1), 10, 30, 30, "199.00"),
            ("charge", D(2026, 5, 1), 10, 31, 31, "199.00"),
            ("end", D(2026, 5, 10), -10, 21, 31, "-134.81"),  # -4179/31 = -134.8064..
        ],
    ),
    (
        "annual term billed annually, cancelled on its 6th day: 359 of 365 days refunded",
        "237.60",
        Term.ANNUAL,
        Frequency.ANNUAL,
        D(2026, 1, 15),
        [(D(2026, 1, 15), 10)],
        D(2026, 1, 20),
        D(2027, 3, 31),
        [
            ("charge", D(2026, 1, 15), 10, 365, 365, "2376.00"),
            ("end", D(2026, 1, 20), -10, 359, 365, "-2336.94"),  # -852984/365 = -2336.9424..
        ],
    ),
    (
        "annual term billed annually: +2 seats on 1 July = 198 of 365 days (1 Jul..14 Jan)",
        "237.60",
        Term.ANNUAL,
        Frequency.ANNUAL,
        D(2026, 1, 15),
        [(D(2026, 1, 15), 10), (D(2026, 7, 1), 12)],
        None,
        D(2027, 1, 31),
        [
            ("charge", D(2026, 1, 15), 10, 365, 365, "2376.00"),
            ("change", D(2026, 7, 1), 2, 198, 365, "257.78"),  # 94089.6/365 = 257.7797..
            ("charge", D(2027, 1, 15), 12, 365, 365, "2851.20"),  # the renewal
        ],
    ),
    (
        "annual term billed monthly, from 15 January: January is 17 of 31 days",
        "19.80",
        Term.ANNUAL,
        Frequency.MONTHLY,
        D(2026, 1, 15),
        [(D(2026, 1, 15), 3)],
        None,
        D(2026, 2, 28),
        [
            ("charge", D(2026, 1, 15), 3, 17, 31, "32.57"),  # 1009.8/31 = 32.5741..
            ("charge", D(2026, 2, 1), 3, 28, 28, "59.40"),
        ],
    ),
]


@pytest.mark.parametrize(
    ("case", "price", "term", "billing", "start", "seats", "last_day", "until", "expected"),
    CASES,
    ids=[c[0][:60] for c in CASES],
)
def test_prorated_pieces_match_the_hand_computed_table(
    case, price, term, billing, start, seats, last_day, until, expected
) -> None:
    found = pieces(
        start=start, last_day=last_day, seats=seats, term=term, frequency=billing, until=until
    )
    got = [
        (
            p.kind.value,
            p.on,
            p.seats,
            p.covered.days,
            p.period.days,
            str(p.amount(Decimal(price)).quantize(CENT, rounding=ROUND_HALF_EVEN)),
        )
        for p in found
    ]
    assert got == expected, case


def test_annual_cancellation_rules() -> None:
    start = D(2026, 1, 15)
    # Within 7 days of the start (the start day is day 1): ends that day, refunded.
    assert cancellation(start, Term.ANNUAL, D(2026, 1, 21)).last_day == D(2026, 1, 21)
    assert cancellation(start, Term.ANNUAL, D(2026, 1, 21)).refunded
    # Day 8: runs, and is charged, to the end of the term.
    late = cancellation(start, Term.ANNUAL, D(2026, 1, 22))
    assert (late.last_day, late.refunded) == (D(2027, 1, 14), False)
    # Within 7 days of a renewal counts like the start.
    renewal = cancellation(start, Term.ANNUAL, D(2027, 1, 18))
    assert (renewal.last_day, renewal.refunded) == (D(2027, 1, 18), True)
    # Monthly terms: any day, refunded.
    monthly = cancellation(start, Term.MONTHLY, D(2026, 9, 3))
    assert (monthly.last_day, monthly.refunded) == (D(2026, 9, 3), True)
    # A late cancellation of an annual term billed monthly leaves no credit before term end.
    found = pieces(
        start=start,
        last_day=late.last_day,
        seats=[(start, 5)],
        term=Term.ANNUAL,
        frequency=Frequency.MONTHLY,
        until=D(2027, 6, 30),
    )
    credits = [p for p in found if p.seats < 0]
    assert [(p.on, p.covered.start, p.covered.end) for p in credits] == [
        (D(2027, 1, 14), D(2027, 1, 15), D(2027, 1, 31))
    ]
    assert max(p.on for p in found) == D(2027, 1, 14)


def test_seat_reductions_on_annual_terms_only_in_the_first_seven_days() -> None:
    start = D(2026, 1, 15)
    assert decrease_allowed(start, Term.ANNUAL, D(2026, 1, 21))
    assert not decrease_allowed(start, Term.ANNUAL, D(2026, 1, 22))
    assert decrease_allowed(start, Term.ANNUAL, D(2027, 1, 15))  # on the renewal
    assert decrease_allowed(start, Term.MONTHLY, D(2026, 6, 30))


def test_terms_are_anchored_on_the_start_day() -> None:
    start = D(2026, 1, 31)
    assert term_containing(start, Term.MONTHLY, D(2026, 2, 28)).start == D(2026, 2, 28)
    assert term_containing(start, Term.MONTHLY, D(2026, 3, 30)).end == D(2026, 3, 30)
    assert term_containing(start, Term.MONTHLY, D(2026, 3, 31)).start == D(2026, 3, 31)
    leap = term_containing(D(2027, 3, 1), Term.ANNUAL, D(2028, 2, 29))
    assert (leap.start, leap.end, leap.days) == (D(2027, 3, 1), D(2028, 2, 29), 366)


# --- property: pieces integrate the seats over the days, exactly --------------------------

_BASE = D(2027, 1, 1)


@st.composite
def histories(draw: st.DrawFn) -> tuple[date, list[tuple[date, int]], date | None, Term, Frequency]:
    term = draw(st.sampled_from([Term.MONTHLY, Term.ANNUAL]))
    billing = (
        draw(st.sampled_from([Frequency.MONTHLY, Frequency.ANNUAL]))
        if term is Term.ANNUAL
        else Frequency.MONTHLY
    )
    start = _BASE + timedelta(days=draw(st.integers(0, 400)))
    offsets = sorted(set(draw(st.lists(st.integers(1, 700), max_size=6))))
    seats = [(start, draw(st.integers(1, 500)))]
    seats += [(start + timedelta(days=o), draw(st.integers(1, 500))) for o in offsets]
    ends = draw(st.none() | st.integers(0, 800))
    last_day = None if ends is None else start + timedelta(days=ends)
    return start, seats, last_day, term, billing


@settings(max_examples=150, deadline=None)
@given(histories(), st.decimals(min_value=0, max_value=10_000, places=4))
def test_pieces_of_each_billing_period_add_up_to_price_times_seat_days(history, price) -> None:
    start, seats, last_day, term, billing = history
    until = _BASE + timedelta(days=1500)
    found = pieces(
        start=start, last_day=last_day, seats=seats, term=term, frequency=billing, until=until
    )
    periods = list(billing_periods(start, term, billing, until))
    with localcontext(Context(prec=80)):
        _check_periods(found, periods, seats, start, last_day, price)
    # Nothing is charged after the end of service or before the start.
    assert all(start <= p.on for p in found)
    if last_day is not None:
        assert all(p.on <= last_day for p in found)


def _check_periods(found, periods, seats, start, last_day, price) -> None:
    for period in periods:
        in_period = [p for p in found if p.period == period]
        integral = seat_days(seats, start, last_day, period)
        # Exact: integer seat-days, and the undivided Decimal products.
        assert sum(p.seat_days for p in in_period) == integral
        assert sum((price * p.seat_days for p in in_period), Decimal(0)) == price * integral
        # Divided once per piece at 24 decimals: off by at most half a unit per piece.
        total = sum((p.amount(price) for p in in_period), Decimal(0))
        exact = price * integral / period.days
        assert abs(total - exact) <= Decimal("0.5e-24") * (len(in_period) + 1)
