"""Issue #15, finding 1: one slow vendor must not freeze the API.

Jobs call vendors outside any database transaction, and read-only requests use reader
transactions that on SQLite never wait for a writer. Every test synchronises with Events:
the vendor "hangs" until the test releases it, and the test checks that the requests answered
*while* the vendor (or a writer) was still holding on. The bounded waits only stop a broken
build from hanging the suite; they assert nothing about how fast anything is.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from sqlalchemy import select, text

from billbyte.connectors import service as connectors
from billbyte.connectors import tasks, vendors
from billbyte.connectors.base import CustomerSpec, PartnerContext, ProvisionResult
from billbyte.customers.models import CustomerVendor
from billbyte.db.engine import TransactionOpen, transaction_open_in_this_thread
from billbyte.jobs.service import run_pending
from billbyte.runtime import Runtime
from tests.conftest import Tenant
from tests.connectors.test_framework import MemoryVendor

# Long enough for any loaded CI machine; a request that has not answered by then is waiting
# for the lock (the busy timeout is 30 s), which is the bug.
PATIENCE = 20.0


@dataclass
class HangingVendor(MemoryVendor):
    """A vendor whose chosen calls hang until released. Every call also checks that it is
    not made inside a database transaction (the check the framework enforces)."""

    hang_on: set[str] = field(default_factory=set)
    entered: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)
    in_transaction: list[str] = field(default_factory=list)

    def _maybe_fail(self, name: str) -> None:
        if transaction_open_in_this_thread():
            self.in_transaction.append(name)
        super()._maybe_fail(name)
        if name in self.hang_on:
            self.entered.set()
            self.release.wait(PATIENCE * 2)

    def provision_customer(
        self, ctx: PartnerContext, spec: CustomerSpec, idempotency_key: str
    ) -> ProvisionResult:
        self._maybe_fail("provision")
        account = self.accounts.setdefault(idempotency_key, f"{len(self.accounts) + 1:012d}")
        self.states[account] = "active"
        kind = "gcp_billing_subaccount" if ctx.vendor == "gcp" else "aws_account"
        return ProvisionResult(state="active", vendor_identifier=account, kind=kind)


@pytest.fixture
def vendor(monkeypatch: pytest.MonkeyPatch) -> Iterator[HangingVendor]:
    fake = HangingVendor()
    monkeypatch.setattr(vendors, "CONNECTORS", {"aws": fake, "gcp": fake})
    monkeypatch.setattr(vendors, "_loaded", True)
    monkeypatch.setattr(tasks, "POLL_DELAY", 0.0)
    yield fake
    fake.release.set()  # never leave a worker thread hanging


def _in_thread(function: Callable[[], Any]) -> tuple[threading.Thread, threading.Event, list[Any]]:
    done = threading.Event()
    out: list[Any] = []

    def run() -> None:
        try:
            out.append(function())
        except BaseException as exc:  # reported by the test, not lost in the thread
            out.append(exc)
        finally:
            done.set()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, done, out


def _customer(tenant: Tenant, vendor_name: str, external_id: str) -> str:
    response = tenant.post(
        "/v1/partner-accounts",
        json={"vendor": vendor_name, "display_name": "p", "sandbox": True, "credentials": {}},
    )
    assert response.status_code == 201, response.text
    created = tenant.post(
        "/v1/customers",
        json={
            "external_id": external_id,
            "name": "Hang Ltd",
            "currency": "USD",
            "vendors": [vendor_name],
        },
    )
    assert created.status_code == 201, created.text
    return str(created.json()["id"])


def _answers_while_held(
    tenant: Tenant, held: threading.Event, requests: list[Callable[[], Any]]
) -> list[Any]:
    """Run each request in its own thread; each must answer while ``held`` is still unset."""
    answers = []
    for request in requests:
        thread, done, out = _in_thread(request)
        answered = done.wait(PATIENCE)
        assert answered, "the request waited for the vendor call / writer to finish"
        assert not held.is_set()
        thread.join()
        answers.append(out[0])
    return answers


def test_healthz_answers_while_a_suspension_hangs_at_the_vendor(
    tenant: Tenant, runtime: Runtime, vendor: HangingVendor
) -> None:
    customer = _customer(tenant, "gcp", "HANG-1")
    run_pending(runtime)
    assert tenant.get(f"/v1/customers/{customer}").json()["status"] == "active"
    vendor.hang_on = {"suspend"}
    assert tenant.post(f"/v1/customers/{customer}/suspend", json={}).status_code == 202

    worker, worker_done, worker_out = _in_thread(lambda: run_pending(runtime))
    try:
        assert vendor.entered.wait(PATIENCE)
        health, detail = _answers_while_held(
            tenant,
            vendor.release,
            [
                lambda: tenant.client.get("/healthz"),
                lambda: tenant.get(f"/v1/customers/{customer}"),
            ],
        )
    finally:
        vendor.release.set()
        worker.join(PATIENCE)
    assert health.status_code == 200, health
    assert detail.status_code == 200 and detail.json()["status"] == "active"
    assert worker_done.is_set() and not isinstance(worker_out[0], BaseException)
    assert tenant.get(f"/v1/customers/{customer}").json()["status"] == "suspended"
    assert vendor.in_transaction == []


def test_api_reads_and_writes_proceed_while_provisioning_hangs(
    tenant: Tenant, runtime: Runtime, vendor: HangingVendor
) -> None:
    vendor.hang_on = {"provision"}
    customer = _customer(tenant, "gcp", "HANG-2")
    worker, worker_done, worker_out = _in_thread(lambda: run_pending(runtime))
    try:
        assert vendor.entered.wait(PATIENCE)
        health, listed, patched = _answers_while_held(
            tenant,
            vendor.release,
            [
                lambda: tenant.client.get("/healthz"),
                lambda: tenant.get("/v1/customers"),
                # a writer too: nothing holds the write lock during the vendor call
                lambda: tenant.patch(f"/v1/customers/{customer}", json={"credit_limit": "10"}),
            ],
        )
    finally:
        vendor.release.set()
        worker.join(PATIENCE)
    assert health.status_code == 200
    assert listed.status_code == 200 and [c["id"] for c in listed.json()["data"]] == [customer]
    assert patched.status_code == 200, patched.text
    assert worker_done.is_set() and not isinstance(worker_out[0], BaseException)
    states = tenant.get(f"/v1/customers/{customer}").json()["vendor_states"]
    assert [(s["vendor"], s["state"]) for s in states] == [("gcp", "active")]
    assert vendor.in_transaction == []


def test_provisioning_outcome_is_recorded_once_when_the_job_reruns(
    tenant: Tenant, runtime: Runtime, vendor: HangingVendor
) -> None:
    """A crash after the vendor call but before the record re-runs the job: the vendor is
    asked again (idempotently, same key) and the outcome is recorded once."""
    customer = _customer(tenant, "aws", "RERUN-1")
    with runtime.uow() as uow:
        state_id = uow.session.scalars(select(CustomerVendor.id)).one()
    original = tasks._record_provisioning

    def crash(*args: Any) -> None:
        raise SystemExit("worker killed between the vendor call and the record")

    tasks._record_provisioning = crash  # type: ignore[assignment]
    try:
        with pytest.raises(SystemExit):
            tasks.provision_job(runtime, {"customer_vendor_id": state_id})
    finally:
        tasks._record_provisioning = original
    tasks.provision_job(runtime, {"customer_vendor_id": state_id})
    tasks.provision_job(runtime, {"customer_vendor_id": state_id})  # done: no call
    assert vendor.calls == ["provision", "provision"]
    assert len(vendor.accounts) == 1
    links = tenant.get(f"/v1/customers/{customer}/vendor-accounts").json()["data"]
    assert len(links) == 1


def test_a_vendor_call_inside_a_transaction_fails(runtime: Runtime) -> None:
    calls: list[str] = []
    with runtime.uow() as uow:
        uow.session.execute(text("SELECT 1"))
        with pytest.raises(TransactionOpen):
            connectors.call_vendor(lambda: calls.append("called"))
        uow.commit()
        # committed: no transaction is open any more, the call is allowed
        connectors.call_vendor(lambda: calls.append("after commit"))
    connectors.call_vendor(lambda: calls.append("outside"))
    assert calls == ["after commit", "outside"]


def test_reads_answer_while_another_connection_holds_a_write_transaction(
    tenant: Tenant, runtime: Runtime
) -> None:
    customer = tenant.post(
        "/v1/customers", json={"external_id": "R-1", "name": "Reader", "currency": "EUR"}
    ).json()["id"]
    holding = threading.Event()
    release = threading.Event()

    def writer() -> None:
        with runtime.uow() as uow:
            # BEGIN IMMEDIATE on SQLite: the write lock, held until release.
            uow.session.execute(text("UPDATE msps SET name = name"))
            holding.set()
            release.wait(PATIENCE * 2)
            uow.commit()

    thread, writer_done, _ = _in_thread(writer)
    try:
        assert holding.wait(PATIENCE)
        health, one, listed, credit = _answers_while_held(
            tenant,
            release,
            [
                lambda: tenant.client.get("/healthz"),
                lambda: tenant.get(f"/v1/customers/{customer}"),
                lambda: tenant.get("/v1/customers"),
                lambda: tenant.get(f"/v1/customers/{customer}/credit?period=2030-01"),
            ],
        )
        assert health.status_code == 200
        assert one.status_code == 200 and one.json()["external_id"] == "R-1"
        assert listed.status_code == 200
        assert credit.status_code == 200, credit.text
    finally:
        release.set()
        writer_done.wait(PATIENCE)
        thread.join()
