from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from billbyte.runtime import Runtime
from billbyte.webhooks import service
from tests.conftest import Tenant
from tests.webhooks.receiver import Receiver, running_receiver

# A fixed clock for deliveries, after any wall-clock time the tests run at.
T0 = datetime(2030, 1, 1, tzinfo=UTC)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with running_receiver() as running:
        yield running


def make_endpoint(
    tenant: Tenant, receiver: Receiver, name: str = "main", event_types: list[str] | None = None
) -> dict[str, Any]:
    response = tenant.post(
        "/v1/webhook-endpoints",
        json={
            "url": receiver.url(name),
            "event_types": event_types or ["*"],
            "description": f"{name} receiver",
        },
    )
    assert response.status_code == 201, response.text
    body = dict(response.json())
    receiver.secrets[f"/hooks/{name}"] = body["secret"]
    return body


def emit(
    runtime: Runtime,
    msp_id: str,
    event_type: str = "customer.created",
    data: dict[str, Any] | None = None,
    now: datetime = T0,
) -> str:
    with runtime.uow() as uow:
        payload = {"n": 1} if data is None else data
        event = service.emit(uow.session, msp_id, event_type, payload, now=now)
        uow.commit()
    return event.id
