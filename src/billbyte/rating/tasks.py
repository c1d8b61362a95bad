"""The rating job, and everything a rating sets off, in one unit of work per period.

Rating itself (``rating.service``) only prices and writes usage and fee lines. The work
that crosses features is composed here, in the rating's transaction, so that it commits
with the lines or not at all: catalog's licence lines join the priced lines before they are
written, closed periods' recomputed lines become late-data adjustments (invoicing), prepaid
balances are settled and credit thresholds evaluated (credit), and the cost rollups the
portal reads are rebuilt from what was written (analytics).
"""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy.orm import Session

from billbyte.analytics import rollups
from billbyte.budgets import service as budgets
from billbyte.catalog import licence_lines
from billbyte.credit import prepaid
from billbyte.credit import service as credit
from billbyte.invoicing import adjustments
from billbyte.jobs.follow_up import RATE
from billbyte.jobs.service import handler
from billbyte.rating import service as rating
from billbyte.rating.service import RatingResult
from billbyte.runtime import Runtime
from billbyte.usage.repository import slice_store

log = logging.getLogger(__name__)


def open_periods(session: Session, msp_id: str) -> list[str]:
    """Periods with usage or licence subscriptions of this MSP."""
    return rating.open_periods(session, msp_id, licence_lines.billed_periods(session, msp_id))


def rate_and_settle(runtime: Runtime, msp_id: str, period: str) -> RatingResult:
    """Rate one period of an MSP and everything that follows from it, in one transaction."""
    with runtime.uow() as uow:
        session = uow.session
        run = rating.price(runtime, session, msp_id, period)
        run.add(*licence_lines.priced_lines(session, msp_id, period, run.customers))
        result = rating.rate_period(session, run)
        settled = run.closed - set(result.errors)
        if run.has_usage or any(run.lines.get(c) for c in run.closed):
            # Closed periods are never rewritten: what changed since they were invoiced is
            # posted as adjustment lines on each customer's next open invoice.
            adjustments.post(session, msp_id, period, {c: run.lines.get(c, {}) for c in settled})
        # Closed months' late data lands on an open month: prepaid draws follow it.
        prepaid.settle_customers(session, [c for c in run.customers if c.id in settled])
        rated = [c for c in run.open_customers if c.id not in result.errors]
        credit.evaluate(session, msp_id, period, rated)
        rollups.after_rating(
            session,
            msp_id,
            period,
            [c.id for c in rated],
            sorted(settled),
            run.detail,
            slice_store(runtime.settings),
        )
        budgets.evaluate(session, msp_id, period, rated)
        uow.commit()
    return result


def rate_all(runtime: Runtime, msp_id: str, period: str | None = None) -> list[RatingResult]:
    with runtime.uow() as uow:
        periods = [period] if period else open_periods(uow.session, msp_id)
    return [rate_and_settle(runtime, msp_id, p) for p in periods]


def rate_open(runtime: Runtime, msp_id: str, periods: list[str]) -> list[RatingResult]:
    """Rate those of ``periods`` that have usage or subscriptions, in order."""
    with runtime.uow() as uow:
        open_now = set(open_periods(uow.session, msp_id))
    return [rate_and_settle(runtime, msp_id, p) for p in sorted(periods) if p in open_now]


@handler(RATE)
def _rate_job(runtime: Runtime, payload: dict[str, Any]) -> None:
    # "periods" comes from follow_up.rate_now (an invoice run's months); queued jobs carry
    # one "period", or none for every open period.
    if "periods" in payload:
        results = rate_open(runtime, payload["msp_id"], list(payload["periods"]))
    else:
        results = rate_all(runtime, payload["msp_id"], payload.get("period"))
    for result in results:
        # A re-rating that changed nothing (most of them, with the sandboxes delivering every
        # minute) is not news: DEBUG, so that `serve`'s default output stays quiet.
        log.log(
            logging.INFO if result.changes or result.errors else logging.DEBUG,
            "rated %s %s: %d customers, %d lines, %d changes, %d errors",
            payload["msp_id"],
            result.period,
            result.customers_rated,
            result.lines,
            result.changes,
            len(result.errors),
        )
