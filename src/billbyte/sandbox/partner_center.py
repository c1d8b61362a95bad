"""Microsoft Partner Center simulator: the documented REST shapes, served on 127.0.0.1.

A product feature (an MSP tries its integration before going live; the demo runs on it),
built from Microsoft's documented requests and responses (Partner Center REST reference:
*Partner Center authentication*, *Create a customer*, *Create an order*, *Create an Azure
plan*, *Get all of a customer's subscriptions*, *Suspend a subscription*, *Cancel a new
commerce subscription*, *Get invoice unbilled/billed commercial consumption line items*,
*Get invoice's unbilled reconciliation line items*; example payloads in
``tests/data/vendor/microsoft-partner-center``). See ``docs/vendors/sandbox.md``.

What it serves:

- ``POST /{tenant}/oauth2/token``: Azure AD v1 client credentials → bearer token. Every
  ``/v1`` call needs it (401 otherwise); the token decides which partner's data is seen.
- customers, orders (Azure plan and new-commerce licence offers), subscriptions with
  ``PATCH`` status ``active`` / ``suspended`` / ``deleted``;
- invoices and their line items, and the unbilled line items of the current and previous
  billing period, in Microsoft's page shape with ``MS-ContinuationToken`` seek paging.

``tick(now)`` advances the simulated clock: it writes daily rated usage for every complete
day of every active Azure plan, licence charges at each renewal, and closes (invoices) a
month a configurable delay after it ends.

The sandbox runtime it shares with the Cloud Channel simulator (failure injection, serving,
exact Decimal JSON) is ``sandbox.runtime``.
"""

from __future__ import annotations

import base64
import calendar
import copy
import html
import json
import random
import secrets
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_FLOOR, ROUND_HALF_EVEN, Decimal
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
    install_faults,
    iso_z,
    midnight,
    parse_instant,
)
from billbyte.sandbox.state import decode, encode

# --- small helpers -------------------------------------------------------------------------


def day_z(value: date) -> str:
    return f"{value.isoformat()}T00:00:00Z"


def month_start(value: date) -> date:
    return value.replace(day=1)


def add_months(value: date, months: int) -> date:
    index = value.year * 12 + value.month - 1 + months
    year, month = divmod(index, 12)
    last = calendar.monthrange(year, month + 1)[1]
    return date(year, month + 1, min(value.day, last))


def lower_keys(value: Any) -> Any:
    """Partner Center accepts PascalCase and camelCase request bodies: compare keys lower-case."""
    if isinstance(value, dict):
        return {str(k).lower(): lower_keys(v) for k, v in value.items()}
    if isinstance(value, list):
        return [lower_keys(v) for v in value]
    return value


def _guid(*parts: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, "billbyte-sandbox:" + "|".join(parts)))


# --- the Partner Center catalogue (sandbox) ------------------------------------------------

AZURE_PLAN_OFFER = "DZH318Z0BPS6:0001:DZH318Z0BML6"  # documented catalog item of the Azure plan


@dataclass(frozen=True)
class Offer:
    offer_id: str
    kind: str  # azure_plan | licence
    product_name: str
    sku_name: str
    unit_price: Decimal = Decimal(0)  # per licence per month, in the partner's currency


# Licence offers: new-commerce catalog item ids (product:sku:availability) of this sandbox.
OFFERS: dict[str, Offer] = {
    AZURE_PLAN_OFFER: Offer(AZURE_PLAN_OFFER, "azure_plan", "Azure plan", "Azure plan"),
    "CFQ7TTC0LH18:0001:CFQ7TTC0SB1A": Offer(
        "CFQ7TTC0LH18:0001:CFQ7TTC0SB1A",
        "licence",
        "Microsoft 365 Business Basic",
        "Microsoft 365 Business Basic",
        Decimal("5.60"),
    ),
    "CFQ7TTC0LDPB:0001:CFQ7TTC0SB1B": Offer(
        "CFQ7TTC0LDPB:0001:CFQ7TTC0SB1B",
        "licence",
        "Microsoft 365 Business Standard",
        "Microsoft 365 Business Standard",
        Decimal("11.70"),
    ),
    "CFQ7TTC0LCHC:0002:CFQ7TTC0SB1C": Offer(
        "CFQ7TTC0LCHC:0002:CFQ7TTC0SB1C",
        "licence",
        "Microsoft 365 Business Premium",
        "Microsoft 365 Business Premium",
        Decimal("20.60"),
    ),
}
DEFAULT_LICENCE_OFFER = "CFQ7TTC0LH18:0001:CFQ7TTC0SB1A"


@dataclass(frozen=True)
class Meter:
    key: str
    category: str
    sub_category: str
    name: str
    unit: str
    unit_price: Decimal  # USD, the pricing currency
    service: str
    resource_type: str
    low: Decimal
    high: Decimal


METERS = (
    Meter("vm", "Virtual Machines", "Dv3/DSv3 Series", "D2s v3", "1 Hour", Decimal("0.096"),
          "Microsoft.Compute", "virtualMachines", Decimal(8), Decimal(24)),
    Meter("disk", "Storage", "Premium SSD Managed Disks", "P10 LRS Disk", "1/Month",
          Decimal("19.71"), "Microsoft.Compute", "disks", Decimal(0), Decimal(0)),
    Meter("egress", "Bandwidth", "Rtn Preference: MGN", "Standard Data Transfer Out", "1 GB",
          Decimal("0.087"), "Microsoft.Network", "publicIPAddresses", Decimal("0.2"),
          Decimal(40)),
    Meter("blob", "Storage", "Tiered Block Blob", "Hot LRS Data Stored", "1 GB/Month",
          Decimal("0.0208"), "Microsoft.Storage", "storageAccounts", Decimal(2), Decimal(16)),
)  # fmt: skip

PEC_RATE = Decimal("0.15")  # partner earned credit for services managed
CURRENCY_SYMBOL = {"EUR": "€", "USD": "$", "GBP": "£"}


# --- state ---------------------------------------------------------------------------------


@dataclass
class Subscription:
    data: dict[str, Any]
    customer_id: str
    offer: Offer
    created: datetime
    usage_from: date  # next day of daily rated usage to write (Azure plan)
    term_start: date  # current licence term
    term_end: date
    last_charge: dict[str, Any] | None = None

    @property
    def id(self) -> str:
        return str(self.data["id"])

    @property
    def status(self) -> str:
        return str(self.data["status"])


