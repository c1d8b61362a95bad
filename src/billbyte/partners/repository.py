"""Reads of partner accounts for other features (they never go through ``partners.service``)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from billbyte.kit.crypto import decrypt_json
from billbyte.kit.repository import get_owned
from billbyte.partners.models import PartnerAccount


def get_account(session: Session, msp_id: str, account_id: str) -> PartnerAccount:
    """The MSP's partner account, or ``NotFound`` (``partner_account_not_found``)."""
    return get_owned(
        session,
        PartnerAccount,
        msp_id,
        account_id,
        what="partner account",
        code="partner_account_not_found",
    )


def active_account_for(session: Session, msp_id: str, vendor: str) -> PartnerAccount | None:
    """The MSP's active partner account for ``vendor`` (the oldest, if there are several)."""
    return session.scalar(
        select(PartnerAccount)
        .where(
            PartnerAccount.msp_id == msp_id,
            PartnerAccount.vendor == vendor,
            PartnerAccount.status == "active",
        )
        .order_by(PartnerAccount.id)
    )


def credentials_of(account: PartnerAccount, secret_key: str) -> dict[str, Any] | None:
    """For connectors only; never exposed through the API."""
    if account.credentials_encrypted is None:
        return None
    return decrypt_json(secret_key, account.credentials_encrypted)
