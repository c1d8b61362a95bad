"""Google Cloud Channel connector (vendor ``gcp``).

Speaks the documented Cloud Channel API v1 (``cloudchannel.googleapis.com``: customers,
entitlements, long-running operations), the Cloud Billing API (billing subaccount projects)
and Google's OAuth 2.0 service-account flow (a JWT signed RS256, exchanged at the token URI).
``ctx.endpoint_url`` points everything at BillByte's simulator
(``billbyte.sandbox.google_channel``). See the *Connector* section of
``docs/vendors/google-cloud.md``.

Credentials (``ctx.credentials``; all optional for a sandbox partner account):

| key | meaning | default |
|---|---|---|
| ``account_id`` | the reseller's Channel account (``C0…``) | ``ctx.vendor_account_id`` (sandbox: ``C0sandbox``) |
| ``client_email``, ``private_key``, ``token_uri`` | the service account key (JSON key file fields; also accepted nested under ``service_account``) | sandbox: a throw-away key |
| ``subject`` | the reseller admin the service account acts for (domain-wide delegation) | none |
| ``access_token`` | a ready bearer token instead of the key | none |
| ``offer_id`` | the Google Cloud offer to entitle customers to | sandbox: ``gcp-standard`` |
| ``billing_export_url`` | where an invoice month of the detailed export is served as JSON lines; ``{month}`` is replaced by ``YYYYMM`` | sandbox: the simulator's export |
| ``lro_wait_seconds`` | how long a call waits for a long-running operation before answering ``pending`` | 2 |
| ``timeout_seconds`` | per HTTP call | the connector's (30) |
"""  # noqa: E501

from __future__ import annotations

import base64
import functools
import hashlib
import json
import re
import threading
import time
import uuid
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

import httpx
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

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
from billbyte.kit.outbound import OutboundPolicy, refusal

API = "https://cloudchannel.googleapis.com"
BILLING_API = "https://cloudbilling.googleapis.com"
TOKEN_URI = "https://oauth2.googleapis.com/token"
SCOPE = "https://www.googleapis.com/auth/apps.order https://www.googleapis.com/auth/cloud-billing"
SANDBOX_ACCOUNT = "C0sandbox"
SANDBOX_OFFER = "gcp-standard"
SANDBOX_CLIENT_EMAIL = "billbyte@sandbox.iam.gserviceaccount.com"
CLOSE_DAYS = 5  # an invoice month is re-collected this many days after it ends
_NAMESPACE = uuid.UUID("0d5e3f43-7a53-4c59-bb8b-1c4d3a0e6f21")


def _error_detail(body: Any) -> Any:
    error = body.get("error")
    detail = error.get("message") if isinstance(error, dict) else error
    if isinstance(error, dict) and error.get("status"):
        detail = f"{error['status']}: {detail}"
    return detail


def vendor_error_for(response: httpx.Response, what: str) -> VendorError:
    return _http.error_for(response, "Cloud Channel", what, _error_detail)


@dataclass
class _Settings:
    api: str
    billing_api: str
    account: str
    token_uri: str
    client_email: str
    private_key: str | None
    subject: str | None
    access_token: str | None
    offer: str
    export_url: str | None
    lro_wait: float
    timeout: float
    sandbox: bool
    outbound: OutboundPolicy


