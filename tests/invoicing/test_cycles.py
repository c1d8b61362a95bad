"""Billing cycles as dates, against a table written by hand (no database)."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from billbyte.invoicing import cycles


@pytest.mark.parametrize(
    ("cycle", "month", "end", "months"),
    [
        ("monthly", "2026-02", "2026-02", ["2026-02"]),
        ("quarterly", "2026-01", "2026-03", ["2026-01", "2026-02", "2026-03"]),
        ("quarterly", "2026-11", "2026-12", ["2026-10", "2026-11", "2026-12"]),
        ("annual", "2026-05", "2026-12", [f"2026-{m:02d}" for m in range(1, 13)]),
    ],
)
def test_billing_periods(cycle: str, month: str, end: str, months: list[str]) -> None:
    assert cycles.period_end_for(cycle, month) == end
    assert cycles.period_months(cycle, end) == months
    assert cycles.is_period_end(cycle, month) == (month == end)


@pytest.mark.parametrize(
    ("period_end", "anchor", "grace", "issued", "due"),
    [
        ("2026-10", 1, 5, date(2026, 11, 1), datetime(2026, 11, 6, tzinfo=UTC)),
        ("2026-10", 15, 5, date(2026, 11, 15), datetime(2026, 11, 15, tzinfo=UTC)),
        ("2026-12", 1, 0, date(2027, 1, 1), datetime(2027, 1, 1, tzinfo=UTC)),
        ("2027-01", 3, 10, date(2027, 2, 3), datetime(2027, 2, 11, tzinfo=UTC)),
    ],
)
def test_issue_and_due_dates(
    period_end: str, anchor: int, grace: int, issued: date, due: datetime
) -> None:
    assert cycles.issue_date(period_end, anchor) == issued
    assert cycles.due_at(period_end, anchor, grace) == due
