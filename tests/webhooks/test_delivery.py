"""The outbox and the worker, against a real HTTP receiver that verifies signatures."""

from __future__ import annotations

import threading
from datetime import timedelta
from decimal import Decimal

from sqlalchemy import func, select

from billbyte.runtime import Runtime
from billbyte.webhooks import service
from billbyte.webhooks.models import WebhookDeliveryAttempt
from billbyte.webhooks.worker import BACKOFF, MAX_ATTEMPTS, deliver_due
from tests.conftest import Tenant
from tests.webhooks.conftest import T0, emit, make_endpoint
from tests.webhooks.receiver import Receiver


def test_an_emitted_event_is_delivered_once_signed(
    runtime: Runtime, tenant: Tenant, receiver: Receiver
) -> None:
    make_endpoint(tenant, receiver)
    event_id = emit(
        runtime,
        tenant.msp_id,
        "customer.created",
        {"customer_id": "cus_1", "credit_limit": Decimal("1000.50")},
    )

    assert deliver_due(runtime, now=T0) == 1

    [got] = receiver.received
    assert got.signature_valid and got.answered == 200
    assert got.timestamp == int(T0.timestamp())
    assert got.payload == {
        "id": event_id,
        "type": "customer.created",
        "created_at": "2030-01-01T00:00:00Z",
        "msp_id": tenant.msp_id,
        "data": {"customer_id": "cus_1", "credit_limit": "1000.50"},
    }
    assert got.headers["billbyte-event-id"] == event_id
    assert got.headers["billbyte-event-type"] == "customer.created"
    assert got.headers["content-type"] == "application/json"
    # Done: later passes send nothing more.
    assert deliver_due(runtime, now=T0 + timedelta(days=3)) == 0
    assert len(receiver.received) == 1
    detail = tenant.get(f"/v1/webhook-events/{event_id}").json()
    [delivery] = detail["deliveries"]
    assert delivery["status"] == "succeeded" and delivery["attempt_count"] == 1
    assert [a["status_code"] for a in delivery["attempts"]] == [200]


def test_only_subscribed_endpoints_get_an_event(
    runtime: Runtime, tenant: Tenant, receiver: Receiver
) -> None:
    make_endpoint(tenant, receiver, "all", ["*"])
    make_endpoint(tenant, receiver, "customers", ["customer.created", "customer.updated"])
    make_endpoint(tenant, receiver, "invoices", ["invoice.finalized"])
    created = emit(runtime, tenant.msp_id, "customer.created")
    finalized = emit(runtime, tenant.msp_id, "invoice.finalized")

    assert deliver_due(runtime, now=T0) == 4

    assert [r.event_id for r in receiver.at("all")] == [created, finalized]
    assert [r.event_id for r in receiver.at("customers")] == [created]
    assert [r.event_id for r in receiver.at("invoices")] == [finalized]
    assert all(r.signature_valid for r in receiver.received)


def test_a_receiver_failing_three_times_gets_each_event_once_after_recovery(
    runtime: Runtime, tenant: Tenant, receiver: Receiver
) -> None:
    receiver.fail_first(3, status=500)
    make_endpoint(tenant, receiver)
    events = [emit(runtime, tenant.msp_id, "charges.updated", {"n": n}) for n in range(3)]

    now = T0
    passes = [now]
    assert deliver_due(runtime, now=now) == 3
    for wait in BACKOFF[:3]:
        assert deliver_due(runtime, now=now + wait - timedelta(seconds=1)) == 0  # not yet due
        now += wait
        passes.append(now)
        assert deliver_due(runtime, now=now) == 3
    assert deliver_due(runtime, now=now + timedelta(days=7)) == 0

    for event_id in events:
        seen = [r for r in receiver.received if r.event_id == event_id]
        assert [r.answered for r in seen] == [500, 500, 500, 200]
        assert all(r.signature_valid for r in seen)
        assert [r.timestamp for r in seen] == [int(p.timestamp()) for p in passes]
        [delivery] = tenant.get(f"/v1/webhook-events/{event_id}").json()["deliveries"]
        assert delivery["status"] == "succeeded" and delivery["attempt_count"] == 4
        log = delivery["attempts"]
        assert [a["attempt_number"] for a in log] == [1, 2, 3, 4]
        assert [a["succeeded"] for a in log] == [False, False, False, True]
        assert [a["status_code"] for a in log] == [500, 500, 500, 200]
        assert all(a["error"].startswith("HTTP 500") for a in log[:3])
        assert log[3]["error"] is None
        assert [a["attempted_at"] for a in log] == [
            p.isoformat().replace("+00:00", "Z") for p in passes
        ]


