"""24 months of history stay flat: what one period's reads touch on PostgreSQL does not grow
with the months stored before it.

The ledger and the rollups of a few customers are written for one month, and the queries
behind ``GET /v1/customers/{id}/charges``, the change feed read from a cursor, the help-desk
analytics, the portal overview and the MSP-wide reads of a period (the margin report, the
console's customer list) are captured as the real service functions send them and
run again under ``EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON)``. Then 23 more months are written
(bulk, COPY) and the same reads of the newest month are explained. Each query's shared
buffers and rows scanned with 24 months must stay within a small factor of the figures with
one (the months are the same size), and no big table is read by a sequential scan. The one
read whose answer grows with the months, the list of months a customer has charges in, may
grow with the months (one index probe each) but not with their lines.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import Engine, event, text
from sqlalchemy.orm import Session

from billbyte.analytics import service as analytics
from billbyte.analytics.models import CostResource, CostRollup, CostUsageDay
from billbyte.auth.roles import Role
from billbyte.auth.subject import AuthSubject
from billbyte.auth.web_sessions import WebSubject
from billbyte.charges import repository as charge_reads
from billbyte.charges import service as charges
from billbyte.charges.models import ChargeChange, ChargeLine, ClosedPeriod, RatingState
from billbyte.customers.models import Customer
from billbyte.db.bulk import insert_rows
from billbyte.kit.periods import Period
from billbyte.portal import views as portal
from billbyte.runtime import Runtime
from billbyte.tenancy import service as tenancy

MONTHS = 24
# The history at the first measurement. Not one month: on tables that small the planner
# rightly prefers a sequential scan of a page or two, and the plans would differ for a
# reason that is not growth (6 → 24 months is 4×: a read of the history would show it).
BASE_MONTHS = 6
FIRST = Period.parse("2025-01")
CUSTOMERS = 40
LINES = 20  # charge lines per customer-month
CELLS = 4  # rollup rows per charge line (days × regions)
RANKED = 10  # ranked resources per customer-month
BIG_TABLES = {
    "charge_lines",
    "charge_changes",
    "cost_rollups",
    "cost_usage_days",
    "cost_resource_ranking",
    "rating_states",
    "closed_periods",
}
# Allowed growth from 6 months of history to 24 (each month the same size): a plan that
# reads the whole history grows ~4×; one that reads the month grows not at all, apart
# from an index one level deeper.
FACTOR = 1.5
SLACK_BUFFERS = 5
SLACK_ROWS = 20


@dataclass
class Profile:
    statement: str
    buffers: int  # shared blocks hit + read, the whole plan
    rows: int  # rows the scans produced or removed by a filter
    seq_scans: set[str]  # big tables read by a sequential scan


def _month_rows(msp_id: str, customers: list[str], period: Period) -> dict[str, list[dict]]:
    """One month of a few customers' ledger and rollups, as rating would leave them."""
    out: dict[str, list[dict[str, Any]]] = {
        name: [] for name in ("lines", "changes", "rollups", "days", "ranking", "states", "closed")
    }
    stamp = datetime(period.year, period.month, 1, tzinfo=UTC) + timedelta(days=27)
    for c, customer_id in enumerate(customers):
        for i in range(LINES):
            key = f"{period}-{c}-{i:03d}"
            amount = Decimal(f"{i + 1}.{c:02d}3456789")
            line = {
                "msp_id": msp_id,
                "customer_id": customer_id,
                "period": str(period),
                "line_key": key,
                "kind": "usage",
                "vendor": ("aws", "azure", "gcp")[i % 3],
                "partner_account_id": None,
                "sub_account_id": f"acct-{i % 5}",
                "service_category": "Compute",
                "service_name": f"Service {i % 12}",
                "charge_category": "Usage",
                "pricing_unit": "Hours",
                "description": f"Service {i % 12} / Usage",
                "quantity": Decimal(i),
                "billing_currency": "USD",
                "cost": amount,
                "list_cost": amount,
                "sell": amount,
                "currency": "EUR",
                "cost_local": amount,
                "list_local": amount,
                "sell_local": amount * 2,
                "fx_rates": [{"date": f"{period}-01", "rate": "1"}],
                "rule_ids": [],
                "first_day": f"{period}-01",
                "last_day": str(period.last_day),
                "updated_at": stamp,
            }
            out["lines"].append(line)
            change = {
                "msp_id": msp_id,
                "customer_id": customer_id,
                "period": str(period),
                "line_key": key,
                "change": "created",
                "line": {"line_key": key, "sell_local": str(amount * 2)},
                "previous": None,
                "occurred_at": stamp,
            }
            out["changes"].append(change)
            if i % 2:
                out["changes"].append({**change, "change": "updated", "previous": change["line"]})
            for cell in range(CELLS):
                out["rollups"].append(
                    {
                        "msp_id": msp_id,
                        "customer_id": customer_id,
                        "period": str(period),
                        "line_key": key,
                        "kind": "usage",
                        "day": period.first_day + timedelta(days=cell * 2),
                        "vendor": line["vendor"],
                        "service": line["service_name"],
                        "sub_account_id": line["sub_account_id"],
                        "region": f"region-{cell % 3}",
                        "tags": json.dumps({"team": f"t{cell % 4}"}),
                        "currency": "EUR",
                        "amount_minor": 100 + cell,
                        "exact": Decimal(100 + cell) / 100,
                        "billing_currency": "USD",
                        "cost": Decimal(cell),
                    }
                )
        for day in range(period.last_day.day):
            out["days"].append(
                {
                    "msp_id": msp_id,
                    "customer_id": customer_id,
                    "period": str(period),
                    "day": period.first_day + timedelta(days=day),
                    "billing_currency": "USD",
                    "cost": Decimal(day),
                }
            )
        for r in range(RANKED):
            out["ranking"].append(
                {
                    "msp_id": msp_id,
                    "customer_id": customer_id,
                    "period": str(period),
                    "resource_id": f"arn:{customer_id}:{r}",
                    "vendor": "aws",
                    "service_name": "EC2",
                    "currency": "EUR",
                    "amount": Decimal(r),
                    "billing_currency": "USD",
                    "cost": Decimal(r),
                }
            )
        out["states"].append(
            {
                "msp_id": msp_id,
                "customer_id": customer_id,
                "period": str(period),
                "status": "ok",
                "message": None,
                "usage_lines": LINES * 100,
                "rated_at": stamp,
            }
        )
    return out


