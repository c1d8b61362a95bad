"""Before an invoice run: which customers of a period would stay drafts in invoice mode.

An invoice-mode run refuses, customer by customer, a buyer whose billing details lack what
a tax invoice names (``completeness``) or whose country has no tax rate on the issue date
(``taxation.MissingTaxRate``), and the whole run when the seller's profile is incomplete.
This module asks the same questions of the same snapshots (``terms.seller_of``,
``terms.buyer_of``) without finalizing anything, so the console and the API can say so
before the run, while the details can still be completed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from sqlalchemy.orm import Session

from billbyte.auth.subject import AuthSubject
from billbyte.customers.models import Customer
from billbyte.invoicing import completeness, cycles, terms
from billbyte.invoicing.models import STATEMENT, TAX_INVOICE
from billbyte.invoicing.schemas import BlockedCustomerOut, InvoiceReadinessOut
from billbyte.invoicing.settings import settings_for
from billbyte.invoicing.views import open_billing_periods
from billbyte.kit.periods import validate_period
from billbyte.taxes.repository import rate_for

MISSING_TAX_RATE = "tax_rate"


@dataclass(frozen=True)
class Blocked:
    """A customer whose invoice of the period would stay a draft, and why."""

    customer: Customer
    missing: list[str]  # "buyer.city", ..., "tax_rate"
    message: str  # what the run's ``errors`` would say


@dataclass(frozen=True)
class Readiness:
    period: str
    mode: str
    seller_missing: list[str]
    customers_checked: int  # customers with open charges whose billing period ends then
    blocked: list[Blocked]

    @property
    def ready(self) -> bool:
        return not self.seller_missing and not self.blocked


def buyer_blockers(session: Session, customer: Customer, issued: date) -> list[str]:
    """What keeps an invoice-mode invoice of ``customer`` issued on ``issued`` a draft: the
    buyer's missing fields, and ``tax_rate`` when a standard-rated buyer's country has no
    rate that day. Empty when nothing does."""
    buyer = terms.buyer_of(session, customer)
    missing = completeness.missing_buyer(buyer)
    standard = buyer.get("tax_treatment", "standard") == "standard"
    if standard and rate_for(session, customer.msp_id, buyer.get("country"), issued) is None:
        missing.append(MISSING_TAX_RATE)
    return missing


def explain(missing: list[str], country: str | None) -> str:
    """The sentence the run writes for the customer (``completeness.explain``, or the
    missing tax rate's)."""
    fields = [name for name in missing if name != MISSING_TAX_RATE]
    parts = [completeness.explain(fields)] if fields else []
    if MISSING_TAX_RATE in missing:
        parts.append(f"no tax rate for country {country!r}: add one under tax rates")
    return "; ".join(parts)


def customer_readiness(session: Session, customer: Customer, period: str) -> list[str]:
    """``buyer_blockers`` for the customer's invoice of the billing period that ``period``
    falls in, when the MSP is in invoice mode; empty in statement mode."""
    if (settings_for(session, customer.msp_id).mode or STATEMENT) != TAX_INVOICE:
        return []
    end = cycles.period_end_for(customer.billing_cycle, period)
    return buyer_blockers(session, customer, cycles.issue_date(end, customer.billing_anchor_day))


def readiness(session: Session, subject: AuthSubject, period: str) -> Readiness:
    """What an invoice run of ``period`` would refuse, asked now: the seller's missing
    fields, and each customer with open charges whose billing period ends with ``period``
    that would stay a draft. In statement mode nothing is refused."""
    validate_period(period)
    mode = settings_for(session, subject.msp_id).mode or STATEMENT
    open_periods = open_billing_periods(session, subject.msp_id, None)
    due = sorted(
        (customer for (_, end), customer in open_periods.items() if end == period),
        key=lambda customer: customer.id,
    )
    if mode != TAX_INVOICE:
        return Readiness(period, mode, [], len(due), [])
    seller, _ = terms.seller_of(session, subject.msp_id)
    blocked = []
    for customer in due:
        issued = cycles.issue_date(period, customer.billing_anchor_day)
        missing = buyer_blockers(session, customer, issued)
        if missing:
            country = terms.buyer_of(session, customer).get("country")
            blocked.append(Blocked(customer, missing, explain(missing, country)))
    return Readiness(period, mode, completeness.missing_seller(seller), len(due), blocked)


def readiness_out(found: Readiness) -> InvoiceReadinessOut:
    return InvoiceReadinessOut(
        period=found.period,
        mode=found.mode,
        ready=found.ready,
        seller_missing=found.seller_missing,
        customers_checked=found.customers_checked,
        blocked=[
            BlockedCustomerOut(
                customer_id=b.customer.id,
                external_id=b.customer.external_id,
                name=b.customer.name,
                missing=b.missing,
                message=b.message,
            )
            for b in found.blocked
        ],
    )
