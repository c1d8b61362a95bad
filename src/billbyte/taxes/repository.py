"""Tax-rate queries other features use (invoicing, at close)."""

from __future__ import annotations

from datetime import date

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from billbyte.taxes.models import TaxRate


def rate_for(session: Session, msp_id: str, country: str | None, on: date) -> TaxRate | None:
    """The MSP's rate for a customer in ``country`` on day ``on``: the country's own rate
    if it has one valid that day, else the rate for every other country, else None."""
    valid = select(TaxRate).where(
        TaxRate.msp_id == msp_id,
        TaxRate.valid_from <= on,
        or_(TaxRate.valid_until.is_(None), TaxRate.valid_until > on),
    )
    candidates = list(session.scalars(valid.order_by(TaxRate.valid_from.desc(), TaxRate.id)))
    for wanted in (country, None):
        for rate in candidates:
            if rate.country == wanted:
                return rate
    return None
