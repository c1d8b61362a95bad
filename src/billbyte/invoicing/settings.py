"""An MSP's invoice settings: grace days before a period is due, line grouping and the
invoice mode (``statement``, the default, or ``invoice``: a complete tax invoice)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from billbyte.audit.service import record
from billbyte.auth.subject import AuthSubject
from billbyte.invoicing import documents
from billbyte.invoicing.models import InvoiceSettings
from billbyte.invoicing.schemas import InvoiceSettingsIn, InvoiceSettingsOut

DEFAULT_GRACE_DAYS = 5
DEFAULT_MODE = "statement"


def settings_for(session: Session, msp_id: str) -> InvoiceSettings:
    found = session.scalar(select(InvoiceSettings).where(InvoiceSettings.msp_id == msp_id))
    return found or InvoiceSettings(
        msp_id=msp_id, grace_days=DEFAULT_GRACE_DAYS, grouping=documents.SERVICE, mode=DEFAULT_MODE
    )


def to_out(current: InvoiceSettings) -> InvoiceSettingsOut:
    return InvoiceSettingsOut(
        grace_days=current.grace_days,
        grouping=current.grouping,
        mode=current.mode or DEFAULT_MODE,
    )


def _snapshot(current: InvoiceSettings) -> dict[str, object]:
    return {"grace_days": current.grace_days, "grouping": current.grouping, "mode": current.mode}


def set_settings(
    session: Session, subject: AuthSubject, data: InvoiceSettingsIn
) -> InvoiceSettings:
    subject.require_write()
    current = session.scalar(
        select(InvoiceSettings).where(InvoiceSettings.msp_id == subject.msp_id)
    )
    before = None
    if current is None:
        current = InvoiceSettings(msp_id=subject.msp_id)
        session.add(current)
    else:
        before = _snapshot(current)
    current.grace_days = data.grace_days
    current.grouping = data.grouping
    current.mode = data.mode
    session.flush()
    after = _snapshot(current)
    if after != before:
        record(
            session,
            subject,
            "invoice_settings.updated",
            "msp",
            subject.msp_id,
            before=before,
            after=after,
        )
    return current
