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
from collections.abc import Mapping
from dataclasses import replace
from decimal import Decimal

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from billbyte.charges import ledger
from billbyte.charges.ledger import Charge
from billbyte.charges.models import ChargeLine
from billbyte.invoicing import cycles
from billbyte.invoicing.documents import (
    ADJUSTMENT,
    SOURCE_AMOUNTS,
    adjustment_key,
    parse_adjustment_key,
)
from billbyte.invoicing.models import INVOICE, Invoice, InvoiceLine


def post(
    session: Session,
    msp_id: str,
    period: str,
    computed: Mapping[str, Mapping[str, Charge]],
) -> int:
    """Bring the adjustment lines of closed ``period`` in line with ``computed``
    (customer → line key → the line as rated now). Returns the changes made."""
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
    rated: Mapping[str, Charge],
) -> int:
    computed = {key: charge.stored() for key, charge in rated.items()}
    invoiced = _invoiced(session, customer_id, period)
    closed = ledger.closed_periods_of(session, customer_id)
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
        owed: dict[str, Decimal] = {
            name: (getattr(computed[key], name) if key in computed else Decimal(0))
            - done.get(name, Decimal(0))
            for name in SOURCE_AMOUNTS
        }
        existing = open_lines.get(key)
        if existing is not None and (existing.period != target or not any(owed.values())):
            ledger.delete(session, msp_id, existing)
            changes += 1
            existing = None
        if not any(owed.values()):
            continue
        about = _describe(key, period, computed.get(key), frozen.get(key))
        charge = replace(about, **owed)  # type: ignore[arg-type]  # the amount fields
        if existing is None:
            ledger.add(session, msp_id, customer_id, target, charge)
            changes += 1
        elif ledger.update(session, msp_id, existing, charge):
            changes += 1
    session.flush()
    return changes


def _describe(key: str, period: str, computed: Charge | None, frozen: ChargeLine | None) -> Charge:
    """What the adjustment is about: the recomputed line, else the invoiced one (amounts
    are replaced by what is owed)."""
    if computed is not None:
        base = computed
    elif frozen is not None:
        base = ledger.of_row(frozen)
    else:  # pragma: no cover - an invoiced key always has its frozen charge line
        zero = Decimal(0)
        base = Charge(
            line_key=key,
            kind=ADJUSTMENT,
            vendor="unknown",
            partner_account_id=None,
            sub_account_id=None,
            service_category=None,
            service_name=None,
            charge_category=None,
            pricing_unit=None,
            description=key,
            quantity=zero,
            billing_currency="XXX",
            cost=zero,
            list_cost=zero,
            sell=zero,
            currency="XXX",
            cost_local=zero,
            list_local=zero,
            sell_local=zero,
            fx_rates=(),
            rule_ids=(),
            first_day=None,
            last_day=None,
        )
    return replace(
        base,
        line_key=adjustment_key(period, key),
        kind=ADJUSTMENT,
        description=f"Adjustment for {period}: {base.description}"[:500],
    )
