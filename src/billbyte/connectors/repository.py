"""Reads of the connectors' own tables (collection state, service actions), for the API, the
jobs and other features; they never go through ``connectors.service``."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from billbyte.connectors.models import PartnerSync, ServiceAction
from billbyte.partners.models import PartnerAccount


def sync_of(session: Session, partner_account_id: str) -> PartnerSync | None:
    """The collection state of a partner account (None before its first collection)."""
    return session.scalar(
        select(PartnerSync).where(PartnerSync.partner_account_id == partner_account_id)
    )


def running_action(session: Session, customer_id: str) -> str | None:
    """The id of the customer's service action still in progress, if any."""
    return session.scalar(
        select(ServiceAction.id).where(
            ServiceAction.customer_id == customer_id, ServiceAction.state == "in_progress"
        )
    )


def collection_states(session: Session) -> list[tuple[str, str | None, int]]:
    """Every active partner account's vendor, newest usage seen (``data_until``, ISO) and
    consecutive collection failures, over every MSP: what the metrics aggregate by vendor.
    One row per partner account (a small table), no tenant identifiers."""
    rows = session.execute(
        select(PartnerAccount.vendor, PartnerSync.data_until, PartnerSync.consecutive_failures)
        .join(PartnerSync, PartnerSync.partner_account_id == PartnerAccount.id)
        .where(PartnerAccount.status == "active")
    )
    return [(vendor, data_until, int(failures or 0)) for vendor, data_until, failures in rows]