TABLES = {
    "lines": ChargeLine.__table__,
    "changes": ChargeChange.__table__,
    "rollups": CostRollup.__table__,
    "days": CostUsageDay.__table__,
    "ranking": CostResource.__table__,
    "states": RatingState.__table__,
}


def _write_months(engine: Engine, msp_id: str, customers: list[str], months: range) -> None:
    with Session(engine) as session:
        for offset in months:
            period = FIRST.add_months(offset)
            rows = _month_rows(msp_id, customers, period)
            for name, table in TABLES.items():
                insert_rows(session, table, rows[name])
            if offset:  # the month before is invoiced once the next begins
                insert_rows(
                    session,
                    ClosedPeriod.__table__,
                    [
                        {"msp_id": msp_id, "customer_id": c, "period": str(period.add_months(-1))}
                        for c in customers
                    ],
                )
        session.commit()
    with engine.connect() as connection:
        connection.execute(text("COMMIT"))  # ANALYZE outside a transaction block
        for name in BIG_TABLES:
            connection.execute(text(f"ANALYZE {name}"))


def _captured(engine: Engine, read: Callable[[Session], object]) -> list[tuple[str, Any]]:
    """The SELECTs ``read`` sends, with their parameters."""
    seen: list[tuple[str, Any]] = []

    def note(_c: Any, _cursor: Any, statement: str, parameters: Any, *_a: Any) -> None:
        if statement.lstrip().upper().startswith(("SELECT", "WITH")):
            seen.append((statement, parameters))

    event.listen(engine, "before_cursor_execute", note)
    try:
        with Session(engine) as session:
            read(session)
    finally:
        event.remove(engine, "before_cursor_execute", note)
    return seen


