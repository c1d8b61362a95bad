"""The cost read model: small rollups of a customer's rated charge lines, per day and
dimension, that the cost portal and the analytics endpoint read instead of usage lines.

``cost_rollups`` holds one row per (customer, period, charge line, day, region, tag set):
the cell's share of the charge line's amount, in the customer's currency as an integer
number of its minor units (so SQL sums it exactly on either database), plus the cell's exact
customer-currency amount (the allocation weight) and the vendor's cost in the billing
currency. Vendor, service, account (sub-account or subscription) and billing currency are
the charge line's. Tags are the usage lines' cost-allocation tags as canonical JSON text
(keys sorted, values as text), so that equal tag sets group together; NULL when a line has
none.

Every charge line's amount, as ``GET /v1/customers/{id}/charges`` reports it (the period's
lines rounded with ``kit.money.allocate``), is split exactly over its cells with the same
largest-remainder rule, so any selection of rows adds up, to the minor unit, to the charges
it covers, and all of a period's rows add up to the charges total. Fee, licence and
adjustment lines have one cell each, dated by the line's first day (else the period's first
day), without region or tags. A usage day outside the period (a correction charged earlier)
is dated the period's first (or last) day, so that every row lies inside its period.

``cost_usage_days`` holds the vendor's cost of the rated usage per day and billing currency.
``cost_resource_ranking`` holds the costliest resources of each customer-period (the top
``RANKED`` by amount and the top ``RANKED`` by vendor cost): a ranking, not a breakdown.

All three are written by ``analytics.rollups`` in the rating's unit of work (``rating.tasks``),
so they never disagree with the charge lines; closed (invoiced) periods keep theirs.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from sqlalchemy import BigInteger, Date, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from billbyte.db.base import Base, Money

RANKED = 50  # resources kept per customer-period, by amount and by cost


class CostRollup(Base):
    """A charge line's share of one day, region and tag set."""

    __tablename__ = "cost_rollups"
    __table_args__ = (Index("ix_cost_rollups_lookup", "msp_id", "customer_id", "period", "day"),)

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    msp_id: Mapped[str] = mapped_column(ForeignKey("msps.id"))
    customer_id: Mapped[str] = mapped_column(ForeignKey("customers.id"))
    period: Mapped[str] = mapped_column(String(7))
    line_key: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(20))  # the charge line's: usage | fee | ...
    day: Mapped[date] = mapped_column(Date)
    vendor: Mapped[str] = mapped_column(String(20))
    # The line's service name, else its description (fees, licences): a label, never null.
    service: Mapped[str] = mapped_column(String(500))
    sub_account_id: Mapped[str | None] = mapped_column(String(200), nullable=True)
    region: Mapped[str | None] = mapped_column(String(200), nullable=True)
    tags: Mapped[str | None] = mapped_column(Text, nullable=True)  # canonical JSON object
    currency: Mapped[str] = mapped_column(String(3))  # the charge line's (customer's)
    # The amount in the currency's minor units (cents): exact, and summed exactly by SQL on
    # PostgreSQL and SQLite alike (SQLite has no exact decimal sum).
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    exact: Mapped[Decimal] = mapped_column(Money)  # the cell's exact amount (the weight)
    billing_currency: Mapped[str] = mapped_column(String(3))
    cost: Mapped[Decimal] = mapped_column(Money)  # the vendor's cost, billing currency


class CostUsageDay(Base):
    """The vendor's cost of a customer's rated usage per day and billing currency (the
    help desk's daily series), exact: a sum SQLite could not make exactly from the cells."""

    __tablename__ = "cost_usage_days"
    __table_args__ = (Index("ix_cost_usage_days_lookup", "msp_id", "customer_id", "period"),)

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    msp_id: Mapped[str] = mapped_column(ForeignKey("msps.id"))
    customer_id: Mapped[str] = mapped_column(ForeignKey("customers.id"))
    period: Mapped[str] = mapped_column(String(7))
    day: Mapped[date] = mapped_column(Date)
    billing_currency: Mapped[str] = mapped_column(String(3))
    cost: Mapped[Decimal] = mapped_column(Money)


class CostResource(Base):
    """One of the costliest resources of a customer-period."""

    __tablename__ = "cost_resource_ranking"
    __table_args__ = (Index("ix_cost_resource_ranking_lookup", "msp_id", "customer_id", "period"),)

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    msp_id: Mapped[str] = mapped_column(ForeignKey("msps.id"))
    customer_id: Mapped[str] = mapped_column(ForeignKey("customers.id"))
    period: Mapped[str] = mapped_column(String(7))
    resource_id: Mapped[str] = mapped_column(Text)
    vendor: Mapped[str] = mapped_column(String(20))
    service_name: Mapped[str | None] = mapped_column(String(300), nullable=True)
    currency: Mapped[str] = mapped_column(String(3))
    amount: Mapped[Decimal] = mapped_column(Money)  # exact, customer's currency
    billing_currency: Mapped[str] = mapped_column(String(3))
    cost: Mapped[Decimal] = mapped_column(Money)  # exact, billing currency