@dataclass
class Invoice:
    data: dict[str, Any]
    usage: list[dict[str, Any]]
    billing: list[dict[str, Any]]


@dataclass
class Partner:
    tenant: str
    partner_id: str
    name: str
    mpn_id: str
    customers: dict[str, dict[str, Any]] = field(default_factory=dict)
    domains: dict[str, str] = field(default_factory=dict)
    subscriptions: dict[str, Subscription] = field(default_factory=dict)
    orders: dict[str, dict[str, Any]] = field(default_factory=dict)
    requests: dict[str, tuple[int, Any]] = field(default_factory=dict)  # MS-RequestId → answer
    unbilled_usage: list[dict[str, Any]] = field(default_factory=list)
    unbilled_billing: list[dict[str, Any]] = field(default_factory=list)
    invoices: dict[str, Invoice] = field(default_factory=dict)


class PartnerCenterSimulator:
    """All partners' state. Thread-safe: HTTP handlers and ``tick`` share one lock."""

    def __init__(
        self,
        *,
        start: datetime | None = None,
        currency: str = "EUR",
        clients: dict[str, str] | None = None,
        token_lifetime: int = 3600,
        invoice_delay: timedelta = timedelta(days=2),
        usage_lag: timedelta = timedelta(0),
        seed: str = "billbyte",
    ) -> None:
        self.now = (start or datetime.now(UTC)).astimezone(UTC)
        self.currency = currency.upper()
        if self.currency not in USD_TO:
            raise ValueError(f"sandbox currency must be one of {sorted(USD_TO)}")
        self.clients = dict(clients or {})  # empty: any client id and secret are accepted
        self.token_lifetime = token_lifetime
        self.invoice_delay = invoice_delay
        self.usage_lag = usage_lag
        self.seed = seed
        self.faults = FaultPlan()
        self.partners: dict[str, Partner] = {}
        self.tokens: dict[str, tuple[str, float]] = {}  # token → (tenant, expires epoch)
        self._snapshots: OrderedDict[str, list[dict[str, Any]]] = OrderedDict()
        self._invoice_seq = 0
        self.lock = threading.RLock()

    # -- partners and tokens --

    def partner(self, tenant: str) -> Partner:
        key = tenant.lower()
        with self.lock:
            found = self.partners.get(key)
            if found is None:
                try:
                    partner_id = str(uuid.UUID(key))
                except ValueError:
                    partner_id = _guid("partner", key)
                digits = str(int(uuid.UUID(partner_id)) % 9_000_000 + 1_000_000)
                found = Partner(key, partner_id, f"Sandbox partner {tenant}", digits)
                self.partners[key] = found
            return found

    def issue_token(self, tenant: str, client_id: str, client_secret: str) -> str | None:
        expected = self.clients.get(client_id) if self.clients else client_secret
        if not client_id or not client_secret or expected != client_secret:
            return None
        token = secrets.token_urlsafe(32)
        with self.lock:
            self.partner(tenant)
            self.tokens[token] = (tenant.lower(), time.time() + self.token_lifetime)
        return token

    def partner_for_token(self, token: str | None) -> Partner | None:
        if not token:
            return None
        with self.lock:
            found = self.tokens.get(token)
            if found is None or found[1] < time.time():
                return None
            return self.partners[found[0]]

    def revoke_tokens(self) -> None:
        """Every issued token becomes invalid (as if expired): clients must get a new one."""
        with self.lock:
            self.tokens.clear()

    # -- customers --

    def create_customer(self, partner: Partner, body: dict[str, Any]) -> dict[str, Any]:
        company = body.get("companyprofile") or {}
        billing = body.get("billingprofile") or {}
        address = billing.get("defaultaddress") or {}
        domain = str(company.get("domain") or "").strip().lower()
        missing = [
            name
            for name, value in (
                ("CompanyProfile.Domain", domain),
                ("BillingProfile.CompanyName", billing.get("companyname")),
                ("BillingProfile.Email", billing.get("email")),
                ("BillingProfile.Culture", billing.get("culture")),
                ("BillingProfile.Language", billing.get("language")),
                ("BillingProfile.DefaultAddress.Country", address.get("country")),
            )
            if not value
        ]
        if missing:
            raise PartnerCenterError(400, 2000, f"Missing required field(s): {', '.join(missing)}")
        with self.lock:
            existing = partner.domains.get(domain)
            if existing:  # documented as idempotent: the same domain is the same customer
                return self.customer_view(partner.customers[existing])
            tenant_id = str(uuid.uuid4())
            customer = {
                "id": tenant_id,
                "commerceId": str(uuid.uuid4()),
                "companyProfile": {
                    "tenantId": tenant_id,
                    "domain": domain,
                    "companyName": billing.get("companyname"),
                    "attributes": {"objectType": "CustomerCompanyProfile"},
                },
                "billingProfile": {
                    "id": str(uuid.uuid4()),
                    "email": billing.get("email"),
                    "culture": billing.get("culture"),
                    "language": billing.get("language"),
                    "companyName": billing.get("companyname"),
                    "defaultAddress": {
                        "country": address.get("country"),
                        "city": address.get("city", ""),
                        "state": address.get("state", ""),
                        "addressLine1": address.get("addressline1", ""),
                        "postalCode": address.get("postalcode", ""),
                        "firstName": address.get("firstname", ""),
                        "lastName": address.get("lastname", ""),
                        "phoneNumber": address.get("phonenumber", ""),
                    },
                    "attributes": {"etag": _etag(), "objectType": "CustomerBillingProfile"},
                },
                "relationshipToPartner": "reseller",
                "allowDelegatedAccess": True,
                "links": {"self": _link(f"/customers/{tenant_id}")},
                "attributes": {"objectType": "Customer"},
            }
            partner.customers[tenant_id] = customer
            partner.domains[domain] = tenant_id
            created = self.customer_view(customer)
            created["userCredentials"] = {
                "userName": "admin",
                "password": secrets.token_urlsafe(9),
            }
            return created

    def customer_view(self, customer: dict[str, Any]) -> dict[str, Any]:
        return copy.deepcopy(customer)

    def get_customer(self, partner: Partner, customer_id: str) -> dict[str, Any]:
        with self.lock:
            customer = partner.customers.get(customer_id.lower())
            if customer is None:
                raise PartnerCenterError(404, 600002, f"Customer {customer_id} was not found.")
            return customer

    def delete_customer(self, partner: Partner, customer_id: str) -> None:
        """Documented for integration-sandbox accounts only: the customer must have no
        active subscription."""
        with self.lock:
            customer = self.get_customer(partner, customer_id)
            active = [s for s in self._subs_of(partner, customer["id"]) if s.status == "active"]
            if active:
                raise PartnerCenterError(
                    409, 600081, "The customer has active subscriptions; suspend them first."
                )
            for sub in self._subs_of(partner, customer["id"]):
                del partner.subscriptions[sub.id]
            del partner.customers[customer["id"]]
            partner.domains = {d: c for d, c in partner.domains.items() if c != customer["id"]}

    # -- orders and subscriptions --

    def _subs_of(self, partner: Partner, customer_id: str) -> list[Subscription]:
        return [s for s in partner.subscriptions.values() if s.customer_id == customer_id]

    def create_order(
        self, partner: Partner, customer_id: str, body: dict[str, Any]
    ) -> dict[str, Any]:
        with self.lock:
            customer = self.get_customer(partner, customer_id)
            items = body.get("lineitems") or []
            if not isinstance(items, list) or not items:
                raise PartnerCenterError(400, 2000, "An order needs at least one line item.")
            offers: list[tuple[dict[str, Any], Offer]] = []
            for item in items:
                offer = OFFERS.get(str(item.get("offerid") or "").upper())
                if offer is None:
                    raise PartnerCenterError(
                        400, 400030, f"Offer {item.get('offerid')!r} is not in the catalog."
                    )
                if offer.kind == "azure_plan" and any(
                    s.offer.kind == "azure_plan" and s.status != "deleted"
                    for s in self._subs_of(partner, customer["id"])
                ):
                    raise PartnerCenterError(400, 800096, "The customer already has an Azure plan.")
                offers.append((item, offer))
            order_id = secrets.token_urlsafe(24).replace("-", "A").replace("_", "b")
            line_items = []
            for number, (item, offer) in enumerate(offers):
                quantity = int(item.get("quantity") or 1)
                sub = self._new_subscription(partner, customer, offer, order_id, item, quantity)
                line_items.append(
                    {
                        "lineItemNumber": int(item.get("lineitemnumber", number)),
                        "offerId": offer.offer_id,
                        "subscriptionId": sub.id,
                        "friendlyName": sub.data["friendlyName"],
                        "quantity": quantity,
                        "links": {
                            "subscription": _link(
                                f"/customers/{customer['id']}/subscriptions/{sub.id}"
                            )
                        },
                    }
                )
            order = {
                "id": order_id,
                "referenceCustomerId": customer["id"],
                "billingCycle": str(body.get("billingcycle") or "monthly").lower(),
                "currencyCode": self.currency,
                "lineItems": line_items,
                "creationDate": iso_z(self.now),
                "status": "completed",
                "links": {
                    "provisioningStatus": _link(
                        f"/customers/{customer['id']}/orders/{order_id}/provisioningstatus"
                    ),
                    "self": _link(f"/customers/{customer['id']}/orders/{order_id}"),
                },
                "attributes": {"objectType": "Order"},
            }
            partner.orders[order_id] = order
            return copy.deepcopy(order)

    def _new_subscription(
        self,
        partner: Partner,
        customer: dict[str, Any],
        offer: Offer,
        order_id: str,
        item: dict[str, Any],
        quantity: int,
    ) -> Subscription:
        sub_id = str(uuid.uuid4())
        today = self.now.date()
        azure = offer.kind == "azure_plan"
        term_end = add_months(today, 1)
        data = {
            "id": sub_id,
            "offerId": offer.offer_id,
            "entitlementId": str(uuid.uuid4()),
            "offerName": offer.product_name,
            "friendlyName": item.get("friendlyname") or offer.sku_name,
            "quantity": 1 if azure else quantity,
            "unitType": "none" if azure else "Licenses",
            "hasPurchasableAddons": False,
            "creationDate": iso_z(self.now),
            "effectiveStartDate": day_z(today),
            "commitmentEndDate": day_z(date(9999, 12, 14) if azure else term_end),
            "status": "active",
            "autoRenewEnabled": not azure,
            "isTrial": False,
            "billingType": "usage" if azure else "license",
            "billingCycle": "monthly",
            "termDuration": None if azure else "P1M",
            "contractType": "subscription",
            "orderId": order_id,
            "links": {
                "offer": _link(f"/offers/{offer.offer_id}"),
                "self": _link(f"/customers/{customer['id']}/subscriptions/{sub_id}"),
            },
            "attributes": {"etag": _etag(), "objectType": "Subscription"},
        }
        sub = Subscription(
            data=data,
            customer_id=customer["id"],
            offer=offer,
            created=self.now,
            usage_from=today,
            term_start=today,
            term_end=term_end,
        )
        partner.subscriptions[sub_id] = sub
        if not azure:
            sub.last_charge = self._licence_charge(partner, sub, "new", today, term_end)
        return sub

    def get_order(self, partner: Partner, customer_id: str, order_id: str) -> dict[str, Any]:
        with self.lock:
            self.get_customer(partner, customer_id)
            order = partner.orders.get(order_id)
            if order is None or order["referenceCustomerId"] != customer_id.lower():
                raise PartnerCenterError(404, 600002, f"Order {order_id} was not found.")
            return copy.deepcopy(order)

    def list_subscriptions(self, partner: Partner, customer_id: str) -> list[dict[str, Any]]:
        with self.lock:
            customer = self.get_customer(partner, customer_id)
            return [copy.deepcopy(s.data) for s in self._subs_of(partner, customer["id"])]

    def _subscription(self, partner: Partner, customer_id: str, sub_id: str) -> Subscription:
        customer = self.get_customer(partner, customer_id)
        sub = partner.subscriptions.get(sub_id.lower())
        if sub is None or sub.customer_id != customer["id"]:
            raise PartnerCenterError(404, 600002, f"Subscription {sub_id} was not found.")
        return sub

    def get_subscription(self, partner: Partner, customer_id: str, sub_id: str) -> dict[str, Any]:
        with self.lock:
            return copy.deepcopy(self._subscription(partner, customer_id, sub_id).data)

    def patch_subscription(
        self,
        partner: Partner,
        customer_id: str,
        sub_id: str,
        body: dict[str, Any],
        if_match: str | None,
    ) -> dict[str, Any]:
        with self.lock:
            sub = self._subscription(partner, customer_id, sub_id)
            etag = sub.data["attributes"]["etag"]
            if if_match and if_match.strip('"') != etag:
                raise PartnerCenterError(412, 600006, "The subscription was changed (etag).")
            if sub.status == "deleted":
                raise PartnerCenterError(400, 800002, "A deleted subscription cannot change.")
            wanted = str(body.get("status") or sub.status).strip().lower()
            if wanted not in ("active", "suspended", "deleted"):
                raise PartnerCenterError(400, 2000, f"Unknown subscription status {wanted!r}.")
            if wanted == "deleted" and sub.offer.kind == "azure_plan":
                raise PartnerCenterError(
                    400, 800038, "An Azure plan cannot be cancelled; suspend it instead."
                )
            if body.get("friendlyname"):
                sub.data["friendlyName"] = str(body["friendlyname"])
            if wanted != sub.status:
                if wanted == "deleted":
                    self._cancel_licence(partner, sub)
                elif wanted == "active" and sub.offer.kind == "azure_plan":
                    # Usage restarts from the day of reactivation.
                    sub.usage_from = max(sub.usage_from, self.now.date())
                sub.data["status"] = wanted
                sub.data["attributes"]["etag"] = _etag()
            return copy.deepcopy(sub.data)

    # -- billing: line items ---

    def _customer_of(self, partner: Partner, sub: Subscription) -> dict[str, Any]:
        return partner.customers.get(sub.customer_id) or {
            "id": sub.customer_id,
            "companyProfile": {"domain": "", "companyName": ""},
            "billingProfile": {"companyName": "", "defaultAddress": {"country": ""}},
        }

    def _licence_charge(
        self,
        partner: Partner,
        sub: Subscription,
        charge_type: str,
        start: date,
        end: date,
        *,
        amount: Decimal | None = None,
    ) -> dict[str, Any]:
        customer = self._customer_of(partner, sub)
        quantity = Decimal(int(sub.data["quantity"]))
        subtotal = sub.offer.unit_price * quantity if amount is None else amount
        order_date = iso_z(self.now)
        item = {
            "partnerId": partner.partner_id,
            "customerId": f"org:{sub.customer_id}",
            "customerName": customer["billingProfile"]["companyName"],
            "customerDomainName": customer["companyProfile"]["domain"],
            "customerCountry": customer["billingProfile"]["defaultAddress"]["country"],
            "invoiceNumber": "",
            "mpnId": partner.mpn_id,
            "resellerMpnId": 0,
            "orderId": sub.data["orderId"],
            "orderDate": order_date,
            "productId": sub.offer.offer_id.split(":")[0],
            "skuId": sub.offer.offer_id.split(":")[1],
            "availabilityId": sub.offer.offer_id.split(":")[2],
            "productName": sub.offer.product_name,
            "skuName": sub.offer.sku_name,
            "chargeType": charge_type,
            "unitPrice": sub.offer.unit_price,
            "effectiveUnitPrice": sub.offer.unit_price,
            "unitType": "Licenses",
            "quantity": quantity if amount is None else -quantity,
            "subtotal": subtotal,
            "taxTotal": Decimal(0),
            "totalForCustomer": Decimal(0),
            "currency": self.currency,
            "publisherName": "Microsoft Corporation",
            "publisherId": "",
            "subscriptionDescription": sub.data["friendlyName"],
            "subscriptionId": sub.id,
            "chargeStartDate": day_z(start),
            "chargeEndDate": day_z(end - timedelta(days=1)),
            "termAndBillingCycle": "1 Month Subscription",
            "alternateId": secrets.token_hex(6),
            "priceAdjustmentDescription": "",
            "discountDetails": "",
            "pricingCurrency": self.currency,
            "pcToBCExchangeRate": Decimal(1),
            "pcToBCExchangeRateDate": day_z(month_start(start)),
            "billableQuantity": quantity if amount is None else -quantity,
            "meterDescription": "",
            "reservationOrderId": "",
            "billingFrequency": "Monthly",
            "invoiceLineItemType": "billing_line_items",
            "billingProvider": "one_time",
            "attributes": {"objectType": "OneTimeInvoiceLineItem"},
        }
        partner.unbilled_billing.append(item)
        return item

    def _cancel_licence(self, partner: Partner, sub: Subscription) -> None:
        """New-commerce cancellation within 7 days of the term start refunds the unused days."""
        if sub.offer.kind != "licence" or sub.last_charge is None:
            return
        if self.now.date() - sub.term_start > timedelta(days=7):
            return
        term_days = (sub.term_end - sub.term_start).days
        unused = max((sub.term_end - self.now.date()).days, 0)
        charged = Decimal(sub.last_charge["subtotal"])
        refund = (charged * unused / term_days).quantize(Decimal("0.01"), ROUND_HALF_EVEN)
        if refund:
            self._licence_charge(
                partner,
                sub,
                "cancelImmediate",
                self.now.date(),
                sub.term_end,
                amount=-refund,
            )

    def _usage_items(self, partner: Partner, sub: Subscription, day: date) -> list[dict[str, Any]]:
        customer = self._customer_of(partner, sub)
        rng = random.Random(f"{self.seed}|{sub.id}|{day.isoformat()}")
        azure_sub = sub.data["entitlementId"]
        rate = USD_TO[self.currency]
        period = month_start(day)
        vms = 1 + int(uuid.UUID(sub.id)) % 3
        days_in_month = calendar.monthrange(day.year, day.month)[1]
        items: list[dict[str, Any]] = []
        for meter in METERS:
            copies = vms if meter.key in ("vm", "disk", "egress") else 1
            for index in range(1, copies + 1):
                if meter.key == "disk":
                    quantity = (Decimal(1) / days_in_month).quantize(Decimal("0.000001"))
                else:
                    span = float(meter.high - meter.low)
                    quantity = (meter.low + Decimal(str(round(rng.random() * span, 4)))).quantize(
                        Decimal("0.0001")
                    )
                if meter.key == "vm" and rng.random() < 0.5:
                    quantity = Decimal(24)
                group = "rg-app" if meter.key != "blob" else "rg-data"
                name = (
                    f"vm-{index:02d}"
                    if meter.key == "vm"
                    else f"vm-{index:02d}-osdisk"
                    if meter.key == "disk"
                    else f"vm-{index:02d}-ip"
                    if meter.key == "egress"
                    else f"st{sub.id[:8]}"
                )
                effective = meter.unit_price * (1 - PEC_RATE)
                billed = (effective * quantity * rate).quantize(Decimal("0.01"), ROUND_FLOOR)
                items.append(
                    {
                        "partnerId": partner.partner_id,
                        "partnerName": partner.name,
                        "customerId": sub.customer_id,
                        "customerName": customer["billingProfile"]["companyName"],
                        "customerDomainName": customer["companyProfile"]["domain"],
                        "invoiceNumber": "",
                        "productId": "DZH318Z0BPS6",
                        "skuId": "0001",
                        "availabilityId": "DZH318Z0BML6",
                        "skuName": "Azure plan",
                        "productName": "Azure plan",
                        "publisherName": "Microsoft",
                        "publisherId": "",
                        "subscriptionId": sub.id,
                        "subscriptionDescription": sub.data["friendlyName"],
                        "chargeStartDate": day_z(period),
                        "chargeEndDate": day_z(add_months(period, 1)),
                        "usageDate": day_z(day),
                        "meterType": meter.unit,
                        "meterCategory": meter.category,
                        "meterId": _guid("meter", meter.key),
                        "meterSubCategory": meter.sub_category,
                        "meterName": meter.name,
                        "meterRegion": "EU West",
                        "unitOfMeasure": meter.unit,
                        "resourceLocation": "westeurope",
                        "consumedService": meter.service,
                        "resourceGroup": group,
                        "resourceUri": (
                            f"/subscriptions/{azure_sub}/resourceGroups/{group}/providers/"
                            f"{meter.service}/{meter.resource_type}/{name}"
                        ),
                        "tags": json.dumps({"env": "prod", "app": "web"}),
                        "additionalInfo": "",
                        "serviceInfo1": "",
                        "serviceInfo2": "",
                        "customerCountry": customer["billingProfile"]["defaultAddress"]["country"],
                        "mpnId": partner.mpn_id,
                        "resellerMpnId": "",
                        "chargeType": "new",
                        "unitPrice": meter.unit_price,
                        "quantity": quantity,
                        "unitType": meter.unit,
                        "billingPreTaxTotal": billed,
                        "billingCurrency": self.currency,
                        "pricingPreTaxTotal": meter.unit_price * quantity,
                        "pricingCurrency": "USD",
                        "entitlementId": azure_sub,
                        "entitlementDescription": "Azure subscription 1",
                        "pcToBCExchangeRate": rate,
                        "pcToBCExchangeRateDate": day_z(period),
                        "effectiveUnitPrice": effective,
                        "rateOfPartnerEarnedCredit": PEC_RATE,
                        "invoiceLineItemType": "usage_line_items",
                        "billingProvider": "azure_plan",
                        "attributes": {"objectType": "DailyRatedUsageLineItem"},
                    }
                )
        return items

    # -- the clock --

    def tick(self, now: datetime | None = None) -> None:
        """Advance the simulated clock to ``now`` (default: the real time; never backwards)
        and write what happened meanwhile."""
        with self.lock:
            target = (now or datetime.now(UTC)).astimezone(UTC)
            if target > self.now:
                self.now = target
            for partner in self.partners.values():
                self._write_usage(partner)
                self._renew_licences(partner)
                self._close_periods(partner)

    def _write_usage(self, partner: Partner) -> None:
        available = self.now - self.usage_lag
        for sub in partner.subscriptions.values():
            if sub.offer.kind != "azure_plan" or sub.status == "deleted":
                continue
            while midnight(sub.usage_from + timedelta(days=1)) <= available:
                if sub.status == "active":
                    partner.unbilled_usage.extend(self._usage_items(partner, sub, sub.usage_from))
                sub.usage_from += timedelta(days=1)

    def _renew_licences(self, partner: Partner) -> None:
        today = self.now.date()
        for sub in partner.subscriptions.values():
            if sub.offer.kind != "licence" or sub.status == "deleted":
                continue
            while sub.term_end <= today:
                sub.term_start, sub.term_end = sub.term_end, add_months(sub.term_end, 1)
                sub.data["commitmentEndDate"] = day_z(sub.term_end)
                if sub.status == "active":  # a suspended subscription is not renewed/billed
                    sub.last_charge = self._licence_charge(
                        partner, sub, "cycleCharge", sub.term_start, sub.term_end
                    )

    def _close_periods(self, partner: Partner) -> None:
        periods = {_period_of(i) for i in partner.unbilled_usage + partner.unbilled_billing}
        for period in sorted(periods):
            closes = midnight(add_months(period, 1))
            if self.now < closes + self.invoice_delay:
                continue
            self._invoice_seq += 1
            number = f"G{self._invoice_seq:09d}"
            usage = [i for i in partner.unbilled_usage if _period_of(i) == period]
            billing = [i for i in partner.unbilled_billing if _period_of(i) == period]
            partner.unbilled_usage = [i for i in partner.unbilled_usage if _period_of(i) != period]
            partner.unbilled_billing = [
                i for i in partner.unbilled_billing if _period_of(i) != period
            ]
            billed_usage = [i | {"invoiceNumber": number} for i in usage]
            billed_billing = []
            for item in billing:
                tax = (Decimal(item["subtotal"]) * Decimal("0.19")).quantize(Decimal("0.01"))
                billed_billing.append(
                    item
                    | {
                        "invoiceNumber": number,
                        "taxTotal": tax,
                        "totalForCustomer": Decimal(item["subtotal"]) + tax,
                    }
                )
            pre_tax = sum((Decimal(i["billingPreTaxTotal"]) for i in billed_usage), Decimal(0))
            total = pre_tax + sum(
                (Decimal(i["totalForCustomer"]) for i in billed_billing), Decimal(0)
            )
            issued = closes + self.invoice_delay
            data = {
                "id": number,
                "invoiceDate": iso_z(issued),
                "billingPeriodStartDate": day_z(period),
                "billingPeriodEndDate": day_z(add_months(period, 1) - timedelta(days=1)),
                "totalCharges": total,
                "paidAmount": Decimal(0),
                "currencyCode": self.currency,
                "currencySymbol": CURRENCY_SYMBOL.get(self.currency, self.currency),
                "pdfDownloadLink": f"/invoices/{number}/documents/statement",
                "taxReceipts": [],
                "invoiceDetails": [
                    {
                        "invoiceLineItemType": kind,
                        "billingProvider": "one_time",
                        "links": {"self": _link(f"/invoices/{number}/lineitems/OneTime/{path}")},
                        "attributes": {"objectType": "InvoiceDetail"},
                    }
                    for kind, path in (
                        ("billing_line_items", "BillingLineItems"),
                        ("usage_line_items", "UsageLineItems"),
                    )
                ],
                "documentType": "invoice",
                "invoiceType": "OneTime",
                "links": {"self": _link(f"/invoices/{number}")},
                "attributes": {"objectType": "Invoice"},
            }
            partner.invoices[number] = Invoice(data, billed_usage, billed_billing)

    # -- reading line items, with seek paging --

    def line_items(
        self, partner: Partner, invoice: str, kind: str, currency: str, period: str | None
    ) -> list[dict[str, Any]]:
        with self.lock:
            if invoice.lower() == "unbilled":
                wanted = month_start(self.now.date())
                if (period or "").lower() == "previous":
                    wanted = add_months(wanted, -1)
                elif (period or "").lower() != "current":
                    raise PartnerCenterError(400, 2000, "period must be current or previous.")
                pool = partner.unbilled_usage if kind == "usage" else partner.unbilled_billing
                items = [i for i in pool if _period_of(i) == wanted]
            else:
                found = partner.invoices.get(invoice.upper())
                if found is None:
                    raise PartnerCenterError(404, 600002, f"Invoice {invoice} was not found.")
                items = found.usage if kind == "usage" else found.billing
            key = "billingCurrency" if kind == "usage" else "currency"
            return [i for i in items if str(i[key]).upper() == currency.upper()]

    def snapshot(self, items: list[dict[str, Any]]) -> str:
        with self.lock:
            snapshot_id = secrets.token_hex(8)
            self._snapshots[snapshot_id] = list(items)
            while len(self._snapshots) > 512:
                self._snapshots.popitem(last=False)
            return snapshot_id

    def page(self, snapshot_id: str, offset: int, size: int) -> tuple[list[dict[str, Any]], bool]:
        with self.lock:
            items = self._snapshots.get(snapshot_id)
            if items is None:
                raise PartnerCenterError(400, 600010, "The continuation token has expired.")
            return items[offset : offset + size], offset + size < len(items)

    # -- saving and restoring (``sandbox.state``) --

    def export_state(self) -> dict[str, Any]:
        """Everything a restarted simulator needs (not tokens nor paging snapshots: clients
        ask for new ones), as JSON data."""
        with self.lock:
            return encode(
                {
                    "now": self.now,
                    "invoice_seq": self._invoice_seq,
                    "partners": [
                        {
                            "tenant": p.tenant,
                            "partner_id": p.partner_id,
                            "name": p.name,
                            "mpn_id": p.mpn_id,
                            "customers": p.customers,
                            "domains": p.domains,
                            "subscriptions": [
                                {
                                    "data": s.data,
                                    "customer_id": s.customer_id,
                                    "offer_id": s.offer.offer_id,
                                    "created": s.created,
                                    "usage_from": s.usage_from,
                                    "term_start": s.term_start,
                                    "term_end": s.term_end,
                                    "last_charge": s.last_charge,
                                }
                                for s in p.subscriptions.values()
                            ],
                            "orders": p.orders,
                            "requests": p.requests,
                            "unbilled_usage": p.unbilled_usage,
                            "unbilled_billing": p.unbilled_billing,
                            "invoices": [
                                {"data": i.data, "usage": i.usage, "billing": i.billing}
                                for i in p.invoices.values()
                            ],
                        }
                        for p in self.partners.values()
                    ],
                }
            )

    def restore_state(self, saved: dict[str, Any]) -> int:
        """Replace the state with an ``export_state()``; returns how many customers it has."""
        state = decode(saved)
        partners: dict[str, Partner] = {}
        for item in state["partners"]:
            partner = Partner(
                item["tenant"],
                item["partner_id"],
                item["name"],
                item["mpn_id"],
                customers=item["customers"],
                domains=item["domains"],
                orders=item["orders"],
                requests={k: (int(v[0]), v[1]) for k, v in item["requests"].items()},
                unbilled_usage=item["unbilled_usage"],
                unbilled_billing=item["unbilled_billing"],
            )
            for sub in item["subscriptions"]:
                restored = Subscription(
                    data=sub["data"],
                    customer_id=sub["customer_id"],
                    offer=OFFERS[sub["offer_id"]],
                    created=sub["created"],
                    usage_from=sub["usage_from"],
                    term_start=sub["term_start"],
                    term_end=sub["term_end"],
                    last_charge=sub["last_charge"],
                )
                partner.subscriptions[restored.id] = restored
            for invoice in item["invoices"]:
                partner.invoices[invoice["data"]["id"]] = Invoice(
                    invoice["data"], invoice["usage"], invoice["billing"]
                )
            partners[partner.tenant] = partner
        with self.lock:
            self.now = max(self.now, state["now"])
            self._invoice_seq = int(state["invoice_seq"])
            self.partners = partners
            self.tokens.clear()
            self._snapshots.clear()
            return sum(len(p.customers) for p in partners.values())

    # -- introspection --

    def summary(self) -> dict[str, Any]:
        with self.lock:
            return {
                "partners": {
                    p.tenant: {
                        "customers": len(p.customers),
                        "subscriptions": {
                            s.id: {"customer": s.customer_id, "offer": s.offer.offer_id,
                                   "status": s.status}
                            for s in p.subscriptions.values()
                        },
                        "unbilled_usage_items": len(p.unbilled_usage),
                        "unbilled_billing_items": len(p.unbilled_billing),
                        "invoices": sorted(p.invoices),
                    }
                    for p in self.partners.values()
                }
            }  # fmt: skip

    def all_items(self, tenant: str) -> Iterator[dict[str, Any]]:
        """Every line item of a partner, billed and unbilled (tests, demos)."""
        with self.lock:
            partner = self.partner(tenant)
            yield from list(partner.unbilled_usage) + list(partner.unbilled_billing)
            for invoice in partner.invoices.values():
                yield from list(invoice.usage) + list(invoice.billing)