@functools.cache
def _sandbox_key() -> rsa.RSAPrivateKey:
    """A throw-away signing key for sandbox accounts without a service account key."""
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class CloudChannelConnector:
    vendor = "gcp"

    def __init__(self, *, timeout: float = 30.0, lro_wait: float = 2.0) -> None:
        self.timeout = timeout
        self.lro_wait = lro_wait
        self._tokens = _http.TokenCache()
        self._clients = _http.ClientPool(headers={"Accept": "application/json"})
        self._subaccounts: dict[str, str] = {}  # billing subaccount id → entitlement name
        self._lock = threading.Lock()

    # --- settings, token, HTTP -------------------------------------------------------------

    def _settings(self, ctx: PartnerContext) -> _Settings:
        creds = dict(ctx.credentials or {})
        creds |= dict(creds.get("service_account") or {})
        endpoint = (ctx.endpoint_url or "").rstrip("/")
        account = str(
            creds.get("account_id")
            or ctx.vendor_account_id
            or (SANDBOX_ACCOUNT if ctx.sandbox else "")
        ).removeprefix("accounts/")
        if not account:
            raise VendorError("Cloud Channel needs the reseller account id.", retryable=False)
        has_key = creds.get("private_key") and creds.get("client_email")
        if not (has_key or creds.get("access_token") or ctx.sandbox):
            raise VendorError(
                "Cloud Channel credentials need a service account key (client_email, "
                "private_key) or an access_token.",
                retryable=False,
            )
        offer = str(creds.get("offer_id") or (SANDBOX_OFFER if ctx.sandbox else ""))
        if not offer:
            raise VendorError(
                "Cloud Channel needs offer_id (the Google Cloud offer).", retryable=False
            )
        if endpoint:
            checked_endpoint(ctx, endpoint, "endpoint_url")
        if creds.get("token_uri"):
            checked_endpoint(ctx, str(creds["token_uri"]), "credentials.token_uri")
        export_url = creds.get("billing_export_url")
        if export_url:
            # The MSP's own export host, never Google's: the guard applies, the official-host
            # rule does not (the MSP's own token is what is sent there).
            reason = refusal(str(export_url), ctx.outbound, resolve_name=False)
            if reason is not None:
                raise VendorError(
                    f"credentials.billing_export_url cannot be used: {reason}.", retryable=False
                )
        if not export_url and endpoint:
            export_url = f"{endpoint}/v1/accounts/{account}/billingExport?invoiceMonth={{month}}"
        token_uri = f"{endpoint}/token" if endpoint else TOKEN_URI
        return _Settings(
            api=endpoint or API,
            billing_api=endpoint or BILLING_API,
            account=account,
            token_uri=str(creds.get("token_uri") or token_uri),
            client_email=str(creds.get("client_email") or SANDBOX_CLIENT_EMAIL),
            private_key=creds.get("private_key"),
            subject=creds.get("subject"),
            access_token=creds.get("access_token"),
            offer=offer if offer.startswith("accounts/") else f"accounts/{account}/offers/{offer}",
            export_url=export_url,
            lro_wait=float(creds.get("lro_wait_seconds") or self.lro_wait),
            timeout=float(creds.get("timeout_seconds") or self.timeout),
            sandbox=ctx.sandbox,
            outbound=ctx.outbound,
        )  # fmt: skip

    def _signing_key(self, settings: _Settings) -> rsa.RSAPrivateKey:
        if settings.private_key:
            key = serialization.load_pem_private_key(settings.private_key.encode(), password=None)
            if not isinstance(key, rsa.RSAPrivateKey):
                raise VendorError("The service account key is not an RSA key.", retryable=False)
            return key
        return _sandbox_key()  # the simulator does not check signatures

    def _assertion(self, settings: _Settings) -> str:
        now = int(time.time())
        claims = {"iss": settings.client_email, "scope": SCOPE, "aud": settings.token_uri,
                  "iat": now, "exp": now + 3600}  # fmt: skip
        if settings.subject:
            claims["sub"] = settings.subject
        header = _b64(json.dumps({"alg": "RS256", "typ": "JWT"}).encode())
        payload = _b64(json.dumps(claims).encode())
        signing_input = f"{header}.{payload}".encode()
        signature = self._signing_key(settings).sign(
            signing_input, padding.PKCS1v15(), hashes.SHA256()
        )
        return f"{header}.{payload}.{_b64(signature)}"

    def _token(self, client: httpx.Client, settings: _Settings, *, fresh: bool = False) -> str:
        if settings.access_token:
            return settings.access_token
        # The key material is part of the cache key (another key or subject, another token).
        material = f"{settings.private_key or 'sandbox'}|{settings.subject or ''}"
        key = (
            settings.token_uri,
            settings.client_email,
            hashlib.sha256(material.encode()).hexdigest(),
        )
        return self._tokens.get(key, lambda: self._new_token(client, settings), fresh=fresh)

    def _new_token(self, client: httpx.Client, settings: _Settings) -> tuple[str, float]:
        """The service account's signed assertion exchanged at the token URI."""
        response = _http.send(
            client,
            "POST",
            settings.token_uri,
            "Google token",
            data={
                "grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer",
                "assertion": self._assertion(settings),
            },
        )
        if response.status_code != 200:
            raise vendor_error_for(response, "token")
        return _http.access_token_of(response, "Google token")

    def _client(self, settings: _Settings) -> AbstractContextManager[httpx.Client]:
        """A pooled client per timeout and outbound policy."""
        return self._clients.client(
            (settings.timeout, settings.outbound), settings.outbound, settings.timeout
        )

    def _call(
        self,
        client: httpx.Client,
        settings: _Settings,
        method: str,
        url: str,
        what: str,
        *,
        params: dict[str, Any] | None = None,
        json_body: Any = None,
        ok: tuple[int, ...] = (200,),
    ) -> httpx.Response:
        """One API call with the cached token (renewed once on 401, unless it was given)."""
        if url.startswith("/"):
            url = settings.api + url
        response = _http.send(
            client,
            method,
            url,
            f"Cloud Channel {what}",
            params=params,
            json=json_body,
            auth=_http.RefreshingBearer(
                lambda fresh: self._token(client, settings, fresh=fresh),
                renewable=not settings.access_token,
            ),
        )
        if response.status_code not in ok:
            raise vendor_error_for(response, what)
        return response

    def _list(
        self, client: httpx.Client, settings: _Settings, url: str, key: str, what: str
    ) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        token = None
        while True:
            params = {"pageSize": 200} | ({"pageToken": token} if token else {})
            body = self._call(client, settings, "GET", url, what, params=params).json()
            found.extend(body.get(key) or [])
            token = body.get("nextPageToken")
            if not token:
                return found

    # --- long-running operations ---------------------------------------------------------

    def _wait(
        self, client: httpx.Client, settings: _Settings, op: dict[str, Any]
    ) -> dict[str, Any]:
        """Poll operations.get until done or ``lro_wait`` has passed; the last state."""
        deadline = time.monotonic() + settings.lro_wait
        delay = 0.05
        while not op.get("done"):
            if time.monotonic() >= deadline:
                break
            op = self._call(client, settings, "GET", f"/v1/{op['name']}", "operation").json()
            if not op.get("done"):
                time.sleep(min(delay, max(deadline - time.monotonic(), 0)))
                delay = min(delay * 2, 0.5)
        if op.get("done") and op.get("error"):
            error = op["error"]
            raise VendorError(
                f"Cloud Channel operation {op['name']} failed: {error.get('message')}",
                retryable=error.get("code") in (4, 8, 10, 13, 14),
            )
        return op

    # --- provisioning --------------------------------------------------------------------

    def _customer(
        self, client: httpx.Client, settings: _Settings, spec: CustomerSpec
    ) -> dict[str, Any]:
        """customers.create; on ALREADY_EXISTS (a retry, or the domain was taken by us
        earlier) the existing customer of that domain."""
        domain = spec.email_domain.lower()
        body = {
            "orgDisplayName": spec.name,
            "orgPostalAddress": {"regionCode": spec.country or "US", "organization": spec.name},
            "primaryContactInfo": {"firstName": "Billing", "lastName": "Contact",
                                   "email": f"billing@{domain}"},
            "domain": domain,
            "languageCode": "en-US",
            "correlationId": spec.customer_id,
        }  # fmt: skip
        url = f"/v1/accounts/{settings.account}/customers"
        response = self._call(
            client, settings, "POST", url, "create customer", json_body=body, ok=(200, 409)
        )
        if response.status_code == 200:
            return dict(response.json())
        for customer in self._list(client, settings, url, "customers", "list customers"):
            if str(customer.get("domain", "")).lower() == domain:
                return customer
        raise vendor_error_for(response, "create customer")

    def _active_result(
        self, settings: _Settings, customer: str, entitlement: dict[str, Any]
    ) -> ProvisionResult:
        billing_id = str(entitlement["provisionedService"]["provisioningId"])
        with self._lock:
            self._subaccounts[billing_id] = str(entitlement["name"])
        return ProvisionResult(
            state="active",
            vendor_identifier=billing_id,
            kind="gcp_billing_subaccount",
            portal_url=self._portal_url(settings, customer, billing_id),
            extra={"customer": customer, "entitlement": entitlement["name"],
                   "billing_account": f"billingAccounts/{billing_id}"},
        )  # fmt: skip

    def _portal_url(self, settings: _Settings, customer: str, billing_id: str) -> str:
        if settings.sandbox:
            _, account, _, customer_id = customer.split("/")[:4]
            return f"{settings.api}/portal/{account}/customers/{customer_id}"
        return f"https://console.cloud.google.com/billing/{billing_id}"

    def provision_customer(
        self, ctx: PartnerContext, spec: CustomerSpec, idempotency_key: str
    ) -> ProvisionResult:
        """customers.create, then entitlements.create for the Google Cloud offer (a
        long-running operation; requestId derived from the idempotency key). Waits briefly;
        ``pending`` with the operation name as reference if it is not done yet."""
        settings = self._settings(ctx)
        with self._client(settings) as client:
            customer = self._customer(client, settings, spec)
            name = str(customer["name"])
            for entitlement in self._list(
                client, settings, f"/v1/{name}/entitlements", "entitlements", "entitlements"
            ):
                if entitlement.get("offer") == settings.offer:
                    return self._active_result(settings, name, entitlement)
            op = self._call(
                client,
                settings,
                "POST",
                f"/v1/{name}/entitlements",
                "create entitlement",
                json_body={
                    "entitlement": {
                        "offer": settings.offer,
                        "parameters": [
                            {"name": "display_name", "value": {"stringValue": spec.name}}
                        ],
                        "purchaseOrderId": spec.external_id,
                    },
                    "requestId": str(uuid.uuid5(_NAMESPACE, f"{idempotency_key}|entitlement")),
                },
            ).json()
            op = self._wait(client, settings, op)
        if not op.get("done"):
            return ProvisionResult(state="pending", reference=str(op["name"]))
        return self._active_result(settings, name, op["response"])

    def poll_provisioning(self, ctx: PartnerContext, reference: str) -> ProvisionResult:
        settings = self._settings(ctx)
        with self._client(settings) as client:
            try:
                op = self._wait(
                    client,
                    settings,
                    self._call(client, settings, "GET", f"/v1/{reference}", "operation").json(),
                )
            except VendorError as exc:
                if exc.retryable:
                    raise
                return ProvisionResult(state="failed", reference=reference, message=exc.message)
        if not op.get("done"):
            return ProvisionResult(state="pending", reference=reference)
        entitlement = op["response"]
        customer = str(entitlement["name"]).split("/entitlements/")[0]
        return self._active_result(settings, customer, entitlement)

    def list_accounts(self, ctx: PartnerContext) -> list[dict[str, Any]]:
        """Every customer's billing subaccount (kind ``gcp_billing_subaccount``) and the
        projects billed to it (kind ``gcp_project``: the ``sub_account_id`` of usage lines)."""
        settings = self._settings(ctx)
        found: list[dict[str, Any]] = []
        with self._client(settings) as client:
            customers = self._list(
                client, settings, f"/v1/accounts/{settings.account}/customers", "customers",
                "list customers",
            )  # fmt: skip
            for customer in customers:
                for entitlement in self._list(
                    client, settings, f"/v1/{customer['name']}/entitlements", "entitlements",
                    "entitlements",
                ):  # fmt: skip
                    billing_id = (entitlement.get("provisionedService") or {}).get("provisioningId")
                    if not billing_id:
                        continue
                    found.append(
                        {"vendor_identifier": billing_id, "kind": "gcp_billing_subaccount",
                         "name": customer.get("orgDisplayName"), "customer": customer["name"],
                         "entitlement": entitlement["name"],
                         "state": entitlement.get("provisioningState")}
                    )  # fmt: skip
                    projects = self._list(
                        client, settings,
                        f"{settings.billing_api}/v1/billingAccounts/{billing_id}/projects",
                        "projectBillingInfo", "billing projects",
                    )  # fmt: skip
                    for project in projects:
                        found.append(
                            {"vendor_identifier": project["projectId"], "kind": "gcp_project",
                             "name": project["projectId"], "billing_account": billing_id,
                             "customer": customer["name"]}
                        )  # fmt: skip
        return found

    # --- service management --------------------------------------------------------------

    def _entitlement(
        self, client: httpx.Client, settings: _Settings, identifier: str
    ) -> dict[str, Any] | None:
        """The entitlement behind a billing subaccount id (or a customer / entitlement
        resource name); None when it no longer exists."""
        if "/entitlements/" in identifier:
            name = identifier
        elif identifier.startswith("accounts/"):
            items = self._list(
                client, settings, f"/v1/{identifier}/entitlements", "entitlements", "entitlements"
            )
            matching = [e for e in items if e.get("offer") == settings.offer] or items
            return matching[0] if matching else None
        else:
            with self._lock:
                name = self._subaccounts.get(identifier, "")
            if not name:
                for found in self._all_entitlements(client, settings):
                    billing_id = (found.get("provisionedService") or {}).get("provisioningId")
                    if billing_id:
                        with self._lock:
                            self._subaccounts[str(billing_id)] = str(found["name"])
                with self._lock:
                    name = self._subaccounts.get(identifier, "")
            if not name:
                return None
        response = self._call(
            client, settings, "GET", f"/v1/{name}", "get entitlement", ok=(200, 404)
        )
        return dict(response.json()) if response.status_code == 200 else None

    def _all_entitlements(self, client: httpx.Client, settings: _Settings) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        customers = self._list(
            client, settings, f"/v1/accounts/{settings.account}/customers", "customers",
            "list customers",
        )  # fmt: skip
        for customer in customers:
            found.extend(
                self._list(
                    client, settings, f"/v1/{customer['name']}/entitlements", "entitlements",
                    "entitlements",
                )
            )  # fmt: skip
        return found

    def _change(
        self, ctx: PartnerContext, identifier: str, action: str, skip_if: str | None, done: str
    ) -> ActionResult:
        """An entitlement LRO (``suspend`` / ``activate`` / ``cancel``). The requestId is
        derived from the entitlement's updateTime, so a retry while the operation is pending
        finds the same operation, and the next action after it completes is a new one."""
        settings = self._settings(ctx)
        with self._client(settings) as client:
            entitlement = self._entitlement(client, settings, identifier)
            if entitlement is None:
                if action == "cancel":
                    return ActionResult(state=done, message="entitlement already cancelled")
                raise VendorError(
                    f"No entitlement for {identifier!r}.", retryable=False, status=404
                )
            if skip_if and entitlement.get("provisioningState") == skip_if:
                return ActionResult(state=done, message=f"entitlement already {skip_if.lower()}")
            request = str(
                uuid.uuid5(
                    _NAMESPACE,
                    f"{entitlement['name']}|{action}|{entitlement.get('updateTime')}",
                )
            )
            op = self._call(
                client,
                settings,
                "POST",
                f"/v1/{entitlement['name']}:{action}",
                f"{action} entitlement",
                json_body={"requestId": request},
            ).json()
            op = self._wait(client, settings, op)
        if not op.get("done"):
            return ActionResult(state="pending", reference=str(op["name"]))
        return ActionResult(state=done, reference=str(op["name"]))

    def suspend(self, ctx: PartnerContext, vendor_identifier: str) -> ActionResult:
        return self._change(ctx, vendor_identifier, "suspend", "SUSPENDED", "suspended")

    def resume(self, ctx: PartnerContext, vendor_identifier: str) -> ActionResult:
        return self._change(ctx, vendor_identifier, "activate", "ACTIVE", "active")

    def purge(self, ctx: PartnerContext, vendor_identifier: str) -> ActionResult:
        return self._change(ctx, vendor_identifier, "cancel", None, "purged")

    def status(self, ctx: PartnerContext, vendor_identifier: str) -> str:
        settings = self._settings(ctx)
        with self._client(settings) as client:
            entitlement = self._entitlement(client, settings, vendor_identifier)
        if entitlement is None:
            return "closed"
        return "suspended" if entitlement.get("provisioningState") == "SUSPENDED" else "active"

    # --- collection ------------------------------------------------------------------------

    def collect_usage(
        self, ctx: PartnerContext, watermark: str | None, work_dir: Path
    ) -> Collection:
        """The whole current invoice month of the detailed export as JSON lines (one
        delivery: it replaces each billing subaccount's slice of that month), and the previous
        month again until ``CLOSE_DAYS`` after it ended (late rows and restatements).
        Watermark: the fetch time and the last month fetched after its close."""
        settings = self._settings(ctx)
        if not settings.export_url:
            raise VendorError(
                "Set billing_export_url: an HTTPS URL serving an invoice month ({month}) of "
                "the Cloud Billing detailed export as JSON lines (BigQuery extract).",
                retryable=False,
            )
        state = json.loads(watermark) if watermark else {}
        final = str(state.get("final") or "")
        work_dir.mkdir(parents=True, exist_ok=True)
        deliveries: list[CollectedFile] = []
        newest: str | None = None
        with self._client(settings) as client:
            # Invoice months follow the vendor's clock: take "now" from its Date header.
            probe = self._call(
                client,
                settings,
                "GET",
                f"/v1/accounts/{settings.account}/customers",
                "list customers",
                params={"pageSize": 1},
            )
            now = server_now(probe)
            today = now.date()
            current = today.replace(day=1)
            previous = (current - timedelta(days=1)).replace(day=1)
            months = [current]
            closing = today >= current + timedelta(days=CLOSE_DAYS)
            if _month(previous) > final:
                months.insert(0, previous)
            for month in months:
                label = _month(month)
                url = settings.export_url.replace("{month}", label)
                response = self._call(client, settings, "GET", url, f"billing export {label}")
                if not response.content.strip():
                    continue
                target = work_dir / f"gcp-billing-export-{settings.account}-{label}.jsonl"
                target.write_bytes(response.content)
                deliveries.append(CollectedFile(paths=[target], format="gcp_billing_export"))
                newest = max(filter(None, [newest, _newest_end(response.content)]), default=None)
        if closing and _month(previous) > final:
            final = _month(previous)
        return Collection(
            deliveries=deliveries,
            watermark=json.dumps({"fetched_at": _iso(now), "final": final}),
            data_until=newest,
        )


def server_now(response: httpx.Response) -> datetime:
    """The vendor's clock (its ``Date`` header), else ours."""
    try:
        moment = parsedate_to_datetime(response.headers.get("date", ""))
    except (TypeError, ValueError):
        return datetime.now(UTC)
    return moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _month(value: date) -> str:
    return f"{value.year:04d}{value.month:02d}"


_END = re.compile(rb'"usage_end_time"\s*:\s*"(\d{4}-\d{2}-\d{2})[ T](\d{2}:\d{2}:\d{2})')


def _newest_end(content: bytes) -> str | None:
    ends = {f"{m.group(1).decode()}T{m.group(2).decode()}Z" for m in _END.finditer(content)}
    return max(ends) if ends else None
