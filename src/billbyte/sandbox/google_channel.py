"""Google Cloud Channel simulator (and the reseller's billing export), served on 127.0.0.1.

Built from the documented Cloud Channel API v1 REST reference (``accounts.customers``
create/get/list, ``accounts.customers.entitlements`` create/get/list/suspend/activate/cancel,
``accounts.offers.list``, ``operations.get`` returning ``google.longrunning.Operation`` with
``OperationMetadata``), the Cloud Billing API (``billingAccounts.get``,
``billingAccounts.projects.list``), Google's OAuth 2.0 service-account flow (JWT bearer
grant) and the detailed usage cost export schema of Cloud Billing (BigQuery). See
``docs/vendors/sandbox.md``.

Long-running operations: ``entitlements.create`` / ``:suspend`` / ``:activate`` /
``:cancel`` answer an Operation with ``done: false``; the change happens when the operation
completes, which is on the ``lro_polls``-th ``operations.get`` of it (default: the first) or
at the next ``tick()``, whichever comes first. A ``requestId`` already seen returns the same
operation (the documented retry contract).

The billing export: ``tick(now)`` writes detailed-export rows (daily, per project and SKU,
credits nested in each row) for every project of every open billing subaccount, and
``GET /v1/accounts/{account}/billingExport?invoiceMonth=YYYYMM`` serves an invoice month of
the account's customers as JSON lines — what a ``bq extract --destination_format
NEWLINE_DELIMITED_JSON`` of the export table gives. Amounts have at most 6 decimals and
12 significant digits, so they read exactly even through a float64 JSON parser.
"""

from __future__ import annotations

import base64
import copy
import html
import json
import random
import re
import secrets
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, Response

from billbyte.sandbox.runtime import (
    USD_TO,
    ExactJSONResponse,
    FaultPlan,
    SandboxServer,
    bearer_token,
    control_router,
    dumps_exact,
    install_faults,
    iso_z,
    midnight,
)
from billbyte.sandbox.state import decode, encode

SANDBOX_OFFER_ID = "gcp-standard"  # the Google Cloud offer of every sandbox reseller account
OPERATION_METADATA = "type.googleapis.com/google.cloud.channel.v1.OperationMetadata"
ENTITLEMENT_TYPE = "type.googleapis.com/google.cloud.channel.v1.Entitlement"
EMPTY_TYPE = "type.googleapis.com/google.protobuf.Empty"
_SIX = Decimal("0.000001")


@dataclass(frozen=True)
class Sku:
    service_id: str
    service: str
    sku_id: str
    description: str
    unit: str  # usage.unit
    pricing_unit: str
    per_pricing_unit: Decimal  # usage units per pricing unit
    list_price: Decimal  # USD per pricing unit
    low: Decimal  # daily usage range, in pricing units
    high: Decimal
    sud: bool = False  # sustained use discount applies


SKUS = (
    Sku("6F81-5844-456A", "Compute Engine", "CF4E-A0C7-E3BF",
        "N2 Instance Core running in Belgium", "seconds", "hour", Decimal(3600),
        Decimal("0.034773"), Decimal(24), Decimal(96), sud=True),
    Sku("6F81-5844-456A", "Compute Engine", "F0CB-0A1D-D1E0",
        "N2 Instance Ram running in Belgium", "byte-seconds", "gibibyte hour",
        Decimal(3600 * 1024**3), Decimal("0.004661"), Decimal(96), Decimal(384), sud=True),
    Sku("95FF-2EF5-5EA1", "Cloud Storage", "E5F0-6A5D-7BAD",
        "Standard Storage Belgium", "byte-seconds", "gibibyte month",
        Decimal(2592000 * 1024**3), Decimal("0.020"), Decimal("0.5"), Decimal(8)),
    Sku("6F81-5844-456A", "Compute Engine", "9DE9-9092-B3BC",
        "Network Internet Egress from Belgium to Europe", "bytes", "gibibyte",
        Decimal(1024**3), Decimal("0.085"), Decimal("0.1"), Decimal(30)),
    Sku("24E6-581D-38E5", "BigQuery", "3362-E469-6BEF",
        "Analysis (europe-west1)", "bytes", "tebibyte", Decimal(1024**4),
        Decimal("6.25"), Decimal("0.001"), Decimal("0.4")),
)  # fmt: skip

RESELLER_MARGIN = Decimal("0.04")  # the reseller's discount, shown as a credit in its export
SUD_RATE = Decimal("0.20")


# --- state ---------------------------------------------------------------------------------


