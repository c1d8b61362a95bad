"""Webhook endpoints, the event outbox, and replays.

``emit`` only writes rows, in the caller's transaction: the event and one pending delivery per
subscribed endpoint commit together with the change they report, or not at all. Sending is the
worker's job (``billbyte.webhooks.worker``), after commit.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Sequence
from datetime import date, datetime
from decimal import Decimal
from enum import Enum
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.orm import Session

from billbyte.audit.service import record
from billbyte.auth.subject import AuthSubject
from billbyte.kit.clock import iso, utcnow
from billbyte.kit.crypto import decrypt_json, encrypt_json
from billbyte.kit.errors import InvalidInput, NotFound
from billbyte.kit.ids import new_id, new_ids
from billbyte.kit.pagination import Page, paginate
from billbyte.kit.repository import get_owned
from billbyte.webhooks.models import (
    WebhookDelivery,
    WebhookDeliveryAttempt,
    WebhookEndpoint,
    WebhookEvent,
)
from billbyte.webhooks.schemas import (
    EVENT_TYPES,
    WebhookAttemptOut,
    WebhookDeliveryDetail,
    WebhookDeliveryOut,
    WebhookEndpointCreate,
    WebhookEventDetail,
    WebhookEventOut,
)
from billbyte.webhooks.signing import new_secret

ENABLED = "enabled"
DELETED = "deleted"


def _json_default(value: Any) -> Any:
    # Amounts travel as decimal strings and times as UTC ISO 8601, as everywhere in the API.
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, datetime):
        return iso(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Enum):
        return value.value
    raise TypeError(f"{type(value).__name__} is not JSON serialisable in a webhook payload")


def encode_payload(payload: dict[str, Any]) -> str:
    return json.dumps(payload, default=_json_default, separators=(",", ":"), ensure_ascii=False)


# --- the outbox -----------------------------------------------------------------------------


def emit(
    session: Session,
    msp_id: str,
    event_type: str,
    data: dict[str, Any],
    *,
    now: datetime | None = None,
) -> WebhookEvent:
    """Record an event and a pending delivery to each enabled endpoint subscribed to it.

    No network I/O: rows are added to ``session`` and sent by the worker once the caller
    commits. Decimals in ``data`` become decimal strings, datetimes UTC ISO 8601.
    """
    if event_type not in EVENT_TYPES:
        raise ValueError(f"unknown webhook event type {event_type!r}")
    now = now or utcnow()
    event_id = new_id("evt")
    body = _event_body(event_id, event_type, now, msp_id, data)
    event = WebhookEvent(id=event_id, msp_id=msp_id, type=event_type, body=body, created_at=now)
    session.add(event)
    for endpoint in _enabled_endpoints(session, msp_id):
        if endpoint.accepts(event_type):
            session.add(_pending(event, endpoint.id, now, replay=False))
    session.flush()
    return event


def _event_body(
    event_id: str, event_type: str, now: datetime, msp_id: str, data: dict[str, Any]
) -> str:
    """The signed envelope every event is sent as (see docs/webhooks.md)."""
    return encode_payload(
        {"id": event_id, "type": event_type, "created_at": iso(now), "msp_id": msp_id, "data": data}
    )


def emit_many(
    session: Session,
    msp_id: str,
    event_type: str,
    datas: Sequence[dict[str, Any]],
    *,
    now: datetime | None = None,
) -> None:
    """``emit`` for many events of one type at once (e.g. an invoice run's batch of
    ``invoice.finalized``): the same rows, written with one multi-row insert per table."""
    if event_type not in EVENT_TYPES:
        raise ValueError(f"unknown webhook event type {event_type!r}")
    if not datas:
        return
    now = now or utcnow()
    events = [
        {
            "id": event_id,
            "msp_id": msp_id,
            "type": event_type,
            "body": _event_body(event_id, event_type, now, msp_id, data),
            "created_at": now,
        }
        for event_id, data in zip(new_ids("evt", len(datas)), datas, strict=True)
    ]
    session.execute(insert(WebhookEvent), events)
    endpoints = [e.id for e in _enabled_endpoints(session, msp_id) if e.accepts(event_type)]
    deliveries = [
        {
            "id": new_id("whd"),
            "msp_id": msp_id,
            "event_id": event["id"],
            "endpoint_id": endpoint_id,
            "status": "pending",
            "attempt_count": 0,
            "next_attempt_at": now,
            "replay": False,
            "created_at": now,
        }
        for event in events
        for endpoint_id in endpoints
    ]
    if deliveries:
        session.execute(insert(WebhookDelivery), deliveries)


def _pending(event: WebhookEvent, endpoint_id: str, now: datetime, replay: bool) -> WebhookDelivery:
    return WebhookDelivery(
        msp_id=event.msp_id,
        event_id=event.id,
        endpoint_id=endpoint_id,
        status="pending",
        attempt_count=0,
        next_attempt_at=now,
        replay=replay,
        created_at=now,
    )


def _enabled_endpoints(session: Session, msp_id: str) -> list[WebhookEndpoint]:
    return list(
        session.scalars(
            select(WebhookEndpoint)
            .where(WebhookEndpoint.msp_id == msp_id, WebhookEndpoint.status == ENABLED)
            .order_by(WebhookEndpoint.id)
        )
    )


# --- endpoints ------------------------------------------------------------------------------


def snapshot(endpoint: WebhookEndpoint) -> dict[str, Any]:
    """Audit view: never includes the secret."""
    return {
        "url": endpoint.url,
        "description": endpoint.description,
        "event_types": list(endpoint.event_types),
        "status": endpoint.status,
    }


def create_endpoint(
    session: Session, subject: AuthSubject, data: WebhookEndpointCreate, secret_key: str
) -> tuple[WebhookEndpoint, str]:
    """Returns the endpoint and its signing secret, which is shown to the caller once."""
    subject.require_write()
    secret = new_secret()
    endpoint = WebhookEndpoint(
        msp_id=subject.msp_id,
        url=str(data.url),
        description=data.description,
        event_types=list(data.event_types),
        secret_encrypted=encrypt_json(secret_key, {"secret": secret}),
        status=ENABLED,
    )
    session.add(endpoint)
    session.flush()
    record(
        session,
        subject,
        "webhook_endpoint.created",
        "webhook_endpoint",
        endpoint.id,
        before=None,
        after=snapshot(endpoint),
    )
    return endpoint, secret


def decrypt_secret(secret_encrypted: str, secret_key: str) -> str:
    """For signing only; a secret is never exposed after its endpoint's creation."""
    return str(decrypt_json(secret_key, secret_encrypted)["secret"])


