"""Reads of the charge ledger for other features and pages (they never go through
``charges.service``)."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal, localcontext

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from billbyte.charges.models import ChargeLine


@dataclass(frozen=True)
class OpenTotal:
    """A customer's charge lines of one period: the currency ``GET /charges`` reports them in
    (its first line's, in the same order) and their exact sum, before rounding."""

    currency: str
    exact: Decimal


def period_totals(session: Session, msp_id: str, period: str) -> dict[str, OpenTotal]:
    """Every customer's charge total of ``period``, in one query over the MSP's charge lines.

    The sum is taken here, not in SQL: SQLite stores amounts as text and would sum them as
    floats. Rounding ``exact`` to ``currency`` gives the charges total the API reports."""
    rows = session.execute(
        select(ChargeLine.customer_id, ChargeLine.currency, ChargeLine.sell_local)
        .where(ChargeLine.msp_id == msp_id, ChargeLine.period == period)
        .order_by(
            ChargeLine.customer_id,
            ChargeLine.vendor,
            ChargeLine.service_name,
            ChargeLine.line_key,
        )
    )
    currencies: dict[str, str] = {}
    sums: dict[str, Decimal] = {}
    with localcontext() as context:
        context.prec = 80  # exact: 38-digit amounts, summed over any number of lines
        for customer_id, currency, amount in rows:
            currencies.setdefault(customer_id, currency)
            sums[customer_id] = sums.get(customer_id, Decimal(0)) + amount
    return {key: OpenTotal(currencies[key], sums[key]) for key in sums}


# The months of a customer's lines, one index probe each (``ix_charge_lines_lookup``: MSP,
# customer, period): each step asks for the first period after the last one found, starting
# after '' (so that the first step is planned as the others, as an index probe). A plain
# DISTINCT would read every line of every month, and grow with the history (see
# tests/db/test_history_scale.py); this grows with the number of months only.
_PERIODS_OF = text(
    """
    WITH RECURSIVE months(period) AS (
        SELECT ''
        UNION ALL
        SELECT (
            SELECT min(later.period) FROM charge_lines AS later
            WHERE later.msp_id = :msp_id AND later.customer_id = :customer_id
                AND later.period > months.period
        )
        FROM months WHERE months.period IS NOT NULL
    )
    SELECT period FROM months WHERE period IS NOT NULL AND period <> ''
    """
)


def periods_of(session: Session, msp_id: str, customer_id: str) -> list[str]:
    """The months in which a customer has charge lines, newest first."""
    rows = session.scalars(_PERIODS_OF, {"msp_id": msp_id, "customer_id": customer_id})
    return sorted(set(rows), reverse=True)
