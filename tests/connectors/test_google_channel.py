"""The Cloud Channel connector against BillByte's Cloud Channel simulator.

Effects are verified through the simulator's own REST API (customers, entitlements,
operations, billing accounts); the collected billing export is imported through the real
ingestion pipeline and its stored totals compared with an independent Decimal sum over the
JSON lines as served (cost + every credit amount).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from billbyte.auth.roles import Role
from billbyte.auth.subject import AuthSubject
from billbyte.connectors.base import CustomerSpec, PartnerContext, VendorError
from billbyte.connectors.google_channel import CloudChannelConnector
from billbyte.connectors.service import call_vendor
from billbyte.kit.outbound import LOCAL_SANDBOXES
from billbyte.partners import service as partners
from billbyte.partners.schemas import PartnerAccountCreate
from billbyte.runtime import Runtime
from billbyte.sandbox.google_channel import (
    SANDBOX_OFFER_ID,
    CloudChannelSimulator,
    start_google_channel_sandbox,
)
from billbyte.sandbox.runtime import SandboxServer
from billbyte.tenancy import service as tenancy
from tests.usage.conftest import Importer, stored

T0 = datetime(2026, 11, 3, 10, 0, tzinfo=UTC)
ACCOUNT = "C01reseller"


@pytest.fixture
def gc() -> Iterator[SandboxServer]:
    server = start_google_channel_sandbox(simulator=CloudChannelSimulator(start=T0))
    yield server
    server.stop()


@pytest.fixture
def connector() -> CloudChannelConnector:
    # Generous: two xdist workers on two cores can stall a loopback call for a second.
    return CloudChannelConnector(timeout=10.0, lro_wait=1.0)


def context(gc: SandboxServer, **credentials: Any) -> PartnerContext:
    return PartnerContext(
        partner_account_id="pa_gcp",
        vendor="gcp",
        vendor_account_id=ACCOUNT,
        endpoint_url=gc.base_url,
        sandbox=True,
        outbound=LOCAL_SANDBOXES,  # the simulators run on http://127.0.0.1
        credentials=credentials,
    )


def spec(n: int = 1, name: str = "Contoso GmbH") -> CustomerSpec:
    return CustomerSpec(
        customer_id=f"cus_{n:04d}",
        external_id=f"CRM-{n}",
        name=name,
        country="DE",
        email_domain=f"crm-{n}.customers.example",
    )


class Api:
    """The simulator's REST API as any Google client sees it (independent of the connector)."""

    def __init__(self, gc: SandboxServer) -> None:
        self.http = httpx.Client(base_url=gc.base_url, timeout=5)
        token = self.http.post(
            "/token",
            data={"grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer",
                  "assertion": jwt({"iss": "test@example.iam", "aud": "x", "exp": 2**40})},
        ).json()["access_token"]  # fmt: skip
        self.headers = {"Authorization": f"Bearer {token}"}

    def get(self, path: str, **kw: Any) -> httpx.Response:
        return self.http.get(path, headers=self.headers, **kw)

    def post(self, path: str, body: dict[str, Any]) -> httpx.Response:
        return self.http.post(path, headers=self.headers, json=body)

    def entitlement(self, billing_id: str) -> dict[str, Any] | None:
        customers = self.get(f"/v1/accounts/{ACCOUNT}/customers").json()["customers"]
        for customer in customers:
            found = self.get(f"/v1/{customer['name']}/entitlements").json()["entitlements"]
            for entitlement in found:
                if entitlement["provisionedService"]["provisioningId"] == billing_id:
                    return dict(entitlement)
        return None


