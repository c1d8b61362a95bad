"""Exports of a customer's billed lines: FOCUS 1.2 CSV at the customer's prices.

The billed lines are the customer's charge lines of the period (what ``charges`` shows and
what invoicing copies). Usage lines are detailed per day, SKU, region, sub-account and tags
by the pricing run rating uses (``rating.compute``), for this one customer over the current
usage slices, keeping those columns below the grain. A usage line is detailed when the run
computes it exactly as stored (at storage precision); otherwise (usage imported but not
rated yet, or a missing exchange rate) it is exported whole, so the file always reconciles
with the charges to the minor unit. Licence, fee and adjustment lines are exported as they
are.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import polars as pl
from sqlalchemy import select
from sqlalchemy.orm import Session

from billbyte.catalog.models import LicenceSubscription, Offer
from billbyte.charges import ledger
from billbyte.charges.models import ChargeLine
from billbyte.customers import repository as customers
from billbyte.customers.models import Customer, VendorAccount
from billbyte.exports import focus
from billbyte.kit.money import allocate, minor_units, round_money
from billbyte.kit.periods import Period, validate_period
from billbyte.pricing.models import PriceRule
from billbyte.rating import compute
from billbyte.runtime import Runtime
from billbyte.tenancy.auth import AuthSubject
from billbyte.tenancy.models import Msp

# Usage columns kept below the rating grain in the export.
DETAIL = ("region_name", "sub_account_name", "tags")


def _bounds(period: str) -> tuple[date, date]:
    month = Period.parse(period)
    return month.first_day, month.last_day


def customer_focus(
    runtime: Runtime, session: Session, subject: AuthSubject, customer_id: str, period: str
) -> str:
    """The customer's billed lines of ``period`` as FOCUS 1.2 CSV text."""
    validate_period(period)
    customer = customers.get_customer(session, subject.msp_id, customer_id)
    msp = session.get(Msp, subject.msp_id)
    assert msp is not None
    lines = list(
        session.scalars(
            select(ChargeLine)
            .where(
                ChargeLine.msp_id == subject.msp_id,
                ChargeLine.customer_id == customer.id,
                ChargeLine.period == period,
            )
            .order_by(ChargeLine.vendor, ChargeLine.service_name, ChargeLine.line_key)
        )
    )
    start, end = _bounds(period)
    currency = lines[0].currency if lines else customer.currency
    scale = minor_units(currency)
    # The same allocation as the charges: each line's rounded amount is its target.
    amounts, _ = allocate([li.sell_local for li in lines], currency, [li.line_key for li in lines])
    targets = pl.DataFrame(
        {
            "line_key": [li.line_key for li in lines],
            "billed_units": [int(a.scaleb(scale)) for a in amounts],
            "list_units": [int(round_money(li.list_local, currency).scaleb(scale)) for li in lines],
        },
        schema=focus.TARGET_SCHEMA,
    )
    names = _sub_account_names(session, subject.msp_id, customer.id)
    detail = _usage_detail(runtime, session, subject.msp_id, customer, period, lines, names)
    detailed = set(detail["line_key"].unique().to_list())
    offers = _offers(session, subject.msp_id, customer.id)
    fees = _fee_names(session, subject.msp_id, lines)
    whole = pl.DataFrame(
        [
            _whole_row(li, start, end, names, offers, fees)
            for li in lines
            if li.line_key not in detailed
        ],
        schema=focus.ROW_SCHEMA,
        orient="row",
    )
    rows = pl.concat([detail, whole], how="vertical_relaxed")
    frame = focus.focus_frame(
        # A stable order: rounding ties go to the earlier row.
        rows.sort(list(focus.ROW_SCHEMA), nulls_last=True),
        targets,
        minor_units=scale,
        currency=currency,
        period_start=start,
        period_end_exclusive=end + timedelta(days=1),
        billing_account_id=customer.external_id,
        billing_account_name=customer.name,
        issuer=msp.name,
        invoice_id=None,
    )
    return focus.to_csv(frame)


def _sub_account_names(session: Session, msp_id: str, customer_id: str) -> dict[str, str]:
    rows = session.execute(
        select(VendorAccount.vendor_identifier, VendorAccount.display_name).where(
            VendorAccount.msp_id == msp_id, VendorAccount.customer_id == customer_id
        )
    )
    return {identifier: name for identifier, name in rows if name}


def _offers(session: Session, msp_id: str, customer_id: str) -> dict[str, tuple[str, bool]]:
    """Subscription id → (the offer's SKU, whether the offer has a list price)."""
    rows = session.execute(
        select(LicenceSubscription.id, Offer.sku_id, Offer.list_price)
        .join(Offer, Offer.id == LicenceSubscription.offer_id)
        .where(LicenceSubscription.msp_id == msp_id, LicenceSubscription.customer_id == customer_id)
    )
    return {sub_id: (sku, list_price is not None) for sub_id, sku, list_price in rows}


