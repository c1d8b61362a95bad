"""The Partner Center connector against BillByte's Partner Center simulator.

Every effect is verified through the simulator's own REST API (what Microsoft would show),
and collected usage is imported through the real ingestion pipeline; its stored totals are
compared with an independent Decimal sum over the JSON pages as they were served.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from billbyte.auth.roles import Role
from billbyte.auth.subject import AuthSubject
from billbyte.connectors.base import CollectedFile, CustomerSpec, PartnerContext, VendorError
from billbyte.connectors.partner_center import AZURE_PLAN_OFFER, PartnerCenterConnector
from billbyte.connectors.service import call_vendor
from billbyte.kit.outbound import LOCAL_SANDBOXES
from billbyte.partners import service as partners
from billbyte.partners.schemas import PartnerAccountCreate
from billbyte.runtime import Runtime
from billbyte.sandbox.partner_center import (
    DEFAULT_LICENCE_OFFER,
    PartnerCenterSimulator,
    start_partner_center_sandbox,
)
from billbyte.sandbox.runtime import SandboxServer, dumps_exact
from billbyte.tenancy import service as tenancy
from tests.usage.conftest import Importer, stored

T0 = datetime(2026, 11, 3, 10, 0, tzinfo=UTC)
TENANT = "contoso-partner"
PAGE = 7


@pytest.fixture
def pc() -> Iterator[SandboxServer]:
    server = start_partner_center_sandbox(simulator=PartnerCenterSimulator(start=T0))
    yield server
    server.stop()


@pytest.fixture
def connector() -> PartnerCenterConnector:
    return PartnerCenterConnector(timeout=5.0)  # generous: a loaded CI machine is slow


def context(pc: SandboxServer, vendor: str = "azure", **credentials: Any) -> PartnerContext:
    return PartnerContext(
        partner_account_id=f"pa_{vendor}",
        vendor=vendor,
        vendor_account_id=TENANT,
        endpoint_url=pc.base_url,
        sandbox=True,
        outbound=LOCAL_SANDBOXES,  # the simulators run on http://127.0.0.1
        credentials={"page_size": PAGE} | credentials,
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
    """The simulator's REST API as any Partner Center client sees it (independent of the
    connector)."""

    def __init__(self, pc: SandboxServer, tenant: str = TENANT) -> None:
        self.http = httpx.Client(base_url=pc.base_url, timeout=5)
        token = self.http.post(
            f"/{tenant}/oauth2/token",
            data={"grant_type": "client_credentials", "client_id": "test", "client_secret": "x"},
        ).json()["access_token"]
        self.headers = {"Authorization": f"Bearer {token}"}

    def get(self, path: str, **kw: Any) -> httpx.Response:
        return self.http.get(path, headers=self.headers | kw.pop("headers", {}), **kw)

    def customer(self, tenant_id: str) -> dict[str, Any]:
        response = self.get(f"/v1/customers/{tenant_id}")
        assert response.status_code == 200, response.text
        return dict(response.json())

    def subscriptions(self, tenant_id: str) -> list[dict[str, Any]]:
        response = self.get(f"/v1/customers/{tenant_id}/subscriptions")
        assert response.status_code == 200, response.text
        return list(response.json()["items"])

    def pages(self, path: str, params: dict[str, Any]) -> list[dict[str, Any]]:
        """Every page, following links.next with its MS-ContinuationToken header."""
        found = []
        response = self.get(path, params=params)
        while True:
            assert response.status_code == 200, response.text
            page = json.loads(response.content, parse_float=Decimal)
            found.append(page)
            following = page["links"].get("next")
            if not following:
                return found
            headers = {h["key"]: h["value"] for h in following["headers"]}
            response = self.get("/v1" + following["uri"], headers=headers)


def make_importer(runtime: Runtime) -> Importer:
    with runtime.uow() as uow:
        msp, _ = tenancy.create_msp(uow.session, "Connector MSP")
        subject = AuthSubject(msp_id=msp.id, actor="test", role=Role.ADMIN)
        accounts = {
            vendor: partners.create(
                uow.session,
                subject,
                PartnerAccountCreate(vendor=vendor, display_name=f"{vendor} partner"),
                runtime.secret_key,
            ).id
            for vendor in ("azure", "microsoft365")
        }
        uow.commit()
    return Importer(runtime, subject, accounts)


def served_items(paths: list[Path]) -> list[dict[str, Any]]:
    """The independent side: the pages as served, read with the json module into Decimals."""
    items: list[dict[str, Any]] = []
    for path in paths:
        items.extend(json.loads(path.read_text(encoding="utf-8"), parse_float=Decimal)["items"])
    return items


def total(items: list[dict[str, Any]], amount: str, currency: str) -> dict[str, Decimal]:
    sums: dict[str, Decimal] = {}
    for item in items:
        sums[item[currency]] = sums.get(item[currency], Decimal(0)) + Decimal(item[amount])
    return sums


def identity(item: dict[str, Any]) -> str:
    return dumps_exact(item)


# --- authentication ------------------------------------------------------------------------


def test_every_call_needs_a_client_credentials_token(pc: SandboxServer) -> None:
    http = httpx.Client(base_url=pc.base_url, timeout=5)
    missing = http.get("/v1/customers")
    assert missing.status_code == 401
    assert missing.json()["source"] == "PartnerFD" and "WWW-Authenticate" in missing.headers
    assert http.get("/v1/customers", headers={"Authorization": "Bearer nope"}).status_code == 401
    wrong_grant = http.post(f"/{TENANT}/oauth2/token", data={"grant_type": "password"})
    assert wrong_grant.status_code == 400
    assert wrong_grant.json()["error"] == "unsupported_grant_type"
    token = http.post(
        f"/{TENANT}/oauth2/token",
        data={"grant_type": "client_credentials", "client_id": "a", "client_secret": "b",
              "resource": "https://api.partnercenter.microsoft.com"},
    ).json()  # fmt: skip
    assert token["token_type"] == "Bearer" and int(token["expires_in"]) > 0
    ok = http.get("/v1/customers", headers={"Authorization": f"Bearer {token['access_token']}"})
    assert ok.status_code == 200 and ok.json()["items"] == []


def test_a_wrong_secret_is_a_permanent_error(connector: PartnerCenterConnector) -> None:
    simulator = PartnerCenterSimulator(start=T0, clients={"billbyte": "right"})
    with start_partner_center_sandbox(simulator=simulator) as pc:
        good = context(pc, client_id="billbyte", client_secret="right")
        assert connector.list_accounts(good) == []  # its token is now cached
        wrong = context(pc, client_id="billbyte", client_secret="wrong")
        with pytest.raises(VendorError) as caught:  # and never handed to another secret
            connector.list_accounts(wrong)
        assert caught.value.status == 401 and not caught.value.retryable


def test_an_expired_token_is_renewed(pc: SandboxServer, connector: PartnerCenterConnector) -> None:
    ctx = context(pc)
    connector.provision_customer(ctx, spec(), "k1")
    pc.app.revoke_tokens()  # every cached token is now refused with 401
    assert len(connector.list_accounts(ctx)) == 1


def test_partners_see_only_their_own_customers(
    pc: SandboxServer, connector: PartnerCenterConnector
) -> None:
    connector.provision_customer(context(pc), spec(), "k1")
    other = PartnerContext(
        "pa_other", "azure", "fabrikam-partner", pc.base_url, True, {}, LOCAL_SANDBOXES
    )
    assert connector.list_accounts(other) == []
    assert Api(pc, "fabrikam-partner").get("/v1/customers").json()["items"] == []


# --- provisioning --------------------------------------------------------------------------


def test_provision_azure_creates_the_tenant_and_an_azure_plan(
    pc: SandboxServer, connector: PartnerCenterConnector
) -> None:
    result = connector.provision_customer(context(pc), spec(), "cus_0001:azure")
    assert result.state == "active" and result.kind == "azure_tenant"
    assert result.portal_url == f"{pc.base_url}/portal/customers/{result.vendor_identifier}"
    api = Api(pc)
    assert result.vendor_identifier is not None
    customer = api.customer(result.vendor_identifier)
    assert customer["billingProfile"]["companyName"] == "Contoso GmbH"
    assert customer["companyProfile"]["domain"] == result.extra["domain"]
    assert customer["billingProfile"]["defaultAddress"]["country"] == "DE"
    (plan,) = api.subscriptions(result.vendor_identifier)
    assert plan["offerId"] == AZURE_PLAN_OFFER and plan["status"] == "active"
    assert plan["billingType"] == "usage"
    page = httpx.get(str(result.portal_url), timeout=5)
    assert page.status_code == 200 and "Contoso GmbH" in page.text

    # Repeating the call (after a timeout, say) changes nothing on the vendor.
    again = connector.provision_customer(context(pc), spec(), "cus_0001:azure")
    assert again.vendor_identifier == result.vendor_identifier
    assert len(api.subscriptions(result.vendor_identifier)) == 1
    assert len(api.get("/v1/customers").json()["items"]) == 1


def test_a_lost_answer_is_retried_into_the_same_customer(
    pc: SandboxServer, connector: PartnerCenterConnector
) -> None:
    """The vendor creates the customer but the answer never arrives: the retry carries the
    same MS-RequestId and gets the same customer, not a second one."""
    pc.app.faults.hang(1, seconds=3, path=r"^/v1/customers$", apply=True)
    impatient = PartnerCenterConnector(timeout=2.0)  # gives up before the hang ends
    with pytest.raises(VendorError) as caught:
        impatient.provision_customer(context(pc), spec(), "key")
    assert caught.value.retryable
    result = call_vendor(lambda: connector.provision_customer(context(pc), spec(), "key"))
    customers = Api(pc).get("/v1/customers").json()["items"]
    assert [c["id"] for c in customers] == [result.vendor_identifier]


def test_provision_microsoft365_orders_the_default_licence(
    pc: SandboxServer, connector: PartnerCenterConnector
) -> None:
    ctx = context(
        pc, "microsoft365", default_offer_id=DEFAULT_LICENCE_OFFER, default_offer_quantity=12
    )
    result = connector.provision_customer(ctx, spec(), "cus_0001:m365")
    assert result.kind == "microsoft_tenant"
    assert result.vendor_identifier is not None
    (licence,) = Api(pc).subscriptions(result.vendor_identifier)
    assert licence["offerId"] == DEFAULT_LICENCE_OFFER and licence["quantity"] == 12
    assert licence["billingType"] == "license"
    bare = connector.provision_customer(context(pc, "microsoft365"), spec(2, "Fabrikam"), "k2")
    assert bare.vendor_identifier is not None
    assert Api(pc).subscriptions(bare.vendor_identifier) == []
    polled = connector.poll_provisioning(ctx, str(result.reference))
    assert polled.state == "active" and polled.vendor_identifier == result.vendor_identifier


# --- service management --------------------------------------------------------------------


def test_suspend_and_resume_patch_every_subscription(
    pc: SandboxServer, connector: PartnerCenterConnector
) -> None:
    ctx = context(pc, default_offer_id=DEFAULT_LICENCE_OFFER)
    tenant = str(connector.provision_customer(ctx, spec(), "k").vendor_identifier)
    ctx365 = context(pc, "microsoft365", default_offer_id=DEFAULT_LICENCE_OFFER)
    connector.provision_customer(ctx365, spec(), "k365")  # same domain: same tenant
    api = Api(pc)
    assert {s["status"] for s in api.subscriptions(tenant)} == {"active"}
    assert len(api.subscriptions(tenant)) == 2

    assert connector.suspend(ctx, tenant).state == "suspended"
    assert {s["status"] for s in api.subscriptions(tenant)} == {"suspended"}
    assert connector.status(ctx, tenant) == "suspended"
    assert connector.suspend(ctx, tenant).message == "0 subscription(s) suspended"

    assert connector.resume(ctx, tenant).state == "active"
    assert {s["status"] for s in api.subscriptions(tenant)} == {"active"}
    assert connector.status(ctx, tenant) == "active"


def test_purge_cancels_licences_and_deletes_the_sandbox_customer(
    pc: SandboxServer, connector: PartnerCenterConnector
) -> None:
    ctx = context(pc)
    tenant = str(connector.provision_customer(ctx, spec(), "k").vendor_identifier)
    ctx365 = context(pc, "microsoft365", default_offer_id=DEFAULT_LICENCE_OFFER)
    connector.provision_customer(ctx365, spec(), "k365")
    connector.suspend(ctx, tenant)
    result = connector.purge(ctx, tenant)
    assert result.state == "purged" and "Azure plan" in str(result.message)
    assert Api(pc).get(f"/v1/customers/{tenant}").status_code == 404
    assert connector.status(ctx, tenant) == "closed"
    # The cancelled licence was refunded for its unused days (within 7 days of purchase).
    refunds = [i for i in pc.app.all_items(TENANT) if i.get("chargeType") == "cancelImmediate"]
    assert len(refunds) == 1 and refunds[0]["subtotal"] < 0


def test_an_azure_plan_cannot_be_cancelled(
    pc: SandboxServer, connector: PartnerCenterConnector
) -> None:
    tenant = str(connector.provision_customer(context(pc), spec(), "k").vendor_identifier)
    api = Api(pc)
    (plan,) = api.subscriptions(tenant)
    refused = api.http.patch(
        f"/v1/customers/{tenant}/subscriptions/{plan['id']}",
        headers=api.headers,
        json={"Status": "deleted"},
    )
    assert refused.status_code == 400 and refused.json()["code"] == 800038
    stale = api.http.patch(
        f"/v1/customers/{tenant}/subscriptions/{plan['id']}",
        headers=api.headers | {"If-Match": "not-the-etag"},
        json=plan | {"status": "suspended"},
    )
    assert stale.status_code == 412


# --- collection ----------------------------------------------------------------------------


def provisioned(pc: SandboxServer, connector: PartnerCenterConnector, n: int) -> list[str]:
    results = [
        connector.provision_customer(context(pc), spec(i, f"Customer {i}"), f"k{i}")
        for i in range(1, n + 1)
    ]
    return [str(r.vendor_identifier) for r in results]


@pytest.mark.storage
def test_collected_pages_import_with_exact_totals(
    pc: SandboxServer, connector: PartnerCenterConnector, runtime: Runtime, tmp_path: Path
) -> None:
    tenants = provisioned(pc, connector, 2)
    pc.tick(T0 + timedelta(days=6))
    collection = connector.collect_usage(context(pc), None, tmp_path / "work")
    (delivery,) = collection.deliveries
    assert delivery.format == "partner_center_usage"
    assert len(delivery.paths) > 1  # several pages of one fetch, imported together

    served = served_items(delivery.paths)
    simulated = [i for i in pc.app.all_items(TENANT) if "usageDate" in i]
    assert sorted(map(identity, served)) == sorted(map(identity, simulated))
    expected = total(served, "billingPreTaxTotal", "billingCurrency")
    assert expected == total(simulated, "billingPreTaxTotal", "billingCurrency")
    assert set(expected) == {"EUR"} and expected["EUR"] > 0

    importer = make_importer(runtime)
    imported = importer(*delivery.paths, vendor="azure", fmt=delivery.format)
    assert imported.status == "completed"
    assert imported.rows_accepted == len(served) and imported.duplicate_rows == 0
    assert stored(imported) == expected
    assert sorted(imported.unassigned_sub_accounts) == sorted(tenants)
    assert collection.data_until == "2026-11-09T00:00:00Z"

    # The next collection re-fetches the same unbilled period: an identical re-delivery.
    again = connector.collect_usage(context(pc), collection.watermark, tmp_path / "work2")
    (same,) = again.deliveries
    assert importer(*same.paths, vendor="azure", fmt=same.format).outcome == "unchanged"


@pytest.mark.storage
def test_licence_charges_are_collected_as_recon_line_items(
    pc: SandboxServer, connector: PartnerCenterConnector, runtime: Runtime, tmp_path: Path
) -> None:
    ctx = context(
        pc, "microsoft365", default_offer_id=DEFAULT_LICENCE_OFFER, default_offer_quantity=3
    )
    for i in range(1, 4):
        connector.provision_customer(ctx, spec(i, f"Customer {i}"), f"k{i}")
    pc.tick(T0 + timedelta(days=2))
    (delivery,) = connector.collect_usage(ctx, None, tmp_path).deliveries
    assert delivery.format == "partner_center_recon"
    served = served_items(delivery.paths)
    assert len(served) == 3 and {i["chargeType"] for i in served} == {"new"}
    imported = make_importer(runtime)(*delivery.paths, vendor="microsoft365", fmt=delivery.format)
    assert stored(imported) == total(served, "subtotal", "currency") == {"EUR": Decimal("50.40")}


@pytest.mark.storage
def test_billed_invoices_are_delivered_once_each(
    pc: SandboxServer, connector: PartnerCenterConnector, runtime: Runtime, tmp_path: Path
) -> None:
    provisioned(pc, connector, 1)
    ctx = context(pc)
    pc.tick(datetime(2026, 11, 20, tzinfo=UTC))
    first = connector.collect_usage(ctx, None, tmp_path / "1")
    assert json.loads(str(first.watermark))["invoices"] == []
    pc.tick(datetime(2026, 12, 4, tzinfo=UTC))  # November is invoiced on 3 December
    second = connector.collect_usage(ctx, first.watermark, tmp_path / "2")
    assert json.loads(str(second.watermark))["invoices"] == ["G000000001"]
    billed, unbilled = second.deliveries
    assert billed.paths[0].name.startswith("invoice-G000000001-usage")
    assert unbilled.paths[0].name.startswith("unbilled-usage-current")
    items = served_items(billed.paths)
    assert {i["invoiceNumber"] for i in items} == {"G000000001"}
    invoice = json.loads(Api(pc).get("/v1/invoices/G000000001").content, parse_float=Decimal)
    billed_total = total(items, "billingPreTaxTotal", "billingCurrency")
    assert invoice["totalCharges"] == billed_total["EUR"]
    imported = make_importer(runtime)(*billed.paths, vendor="azure", fmt=billed.format)
    assert stored(imported) == total(items, "billingPreTaxTotal", "billingCurrency")

    third = connector.collect_usage(ctx, second.watermark, tmp_path / "3")
    assert all(not p.name.startswith("invoice-") for d in third.deliveries for p in d.paths)


def test_paging_returns_every_item_exactly_once(
    pc: SandboxServer, connector: PartnerCenterConnector, tmp_path: Path
) -> None:
    provisioned(pc, connector, 3)
    pc.tick(T0 + timedelta(days=4))
    params = {"provider": "onetime", "invoicelineitemtype": "usagelineitems",
              "currencycode": "EUR", "period": "current", "size": PAGE}  # fmt: skip
    api = Api(pc)
    first = api.get("/v1/invoices/unbilled/lineitems", params=params)
    page = first.json()
    assert page["totalCount"] == PAGE == len(page["items"])
    token = page["links"]["next"]["headers"][0]
    assert token["key"] == "MS-ContinuationToken"
    assert "seekOperation=Next" in page["links"]["next"]["uri"]
    snapshot = [i for i in pc.app.all_items(TENANT) if "usageDate" in i]

    # More usage arrives while a client is paging: the pages keep to the first page's view.
    pc.tick(T0 + timedelta(days=6))
    rest: list[dict[str, Any]] = []
    following = page["links"]["next"]
    while following:
        response = api.get(
            "/v1" + following["uri"], headers={token["key"]: following["headers"][0]["value"]}
        )
        body = json.loads(response.content, parse_float=Decimal)
        rest.extend(body["items"])
        following = body["links"].get("next")
    paged = json.loads(first.content, parse_float=Decimal)["items"] + rest
    assert Counter(map(identity, paged)) == Counter(map(identity, snapshot))

    # The connector pages the same way: every item of the current view, once.
    collection = connector.collect_usage(context(pc), None, tmp_path)
    (delivery,) = collection.deliveries
    served = served_items(delivery.paths)
    now = [i for i in pc.app.all_items(TENANT) if "usageDate" in i]
    assert Counter(map(identity, served)) == Counter(map(identity, now))
    assert len(delivery.paths) == -(-len(now) // PAGE)
    assert len(now) > len(snapshot)


def test_a_seek_without_its_token_is_refused(pc: SandboxServer) -> None:
    params = {"provider": "onetime", "invoicelineitemtype": "usagelineitems",
              "currencycode": "EUR", "period": "current", "seekOperation": "Next"}  # fmt: skip
    api = Api(pc)
    assert api.get("/v1/invoices/unbilled/lineitems", params=params).status_code == 400
    bad = api.get(
        "/v1/invoices/unbilled/lineitems", params=params, headers={"MS-ContinuationToken": "x"}
    )
    assert bad.status_code == 400


# --- failures ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("plan", "status"),
    [
        (lambda f: f.throttle(1, retry_after=3), 429),
        (lambda f: f.fail(1, 500), 500),
        (lambda f: f.fail(1, 503), 503),
    ],
    ids=["throttled", "server-error", "unavailable"],
)
def test_throttling_and_server_errors_are_retryable(
    pc: SandboxServer, connector: PartnerCenterConnector, plan: Any, status: int
) -> None:
    ctx = context(pc)
    plan(pc.app.faults)
    with pytest.raises(VendorError) as caught:
        connector.list_accounts(ctx)
    assert caught.value.retryable and caught.value.status == status
    if status == 429:
        assert "retry after 3 s" in caught.value.message
    assert connector.list_accounts(ctx) == []  # the fault plan is used up


def test_a_hanging_vendor_times_out_as_retryable(pc: SandboxServer) -> None:
    connector = PartnerCenterConnector(timeout=10.0)
    connector.list_accounts(context(pc))  # token cached, under a patient timeout
    pc.app.faults.hang(1, seconds=3, path=r"^/v1/customers$")
    with pytest.raises(VendorError) as caught:
        connector.list_accounts(context(pc, timeout_seconds=0.5))
    assert caught.value.retryable and "timed out" in caught.value.message


def test_the_framework_retries_through_transient_failures(
    pc: SandboxServer, connector: PartnerCenterConnector, tmp_path: Path
) -> None:
    provisioned(pc, connector, 1)
    pc.tick(T0 + timedelta(days=3))
    pc.app.faults.throttle(1, retry_after=0, path="lineitems")
    pc.app.faults.fail(1, 502, path="lineitems")
    collection = call_vendor(lambda: connector.collect_usage(context(pc), None, tmp_path))
    assert isinstance(collection.deliveries[0], CollectedFile)
    assert [what for _, _, what in pc.app.faults.injected] == ["429", "502"]


def test_client_errors_are_permanent(pc: SandboxServer, connector: PartnerCenterConnector) -> None:
    with pytest.raises(VendorError) as caught:
        connector.suspend(context(pc), "00000000-0000-0000-0000-000000000001")
    assert caught.value.status == 404 and not caught.value.retryable
    bad = context(pc, line_items="invoices")
    with pytest.raises(VendorError) as config:
        connector.collect_usage(bad, None, Path("/nonexistent"))
    assert not config.value.retryable


def test_a_refused_connection_is_retryable(connector: PartnerCenterConnector) -> None:
    with start_partner_center_sandbox() as pc:
        ctx = context(pc)
    with pytest.raises(VendorError) as caught:
        connector.list_accounts(ctx)
    assert caught.value.retryable
