from __future__ import annotations

from fastapi import APIRouter, Response, status

from billbyte.api.deps import DEFAULT_PAGE, Cursor, Limit, RuntimeDep, Uow
from billbyte.api.responses import READ, READ_ONE, WRITE
from billbyte.auth.deps import Subject
from billbyte.kit.outbound import OutboundPolicy
from billbyte.kit.pagination import ListResponse
from billbyte.webhooks import service
from billbyte.webhooks.network import check_destination
from billbyte.webhooks.schemas import (
    WebhookDeliveryOut,
    WebhookEndpointCreate,
    WebhookEndpointCreated,
    WebhookEndpointOut,
    WebhookEventDetail,
    WebhookEventOut,
    WebhookReplay,
    WebhookReplayOut,
)

endpoints_router = APIRouter(prefix="/v1/webhook-endpoints", tags=["webhooks"])
events_router = APIRouter(prefix="/v1/webhook-events", tags=["webhooks"])
router = APIRouter()


@endpoints_router.post(
    "",
    summary="Register a webhook endpoint (its signing secret is shown once)",
    status_code=status.HTTP_201_CREATED,
    response_model=WebhookEndpointCreated,
    responses=WRITE,
)
def create_webhook_endpoint(
    body: WebhookEndpointCreate, subject: Subject, uow: Uow, runtime: RuntimeDep
) -> WebhookEndpointCreated:
    check_destination(str(body.url), OutboundPolicy.from_settings(runtime.settings))
    endpoint, secret = service.create_endpoint(uow.session, subject, body, runtime.secret_key)
    uow.commit()
    return WebhookEndpointCreated(
        **WebhookEndpointOut.model_validate(endpoint).model_dump(), secret=secret
    )


@endpoints_router.get(
    "",
    summary="List webhook endpoints",
    response_model=ListResponse[WebhookEndpointOut],
    responses=READ,
)
def list_webhook_endpoints(
    subject: Subject, uow: Uow, cursor: Cursor = None, limit: Limit = DEFAULT_PAGE
) -> ListResponse[WebhookEndpointOut]:
    page = service.list_endpoints(uow.session, subject, cursor=cursor, limit=limit)
    return ListResponse.of(page, WebhookEndpointOut.model_validate)


@endpoints_router.get(
    "/{webhook_endpoint_id}",
    summary="Get a webhook endpoint",
    response_model=WebhookEndpointOut,
    responses=READ_ONE,
)
def get_webhook_endpoint(
    webhook_endpoint_id: str, subject: Subject, uow: Uow
) -> WebhookEndpointOut:
    return WebhookEndpointOut.model_validate(
        service.get_endpoint(uow.session, subject, webhook_endpoint_id)
    )


@endpoints_router.delete(
    "/{webhook_endpoint_id}",
    summary="Delete a webhook endpoint (pending deliveries to it are cancelled)",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=WRITE,
)
def delete_webhook_endpoint(webhook_endpoint_id: str, subject: Subject, uow: Uow) -> Response:
    service.delete_endpoint(uow.session, subject, webhook_endpoint_id)
    uow.commit()
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@events_router.get(
    "",
    summary="List webhook events (oldest first)",
    response_model=ListResponse[WebhookEventOut],
    responses=READ,
)
def list_webhook_events(
    subject: Subject,
    uow: Uow,
    type: str | None = None,
    cursor: Cursor = None,
    limit: Limit = DEFAULT_PAGE,
) -> ListResponse[WebhookEventOut]:
    page = service.list_events(uow.session, subject, event_type=type, cursor=cursor, limit=limit)
    return ListResponse.of(page, service.event_out)


@events_router.get(
    "/{webhook_event_id}",
    summary="Get a webhook event with its deliveries and attempts",
    response_model=WebhookEventDetail,
    responses=READ_ONE,
)
def get_webhook_event(webhook_event_id: str, subject: Subject, uow: Uow) -> WebhookEventDetail:
    return service.event_detail(uow.session, subject, webhook_event_id)


@events_router.post(
    "/{webhook_event_id}/replay",
    summary="Replay a webhook event (same event id, new deliveries)",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=WebhookReplayOut,
    responses=WRITE,
)
def replay_webhook_event(
    webhook_event_id: str, subject: Subject, uow: Uow, body: WebhookReplay | None = None
) -> WebhookReplayOut:
    endpoint_id = body.endpoint_id if body else None
    deliveries = service.replay(uow.session, subject, webhook_event_id, endpoint_id)
    uow.commit()
    return WebhookReplayOut(
        event_id=webhook_event_id,
        deliveries=[WebhookDeliveryOut.model_validate(d) for d in deliveries],
    )


router.include_router(endpoints_router)
router.include_router(events_router)
