"""Sending the outbox: claim due deliveries, POST them signed, log every attempt, retry later.

Any number of workers (threads, processes, machines) may run ``deliver_due`` at once. A
worker owns a delivery only after a conditional UPDATE that sets a lease (``locked_until``)
succeeded on exactly one row, so one attempt is never sent twice; a worker that dies leaves a
lease that expires, and the attempt it used up counts. Delivery is at least once: receivers
de-duplicate on ``BillByte-Event-Id``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

import httpx
from prometheus_client import Counter
from sqlalchemy import CursorResult, or_, select, update

from billbyte import __version__
from billbyte.kit import metrics
from billbyte.kit.clock import utcnow
from billbyte.kit.ids import new_id
from billbyte.kit.outbound import OutboundPolicy, OutboundRefused, guarded_client, short_message
from billbyte.runtime import Runtime
from billbyte.webhooks.models import (
    WebhookDelivery,
    WebhookDeliveryAttempt,
    WebhookEndpoint,
    WebhookEvent,
)
from billbyte.webhooks.service import ENABLED, decrypt_secret
from billbyte.webhooks.signing import HEADER, signature_header

log = logging.getLogger(__name__)

# The wait after attempt n (1-based) failed is BACKOFF[n - 1]; attempt MAX_ATTEMPTS is the last.
BACKOFF: tuple[timedelta, ...] = (
    timedelta(seconds=5),
    timedelta(seconds=30),
    timedelta(minutes=2),
    timedelta(minutes=10),
    timedelta(hours=1),
    timedelta(hours=6),
    timedelta(hours=12),
    timedelta(hours=24),
    timedelta(hours=24),
)
MAX_ATTEMPTS = len(BACKOFF) + 1
TIMEOUT_SECONDS = 10.0
# httpx's timeout bounds each phase (connect, write, read), not the whole request, so the
# lease is far longer than an attempt takes; it only delays the retry after a worker died.
LEASE = timedelta(minutes=5)
BATCH_SIZE = 100
MAX_ERROR_CHARS = 1000
MAX_RESPONSE_BYTES = 500
DELIVERY_FAILURES = Counter(
    "billbyte_webhook_delivery_failures_total",
    "Webhook delivery attempts that failed, in this process; final=true when it was the "
    "delivery's last attempt (the delivery is then failed).",
    ["final"],
    registry=metrics.REGISTRY,
)

__all__ = [
    "BACKOFF",
    "MAX_ATTEMPTS",
    "BackgroundDelivery",
    "deliver_due",
    "new_http_client",
    "run_forever",
    "start_background",
]


@dataclass(frozen=True)
class _Claim:
    delivery_id: str
    msp_id: str
    token: str
    attempt_number: int
    event_id: str
    event_type: str
    body: str
    url: str
    secret_encrypted: str


@dataclass(frozen=True)
class _Outcome:
    succeeded: bool
    status_code: int | None
    error: str | None
    duration_ms: int


def new_http_client(policy: OutboundPolicy) -> httpx.Client:
    """Every connection is checked and pinned to the address checked (a second DNS answer
    cannot send it elsewhere). Redirects are not followed: a 3xx is a failed attempt, the URL
    should be fixed."""
    return guarded_client(
        policy,
        timeout=TIMEOUT_SECONDS,
        headers={"User-Agent": f"BillByte-Webhooks/{__version__}"},
    )


def deliver_due(
    runtime: Runtime,
    now: datetime | None = None,
    http_client: httpx.Client | None = None,
    *,
    limit: int = BATCH_SIZE,
) -> int:
    """One pass: send each delivery that is due (at most ``limit``) once.

    Returns the number of attempts made. ``now`` fixes the clock for the whole pass (tests);
    by default each delivery reads the clock when it is claimed, so signatures stay fresh
    however long the pass takes.
    """
    clock: Callable[[], datetime] = (lambda: now) if now is not None else utcnow
    _fail_exhausted(runtime, clock())
    due = _due_ids(runtime, clock(), limit)
    if not due:
        return 0
    client = http_client or new_http_client(OutboundPolicy.from_settings(runtime.settings))
    attempts = 0
    try:
        for delivery_id in due:
            claimed_at = clock()
            claim = _claim(runtime, delivery_id, claimed_at)
            if claim is None:
                continue
            outcome = _attempt(client, claim, runtime.secret_key, claimed_at)
            _finish(runtime, claim, outcome, claimed_at)
            attempts += 1
    finally:
        if http_client is None:
            client.close()
    return attempts


def _due_ids(runtime: Runtime, now: datetime, limit: int) -> list[str]:
    with runtime.uow() as uow:
        return list(
            uow.session.scalars(
                select(WebhookDelivery.id)
                .where(
                    WebhookDelivery.status == "pending",
                    WebhookDelivery.next_attempt_at <= now,
                    or_(WebhookDelivery.locked_until.is_(None), WebhookDelivery.locked_until < now),
                )
                .order_by(WebhookDelivery.next_attempt_at, WebhookDelivery.id)
                .limit(limit)
            )
        )


def _fail_exhausted(runtime: Runtime, now: datetime) -> None:
    """A worker that died during the last attempt leaves a pending delivery with no attempt
    left; once its lease is over it has failed."""
    with runtime.uow() as uow:
        uow.session.execute(
            update(WebhookDelivery)
            .where(
                WebhookDelivery.status == "pending",
                WebhookDelivery.attempt_count >= MAX_ATTEMPTS,
                or_(WebhookDelivery.locked_until.is_(None), WebhookDelivery.locked_until < now),
            )
            .values(
                status="failed",
                completed_at=now,
                next_attempt_at=None,
                locked_until=None,
                lock_token=None,
            )
        )
        uow.commit()


def _claim(runtime: Runtime, delivery_id: str, now: datetime) -> _Claim | None:
    token = new_id("lease")
    with runtime.uow() as uow:
        session = uow.session
        result = cast(
            CursorResult[Any],
            session.execute(
                update(WebhookDelivery)
                .where(
                    WebhookDelivery.id == delivery_id,
                    WebhookDelivery.status == "pending",
                    WebhookDelivery.next_attempt_at <= now,
                    WebhookDelivery.attempt_count < MAX_ATTEMPTS,
                    or_(WebhookDelivery.locked_until.is_(None), WebhookDelivery.locked_until < now),
                )
                .values(
                    locked_until=now + LEASE,
                    lock_token=token,
                    attempt_count=WebhookDelivery.attempt_count + 1,
                )
                .execution_options(synchronize_session=False)
            ),
        )
        if result.rowcount != 1:
            return None  # another worker has it, or it is no longer due
        row = session.execute(
            select(
                WebhookDelivery.msp_id,
                WebhookDelivery.attempt_count,
                WebhookEvent.id,
                WebhookEvent.type,
                WebhookEvent.body,
                WebhookEndpoint.url,
                WebhookEndpoint.secret_encrypted,
                WebhookEndpoint.status,
            )
            .join(WebhookEvent, WebhookEvent.id == WebhookDelivery.event_id)
            .join(WebhookEndpoint, WebhookEndpoint.id == WebhookDelivery.endpoint_id)
            .where(WebhookDelivery.id == delivery_id)
        ).one()
        if row.status != ENABLED:
            session.execute(
                update(WebhookDelivery)
                .where(WebhookDelivery.id == delivery_id)
                .values(
                    status="cancelled",
                    attempt_count=WebhookDelivery.attempt_count - 1,
                    completed_at=now,
                    next_attempt_at=None,
                    locked_until=None,
                    lock_token=None,
                )
            )
            uow.commit()
            return None
        uow.commit()
    return _Claim(
        delivery_id=delivery_id,
        msp_id=row.msp_id,
        token=token,
        attempt_number=row.attempt_count,
        event_id=row.id,
        event_type=row.type,
        body=row.body,
        url=row.url,
        secret_encrypted=row.secret_encrypted,
    )


def _truncate(text: str) -> str:
    return text if len(text) <= MAX_ERROR_CHARS else text[: MAX_ERROR_CHARS - 1] + "…"


def _attempt(client: httpx.Client, claim: _Claim, secret_key: str, now: datetime) -> _Outcome:
    started = time.monotonic()

    def elapsed_ms() -> int:
        return int((time.monotonic() - started) * 1000)

    try:
        secret = decrypt_secret(claim.secret_encrypted, secret_key)
    except (ValueError, KeyError) as exc:
        return _Outcome(False, None, _truncate(f"cannot sign: {exc}"), 0)
    body = claim.body.encode()
    headers = {
        "Content-Type": "application/json",
        HEADER: signature_header(secret, int(now.timestamp()), body),
        "BillByte-Event-Id": claim.event_id,
        "BillByte-Event-Type": claim.event_type,
        "BillByte-Delivery-Id": claim.delivery_id,
        "BillByte-Delivery-Attempt": str(claim.attempt_number),
    }
    try:
        with client.stream(
            "POST", claim.url, content=body, headers=headers, timeout=TIMEOUT_SECONDS
        ) as response:
            status = response.status_code
            if 200 <= status < 300:
                return _Outcome(True, status, None, elapsed_ms())
            snippet = b""
            for chunk in response.iter_bytes():
                snippet += chunk
                if len(snippet) >= MAX_RESPONSE_BYTES:
                    break
            text = snippet[:MAX_RESPONSE_BYTES].decode("utf-8", "replace").strip()
            # One short clean line: the answer may come from anything the URL reached.
            error = f"HTTP {status}" + (f": {short_message(text)}" if text else "")
            return _Outcome(False, status, _truncate(error), elapsed_ms())
    except OutboundRefused as exc:
        return _Outcome(False, None, _truncate(f"destination refused: {exc.reason}"), 0)
    except Exception as exc:  # any failure is this attempt's outcome, never the pass's end
        return _Outcome(False, None, _truncate(f"{type(exc).__name__}: {exc}"), elapsed_ms())


def _finish(runtime: Runtime, claim: _Claim, outcome: _Outcome, now: datetime) -> None:
    values: dict[str, Any] = {
        "locked_until": None,
        "lock_token": None,
        "last_status_code": outcome.status_code,
        "last_error": outcome.error,
    }
    if outcome.succeeded:
        values.update(status="succeeded", completed_at=now, next_attempt_at=None)
    elif claim.attempt_number >= MAX_ATTEMPTS:
        values.update(status="failed", completed_at=now, next_attempt_at=None)
    else:
        values.update(next_attempt_at=now + BACKOFF[claim.attempt_number - 1])
    with runtime.uow() as uow:
        session = uow.session
        result = cast(
            CursorResult[Any],
            session.execute(
                update(WebhookDelivery)
                .where(
                    WebhookDelivery.id == claim.delivery_id,
                    WebhookDelivery.lock_token == claim.token,
                )
                .values(**values)
                .execution_options(synchronize_session=False)
            ),
        )
        if result.rowcount != 1:
            log.warning(
                "webhook delivery %s: lease lost during attempt %d (endpoint deleted or the "
                "attempt outlived its lease); the attempt is logged, the state left as is",
                claim.delivery_id,
                claim.attempt_number,
            )
        session.add(
            WebhookDeliveryAttempt(
                msp_id=claim.msp_id,
                delivery_id=claim.delivery_id,
                attempt_number=claim.attempt_number,
                succeeded=outcome.succeeded,
                status_code=outcome.status_code,
                error=outcome.error,
                duration_ms=outcome.duration_ms,
                attempted_at=now,
            )
        )
        uow.commit()
    if not outcome.succeeded:
        DELIVERY_FAILURES.labels(final=str(claim.attempt_number >= MAX_ATTEMPTS).lower()).inc()
        log.warning(
            "webhook delivery %s (event %s) attempt %d failed: %s",
            claim.delivery_id,
            claim.event_id,
            claim.attempt_number,
            outcome.error,
        )


def run_forever(
    runtime: Runtime,
    stop: threading.Event,
    interval: float = 1.0,
    http_client: httpx.Client | None = None,
) -> None:
    """Deliver until ``stop`` is set: a pass, then a pause of ``interval`` seconds unless the
    pass was full (then straight on). A failing pass is logged and retried."""
    client = http_client or new_http_client(OutboundPolicy.from_settings(runtime.settings))
    try:
        while not stop.is_set():
            try:
                attempts = deliver_due(runtime, http_client=client)
            except Exception:
                log.exception("webhook delivery pass failed")
                attempts = 0
            if attempts < BATCH_SIZE:
                stop.wait(interval)
    finally:
        if http_client is None:
            client.close()


@dataclass
class BackgroundDelivery:
    thread: threading.Thread
    stop_event: threading.Event

    def stop(self, timeout: float | None = TIMEOUT_SECONDS + 5) -> None:
        self.stop_event.set()
        self.thread.join(timeout)


def start_background(runtime: Runtime, interval: float = 1.0) -> BackgroundDelivery:
    """``run_forever`` in a daemon thread, for the embedded single-process setup."""
    stop = threading.Event()
    thread = threading.Thread(
        target=run_forever,
        args=(runtime, stop, interval),
        name="billbyte-webhooks",
        daemon=True,
    )
    thread.start()
    return BackgroundDelivery(thread=thread, stop_event=stop)
