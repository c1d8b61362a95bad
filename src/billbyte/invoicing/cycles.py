"""Billing cycles as plain date arithmetic: which months an invoice covers, when it is dated
and when it becomes due. No database here.

Invoices cover whole calendar months of charges, because vendors bill calendar months:

- ``monthly``: one month;
- ``quarterly``: the calendar quarter (Jan–Mar, Apr–Jun, Jul–Sep, Oct–Dec);
- ``annual``: the calendar year.

A billing period is named by its **last month** (``period_end``): the October–December
quarter of 2026 is ``2026-12``. The customer's ``billing_anchor_day`` (1–28) is the day of
the month after the period on which the invoice is **dated** (``issue_date``). The period's
invoice stays a draft that follows new data until it is **due**: the later of the end of the
MSP's grace period (``grace_days`` full days after the period's last day) and the issue date.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

MONTHLY = "monthly"
QUARTERLY = "quarterly"
ANNUAL = "annual"
_LENGTH = {MONTHLY: 1, QUARTERLY: 3, ANNUAL: 12}


def parse_month(month: str) -> tuple[int, int]:
    year, number = month.split("-")
    return int(year), int(number)


def month_name(year: int, number: int) -> str:
    return f"{year:04d}-{number:02d}"


def add_months(month: str, count: int) -> str:
    year, number = parse_month(month)
    index = year * 12 + (number - 1) + count
    return month_name(index // 12, index % 12 + 1)


def period_end_for(cycle: str, month: str) -> str:
    """The last month of the billing period that contains ``month``."""
    length = _LENGTH.get(cycle, 1)
    year, number = parse_month(month)
    last = ((number - 1) // length + 1) * length
    return month_name(year, last)


def is_period_end(cycle: str, month: str) -> bool:
    return period_end_for(cycle, month) == month


def period_months(cycle: str, period_end: str) -> list[str]:
    """The months of the billing period ending with ``period_end``, oldest first."""
    length = _LENGTH.get(cycle, 1)
    return [add_months(period_end, -offset) for offset in range(length - 1, -1, -1)]


def first_day_after(period_end: str) -> date:
    year, number = parse_month(add_months(period_end, 1))
    return date(year, number, 1)


def issue_date(period_end: str, anchor_day: int) -> date:
    """The invoice date: the anchor day of the month after the period."""
    return first_day_after(period_end).replace(day=max(1, min(anchor_day, 28)))


def due_at(period_end: str, anchor_day: int, grace_days: int) -> datetime:
    """When the period's invoice may be finalized (00:00 UTC of that day)."""
    grace_end = first_day_after(period_end) + timedelta(days=grace_days)
    day = max(grace_end, issue_date(period_end, anchor_day))
    return datetime(day.year, day.month, day.day, tzinfo=UTC)
