"""The charge ledger: the one value of a charge line, and the only writes of the open lines.

A charge line travels from rating (usage and fee lines), catalog (licence lines) and late
data (adjustment lines) to the charges API, credit control and invoicing as one frozen
``Charge``. The functions here are the only ones that add, change or delete a
``ChargeLine``, and each such write records its change-feed entry (``ChargeChange``) in the
same transaction. ``lock_msp`` serialises an MSP's writers on PostgreSQL, so change-feed
sequence numbers of one MSP are committed in order and a BSS that resumes from a cursor
never skips a change.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, fields, replace
from decimal import ROUND_HALF_EVEN, Context, Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from billbyte.charges.models import ChargeChange, ChargeLine, ClosedPeriod, RatingState
from billbyte.db.bulk import insert_rows
from billbyte.kit.clock import utcnow
from billbyte.kit.money import plain_decimal
from billbyte.tenancy.models import Msp

USAGE = "usage"
FEE = "fee"
ADJUSTMENT = "adjustment"

# Amounts are stored as NUMERIC(38, 18) on PostgreSQL: a line kept at more places would
# read back different from what was rated and show as "updated" at every re-rating.
# Quantizing needs room for every digit (the default context holds only 28).
STORED = Decimal("1e-18")
WIDE = Context(prec=80, rounding=ROUND_HALF_EVEN)


@dataclass(frozen=True)
class Charge:
    """One charge line of a customer's period, at full precision (amounts exact, in the
    billing currency and in the customer's ``currency``)."""

    line_key: str
    kind: str
    vendor: str
    partner_account_id: str | None
    sub_account_id: str | None
    service_category: str | None
    service_name: str | None
    charge_category: str | None
    pricing_unit: str | None
    description: str
    quantity: Decimal
    billing_currency: str
    cost: Decimal
    list_cost: Decimal
    sell: Decimal
    currency: str
    cost_local: Decimal
    list_local: Decimal
    sell_local: Decimal
    fx_rates: tuple[dict[str, Any], ...]  # {"date": ISO day, "rate": text}, sorted
    rule_ids: tuple[str, ...]
    first_day: str | None
    last_day: str | None

    @classmethod
    def of(cls, values: Mapping[Any, Any]) -> Charge:
        """From a mapping with every field (lists allowed for ``fx_rates``/``rule_ids``)."""
        data = {name: values[name] for name in FIELDS}
        data["fx_rates"] = tuple(data["fx_rates"] or ())
        data["rule_ids"] = tuple(data["rule_ids"] or ())
        return cls(**data)

    def stored(self) -> Charge:
        """This line with its amounts at the stored precision (what reads back)."""
        return replace(
            self,
            **{
                name: getattr(self, name).quantize(STORED, context=WIDE)
                for name in AMOUNTS
                if getattr(self, name) is not None
            },
        )

    def comparable(self) -> dict[str, Any]:
        """The JSON of the change feed, in which equal amounts compare equal whatever their
        exponent."""
        out: dict[str, Any] = {}
        for name in FIELDS:
            value = getattr(self, name)
            if isinstance(value, Decimal):
                value = plain_decimal(value)
            elif isinstance(value, tuple):
                value = list(value)
            out[name] = value
        return out


FIELDS = tuple(f.name for f in fields(Charge))
# What a charge line is, apart from its key (copied onto a stored row).
LINE_FIELDS = tuple(name for name in FIELDS if name != "line_key")
AMOUNTS = ("quantity", "cost", "list_cost", "sell", "cost_local", "list_local", "sell_local")


def of_row(line: ChargeLine) -> Charge:
    return Charge.of({name: getattr(line, name) for name in FIELDS})


def line_key(values: Iterable[Any]) -> str:
    text = "\x1f".join("" if v is None else str(v) for v in values)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def exact_sum(values: Iterable[Decimal]) -> Decimal:
    """The exact sum (the default context keeps only 28 significant digits)."""
    total = Decimal(0)
    for value in values:
        total = WIDE.add(total, value)
    return total


