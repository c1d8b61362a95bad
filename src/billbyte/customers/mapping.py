"""Which customer a usage line belongs to: the one attribution rule of BillByte.

Rating (and so the charges, invoices and credit control that read its charge lines), the
plan preview, the FOCUS export, the usage summary and the help-desk analytics all attribute
usage with ``map_to_customers`` over ``links_frame`` — every vendor-account link of the MSP,
never a subset — so that they always agree. The rule (documented in docs/rating.md):

1. Identifiers compare case-insensitively, without surrounding whitespace and without
   Azure's ``/subscriptions/`` prefix, within one partner account.
2. A line belongs to the customer its **sub-account** is linked to; failing that, to the
   customer its **billing account** is linked to (a Google reseller's customer is a billing
   subaccount, while the export's sub-account is the project); failing that, to nobody.
3. Two links whose identifiers compare equal (``ABC`` and ``abc``) are one link: the oldest
   wins, so a line is never attributed to two customers.

Reading one customer's usage means attributing with every link and then keeping that
customer's lines (``only``): with only the customer's own links, a project linked to another
customer under the customer's billing account would fall through to the billing account.
"""

from __future__ import annotations

from collections.abc import Collection

import polars as pl
from sqlalchemy import select
from sqlalchemy.orm import Session

from billbyte.customers.models import VendorAccount

_LINK_KEY = ["partner_account_id", "account_key"]


def account_key(expr: pl.Expr) -> pl.Expr:
    """Vendor identifiers compare case-insensitively, trimmed and without Azure's
    '/subscriptions/' prefix."""
    return expr.str.to_lowercase().str.strip_chars().str.replace(r"^/subscriptions/", "")


def links_frame(session: Session, msp_id: str) -> pl.DataFrame:
    """Every vendor-account link of the MSP as a join table, oldest first (the order
    ``map_to_customers`` settles equal identifiers by)."""
    rows = session.execute(
        select(
            VendorAccount.partner_account_id,
            VendorAccount.vendor_identifier,
            VendorAccount.customer_id,
        )
        .where(VendorAccount.msp_id == msp_id)
        .order_by(VendorAccount.id)  # ids are time-sortable: creation order
    ).all()
    raw = pl.DataFrame(
        {
            "partner_account_id": [r[0] for r in rows],
            "vendor_identifier": [r[1] for r in rows],
            "customer_id": [r[2] for r in rows],
        },
        schema={
            "partner_account_id": pl.String,
            "vendor_identifier": pl.String,
            "customer_id": pl.String,
        },
    )
    # Keys made by the same polars expression as the lines' keys, so both sides of the join
    # agree on what "equal" means (Python's and Rust's whitespace differ at the edges).
    return raw.select(
        "partner_account_id",
        account_key(pl.col("vendor_identifier")).alias("account_key"),
        "customer_id",
    )


def map_to_customers(
    lines: pl.LazyFrame,
    links: pl.DataFrame,
    *,
    keep_unlinked: bool = False,
    only: Collection[str] | None = None,
) -> pl.LazyFrame:
    """Lines with the ``customer_id`` they are attributed to by the rule above: unlinked
    lines dropped (or kept with a null id, ``keep_unlinked``); with ``only``, just the lines
    of those customers. ``links`` must be every link of the MSP (``links_frame``); the first
    of equal identifiers wins. Each input line is in the output at most once."""
    by_key = (
        links.select([*_LINK_KEY, "customer_id"])
        .filter(pl.col("account_key").is_not_null())
        .unique(subset=_LINK_KEY, keep="first", maintain_order=True)
        .lazy()
    )
    mapped = (
        lines.with_columns(
            account_key(pl.col("sub_account_id")).alias("account_key"),
            account_key(pl.col("billing_account_id")).alias("__billing_key"),
        )
        .join(by_key, on=_LINK_KEY, how="left")
        .join(
            by_key.rename({"account_key": "__billing_key", "customer_id": "__billing_customer"}),
            on=["partner_account_id", "__billing_key"],
            how="left",
        )
        .with_columns(pl.coalesce(["customer_id", "__billing_customer"]).alias("customer_id"))
        .drop("__billing_key", "__billing_customer")
    )
    if only is not None:
        wanted = pl.Series(list(only), dtype=pl.String).implode()
        return mapped.filter(pl.col("customer_id").is_in(wanted))
    return mapped if keep_unlinked else mapped.filter(pl.col("customer_id").is_not_null())
