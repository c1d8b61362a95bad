"""Microsoft Partner Center connector (vendors ``azure`` and ``microsoft365``).

Speaks the documented Partner Center REST API (``api.partnercenter.microsoft.com/v1``) with
an Azure AD client-credentials token; ``ctx.endpoint_url`` points it at BillByte's simulator
(``billbyte.sandbox.partner_center``) instead. See the *Connector* section of
``docs/vendors/microsoft-partner-center.md``.

Credentials (``ctx.credentials``; all optional for a sandbox partner account):

| key | meaning | default |
|---|---|---|
| ``tenant_id`` | the partner's Azure AD tenant (token URL) | ``ctx.vendor_account_id`` (sandbox: ``sandbox-partner``) |
| ``client_id`` / ``client_secret`` | the partner's app registration | sandbox: ``billbyte-sandbox`` / ``sandbox`` |
| ``login_url`` | Azure AD authority | ``https://login.microsoftonline.com`` (sandbox: the endpoint) |
| ``currencies`` | billing currencies to collect (list or ``"EUR,USD"``) | ``EUR`` |
| ``line_items`` | ``usage``, ``recon`` or both | azure: ``usage`` (daily rated usage); microsoft365: ``recon`` |
| ``azure_plan_offer_id`` | the Azure plan catalog item | ``DZH318Z0BPS6:0001:DZH318Z0BML6`` |
| ``default_offer_id`` / ``default_offer_quantity`` | a licence ordered for new microsoft365 customers | none / 1 |
| ``domain_suffix`` | customer domains are ``<name><hash>.<suffix>`` | ``onmicrosoft.com`` |
| ``page_size`` | line items per page (Microsoft's maximum is 2000) | 2000 |
| ``timeout_seconds`` | per HTTP call | the connector's (30) |
"""  # noqa: E501

from __future__ import annotations

import hashlib
import json
import re
import uuid
from collections.abc import Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from billbyte.connectors import _http
from billbyte.connectors.base import (
    ActionResult,
    CollectedFile,
    Collection,
    CustomerSpec,
    PartnerContext,
    ProvisionResult,
    VendorError,
    checked_endpoint,
)
from billbyte.kit.outbound import OutboundPolicy

API = "https://api.partnercenter.microsoft.com"
LOGIN = "https://login.microsoftonline.com"
RESOURCE = "https://api.partnercenter.microsoft.com"
AZURE_PLAN_OFFER = "DZH318Z0BPS6:0001:DZH318Z0BML6"
AZURE_PLAN_PRODUCT = "DZH318Z0BPS6"
LAYOUTS = {  # our name → (invoicelineitemtype, usage reader)
    "usage": ("usagelineitems", "partner_center_usage"),
    "recon": ("billinglineitems", "partner_center_recon"),
}
_NAMESPACE = uuid.UUID("5b0c6f62-54a5-4c8e-9d0f-2f1b6a3c7e11")


def request_id(*parts: str) -> str:
    """A stable MS-RequestId for an idempotent call: Partner Center answers a repeated
    request id with the first result."""
    return str(uuid.uuid5(_NAMESPACE, "|".join(parts)))


def _error_detail(body: Any) -> Any:
    detail = body.get("description") or body.get("error_description") or body.get("error")
    return detail.get("message") if isinstance(detail, dict) else detail


def vendor_error_for(response: httpx.Response, what: str) -> VendorError:
    return _http.error_for(response, "Partner Center", what, _error_detail)


@dataclass
class _Settings:
    api: str
    token_url: str
    client_id: str
    client_secret: str
    currencies: list[str]
    layouts: list[str]
    page_size: int
    timeout: float
    sandbox: bool
    outbound: OutboundPolicy


