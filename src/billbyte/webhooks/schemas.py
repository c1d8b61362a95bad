from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, HttpUrl, field_validator

MAX_URL_LENGTH = 500  # the column's length
ALL_EVENTS = "*"

# Every event BillByte emits. Endpoints subscribe to some of these, or to "*".
EVENT_TYPES: frozenset[str] = frozenset(
    {
        "customer.created",
        "customer.updated",
        "usage.imported",
        "charges.updated",
        "credit.threshold_reached",
        "budget.threshold_crossed",
        "invoice.finalized",
        "service.suspended",
        "service.resumed",
        "test.ping",
    }
)


def _url_fits(url: HttpUrl) -> HttpUrl:
    if len(str(url)) > MAX_URL_LENGTH:
        raise ValueError(f"URL should have at most {MAX_URL_LENGTH} characters")
    return url


# HttpUrl admits only the http and https schemes.
WebhookUrl = Annotated[HttpUrl, AfterValidator(_url_fits)]


class WebhookEndpointCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: WebhookUrl = Field(
        description="Where events are POSTed (https; http only if the operator allows it)."
    )
    event_types: list[str] = Field(
        min_length=1,
        max_length=len(EVENT_TYPES) + 1,
        description='Event types to receive, or ["*"] for all.',
        examples=[["customer.created", "charges.updated"], ["*"]],
    )
    description: str | None = Field(default=None, max_length=500)

    @field_validator("event_types")
    @classmethod
    def _known_types(cls, value: list[str]) -> list[str]:
        unknown = sorted({t for t in value if t != ALL_EVENTS and t not in EVENT_TYPES})
        if unknown:
            raise ValueError(
                f"unknown event type(s) {', '.join(unknown)}; "
                f"expected some of {', '.join(sorted(EVENT_TYPES))}, or '*'"
            )
        if ALL_EVENTS in value:
            return [ALL_EVENTS]
        return sorted(set(value))


class WebhookEndpointOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    object: str = "webhook_endpoint"
    url: str
    description: str | None
    event_types: list[str]
    status: str
    created_at: datetime


class WebhookEndpointCreated(WebhookEndpointOut):
    secret: str = Field(
        description="The signing secret (whsec_...). Shown only in this response: store it."
    )


class WebhookAttemptOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    attempt_number: int
    succeeded: bool
    status_code: int | None
    error: str | None
    duration_ms: int
    attempted_at: datetime


class WebhookDeliveryOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    object: str = "webhook_delivery"
    event_id: str
    endpoint_id: str
    status: str = Field(description="pending, succeeded, failed or cancelled.")
    replay: bool
    attempt_count: int
    next_attempt_at: datetime | None
    last_status_code: int | None
    last_error: str | None
    created_at: datetime
    completed_at: datetime | None


class WebhookDeliveryDetail(WebhookDeliveryOut):
    attempts: list[WebhookAttemptOut]


class WebhookEventOut(BaseModel):
    id: str
    object: str = "webhook_event"
    type: str
    created_at: datetime
    payload: dict[str, Any] = Field(description="The JSON body sent to endpoints.")


class WebhookEventDetail(WebhookEventOut):
    deliveries: list[WebhookDeliveryDetail]


class WebhookReplay(BaseModel):
    model_config = ConfigDict(extra="forbid")

    endpoint_id: str | None = Field(
        default=None,
        description="Replay to this endpoint only (even if it is not subscribed to the "
        "event's type); default: every endpoint subscribed to it now.",
    )


class WebhookReplayOut(BaseModel):
    object: str = "webhook_replay"
    event_id: str
    deliveries: list[WebhookDeliveryOut]