@dataclass
class Operation:
    data: dict[str, Any]
    account: str
    apply: Any  # () -> dict (the response) | None; called once when the operation completes
    polls_left: int


@dataclass
class SubAccount:
    billing_id: str  # XXXXXX-XXXXXX-XXXXXX
    account: str
    customer: str  # customer resource name
    display_name: str
    open: bool = True
    projects: list[dict[str, Any]] = field(default_factory=list)
    usage_from: date = field(default_factory=lambda: datetime.now(UTC).date())


@dataclass
class Account:
    account_id: str
    customers: dict[str, dict[str, Any]] = field(default_factory=dict)  # name → Customer
    entitlements: dict[str, dict[str, Any]] = field(default_factory=dict)  # name → Entitlement
    subaccounts: dict[str, SubAccount] = field(default_factory=dict)  # billing id → SubAccount
    rows: list[dict[str, Any]] = field(default_factory=list)  # the billing export


class ChannelError(Exception):
    def __init__(self, code: int, status: str, message: str) -> None:
        super().__init__(message)
        self.code, self.status, self.message = code, status, message


def google_error_body(code: int, message: str, status: str | None = None) -> dict[str, Any]:
    """Google APIs' error shape (google.rpc.Status over HTTP)."""
    names = {400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED",
             404: "NOT_FOUND", 409: "ALREADY_EXISTS", 429: "RESOURCE_EXHAUSTED",
             500: "INTERNAL", 503: "UNAVAILABLE", 504: "DEADLINE_EXCEEDED"}  # fmt: skip
    return {
        "error": {"code": code, "message": message, "status": status or names.get(code, "UNKNOWN")}
    }