class PartnerCenterConnector:
    vendor = "azure"  # registered for "azure" and "microsoft365"; ctx.vendor tells which

    def __init__(self, *, timeout: float = 30.0, page_size: int = 2000) -> None:
        self.timeout = timeout
        self.page_size = page_size
        self._tokens = _http.TokenCache()
        self._clients = _http.ClientPool(
            headers={"Accept": "application/json", "X-Locale": "en-US"}
        )

    # --- settings, token, HTTP -------------------------------------------------------------

    def _settings(self, ctx: PartnerContext) -> _Settings:
        creds = ctx.credentials or {}
        endpoint = (ctx.endpoint_url or "").rstrip("/")
        tenant = creds.get("tenant_id") or ctx.vendor_account_id
        if not tenant and ctx.sandbox:
            tenant = "sandbox-partner"
        client_id = creds.get("client_id") or ("billbyte-sandbox" if ctx.sandbox else None)
        secret = creds.get("client_secret") or ("sandbox" if ctx.sandbox else None)
        if not tenant or not client_id or not secret:
            raise VendorError(
                "Partner Center credentials need tenant_id (or the partner account's vendor "
                "account id), client_id and client_secret.",
                retryable=False,
            )
        if endpoint:
            checked_endpoint(ctx, endpoint, "endpoint_url")
        if creds.get("login_url"):
            checked_endpoint(ctx, str(creds["login_url"]), "credentials.login_url")
        login = str(creds.get("login_url") or endpoint or LOGIN).rstrip("/")
        currencies = creds.get("currencies") or ["EUR"]
        if isinstance(currencies, str):
            currencies = [c for c in re.split(r"[,\s]+", currencies) if c]
        layouts = creds.get("line_items") or (["usage"] if ctx.vendor == "azure" else ["recon"])
        if isinstance(layouts, str):
            layouts = [c for c in re.split(r"[,\s]+", layouts) if c]
        unknown = [x for x in layouts if x not in LAYOUTS]
        if unknown:
            raise VendorError(f"line_items: unknown kind(s) {unknown}", retryable=False)
        return _Settings(
            api=endpoint or API,
            token_url=f"{login}/{tenant}/oauth2/token",
            client_id=str(client_id),
            client_secret=str(secret),
            currencies=[str(c).upper() for c in currencies],
            layouts=list(layouts),
            page_size=int(creds.get("page_size") or self.page_size),
            timeout=float(creds.get("timeout_seconds") or self.timeout),
            sandbox=ctx.sandbox,
            outbound=ctx.outbound,
        )

    def _token(self, client: httpx.Client, settings: _Settings, *, fresh: bool = False) -> str:
        secret = hashlib.sha256(settings.client_secret.encode()).hexdigest()
        key = (settings.token_url, settings.client_id, secret)
        return self._tokens.get(key, lambda: self._new_token(client, settings), fresh=fresh)

    def _new_token(self, client: httpx.Client, settings: _Settings) -> tuple[str, float]:
        """Azure AD client credentials."""
        response = _http.send(
            client,
            "POST",
            settings.token_url,
            "Partner Center token",
            data={
                "grant_type": "client_credentials",
                "client_id": settings.client_id,
                "client_secret": settings.client_secret,
                "resource": RESOURCE,
            },
        )
        if response.status_code != 200:
            raise vendor_error_for(response, "token")
        return _http.access_token_of(response, "Partner Center token")

    def _client(self, settings: _Settings) -> AbstractContextManager[httpx.Client]:
        """A pooled client per endpoint, timeout and outbound policy."""
        return self._clients.client(
            (settings.api, settings.timeout, settings.outbound),
            settings.outbound,
            settings.timeout,
            base_url=settings.api,
        )

    def _call(
        self,
        client: httpx.Client,
        settings: _Settings,
        method: str,
        path: str,
        what: str,
        *,
        params: dict[str, Any] | None = None,
        json_body: Any = None,
        headers: dict[str, str] | None = None,
        ok: tuple[int, ...] = (200, 201),
    ) -> httpx.Response:
        """One API call with the cached token (renewed once on 401)."""
        response = _http.send(
            client,
            method,
            path,
            f"Partner Center {what}",
            params=params,
            json=json_body,
            headers={
                "MS-CorrelationId": str(uuid.uuid4()),
                "MS-RequestId": str(uuid.uuid4()),
                **(headers or {}),
            },
            auth=_http.RefreshingBearer(lambda fresh: self._token(client, settings, fresh=fresh)),
        )
        if response.status_code not in ok:
            raise vendor_error_for(response, what)
        return response

    # --- provisioning ------------------------------------------------------------------------

    def _domain(self, spec: CustomerSpec, ctx: PartnerContext) -> str:
        suffix = str((ctx.credentials or {}).get("domain_suffix") or "onmicrosoft.com")
        stem = re.sub(r"[^a-z0-9]", "", spec.name.lower())[:20] or "customer"
        digest = hashlib.sha256(spec.customer_id.encode()).hexdigest()[:8]
        return f"{stem}{digest}.{suffix}"

    def _portal_url(
        self, settings: _Settings, ctx: PartnerContext, customer: dict[str, Any]
    ) -> str:
        tenant = str(customer["id"])
        if settings.sandbox:
            return f"{settings.api}/portal/customers/{tenant}"
        if ctx.vendor == "azure":
            domain = customer.get("companyProfile", {}).get("domain") or tenant
            return f"https://portal.azure.com/#@{domain}"
        return (
            "https://admin.microsoft.com/Partner/BeginClientSession.aspx"
            f"?CTID={tenant}&CSDEST=o365admincenter"
        )

    def provision_customer(
        self, ctx: PartnerContext, spec: CustomerSpec, idempotency_key: str
    ) -> ProvisionResult:
        """Create the customer tenant, then (azure) its Azure plan or (microsoft365) the
        configured default licence. Safe to repeat: the same MS-RequestId and the same domain
        give the same customer, and an existing subscription for the offer is reused."""
        settings = self._settings(ctx)
        creds = ctx.credentials or {}
        body = {
            "CompanyProfile": {"Domain": self._domain(spec, ctx)},
            "BillingProfile": {
                "Culture": str(creds.get("culture") or "en-US"),
                "Email": f"billing@{spec.email_domain}",
                "Language": str(creds.get("language") or "en"),
                "CompanyName": spec.name,
                "DefaultAddress": {
                    "FirstName": "Billing",
                    "LastName": "Contact",
                    "AddressLine1": str(creds.get("address_line1") or "Unknown"),
                    "City": str(creds.get("city") or "Unknown"),
                    "PostalCode": str(creds.get("postal_code") or "00000"),
                    "Country": spec.country or str(creds.get("country") or "US"),
                },
            },
        }
        with self._client(settings) as client:
            customer = self._call(
                client,
                settings,
                "POST",
                "/v1/customers",
                "create customer",
                json_body=body,
                headers={"MS-RequestId": request_id(idempotency_key, "customer")},
            ).json()
            tenant = str(customer.get("companyProfile", {}).get("tenantId") or customer["id"])
            offer, quantity = None, 1
            if ctx.vendor == "azure":
                offer = str(creds.get("azure_plan_offer_id") or AZURE_PLAN_OFFER)
            elif creds.get("default_offer_id"):
                offer = str(creds["default_offer_id"])
                quantity = int(creds.get("default_offer_quantity") or 1)
            subscriptions: list[dict[str, Any]] = []
            if offer:
                subscriptions = self._ensure_subscription(
                    client, settings, tenant, offer, quantity, idempotency_key
                )
        return ProvisionResult(
            state="active",
            vendor_identifier=tenant,
            kind="azure_tenant" if ctx.vendor == "azure" else "microsoft_tenant",
            portal_url=self._portal_url(settings, ctx, customer),
            reference=tenant,
            extra={
                "domain": customer.get("companyProfile", {}).get("domain"),
                "subscriptions": [
                    {"id": s["id"], "offer_id": s.get("offerId"), "status": s.get("status")}
                    for s in subscriptions
                ],
                "admin_user": (customer.get("userCredentials") or {}).get("userName"),
            },
        )

    def _ensure_subscription(
        self,
        client: httpx.Client,
        settings: _Settings,
        tenant: str,
        offer: str,
        quantity: int,
        idempotency_key: str,
    ) -> list[dict[str, Any]]:
        existing = self._subscriptions(client, settings, tenant)
        if not any(
            str(s.get("offerId", "")).upper() == offer.upper() and s.get("status") != "deleted"
            for s in existing
        ):
            self._call(
                client,
                settings,
                "POST",
                f"/v1/customers/{tenant}/orders",
                "create order",
                json_body={
                    "ReferenceCustomerId": tenant,
                    "BillingCycle": "monthly",
                    "LineItems": [{"LineItemNumber": 0, "OfferId": offer, "Quantity": quantity}],
                },
                headers={"MS-RequestId": request_id(idempotency_key, "order", offer)},
            )
            existing = self._subscriptions(client, settings, tenant)
        return existing

    def poll_provisioning(self, ctx: PartnerContext, reference: str) -> ProvisionResult:
        """Customer creation and orders are synchronous; this re-reads the customer."""
        settings = self._settings(ctx)
        with self._client(settings) as client:
            customer = self._call(
                client, settings, "GET", f"/v1/customers/{reference}", "get customer"
            ).json()
        return ProvisionResult(
            state="active",
            vendor_identifier=str(customer["id"]),
            kind="azure_tenant" if ctx.vendor == "azure" else "microsoft_tenant",
            portal_url=self._portal_url(settings, ctx, customer),
        )

    def list_accounts(self, ctx: PartnerContext) -> list[dict[str, Any]]:
        settings = self._settings(ctx)
        with self._client(settings) as client:
            found = []
            for page in self._pages(client, settings, "/v1/customers", {"size": 500}, "customers"):
                for customer in page.get("items", []):
                    found.append(
                        {
                            "vendor_identifier": customer["id"],
                            "name": customer.get("billingProfile", {}).get("companyName")
                            or customer.get("companyProfile", {}).get("companyName"),
                            "domain": customer.get("companyProfile", {}).get("domain"),
                            "kind": "azure_tenant" if ctx.vendor == "azure" else "microsoft_tenant",
                        }
                    )
        return found

    # --- service management ------------------------------------------------------------------

    def _subscriptions(
        self, client: httpx.Client, settings: _Settings, tenant: str
    ) -> list[dict[str, Any]]:
        response = self._call(
            client, settings, "GET", f"/v1/customers/{tenant}/subscriptions", "subscriptions"
        )
        return list(response.json().get("items", []))

    def _set_status(
        self,
        client: httpx.Client,
        settings: _Settings,
        tenant: str,
        sub: dict[str, Any],
        status: str,
    ) -> None:
        """PATCH the full subscription resource with the new status (as documented), with
        its etag as If-Match."""
        body = {k: v for k, v in sub.items() if k != "links"} | {"status": status}
        etag = (sub.get("attributes") or {}).get("etag")
        self._call(
            client,
            settings,
            "PATCH",
            f"/v1/customers/{tenant}/subscriptions/{sub['id']}",
            f"set subscription {sub['id']} {status}",
            json_body=body,
            headers={"If-Match": str(etag)} if etag else None,
        )

    def _transition(self, ctx: PartnerContext, tenant: str, source: str, target: str) -> int:
        settings = self._settings(ctx)
        changed = 0
        with self._client(settings) as client:
            for sub in self._subscriptions(client, settings, tenant):
                if str(sub.get("status", "")).lower() == source:
                    self._set_status(client, settings, tenant, sub, target)
                    changed += 1
        return changed

    def suspend(self, ctx: PartnerContext, vendor_identifier: str) -> ActionResult:
        count = self._transition(ctx, vendor_identifier, "active", "suspended")
        return ActionResult(state="suspended", message=f"{count} subscription(s) suspended")

    def resume(self, ctx: PartnerContext, vendor_identifier: str) -> ActionResult:
        count = self._transition(ctx, vendor_identifier, "suspended", "active")
        return ActionResult(state="active", message=f"{count} subscription(s) reactivated")

    def purge(self, ctx: PartnerContext, vendor_identifier: str) -> ActionResult:
        """Cancel every licence subscription (status ``deleted``) and leave Azure plans
        suspended — Microsoft offers no cancellation of an Azure plan. In the sandbox the
        customer is then deleted (Partner Center allows that for integration-sandbox
        customers only)."""
        settings = self._settings(ctx)
        notes = []
        with self._client(settings) as client:
            for sub in self._subscriptions(client, settings, vendor_identifier):
                status = str(sub.get("status", "")).lower()
                azure_plan = str(sub.get("offerId", "")).upper().startswith(AZURE_PLAN_PRODUCT)
                if status == "deleted":
                    continue
                if azure_plan:
                    if status != "suspended":
                        self._set_status(client, settings, vendor_identifier, sub, "suspended")
                    notes.append(f"Azure plan {sub['id']} left suspended")
                else:
                    self._set_status(client, settings, vendor_identifier, sub, "deleted")
                    notes.append(f"subscription {sub['id']} cancelled")
            if settings.sandbox:
                self._call(
                    client,
                    settings,
                    "DELETE",
                    f"/v1/customers/{vendor_identifier}",
                    "delete customer",
                    ok=(200, 204, 404),
                )
                notes.append("sandbox customer deleted")
        return ActionResult(state="purged", message="; ".join(notes) or "nothing to cancel")

    def status(self, ctx: PartnerContext, vendor_identifier: str) -> str:
        """``closed`` (customer gone or every subscription cancelled), ``active`` (some
        subscription active, or none at all), else ``suspended``."""
        settings = self._settings(ctx)
        with self._client(settings) as client:
            try:
                subs = self._subscriptions(client, settings, vendor_identifier)
            except VendorError as exc:
                if exc.status == 404:
                    return "closed"
                raise
        states = {str(s.get("status", "")).lower() for s in subs}
        if not states:
            return "active"
        if "active" in states:
            return "active"
        if "suspended" in states:
            return "suspended"
        return "closed"

    # --- collection ------------------------------------------------------------------------

    def _pages(
        self,
        client: httpx.Client,
        settings: _Settings,
        path: str,
        params: dict[str, Any],
        what: str,
    ) -> Iterator[dict[str, Any]]:
        """Every page of a seek-paged collection, following ``links.next`` with its
        ``MS-ContinuationToken`` header. Yields the parsed page (raw bytes in ``_raw``)."""
        response = self._call(client, settings, "GET", path, what, params=params)
        while True:
            page = json.loads(response.content, parse_float=str, parse_int=str)
            page["_raw"] = response.content
            yield page
            following = (page.get("links") or {}).get("next")
            if not following:
                return
            headers = {h["key"]: h["value"] for h in following.get("headers") or []}
            uri = str(following["uri"])
            if not uri.startswith("/v1/"):
                uri = "/v1" + uri
            response = self._call(client, settings, "GET", uri, what, headers=headers)

    def _fetch(
        self,
        client: httpx.Client,
        settings: _Settings,
        path: str,
        params: dict[str, Any],
        work_dir: Path,
        stem: str,
        what: str,
    ) -> tuple[list[Path], list[dict[str, Any]]]:
        """All pages of one fetch written as they were served; returns the files and items."""
        paths: list[Path] = []
        items: list[dict[str, Any]] = []
        for number, page in enumerate(self._pages(client, settings, path, params, what), 1):
            page_items = page.get("items") or []
            if not page_items:
                continue
            target = work_dir / f"{stem}-page{number:04d}.json"
            target.write_bytes(page["_raw"])
            paths.append(target)
            items.extend(page_items)
        return paths, items

    def collect_usage(
        self, ctx: PartnerContext, watermark: str | None, work_dir: Path
    ) -> Collection:
        """Billed invoices not delivered yet (one delivery per invoice and layout), then the
        unbilled line items of the previous and current billing period (one delivery per
        period, currency and layout: each re-fetch replaces the unbilled slice). Each
        delivery holds every page of its fetch. Watermark: the fetch time and the invoice
        ids already delivered."""
        settings = self._settings(ctx)
        state = json.loads(watermark) if watermark else {}
        delivered = set(state.get("invoices") or [])
        work_dir.mkdir(parents=True, exist_ok=True)
        deliveries: list[CollectedFile] = []
        newest: str | None = None
        fetched_at = datetime.now(UTC).isoformat().replace("+00:00", "Z")
        with self._client(settings) as client:
            invoices = self._call(client, settings, "GET", "/v1/invoices", "invoices").json()
            ordered = sorted(
                invoices.get("items") or [],
                key=lambda i: (str(i.get("billingPeriodStartDate")), str(i.get("id"))),
            )
            for invoice in ordered:
                invoice_id = str(invoice["id"])
                currency = str(invoice.get("currencyCode") or settings.currencies[0]).upper()
                if invoice_id in delivered or currency not in settings.currencies:
                    continue
                for layout in settings.layouts:
                    line_type, reader = LAYOUTS[layout]
                    paths, items = self._fetch(
                        client,
                        settings,
                        f"/v1/invoices/{invoice_id}/lineitems",
                        {"provider": "onetime", "invoicelineitemtype": line_type,
                         "currencycode": currency, "size": settings.page_size},
                        work_dir,
                        f"invoice-{_safe(invoice_id)}-{layout}",
                        f"invoice {invoice_id} line items",
                    )  # fmt: skip
                    if paths:
                        deliveries.append(CollectedFile(paths=paths, format=reader))
                        newest = _newest(newest, items)
                delivered.add(invoice_id)
            for currency in settings.currencies:
                for layout in settings.layouts:
                    line_type, reader = LAYOUTS[layout]
                    for period in ("previous", "current"):
                        paths, items = self._fetch(
                            client,
                            settings,
                            "/v1/invoices/unbilled/lineitems",
                            {"provider": "onetime", "invoicelineitemtype": line_type,
                             "currencycode": currency, "period": period,
                             "size": settings.page_size},
                            work_dir,
                            f"unbilled-{layout}-{period}-{currency}",
                            f"unbilled {layout} line items",
                        )  # fmt: skip
                        if paths:
                            deliveries.append(CollectedFile(paths=paths, format=reader))
                            newest = _newest(newest, items)
        return Collection(
            deliveries=deliveries,
            watermark=json.dumps({"fetched_at": fetched_at, "invoices": sorted(delivered)}),
            data_until=newest,
        )


def _safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", text)


def _newest(current: str | None, items: list[dict[str, Any]]) -> str | None:
    """The end of the newest usage day (daily rated usage) or charge start (recon), UTC."""
    for item in items:
        raw = item.get("usageDate") or item.get("chargeStartDate")
        if not raw:
            continue
        try:
            moment = datetime.fromisoformat(str(raw).replace("Z", "+00:00"))
        except ValueError:
            continue
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        if item.get("usageDate"):  # a usage day is complete at the next midnight
            moment = moment.replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=1)
        text = moment.astimezone(UTC).isoformat().replace("+00:00", "Z")
        if current is None or text > current:
            current = text
    return current