def lines_by_month(
    session: Session, customer_id: str, months: Sequence[str]
) -> dict[str, list[Charge]]:
    """A customer's lines of ``months`` (month → lines by key), read as plain rows: no ORM
    objects, so a read-only unit of work holds nothing."""
    found: dict[str, list[Charge]] = {}
    if not months:
        return found
    table = ChargeLine.__table__
    for row in session.execute(
        select(table)
        .where(table.c.customer_id == customer_id, table.c.period.in_(list(months)))
        .order_by(table.c.period, table.c.line_key)
    ):
        found.setdefault(row.period, []).append(Charge.of(row._mapping))
    return found


def lines_of_customers(
    session: Session, months_of: Mapping[str, Sequence[str]]
) -> dict[str, dict[str, list[Charge]]]:
    """``lines_by_month`` of many customers (customer → its months) in one query: customer →
    month → lines by key, each customer's months as ``lines_by_month`` gives them."""
    found: dict[str, dict[str, list[Charge]]] = {}
    months = sorted({month for wanted in months_of.values() for month in wanted})
    if not months:
        return found
    table = ChargeLine.__table__
    # The charge's own columns only: the row's id and timestamps would be converted for
    # nothing, tens of thousands of times.
    rows = session.execute(
        select(table.c.customer_id, table.c.period, *(table.c[name] for name in FIELDS))
        .where(table.c.customer_id.in_(list(months_of)), table.c.period.in_(months))
        .order_by(table.c.customer_id, table.c.period, table.c.line_key)
    ).all()
    for row in rows:
        if row.period in months_of[row.customer_id]:
            by_month = found.setdefault(row.customer_id, {})
            by_month.setdefault(row.period, []).append(Charge.of(row._mapping))
    return found


def lock_msp(session: Session, msp_id: str) -> None:
    """Take the MSP's ledger lock (PostgreSQL; SQLite writers are serialised anyway)."""
    session.scalar(select(Msp.id).where(Msp.id == msp_id).with_for_update())


def closed_customers(session: Session, msp_id: str, period: str) -> set[str]:
    return set(
        session.scalars(
            select(ClosedPeriod.customer_id).where(
                ClosedPeriod.msp_id == msp_id, ClosedPeriod.period == period
            )
        )
    )


def closed_periods_of(session: Session, customer_id: str) -> set[str]:
    return set(
        session.scalars(select(ClosedPeriod.period).where(ClosedPeriod.customer_id == customer_id))
    )


def record_change(
    session: Session,
    msp_id: str,
    customer_id: str,
    period: str,
    line_key: str,
    change: str,
    line: dict[str, Any] | None,
    previous: dict[str, Any] | None,
) -> None:
    """One change-feed entry (``created``/``updated``/``deleted`` of a line, or another
    event a BSS follows in the same feed, e.g. ``prepaid``)."""
    session.add(
        ChargeChange(
            msp_id=msp_id,
            customer_id=customer_id,
            period=period,
            line_key=line_key,
            change=change,
            line=line,
            previous=previous,
        )
    )


def add(session: Session, msp_id: str, customer_id: str, period: str, charge: Charge) -> None:
    """A new open line (at storage precision), with its ``created`` change."""
    charge = charge.stored()
    session.add(ChargeLine(**_line_values(msp_id, customer_id, period, charge)))
    record_change(
        session, msp_id, customer_id, period, charge.line_key, "created", charge.comparable(), None
    )


def _line_values(msp_id: str, customer_id: str, period: str, charge: Charge) -> dict[str, Any]:
    """A stored charge as the columns of its ``ChargeLine``."""
    values = {name: getattr(charge, name) for name in LINE_FIELDS}
    values["fx_rates"] = list(charge.fx_rates)
    values["rule_ids"] = list(charge.rule_ids)
    return {
        "msp_id": msp_id,
        "customer_id": customer_id,
        "period": period,
        "line_key": charge.line_key,
        **values,
    }


def _change_values(
    msp_id: str,
    customer_id: str,
    period: str,
    line_key: str,
    change: str,
    line: dict[str, Any] | None,
    previous: dict[str, Any] | None,
) -> dict[str, Any]:
    return {
        "msp_id": msp_id,
        "customer_id": customer_id,
        "period": period,
        "line_key": line_key,
        "change": change,
        "line": line,
        "previous": previous,
    }


def _changed(line: ChargeLine, charge: Charge) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """Make ``line`` say ``charge`` (stored, same key); returns its JSON after and before
    when it differed, else None."""
    before = of_row(line).comparable()
    after = charge.comparable()
    if before == after:
        return None
    for name in LINE_FIELDS:
        value = getattr(charge, name)
        setattr(line, name, list(value) if isinstance(value, tuple) else value)
    line.updated_at = utcnow()
    return after, before


