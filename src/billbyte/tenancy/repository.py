"""What other features read of tenancy: an MSP's brand, as the portal and console show it."""

from __future__ import annotations

from sqlalchemy.orm import Session

from billbyte.tenancy.models import Msp
from billbyte.web.branding import Brand


def brand_of(session: Session, msp_id: str | None) -> Brand:
    """The MSP's brand; BillByte's neutral one for an unknown or missing MSP (a sign-in page
    reached without a brand link)."""
    msp = session.get(Msp, msp_id) if msp_id else None
    if msp is None:
        return Brand()
    return Brand(name=msp.name)
