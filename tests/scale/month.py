"""A billing month for many customers: the generated input with its invoices computed here
(plain Decimal arithmetic over the generated numbers, never the code under test), the
webhook receiver, and the API calls an MSP's BSS makes to take it from customers to invoices.

The same calls drive every deployment (one API process and workers on PostgreSQL, a broker
and S3, or the embedded single process), so whatever differs in their results is theirs.
"""

from __future__ import annotations

import json
import random
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from decimal import ROUND_HALF_EVEN, Decimal
from functools import partial
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx

from tests.rating.factories import row, write_csv

PERIOD = "2025-03"  # long past: its invoices are due without force
MARKUP_PERCENT = Decimal("7.5")  # the plan's rule, on cost; credits pass through at cost
CENT = Decimal("0.01")
SERVICES = [
    ("Amazon Elastic Compute Cloud", "Compute"),
    ("Amazon Simple Storage Service", "Storage"),
    ("AWS Lambda", "Compute"),
    ("Amazon Relational Database Service", "Databases"),
]
EVENTS_PER_CUSTOMER = ("customer.created", "invoice.finalized")
WAIT_SECONDS = 300.0  # generous (a shared 2-core machine); waits end once the state is seen


@dataclass(frozen=True)
class CustomerMonth:
    external_id: str
    aws_account: str
    usage: tuple[Decimal, ...]  # usage lines' cost, marked up by the plan
    credits: tuple[Decimal, ...]  # credit lines' cost (negative), passed through at cost

    @property
    def exact(self) -> Decimal:
        return sum(self.usage, Decimal(0)) * (1 + MARKUP_PERCENT / 100) + sum(
            self.credits, Decimal(0)
        )

    @property
    def total(self) -> Decimal:
        """The invoice total: the exact sum rounded half-even to the cent (docs/rating.md)."""
        return self.exact.quantize(CENT, rounding=ROUND_HALF_EVEN)


@dataclass(frozen=True)
class MspMonth:
    index: int
    customers: tuple[CustomerMonth, ...]
    usage_file: Path

    @property
    def name(self) -> str:
        return f"Scale MSP {self.index}"

    @property
    def lines(self) -> int:
        return sum(len(c.usage) + len(c.credits) for c in self.customers)


@dataclass(frozen=True)
class Workload:
    msps: tuple[MspMonth, ...]

    @property
    def customers(self) -> int:
        return sum(len(m.customers) for m in self.msps)

    def expected_totals(self) -> dict[tuple[int, str], Decimal]:
        return {(m.index, c.external_id): c.total for m in self.msps for c in m.customers}

    def expected_exact(self) -> dict[tuple[int, str], Decimal]:
        return {(m.index, c.external_id): c.exact for m in self.msps for c in m.customers}


def _cost(units: int) -> Decimal:
    """Units of 10^-10 as a Decimal: ten decimals, so rounding has digits to work on."""
    return Decimal(units).scaleb(-10)


def generate(directory: Path, msps: int, customers_per_msp: int, seed: int = 13) -> Workload:
    """Each customer gets 5-10 usage lines over the month's days and services (up to 500 USD
    each, ten decimals), every seventh also a credit line; one FOCUS file per MSP."""
    rng = random.Random(seed)
    out = []
    for m in range(msps):
        customers = []
        rows = []
        for c in range(customers_per_msp):
            account = f"{100_000_000_000 + m * 10_000 + c}"
            usage = tuple(_cost(rng.randint(1, 5 * 10**12)) for _ in range(rng.randint(5, 10)))
            credits = (_cost(-rng.randint(1, 10**10)),) if c % 7 == 3 else ()
            customers.append(CustomerMonth(f"M{m}-C{c:04d}", account, usage, credits))
            for n, cost in enumerate(usage):
                service, category = SERVICES[(c + n) % len(SERVICES)]
                rows.append(
                    row(
                        str(cost),
                        day=1 + (c + 3 * n) % 28,
                        sub=account,
                        service=service,
                        category=category,
                        sku=f"SKU-{n % 3}",
                        quantity=str(1 + n),
                        resource=f"res-{account}-{n}",
                    )
                )
            for n, cost in enumerate(credits):
                rows.append(
                    row(
                        str(cost),
                        day=28,
                        sub=account,
                        charge="Credit",
                        resource=f"cr-{account}-{n}",
                    )
                )
        path = write_csv(directory / f"focus-msp-{m}.csv", rows)
        out.append(MspMonth(m, tuple(customers), path))
    return Workload(tuple(out))


