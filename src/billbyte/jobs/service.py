"""A job queue in the database: enqueue in the caller's transaction, run by any worker.

Fair between MSPs: a job names the MSP it works for (``msp_id``; None for the installation's
own), and a claim serves first the MSP with the fewest running jobs, among equals the one
served least recently (``JobLane``), then that MSP's oldest due job. So the thousands of
follow-ups of one MSP's huge import wait their turn behind nobody's two jobs, and no MSP
runs more than ``BILLBYTE_JOBS_PER_MSP_MAX`` jobs at once however many workers are idle.

Leases: a worker owns a job by a conditional update that marks it running with a short lease
(``LEASE``, 30 s) and renews the lease every ``HEARTBEAT_SECONDS`` (10 s) from a heartbeat
thread while the handler runs. A worker that dies stops renewing, so its job is pending again
once the lease runs out: within a minute, not after the handler's whole possible run time.
"""

from __future__ import annotations

import contextvars
import logging
import re
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from prometheus_client import Counter
from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from billbyte.jobs.models import Job, JobLane
from billbyte.kit import metrics
from billbyte.kit.clock import utcnow
from billbyte.kit.errors import Conflict, InvalidInput
from billbyte.kit.logs import job_context
from billbyte.kit.pagination import Page, paginate
from billbyte.kit.repository import get_owned
from billbyte.runtime import Runtime

log = logging.getLogger(__name__)

Handler = Callable[[Runtime, dict[str, Any]], None]
HANDLERS: dict[str, Handler] = {}
LEASE = timedelta(seconds=30)
HEARTBEAT_SECONDS = 10.0  # well inside LEASE: two beats may be missed before it runs out
MAX_ATTEMPTS = 8
RETRY_BASE_SECONDS = 5.0  # a failed attempt n waits RETRY_BASE_SECONDS * 2**n before the next
# session.info key: (job id, run_after) of the jobs this transaction added, for whatever
# publishes them once it commits (jobs/broker.py, when a broker URL is set).
ENQUEUED = "billbyte.jobs.enqueued"
JOB_FAILURES = Counter(
    "billbyte_job_failures_total",
    "Job attempts that raised, in this process, by job kind (retried or not).",
    ["kind"],
    registry=metrics.REGISTRY,
)


def handler(kind: str) -> Callable[[Handler], Handler]:
    def register(function: Handler) -> Handler:
        HANDLERS[kind] = function
        return function

    return register


def run_now(runtime: Runtime, kind: str, payload: dict[str, Any]) -> None:
    """Run a job kind's handler in this process, now, without queueing it.

    For a feature that needs a higher one's work done before it goes on: it names the job
    instead of importing the feature (see ``jobs/follow_up.py``)."""
    function = HANDLERS.get(kind)
    if function is None:
        raise RuntimeError(f"No handler for job kind {kind!r}: billbyte.tasks registers them.")
    function(runtime, payload)


def enqueue(
    session: Session,
    kind: str,
    key: str,
    payload: dict[str, Any],
    *,
    msp_id: str | None = None,
    delay: float = 0.0,
) -> None:
    """Record a job in the caller's transaction; a pending job with the same key absorbs it.

    ``msp_id``: the MSP the job works for (default: the payload's ``msp_id``); None only for
    the installation's own jobs, which are not any MSP's to see and count against no cap."""
    full_key = f"{kind}:{key}"
    exists = session.scalar(select(Job.id).where(Job.key == full_key, Job.status == "pending"))
    if exists:
        return
    job = Job(
        kind=kind,
        key=full_key,
        payload=payload,
        msp_id=msp_id if msp_id is not None else payload.get("msp_id"),
        run_after=utcnow() + timedelta(seconds=delay),
    )
    try:
        with session.begin_nested():
            session.add(job)
            session.flush()
    except IntegrityError:
        return  # a concurrent transaction enqueued the same job
    session.info.setdefault(ENQUEUED, []).append((job.id, job.run_after))


