"""Work one feature asks another to do later, recorded as a job in the caller's transaction.

A feature low in the dependency order (usage, pricing, customers, fx, catalog) must not call a
higher one (rating, connectors). It records a named request here instead; the feature that owns
the job kind registers its handler in its ``tasks.py``, and the job runs after the caller's
transaction commits — or not at all if that transaction rolls back.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy.orm import Session

from billbyte.jobs.service import enqueue, run_now
from billbyte.runtime import Runtime

RATE = "rate"


def rate_later(session: Session, msp_id: str, period: str | None = None) -> None:
    """Re-rate one period of an MSP, or (period None) every open period with usage."""
    key = f"{msp_id}:{period or '*'}"
    enqueue(session, RATE, key, {"msp_id": msp_id, "period": period})


def rate_now(runtime: Runtime, msp_id: str, periods: Iterable[str]) -> None:
    """Rate these periods of an MSP now, those of them with usage or subscriptions, before
    the caller goes on (an invoice run re-rates the months it closes, so late imports are in).
    Each period commits in its own unit of work, as the rating job's do."""
    run_now(runtime, RATE, {"msp_id": msp_id, "periods": sorted(set(periods))})


def usage_changed(session: Session, msp_id: str, periods: Iterable[str]) -> None:
    for period in sorted(set(periods)):
        rate_later(session, msp_id, period)


def pricing_changed(session: Session, msp_id: str, customer_id: str | None = None) -> None:
    # Customer-level changes still re-rate the MSP's periods: the job is cheap to coalesce
    # and a narrower key would let a later broad change and this one both run.
    rate_later(session, msp_id)


def links_changed(session: Session, msp_id: str) -> None:
    rate_later(session, msp_id)


def fx_changed(session: Session, msp_id: str) -> None:
    rate_later(session, msp_id)


PROVISION = "provision"


def provisioning_requested(
    session: Session, msp_id: str, customer_vendor_id: str, *, delay: float = 0.0
) -> None:
    """Provision (or poll the provisioning of) one customer of ``msp_id`` on one vendor: the
    customer's pending ``customer_vendors`` row. Handled by ``connectors.tasks``."""
    enqueue(
        session,
        PROVISION,
        customer_vendor_id,
        {"customer_vendor_id": customer_vendor_id},
        msp_id=msp_id,
        delay=delay,
    )


# Handled by ``connectors.tasks`` (payload {"customer_id": …}).
SUSPENSION = "suspension"


def suspension_requested(session: Session, msp_id: str, customer_id: str) -> None:
    """Credit control asks for a customer's suspension on the vendors; the customer is
    already ``suspension_requested`` in this transaction."""
    enqueue(session, SUSPENSION, customer_id, {"customer_id": customer_id}, msp_id=msp_id)
