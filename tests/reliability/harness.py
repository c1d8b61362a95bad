"""What the reliability scenarios share: a database of their own, real ``billbyte``
processes, one MSP set up through the API, generated usage with independently known totals,
and the checks that nothing was lost or doubled.

The processes are the venv's ``billbyte`` script with this tree's ``src`` first on
``PYTHONPATH``; each one names itself to PostgreSQL (``application_name``), so a scenario can
find and terminate its backends. The test process reads and writes the same database and
usage store with the product's code (set-up, and the reads the checks need); the expected
figures are computed here from the generated rows, never read from the code under test.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import ROUND_HALF_EVEN, Decimal
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import create_engine, select, text, update
from sqlalchemy.engine import make_url

from billbyte.app import create_app
from billbyte.charges import ledger
from billbyte.charges.models import ChargeChange, ChargeLine
from billbyte.db.engine import make_engine
from billbyte.db.migrate import upgrade
from billbyte.invoicing.models import Invoice, InvoiceLine
from billbyte.jobs.models import Job
from billbyte.jobs.service import run_pending
from billbyte.runtime import Runtime
from billbyte.settings import Settings
from billbyte.usage.models import UsageSlice
from billbyte.usage.repository import scan_slices, slice_store
from billbyte.webhooks.models import WebhookDelivery, WebhookEvent
from tests.conftest import PG_URL, make_tenant
from tests.rating.factories import Scenario, row, write_csv

SRC = Path(__file__).resolve().parents[2] / "src"
BILLBYTE = Path(sys.executable).with_name("billbyte")
SECRET_KEY = "reliability-secret-key"
MARKUP = Decimal("7.5")
STORED = Decimal("1e-18")  # charge lines' stored precision (NUMERIC(38,18))
CENT = Decimal("0.01")
SUB_ACCOUNTS = ("100000000001", "100000000002", "100000000003", "100000000004")
SERVICES = (
    ("Amazon Elastic Compute Cloud", "Compute"),
    ("Amazon Simple Storage Service", "Storage"),
    ("AWS Lambda", "Compute"),
)
WAIT_SECONDS = 240.0  # generous (a shared machine); every wait ends as soon as its state is seen


# -- the database ---------------------------------------------------------------------------
@dataclass
class Database:
    """A schema of its own in the test database: every connection (the test's and the
    processes') sets its ``search_path`` through libpq's ``options``. (A schema rather than
    a database: DROP DATABASE forces a checkpoint, slow on a busy server.)"""

    schema: str
    url: str

    @property
    def name(self) -> str:
        return self.schema

    def for_process(self, application_name: str) -> str:
        url = make_url(self.url).update_query_dict({"application_name": application_name})
        return url.render_as_string(hide_password=False)


def admin_engine() -> Any:
    return create_engine(PG_URL, isolation_level="AUTOCOMMIT")


@contextmanager
def fresh_database(tag: str) -> Iterator[Database]:
    """A migrated schema ``bbrel_<tag>_<pid>_<random>``, dropped after."""
    schema = f"bbrel_{tag}_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    admin = admin_engine()
    with admin.connect() as connection:
        connection.execute(text(f"CREATE SCHEMA {schema}"))
    url = make_url(PG_URL).update_query_dict({"options": f"-csearch_path={schema}"})
    database = Database(schema, url.render_as_string(hide_password=False))
    engine = make_engine(database.url)
    upgrade(engine)
    engine.dispose()
    try:
        yield database
    finally:
        with admin.connect() as connection:
            connection.execute(text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
        admin.dispose()


def terminate_backends(application_name: str) -> int:
    """``pg_terminate_backend`` on every backend of that process; how many were ended."""
    admin = admin_engine()
    try:
        with admin.connect() as connection:
            return len(
                connection.execute(
                    text(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                        "WHERE application_name = :name"
                    ),
                    {"name": application_name},
                ).all()
            )
    finally:
        admin.dispose()


# -- processes --------------------------------------------------------------------------------
@dataclass
class Process:
    name: str
    popen: subprocess.Popen[bytes]
    log: Path
    started: float = field(default_factory=time.monotonic)

    def alive(self) -> bool:
        return self.popen.poll() is None

    def kill_at(self, moment: float) -> bool:
        """SIGKILL (kill -9) at ``moment`` (``time.monotonic()``); False when the process had
        exited by itself before."""
        remaining = moment - time.monotonic()
        try:
            self.popen.wait(timeout=max(remaining, 0.0))
            return False
        except subprocess.TimeoutExpired:
            self.popen.kill()
            self.popen.wait()
            return True

    def kill(self) -> None:
        if self.alive():
            self.popen.kill()
        self.popen.wait()

    def kill_during(
        self, started: Callable[[], bool], window: float, rng: random.Random
    ) -> tuple[bool, float]:
        """Once ``started()`` says the work has begun, SIGKILL at a random moment of the next
        ``window`` seconds. Returns (killed, seconds into the work); killed is False when the
        process had exited by itself first."""
        while not started():
            if not self.alive():
                return False, 0.0
            time.sleep(0.02)
        began = time.monotonic()
        into = rng.uniform(0, window)
        return self.kill_at(began + into), into

    def wait_ready(self, marker: str = "worker running", timeout: float = WAIT_SECONDS) -> None:
        """Until the process has printed ``marker`` (a worker's start-up line)."""
        deadline = time.monotonic() + timeout
        while marker not in self.log.read_text(errors="replace"):
            assert self.alive(), f"{self.name} exited:\n{self.output()}"
            assert time.monotonic() < deadline, f"{self.name} not ready:\n{self.output()}"
            time.sleep(0.05)

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-4000:]


@dataclass
class Stack:
    """One pipeline's world: database, usage store, the MSP, and its processes."""

    database: Database
    tmp: Path
    extra_env: dict[str, str] = field(default_factory=dict)
    settings_overrides: dict[str, Any] = field(default_factory=dict)
    processes: list[Process] = field(default_factory=list)
    _serial: int = 0

    def __post_init__(self) -> None:
        self.var_dir = self.tmp / "var"
        self.logs = self.tmp / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        settings = Settings(
            var_dir=self.var_dir,
            database_url=self.database.url,
            secret_key=SECRET_KEY,
            outbound_allow_private=True,
            outbound_allow_http=True,
            outbound_allowed_ports="*",
            rate_limit_per_ip="",
            rate_limit_per_key="",
            rate_limit_failed_auth_per_ip="",
            **self.settings_overrides,
        )
        self.runtime = Runtime(
            settings=settings, engine=make_engine(self.database.url), secret_key=SECRET_KEY
        )
        self.client = TestClient(create_app(self.runtime), raise_server_exceptions=False)
        self.tenant = make_tenant(self.runtime, self.client, "Reliability MSP")
        self.scenario = Scenario(self.tenant, self.runtime, self.tmp)

    @property
    def msp_id(self) -> str:
        return self.tenant.msp_id

    def env(self, application_name: str) -> dict[str, str]:
        environment = {
            key: value for key, value in os.environ.items() if not key.startswith("BILLBYTE_")
        }
        environment.update(
            PYTHONPATH=str(SRC),
            BILLBYTE_DATABASE_URL=self.database.for_process(application_name),
            BILLBYTE_VAR_DIR=str(self.var_dir),
            BILLBYTE_SECRET_KEY=SECRET_KEY,
            BILLBYTE_OUTBOUND_ALLOW_PRIVATE="1",
            BILLBYTE_OUTBOUND_ALLOW_HTTP="1",
            BILLBYTE_OUTBOUND_ALLOWED_PORTS="*",
            BILLBYTE_LOG_LEVEL="WARNING",
        )
        environment.update(self.extra_env)
        return environment

    def start(self, *args: str, role: str) -> Process:
        """``billbyte ARGS`` in the background, as a process named ``<database>-<role>-<n>``."""
        self._serial += 1
        # application_name keeps 63 characters: the schema's random suffix is enough.
        name = f"bbrel-{self.database.schema[-6:]}-{role}-{self._serial}"
        log = self.logs / f"{name}.log"
        handle = log.open("wb")
        popen = subprocess.Popen(
            [str(BILLBYTE), *args],
            env=self.env(name),
            stdout=handle,
            stderr=subprocess.STDOUT,
            cwd=self.tmp,
        )
        handle.close()
        process = Process(name, popen, log)
        self.processes.append(process)
        return process

    def run(self, *args: str, role: str, timeout: float = WAIT_SECONDS) -> Process:
        """``billbyte ARGS`` to its end; fails the test (with its output) unless it exits 0."""
        process = self.start(*args, role=role)
        try:
            code = process.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            raise AssertionError(f"{process.name} did not finish:\n{process.output()}") from None
        assert code == 0, f"{process.name} exited {code}:\n{process.output()}"
        return process

    def close(self) -> None:
        for process in self.processes:
            process.kill()
        self.client.close()
        self.runtime.engine.dispose()

    # -- set-up ------------------------------------------------------------------------------
    def set_up_customers(self) -> dict[str, str]:
        """An AWS partner account, one customer per sub-account (USD), a markup plan; the
        rating jobs the set-up asked for are run here. Returns sub-account → customer id."""
        self.scenario.account("aws")
        customers = {}
        for index, sub in enumerate(SUB_ACCOUNTS):
            customer_id = self.scenario.customer(f"C{index}")
            self.scenario.link(customer_id, sub)
            customers[sub] = customer_id
        self.scenario.plan(
            [{"vendor": "aws", "adjustment": "markup_percent", "value": str(MARKUP)}]
        )
        run_pending(self.runtime)
        return customers

    @property
    def partner_account_id(self) -> str:
        return self.scenario.accounts["aws"]

    def wait_for(self, what: str, done: Callable[[], bool], timeout: float = WAIT_SECONDS) -> None:
        deadline = time.monotonic() + timeout
        while not done():
            if time.monotonic() > deadline:
                logs = "\n".join(
                    f"--- {p.name}\n{p.output()}" for p in self.processes[-3:] if p.log.exists()
                )
                raise AssertionError(f"timed out waiting for {what}\n{logs}")
            time.sleep(0.05)

    def expire_dead_leases(self) -> int:
        """What waiting out the leases of a killed process would do, at once: its running
        jobs (30 s lease) and webhook deliveries (5 min lease) become claimable. Only called
        when every process of the stack that could hold a lease has been killed."""
        assert not any(p.alive() for p in self.processes), "a live process may hold a lease"
        with self.runtime.uow() as uow:
            past = text("now() - interval '1 second'")
            jobs = uow.session.execute(
                update(Job).where(Job.status == "running").values(locked_until=past)
            )
            deliveries = uow.session.execute(
                update(WebhookDelivery)
                .where(WebhookDelivery.locked_until.is_not(None))
                .values(locked_until=past)
            )
            uow.commit()
        return int(jobs.rowcount + deliveries.rowcount)  # type: ignore[attr-defined]

    # -- reads ---------------------------------------------------------------------------------
    def scalar(self, sql: str, **params: Any) -> Any:
        with self.runtime.engine.connect() as connection:
            return connection.execute(text(sql), params).scalar()

    def jobs(self, kind: str) -> dict[str, int]:
        with self.runtime.uow(read_only=True) as uow:
            rows = uow.session.execute(select(Job.status, Job.id).where(Job.kind == kind)).all()
        counts: dict[str, int] = {}
        for status, _ in rows:
            counts[status] = counts.get(status, 0) + 1
        return counts

    def no_job_left(self, kind: str) -> bool:
        counts = self.jobs(kind)
        return not counts.get("pending") and not counts.get("running")

    def current_usage(self, period: str) -> Usage:
        """The current slices' lines of ``period``, read from the store."""
        with self.runtime.uow(read_only=True) as uow:
            slices = list(
                uow.session.scalars(
                    select(UsageSlice).where(
                        UsageSlice.msp_id == self.msp_id,
                        UsageSlice.billing_period == period,
                        UsageSlice.is_current.is_(True),
                    )
                )
            )
        frame = scan_slices(slice_store(self.runtime.settings), slices)
        if frame is None:
            return Usage({}, [], [s.path for s in slices])
        collected = frame.select("sub_account_id", "resource_id", "billed_cost").collect()
        by_sub: dict[str, Decimal] = {}
        for sub, cost in zip(
            collected["sub_account_id"].to_list(), collected["billed_cost"].to_list(), strict=True
        ):
            by_sub[sub] = by_sub.get(sub, Decimal(0)) + Decimal(cost)
        return Usage(by_sub, collected["resource_id"].to_list(), [s.path for s in slices])

    def charges(self, period: str) -> dict[str, Decimal]:
        """Exact sell amount per customer of the period's open lines."""
        with self.runtime.uow(read_only=True) as uow:
            rows = uow.session.execute(
                select(ChargeLine.customer_id, ChargeLine.sell_local).where(
                    ChargeLine.msp_id == self.msp_id, ChargeLine.period == period
                )
            ).all()
        totals: dict[str, Decimal] = {}
        for customer_id, amount in rows:
            totals[customer_id] = ledger.exact_sum([totals.get(customer_id, Decimal(0)), amount])
        return totals

    def check_change_feed(self) -> int:
        """Replays the whole change feed of the MSP: every ``created`` is of a line not
        there, every ``updated``/``deleted`` of one that is, with the ``previous`` it had;
        the replay ends on exactly the stored lines. A doubled write breaks one of these."""
        with self.runtime.uow(read_only=True) as uow:
            feed = uow.session.execute(
                select(ChargeChange)
                .where(ChargeChange.msp_id == self.msp_id)
                .order_by(ChargeChange.seq)
            ).scalars()
            state: dict[tuple[str, str, str], dict[str, Any]] = {}
            entries = 0
            for change in feed:
                entries += 1
                key = (change.customer_id, change.period, change.line_key)
                if change.change == "created":
                    assert key not in state, f"change {change.seq}: {key} created twice"
                    assert change.line is not None
                    state[key] = change.line
                elif change.change in ("updated", "deleted"):
                    assert key in state, f"change {change.seq}: {change.change} of absent {key}"
                    assert change.previous == state[key], f"change {change.seq}: stale previous"
                    if change.change == "updated":
                        assert change.line is not None and change.line != change.previous
                        state[key] = change.line
                    else:
                        del state[key]
            stored = {
                (line.customer_id, line.period, line.line_key): ledger.of_row(line).comparable()
                for line in uow.session.scalars(
                    select(ChargeLine).where(ChargeLine.msp_id == self.msp_id)
                )
            }
        assert set(state) == set(stored), "the change feed does not replay to the stored lines"
        for key, line in stored.items():
            assert Decimal(state[key]["sell_local"]) == Decimal(line["sell_local"]), key
        return entries

    def finalized_digest(self) -> dict[str, str]:
        """Invoice id → SHA-256 of its stored row and lines (every column, in order)."""
        digests: dict[str, str] = {}
        with self.runtime.engine.connect() as connection:
            invoices = connection.execute(
                select(Invoice.__table__).where(Invoice.msp_id == self.msp_id)
            ).all()
            for invoice in invoices:
                lines = connection.execute(
                    select(InvoiceLine.__table__)
                    .where(InvoiceLine.invoice_id == invoice.id)
                    .order_by(InvoiceLine.position)
                ).all()
                blob = json.dumps(
                    [list(invoice), [list(line) for line in lines]], default=str
                ).encode()
                digests[invoice.id] = hashlib.sha256(blob).hexdigest()
        return digests

    def events(self, event_type: str) -> list[dict[str, Any]]:
        with self.runtime.uow(read_only=True) as uow:
            bodies = uow.session.scalars(
                select(WebhookEvent.body).where(
                    WebhookEvent.msp_id == self.msp_id, WebhookEvent.type == event_type
                )
            ).all()
        return [json.loads(body) for body in bodies]


@dataclass
class Usage:
    by_sub_account: dict[str, Decimal]
    resource_ids: list[str]
    slice_keys: list[str]


# -- generated usage ----------------------------------------------------------------------------
@dataclass
class UsageFile:
    path: Path
    period: str
    rows: int
    cost_by_sub_account: dict[str, Decimal]
    resource_ids: list[str]

    def sell_by_customer(self, customers: dict[str, str]) -> dict[str, Decimal]:
        """What rating must charge: each customer's cost with the markup, at the stored
        precision (plain Decimal arithmetic, here)."""
        factor = 1 + MARKUP / 100
        return {
            customers[sub]: (total * factor).quantize(STORED, rounding=ROUND_HALF_EVEN)
            for sub, total in self.cost_by_sub_account.items()
        }


def write_usage(
    path: Path,
    rng: random.Random,
    period: str,
    rows: int,
    tag: str,
    subs: tuple[str, ...] = SUB_ACCOUNTS,
) -> UsageFile:
    """``rows`` FOCUS lines of ``period`` over ``subs``, costs random multiples of 1e-10
    (negative corrections included); every line has a resource id of its own."""
    lines = []
    totals: dict[str, Decimal] = {}
    resources = []
    for index in range(rows):
        sub = subs[index % len(subs)]
        service, category = SERVICES[rng.randrange(len(SERVICES))]
        cost = Decimal(rng.randint(-20_000, 900_000_000_000)).scaleb(-10)
        resource = f"r-{tag}-{index}"
        resources.append(resource)
        totals[sub] = totals.get(sub, Decimal(0)) + cost
        lines.append(
            row(
                str(cost),
                day=1 + index % 28,
                period=period,
                sub=sub,
                service=service,
                category=category,
                sku=f"SKU-{index % 5}",
                resource=resource,
            )
        )
    write_csv(path, lines)
    return UsageFile(path, period, rows, totals, resources)


def periods(count: int, start: str = "2024-01") -> list[str]:
    year, month = (int(p) for p in start.split("-"))
    out = []
    for _ in range(count):
        out.append(f"{year}-{month:02d}")
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return out


def rounded(value: Decimal) -> Decimal:
    return value.quantize(CENT, rounding=ROUND_HALF_EVEN)


# -- a round's log -------------------------------------------------------------------------------
@dataclass
class Tally:
    """Where the kills of a pipeline landed, for the report (and docs/reliability.md)."""

    pipeline: str
    seed: int
    rounds: int = 0
    kills: int = 0
    finished_before_kill: int = 0
    landed: dict[str, int] = field(default_factory=dict)
    recoveries: int = 0
    compared: list[str] = field(default_factory=list)

    def kill(self, killed: bool, phase: str) -> None:
        self.rounds += 1
        if killed:
            self.kills += 1
        else:
            self.finished_before_kill += 1
        self.landed[phase] = self.landed.get(phase, 0) + 1

    def report(self) -> str:
        phases = ", ".join(f"{name} {count}" for name, count in sorted(self.landed.items()))
        return (
            f"reliability[{self.pipeline}] seed={self.seed} rounds={self.rounds} "
            f"kills={self.kills} finished-before-kill={self.finished_before_kill} "
            f"recoveries={self.recoveries} landed: {phases}; " + "; ".join(self.compared[-3:])
        )
