"""``charges.repository.periods_of``: the months a customer has charge lines in, newest
first, read month by month (one index probe each, not every line)."""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from billbyte.charges.models import ChargeLine
from billbyte.charges.repository import periods_of
from billbyte.customers.models import Customer
from billbyte.tenancy import service as tenancy


def _line(msp_id: str, customer_id: str, period: str, key: str) -> ChargeLine:
    zero = Decimal(0)
    return ChargeLine(
        msp_id=msp_id,
        customer_id=customer_id,
        period=period,
        line_key=key,
        vendor="aws",
        billing_currency="USD",
        cost=zero,
        list_cost=zero,
        sell=zero,
        currency="EUR",
        cost_local=zero,
        list_local=zero,
        sell_local=zero,
    )


def test_months_with_lines_newest_first(engine: Engine) -> None:
    with Session(engine) as session:
        msp, _ = tenancy.create_msp(session, "Alpha")
        other_msp, _ = tenancy.create_msp(session, "Beta")
        a = Customer(msp_id=msp.id, external_id="A", name="A", currency="EUR")
        b = Customer(msp_id=msp.id, external_id="B", name="B", currency="EUR")
        c = Customer(msp_id=other_msp.id, external_id="C", name="C", currency="EUR")
        empty = Customer(msp_id=msp.id, external_id="E", name="E", currency="EUR")
        session.add_all([a, b, c, empty])
        session.flush()
        # Several lines a month, a gap (2025-03), a year boundary.
        for period, lines in (("2024-12", 3), ("2025-01", 1), ("2025-02", 4), ("2025-04", 2)):
            session.add_all(_line(msp.id, a.id, period, f"k{i}") for i in range(lines))
        session.add(_line(msp.id, b.id, "2025-03", "k"))  # another customer's month
        session.add(_line(other_msp.id, c.id, "2025-05", "k"))
        session.flush()
        assert periods_of(session, msp.id, a.id) == ["2025-04", "2025-02", "2025-01", "2024-12"]
        assert periods_of(session, msp.id, b.id) == ["2025-03"]
        assert periods_of(session, msp.id, empty.id) == []
        # Another MSP's customer is nobody's here.
        assert periods_of(session, msp.id, c.id) == []