class CloudChannelSimulator:
    """Every reseller account's state (created on first use). Thread-safe."""

    def __init__(
        self,
        *,
        start: datetime | None = None,
        currency: str = "EUR",
        lro_polls: int = 1,
        token_lifetime: int = 3600,
        seed: str = "billbyte",
        projects_per_customer: int = 2,
    ) -> None:
        self.now = (start or datetime.now(UTC)).astimezone(UTC)
        self.currency = currency.upper()
        if self.currency not in USD_TO:
            raise ValueError(f"sandbox currency must be one of {sorted(USD_TO)}")
        self.lro_polls = lro_polls
        self.token_lifetime = token_lifetime
        self.seed = seed
        self.projects_per_customer = projects_per_customer
        self.faults = FaultPlan()
        self.accounts: dict[str, Account] = {}
        self.operations: dict[str, Operation] = {}
        self.request_ids: dict[str, str] = {}  # requestId → operation name
        self.tokens: dict[str, float] = {}
        self.lock = threading.RLock()

    # -- auth --

    def issue_token(self, assertion: str) -> str | None:
        """The JWT bearer grant: a three-part JWT whose claims name an issuer and audience and
        have not expired. The signature is not checked (any key works in the sandbox)."""
        parts = assertion.split(".")
        if len(parts) != 3:
            return None
        try:
            padded = parts[1] + "=" * (-len(parts[1]) % 4)
            claims = json.loads(base64.urlsafe_b64decode(padded))
        except (ValueError, TypeError):
            return None
        if not isinstance(claims, dict) or not claims.get("iss") or not claims.get("aud"):
            return None
        if float(claims.get("exp", 0)) < time.time():
            return None
        token = "ya29.sandbox-" + secrets.token_urlsafe(32)
        with self.lock:
            self.tokens[token] = time.time() + self.token_lifetime
        return token

    def token_valid(self, token: str | None) -> bool:
        with self.lock:
            return bool(token) and self.tokens.get(token or "", 0) > time.time()

    def revoke_tokens(self) -> None:
        with self.lock:
            self.tokens.clear()

    # -- accounts and customers --

    def account(self, account_id: str) -> Account:
        with self.lock:
            found = self.accounts.get(account_id)
            if found is None:
                found = self.accounts[account_id] = Account(account_id)
            return found

    def create_customer(self, account_id: str, body: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            account = self.account(account_id)
            domain = str(body.get("domain") or "").strip().lower()
            address = body.get("orgPostalAddress") or {}
            if not body.get("orgDisplayName") or not domain or not address.get("regionCode"):
                raise ChannelError(
                    400,
                    "INVALID_ARGUMENT",
                    "orgDisplayName, domain and orgPostalAddress.regionCode are required.",
                )
            if any(c["domain"] == domain for c in account.customers.values()):
                raise ChannelError(
                    409, "ALREADY_EXISTS", f"A customer with domain {domain} already exists."
                )
            customer_id = _token_id(14)
            name = f"accounts/{account_id}/customers/{customer_id}"
            now = iso_z(self.now)
            customer = {
                "name": name,
                "orgDisplayName": body["orgDisplayName"],
                "orgPostalAddress": address,
                "primaryContactInfo": body.get("primaryContactInfo") or {},
                "alternateEmail": body.get("alternateEmail", ""),
                "domain": domain,
                "createTime": now,
                "updateTime": now,
                "cloudIdentityId": _token_id(9).upper(),
                "languageCode": body.get("languageCode", "en-US"),
                "channelPartnerId": body.get("channelPartnerId", ""),
                "correlationId": body.get("correlationId", ""),
            }
            account.customers[name] = customer
            return copy.deepcopy(customer)

    def get_customer(self, account_id: str, name: str) -> dict[str, Any]:
        with self.lock:
            customer = self.account(account_id).customers.get(name)
            if customer is None:
                raise ChannelError(404, "NOT_FOUND", f"Customer {name} was not found.")
            return customer

    # -- entitlements and operations --

    def _operation(
        self, account_id: str, request_id: str | None, kind: str, target: str, apply: Any
    ) -> dict[str, Any]:
        """A new long-running operation, or the one already started with ``request_id``."""
        if request_id:
            try:
                if uuid.UUID(request_id).int == 0:
                    raise ValueError
            except ValueError:
                raise ChannelError(
                    400, "INVALID_ARGUMENT", "requestId must be a non-zero UUID."
                ) from None
            existing = self.request_ids.get(request_id)
            if existing:
                return copy.deepcopy(self.operations[existing].data)
        name = f"operations/{_token_id(24)}"
        data = {
            "name": name,
            "metadata": {"@type": OPERATION_METADATA, "operationType": kind},
            "done": False,
        }
        self.operations[name] = Operation(data, account_id, apply, self.lro_polls)
        if request_id:
            self.request_ids[request_id] = name
        self.operations[name].data["metadata"]["target"] = target
        return copy.deepcopy(data)

    def _complete(self, op: Operation) -> None:
        if op.data["done"]:
            return
        try:
            response = op.apply()
        except ChannelError as exc:
            op.data["error"] = {"code": _grpc_code(exc.status), "message": exc.message}
        else:
            op.data["response"] = response
        op.data["done"] = True

    def get_operation(self, name: str) -> dict[str, Any]:
        with self.lock:
            op = self.operations.get(name)
            if op is None:
                raise ChannelError(404, "NOT_FOUND", f"Operation {name} was not found.")
            if not op.data["done"]:
                op.polls_left -= 1
                if op.polls_left <= 0:
                    self._complete(op)
            return copy.deepcopy(op.data)

    def create_entitlement(
        self, account_id: str, customer_name: str, body: dict[str, Any]
    ) -> dict[str, Any]:
        with self.lock:
            customer = self.get_customer(account_id, customer_name)
            spec = body.get("entitlement") or {}
            offer = str(spec.get("offer") or "")
            if offer != f"accounts/{account_id}/offers/{SANDBOX_OFFER_ID}":
                raise ChannelError(404, "NOT_FOUND", f"Offer {offer!r} was not found.")
            account = self.account(account_id)
            request_id = body.get("requestId")
            if not (request_id and request_id in self.request_ids) and any(
                e["name"].startswith(customer_name + "/") and e["offer"] == offer
                for e in account.entitlements.values()
            ):
                raise ChannelError(
                    409, "ALREADY_EXISTS", "The SKU was already purchased for the customer."
                )
            display = _parameter(spec.get("parameters"), "display_name") or str(
                customer["orgDisplayName"]
            )

            def apply() -> dict[str, Any]:
                entitlement_id = _token_id(16)
                name = f"{customer_name}/entitlements/{entitlement_id}"
                billing_id = "-".join(secrets.token_hex(3).upper() for _ in range(3))
                sub = SubAccount(billing_id, account_id, customer_name, display)
                sub.usage_from = self.now.date()
                slug = re.sub(r"[^a-z0-9]+", "-", display.lower()).strip("-")[:18] or "project"
                for index, env in enumerate(("prod", "dev", "test")[: self.projects_per_customer]):
                    project_id = f"{slug}-{env}-{secrets.token_hex(2)}"
                    sub.projects.append(
                        {
                            "id": project_id,
                            "number": str(10**11 + random.Random(project_id).randrange(10**11)),
                            "name": f"{display} {env}",
                            "index": index,
                        }
                    )  # fmt: skip
                account.subaccounts[billing_id] = sub
                now = iso_z(self.now)
                entitlement = {
                    "name": name,
                    "createTime": now,
                    "updateTime": now,
                    "offer": offer,
                    "provisioningState": "ACTIVE",
                    "provisionedService": {
                        "provisioningId": billing_id,
                        "productId": "cloud",
                        "skuId": "cloud-standard",
                    },
                    "suspensionReasons": [],
                    "purchaseOrderId": spec.get("purchaseOrderId", ""),
                    "trialSettings": {"trial": False},
                    "parameters": spec.get("parameters") or [],
                    "billingAccount": "",
                }
                account.entitlements[name] = entitlement
                return {"@type": ENTITLEMENT_TYPE} | copy.deepcopy(entitlement)

            return self._operation(
                account_id, request_id, "CREATE_ENTITLEMENT", customer_name, apply
            )

    def _entitlement(self, account_id: str, name: str) -> dict[str, Any]:
        entitlement = self.account(account_id).entitlements.get(name)
        if entitlement is None:
            raise ChannelError(404, "NOT_FOUND", f"Entitlement {name} was not found.")
        return entitlement

    def change_entitlement(
        self, account_id: str, name: str, action: str, body: dict[str, Any]
    ) -> dict[str, Any]:
        """``suspend``, ``activate`` or ``cancel``: validated now, applied on completion."""
        with self.lock:
            request_id = body.get("requestId")
            if request_id and request_id in self.request_ids:
                return copy.deepcopy(self.operations[self.request_ids[request_id]].data)
            entitlement = self._entitlement(account_id, name)
            state = entitlement["provisioningState"]
            if action == "suspend" and state != "ACTIVE":
                raise ChannelError(
                    400, "FAILED_PRECONDITION", "NOT_ACTIVE: Entitlement is not active."
                )
            if action == "activate" and state != "SUSPENDED":
                raise ChannelError(
                    400, "FAILED_PRECONDITION", "NOT_SUSPENDED: Entitlement is not suspended."
                )
            if action == "activate" and entitlement["suspensionReasons"] != ["RESELLER_INITIATED"]:
                raise ChannelError(
                    400,
                    "FAILED_PRECONDITION",
                    "SUSPENSION_NOT_RESELLER_INITIATED: only reseller-initiated suspensions "
                    "can be activated.",
                )
            account = self.account(account_id)
            sub = account.subaccounts.get(entitlement["provisionedService"]["provisioningId"])

            def apply() -> dict[str, Any]:
                current = self._entitlement(account_id, name)
                current["updateTime"] = iso_z(self.now)
                if action == "cancel":
                    del account.entitlements[name]
                    if sub is not None:
                        sub.open = False
                    return {"@type": EMPTY_TYPE}
                suspended = action == "suspend"
                current["provisioningState"] = "SUSPENDED" if suspended else "ACTIVE"
                current["suspensionReasons"] = ["RESELLER_INITIATED"] if suspended else []
                if sub is not None:
                    sub.open = not suspended
                    if not suspended:
                        sub.usage_from = max(sub.usage_from, self.now.date())
                return {"@type": ENTITLEMENT_TYPE} | copy.deepcopy(current)

            kind = {"suspend": "SUSPEND_ENTITLEMENT", "activate": "ACTIVATE_ENTITLEMENT",
                    "cancel": "CANCEL_ENTITLEMENT"}[action]  # fmt: skip
            return self._operation(account_id, request_id, kind, name, apply)

    # -- the clock and the billing export --

    def tick(self, now: datetime | None = None) -> None:
        """Advance the clock (never backwards), complete pending operations, and write the
        export rows of every complete day of every open billing subaccount."""
        with self.lock:
            target = (now or datetime.now(UTC)).astimezone(UTC)
            if target > self.now:
                self.now = target
            for op in self.operations.values():
                self._complete(op)
            for account in self.accounts.values():
                for sub in account.subaccounts.values():
                    while midnight(sub.usage_from + timedelta(days=1)) <= self.now:
                        if sub.open:
                            account.rows.extend(self._rows(sub, sub.usage_from))
                        sub.usage_from += timedelta(days=1)

    def _rows(self, sub: SubAccount, day: date) -> list[dict[str, Any]]:
        rows = []
        rate = USD_TO[self.currency]
        start, end = midnight(day), midnight(day + timedelta(days=1))
        exported = iso_bq(end + timedelta(hours=4))
        for project in sub.projects:
            rng = random.Random(f"{self.seed}|{project['id']}|{day.isoformat()}")
            for sku in SKUS:
                if project["index"] > 0 and sku.service == "BigQuery":
                    continue
                span = float(sku.high - sku.low)
                pricing_amount = (sku.low + Decimal(str(round(rng.random() * span, 6)))).quantize(
                    _SIX
                )
                if project["index"] > 0:
                    pricing_amount = (pricing_amount / 4).quantize(_SIX)
                usage_amount = (pricing_amount * sku.per_pricing_unit).quantize(Decimal(1))
                at_list = (pricing_amount * sku.list_price * rate).quantize(_SIX, ROUND_HALF_EVEN)
                cost = at_list
                credits = []
                if sku.sud:
                    sud = -(cost * SUD_RATE).quantize(_SIX, ROUND_HALF_EVEN)
                    credits.append(
                        {"name": "Sustained Usage Discount", "amount": sud, "full_name": None,
                         "id": f"SUSTAINED_USAGE_DISCOUNT-{sku.sku_id}",
                         "type": "SUSTAINED_USAGE_DISCOUNT"}
                    )  # fmt: skip
                margin = -(cost * RESELLER_MARGIN).quantize(_SIX, ROUND_HALF_EVEN)
                credits.append(
                    {"name": "Reseller Margin", "amount": margin, "full_name": None,
                     "id": "RESELLER_MARGIN", "type": "RESELLER_MARGIN"}
                )  # fmt: skip
                rows.append(
                    {
                        "billing_account_id": sub.billing_id,
                        "service": {"id": sku.service_id, "description": sku.service},
                        "sku": {"id": sku.sku_id, "description": sku.description},
                        "usage_start_time": iso_bq(start),
                        "usage_end_time": iso_bq(end),
                        "project": {
                            "id": project["id"],
                            "number": project["number"],
                            "name": project["name"],
                            "labels": [],
                            "ancestry_numbers": None,
                        },
                        "labels": [{"key": "env", "value": project["id"].split("-")[-2]}],
                        "system_labels": [],
                        "location": {
                            "location": "europe-west1",
                            "country": "BE",
                            "region": "europe-west1",
                            "zone": "europe-west1-b" if sku.service == "Compute Engine" else None,
                        },
                        "resource": {
                            "name": f"{project['id']}-{sku.sku_id.lower()}",
                            "global_name": _global_name(sku, project["id"]),
                        },
                        "export_time": exported,
                        "cost": cost,
                        "currency": self.currency,
                        "currency_conversion_rate": rate,
                        "usage": {
                            "amount": usage_amount,
                            "unit": sku.unit,
                            "amount_in_pricing_units": pricing_amount,
                            "pricing_unit": sku.pricing_unit,
                        },
                        "credits": credits,
                        "invoice": {"month": f"{day.year:04d}{day.month:02d}"},
                        "cost_type": "regular",
                        "cost_at_list": at_list,
                        "transaction_type": "GOOGLE",
                    }
                )  # fmt: skip
        return rows

    def export_rows(self, account_id: str, invoice_month: str) -> list[dict[str, Any]]:
        with self.lock:
            return [
                r for r in self.account(account_id).rows if r["invoice"]["month"] == invoice_month
            ]

    # -- saving and restoring (``sandbox.state``) --

    def export_state(self) -> dict[str, Any]:
        """Everything a restarted simulator needs (not tokens: clients ask for new ones), as
        JSON data. An operation's pending change cannot be saved, only its state."""
        with self.lock:
            return encode(
                {
                    "now": self.now,
                    "accounts": [
                        {
                            "account_id": a.account_id,
                            "customers": a.customers,
                            "entitlements": a.entitlements,
                            "subaccounts": [dict(vars(sub)) for sub in a.subaccounts.values()],
                            "rows": a.rows,
                        }
                        for a in self.accounts.values()
                    ],
                    "operations": [
                        {"data": o.data, "account": o.account} for o in self.operations.values()
                    ],
                    "request_ids": self.request_ids,
                }
            )

    def restore_state(self, saved: dict[str, Any]) -> int:
        """Replace the state with an ``export_state()``; returns how many customers it has.
        An operation still running when the state was saved ends with an error (its change
        is lost): the client asks again with a new request."""
        state = decode(saved)
        accounts: dict[str, Account] = {}
        for item in state["accounts"]:
            account = Account(
                item["account_id"],
                customers=item["customers"],
                entitlements=item["entitlements"],
                rows=item["rows"],
            )
            for sub in item["subaccounts"]:
                account.subaccounts[sub["billing_id"]] = SubAccount(**sub)
            accounts[account.account_id] = account
        operations: dict[str, Operation] = {}
        for item in state["operations"]:
            data = item["data"]
            if not data["done"]:
                data["done"] = True
                data["error"] = {
                    "code": _grpc_code("UNAVAILABLE"),
                    "message": "The sandbox restarted before this operation completed.",
                }
            operations[data["name"]] = Operation(data, item["account"], None, 0)
        with self.lock:
            self.now = max(self.now, state["now"])
            self.accounts = accounts
            self.operations = operations
            self.request_ids = dict(state["request_ids"])
            self.tokens.clear()
            return sum(len(a.customers) for a in accounts.values())

    def summary(self) -> dict[str, Any]:
        with self.lock:
            return {
                "accounts": {
                    a.account_id: {
                        "customers": sorted(a.customers),
                        "entitlements": {
                            n: e["provisioningState"] for n, e in a.entitlements.items()
                        },
                        "billing_subaccounts": {
                            s.billing_id: {"open": s.open,
                                           "projects": [p["id"] for p in s.projects]}
                            for s in a.subaccounts.values()
                        },
                        "export_rows": len(a.rows),
                    }
                    for a in self.accounts.values()
                },
                "operations_pending": sum(not o.data["done"] for o in self.operations.values()),
            }  # fmt: skip


def _global_name(sku: Sku, project_id: str) -> str:
    host = sku.service.replace(" ", "").lower()
    return f"//{host}.googleapis.com/projects/{project_id}/{sku.sku_id.lower()}"


def iso_bq(value: datetime) -> str:
    """BigQuery's JSON timestamp form: ``2026-11-03 00:00:00 UTC``."""
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _token_id(length: int) -> str:
    alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
    return "".join(secrets.choice(alphabet) for _ in range(length))


def _parameter(parameters: Any, wanted: str) -> str | None:
    for item in parameters or []:
        if isinstance(item, dict) and item.get("name") == wanted:
            value = item.get("value") or {}
            return str(value.get("stringValue") or "") or None
    return None


def _grpc_code(status: str) -> int:
    return {"INVALID_ARGUMENT": 3, "NOT_FOUND": 5, "ALREADY_EXISTS": 6, "PERMISSION_DENIED": 7,
            "FAILED_PRECONDITION": 9, "INTERNAL": 13, "UNAVAILABLE": 14}.get(status, 2)  # fmt: skip


def _page(items: list[Any], request: Request, key: str) -> dict[str, Any]:
    """``pageSize`` / ``pageToken`` list paging (the token is the next offset)."""
    try:
        size = max(1, min(int(request.query_params.get("pageSize") or 50), 1000))
        offset = int(base64.urlsafe_b64decode(request.query_params.get("pageToken") or "MA==") or 0)
    except ValueError:
        raise ChannelError(400, "INVALID_ARGUMENT", "Invalid pageToken.") from None
    body: dict[str, Any] = {key: items[offset : offset + size]}
    if offset + size < len(items):
        body["nextPageToken"] = base64.urlsafe_b64encode(str(offset + size).encode()).decode()
    return body


# --- HTTP ----------------------------------------------------------------------------------


def create_google_channel_app(simulator: CloudChannelSimulator) -> FastAPI:
    app = FastAPI(title="BillByte sandbox: Google Cloud Channel", docs_url=None, redoc_url=None)
    install_faults(
        app,
        simulator.faults,
        lambda code, text: google_error_body(code, text),
        lambda: simulator.now,
    )
    app.include_router(control_router(simulator))

    @app.exception_handler(ChannelError)
    async def _error(_request: Request, exc: ChannelError) -> Response:
        return ExactJSONResponse(google_error_body(exc.code, exc.message, exc.status), exc.code)

    class _Unauthenticated(Exception):
        pass

    @app.exception_handler(_Unauthenticated)
    async def _unauthenticated(_request: Request, _exc: Exception) -> Response:
        body = google_error_body(
            401,
            "Request is missing required authentication credential. Expected OAuth 2 access "
            "token, login cookie or other valid authentication credential.",
        )
        challenge = {"WWW-Authenticate": 'Bearer realm="https://accounts.google.com/"'}
        return ExactJSONResponse(body, 401, challenge)

    def authorised(request: Request) -> None:
        if not simulator.token_valid(bearer_token(request)):
            raise _Unauthenticated()

    async def body_of(request: Request) -> dict[str, Any]:
        raw = await request.body()
        try:
            value = json.loads(raw or b"{}", parse_float=Decimal)
        except json.JSONDecodeError as exc:
            raise ChannelError(
                400, "INVALID_ARGUMENT", f"Invalid JSON payload: {exc.msg}."
            ) from None
        if not isinstance(value, dict):
            raise ChannelError(400, "INVALID_ARGUMENT", "Expected a JSON object.")
        return value

    @app.post("/token")
    async def token(request: Request) -> Response:
        form = await request.form()
        if form.get("grant_type") != "urn:ietf:params:oauth:grant-type:jwt-bearer":
            return ExactJSONResponse(
                {"error": "unsupported_grant_type", "error_description": "Invalid grant_type."}, 400
            )
        issued = simulator.issue_token(str(form.get("assertion") or ""))
        if issued is None:
            return ExactJSONResponse(
                {"error": "invalid_grant", "error_description": "Invalid JWT assertion."}, 400
            )
        return ExactJSONResponse(
            {"access_token": issued, "expires_in": simulator.token_lifetime, "token_type": "Bearer"}
        )

    @app.get("/v1/accounts/{account}/offers")
    def offers(account: str, request: Request) -> Response:
        authorised(request)
        offer = {
            "name": f"accounts/{account}/offers/{SANDBOX_OFFER_ID}",
            "marketingInfo": {"displayName": "Google Cloud Platform"},
            "sku": {"name": "products/cloud/skus/cloud-standard",
                    "product": {"name": "products/cloud"}},
            "plan": {"paymentPlan": "USAGE", "paymentType": "POSTPAY"},
            "constraints": {"customerConstraints": {"allowedCustomerTypes": ["DOMAIN"]}},
        }  # fmt: skip
        return ExactJSONResponse({"offers": [offer]})

    @app.post("/v1/accounts/{account}/customers")
    async def create_customer(account: str, request: Request) -> Response:
        authorised(request)
        return ExactJSONResponse(simulator.create_customer(account, await body_of(request)))

    @app.get("/v1/accounts/{account}/customers")
    def list_customers(account: str, request: Request) -> Response:
        authorised(request)
        wanted = (request.query_params.get("filter") or "").strip()
        match = re.fullmatch(r'domain\s*=\s*"?([^"]+)"?', wanted)
        with simulator.lock:
            customers = [copy.deepcopy(c) for c in simulator.account(account).customers.values()]
        if match:
            customers = [c for c in customers if c["domain"] == match.group(1).lower()]
        return ExactJSONResponse(_page(customers, request, "customers"))

    @app.get("/v1/accounts/{account}/customers/{customer}")
    def get_customer(account: str, customer: str, request: Request) -> Response:
        authorised(request)
        name = f"accounts/{account}/customers/{customer}"
        with simulator.lock:
            return ExactJSONResponse(copy.deepcopy(simulator.get_customer(account, name)))

    @app.post("/v1/accounts/{account}/customers/{customer}/entitlements")
    async def create_entitlement(account: str, customer: str, request: Request) -> Response:
        authorised(request)
        name = f"accounts/{account}/customers/{customer}"
        return ExactJSONResponse(
            simulator.create_entitlement(account, name, await body_of(request))
        )

    @app.get("/v1/accounts/{account}/customers/{customer}/entitlements")
    def list_entitlements(account: str, customer: str, request: Request) -> Response:
        authorised(request)
        prefix = f"accounts/{account}/customers/{customer}/"
        with simulator.lock:
            simulator.get_customer(account, prefix.rstrip("/"))
            found = [
                copy.deepcopy(e)
                for n, e in simulator.account(account).entitlements.items()
                if n.startswith(prefix)
            ]
        return ExactJSONResponse(_page(found, request, "entitlements"))

    @app.get("/v1/accounts/{account}/customers/{customer}/entitlements/{entitlement}")
    def get_entitlement(
        account: str, customer: str, entitlement: str, request: Request
    ) -> Response:
        authorised(request)
        if ":" in entitlement:
            raise ChannelError(404, "NOT_FOUND", "Unknown method.")
        name = f"accounts/{account}/customers/{customer}/entitlements/{entitlement}"
        with simulator.lock:
            return ExactJSONResponse(copy.deepcopy(simulator._entitlement(account, name)))

    @app.post("/v1/accounts/{account}/customers/{customer}/entitlements/{entitlement_action}")
    async def change_entitlement(
        account: str, customer: str, entitlement_action: str, request: Request
    ) -> Response:
        authorised(request)
        entitlement, _, action = entitlement_action.partition(":")
        if action not in ("suspend", "activate", "cancel"):
            raise ChannelError(404, "NOT_FOUND", f"Unknown method {action!r}.")
        name = f"accounts/{account}/customers/{customer}/entitlements/{entitlement}"
        return ExactJSONResponse(
            simulator.change_entitlement(account, name, action, await body_of(request))
        )

    @app.get("/v1/operations/{operation}")
    def get_operation(operation: str, request: Request) -> Response:
        authorised(request)
        return ExactJSONResponse(simulator.get_operation(f"operations/{operation}"))

    # Cloud Billing API: the billing subaccount an entitlement provisioned, and its projects.

    @app.get("/v1/billingAccounts/{billing_id}")
    def billing_account(billing_id: str, request: Request) -> Response:
        authorised(request)
        sub = _subaccount(simulator, billing_id)
        return ExactJSONResponse(
            {"name": f"billingAccounts/{sub.billing_id}", "open": sub.open,
             "displayName": sub.display_name,
             "masterBillingAccount": f"billingAccounts/reseller-{sub.account}"}
        )  # fmt: skip

    @app.get("/v1/billingAccounts/{billing_id}/projects")
    def billing_projects(billing_id: str, request: Request) -> Response:
        authorised(request)
        sub = _subaccount(simulator, billing_id)
        infos = [
            {"name": f"projects/{p['id']}/billingInfo", "projectId": p["id"],
             "billingAccountName": f"billingAccounts/{sub.billing_id}",
             "billingEnabled": sub.open}
            for p in sub.projects
        ]  # fmt: skip
        return ExactJSONResponse(_page(infos, request, "projectBillingInfo"))

    # The reseller's detailed billing export, one invoice month as JSON lines.

    @app.get("/v1/accounts/{account}/billingExport")
    def billing_export(account: str, request: Request) -> Response:
        authorised(request)
        month = request.query_params.get("invoiceMonth") or ""
        if not re.fullmatch(r"\d{6}", month):
            raise ChannelError(400, "INVALID_ARGUMENT", "invoiceMonth must be YYYYMM.")
        rows = simulator.export_rows(account, month)
        body = "".join(dumps_exact(row) + "\n" for row in rows)
        return Response(body.encode("utf-8"), media_type="application/x-ndjson")

    @app.get("/portal/{account}/customers/{customer}", response_class=HTMLResponse)
    def portal(account: str, customer: str) -> HTMLResponse:
        name = f"accounts/{account}/customers/{customer}"
        with simulator.lock:
            found = simulator.accounts.get(account)
            record = found.customers.get(name) if found else None
            if found is None or record is None:
                return HTMLResponse("<h1>Customer not found</h1>", 404)
            rows = "".join(
                f"<tr><td>{html.escape(n)}</td><td>{html.escape(e['provisioningState'])}</td>"
                f"<td>{html.escape(e['provisionedService']['provisioningId'])}</td></tr>"
                for n, e in found.entitlements.items()
                if n.startswith(name + "/")
            )
        title = html.escape(str(record["orgDisplayName"]))
        return HTMLResponse(
            f"<!doctype html><title>{title}</title><h1>{title}</h1><p>{html.escape(name)} · "
            f"{html.escape(record['domain'])} (BillByte sandbox of the Partner Sales Console)"
            f"</p><table><tr><th>Entitlement</th><th>State</th><th>Billing subaccount</th></tr>"
            f"{rows}</table>"
        )

    return app


def _subaccount(simulator: CloudChannelSimulator, billing_id: str) -> SubAccount:
    with simulator.lock:
        for account in simulator.accounts.values():
            if billing_id in account.subaccounts:
                return account.subaccounts[billing_id]
    raise ChannelError(404, "NOT_FOUND", f"Billing account {billing_id} was not found.")


def start_google_channel_sandbox(
    port: int | None = None, simulator: CloudChannelSimulator | None = None
) -> SandboxServer:
    """Serve a Cloud Channel simulator on 127.0.0.1 (``port`` None: a free port).

    Returns the running server: ``.base_url``, ``.app`` (the simulator), ``.tick(now)``,
    ``.stop()``.
    """
    simulator = simulator or CloudChannelSimulator()
    return SandboxServer(simulator, create_google_channel_app(simulator), port).start()