def _take(session: Session, job_id: str, now: datetime) -> bool:
    """The one claim: only one worker's conditional update wins a due, pending job."""
    claimed = session.execute(
        update(Job)
        .where(Job.id == job_id, Job.status == "pending", Job.run_after <= now)
        .values(status="running", locked_until=now + LEASE, attempts=Job.attempts + 1)
    )
    return bool(claimed.rowcount == 1)  # type: ignore[attr-defined]


SYSTEM_LANE = "-"  # the JobLane of the jobs of no MSP (not an id: ids have a prefix)
_NEVER = datetime.min.replace(tzinfo=UTC)


def _lane(msp_id: str | None) -> str:
    return SYSTEM_LANE if msp_id is None else msp_id


def _in_lane(msp_id: str | None) -> Any:
    return Job.msp_id.is_(None) if msp_id is None else Job.msp_id == msp_id


def _lanes_in_turn(runtime: Runtime, due_before: datetime) -> list[str | None]:
    """The MSPs (None: the system's jobs) with due jobs, in the order the claim serves them:
    fewest running first, then served least recently, then oldest due job. MSPs at the cap
    are left out here already (and checked again under their lane's lock)."""
    cap = runtime.settings.jobs_per_msp_max
    with runtime.uow(read_only=True) as uow:
        session = uow.session
        oldest_due: dict[str | None, datetime] = {
            msp_id: oldest
            for msp_id, oldest in session.execute(
                select(Job.msp_id, func.min(Job.run_after))
                .where(Job.status == "pending", Job.run_after <= due_before)
                .group_by(Job.msp_id)
            )
        }
        if not oldest_due:
            return []
        running: dict[str | None, int] = {
            msp_id: int(count)
            for msp_id, count in session.execute(
                select(Job.msp_id, func.count()).where(Job.status == "running").group_by(Job.msp_id)
            )
        }
        served: dict[str, datetime] = {
            lane: at
            for lane, at in session.execute(
                select(JobLane.lane, JobLane.last_claimed_at).where(
                    JobLane.lane.in_([_lane(msp_id) for msp_id in oldest_due])
                )
            )
        }
    lanes = [m for m in oldest_due if m is None or running.get(m, 0) < cap]
    return sorted(
        lanes,
        key=lambda m: (running.get(m, 0), served.get(_lane(m), _NEVER), oldest_due[m]),
    )


def _enter_lane(session: Session, lane: str) -> None:
    """Record this claim as the lane's latest turn, holding the lane's row lock until the
    transaction ends (PostgreSQL; SQLite's one writer serialises anyway): claims in one lane
    then count its running jobs one after the other, so the cap holds with many workers."""
    turn = update(JobLane).where(JobLane.lane == lane).values(last_claimed_at=utcnow())
    if session.execute(turn).rowcount == 1:  # type: ignore[attr-defined]
        return
    try:
        with session.begin_nested():
            session.add(JobLane(lane=lane, last_claimed_at=utcnow()))
            session.flush()
    except IntegrityError:
        session.execute(turn)  # another worker made the row first: wait for its lock


def _claim_in_lane(
    runtime: Runtime, msp_id: str | None, now: datetime, due_before: datetime
) -> Job | None:
    """The lane's oldest due job, unless the MSP runs its cap already. Nothing claimed: the
    transaction rolls back, turn and lock with it."""
    with runtime.uow() as uow:
        session = uow.session
        _enter_lane(session, _lane(msp_id))
        if msp_id is not None:
            running = session.scalar(
                select(func.count()).where(Job.msp_id == msp_id, Job.status == "running")
            )
            if (running or 0) >= runtime.settings.jobs_per_msp_max:
                return None
        candidates = list(
            session.scalars(
                select(Job.id)
                .where(_in_lane(msp_id), Job.status == "pending", Job.run_after <= due_before)
                .order_by(Job.run_after, Job.id)
                .limit(5)
            )
        )
        for job_id in candidates:
            if _take(session, job_id, now):
                uow.commit()
                return session.get(Job, job_id)
        return None


def _claim(runtime: Runtime, now: datetime, older_than: timedelta = timedelta(0)) -> Job | None:
    due_before = now - older_than
    for msp_id in _lanes_in_turn(runtime, due_before):
        job = _claim_in_lane(runtime, msp_id, now, due_before)
        if job is not None:
            return job
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


