"""Storage side of idempotency; the ASGI middleware in ``middleware.py`` drives it.

A key belongs to the caller that sent it: the MSP, the API key (``AuthSubject.actor``) and
the role that key had. Only that caller is ever shown the stored response; anyone else
re-using the same string makes a request of their own, checked by the endpoint as usual.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from billbyte.auth.subject import AuthSubject
from billbyte.idempotency.models import IdempotencyRecord
from billbyte.kit.clock import utcnow

RETENTION = timedelta(hours=24)
IN_PROGRESS = "in_progress"
DONE = "done"


@dataclass(frozen=True)
class Claim:
    """Outcome of claiming a key: ours to run, a stored response, or a refusal."""

    outcome: str  # "run" | "replay" | "mismatch" | "in_progress"
    record_id: str | None = None
    status: int | None = None
    headers: dict[str, str] | None = None
    body: str | None = None


def _mine(subject: AuthSubject, key: str) -> list[ColumnElement[bool]]:
    return [
        IdempotencyRecord.msp_id == subject.msp_id,
        IdempotencyRecord.principal == subject.actor,
        IdempotencyRecord.principal_role == subject.role.value,
        IdempotencyRecord.idempotency_key == key,
    ]


def claim(
    session: Session, subject: AuthSubject, key: str, request_hash: str, lease: timedelta
) -> Claim:
    now = utcnow()
    session.execute(
        delete(IdempotencyRecord).where(
            *_mine(subject, key), IdempotencyRecord.created_at < now - RETENTION
        )
    )
    existing = session.scalar(select(IdempotencyRecord).where(*_mine(subject, key)))
    if existing is not None and existing.state != DONE and _lease_over(existing, now):
        # Its request died (kill -9, lost host) without completing or releasing the key:
        # nothing was stored, so the key is free. The lease condition is repeated in the
        # DELETE so that a renewal or another retry that got here first wins.
        taken = session.execute(
            delete(IdempotencyRecord).where(
                IdempotencyRecord.id == existing.id,
                IdempotencyRecord.state == IN_PROGRESS,
                (IdempotencyRecord.lease_expires_at.is_(None))
                | (IdempotencyRecord.lease_expires_at <= now),
            )
        )
        if taken.rowcount != 1:  # type: ignore[attr-defined]
            return Claim("in_progress")
        existing = None
    if existing is None:
        record = IdempotencyRecord(
            msp_id=subject.msp_id,
            principal=subject.actor,
            principal_role=subject.role.value,
            idempotency_key=key,
            request_hash=request_hash,
            state=IN_PROGRESS,
            lease_expires_at=now + lease,
            created_at=now,
        )
        try:
            with session.begin_nested():
                session.add(record)
                session.flush()
        except IntegrityError:
            return Claim("in_progress")
        return Claim("run", record_id=record.id)
    if existing.request_hash != request_hash:
        return Claim("mismatch")
    if existing.state != DONE:
        return Claim("in_progress")
    return Claim(
        "replay",
        status=existing.response_status,
        headers=dict(existing.response_headers or {}),
        body=existing.response_body,
    )


def _lease_over(record: IdempotencyRecord, now: datetime) -> bool:
    return record.lease_expires_at is None or record.lease_expires_at <= now


def renew(session: Session, record_id: str, lease: timedelta) -> bool:
    """Extend a running request's lease; False once the record is no longer ours."""
    result = session.execute(
        update(IdempotencyRecord)
        .where(IdempotencyRecord.id == record_id, IdempotencyRecord.state == IN_PROGRESS)
        .values(lease_expires_at=utcnow() + lease)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


def complete(
    session: Session, record_id: str, status: int, headers: dict[str, str], body: str
) -> None:
    session.execute(
        update(IdempotencyRecord)
        .where(IdempotencyRecord.id == record_id, IdempotencyRecord.state == IN_PROGRESS)
        .values(
            state=DONE,
            lease_expires_at=None,
            response_status=status,
            response_headers=headers,
            response_body=body,
        )
    )


def release(session: Session, record_id: str) -> None:
    """Only a success is worth replaying: after an error the client may retry, corrected."""
    session.execute(
        delete(IdempotencyRecord).where(
            IdempotencyRecord.id == record_id, IdempotencyRecord.state == IN_PROGRESS
        )
    )
