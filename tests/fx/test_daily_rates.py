"""conversion.daily_rates: the rating engine's table of one rate per day per pair."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal
from fractions import Fraction

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from billbyte.fx import conversion, ecb
from billbyte.fx import policy as fx_policy
from billbyte.fx import rates as fx_rates
from billbyte.fx.schemas import FxPolicyIn, PolicyMode
from billbyte.kit.errors import InvalidInput
from billbyte.runtime import Runtime
from tests.fx.factories import DATA, Msp, exact, half_even_18, new_msp

OCT = date(2026, 10, 1)
LATER = date(2026, 12, 31)  # "today" for these tests: October is in the past
PAIRS = {("EUR", "USD"), ("USD", "EUR"), ("usd", "jpy"), ("JPY", "JPY")}


def store(msp: Msp, *rates: tuple[str, str, date, str], source: str = "manual") -> None:
    entries = [fx_rates.RateEntry(b, q, d, Decimal(r)) for b, q, d, r in rates]
    with msp.runtime.uow() as uow:
        fx_rates.upsert_rates(uow.session, msp.subject, entries, source=source)
        uow.commit()


def set_policy(msp: Msp, **policy: object) -> None:
    with msp.runtime.uow() as uow:
        fx_policy.set_policy(uow.session, msp.subject, FxPolicyIn.model_validate(policy))
        uow.commit()


def daily(
    msp: Msp,
    pairs: set[tuple[str, str]],
    start: date,
    end: date,
    *,
    period_end: date | None = None,
    as_of: date | None = None,
) -> pl.DataFrame:
    with msp.runtime.uow() as uow:
        return conversion.daily_rates(
            uow.session, msp.msp_id, pairs, start, end, period_end=period_end, as_of=as_of
        )


def import_hist(msp: Msp) -> None:
    with msp.runtime.uow() as uow:
        ecb.import_ecb_rates(uow.session, msp.subject, DATA / "eurofxref-hist-synthetic.csv")
        uow.commit()


def test_one_row_per_day_per_pair_with_the_documented_schema(msp: Msp) -> None:
    import_hist(msp)
    frame = daily(msp, PAIRS, date(2026, 10, 1), date(2026, 10, 12), as_of=LATER)
    assert list(frame.schema.items()) == list(
        {
            "day": pl.Date,
            "from_currency": pl.String,
            "to_currency": pl.String,
            "rate": pl.Decimal(38, 18),
            "rate_date": pl.Date,
        }.items()
    )
    assert frame.height == 4 * 12
    counts = frame.group_by("from_currency", "to_currency").agg(
        pl.col("day").n_unique().alias("days"), pl.len().alias("rows")
    )
    assert sorted(counts.rows()) == [
        ("EUR", "USD", 12, 12),
        ("JPY", "JPY", 12, 12),
        ("USD", "EUR", 12, 12),
        ("USD", "JPY", 12, 12),
    ]
    rows = {
        (r["from_currency"], r["to_currency"], r["day"]): r for r in frame.iter_rows(named=True)
    }
    # Weekend and the Monday after the last rate (10-12) use Friday 10-09.
    saturday = rows[("USD", "JPY", date(2026, 10, 3))]
    assert saturday["rate_date"] == date(2026, 10, 2)
    assert saturday["rate"] == half_even_18(exact("150.00") / exact("1.1000"))
    monday = rows[("EUR", "USD", date(2026, 10, 12))]
    assert (monday["rate"], monday["rate_date"]) == (Decimal("1.1050"), date(2026, 10, 9))
    inverse = rows[("USD", "EUR", date(2026, 10, 7))]
    assert inverse["rate"] == half_even_18(1 / exact("1.1030"))
    same = rows[("JPY", "JPY", date(2026, 10, 4))]
    assert (same["rate"], same["rate_date"]) == (Decimal(1), date(2026, 10, 4))


def test_a_triangulated_rate_is_as_old_as_its_oldest_leg(msp: Msp) -> None:
    # GBP has no rate on 10-07 in the file: GBP crosses use 10-06's GBP with 10-07's USD.
    import_hist(msp)
    frame = daily(msp, {("GBP", "USD")}, date(2026, 10, 7), date(2026, 10, 7), as_of=LATER)
    row = frame.row(0, named=True)
    assert row["rate_date"] == date(2026, 10, 6)
    assert row["rate"] == half_even_18(exact("1.1030") / exact("0.85200"))


def test_missing_rate_names_the_pair_and_day(msp: Msp) -> None:
    import_hist(msp)
    with pytest.raises(InvalidInput) as caught:
        daily(msp, {("EUR", "USD")}, date(2026, 9, 28), date(2026, 10, 2), as_of=LATER)
    error = caught.value
    assert error.code == "fx_rate_missing"
    assert error.extra == {"from_currency": "EUR", "to_currency": "USD", "day": "2026-09-28"}
    assert "EUR→USD" in error.detail and "2026-09-28" in error.detail
    with pytest.raises(InvalidInput, match="No GBP→CAD"):
        daily(msp, {("GBP", "CAD")}, OCT, OCT, as_of=LATER)
    # Staleness: 10-19 is 10 days after the last rate.
    with pytest.raises(InvalidInput) as caught:
        daily(msp, {("USD", "JPY")}, date(2026, 10, 15), date(2026, 10, 19), as_of=LATER)
    assert caught.value.extra["day"] == "2026-10-17"


def test_period_close_locks_each_month_at_its_last_rate(msp: Msp) -> None:
    store(
        msp,
        ("EUR", "USD", date(2026, 9, 30), "1.09"),
        ("EUR", "USD", date(2026, 10, 15), "1.10"),
        ("EUR", "USD", date(2026, 10, 30), "1.11"),  # 10-31 is a Saturday
    )
    set_policy(msp, mode=PolicyMode.PERIOD_CLOSE.value)
    frame = daily(msp, {("EUR", "USD")}, date(2026, 9, 28), date(2026, 10, 31), as_of=LATER)
    by_day = {r["day"]: (r["rate"], r["rate_date"]) for r in frame.iter_rows(named=True)}
    assert frame.height == 34
    assert {by_day[date(2026, 9, d)] for d in (28, 29, 30)} == {
        (Decimal("1.09"), date(2026, 9, 30))
    }
    assert {by_day[OCT + timedelta(days=n)] for n in range(31)} == {
        (Decimal("1.11"), date(2026, 10, 30))
    }
    # A billing period that is not a calendar month: the caller gives its last day.
    custom = daily(
        msp,
        {("EUR", "USD")},
        date(2026, 10, 1),
        date(2026, 10, 20),
        period_end=date(2026, 10, 20),
        as_of=LATER,
    )
    assert set(custom["rate_date"].to_list()) == {date(2026, 10, 15)}


def test_period_close_is_provisional_while_the_period_is_open(msp: Msp) -> None:
    store(msp, ("EUR", "USD", date(2026, 10, 8), "1.10"), ("EUR", "USD", date(2026, 10, 9), "1.11"))
    set_policy(msp, mode="period_close")
    today = date(2026, 10, 10)
    frame = daily(msp, {("EUR", "USD")}, OCT, today, as_of=today)
    assert set(frame["rate_date"].to_list()) == {date(2026, 10, 9)}
    with msp.runtime.uow() as uow:
        result = conversion.convert(
            uow.session, msp.msp_id, Decimal("10"), "EUR", "USD", OCT, as_of=today
        )
    assert (result.rate, result.rate_date, result.converted) == (
        Decimal("1.11"),
        date(2026, 10, 9),
        Decimal("11.10"),
    )
    # Once the month is over, a month-end rate is required (7 days' staleness by default).
    with pytest.raises(InvalidInput, match="No EUR→USD"):
        daily(msp, {("EUR", "USD")}, OCT, OCT, as_of=date(2026, 11, 2))


def test_other_msps_rates_are_never_used(runtime: Runtime) -> None:
    owner, stranger = new_msp(runtime, "Owner"), new_msp(runtime, "Stranger")
    import_hist(owner)
    with pytest.raises(InvalidInput):
        daily(stranger, {("EUR", "USD")}, OCT, OCT, as_of=LATER)
    store(stranger, ("EUR", "USD", OCT, "9"))
    assert daily(stranger, {("EUR", "USD")}, OCT, OCT, as_of=LATER)["rate"].to_list() == [
        Decimal(9)
    ]
    set_policy(stranger, base_currency="USD")
    with owner.runtime.uow() as uow:
        assert fx_policy.policy_for(uow.session, owner.msp_id).base_currency == "EUR"


def test_argument_errors(msp: Msp) -> None:
    empty = daily(msp, set(), OCT, OCT)
    assert empty.height == 0 and empty.columns == list(conversion.RATE_SCHEMA)
    with pytest.raises(InvalidInput, match="after"):
        daily(msp, {("EUR", "USD")}, date(2026, 10, 2), OCT)
    with pytest.raises(InvalidInput, match="period_end"):
        daily(msp, {("EUR", "USD")}, OCT, date(2026, 10, 5), period_end=date(2026, 10, 4))
    with pytest.raises(InvalidInput) as caught:
        daily(msp, {("EUR", "XYZ")}, OCT, OCT)
    assert caught.value.code == "unknown_currency"


def _latest(dates: set[int], day: int, staleness: int) -> int | None:
    candidates = [d for d in dates if day - staleness <= d <= day]
    return max(candidates) if candidates else None


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    usd_days=st.sets(st.integers(1, 20), max_size=12),
    jpy_days=st.sets(st.integers(1, 20), max_size=12),
    staleness=st.integers(0, 4),
    first=st.integers(1, 20),
    length=st.integers(1, 10),
    seed=st.integers(0, 10**6),
)
def test_daily_rates_property(
    runtime: Runtime,
    usd_days: set[int],
    jpy_days: set[int],
    staleness: int,
    first: int,
    length: int,
    seed: int,
) -> None:
    """Exactly one row per day per pair, each from the latest rate within the staleness
    allowance, or fx_rate_missing if any pair-day has none."""
    msp = new_msp(runtime)
    usd = {d: Decimal(1) + Decimal(seed % 997 + d).scaleb(-4) for d in usd_days}
    jpy = {d: Decimal(100) + Decimal(seed % 991 + 7 * d).scaleb(-2) for d in jpy_days}
    entries = [("EUR", "USD", date(2026, 10, d), str(r)) for d, r in usd.items()]
    entries += [("EUR", "JPY", date(2026, 10, d), str(r)) for d, r in jpy.items()]
    if entries:
        store(msp, *entries)
    set_policy(msp, max_staleness_days=staleness)
    days = list(range(first, first + length))

    expected: dict[tuple[str, str, int], tuple[Decimal, int]] = {}
    missing: set[tuple[str, str, int]] = set()
    for day in days:
        u, j = _latest(usd_days, day, staleness), _latest(jpy_days, day, staleness)
        expected[("JPY", "JPY", day)] = (Decimal(1), day)
        if u is None:
            missing |= {("EUR", "USD", day), ("USD", "EUR", day), ("USD", "JPY", day)}
            continue
        expected[("EUR", "USD", day)] = (usd[u], u)
        expected[("USD", "EUR", day)] = (half_even_18(1 / Fraction(usd[u])), u)
        if j is None:
            missing.add(("USD", "JPY", day))
        else:
            cross = half_even_18(Fraction(jpy[j]) / Fraction(usd[u]))
            expected[("USD", "JPY", day)] = (cross, min(u, j))

    start, end = date(2026, 10, days[0]), date(2026, 10, days[-1])
    if missing:
        with pytest.raises(InvalidInput) as caught:
            daily(msp, PAIRS, start, end, as_of=LATER)
        extra = caught.value.extra
        assert caught.value.code == "fx_rate_missing"
        named = (extra["from_currency"], extra["to_currency"], date.fromisoformat(extra["day"]).day)
        assert named in missing
        return

    frame = daily(msp, PAIRS, start, end, as_of=LATER)
    assert frame.height == 4 * length
    got = {
        (r["from_currency"], r["to_currency"], r["day"].day): (r["rate"], r["rate_date"].day)
        for r in frame.iter_rows(named=True)
    }
    assert len(got) == frame.height  # no pair-day twice
    assert got == expected
    # The same answer as convert() for the same day.
    with runtime.uow() as uow:
        one = conversion.convert(
            uow.session, msp.msp_id, Decimal("1"), "USD", "JPY", end, as_of=LATER
        )
    assert (one.rate, one.rate_date.day) == expected[("USD", "JPY", days[-1])]