def _renew(runtime: Runtime, job_id: str, attempt: int, now: datetime) -> bool:
    """Extend our lease; False when the job is no longer ours (its lease ran out and another
    worker claimed it: ``attempts`` is the claim's token)."""
    with runtime.uow() as uow:
        renewed = uow.session.execute(
            update(Job)
            .where(Job.id == job_id, Job.status == "running", Job.attempts == attempt)
            .values(locked_until=now + LEASE)
        )
        uow.commit()
    return bool(renewed.rowcount == 1)  # type: ignore[attr-defined]


class _Heartbeat:
    """Renews a running job's lease until stopped. Time runs from the claim's ``now`` (which
    callers may set ahead, e.g. to skip backoff) at the pace of the clock."""

    def __init__(self, runtime: Runtime, job: Job, now: datetime) -> None:
        self._runtime, self._job_id, self._attempt = runtime, job.id, job.attempts
        self._offset = now - utcnow()
        self._stop = threading.Event()
        context = contextvars.copy_context()  # its log records name the job too
        self._thread = threading.Thread(
            target=context.run, args=(self._beat,), name=f"lease-{job.id}", daemon=True
        )

    def __enter__(self) -> _Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()

    def _beat(self) -> None:
        while not self._stop.wait(HEARTBEAT_SECONDS):
            try:
                if not _renew(self._runtime, self._job_id, self._attempt, utcnow() + self._offset):
                    log.warning("job %s: lease lost to another worker", self._job_id)
                    return
            except Exception:  # e.g. SQLite busy: the next beat tries again
                log.exception("job %s: lease renewal failed", self._job_id)


def run_pending(
    runtime: Runtime,
    now: datetime | None = None,
    limit: int = 1000,
    older_than: timedelta = timedelta(0),
    *,
    recover: bool = True,
) -> int:
    """Run due jobs in fair order until none is left (or ``limit``); returns how many ran.
    ``older_than`` leaves alone the jobs due more recently than that: with a broker, their
    message is expected to run them, and the poller only re-derives the ones whose message
    was lost. ``recover``: first make the jobs of dead workers (lease run out) pending again
    (the poller's work; a broker's consumer leaves it to the poller)."""
    now = now or utcnow()
    if recover:
        _recover_expired(runtime, now)
    done = 0
    while done < limit:
        job = _claim(runtime, now, older_than)
        if job is None:
            return done
        done += 1
        with job_context(job.id, job.kind):
            _run(runtime, job, now)
    return done


def _run(runtime: Runtime, job: Job, now: datetime) -> None:
    function = HANDLERS.get(job.kind)
    try:
        if function is None:
            raise LookupError(f"no handler for job kind {job.kind!r}")
        with _Heartbeat(runtime, job, now):
            function(runtime, dict(job.payload))
    except Exception as exc:
        final = _permanent(exc)
        JOB_FAILURES.labels(kind=job.kind).inc()
        if hasattr(exc, "retryable"):
            # An expected vendor failure, already described by its message: one line.
            log.log(
                logging.ERROR if final else logging.WARNING,
                "job %s (%s) failed, %s: %s",
                job.id,
                job.kind,
                "not retried" if final else f"attempt {job.attempts} of {MAX_ATTEMPTS}",
                _one_line(exc),
            )
        else:
            log.exception("job %s (%s) failed", job.id, job.kind)
        _finish(runtime, job, error=f"{type(exc).__name__}: {exc}", now=now, final=final)
    else:
        _finish(runtime, job, error=None, now=now)


def _permanent(exc: BaseException) -> bool:
    """A failure that running again cannot cure: an error saying ``retryable = False`` (a
    connector's ``VendorError``, e.g. an AWS partner account without ``cur_bucket``)."""
    return getattr(exc, "retryable", None) is False


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:500] or type(exc).__name__