def get_endpoint(session: Session, subject: AuthSubject, endpoint_id: str) -> WebhookEndpoint:
    endpoint = session.scalar(
        select(WebhookEndpoint).where(
            WebhookEndpoint.id == endpoint_id,
            WebhookEndpoint.msp_id == subject.msp_id,
            WebhookEndpoint.status != DELETED,
        )
    )
    if endpoint is None:
        raise NotFound(f"No webhook endpoint {endpoint_id!r}.", code="webhook_endpoint_not_found")
    return endpoint


def list_endpoints(
    session: Session, subject: AuthSubject, *, cursor: str | None, limit: int
) -> Page[WebhookEndpoint]:
    stmt = select(WebhookEndpoint).where(
        WebhookEndpoint.msp_id == subject.msp_id, WebhookEndpoint.status != DELETED
    )
    return paginate(session, stmt, WebhookEndpoint.id, cursor, limit)


def delete_endpoint(
    session: Session, subject: AuthSubject, endpoint_id: str, *, now: datetime | None = None
) -> WebhookEndpoint:
    """Stops deliveries to the endpoint: its pending deliveries are cancelled. The row stays
    for the delivery log."""
    subject.require_write()
    now = now or utcnow()
    endpoint = get_endpoint(session, subject, endpoint_id)
    before = snapshot(endpoint)
    endpoint.status = DELETED
    endpoint.deleted_at = now
    session.execute(
        update(WebhookDelivery)
        .where(WebhookDelivery.endpoint_id == endpoint.id, WebhookDelivery.status == "pending")
        .values(status="cancelled", completed_at=now, next_attempt_at=None)
    )
    session.flush()
    record(
        session,
        subject,
        "webhook_endpoint.deleted",
        "webhook_endpoint",
        endpoint.id,
        before=before,
        after=None,
    )
    return endpoint


