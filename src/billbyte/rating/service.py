"""Rating of an MSP's open periods, and the change feed it writes.

One rating run is one transaction per (MSP, period): the new charge lines, the change-feed
entries and the rating states commit together. On PostgreSQL the MSP row is locked first,
so change-feed sequence numbers of one MSP are committed in order and a BSS that resumes
from a cursor never skips a change.
"""

from __future__ import annotations

import calendar
import hashlib
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from decimal import ROUND_HALF_EVEN, Context, Decimal
from typing import Any

import polars as pl
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from billbyte.catalog import licence_lines
from billbyte.customers import mapping
from billbyte.customers.models import Customer
from billbyte.fx import conversion as fx
from billbyte.jobs.follow_up import RATE
from billbyte.jobs.service import handler
from billbyte.kit.clock import utcnow
from billbyte.kit.errors import InvalidInput
from billbyte.partners.models import PartnerAccount
from billbyte.pricing import service as pricing
from billbyte.rating import engine
from billbyte.rating.models import ChargeChange, ChargeLine, ClosedPeriod, RatingState
from billbyte.runtime import Runtime
from billbyte.tenancy.models import Msp
from billbyte.usage import service as usage
from billbyte.usage.models import UsageSlice

log = logging.getLogger(__name__)

_LINE_FIELDS = (
    "kind",
    "vendor",
    "partner_account_id",
    "sub_account_id",
    "service_category",
    "service_name",
    "charge_category",
    "pricing_unit",
    "description",
    "quantity",
    "billing_currency",
    "cost",
    "list_cost",
    "sell",
    "currency",
    "cost_local",
    "list_local",
    "sell_local",
    "fx_rates",
    "rule_ids",
    "first_day",
    "last_day",
)


@dataclass
class RatingResult:
    period: str
    customers_rated: int = 0
    lines: int = 0
    changes: int = 0
    errors: dict[str, str] = field(default_factory=dict)


def period_bounds(period: str) -> tuple[date, date]:
    year, month = (int(p) for p in period.split("-"))
    return date(year, month, 1), date(year, month, calendar.monthrange(year, month)[1])


def open_periods(session: Session, msp_id: str) -> list[str]:
    """Periods with usage or licence subscriptions of this MSP; closed customer-periods are
    skipped per customer."""
    return sorted(
        set(
            session.scalars(
                select(UsageSlice.billing_period).where(
                    UsageSlice.msp_id == msp_id, UsageSlice.is_current.is_(True)
                )
            )
        )
        | licence_lines.billed_periods(session, msp_id)
    )


def _lock_msp(session: Session, msp_id: str) -> None:
    session.scalar(select(Msp.id).where(Msp.id == msp_id).with_for_update())


def _inputs(
    runtime: Runtime, session: Session, msp_id: str, period: str, open_customers: list[Customer]
) -> engine.Inputs | None:
    slices = list(
        session.scalars(
            select(UsageSlice)
            .where(
                UsageSlice.msp_id == msp_id,
                UsageSlice.billing_period == period,
                UsageSlice.is_current.is_(True),
            )
            .order_by(UsageSlice.id)
        )
    )
    lines = usage.scan_slices(runtime.settings.usage_store_dir, slices)
    if lines is None:
        return None
    ids = [c.id for c in open_customers]
    # Every link of the MSP, whichever customers are rated (the engine keeps theirs): with
    # only these customers' links, a project linked to another customer under a billing
    # account linked to one of them would be attributed to the billing account's customer.
    links = mapping.links_frame(session, msp_id)
    default_plan = pricing.default_plan_id(session, msp_id)
    customers = pl.DataFrame(
        {
            "customer_id": ids,
            "plan_id": [c.price_plan_id or default_plan for c in open_customers],
            "currency": [c.currency for c in open_customers],
        },
        schema={"customer_id": pl.String, "plan_id": pl.String, "currency": pl.String},
    )
    accounts_rows = session.scalars(
        select(PartnerAccount).where(PartnerAccount.msp_id == msp_id)
    ).all()
    accounts = pl.DataFrame(
        {
            "partner_account_id": [a.id for a in accounts_rows],
            "vendor": [a.vendor for a in accounts_rows],
            "list_factor": [_list_factor(a.partner_discount_percent) for a in accounts_rows],
        },
        schema={"partner_account_id": pl.String, "vendor": pl.String, "list_factor": engine.FACTOR},
    )
    return engine.Inputs(
        lines=lines,
        links=links,
        customers=customers,
        accounts=accounts,
        rules=pricing.rules_for_msp(session, msp_id),
    )


def _list_factor(discount_percent: Decimal) -> Decimal:
    if discount_percent >= 100:
        return Decimal(1)
    return (Decimal(1) / (1 - discount_percent / 100)).quantize(Decimal("1e-18"))


