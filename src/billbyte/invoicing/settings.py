"""An MSP's invoice settings: grace days before a period is due, and line grouping."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from billbyte.audit.service import record
from billbyte.auth.subject import AuthSubject
from billbyte.invoicing import documents
from billbyte.invoicing.models import InvoiceSettings
from billbyte.invoicing.schemas import InvoiceSettingsIn

DEFAULT_GRACE_DAYS = 5


def settings_for(session: Session, msp_id: str) -> InvoiceSettings:
    found = session.scalar(select(InvoiceSettings).where(InvoiceSettings.msp_id == msp_id))
    return found or InvoiceSettings(
        msp_id=msp_id, grace_days=DEFAULT_GRACE_DAYS, grouping=documents.SERVICE
    )


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
        before = {"grace_days": current.grace_days, "grouping": current.grouping}
    current.grace_days = data.grace_days
    current.grouping = data.grouping
    session.flush()
    after = {"grace_days": current.grace_days, "grouping": current.grouping}
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
