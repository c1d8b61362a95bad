"""Which customer a usage line belongs to: the one place vendor identifiers are compared.

Used by the usage summary, rating and help-desk analytics alike, so that they always agree.
"""

from __future__ import annotations

from collections.abc import Iterable

import polars as pl
from sqlalchemy import select
from sqlalchemy.orm import Session

from billbyte.customers.models import VendorAccount

LINKS_SCHEMA = {"partner_account_id": pl.String, "account_key": pl.String, "customer_id": pl.String}


def identifier_key(value: str) -> str:
    """Vendor identifiers compare case-insensitively and without Azure's '/subscriptions/'."""
    return value.strip().lower().removeprefix("/subscriptions/")


def account_key(expr: pl.Expr) -> pl.Expr:
    """``identifier_key`` as a polars expression."""
    return expr.str.to_lowercase().str.strip_chars().str.replace(r"^/subscriptions/", "")


def links_frame(
    session: Session, msp_id: str, customer_ids: Iterable[str] | None = None
) -> pl.DataFrame:
    """The MSP's vendor-account links (optionally of some customers) as a join table."""
    stmt = select(
        VendorAccount.partner_account_id, VendorAccount.vendor_identifier, VendorAccount.customer_id
    ).where(VendorAccount.msp_id == msp_id)
    if customer_ids is not None:
        stmt = stmt.where(VendorAccount.customer_id.in_(list(customer_ids)))
    rows = session.execute(stmt).all()
    return pl.DataFrame(
        {
            "partner_account_id": [r[0] for r in rows],
            "account_key": [identifier_key(r[1]) for r in rows],
            "customer_id": [r[2] for r in rows],
        },
        schema=LINKS_SCHEMA,
    )


def map_to_customers(
    lines: pl.LazyFrame, links: pl.DataFrame, *, keep_unlinked: bool = False
) -> pl.LazyFrame:
    """Lines with the ``customer_id`` their sub-account — or, failing that, billing account —
    is linked to (unlinked lines dropped, or kept with a null id). The billing account
    matters for Google: a reseller's customer is a billing subaccount, while the export's
    sub-account is the project."""
    by_key = links.lazy()
    mapped = (
        lines.with_columns(
            account_key(pl.col("sub_account_id")).alias("account_key"),
            account_key(pl.col("billing_account_id")).alias("__billing_key"),
        )
        .join(by_key, on=["partner_account_id", "account_key"], how="left")
        .join(
            by_key.rename({"account_key": "__billing_key", "customer_id": "__billing_customer"}),
            on=["partner_account_id", "__billing_key"],
            how="left",
        )
        .with_columns(pl.coalesce(["customer_id", "__billing_customer"]).alias("customer_id"))
        .drop("__billing_key", "__billing_customer")
    )
    return mapped if keep_unlinked else mapped.filter(pl.col("customer_id").is_not_null())