def jwt(claims: dict[str, Any]) -> str:
    import base64

    def part(value: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()

    return f"{part({'alg': 'RS256'})}.{part(claims)}.c2ln"


def make_importer(runtime: Runtime) -> Importer:
    with runtime.uow() as uow:
        msp, _ = tenancy.create_msp(uow.session, "Connector MSP")
        subject = AuthSubject(msp_id=msp.id, actor="test", role=Role.ADMIN)
        account = partners.create(
            uow.session,
            subject,
            PartnerAccountCreate(vendor="gcp", display_name="gcp partner"),
            runtime.secret_key,
        )
        uow.commit()
    return Importer(runtime, subject, {"gcp": account.id})


def served_rows(paths: list[Path]) -> list[dict[str, Any]]:
    """The independent side: the JSON lines as served, numbers read as Decimal."""
    rows = []
    for path in paths:
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                rows.append(json.loads(line, parse_float=Decimal, parse_int=Decimal))
    return rows


def sums(rows: list[dict[str, Any]]) -> dict[str, dict[str, Decimal]]:
    found: dict[str, dict[str, Decimal]] = {}
    for row in rows:
        entry = found.setdefault(
            row["currency"], {"net": Decimal(0), "gross": Decimal(0), "list": Decimal(0)}
        )
        credits = sum((Decimal(c["amount"]) for c in row["credits"]), Decimal(0))
        entry["gross"] += row["cost"]
        entry["net"] += row["cost"] + credits
        entry["list"] += row["cost_at_list"]
    return found


# --- authentication ------------------------------------------------------------------------


def test_every_call_needs_an_oauth_token(gc: SandboxServer) -> None:
    http = httpx.Client(base_url=gc.base_url, timeout=5)
    missing = http.get(f"/v1/accounts/{ACCOUNT}/customers")
    assert missing.status_code == 401
    assert missing.json()["error"]["status"] == "UNAUTHENTICATED"
    bad = http.post(
        "/token",
        data={"grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer", "assertion": "x.y"},
    )
    assert bad.status_code == 400 and bad.json()["error"] == "invalid_grant"
    expired = http.post(
        "/token",
        data={"grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer",
              "assertion": jwt({"iss": "a", "aud": "b", "exp": 1})},
    )  # fmt: skip
    assert expired.status_code == 400
    assert Api(gc).get(f"/v1/accounts/{ACCOUNT}/customers").json() == {"customers": []}


def test_the_connector_signs_its_assertion_and_renews_tokens(
    gc: SandboxServer, connector: CloudChannelConnector
) -> None:
    ctx = context(gc)
    assert connector.list_accounts(ctx) == []
    gc.app.revoke_tokens()
    assert connector.list_accounts(ctx) == []  # 401 → a new token → the call again


# --- provisioning --------------------------------------------------------------------------


def test_provision_creates_the_customer_and_a_cloud_entitlement(
    gc: SandboxServer, connector: CloudChannelConnector
) -> None:
    result = connector.provision_customer(context(gc), spec(), "cus_0001:gcp")
    assert result.state == "active" and result.kind == "gcp_billing_subaccount"
    billing_id = str(result.vendor_identifier)
    api = Api(gc)
    customer = api.get(f"/v1/{result.extra['customer']}").json()
    assert customer["orgDisplayName"] == "Contoso GmbH"
    assert customer["domain"] == "crm-1.customers.example"
    assert customer["correlationId"] == "cus_0001"
    entitlement = api.get(f"/v1/{result.extra['entitlement']}").json()
    assert entitlement["provisioningState"] == "ACTIVE"
    assert entitlement["offer"] == f"accounts/{ACCOUNT}/offers/{SANDBOX_OFFER_ID}"
    assert entitlement["provisionedService"]["provisioningId"] == billing_id
    assert api.get(f"/v1/billingAccounts/{billing_id}").json()["open"] is True
    page = httpx.get(str(result.portal_url), timeout=5)
    assert page.status_code == 200 and billing_id in page.text

    again = connector.provision_customer(context(gc), spec(), "cus_0001:gcp")
    assert again.vendor_identifier == billing_id
    customers = api.get(f"/v1/accounts/{ACCOUNT}/customers").json()["customers"]
    assert len(customers) == 1
    assert len(api.get(f"/v1/{customers[0]['name']}/entitlements").json()["entitlements"]) == 1


def test_a_slow_entitlement_is_pending_then_polled_to_active(gc: SandboxServer) -> None:
    gc.app.lro_polls = 1000  # operations finish only at the next tick
    connector = CloudChannelConnector(timeout=10.0, lro_wait=0.2)
    ctx = context(gc)
    pending = connector.provision_customer(ctx, spec(), "k")
    assert pending.state == "pending" and str(pending.reference).startswith("operations/")
    op = Api(gc).get(f"/v1/{pending.reference}").json()
    assert op["done"] is False
    assert op["metadata"]["operationType"] == "CREATE_ENTITLEMENT"
    # Provisioning again with the same key finds the same operation (same requestId).
    assert connector.provision_customer(ctx, spec(), "k").reference == pending.reference
    assert connector.poll_provisioning(ctx, str(pending.reference)).state == "pending"
    gc.tick(T0 + timedelta(minutes=5))
    active = connector.poll_provisioning(ctx, str(pending.reference))
    assert active.state == "active" and active.kind == "gcp_billing_subaccount"
    entitlement = Api(gc).entitlement(str(active.vendor_identifier))
    assert entitlement is not None and entitlement["provisioningState"] == "ACTIVE"


# --- service management --------------------------------------------------------------------


def test_suspend_and_resume_the_entitlement(
    gc: SandboxServer, connector: CloudChannelConnector
) -> None:
    ctx = context(gc)
    billing_id = str(connector.provision_customer(ctx, spec(), "k").vendor_identifier)
    api = Api(gc)
    suspended = connector.suspend(ctx, billing_id)
    assert suspended.state == "suspended" and str(suspended.reference).startswith("operations/")
    entitlement = api.entitlement(billing_id)
    assert entitlement is not None and entitlement["provisioningState"] == "SUSPENDED"
    assert entitlement["suspensionReasons"] == ["RESELLER_INITIATED"]
    assert api.get(f"/v1/billingAccounts/{billing_id}").json()["open"] is False
    assert connector.status(ctx, billing_id) == "suspended"
    assert connector.suspend(ctx, billing_id).message == "entitlement already suspended"

    assert connector.resume(ctx, billing_id).state == "active"
    entitlement = api.entitlement(billing_id)
    assert entitlement is not None and entitlement["provisioningState"] == "ACTIVE"
    assert connector.status(ctx, billing_id) == "active"
    # A fresh connector (no cache) finds the entitlement from the billing subaccount id.
    assert CloudChannelConnector(timeout=10.0).status(ctx, billing_id) == "active"


def test_a_pending_suspension_is_the_same_operation_until_it_completes(gc: SandboxServer) -> None:
    connector = CloudChannelConnector(timeout=10.0, lro_wait=0.2)
    ctx = context(gc)
    billing_id = str(connector.provision_customer(ctx, spec(), "k").vendor_identifier)
    gc.app.lro_polls = 1000
    first = connector.suspend(ctx, billing_id)
    assert first.state == "pending"
    api = Api(gc)
    entitlement = api.entitlement(billing_id)
    assert entitlement is not None and entitlement["provisioningState"] == "ACTIVE"
    assert connector.suspend(ctx, billing_id).reference == first.reference  # retried: same op
    gc.tick(T0 + timedelta(minutes=1))
    entitlement = api.entitlement(billing_id)
    assert entitlement is not None and entitlement["provisioningState"] == "SUSPENDED"
    assert connector.suspend(ctx, billing_id).state == "suspended"
    resumed = connector.resume(ctx, billing_id)  # a new action: a new operation
    assert resumed.state == "pending" and resumed.reference != first.reference


def test_request_ids_make_entitlement_changes_idempotent(
    gc: SandboxServer, connector: CloudChannelConnector
) -> None:
    result = connector.provision_customer(context(gc), spec(), "k")
    name = result.extra["entitlement"]
    api = Api(gc)
    request = {"requestId": str(uuid.uuid4())}
    one = api.post(f"/v1/{name}:suspend", request).json()
    two = api.post(f"/v1/{name}:suspend", request).json()
    assert one["name"] == two["name"]
    assert one["metadata"]["@type"].endswith("google.cloud.channel.v1.OperationMetadata")
    done = api.get(f"/v1/{one['name']}").json()
    assert done["done"] is True and done["response"]["provisioningState"] == "SUSPENDED"
    refused = api.post(f"/v1/{name}:suspend", {"requestId": str(uuid.uuid4())})
    assert refused.status_code == 400 and refused.json()["error"]["status"] == "FAILED_PRECONDITION"
    zero = api.post(f"/v1/{name}:activate", {"requestId": str(uuid.UUID(int=0))})
    assert zero.status_code == 400


def test_purge_cancels_the_entitlement(gc: SandboxServer, connector: CloudChannelConnector) -> None:
    ctx = context(gc)
    result = connector.provision_customer(ctx, spec(), "k")
    billing_id = str(result.vendor_identifier)
    connector.suspend(ctx, billing_id)
    assert connector.purge(ctx, billing_id).state == "purged"
    assert Api(gc).get(f"/v1/{result.extra['entitlement']}").status_code == 404
    assert connector.status(ctx, billing_id) == "closed"
    assert connector.purge(ctx, billing_id).state == "purged"  # repeated: nothing left to do


# --- collection ----------------------------------------------------------------------------


@pytest.mark.storage
def test_the_collected_export_imports_with_exact_totals(
    gc: SandboxServer, connector: CloudChannelConnector, runtime: Runtime, tmp_path: Path
) -> None:
    ctx = context(gc)
    for i in (1, 2):
        connector.provision_customer(ctx, spec(i, f"Customer {i}"), f"k{i}")
    gc.tick(T0 + timedelta(days=5))
    collection = connector.collect_usage(ctx, None, tmp_path)
    (delivery,) = collection.deliveries  # October is empty: only November
    assert delivery.format == "gcp_billing_export"
    rows = served_rows(delivery.paths)
    assert len(rows) == len(gc.app.export_rows(ACCOUNT, "202611")) > 0
    assert all(row["credits"] for row in rows)
    expected = sums(rows)
    assert set(expected) == {"EUR"}
    assert expected["EUR"]["net"] < expected["EUR"]["gross"]

    imported = make_importer(runtime)(*delivery.paths, vendor="gcp", fmt=delivery.format)
    assert imported.status == "completed" and imported.rows_accepted == len(rows)
    assert stored(imported) == {"EUR": expected["EUR"]["net"]}
    assert stored(imported, "contracted_cost") == {"EUR": expected["EUR"]["gross"]}
    assert stored(imported, "list_cost") == {"EUR": expected["EUR"]["list"]}
    projects = {r["project"]["id"] for r in rows}
    assert sorted(imported.unassigned_sub_accounts) == sorted(projects)
    assert collection.data_until == "2026-11-08T00:00:00Z"
    assert json.loads(str(collection.watermark))["final"] == "202610"  # past its close

    # Every project the export bills is listed, with its billing subaccount.
    accounts = connector.list_accounts(ctx)
    listed = {a["vendor_identifier"] for a in accounts if a["kind"] == "gcp_project"}
    assert listed == projects


def test_a_suspended_subaccount_stops_producing_usage(
    gc: SandboxServer, connector: CloudChannelConnector, tmp_path: Path
) -> None:
    ctx = context(gc)
    billing_id = str(connector.provision_customer(ctx, spec(), "k").vendor_identifier)
    gc.tick(T0 + timedelta(days=2))  # 3 and 4 November
    connector.suspend(ctx, billing_id)
    gc.tick(T0 + timedelta(days=4))  # 5 and 6 November: suspended
    connector.resume(ctx, billing_id)
    gc.tick(T0 + timedelta(days=5))  # 7 November
    (delivery,) = connector.collect_usage(ctx, None, tmp_path).deliveries
    days = {row["usage_start_time"][:10] for row in served_rows(delivery.paths)}
    assert days == {"2026-11-03", "2026-11-04", "2026-11-07"}


def test_the_previous_month_is_collected_until_it_is_final(
    gc: SandboxServer, connector: CloudChannelConnector, tmp_path: Path
) -> None:
    ctx = context(gc)
    connector.provision_customer(ctx, spec(), "k")
    gc.tick(datetime(2026, 12, 2, tzinfo=UTC))
    early = connector.collect_usage(ctx, None, tmp_path / "1")
    assert [d.paths[0].name[-12:] for d in early.deliveries] == ["202611.jsonl", "202612.jsonl"]
    assert json.loads(str(early.watermark))["final"] == ""
    gc.tick(datetime(2026, 12, 7, tzinfo=UTC))
    closing = connector.collect_usage(ctx, early.watermark, tmp_path / "2")
    assert len(closing.deliveries) == 2  # fetched once more after the close
    assert json.loads(str(closing.watermark))["final"] == "202611"
    later = connector.collect_usage(ctx, closing.watermark, tmp_path / "3")
    assert [d.paths[0].name[-12:] for d in later.deliveries] == ["202612.jsonl"]


# --- failures ------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [429, 500, 503])
def test_throttling_and_server_errors_are_retryable(
    gc: SandboxServer, connector: CloudChannelConnector, status: int
) -> None:
    ctx = context(gc)
    if status == 429:
        gc.app.faults.throttle(1, retry_after=2)
    else:
        gc.app.faults.fail(1, status)
    with pytest.raises(VendorError) as caught:
        connector.list_accounts(ctx)
    assert caught.value.retryable and caught.value.status == status
    assert connector.list_accounts(ctx) == []


def test_a_hanging_vendor_times_out_as_retryable(gc: SandboxServer) -> None:
    connector = CloudChannelConnector(timeout=10.0)
    connector.list_accounts(context(gc))  # token cached, under a patient timeout
    gc.app.faults.hang(1, seconds=3, path="/customers")
    with pytest.raises(VendorError) as caught:
        connector.list_accounts(context(gc, timeout_seconds=0.5))
    assert caught.value.retryable and "timed out" in caught.value.message


def test_the_framework_retries_through_transient_failures(
    gc: SandboxServer, connector: CloudChannelConnector
) -> None:
    gc.app.faults.throttle(1, retry_after=0, path="/entitlements")
    gc.app.faults.fail(1, 503, path="/operations/")
    result = call_vendor(lambda: connector.provision_customer(context(gc), spec(), "k"))
    assert result.state == "active"
    assert [what for _, _, what in gc.app.faults.injected] == ["429", "503"]
    assert len(Api(gc).get(f"/v1/accounts/{ACCOUNT}/customers").json()["customers"]) == 1


def test_client_errors_are_permanent(gc: SandboxServer, connector: CloudChannelConnector) -> None:
    ctx = context(gc)
    with pytest.raises(VendorError) as caught:
        connector.suspend(ctx, "accounts/C01reseller/customers/nope/entitlements/nope")
    assert caught.value.status == 404 and not caught.value.retryable
    wrong_offer = context(gc, offer_id="not-an-offer")
    with pytest.raises(VendorError) as offer:
        connector.provision_customer(wrong_offer, spec(), "k")
    assert offer.value.status == 404 and not offer.value.retryable