def _period_of(item: dict[str, Any]) -> date:
    return month_start(parse_instant(str(item["chargeStartDate"])[:10]).date())


def _etag() -> str:
    return str(secrets.randbits(63))


def _link(uri: str, headers: list[dict[str, str]] | None = None) -> dict[str, Any]:
    return {"uri": uri, "method": "GET", "headers": headers or []}


class PartnerCenterError(Exception):
    def __init__(self, status: int, code: int, description: str) -> None:
        super().__init__(description)
        self.status, self.code, self.description = status, code, description


def pc_error_body(status: int, description: str, code: int | None = None) -> dict[str, Any]:
    """Partner Center's REST error shape."""
    return {
        "code": code if code is not None else status,
        "description": description,
        "data": [],
        "source": "PartnerFD",
    }


# --- HTTP ----------------------------------------------------------------------------------

_COLLECTION = {"objectType": "Collection"}


def create_partner_center_app(simulator: PartnerCenterSimulator) -> FastAPI:
    app = FastAPI(title="BillByte sandbox: Microsoft Partner Center", docs_url=None, redoc_url=None)
    install_faults(
        app,
        simulator.faults,
        lambda status, text: pc_error_body(status, text),
        lambda: simulator.now,
    )
    app.include_router(control_router(simulator))

    @app.exception_handler(PartnerCenterError)
    async def _error(_request: Request, exc: PartnerCenterError) -> Response:
        return ExactJSONResponse(pc_error_body(exc.status, exc.description, exc.code), exc.status)

    def authorised(request: Request) -> Partner:
        partner = simulator.partner_for_token(bearer_token(request))
        if partner is None:
            raise _Unauthorised()
        return partner

    @app.exception_handler(_Unauthorised)
    async def _unauthorised(_request: Request, _exc: _Unauthorised) -> Response:
        body = pc_error_body(401, "The bearer token is missing, invalid or expired.", 900300)
        return ExactJSONResponse(body, 401, {"WWW-Authenticate": 'Bearer realm="partnercenter"'})

    async def body_of(request: Request) -> dict[str, Any]:
        raw = await request.body()
        try:
            value = json.loads(raw or b"{}", parse_float=Decimal)
        except json.JSONDecodeError as exc:
            raise PartnerCenterError(400, 2000, f"Malformed JSON: {exc.msg}.") from None
        if not isinstance(value, dict):
            raise PartnerCenterError(400, 2000, "Expected a JSON object.")
        return dict(lower_keys(value))

    def replay(partner: Partner, request: Request, scope: str) -> tuple[str | None, Any]:
        request_id = request.headers.get("ms-requestid")
        if not request_id:
            return None, None
        key = f"{scope}|{request_id.lower()}"
        with simulator.lock:
            return key, partner.requests.get(key)

    def remember(partner: Partner, key: str | None, status: int, body: Any) -> None:
        if key:
            with simulator.lock:
                partner.requests[key] = (status, copy.deepcopy(body))

    # -- token --

    @app.post("/{tenant}/oauth2/token")
    async def token(tenant: str, request: Request) -> Response:
        form = await request.form()
        grant = str(form.get("grant_type") or "")
        if grant != "client_credentials":
            return ExactJSONResponse(
                {"error": "unsupported_grant_type",
                 "error_description": "AADSTS70003: grant_type must be client_credentials."},
                400,
            )  # fmt: skip
        issued = simulator.issue_token(
            tenant, str(form.get("client_id") or ""), str(form.get("client_secret") or "")
        )
        if issued is None:
            return ExactJSONResponse(
                {"error": "invalid_client",
                 "error_description": "AADSTS7000215: Invalid client secret provided."},
                401,
            )  # fmt: skip
        now = int(time.time())
        lifetime = simulator.token_lifetime
        return ExactJSONResponse(
            {
                "token_type": "Bearer",
                "expires_in": str(lifetime),
                "ext_expires_in": str(lifetime),
                "expires_on": str(now + lifetime),
                "not_before": str(now),
                "resource": str(form.get("resource") or "https://api.partnercenter.microsoft.com"),
                "access_token": issued,
            }
        )

    # -- customers --

    @app.post("/v1/customers")
    async def create_customer(request: Request) -> Response:
        partner = authorised(request)
        key, seen = replay(partner, request, "customers")
        if seen:
            return ExactJSONResponse(seen[1], seen[0])
        created = simulator.create_customer(partner, await body_of(request))
        remember(partner, key, 201, created)
        return ExactJSONResponse(created, 201)

    @app.get("/v1/customers")
    def list_customers(request: Request, size: int = 2000) -> Response:
        partner = authorised(request)
        with simulator.lock:
            customers = [simulator.customer_view(c) for c in partner.customers.values()]
        return paged(request, customers, "/customers", size)

    @app.get("/v1/customers/{customer_id}")
    def get_customer(customer_id: str, request: Request) -> Response:
        partner = authorised(request)
        return ExactJSONResponse(
            simulator.customer_view(simulator.get_customer(partner, customer_id))
        )

    @app.delete("/v1/customers/{customer_id}")
    def delete_customer(customer_id: str, request: Request) -> Response:
        simulator.delete_customer(authorised(request), customer_id)
        return Response(status_code=204)

    @app.post("/v1/customers/{customer_id}/orders")
    async def create_order(customer_id: str, request: Request) -> Response:
        partner = authorised(request)
        key, seen = replay(partner, request, f"orders|{customer_id.lower()}")
        if seen:
            return ExactJSONResponse(seen[1], seen[0])
        order = simulator.create_order(partner, customer_id, await body_of(request))
        remember(partner, key, 201, order)
        return ExactJSONResponse(order, 201)

    @app.get("/v1/customers/{customer_id}/orders/{order_id}")
    def get_order(customer_id: str, order_id: str, request: Request) -> Response:
        return ExactJSONResponse(simulator.get_order(authorised(request), customer_id, order_id))

    @app.get("/v1/customers/{customer_id}/subscriptions")
    def list_subscriptions(customer_id: str, request: Request) -> Response:
        items = simulator.list_subscriptions(authorised(request), customer_id)
        return ExactJSONResponse(
            {"totalCount": len(items), "items": items,
             "links": {"self": _link(f"/customers/{customer_id}/subscriptions")},
             "attributes": _COLLECTION}
        )  # fmt: skip

    @app.get("/v1/customers/{customer_id}/subscriptions/{sub_id}")
    def get_subscription(customer_id: str, sub_id: str, request: Request) -> Response:
        return ExactJSONResponse(
            simulator.get_subscription(authorised(request), customer_id, sub_id)
        )

    @app.patch("/v1/customers/{customer_id}/subscriptions/{sub_id}")
    async def patch_subscription(customer_id: str, sub_id: str, request: Request) -> Response:
        partner = authorised(request)
        body = await body_of(request)
        return ExactJSONResponse(
            simulator.patch_subscription(
                partner, customer_id, sub_id, body, request.headers.get("if-match")
            )
        )

    # -- invoices and line items --

    @app.get("/v1/invoices")
    def list_invoices(request: Request) -> Response:
        partner = authorised(request)
        with simulator.lock:
            items = [copy.deepcopy(i.data) for i in partner.invoices.values()]
        return ExactJSONResponse(
            {"totalCount": len(items), "items": items, "links": {"self": _link("/invoices")},
             "attributes": _COLLECTION}
        )  # fmt: skip

    @app.get("/v1/invoices/{invoice_id}")
    def get_invoice(invoice_id: str, request: Request) -> Response:
        partner = authorised(request)
        with simulator.lock:
            found = partner.invoices.get(invoice_id.upper())
            if found is None:
                raise PartnerCenterError(404, 600002, f"Invoice {invoice_id} was not found.")
            return ExactJSONResponse(copy.deepcopy(found.data))

    @app.get("/v1/invoices/{invoice_id}/lineitems")
    def line_items(invoice_id: str, request: Request) -> Response:
        partner = authorised(request)
        query = {k.lower(): v for k, v in request.query_params.items()}
        if query.get("provider", "").lower() != "onetime":
            raise PartnerCenterError(
                400, 2000, "This sandbox serves provider=onetime (new commerce) line items."
            )
        kinds = {"usagelineitems": "usage", "billinglineitems": "billing"}
        kind = kinds.get(query.get("invoicelineitemtype", "").lower())
        if kind is None:
            raise PartnerCenterError(
                400, 2000, "invoicelineitemtype must be usagelineitems or billinglineitems."
            )
        currency = query.get("currencycode", "")
        if not currency:
            raise PartnerCenterError(400, 2000, "currencycode is required.")
        items = simulator.line_items(partner, invoice_id, kind, currency, query.get("period"))
        self_uri = f"/invoices/{invoice_id}/lineitems?" + "&".join(
            f"{k}={v}" for k, v in request.query_params.items() if k.lower() != "seekoperation"
        )
        return paged(request, items, self_uri, int(query.get("size") or 2000))

    def paged(request: Request, items: list[dict[str, Any]], self_uri: str, size: int) -> Response:
        size = max(1, min(size, 2000))
        seek = request.query_params.get("seekOperation") or request.query_params.get(
            "seekoperation"
        )
        if seek:
            if seek.lower() != "next":
                raise PartnerCenterError(400, 2000, "seekOperation must be Next.")
            token = request.headers.get("ms-continuationtoken")
            if not token:
                raise PartnerCenterError(400, 2000, "MS-ContinuationToken header is required.")
            try:
                state = json.loads(base64.urlsafe_b64decode(token.encode()))
                snapshot_id, offset = str(state["s"]), int(state["o"])
            except (ValueError, KeyError, TypeError):
                raise PartnerCenterError(400, 600010, "Invalid continuation token.") from None
        else:
            snapshot_id, offset = simulator.snapshot(items), 0
        page, more = simulator.page(snapshot_id, offset, size)
        links: dict[str, Any] = {"self": _link(self_uri)}
        if more:
            token = base64.urlsafe_b64encode(
                json.dumps({"s": snapshot_id, "o": offset + size}).encode()
            ).decode()
            joiner = "&" if "?" in self_uri else "?"
            links["next"] = _link(
                f"{self_uri}{joiner}seekOperation=Next",
                [{"key": "MS-ContinuationToken", "value": token}],
            )
        return ExactJSONResponse(
            {"totalCount": len(page), "items": page, "links": links, "attributes": _COLLECTION}
        )

    # -- a stand-in for the customer's admin portal (the link the connector returns) --

    @app.get("/portal/customers/{customer_id}", response_class=HTMLResponse)
    def portal(customer_id: str) -> HTMLResponse:
        with simulator.lock:
            for partner in simulator.partners.values():
                customer = partner.customers.get(customer_id.lower())
                if customer is not None:
                    subs = simulator._subs_of(partner, customer["id"])
                    break
            else:
                return HTMLResponse("<h1>Customer not found</h1>", 404)
        rows = "".join(
            f"<tr><td>{html.escape(s.data['friendlyName'])}</td><td>{html.escape(s.id)}</td>"
            f"<td>{html.escape(s.status)}</td></tr>"
            for s in subs
        )
        name = html.escape(str(customer["billingProfile"]["companyName"]))
        return HTMLResponse(
            f"<!doctype html><title>{name}</title><h1>{name}</h1>"
            f"<p>Tenant {html.escape(customer['id'])} · "
            f"{html.escape(customer['companyProfile']['domain'])} (BillByte sandbox of the "
            f"Microsoft admin portal)</p><table><tr><th>Subscription</th><th>Id</th>"
            f"<th>Status</th></tr>{rows}</table>"
        )

    return app


class _Unauthorised(Exception):
    pass


def start_partner_center_sandbox(
    port: int | None = None, simulator: PartnerCenterSimulator | None = None
) -> SandboxServer:
    """Serve a Partner Center simulator on 127.0.0.1 (``port`` None: a free port).

    Returns the running server: ``.base_url``, ``.app`` (the simulator), ``.tick(now)``,
    ``.stop()``.
    """
    simulator = simulator or PartnerCenterSimulator()
    return SandboxServer(simulator, create_partner_center_app(simulator), port).start()