def _finish(
    runtime: Runtime, job: Job, *, error: str | None, now: datetime, final: bool = False
) -> None:
    with runtime.uow() as uow:
        row = uow.session.get(Job, job.id)
        assert row is not None
        if row.status != "running" or row.attempts != job.attempts:
            # Our lease ran out and another worker owns the job now: its outcome counts.
            log.warning("job %s finished after losing its lease; outcome dropped", job.id)
            return
        row.locked_until = None
        row.last_error = error
        if error is None:
            row.status = "done"
            row.finished_at = utcnow()
        elif final or row.attempts >= MAX_ATTEMPTS:
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
                row.run_after = now + timedelta(seconds=RETRY_BASE_SECONDS * 2**row.attempts)
            else:
                row.status = "superseded"
        uow.commit()


def run_forever(
    runtime: Runtime,
    stop: threading.Event,
    interval: float = 1.0,
    extra: Callable[[Runtime], Any] | None = None,
    older_than: timedelta = timedelta(0),
) -> None:
    """The in-process worker loop of the embedded default; with a broker, the slow poller
    that runs only the jobs due for longer than ``older_than`` (their message was lost)."""
    while not stop.is_set():
        try:
            run_pending(runtime, older_than=older_than)
            if extra is not None:
                extra(runtime)
        except Exception:
            log.exception("job loop iteration failed")
        stop.wait(interval)


def list_jobs(session: Session, status: str, limit: int = 100) -> list[Job]:
    """Jobs in one status of every MSP and the system, most recent first (``billbyte jobs
    list``, for operators): ``failed`` ones are the dead letters."""
    return list(
        session.scalars(
            select(Job)
            .where(Job.status == status)
            .order_by(Job.finished_at.desc(), Job.created_at.desc(), Job.id)
            .limit(limit)
        )
    )


# The statuses an MSP may list its jobs by ("superseded" rows are folded into another job).
MSP_STATUSES = ("pending", "running", "done", "failed")
_JOB_ID = re.compile(r"job_[0-9A-Z]{26}")


def list_msp_jobs(
    session: Session, msp_id: str, status: str, cursor: str | None, limit: int
) -> Page[Job]:
    """One MSP's jobs in one status, oldest first (the API's cursor order)."""
    if status not in MSP_STATUSES:
        raise InvalidInput(
            f"status must be one of {', '.join(MSP_STATUSES)}, not {status[:40]!r}.",
            field="status",
        )
    if cursor and not _JOB_ID.fullmatch(cursor):
        raise InvalidInput(
            f"cursor must be a job id from this list, not {cursor[:40]!r}.", field="cursor"
        )
    stmt = select(Job).where(Job.msp_id == msp_id, Job.status == status)
    return paginate(session, stmt, Job.id, cursor, limit)


def get_msp_job(session: Session, msp_id: str, job_id: str, *, for_update: bool = False) -> Job:
    """One of the MSP's jobs; another MSP's (or the system's) is not found, as a missing one."""
    return get_owned(session, Job, msp_id, job_id, what="job", for_update=for_update)


def retry_failed(session: Session, job: Job) -> bool:
    """Put a failed job (loaded ``for_update`` by the caller, of its MSP) back in the queue,
    due now, with its attempts anew; True when it did. A job pending, running or done
    already (retried before) is left as it is: retrying is idempotent. A superseded job, or a
    failed one whose work a pending job with its key will do, is a ``Conflict``. Published
    after the caller's commit."""
    if job.status in ("pending", "running", "done"):
        return False
    if job.status != "failed":
        raise Conflict(
            f"Job {job.id} is {job.status}: another job with its key does its work.",
            code="job_not_failed",
        )
    pending = session.scalar(select(Job.id).where(Job.key == job.key, Job.status == "pending"))
    if pending is not None:
        raise Conflict(
            f"Job {pending} is pending with the same work; it runs instead of a retry.",
            code="job_pending_already",
        )
    try:
        with session.begin_nested():
            job.status, job.attempts, job.run_after = "pending", 0, utcnow()
            job.locked_until = job.finished_at = None
            session.flush()
    except IntegrityError as exc:  # a concurrent transaction made a job with the key pending
        raise Conflict(
            f"Another job with the work of {job.id} became pending meanwhile.",
            code="job_pending_already",
        ) from exc
    session.info.setdefault(ENQUEUED, []).append((job.id, job.run_after))
    return True
