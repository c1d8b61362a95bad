"""Reads of the connectors' own tables (collection state, service actions), for the API, the
jobs and other features; they never go through ``connectors.service``."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from billbyte.connectors.models import PartnerSync, ServiceAction


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