def _rates(
    session: Session,
    msp_id: str,
    pairs: set[tuple[str, str]],
    period: str,
    first_day: date | None = None,
) -> tuple[pl.DataFrame, dict[tuple[str, str], str]]:
    """Daily rates for the period, reaching back to ``first_day`` when usage of the period
    was charged earlier (a correction for a previous month is converted at its own day's
    rate, not dropped for want of one)."""
    start, end = period_bounds(period)
    if first_day is not None and first_day < start:
        start = first_day
    frames, missing = [], {}
    for pair in sorted(pairs):
        try:
            frames.append(fx.daily_rates(session, msp_id, {pair}, start, end, period_end=end))
        except InvalidInput as exc:
            missing[pair] = exc.detail
    if not frames:
        return pl.DataFrame(schema=fx.RATE_SCHEMA), missing
    return pl.concat(frames), missing


def rate_period(runtime: Runtime, msp_id: str, period: str) -> RatingResult:
    result = RatingResult(period=period)
    with runtime.uow() as uow:
        session = uow.session
        _lock_msp(session, msp_id)
        closed = set(
            session.scalars(
                select(ClosedPeriod.customer_id).where(
                    ClosedPeriod.msp_id == msp_id, ClosedPeriod.period == period
                )
            )
        )
        # Closed customers are rated too, in memory: late data becomes adjustments.
        all_customers = list(
            session.scalars(select(Customer).where(Customer.msp_id == msp_id).order_by(Customer.id))
        )
        open_customers = [c for c in all_customers if c.id not in closed]
        inputs = _inputs(runtime, session, msp_id, period, all_customers)
        new_lines: dict[str, dict[str, dict[str, Any]]] = {c.id: {} for c in all_customers}
        usage_lines: dict[str, int] = {}
        if inputs is not None and all_customers:
            grain = engine.rollup(inputs)
            priced = engine.price(grain, inputs.rules)
            pairs = {
                (b, c)
                for b, c in priced.select("billing_currency", "currency").unique().iter_rows()
            }
            pairs |= {
                (s, c)
                for s, c in priced.select("sell_currency", "currency").unique().iter_rows()
                if s
            }
            fees = _fee_lines(inputs, grain, period)
            pairs |= {(f["billing_currency"], f["currency"]) for f in fees}
            rates, missing = _rates(session, msp_id, pairs, period, _first_day(priced))
            bad = _customers_missing_rates(priced, fees, missing)
            converted = engine.convert(priced, rates)
            # A day without a rate (e.g. charged after the period) must not become 0.
            for customer_id, day, billing, sell_ccy, currency in (
                engine.missing_rates(converted).sort("customer_id", "day").iter_rows()
            ):
                bad.setdefault(
                    customer_id,
                    f"No exchange rate from {billing}/{sell_ccy} to {currency} "
                    f"for charge day {day}.",
                )
            result.errors.update(bad)
            converted = converted.filter(
                ~pl.col("customer_id").is_in(pl.Series(list(bad), dtype=pl.String).implode())
            )
            for row in engine.charge_lines(converted).iter_rows(named=True):
                line = _usage_line(row)
                new_lines[row["customer_id"]][line["line_key"]] = line
                usage_lines[row["customer_id"]] = (
                    usage_lines.get(row["customer_id"], 0) + row["usage_lines"]
                )
            _add_fees(fees, rates, bad, new_lines, period)
        for customer_id, message in licence_lines.add_licence_lines(
            session, msp_id, period, all_customers, new_lines
        ).items():
            result.errors.setdefault(customer_id, message)
        for customer in open_customers:
            if customer.id in result.errors:
                _set_state(
                    session,
                    msp_id,
                    customer.id,
                    period,
                    "error",
                    result.errors[customer.id],
                    usage_lines.get(customer.id, 0),
                )
                continue
            result.changes += _write_lines(
                session, msp_id, customer.id, period, new_lines[customer.id]
            )
            _set_state(
                session, msp_id, customer.id, period, "ok", None, usage_lines.get(customer.id, 0)
            )
            result.customers_rated += 1
            result.lines += len(new_lines[customer.id])
        if inputs is not None or any(new_lines.get(c) for c in closed):
            _post_adjustments(session, msp_id, period, closed - set(result.errors), new_lines)
        from billbyte.credit import prepaid
        from billbyte.credit import service as credit

        # Closed months' late data lands on an open month: prepaid draws follow it.
        prepaid.settle_customers(
            session, [c for c in all_customers if c.id in closed and c.id not in result.errors]
        )
        credit.evaluate(
            session, msp_id, period, [c for c in open_customers if c.id not in result.errors]
        )
        uow.commit()
    return result


