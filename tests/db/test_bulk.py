"""``db.bulk.insert_rows``: COPY (PostgreSQL, many rows) and executemany write the same rows.

The rows carry what COPY's text format must escape or keep apart: 38-digit amounts, an
amount of 1e-18, a time in another offset than UTC, NULLs beside the text ``\\N``, tabs,
newlines, backslashes, quotes and non-ASCII text, in plain and JSON columns. What is read
back is compared with what was given (the expected values are the inputs, not a second run
of the code) and the two paths with each other.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import Engine, event, select
from sqlalchemy.orm import Session

from billbyte.charges.models import ChargeChange, ChargeLine
from billbyte.customers.models import Customer
from billbyte.db.bulk import insert_rows
from billbyte.tenancy import service as tenancy

NASTY = "tab\there\nnewline\\backslash \\N not null \"quoted\" 'single' ünïcødé €\r\n"
BIG = Decimal("12345678901234567890.123456789012345678")  # 38 digits, 18 places
MINUS_BIG = Decimal("-12345678901234567890.123456789012345678")  # not -BIG: 28-digit context
TINY = Decimal("0.000000000000000001")
IST = timezone(timedelta(hours=5, minutes=30))
ALWAYS_COPY = 1  # a threshold every batch reaches
NEVER_COPY = 10**9


def _setup(session: Session) -> tuple[str, str]:
    msp, _ = tenancy.create_msp(session, "Bulk Hosting")
    customer = Customer(msp_id=msp.id, external_id="C-1", name="C", currency="EUR")
    session.add(customer)
    session.flush()
    return msp.id, customer.id


def _lines(msp_id: str, customer_id: str, period: str, count: int) -> list[dict[str, Any]]:
    rows = []
    for i in range(count):
        rows.append(
            {
                "msp_id": msp_id,
                "customer_id": customer_id,
                "period": period,
                "line_key": f"k{i:04d}",
                "kind": "usage",
                "vendor": "aws",
                "partner_account_id": None,
                "sub_account_id": None if i % 2 else f"acct {i}\t{NASTY}",
                "service_category": NASTY,
                "service_name": None if i % 3 == 0 else "\\N",
                "charge_category": "Usage",
                "pricing_unit": "\\",
                "description": f"{i} {NASTY}",
                "quantity": Decimal(f"0.{i:018d}"),  # 0, 1e-18, 2e-18, ...
                "billing_currency": "USD",
                "cost": BIG if i % 2 else MINUS_BIG,
                "list_cost": Decimal(i) / 8,
                "sell": Decimal("0"),
                "currency": "EUR",
                "cost_local": Decimal("-0.5") * i,
                "list_local": TINY,
                "sell_local": Decimal(f"98765432109876543210.{i:018d}"),
                "fx_rates": [{"date": "2026-01-31", "rate": "0.9123456789"}, {"n": NASTY}],
                "rule_ids": [] if i % 2 else [NASTY, "r2"],
                "first_day": None if i % 2 else "2026-01-01",
                "last_day": "2026-01-31",
                "updated_at": datetime(2026, 1, 31, 23, 59, 59, 123456, tzinfo=IST),
            }
        )
    return rows


def _changes(msp_id: str, customer_id: str, period: str, count: int) -> list[dict[str, Any]]:
    return [
        {
            "msp_id": msp_id,
            "customer_id": customer_id,
            "period": period,
            "line_key": f"k{i:04d}",
            "change": "deleted" if i % 2 else "created",
            "line": None if i % 2 else {"text": NASTY, "amount": str(BIG), "nested": [None, 1]},
            "previous": {"text": NASTY} if i % 2 else None,
        }
        for i in range(count)
    ]


def _read_lines(session: Session, period: str) -> list[dict[str, Any]]:
    rows = session.scalars(
        select(ChargeLine).where(ChargeLine.period == period).order_by(ChargeLine.line_key)
    )
    return [
        {c.name: getattr(line, c.key) for c in ChargeLine.__mapper__.columns if c.name != "id"}
        for line in rows
    ]


def _read_changes(session: Session, period: str) -> list[dict[str, Any]]:
    rows = session.scalars(
        select(ChargeChange).where(ChargeChange.period == period).order_by(ChargeChange.seq)
    )
    return [
        {
            "line_key": r.line_key,
            "change": r.change,
            "line": r.line,
            "previous": r.previous,
            "occurred_at": r.occurred_at,
        }
        for r in rows
    ]


def _statements(engine: Engine) -> list[str]:
    seen: list[str] = []

    @event.listens_for(engine, "before_cursor_execute")
    def _note(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        seen.append(statement)

    return seen


@pytest.mark.parametrize("count", [1, 7, 40])
def test_copy_and_executemany_write_identical_rows(engine: Engine, count: int) -> None:
    statements = _statements(engine)
    before = datetime.now(UTC)
    with Session(engine) as session:
        msp_id, customer_id = _setup(session)
        statements.clear()
        assert (
            insert_rows(
                session,
                ChargeLine.__table__,
                _lines(msp_id, customer_id, "2026-01", count),
                copy_threshold=ALWAYS_COPY,
            )
            == count
        )
        insert_rows(
            session,
            ChargeChange.__table__,
            _changes(msp_id, customer_id, "2026-01", count),
            copy_threshold=ALWAYS_COPY,
        )
        copied = [s for s in statements if "charge_" in s]
        if engine.dialect.name == "postgresql":  # COPY bypasses the statement events
            assert not any(s.lstrip().upper().startswith("INSERT") for s in copied), copied
        else:
            assert any(s.lstrip().upper().startswith("INSERT") for s in copied)
        insert_rows(
            session,
            ChargeLine.__table__,
            _lines(msp_id, customer_id, "2026-02", count),
            copy_threshold=NEVER_COPY,
        )
        insert_rows(
            session,
            ChargeChange.__table__,
            _changes(msp_id, customer_id, "2026-02", count),
            copy_threshold=NEVER_COPY,
        )
        session.commit()

    with Session(engine) as session:
        by_copy, by_insert = _read_lines(session, "2026-01"), _read_lines(session, "2026-02")
        changes_copy, changes_insert = (
            _read_changes(session, "2026-01"),
            _read_changes(session, "2026-02"),
        )
    expected = _lines("", "", "", count)
    for got in (by_copy, by_insert):
        assert len(got) == count
        for row, want in zip(got, expected, strict=True):
            for name, value in want.items():
                if name in ("msp_id", "customer_id", "period"):
                    continue
                # Amounts exactly (equal Decimals, whatever their exponent); the time as the
                # same instant, read back in UTC.
                assert row[name] == value, (name, row[name], value)
            assert row["updated_at"].tzinfo is not None
            assert row["updated_at"].utcoffset() == timedelta(0)
            assert format(row["cost"], "f").lstrip("-") == str(BIG)  # all 38 digits
    strip = ("period",)
    assert [{k: v for k, v in r.items() if k not in strip} for r in by_copy] == [
        {k: v for k, v in r.items() if k not in strip} for r in by_insert
    ]
    want_changes = _changes("", "", "", count)
    for got in (changes_copy, changes_insert):
        # In the order given (the feed's seq), JSON NULL apart from SQL NULL kept as given.
        assert [(c["line_key"], c["change"], c["line"], c["previous"]) for c in got] == [
            (w["line_key"], w["change"], w["line"], w["previous"]) for w in want_changes
        ]
        # The Python-side default was filled in for each row, on both paths.
        assert all(before <= c["occurred_at"] <= datetime.now(UTC) for c in got)


def test_defaults_are_computed_per_row(engine: Engine) -> None:
    with Session(engine) as session:
        msp_id, customer_id = _setup(session)
        rows = _lines(msp_id, customer_id, "2026-03", 3)
        insert_rows(session, ChargeLine.__table__, rows, copy_threshold=ALWAYS_COPY)
        session.commit()
        ids = session.scalars(select(ChargeLine.id).where(ChargeLine.period == "2026-03")).all()
    assert len(set(ids)) == 3 and all(i.startswith("chl") for i in ids)


def test_nothing_to_insert_writes_nothing(engine: Engine) -> None:
    with Session(engine) as session:
        assert insert_rows(session, ChargeLine.__table__, []) == 0
