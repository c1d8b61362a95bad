"""Storage side of idempotency; the ASGI middleware in ``middleware.py`` drives it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from billbyte.idempotency.models import IdempotencyRecord
from billbyte.kit.clock import utcnow

RETENTION = timedelta(hours=24)


@dataclass(frozen=True)
class Claim:
    """Outcome of claiming a key: ours to run, a stored response, or a refusal."""

    outcome: str  # "run" | "replay" | "mismatch" | "in_progress"
    record_id: str | None = None
    status: int | None = None
    headers: dict[str, str] | None = None
    body: str | None = None


def claim(session: Session, msp_id: str, key: str, request_hash: str) -> Claim:
    session.execute(
        delete(IdempotencyRecord).where(
            IdempotencyRecord.msp_id == msp_id,
            IdempotencyRecord.idempotency_key == key,
            IdempotencyRecord.created_at < utcnow() - RETENTION,
        )
    )
    existing = session.scalar(
        select(IdempotencyRecord).where(
            IdempotencyRecord.msp_id == msp_id, IdempotencyRecord.idempotency_key == key
        )
    )
    if existing is None:
        record = IdempotencyRecord(msp_id=msp_id, idempotency_key=key, request_hash=request_hash)
        try:
            with session.begin_nested():
                session.add(record)
                session.flush()
        except IntegrityError:
            return Claim("in_progress")
        return Claim("run", record_id=record.id)
    if existing.request_hash != request_hash:
        return Claim("mismatch")
    if existing.state != "done":
        return Claim("in_progress")
    return Claim(
        "replay",
        status=existing.response_status,
        headers=dict(existing.response_headers or {}),
        body=existing.response_body,
    )


def complete(
    session: Session, record_id: str, status: int, headers: dict[str, str], body: str
) -> None:
    record = session.get(IdempotencyRecord, record_id)
    if record is not None:
        record.state = "done"
        record.response_status = status
        record.response_headers = headers
        record.response_body = body


def release(session: Session, record_id: str) -> None:
    """A server error is not a result worth replaying: let the client retry."""
    session.execute(delete(IdempotencyRecord).where(IdempotencyRecord.id == record_id))
