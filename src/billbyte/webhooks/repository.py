"""Reads of the outbox for other parts (the metrics collector), over every MSP: aggregate
counts on the ``status`` index, no tenant's data."""

from __future__ import annotations

from typing import Any

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from billbyte.webhooks.models import WebhookDelivery


def _count_where(condition: Any) -> Any:
    return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)


def delivery_backlog(session: Session) -> dict[str, int]:
    """Deliveries still to send (``pending``), those among them that already failed at least
    once (``retrying``), and those that failed for good (``failed``)."""
    pending = WebhookDelivery.status == "pending"
    row = session.execute(
        select(
            _count_where(pending),
            _count_where(pending & (WebhookDelivery.attempt_count > 0)),
            _count_where(WebhookDelivery.status == "failed"),
        ).where(WebhookDelivery.status.in_(("pending", "failed")))
    ).one()
    return {"pending": int(row[0]), "retrying": int(row[1]), "failed": int(row[2])}