def _fee_names(session: Session, msp_id: str, lines: list[ChargeLine]) -> dict[str, str]:
    ids = {rule_id for li in lines if li.kind == "fee" for rule_id in li.rule_ids or []}
    if not ids:
        return {}
    rows = session.execute(
        select(PriceRule.id, PriceRule.name).where(
            PriceRule.msp_id == msp_id, PriceRule.id.in_(sorted(ids))
        )
    )
    return {rule_id: name for rule_id, name in rows if name}


def _whole_row(
    line: ChargeLine,
    start: date,
    end: date,
    names: dict[str, str],
    offers: dict[str, tuple[str, bool]],
    fees: dict[str, str],
) -> dict[str, Any]:
    first = date.fromisoformat(line.first_day) if line.first_day else start
    last = date.fromisoformat(line.last_day) if line.last_day else end
    licence, fee = line.kind == "licence", line.kind == "fee"
    sub_account = None if licence else line.sub_account_id
    sku, has_list = offers.get(line.sub_account_id or "", (None, False))
    fee_name = next((fees[r] for r in line.rule_ids or [] if r in fees), None)
    if fee:
        sku = next(iter(line.rule_ids or []), None)
    elif not licence:
        sku = None
    return {
        "line_key": line.line_key,
        "kind": line.kind,
        "vendor": line.vendor,
        # A licence line's sub_account_id is its subscription, not a vendor sub-account.
        "sub_account_id": sub_account,
        "sub_account_name": names.get(sub_account) if sub_account else None,
        "service_category": line.service_category,
        "service_name": (fee_name or "Fee") if fee else line.service_name,
        "sku_id": sku,
        "region_id": None,
        "region_name": None,
        "charge_category": line.charge_category,
        "pricing_unit": line.pricing_unit,
        "quantity": line.quantity,
        "first_day": first,
        "last_day": max(first, last),
        "description": (fee_name if fee else None) or line.description,
        "tags": None,
        "sell": line.sell_local,
        "list": line.list_local,
        "list_is_billed": fee or (licence and not has_list),
    }


def _usage_detail(
    runtime: Runtime,
    session: Session,
    msp_id: str,
    customer: Customer,
    period: str,
    lines: list[ChargeLine],
    names: dict[str, str],
) -> pl.DataFrame:
    """Rows below the rating grain for the usage lines whose detail adds up to them."""
    empty = pl.DataFrame(schema=focus.ROW_SCHEMA)
    usage = {li.line_key: li for li in lines if li.kind == "usage"}
    if not usage:
        return empty
    priced = compute.price_period(runtime, session, msp_id, period, [customer], detail=DETAIL)
    if priced is None or priced.detail is None or priced.detail.is_empty():
        return empty
    computed = priced.lines.get(customer.id, {})
    converted = priced.detail
    unpriced = dict(
        converted.group_by("line_key")
        .agg(pl.col("sell_local").null_count().alias("unpriced"))
        .iter_rows()
    )
    matching = [
        key
        for key, line in usage.items()
        if key in computed
        and not unpriced.get(key)
        and line.currency == customer.currency
        and ledger.of_row(line).comparable() == computed[key].stored().comparable()
    ]
    if not matching:
        return empty
    detail = converted.filter(
        pl.col("line_key").is_in(pl.Series(matching, dtype=pl.String).implode())
    )
    return detail.select(
        pl.col("line_key"),
        pl.lit("usage").alias("kind"),
        pl.col("vendor"),
        pl.col("sub_account_id"),
        pl.col("sub_account_name").fill_null(
            pl.col("sub_account_id").replace_strict(names, default=None, return_dtype=pl.String)
        ),
        pl.col("service_category"),
        pl.col("service_name"),
        pl.col("sku_id"),
        pl.col("region_id"),
        pl.col("region_name"),
        pl.col("charge_category"),
        pl.col("pricing_unit"),
        pl.col("quantity").cast(pl.Decimal(38, 18)),
        pl.col("day").alias("first_day"),
        pl.col("day").alias("last_day"),
        pl.col("line_key")
        .replace_strict({k: li.description for k, li in usage.items()}, default=None)
        .alias("description"),
        pl.col("tags"),
        pl.col("sell_local").cast(pl.Decimal(38, 18)).alias("sell"),
        pl.col("list_local").cast(pl.Decimal(38, 18)).alias("list"),
        pl.lit(False).alias("list_is_billed"),
    )