# --- events, the delivery log, replay --------------------------------------------------------


def get_event(session: Session, subject: AuthSubject, event_id: str) -> WebhookEvent:
    return get_owned(
        session,
        WebhookEvent,
        subject.msp_id,
        event_id,
        what="webhook event",
        code="webhook_event_not_found",
    )


def list_events(
    session: Session,
    subject: AuthSubject,
    *,
    event_type: str | None,
    cursor: str | None,
    limit: int,
) -> Page[WebhookEvent]:
    stmt = select(WebhookEvent).where(WebhookEvent.msp_id == subject.msp_id)
    if event_type:
        stmt = stmt.where(WebhookEvent.type == event_type)
    return paginate(session, stmt, WebhookEvent.id, cursor, limit)


def event_out(event: WebhookEvent) -> WebhookEventOut:
    return WebhookEventOut(
        id=event.id, type=event.type, created_at=event.created_at, payload=json.loads(event.body)
    )


def event_detail(session: Session, subject: AuthSubject, event_id: str) -> WebhookEventDetail:
    """The event with each of its deliveries and every attempt of each."""
    event = get_event(session, subject, event_id)
    deliveries = list(
        session.scalars(
            select(WebhookDelivery)
            .where(WebhookDelivery.event_id == event.id, WebhookDelivery.msp_id == subject.msp_id)
            .order_by(WebhookDelivery.id)
        )
    )
    attempts: dict[str, list[WebhookDeliveryAttempt]] = defaultdict(list)
    if deliveries:
        for attempt in session.scalars(
            select(WebhookDeliveryAttempt)
            .where(WebhookDeliveryAttempt.delivery_id.in_([d.id for d in deliveries]))
            .order_by(WebhookDeliveryAttempt.delivery_id, WebhookDeliveryAttempt.attempt_number)
        ):
            attempts[attempt.delivery_id].append(attempt)
    out = event_out(event)
    return WebhookEventDetail(
        **out.model_dump(),
        deliveries=[
            WebhookDeliveryDetail(
                **WebhookDeliveryOut.model_validate(d).model_dump(),
                attempts=[WebhookAttemptOut.model_validate(a) for a in attempts[d.id]],
            )
            for d in deliveries
        ],
    )


def replay(
    session: Session,
    subject: AuthSubject,
    event_id: str,
    endpoint_id: str | None = None,
    *,
    now: datetime | None = None,
) -> list[WebhookDelivery]:
    """New pending deliveries of the same event (same id and body, signed afresh): to
    ``endpoint_id``, or to every enabled endpoint now subscribed to the event's type."""
    subject.require_write()
    now = now or utcnow()
    event = get_event(session, subject, event_id)
    if endpoint_id is not None:
        endpoint = get_endpoint(session, subject, endpoint_id)
        if endpoint.status != ENABLED:
            raise InvalidInput(
                f"Webhook endpoint {endpoint_id!r} is {endpoint.status}.",
                code="webhook_endpoint_disabled",
                field="endpoint_id",
            )
        targets = [endpoint]
    else:
        targets = [e for e in _enabled_endpoints(session, subject.msp_id) if e.accepts(event.type)]
    deliveries = [_pending(event, target.id, now, replay=True) for target in targets]
    session.add_all(deliveries)
    session.flush()
    record(
        session,
        subject,
        "webhook_event.replayed",
        "webhook_event",
        event.id,
        before=None,
        after={
            "endpoint_ids": [t.id for t in targets],
            "delivery_ids": [d.id for d in deliveries],
        },
    )
    return deliveries
