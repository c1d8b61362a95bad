from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from billbyte.jobs.models import Job
from billbyte.kit.clock import utcnow
from billbyte.runtime import Runtime

log = logging.getLogger(__name__)

Handler = Callable[[Runtime, dict[str, Any]], None]
HANDLERS: dict[str, Handler] = {}
LEASE = timedelta(minutes=10)
MAX_ATTEMPTS = 8


def handler(kind: str) -> Callable[[Handler], Handler]:
    def register(function: Handler) -> Handler:
        HANDLERS[kind] = function
        return function

    return register


def enqueue(
    session: Session, kind: str, key: str, payload: dict[str, Any], *, delay: float = 0.0
) -> None:
    """Record a job in the caller's transaction; a pending job with the same key absorbs it."""
    full_key = f"{kind}:{key}"
    exists = session.scalar(select(Job.id).where(Job.key == full_key, Job.status == "pending"))
    if exists:
        return
    try:
        with session.begin_nested():
            session.add(
                Job(
                    kind=kind,
                    key=full_key,
                    payload=payload,
                    run_after=utcnow() + timedelta(seconds=delay),
                )
            )
            session.flush()
    except IntegrityError:
        pass  # a concurrent transaction enqueued the same job


def _claim(runtime: Runtime, now: datetime) -> Job | None:
    with runtime.uow() as uow:
        candidates = uow.session.scalars(
            select(Job)
            .where(Job.status == "pending", Job.run_after <= now)
            .order_by(Job.run_after, Job.id)
            .limit(5)
        )
        for job in candidates:
            claimed = uow.session.execute(
                update(Job)
                .where(Job.id == job.id, Job.status == "pending")
                .values(status="running", locked_until=now + LEASE, attempts=Job.attempts + 1)
            )
            if claimed.rowcount == 1:  # type: ignore[attr-defined]
                uow.commit()
                return uow.session.get(Job, job.id)
        return None


def _recover_expired(runtime: Runtime, now: datetime) -> None:
    """A worker that died mid-job leaves it 'running' past its lease: run it again."""
    with runtime.uow() as uow:
        uow.session.execute(
            update(Job)
            .where(Job.status == "running", Job.locked_until < now)
            .values(status="pending", locked_until=None)
        )
        uow.commit()


def run_pending(runtime: Runtime, now: datetime | None = None, limit: int = 1000) -> int:
    """Run due jobs until none is left (or ``limit``); returns how many ran."""
    now = now or utcnow()
    _recover_expired(runtime, now)
    done = 0
    while done < limit:
        job = _claim(runtime, now)
        if job is None:
            return done
        done += 1
        function = HANDLERS.get(job.kind)
        try:
            if function is None:
                raise LookupError(f"no handler for job kind {job.kind!r}")
            function(runtime, dict(job.payload))
        except Exception as exc:
            log.exception("job %s (%s) failed", job.id, job.kind)
            _finish(runtime, job, error=f"{type(exc).__name__}: {exc}", now=now)
        else:
            _finish(runtime, job, error=None, now=now)
    return done


def _finish(runtime: Runtime, job: Job, *, error: str | None, now: datetime) -> None:
    with runtime.uow() as uow:
        row = uow.session.get(Job, job.id)
        assert row is not None
        row.locked_until = None
        row.last_error = error
        if error is None:
            row.status = "done"
            row.finished_at = utcnow()
        elif row.attempts >= MAX_ATTEMPTS:
            row.status = "failed"
            row.finished_at = utcnow()
        else:
            row.status = "retry"
            uow.session.flush()
            # Re-queue as pending unless another pending job with the key already exists.
            duplicate = uow.session.scalar(
                select(Job.id).where(Job.key == row.key, Job.status == "pending")
            )
            if duplicate is None:
                row.status = "pending"
                row.run_after = now + timedelta(seconds=5 * 2**row.attempts)
            else:
                row.status = "superseded"
        uow.commit()


def run_forever(
    runtime: Runtime,
    stop: threading.Event,
    interval: float = 1.0,
    extra: Callable[[Runtime], Any] | None = None,
) -> None:
    """The in-process worker loop of the embedded default."""
    while not stop.is_set():
        try:
            run_pending(runtime)
            if extra is not None:
                extra(runtime)
        except Exception:
            log.exception("job loop iteration failed")
        stop.wait(interval)
