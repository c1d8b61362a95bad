"""Reads of the job table for other parts (the metrics collector): small aggregate queries
over the unfinished jobs (the ``status, run_after`` index), never over the done ones."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from billbyte.jobs.models import Job

UNFINISHED = ("pending", "running")


def counts_by_kind_and_status(
    session: Session, statuses: tuple[str, ...] = (*UNFINISHED, "failed")
) -> dict[tuple[str, str], int]:
    """How many jobs of each (kind, status), for the given statuses."""
    rows = session.execute(
        select(Job.kind, Job.status, func.count())
        .where(Job.status.in_(statuses))
        .group_by(Job.kind, Job.status)
    )
    return {(kind, status): int(count) for kind, status, count in rows}


def oldest_unfinished(session: Session, kind: str) -> datetime | None:
    """When the oldest pending or running job of ``kind`` was enqueued (a pending job
    absorbs later requests with its key, so this is the oldest change not yet processed)."""
    return session.scalar(
        select(func.min(Job.created_at)).where(Job.kind == kind, Job.status.in_(UNFINISHED))
    )


def probe_broker(url: str, timeout_seconds: float = 3.0) -> None:
    """Raise when the message broker at ``url`` (redis:// or amqp://) does not answer
    (readiness). Its own short connection, so a probe never disturbs the publishers'."""
    if url.partition("://")[0] in ("redis", "rediss"):
        import redis  # why: imported only where a broker is configured

        client = redis.Redis.from_url(
            url, socket_connect_timeout=timeout_seconds, socket_timeout=timeout_seconds
        )
        try:
            client.ping()
        finally:
            client.close()
        return
    import pika  # type: ignore[import-untyped]  # why: only where a broker is configured

    parameters = pika.URLParameters(url)
    parameters.socket_timeout = timeout_seconds
    parameters.blocked_connection_timeout = timeout_seconds
    parameters.connection_attempts = 1
    pika.BlockingConnection(parameters).close()
