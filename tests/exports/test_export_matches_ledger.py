"""The FOCUS export's rows add up exactly to the stored charge lines (no tolerance).

The expected amounts are read from the ``charge_lines`` table and rounded here by the rule
docs/rating.md states, written out with exact fractions: every line half-even to the cent,
then the cents the total is off by go one each to the lines whose exact amount lies
furthest beyond their rounding (ties by line key). Nothing of the code under test computes
the expectation.
"""

from __future__ import annotations

from collections import defaultdict
from decimal import Decimal
from fractions import Fraction
from pathlib import Path

from sqlalchemy import select

from billbyte.charges.models import ChargeLine
from billbyte.runtime import Runtime
from tests.catalog.factories import PERIOD, World, build
from tests.conftest import Tenant
from tests.exports.test_focus_export import export

CENT = Fraction(1, 100)


def half_even_cents(value: Fraction) -> int:
    units = value / CENT
    floor = units.numerator // units.denominator
    rest = units - floor
    if rest > Fraction(1, 2) or (rest == Fraction(1, 2) and floor % 2):
        return floor + 1
    return floor


def expected_cents(stored: dict[str, Fraction]) -> tuple[dict[str, int], int]:
    """Line key → cents, and the customer's total in cents."""
    total = half_even_cents(sum(stored.values(), Fraction(0)))
    cents = {key: half_even_cents(value) for key, value in stored.items()}
    gap = total - sum(cents.values())
    direction = 1 if gap > 0 else -1
    residual = {key: stored[key] - cents[key] * CENT for key in stored}
    for key in sorted(stored, key=lambda k: (-direction * residual[k], k))[: abs(gap)]:
        cents[key] += direction
    return cents, total


def stored_lines(runtime: Runtime) -> dict[str, dict[str, Fraction]]:
    """Customer → line key → exact stored amount, straight from the table."""
    with runtime.uow() as uow:
        rows = uow.session.execute(
            select(ChargeLine.customer_id, ChargeLine.line_key, ChargeLine.sell_local).where(
                ChargeLine.period == PERIOD
            )
        ).all()
    found: dict[str, dict[str, Fraction]] = defaultdict(dict)
    for customer_id, key, amount in rows:
        found[customer_id][key] = Fraction(Decimal(amount))
    return dict(found)


def test_detail_rows_sum_to_the_stored_lines_exactly(
    tenant: Tenant, runtime: Runtime, tmp_path: Path
) -> None:
    world: World = build(tenant, runtime, tmp_path)
    stored = stored_lines(runtime)
    assert world.customer in stored
    for customer_id, lines in stored.items():
        _, rows = export(tenant, customer_id)
        per_line: dict[str, Decimal] = defaultdict(Decimal)
        count: dict[str, int] = defaultdict(int)
        for row in rows:
            per_line[row["x_ChargeLineKey"]] += Decimal(row["BilledCost"])
            count[row["x_ChargeLineKey"]] += 1
        cents, total = expected_cents(lines)
        # Per customer and per charge line, to the cent: Decimal equality.
        assert sum(per_line.values(), Decimal(0)) == Decimal(total).scaleb(-2)
        assert per_line == {key: Decimal(c).scaleb(-2) for key, c in cents.items()}
        # The usage lines really are detailed below the line (not exported whole).
        usage = {r["x_ChargeLineKey"] for r in rows if r["x_ChargeKind"] == "usage"}
        assert any(count[key] > 1 for key in usage), count
