"""The connector framework with an in-memory vendor: provisioning states, service-action
state machine, retries, collection watermarks. The real vendors' protocols are tested
against the sandboxes in the other test modules."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from billbyte.connectors import service as connectors
from billbyte.connectors import tasks, vendors
from billbyte.connectors.base import (
    ActionResult,
    CollectedFile,
    Collection,
    CustomerSpec,
    PartnerContext,
    ProvisionResult,
    VendorError,
)
from billbyte.connectors.models import ServiceAction
from billbyte.customers.models import Customer
from billbyte.jobs.service import enqueue, run_pending
from billbyte.kit.clock import utcnow
from tests.conftest import Tenant
from tests.usage.generate import write_focus


@dataclass
class MemoryVendor:
    """Behaves like a vendor: accounts, pending creation, suspension, a failure plan."""

    vendor: str = "aws"
    accounts: dict[str, str] = field(default_factory=dict)  # key → account id
    states: dict[str, str] = field(default_factory=dict)  # account id → state
    pending_polls: int = 1
    failures: list[VendorError] = field(default_factory=list)
    deliveries: list[Collection] = field(default_factory=list)
    calls: list[str] = field(default_factory=list)

    def _maybe_fail(self, name: str) -> None:
        self.calls.append(name)
        if self.failures:
            raise self.failures.pop(0)

    def provision_customer(
        self, ctx: PartnerContext, spec: CustomerSpec, idempotency_key: str
    ) -> ProvisionResult:
        self._maybe_fail("provision")
        account = self.accounts.setdefault(idempotency_key, f"{len(self.accounts) + 1:012d}")
        self.states[account] = "active"
        return ProvisionResult(state="pending", reference=f"req-{account}")

    def poll_provisioning(self, ctx: PartnerContext, reference: str) -> ProvisionResult:
        self._maybe_fail("poll")
        if self.pending_polls:
            self.pending_polls -= 1
            return ProvisionResult(state="pending", reference=reference)
        account = reference.removeprefix("req-")
        return ProvisionResult(
            state="active",
            vendor_identifier=account,
            kind="aws_account",
            portal_url=f"https://{account}.signin.example/console",
        )

    def list_accounts(self, ctx: PartnerContext) -> list[dict[str, Any]]:
        return [{"id": a} for a in self.states]

    def collect_usage(
        self, ctx: PartnerContext, watermark: str | None, work_dir: Path
    ) -> Collection:
        self._maybe_fail("collect")
        index = int(watermark or 0)
        if index >= len(self.deliveries):
            return Collection(deliveries=[], watermark=watermark)
        return self.deliveries[index]

    def suspend(self, ctx: PartnerContext, vendor_identifier: str) -> ActionResult:
        self._maybe_fail("suspend")
        self.states[vendor_identifier] = "suspended"
        return ActionResult(state="suspended")

    def resume(self, ctx: PartnerContext, vendor_identifier: str) -> ActionResult:
        self._maybe_fail("resume")
        self.states[vendor_identifier] = "active"
        return ActionResult(state="active")

    def purge(self, ctx: PartnerContext, vendor_identifier: str) -> ActionResult:
        self._maybe_fail("purge")
        self.states[vendor_identifier] = "closed"
        return ActionResult(state="purged")

    def status(self, ctx: PartnerContext, vendor_identifier: str) -> str:
        return self.states[vendor_identifier]


@pytest.fixture
def vendor(monkeypatch: pytest.MonkeyPatch) -> MemoryVendor:
    memory = MemoryVendor()
    monkeypatch.setattr(vendors, "CONNECTORS", {"aws": memory})
    monkeypatch.setattr(vendors, "_loaded", True)
    monkeypatch.setattr(tasks, "POLL_DELAY", 0.0)
    return memory


def _setup(tenant: Tenant) -> tuple[str, str]:
    pa = tenant.post(
        "/v1/partner-accounts",
        json={
            "vendor": "aws",
            "display_name": "payer",
            "sandbox": True,
            "credentials": {"access_key_id": "x"},
        },
    ).json()["id"]
    customer = tenant.post(
        "/v1/customers",
        json={"external_id": "NEW-1", "name": "Newco", "currency": "USD", "vendors": ["aws"]},
    )
    assert customer.status_code == 201, customer.text
    return pa, customer.json()["id"]


def _drain(runtime: Any, rounds: int = 6) -> None:
    for round_ in range(rounds):
        # Jump past any backoff: each round is a day later than the last.
        run_pending(runtime, now=utcnow() + timedelta(days=round_ + 1))


def test_provisioning_goes_pending_then_active_and_links(
    tenant: Tenant, runtime: Any, vendor: MemoryVendor
) -> None:
    pa, customer = _setup(tenant)
    states = tenant.get(f"/v1/customers/{customer}").json()["vendor_states"]
    assert [(s["vendor"], s["state"]) for s in states] == [("aws", "pending")]
    _drain(runtime)
    body = tenant.get(f"/v1/customers/{customer}").json()
    state = body["vendor_states"][0]
    assert state["state"] == "active" and state["portal_url"].startswith("https://")
    links = tenant.get(f"/v1/customers/{customer}/vendor-accounts").json()["data"]
    assert [(link["partner_account_id"], link["vendor_identifier"]) for link in links] == [
        (pa, state["vendor_identifier"])
    ]
    assert vendor.calls.count("provision") == 1


def test_transient_failures_are_retried_and_permanent_ones_reported(
    tenant: Tenant, runtime: Any, vendor: MemoryVendor
) -> None:
    vendor.failures = [VendorError("throttled", retryable=True, status=429)] * 4
    _, customer = _setup(tenant)
    _drain(runtime)
    assert tenant.get(f"/v1/customers/{customer}").json()["vendor_states"][0]["state"] == "active"
    vendor.failures = [VendorError("AccessDenied", retryable=False, status=403)]
    other = tenant.post(
        "/v1/customers",
        json={"external_id": "NEW-2", "name": "Two", "currency": "USD", "vendors": ["aws"]},
    ).json()
    _drain(runtime)
    state = tenant.get(f"/v1/customers/{other['id']}").json()["vendor_states"][0]
    assert state["state"] == "failed" and "AccessDenied" in state["message"]
    retried = tenant.post(f"/v1/customers/{other['id']}/vendors/aws/retry", json={})
    assert retried.status_code == 202
    _drain(runtime)
    assert (
        tenant.get(f"/v1/customers/{other['id']}").json()["vendor_states"][0]["state"] == "active"
    )


def test_suspend_resume_purge_state_machine(
    tenant: Tenant, runtime: Any, vendor: MemoryVendor
) -> None:
    _, customer = _setup(tenant)
    _drain(runtime)
    account = tenant.get(f"/v1/customers/{customer}").json()["vendor_states"][0][
        "vendor_identifier"
    ]
    assert tenant.post(f"/v1/customers/{customer}/resume", json={}).status_code == 409
    suspended = tenant.post(f"/v1/customers/{customer}/suspend", json={"reason": "overdue"})
    assert suspended.status_code == 202
    assert tenant.post(f"/v1/customers/{customer}/suspend", json={}).status_code == 409
    vendor.failures = [VendorError("boom", retryable=True, status=500)] * 3
    _drain(runtime)
    assert vendor.states[account] == "suspended"
    body = tenant.get(f"/v1/customers/{customer}").json()
    assert body["status"] == "suspended"
    action = tenant.get(f"/v1/service-actions/{suspended.json()['id']}").json()
    assert action["state"] == "completed" and action["results"]["aws"]["state"] == "suspended"
    # purge needs the confirmation and the hold
    assert (
        tenant.post(f"/v1/customers/{customer}/purge", json={"confirm": "wrong"}).json()["code"]
        == "confirmation_required"
    )
    assert (
        tenant.post(f"/v1/customers/{customer}/purge", json={"confirm": "NEW-1"}).json()["code"]
        == "purge_hold"
    )
    resumed = tenant.post(f"/v1/customers/{customer}/resume", json={})
    assert resumed.status_code == 202
    _drain(runtime)
    assert vendor.states[account] == "active"
    assert tenant.get(f"/v1/customers/{customer}").json()["status"] == "active"
    events = tenant.get("/v1/webhook-events").json()["data"]
    assert {"service.suspended", "service.resumed"} <= {e["type"] for e in events}
    audit = tenant.get("/v1/audit-events", params={"target_id": customer, "limit": 200}).json()
    actions = [e["action"] for e in audit["data"]]
    assert "customer.suspended" in actions and "customer.active" in actions


def test_purge_after_hold(tenant: Tenant, runtime: Any, vendor: MemoryVendor) -> None:
    runtime.settings.purge_hold_hours = 0
    _, customer = _setup(tenant)
    _drain(runtime)
    tenant.post(f"/v1/customers/{customer}/suspend", json={})
    _drain(runtime)
    purged = tenant.post(f"/v1/customers/{customer}/purge", json={"confirm": "NEW-1"})
    assert purged.status_code == 202, purged.text
    _drain(runtime)
    assert tenant.get(f"/v1/customers/{customer}").json()["status"] == "purged"
    assert set(vendor.states.values()) == {"closed"}


def test_collection_imports_deliveries_and_moves_the_watermark(
    tenant: Tenant, runtime: Any, vendor: MemoryVendor, tmp_path: Path
) -> None:
    pa, _ = _setup(tenant)
    first, second = tmp_path / "a.csv", tmp_path / "b.csv"
    totals_a = write_focus(first, 300, seed=1)
    totals_b = write_focus(second, 250, seed=2)  # a restatement of the same month
    vendor.deliveries = [
        Collection([CollectedFile([first])], watermark="1", data_until="2026-10-28T00:00:00Z"),
        Collection([CollectedFile([second])], watermark="2"),
    ]
    connectors.collect(runtime, pa)
    summary = tenant.get("/v1/usage/summary", params={"period": "2026-10"}).json()
    assert summary["totals"]["USD"]["billed_cost"] == str(totals_a["BilledCost"].normalize())
    # a failing vendor: nothing imported, error visible, watermark kept
    vendor.failures = [VendorError("503", retryable=True, status=503)] * 3
    with pytest.raises(VendorError):
        connectors.collect(runtime, pa)
    sync = tenant.get(f"/v1/partner-accounts/{pa}/sync").json()
    assert "503" in sync["last_error"] and sync["consecutive_failures"] == 1
    connectors.collect(runtime, pa)
    connectors.collect(runtime, pa)  # nothing new: no import
    summary = tenant.get("/v1/usage/summary", params={"period": "2026-10"}).json()
    assert summary["totals"]["USD"]["billed_cost"] == str(totals_b["BilledCost"].normalize())
    sync = tenant.get(f"/v1/partner-accounts/{pa}/sync").json()
    assert sync["last_error"] is None and sync["last_success_at"] and sync["data_until"]


def test_credit_threshold_requests_a_suspension(
    tenant: Tenant, runtime: Any, vendor: MemoryVendor, tmp_path: Path
) -> None:
    pa, customer = _setup(tenant)
    _drain(runtime)
    account = tenant.get(f"/v1/customers/{customer}").json()["vendor_states"][0][
        "vendor_identifier"
    ]
    policy = tenant.client.put(
        "/v1/credit-policy",
        headers=tenant.headers,
        json={"thresholds": [50, 100], "action": "suspend", "suspend_at": 100},
    )
    assert policy.status_code == 200
    tenant.patch(f"/v1/customers/{customer}", json={"credit_limit": "1"})
    path = tmp_path / "usage.csv"
    lines = [
        "BilledCost,BillingCurrency,BillingPeriodStart,ChargePeriodStart,"
        "ChargeCategory,SubAccountId,ServiceName",
        f"5.00,USD,2026-10-01T00:00:00Z,2026-10-03T00:00:00Z,Usage,{account},EC2",
    ]
    path.write_text("\n".join(lines) + "\n")
    vendor.deliveries = [Collection([CollectedFile([path])], watermark="1")]
    connectors.collect(runtime, pa)
    _drain(runtime)
    assert tenant.get(f"/v1/customers/{customer}").json()["status"] == "suspended"
    assert vendor.states[account] == "suspended"
    with runtime.uow() as uow:
        actors = list(uow.session.scalars(select(ServiceAction.actor)))
    assert actors == ["system:credit"]


def test_vendor_retry_after_hint_is_honoured(monkeypatch: pytest.MonkeyPatch) -> None:
    """A 429 with Retry-After waits at least that long before the next attempt (capped)."""
    waits: list[float] = []
    monkeypatch.setattr("tenacity.nap.time.sleep", waits.append)
    calls = iter(
        [
            VendorError("throttled", retryable=True, status=429, retry_after=7),
            VendorError("busy", retryable=True, status=503),
            "done",
        ]
    )

    def flaky() -> str:
        outcome = next(calls)
        if isinstance(outcome, VendorError):
            raise outcome
        return outcome

    assert connectors.call_vendor(flaky) == "done"
    assert waits[0] == 7.0 and waits[1] < 7.0
    huge = iter([VendorError("later", retryable=True, status=429, retry_after=3600), "ok"])

    def very_busy() -> str:
        outcome = next(huge)
        if isinstance(outcome, VendorError):
            raise outcome
        return outcome

    assert connectors.call_vendor(very_busy) == "ok"
    assert waits[-1] == connectors.MAX_RETRY_AFTER


def test_a_suspension_requested_as_a_job_suspends_once(
    tenant: Tenant, runtime: Any, vendor: MemoryVendor
) -> None:
    """Credit control may record its suspension request as a job (connectors.tasks)."""
    _, customer = _setup(tenant)
    _drain(runtime)
    account = tenant.get(f"/v1/customers/{customer}").json()["vendor_states"][0][
        "vendor_identifier"
    ]
    with runtime.uow() as uow:
        uow.session.get(Customer, customer).status = "suspension_requested"
        enqueue(uow.session, tasks.SUSPENSION, customer, {"customer_id": customer})
        uow.commit()
    _drain(runtime)
    tasks.suspension_job(runtime, {"customer_id": customer})  # a re-run: nothing more
    assert tenant.get(f"/v1/customers/{customer}").json()["status"] == "suspended"
    assert vendor.states[account] == "suspended"
    with runtime.uow() as uow:
        actors = list(uow.session.scalars(select(ServiceAction.actor)))
    assert actors == ["system:credit"]