# -- the webhook receiver -----------------------------------------------------------------


@dataclass(frozen=True)
class Received:
    path: str
    event_id: str
    event_type: str
    delivery_id: str
    body: dict[str, Any]


class Receiver:
    """An HTTP server in a thread of the test that answers every POST 200 and keeps it."""

    def __init__(self) -> None:
        self.received: list[Received] = []
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                item = Received(
                    self.path,
                    self.headers["BillByte-Event-Id"],
                    self.headers["BillByte-Event-Type"],
                    self.headers["BillByte-Delivery-Id"],
                    json.loads(body),
                )
                with receiver._lock:
                    receiver.received.append(item)
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *_: Any) -> None:  # a line per request otherwise
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> Receiver:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def snapshot(self) -> list[Received]:
        with self._lock:
            return list(self.received)


# -- the month, through the API -----------------------------------------------------------


def wait_for(condition: Callable[[], bool], what: str, timeout: float = WAIT_SECONDS) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.25)


@dataclass
class Tenant:
    """One MSP's API key on a shared HTTP client."""

    http: httpx.Client
    key: str
    msp: MspMonth

    def call(self, method: str, path: str, expect: int, **kw: Any) -> Any:
        headers = {"Authorization": f"Bearer {self.key}", **kw.pop("headers", {})}
        response = self.http.request(method, path, headers=headers, **kw)
        assert response.status_code == expect, (method, path, response.status_code, response.text)
        return response.json()

    def listing(self, path: str, **params: str) -> list[dict[str, Any]]:
        """Every item of a cursor-paginated list."""
        items: list[dict[str, Any]] = []
        cursor: str | None = None
        while True:
            query = {**params, "limit": "500", **({"cursor": cursor} if cursor else {})}
            page = self.call("GET", path, 200, params=query)
            items += page["data"]
            cursor = page.get("next_cursor")
            if not page.get("has_more") or not cursor:
                return items


@dataclass
class MonthResult:
    invoices: dict[tuple[int, str], dict[str, Any]]  # (msp index, external id) → invoice
    runs: dict[int, dict[str, Any]]
    events: dict[int, list[dict[str, Any]]]  # the outbox as the API lists it
    received: list[Received] = field(default_factory=list)
    # Seconds each step took (reported by the test, never asserted: see bench/ for timing).
    steps: dict[str, float] = field(default_factory=dict)


