"""Jobs on Dramatiq (``BILLBYTE_BROKER_URL``): the broker wakes a worker, the job table decides.

A job is still a row written in the caller's transaction (``service.enqueue``: the outbox).
Once that transaction commits, a Dramatiq message carrying only the job's id is published.
The message is a wake-up: the ``run_job`` actor runs due jobs as the poller does
(``service.run_pending``: the same conditional update, lease and heartbeat, and the same
fair order between MSPs) until none it may claim is left, so one MSP's thousand messages
queued first do not make another MSP's two jobs wait behind them, and a job held back by
its MSP's cap is run by whichever worker finishes that MSP's running job. A duplicated
message finds nothing due and does nothing, and a lost one (a purged queue, a broker
restart, a publish that failed) leaves a pending row that another message's drain or the
database poller, still running at a slow interval (``BILLBYTE_BROKER_REDERIVE_SECONDS``),
runs once it has been due that long.

Retries and backoff stay the row's (``attempts``, ``run_after``): Dramatiq's middleware is
off, so its Retries cannot double them and its TimeLimit cannot kill a long rating (a running
job's liveness is its lease). Dead letters are the rows that failed permanently.

Why a session event and not the Unit of Work's commit: ``enqueue`` takes any ``Session``
(units of work, but also tests and scripts) and ``db/`` must not know about jobs; SQLAlchemy
calls ``after_commit`` exactly once, after the outermost COMMIT succeeded, and never for a
rolled-back transaction, whoever committed it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any
from weakref import WeakKeyDictionary

import dramatiq
from dramatiq.brokers.rabbitmq import RabbitmqBroker
from dramatiq.brokers.redis import RedisBroker
from sqlalchemy import Engine, event
from sqlalchemy.orm import Session, SessionTransaction

from billbyte.jobs import service
from billbyte.jobs.models import Job
from billbyte.kit.clock import utcnow
from billbyte.runtime import Runtime

log = logging.getLogger(__name__)

ACTOR = "run_job"
# The engine a committing session is bound to → the broker its jobs are published to.
_INSTALLED: WeakKeyDictionary[Engine, JobBroker] = WeakKeyDictionary()


def _dramatiq_broker(url: str) -> dramatiq.Broker:
    if url.partition("://")[0] in ("redis", "rediss"):
        return RedisBroker(url=url, middleware=[])
    pika_log = logging.getLogger("pika")
    if pika_log.level == logging.NOTSET:  # pika logs every connection at INFO (a dozen lines)
        pika_log.setLevel(logging.WARNING)
    # Publisher confirms: a message RabbitMQ did not take is an error here (and logged),
    # not silently gone; the poller would still find its job, only later.
    return RabbitmqBroker(url=url, middleware=[], confirm_delivery=True)


class JobBroker:
    """One Dramatiq broker and its ``run_job`` actor, publishing and consuming one queue."""

    def __init__(self, runtime: Runtime, url: str | None = None, queue: str | None = None):
        self.runtime = runtime
        self.url = url or runtime.settings.broker_url
        self.queue = queue or runtime.settings.broker_queue
        self.dramatiq = _dramatiq_broker(self.url)
        # After a failed publish, commits skip publishing until then (time.monotonic()):
        # a broker that is down must not add its connect timeout to every commit.
        self.paused_until = 0.0
        self.actor: dramatiq.Actor[[str], None] = dramatiq.actor(
            broker=self.dramatiq, actor_name=ACTOR, queue_name=self.queue
        )(self._consume)

    def publish(self, job_id: str, run_after: datetime | None = None) -> None:
        """Send a wake-up for this job, delayed until ``run_after`` if that is ahead."""
        # Rounded up: a message woken a millisecond early would find its row not yet due.
        delay = 0 if run_after is None else -((utcnow() - run_after) // timedelta(milliseconds=1))
        self.actor.send_with_options(args=(job_id,), delay=delay if delay > 0 else None)

    def _consume(self, job_id: str) -> None:
        now = utcnow()
        service.run_pending(self.runtime, now, recover=False)
        # A failed attempt left the row pending until its backoff is over (or the message
        # came before the row was due): wake a worker then. A row that is done, failed,
        # running elsewhere or gone needs nothing more.
        with self.runtime.uow(read_only=True) as uow:
            row = uow.session.get(Job, job_id)
            next_run = row.run_after if row is not None and row.status == "pending" else None
        if next_run is not None and next_run > now:
            self.publish(job_id, next_run)

    def close(self) -> None:
        if _INSTALLED.get(self.runtime.engine) is self:
            del _INSTALLED[self.runtime.engine]
        self.dramatiq.close()


def install(runtime: Runtime, url: str | None = None, queue: str | None = None) -> JobBroker:
    """Publish the jobs committed on ``runtime``'s engine to this broker from now on."""
    broker = JobBroker(runtime, url, queue)
    _INSTALLED[runtime.engine] = broker
    return broker


def installed(engine: Engine) -> JobBroker | None:
    return _INSTALLED.get(engine)


@event.listens_for(Session, "after_commit")
def _publish_committed(session: Session) -> None:
    enqueued: list[tuple[str, datetime]] = session.info.pop(service.ENQUEUED, None) or []
    broker = _INSTALLED.get(session.bind) if isinstance(session.bind, Engine) else None
    if broker is None or not enqueued or time.monotonic() < broker.paused_until:
        return  # while paused, the poller runs the jobs: the commit stands either way
    every = broker.runtime.settings.broker_rederive_seconds
    for job_id, run_after in enqueued:
        try:
            broker.publish(job_id, run_after)
        except Exception as exc:
            broker.paused_until = time.monotonic() + every
            log.warning(
                "job %s committed but not published (%s: %s); the poller runs it within "
                "%ss, and commits do not publish for the next %ss",
                job_id,
                type(exc).__name__,
                exc,
                2 * every,
                every,
            )
            return


@event.listens_for(Session, "after_transaction_end")
def _forget_rolled_back(session: Session, transaction: SessionTransaction) -> None:
    # After a commit the ids were published (and popped) already; after a rollback their
    # rows do not exist, so nothing is sent.
    if transaction.parent is None:
        session.info.pop(service.ENQUEUED, None)


def start_consumers(
    broker: JobBroker,
    *,
    consume: bool = True,
    extra: Callable[[Runtime], Any] | None = None,
    worker_timeout_ms: int = 1000,
) -> Callable[[], None]:
    """``billbyte worker`` with a broker: Dramatiq consumers in this process (``consume``;
    ``BILLBYTE_BROKER_WORKER_THREADS`` threads) and the poller that re-derives the jobs
    whose message was lost. Returns the function that stops both."""
    runtime = broker.runtime
    every = runtime.settings.broker_rederive_seconds
    worker: dramatiq.Worker | None = None
    if consume:
        worker = dramatiq.Worker(
            broker.dramatiq,
            worker_threads=runtime.settings.broker_worker_threads,
            worker_timeout=worker_timeout_ms,
        )
        worker.start()
    stop = threading.Event()
    poller = threading.Thread(
        target=service.run_forever,
        args=(runtime, stop),
        kwargs={"interval": every, "extra": extra, "older_than": timedelta(seconds=every)},
        name="billbyte-jobs-rederive",
        daemon=True,
    )
    poller.start()

    def stop_all() -> None:
        stop.set()
        if worker is not None:
            worker.stop()
        poller.join()

    return stop_all
