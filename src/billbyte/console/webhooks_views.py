"""The webhook pages' data: endpoints, events and their deliveries through webhooks'
service, a new endpoint's URL through the one outbound guard exactly as the API checks it
(``webhooks.network.check_destination`` with the operator's policy), and replay through
the function ``POST /v1/webhook-events/{id}/replay`` calls."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session
from starlette.datastructures import FormData

from billbyte.auth.subject import AuthSubject
from billbyte.console.admin_views import validated
from billbyte.console.common import text
from billbyte.kit.outbound import OutboundPolicy
from billbyte.kit.pagination import MAX_LIMIT
from billbyte.runtime import Runtime
from billbyte.webhooks import service
from billbyte.webhooks.network import check_destination
from billbyte.webhooks.schemas import (
    ALL_EVENTS,
    EVENT_TYPES,
    WebhookEndpointCreate,
    WebhookEndpointOut,
    WebhookEventDetail,
)

EVENT_CHOICES = [ALL_EVENTS, *sorted(EVENT_TYPES)]
EVENTS_PER_PAGE = 25


@dataclass(frozen=True)
class Overview:
    endpoints: list[WebhookEndpointOut]
    events: list[WebhookEventDetail]  # newest page, each with its deliveries
    next_cursor: str | None


def overview(
    session: Session, subject: AuthSubject, cursor: str | None, event_type: str | None
) -> Overview:
    endpoints = service.list_endpoints(session, subject, cursor=None, limit=MAX_LIMIT)
    page = service.list_events(
        session, subject, event_type=event_type, cursor=cursor, limit=EVENTS_PER_PAGE
    )
    return Overview(
        endpoints=[WebhookEndpointOut.model_validate(e) for e in endpoints.items],
        events=[service.event_detail(session, subject, e.id) for e in page.items],
        next_cursor=page.next_cursor,
    )


@dataclass(frozen=True)
class Created:
    endpoint: WebhookEndpointOut
    secret: str  # the signing secret, shown once


def create(runtime: Runtime, session: Session, subject: AuthSubject, form: FormData) -> Created:
    subject.require_write()
    chosen = [value for value in form.getlist("event_types") if isinstance(value, str)]
    body = validated(
        WebhookEndpointCreate,
        {
            "url": text(form, "url"),
            "event_types": chosen,
            "description": text(form, "description") or None,
        },
    )
    check_destination(str(body.url), OutboundPolicy.from_settings(runtime.settings))
    endpoint, secret = service.create_endpoint(session, subject, body, runtime.secret_key)
    return Created(WebhookEndpointOut.model_validate(endpoint), secret)


def endpoint(session: Session, subject: AuthSubject, endpoint_id: str) -> WebhookEndpointOut:
    return WebhookEndpointOut.model_validate(service.get_endpoint(session, subject, endpoint_id))


def disable(session: Session, subject: AuthSubject, endpoint_id: str) -> None:
    service.delete_endpoint(session, subject, endpoint_id)


def event(session: Session, subject: AuthSubject, event_id: str) -> WebhookEventDetail:
    return service.event_detail(session, subject, event_id)


def replay(session: Session, subject: AuthSubject, event_id: str, form: FormData) -> int:
    """The number of new deliveries."""
    return len(service.replay(session, subject, event_id, text(form, "endpoint_id") or None))
