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
    (number,) = next_numbers(session, msp_id, series, 1)
    return number


def next_numbers(session: Session, msp_id: str, series: str, count: int) -> list[str]:
    """The next ``count`` numbers of the series, in order, taken as one block under the
    counter's row lock (held until the caller commits, so a rollback gives the whole block
    back and the series keeps no gap)."""
    if count < 1:
        raise ValueError(f"a block of numbers needs at least one, not {count}")

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
    first = counter.last_number + 1
    counter.last_number += count
    session.flush()
    return [f"{series}-{number:06d}" for number in range(first, first + count)]