def _post_adjustments(
    session: Session,
    msp_id: str,
    period: str,
    closed: set[str],
    new_lines: dict[str, dict[str, dict[str, Any]]],
) -> None:
    """Closed periods are never rewritten: what changed since they were invoiced is posted
    as adjustment lines on each customer's next open invoice (see invoicing.adjustments)."""
    from billbyte.invoicing import adjustments

    adjustments.post(session, msp_id, period, {c: new_lines.get(c, {}) for c in closed})


def _first_day(priced: pl.DataFrame) -> date | None:
    first = priced.select(pl.col("day").min()).item() if not priced.is_empty() else None
    return first if isinstance(first, date) else None


def _customers_missing_rates(
    priced: pl.DataFrame, fees: list[dict[str, Any]], missing: dict[tuple[str, str], str]
) -> dict[str, str]:
    bad: dict[str, str] = {}
    if not missing:
        return bad
    for customer_id, billing, sell_ccy, currency in (
        priced.select("customer_id", "billing_currency", "sell_currency", "currency")
        .unique()
        .iter_rows()
    ):
        for pair in ((billing, currency), (sell_ccy, currency)):
            if pair in missing:
                bad[customer_id] = missing[pair]
    for fee in fees:
        pair = (fee["billing_currency"], fee["currency"])
        if pair in missing:
            bad[fee["customer_id"]] = missing[pair]
    return bad


def line_key(values: Iterable[Any]) -> str:
    text = "\x1f".join("" if v is None else str(v) for v in values)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def _usage_line(row: dict[str, Any]) -> dict[str, Any]:
    rates = sorted({(r["rate_date"], r["rate"]) for r in row["rates"] if r["rate"] is not None})
    description = " / ".join(
        p
        for p in (row["service_name"] or row["service_category"] or "Usage", row["charge_category"])
        if p
    )
    return {
        "line_key": line_key([row[name] for name in engine.LINE_GRAIN]),
        "kind": "usage",
        "vendor": row["vendor"],
        "partner_account_id": row["partner_account_id"],
        "sub_account_id": row["sub_account_id"],
        "service_category": row["service_category"],
        "service_name": row["service_name"],
        "charge_category": row["charge_category"],
        "pricing_unit": row["pricing_unit"],
        "description": description,
        "quantity": row["quantity"] or Decimal(0),
        "billing_currency": row["billing_currency"],
        "cost": row["cost"],
        "list_cost": row["list"],
        "sell": row["sell"] or Decimal(0),
        "currency": row["currency"],
        "cost_local": row["cost_local"],
        "list_local": row["list_local"],
        "sell_local": row["sell_local"],
        "fx_rates": [{"date": d, "rate": r} for d, r in rates],
        "rule_ids": list(row["rule_ids"]),
        "first_day": row["first_day"].isoformat() if row["first_day"] else None,
        "last_day": row["last_day"].isoformat() if row["last_day"] else None,
    }


def _fee_lines(inputs: engine.Inputs, grain: pl.DataFrame, period: str) -> list[dict[str, Any]]:
    _, end = period_bounds(period)
    currencies = dict(inputs.customers.select("customer_id", "currency").iter_rows())
    fees = []
    for rule in engine.fee_rules(inputs.rules):
        for customer_id in engine.customers_in_scope(grain, rule, end):
            fees.append(
                {
                    "customer_id": customer_id,
                    "rule": rule,
                    "billing_currency": rule.currency,
                    "currency": currencies[customer_id],
                }
            )
    return fees


def _add_fees(
    fees: list[dict[str, Any]],
    rates: pl.DataFrame,
    bad: dict[str, str],
    new_lines: dict[str, dict[str, dict[str, Any]]],
    period: str,
) -> None:
    _, end = period_bounds(period)
    for fee in fees:
        if fee["customer_id"] in bad:
            continue
        rule = fee["rule"]
        rate_row = rates.filter(
            (pl.col("day") == end)
            & (pl.col("from_currency") == fee["billing_currency"])
            & (pl.col("to_currency") == fee["currency"])
        )
        rate, rate_date = rate_row.row(0)[3], rate_row.row(0)[4]
        amount = rule.value or Decimal(0)
        local = _WIDE.multiply(amount, rate).quantize(Decimal("1e-24"), context=_WIDE)
        key = line_key(["fee", rule.id])
        new_lines[fee["customer_id"]][key] = {
            "line_key": key,
            "kind": "fee",
            "vendor": rule.scope.get("vendor", "all"),
            "partner_account_id": rule.scope.get("partner_account_id"),
            "sub_account_id": None,
            "service_category": rule.scope.get("service_category"),
            "service_name": rule.scope.get("service_name"),
            "charge_category": "Purchase",
            "pricing_unit": None,
            "description": f"Fee: {rule.id}",
            "quantity": Decimal(1),
            "billing_currency": fee["billing_currency"],
            "cost": Decimal(0),
            "list_cost": Decimal(0),
            "sell": amount,
            "currency": fee["currency"],
            "cost_local": Decimal(0),
            "list_local": Decimal(0),
            "sell_local": local,
            "fx_rates": [{"date": rate_date.isoformat(), "rate": str(rate)}],
            "rule_ids": [rule.id],
            "first_day": None,
            "last_day": end.isoformat(),
        }