def test_a_delivery_fails_for_good_after_the_last_attempt(
    runtime: Runtime, tenant: Tenant, receiver: Receiver
) -> None:
    receiver.plan = lambda path, headers, body: 503
    make_endpoint(tenant, receiver)
    event_id = emit(runtime, tenant.msp_id)

    now = T0
    assert deliver_due(runtime, now=now) == 1
    for wait in BACKOFF:
        now += wait
        assert deliver_due(runtime, now=now) == 1
    assert deliver_due(runtime, now=now + timedelta(days=30)) == 0

    assert len(receiver.received) == MAX_ATTEMPTS == 10
    [delivery] = tenant.get(f"/v1/webhook-events/{event_id}").json()["deliveries"]
    assert delivery["status"] == "failed" and delivery["attempt_count"] == MAX_ATTEMPTS
    assert delivery["next_attempt_at"] is None and delivery["last_status_code"] == 503
    assert len(delivery["attempts"]) == MAX_ATTEMPTS


def test_an_unreachable_endpoint_is_a_logged_failed_attempt(
    runtime: Runtime, tenant: Tenant, receiver: Receiver
) -> None:
    endpoint = make_endpoint(tenant, receiver)
    # Point the endpoint at a port nobody listens on (the receiver's, once it is closed).
    receiver.stop()
    event_id = emit(runtime, tenant.msp_id)
    assert deliver_due(runtime, now=T0) == 1
    [delivery] = tenant.get(f"/v1/webhook-events/{event_id}").json()["deliveries"]
    assert delivery["endpoint_id"] == endpoint["id"]
    assert delivery["status"] == "pending"
    assert delivery["next_attempt_at"] == (T0 + BACKOFF[0]).isoformat().replace("+00:00", "Z")
    [attempt] = delivery["attempts"]
    assert attempt["status_code"] is None and attempt["error"] and not attempt["succeeded"]


def test_an_event_emitted_in_a_rolled_back_transaction_is_never_sent(
    runtime: Runtime, tenant: Tenant, receiver: Receiver
) -> None:
    make_endpoint(tenant, receiver)
    with runtime.uow() as uow:
        service.emit(uow.session, tenant.msp_id, "customer.created", {"n": 1}, now=T0)
        uow.rollback()
    try:
        with runtime.uow() as uow:
            service.emit(uow.session, tenant.msp_id, "customer.updated", {"n": 2}, now=T0)
            raise RuntimeError("the change failed after emitting")
    except RuntimeError:
        pass

    assert deliver_due(runtime, now=T0 + timedelta(hours=1)) == 0
    assert receiver.received == []
    assert tenant.get("/v1/webhook-events").json()["data"] == []


def test_racing_workers_never_send_an_attempt_twice(
    runtime: Runtime, tenant: Tenant, receiver: Receiver
) -> None:
    receiver.delay = 0.01  # widen the window between claim and completion
    make_endpoint(tenant, receiver, "a")
    make_endpoint(tenant, receiver, "b")
    events = [emit(runtime, tenant.msp_id, "usage.imported", {"n": n}) for n in range(15)]
    workers = 4
    start = threading.Barrier(workers)
    counts: list[int] = []
    errors: list[BaseException] = []

    def work() -> None:
        try:
            start.wait()
            counts.append(deliver_due(runtime, now=T0))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)

    assert errors == []
    assert sum(counts) == 30
    for name in ("a", "b"):
        assert sorted(r.event_id for r in receiver.at(name)) == sorted(events)
    with runtime.uow() as uow:
        logged = uow.session.scalar(select(func.count()).select_from(WebhookDeliveryAttempt))
    assert logged == 30


def test_deleting_an_endpoint_cancels_its_pending_deliveries(
    runtime: Runtime, tenant: Tenant, receiver: Receiver
) -> None:
    kept = make_endpoint(tenant, receiver, "kept")
    gone = make_endpoint(tenant, receiver, "gone")
    event_id = emit(runtime, tenant.msp_id)
    assert tenant.delete(f"/v1/webhook-endpoints/{gone['id']}").status_code == 204
    # Emitted after the deletion: no delivery to it is even created.
    later = emit(runtime, tenant.msp_id)

    assert deliver_due(runtime, now=T0) == 2
    assert receiver.at("gone") == []
    assert [r.event_id for r in receiver.at("kept")] == [event_id, later]
    deliveries = tenant.get(f"/v1/webhook-events/{event_id}").json()["deliveries"]
    assert {d["endpoint_id"]: d["status"] for d in deliveries} == {
        kept["id"]: "succeeded",
        gone["id"]: "cancelled",
    }