def _walk(node: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield node
    for child in node.get("Plans", []):
        yield from _walk(child)


def _profile(engine: Engine, statement: str, parameters: Any) -> Profile:
    with engine.connect() as connection:
        cursor = connection.connection.driver_connection.cursor()  # type: ignore[union-attr]
        cursor.execute(f"EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) {statement}", parameters)
        plan = cursor.fetchone()[0][0]["Plan"]
        connection.rollback()
    rows, seq = 0, set()
    for node in _walk(plan):
        if "Scan" in node["Node Type"]:
            loops = node.get("Actual Loops", 1)
            rows += loops * (
                node.get("Actual Rows", 0)
                + node.get("Rows Removed by Filter", 0)
                + node.get("Rows Removed by Index Recheck", 0)
            )
        if node["Node Type"] == "Seq Scan" and node.get("Relation Name") in BIG_TABLES:
            seq.add(node["Relation Name"])
    buffers = plan.get("Shared Hit Blocks", 0) + plan.get("Shared Read Blocks", 0)
    return Profile(statement, buffers, rows, seq)


def _reads(runtime: Runtime, msp_id: str, customer_id: str, period: Period, after: int) -> dict:
    subject = AuthSubject(msp_id=msp_id, actor="test", role=Role.ADMIN)
    web = WebSubject(
        audience="portal",
        session_id="s",
        user_id="u",
        msp_id=msp_id,
        customer_id=customer_id,
        role="customer",
        email="finance@example.com",
        name="Finance",
        locale="en",
        csrf_token="t",
    )
    today = period.last_day
    return {
        "charges": lambda s: charges.customer_charges(s, subject, customer_id, str(period)),
        "change feed": lambda s: charges.changes(s, subject, str(after), 100),
        "analytics": lambda s: analytics.analytics(
            runtime, s, subject, customer_id, str(period), today
        ),
        "portal overview": lambda s: portal.overview(s, web, str(period), today),
        # The MSP-wide reads of one period: the margin report and the console's customer list.
        "margin report": lambda s: charges.margin_report(s, subject, str(period), "customer"),
        "period totals": lambda s: charge_reads.period_totals(s, msp_id, str(period)),
    }


def _profiles(
    runtime: Runtime, msp_id: str, customer_id: str, period: Period
) -> dict[str, list[Profile]]:
    engine = runtime.engine
    with engine.connect() as connection:
        last = connection.execute(text("SELECT max(seq) FROM charge_changes")).scalar_one()
    out = {}
    for name, read in _reads(runtime, msp_id, customer_id, period, last - 150).items():
        out[name] = [_profile(engine, s, p) for s, p in _captured(engine, read)]
    return out


@pytest.mark.parametrize("backend", ["postgresql"])
def test_reads_of_one_month_stay_flat_over_24_months(runtime: Runtime) -> None:
    engine = runtime.engine
    with Session(engine) as session:
        msp, _ = tenancy.create_msp(session, "History Hosting")
        customers = [
            Customer(msp_id=msp.id, external_id=f"C{i}", name=f"C{i}", currency="EUR")
            for i in range(CUSTOMERS)
        ]
        session.add_all(customers)
        session.commit()
        msp_id, ids = msp.id, [c.id for c in customers]
    watched = ids[1]

    _write_months(engine, msp_id, ids, range(BASE_MONTHS))
    one = _profiles(runtime, msp_id, watched, FIRST.add_months(BASE_MONTHS - 1))
    _write_months(engine, msp_id, ids, range(BASE_MONTHS, MONTHS))
    with engine.connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM charge_lines")).scalar_one() == (
            MONTHS * CUSTOMERS * LINES
        )
    many = _profiles(runtime, msp_id, watched, FIRST.add_months(MONTHS - 1))

    report = []
    for name in one:
        assert [p.statement for p in one[name]] == [p.statement for p in many[name]], name
        for small, big in zip(one[name], many[name], strict=True):
            report.append(
                f"{name}: buffers {small.buffers} -> {big.buffers}, rows {small.rows} -> "
                f"{big.rows}, seq scans {sorted(big.seq_scans)}: {big.statement[:140]!r}"
            )
    print("\n".join(report))  # shown with -s, and on failure
    for name in one:
        for small, big in zip(one[name], many[name], strict=True):
            what = f"{name}: {big.statement[:300]}"
            assert not big.seq_scans, f"sequential scan of {big.seq_scans} in {what}"
            if "WITH RECURSIVE months" in big.statement:
                # The customer's months (charges.repository.periods_of): an answer of one row
                # a month, read with an index probe or two a month, whatever their lines.
                assert big.rows <= 4 * MONTHS + SLACK_ROWS < LINES * MONTHS, (small, big)
                assert big.buffers <= 4 * MONTHS + SLACK_BUFFERS, (small, big)
                continue
            assert big.buffers <= FACTOR * small.buffers + SLACK_BUFFERS, (small, big)
            assert big.rows <= FACTOR * small.rows + SLACK_ROWS, (small, big)