def update(session: Session, msp_id: str, line: ChargeLine, charge: Charge) -> bool:
    """Make ``line`` say ``charge`` (same key); records an ``updated`` change if it differs.
    Returns whether it did."""
    changed = _changed(line, charge.stored())
    if changed is None:
        return False
    after, before = changed
    record_change(
        session, msp_id, line.customer_id, line.period, line.line_key, "updated", after, before
    )
    return True


def delete(session: Session, msp_id: str, line: ChargeLine) -> None:
    """Remove an open line, with its ``deleted`` change."""
    before = of_row(line).comparable()
    record_change(
        session, msp_id, line.customer_id, line.period, line.line_key, "deleted", None, before
    )
    session.delete(line)


# Customers whose stored lines are read per query (an IN list every database accepts).
_CUSTOMERS_PER_READ = 500


def write_periods(
    session: Session, msp_id: str, period: str, by_customer: Mapping[str, Mapping[str, Charge]]
) -> dict[str, int]:
    """Replace the rated lines of ``period`` (every kind but adjustments, which
    ``invoicing.adjustments`` keeps) of several customers of one MSP by ``by_customer``
    (customer → line key → charge). Their stored lines are read in a few queries, and the
    new lines and every change-feed entry are written in one bulk insert each (COPY on
    PostgreSQL when there are many, ``db.bulk``). Changes are recorded in the order of
    ``by_customer``, each customer's deletions first. Returns the changes per customer."""
    existing = _stored_lines(session, msp_id, period, list(by_customer))
    new_lines: list[dict[str, Any]] = []
    changes: list[dict[str, Any]] = []
    counts: dict[str, int] = {}
    for customer_id, lines in by_customer.items():
        stored = existing.get(customer_id, {})
        before = len(changes)
        for key, line in stored.items():
            if key not in lines:
                changes.append(
                    _change_values(
                        msp_id, customer_id, period, key, "deleted", None, of_row(line).comparable()
                    )
                )
                session.delete(line)
        for key, charge in lines.items():
            charge = charge.stored()
            current = stored.get(key)
            if current is None:
                new_lines.append(_line_values(msp_id, customer_id, period, charge))
                changes.append(
                    _change_values(
                        msp_id, customer_id, period, key, "created", charge.comparable(), None
                    )
                )
                continue
            changed = _changed(current, charge)
            if changed is not None:
                changes.append(
                    _change_values(msp_id, customer_id, period, key, "updated", *changed)
                )
        counts[customer_id] = len(changes) - before
    # Deleted lines go first (insert_rows flushes them): a key may come back as a new line.
    insert_rows(session, ChargeLine.__table__, new_lines)
    insert_rows(session, ChargeChange.__table__, changes)
    session.flush()
    return counts


def _stored_lines(
    session: Session, msp_id: str, period: str, customer_ids: Sequence[str]
) -> dict[str, dict[str, ChargeLine]]:
    """The customers' stored lines of ``period`` but adjustments, by customer and key."""
    found: dict[str, dict[str, ChargeLine]] = {}
    for start in range(0, len(customer_ids), _CUSTOMERS_PER_READ):
        chunk = list(customer_ids[start : start + _CUSTOMERS_PER_READ])
        for line in session.scalars(
            select(ChargeLine).where(
                ChargeLine.msp_id == msp_id,
                ChargeLine.period == period,
                ChargeLine.customer_id.in_(chunk),
                ChargeLine.kind != ADJUSTMENT,
            )
        ):
            found.setdefault(line.customer_id, {})[line.line_key] = line
    return found


def set_rating_state(
    session: Session,
    msp_id: str,
    customer_id: str,
    period: str,
    status: str,
    message: str | None,
    lines: int,
) -> None:
    """How the last rating of a customer's period went (shown with its charges)."""
    state = session.scalar(
        select(RatingState).where(
            RatingState.customer_id == customer_id, RatingState.period == period
        )
    )
    if state is None:
        state = RatingState(msp_id=msp_id, customer_id=customer_id, period=period)
        session.add(state)
    state.status = status
    state.message = message
    state.usage_lines = lines
    state.rated_at = utcnow()
