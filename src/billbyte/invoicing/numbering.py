"""Gapless numbers per MSP and series (``INV-000001``, ``CN-000001``)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from billbyte.invoicing.models import InvoiceCounter

INVOICE_SERIES = "INV"
CREDIT_NOTE_SERIES = "CN"


def next_number(session: Session, msp_id: str, series: str) -> str:
    """The next number of the series, under a row lock held until the caller commits."""

    def locked() -> InvoiceCounter | None:
        return session.scalar(
            select(InvoiceCounter)
            .where(InvoiceCounter.msp_id == msp_id, InvoiceCounter.series == series)
            .with_for_update()
        )

    counter = locked()
    if counter is None:
        try:
            with session.begin_nested():
                session.add(InvoiceCounter(msp_id=msp_id, series=series, last_number=0))
                session.flush()
        except IntegrityError:
            pass  # a concurrent transaction created it first
        counter = locked()
        assert counter is not None
    counter.last_number += 1
    session.flush()
    return f"{series}-{counter.last_number:06d}"
