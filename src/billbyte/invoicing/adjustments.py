"""Late data: usage that arrives or is corrected after a period was invoiced becomes
adjustment lines on the customer's next open invoice, never a change to the closed one.

Rating computes a closed (customer, period) as usual, in memory, and hands the lines here.
Per charge line key, what is owed is ``computed − invoiced``, where *invoiced* is what the
finalized invoice's lines were made of (their ``sources``) plus the adjustments for that
period already invoiced later. What is owed is kept as one open charge line
``adj:<period>:<key>`` (kind ``adjustment``) in the customer's earliest open month after the
period; re-rating updates it, and deletes it when nothing is owed any more. So re-rating is
idempotent and an adjustment is invoiced exactly once.
"""

from __future__ import annotations

from collections import defaultdict
from decimal import Decimal
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from billbyte.invoicing import cycles
from billbyte.invoicing.documents import (
    ADJUSTMENT,
    SOURCE_AMOUNTS,
    adjustment_key,
    parse_adjustment_key,
)
from billbyte.invoicing.models import INVOICE, Invoice, InvoiceLine
from billbyte.kit.clock import utcnow
from billbyte.rating.models import ChargeChange, ChargeLine, ClosedPeriod

_DESCRIPTIVE = (
    "vendor",
    "partner_account_id",
    "sub_account_id",
    "service_category",
    "service_name",
    "charge_category",
    "pricing_unit",
    "billing_currency",
    "currency",
    "fx_rates",
    "rule_ids",
    "first_day",
    "last_day",
)


def post(
    session: Session,
    msp_id: str,
    period: str,
    computed: dict[str, dict[str, dict[str, Any]]],
) -> int:
    """Bring the adjustment lines of closed ``period`` in line with ``computed``
    (customer → line key → line values at storage precision). Returns the changes made."""
    return sum(
        _post_customer(session, msp_id, customer_id, period, lines)
        for customer_id, lines in sorted(computed.items())
    )


def _invoiced(session: Session, customer_id: str, period: str) -> dict[str, dict[str, Decimal]]:
    totals: dict[str, dict[str, Decimal]] = defaultdict(
        lambda: {name: Decimal(0) for name in SOURCE_AMOUNTS}
    )
    sources = session.scalars(
        select(InvoiceLine.sources)
        .join(Invoice, Invoice.id == InvoiceLine.invoice_id)
        .where(
            InvoiceLine.customer_id == customer_id,
            Invoice.kind == INVOICE,
            or_(InvoiceLine.period == period, InvoiceLine.original_period == period),
        )
    )
    for line_sources in sources:
        for source in line_sources or []:
            adjusted = parse_adjustment_key(source["line_key"])
            if adjusted is None and source["period"] == period:
                key = source["line_key"]
            elif adjusted is not None and adjusted[0] == period:
                key = adjusted[1]
            else:
                continue
            for name in SOURCE_AMOUNTS:
                totals[key][name] += Decimal(source[name])
    return dict(totals)


def _target_month(closed: set[str], period: str) -> str:
    month = cycles.add_months(period, 1)
    while month in closed:
        month = cycles.add_months(month, 1)
    return month


def _post_customer(
    session: Session,
    msp_id: str,
    customer_id: str,
    period: str,
    computed: dict[str, dict[str, Any]],
) -> int:
    from billbyte.rating.service import _LINE_FIELDS, _at_storage_precision, _comparable

    computed = {key: _at_storage_precision(values) for key, values in computed.items()}
    invoiced = _invoiced(session, customer_id, period)
    closed = set(
        session.scalars(select(ClosedPeriod.period).where(ClosedPeriod.customer_id == customer_id))
    )
    target = _target_month(closed, period)
    prefix = adjustment_key(period, "")
    open_lines: dict[str, ChargeLine] = {}
    frozen: dict[str, ChargeLine] = {}
    for line in session.scalars(
        select(ChargeLine).where(
            ChargeLine.customer_id == customer_id,
            or_(ChargeLine.line_key.startswith(prefix), ChargeLine.period == period),
        )
    ):
        if line.period == period:
            frozen[line.line_key] = line
        elif line.period not in closed:
            open_lines[line.line_key[len(prefix) :]] = line
    changes = 0
    for key in sorted(set(computed) | set(invoiced) | set(open_lines)):
        done = invoiced.get(key, {})
        owed = {
            name: (computed[key][name] if key in computed else Decimal(0))
            - done.get(name, Decimal(0))
            for name in SOURCE_AMOUNTS
        }
        existing = open_lines.get(key)
        if existing is not None and (existing.period != target or not any(owed.values())):
            changes += _delete(session, msp_id, existing, _comparable)
            existing = None
        if not any(owed.values()):
            continue
        values = _describe(key, period, computed.get(key), frozen.get(key))
        values.update(owed)
        after = _comparable({**values, "line_key": adjustment_key(period, key)})
        if existing is None:
            session.add(
                ChargeLine(
                    msp_id=msp_id,
                    customer_id=customer_id,
                    period=target,
                    line_key=adjustment_key(period, key),
                    **values,
                )
            )
            _change(session, msp_id, customer_id, target, after["line_key"], "created", after, None)
            changes += 1
            continue
        before = _comparable(
            {
                **{name: getattr(existing, name) for name in _LINE_FIELDS},
                "line_key": existing.line_key,
            }
        )
        if before == after:
            continue
        for name in _LINE_FIELDS:
            setattr(existing, name, values[name])
        existing.updated_at = utcnow()
        _change(session, msp_id, customer_id, target, existing.line_key, "updated", after, before)
        changes += 1
    session.flush()
    return changes


def _describe(
    key: str, period: str, computed: dict[str, Any] | None, frozen: ChargeLine | None
) -> dict[str, Any]:
    """What the adjustment is about: the recomputed line, else the invoiced one."""
    if computed is not None:
        base = {name: computed[name] for name in _DESCRIPTIVE}
        description = computed["description"]
    elif frozen is not None:
        base = {name: getattr(frozen, name) for name in _DESCRIPTIVE}
        description = frozen.description
    else:  # pragma: no cover - an invoiced key always has its frozen charge line
        base = {name: None for name in _DESCRIPTIVE}
        base.update(vendor="unknown", billing_currency="XXX", currency="XXX")
        base.update(fx_rates=[], rule_ids=[])
        description = key
    return {
        **base,
        "kind": ADJUSTMENT,
        "description": f"Adjustment for {period}: {description}"[:500],
    }


def _delete(session: Session, msp_id: str, line: ChargeLine, comparable: Any) -> int:
    from billbyte.rating.service import _LINE_FIELDS

    before = comparable(
        {**{name: getattr(line, name) for name in _LINE_FIELDS}, "line_key": line.line_key}
    )
    _change(session, msp_id, line.customer_id, line.period, line.line_key, "deleted", None, before)
    session.delete(line)
    return 1


def _change(
    session: Session,
    msp_id: str,
    customer_id: str,
    period: str,
    line_key: str,
    change: str,
    line: dict[str, Any] | None,
    previous: dict[str, Any] | None,
) -> None:
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