def _comparable(line: dict[str, Any]) -> dict[str, Any]:
    """A JSON-ready view in which equal amounts compare equal whatever their exponent."""
    return {
        k: (_plain(v) if isinstance(v, Decimal) else v)
        for k, v in line.items()
        if k in _LINE_FIELDS or k == "line_key"
    }


def _plain(value: Decimal) -> str:
    text = format(value, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text in ("", "-0") else text


def _write_lines(
    session: Session, msp_id: str, customer_id: str, period: str, new: dict[str, dict[str, Any]]
) -> int:
    existing = {
        line.line_key: line
        for line in session.scalars(
            select(ChargeLine).where(
                ChargeLine.customer_id == customer_id, ChargeLine.period == period
            )
        )
        if line.kind != "adjustment"  # owned by _post_adjustments, not by this period's usage
    }
    new = {key: _at_storage_precision(values) for key, values in new.items()}
    changes = 0
    for key, line in existing.items():
        if key not in new:
            session.add(
                ChargeChange(
                    msp_id=msp_id,
                    customer_id=customer_id,
                    period=period,
                    line_key=key,
                    change="deleted",
                    line=None,
                    previous=_comparable(_row_dict(line)),
                )
            )
            session.delete(line)
            changes += 1
    for key, values in new.items():
        current = existing.get(key)
        after = _comparable(values)
        if current is None:
            session.add(ChargeLine(msp_id=msp_id, customer_id=customer_id, period=period, **values))
            session.add(
                ChargeChange(
                    msp_id=msp_id,
                    customer_id=customer_id,
                    period=period,
                    line_key=key,
                    change="created",
                    line=after,
                    previous=None,
                )
            )
            changes += 1
            continue
        before = _comparable(_row_dict(current))
        if before == after:
            continue
        for name in _LINE_FIELDS:
            setattr(current, name, values[name])
        current.updated_at = utcnow()
        session.add(
            ChargeChange(
                msp_id=msp_id,
                customer_id=customer_id,
                period=period,
                line_key=key,
                change="updated",
                line=after,
                previous=before,
            )
        )
        changes += 1
    session.flush()
    return changes


# Amounts are stored as NUMERIC(38, 18) on PostgreSQL: a line kept at more places would
# read back different from what was rated and show as "updated" at every re-rating.
# Quantizing needs room for every digit (the default context holds only 28).
_STORED = Decimal("1e-18")
_WIDE = Context(prec=80, rounding=ROUND_HALF_EVEN)


def _at_storage_precision(values: dict[str, Any]) -> dict[str, Any]:
    return {
        k: v.quantize(_STORED, context=_WIDE) if isinstance(v, Decimal) else v
        for k, v in values.items()
    }


def _row_dict(line: ChargeLine) -> dict[str, Any]:
    data = {name: getattr(line, name) for name in _LINE_FIELDS}
    data["line_key"] = line.line_key
    return data


def _set_state(
    session: Session,
    msp_id: str,
    customer_id: str,
    period: str,
    status: str,
    message: str | None,
    lines: int,
) -> None:
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


def rate_all(runtime: Runtime, msp_id: str, period: str | None = None) -> list[RatingResult]:
    with runtime.uow() as uow:
        periods = [period] if period else open_periods(uow.session, msp_id)
    return [rate_period(runtime, msp_id, p) for p in periods]


@handler(RATE)
def _rate_job(runtime: Runtime, payload: dict[str, Any]) -> None:
    for result in rate_all(runtime, payload["msp_id"], payload.get("period")):
        log.info(
            "rated %s %s: %d customers, %d lines, %d changes, %d errors",
            payload["msp_id"],
            result.period,
            result.customers_rated,
            result.lines,
            result.changes,
            len(result.errors),
        )


def clear_period(session: Session, customer_id: str, period: str) -> None:
    """Used by invoicing once lines are copied to an invoice."""
    session.execute(
        delete(ChargeLine).where(ChargeLine.customer_id == customer_id, ChargeLine.period == period)
    )
