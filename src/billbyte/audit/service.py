"""Recording happens inside the caller's transaction: an action and its audit entry commit
together or not at all."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from billbyte.audit.models import AuditEvent
from billbyte.kit.clock import utcnow
from billbyte.kit.ids import new_ids
from billbyte.kit.pagination import Page, paginate

if TYPE_CHECKING:
    from billbyte.auth.subject import AuthSubject


def record(
    session: Session,
    subject: AuthSubject,
    action: str,
    target_type: str,
    target_id: str,
    *,
    before: dict[str, Any] | None,
    after: dict[str, Any] | None,
) -> AuditEvent:
    event = AuditEvent(
        msp_id=subject.msp_id,
        actor=subject.actor,
        action=action,
        target_type=target_type,
        target_id=target_id,
        before=before,
        after=after,
    )
    session.add(event)
    return event


def record_many(
    session: Session,
    subject: AuthSubject,
    action: str,
    target_type: str,
    changes: Sequence[tuple[str, dict[str, Any] | None, dict[str, Any] | None]],
) -> None:
    """``record`` for many targets at once, ``changes`` being (target id, before, after):
    one multi-row insert, in the order given."""
    if not changes:
        return
    now = utcnow()
    session.execute(
        insert(AuditEvent),
        [
            {
                "id": event_id,
                "msp_id": subject.msp_id,
                "actor": subject.actor,
                "action": action,
                "target_type": target_type,
                "target_id": target_id,
                "before": before,
                "after": after,
                "occurred_at": now,
            }
            for event_id, (target_id, before, after) in zip(
                new_ids("aud", len(changes)), changes, strict=True
            )
        ],
    )


def list_events(
    session: Session,
    subject: AuthSubject,
    *,
    target_id: str | None,
    cursor: str | None,
    limit: int,
    action: str | None = None,
) -> Page[AuditEvent]:
    stmt = select(AuditEvent).where(AuditEvent.msp_id == subject.msp_id)
    if target_id:
        stmt = stmt.where(AuditEvent.target_id == target_id)
    if action:
        stmt = stmt.where(AuditEvent.action == action)
    return paginate(session, stmt, AuditEvent.id, cursor, limit)