def run_month(
    base_url: str, keys: dict[int, str], workload: Workload, receiver: Receiver
) -> MonthResult:
    """Customers, usage, rating, the invoice run and its webhooks, for every MSP at once."""
    limits = httpx.Limits(max_connections=16, max_keepalive_connections=16)
    steps: dict[str, float] = {}
    clock = time.monotonic()

    def step(name: str) -> None:
        nonlocal clock
        steps[name], clock = time.monotonic() - clock, time.monotonic()

    with (
        httpx.Client(base_url=base_url, timeout=120, limits=limits, trust_env=False) as http,
        ThreadPoolExecutor(8) as pool,
    ):
        tenants = [Tenant(http, keys[m.index], m) for m in workload.msps]
        accounts = list(pool.map(_set_up, tenants, [receiver.url] * len(tenants)))
        everyone = [
            (t, a, c) for t, a in zip(tenants, accounts, strict=True) for c in t.msp.customers
        ]
        list(pool.map(_create_customer, everyone))
        step("customers")
        for tenant, imported in zip(tenants, pool.map(_import, tenants, accounts), strict=True):
            assert (imported["status"], imported["rows_accepted"]) == (
                "completed",
                tenant.msp.lines,
            ), imported
        step("import")
        # The workers rate after the import; each rating commits an MSP's whole month.
        for tenant in tenants:
            wait_for(partial(_rated, tenant), f"MSP {tenant.msp.index}'s month to be rated")
        step("rating")
        runs = {}
        for tenant, run in zip(tenants, list(pool.map(_start_run, tenants)), strict=True):
            wait_for(
                partial(_run_completed, tenant, run["id"]),
                f"MSP {tenant.msp.index}'s invoice run",
            )
            runs[tenant.msp.index] = _run(tenant, run["id"])
        step("invoice run")
        invoices: dict[tuple[int, str], dict[str, Any]] = {}
        for tenant in tenants:
            for invoice in tenant.listing("/v1/invoices", period=PERIOD, kind="invoice"):
                key = (tenant.msp.index, invoice["customer_external_id"])
                assert key not in invoices, f"two invoices for {key}"
                invoices[key] = invoice
        events = {t.msp.index: t.listing("/v1/webhook-events") for t in tenants}
        outbox = {e["id"] for listed in events.values() for e in listed}
        wait_for(
            lambda: outbox <= {r.event_id for r in receiver.snapshot()},
            f"the {len(outbox)} webhook events to be delivered",
        )
        step("webhooks")
    return MonthResult(invoices, runs, events, receiver.snapshot(), steps)


def _create_customer(item: tuple[Tenant, str, CustomerMonth]) -> None:
    tenant, partner_account_id, customer = item
    created = tenant.call(
        "POST",
        "/v1/customers",
        201,
        json={
            "external_id": customer.external_id,
            "name": f"Customer {customer.external_id}",
            "currency": "USD",
        },
    )
    tenant.call(
        "POST",
        f"/v1/customers/{created['id']}/vendor-accounts",
        201,
        json={"partner_account_id": partner_account_id, "vendor_identifier": customer.aws_account},
    )


def _set_up(tenant: Tenant, hooks_url: str) -> str:
    """The MSP's AWS partner account, its default plan and a webhook endpoint for
    everything; returns the partner account's id."""
    account = tenant.call(
        "POST",
        "/v1/partner-accounts",
        201,
        json={"vendor": "aws", "display_name": "AWS payer", "vendor_account_id": "999"},
    )
    tenant.call(
        "POST",
        "/v1/price-plans",
        201,
        json={
            "name": "Standard",
            "is_default": True,
            "rules": [
                {"vendor": "aws", "adjustment": "markup_percent", "value": str(MARKUP_PERCENT)}
            ],
        },
    )
    tenant.call(
        "POST",
        "/v1/webhook-endpoints",
        201,
        json={"url": f"{hooks_url}/msp-{tenant.msp.index}", "event_types": ["*"]},
    )
    return str(account["id"])


def _import(tenant: Tenant, partner_account_id: str) -> dict[str, Any]:
    with tenant.msp.usage_file.open("rb") as handle:
        return dict(
            tenant.call(
                "POST",
                "/v1/usage/imports",
                201,
                data={"partner_account_id": partner_account_id},
                files={"file": (tenant.msp.usage_file.name, handle)},
            )
        )


def _rated(tenant: Tenant) -> bool:
    report = tenant.call(
        "GET", "/v1/reports/margin", 200, params={"period": PERIOD, "group_by": "customer"}
    )
    return len(report["rows"]) == len(tenant.msp.customers)


def _start_run(tenant: Tenant) -> dict[str, Any]:
    return dict(tenant.call("POST", "/v1/invoice-runs", 202, json={"period": PERIOD}))


def _run(tenant: Tenant, run_id: str) -> dict[str, Any]:
    return dict(tenant.call("GET", f"/v1/invoice-runs/{run_id}", 200))


def _run_completed(tenant: Tenant, run_id: str) -> bool:
    return _run(tenant, run_id)["status"] == "completed"


def by_type(events: Iterable[dict[str, Any]]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for event in events:
        counts[event["type"]] = counts.get(event["type"], 0) + 1
    return counts
