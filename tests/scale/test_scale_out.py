"""Issue 13's acceptance: BillByte scaled out gives the embedded single process's invoices to
the last digit.

One ``billbyte serve`` and two ``billbyte worker`` processes, on PostgreSQL (a fresh schema),
a broker (Redis, then RabbitMQ: one parametrisation each, a queue of their own) and moto's
S3 server as the usage store, take a month of 1,000 customers (8 MSPs of 125, 5-10 usage
lines each) through the API: customers and their AWS accounts, one FOCUS import per MSP,
rating by the workers, the invoice run, every webhook to a receiver in this test. The same
calls against ``billbyte serve`` alone on SQLite with ``var/usage`` and no broker (the
embedded default, what ``make run`` runs) must give the same invoices — totals, exact totals
and lines — and both must equal the totals computed here from the generated numbers and the
plan's markup with plain Decimal arithmetic. Also: every customer invoiced once, no
duplicate invoice line, webhook event or delivery, no job failed, both workers ran jobs and
no job ran in two processes.
"""

from __future__ import annotations

import json
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import pika
import pytest
import redis
from sqlalchemy import Engine, create_engine, select, text

from billbyte.customers.models import Customer
from billbyte.invoicing.models import Invoice, InvoiceLine
from billbyte.jobs.models import Job
from billbyte.webhooks.models import WebhookDelivery, WebhookEvent
from tests.conftest import HOW_TO_START_PG, PG_URL, _pg_reachable
from tests.scale.deployment import Process, deployed
from tests.scale.month import (
    EVENTS_PER_CUSTOMER,
    MonthResult,
    Receiver,
    Workload,
    by_type,
    generate,
    run_month,
)
from tests.usage.test_object_store import FAKE_AWS, S3Server

MSPS = 8
CUSTOMERS_PER_MSP = 125  # 1,000 customers in all
WORKERS = 2
WORKER_THREADS = "2"
# Each MSP's rating and invoice run is one job: with 8 MSPs and two threads a worker (its
# consumer holds at most twice that), a worker cannot hold every MSP's invoice run, so
# both work while the runs overlap.


@dataclass
class Stored:
    """What the database holds after the month, keyed by (MSP index, external id)."""

    invoices: dict[tuple[int, str], dict[str, Any]]
    line_sources: list[tuple[str, str, str]]  # (customer, period, charge line key)
    events: list[tuple[str, str, str]]  # (MSP id, type, the object's id in the payload)
    deliveries: list[tuple[str, int]]  # (status, attempts)
    jobs: dict[str, tuple[str, str]]  # job id → (kind, status)


@dataclass
class Outcome:
    month: MonthResult
    stored: Stored
    api: Process
    workers: list[Process]


def stored(engine: Engine, msp_index: dict[str, int]) -> Stored:
    invoices: dict[tuple[int, str], dict[str, Any]] = {}
    sources = []
    with engine.connect() as connection:
        externals = dict(connection.execute(select(Customer.id, Customer.external_id)).all())
        lines: dict[str, list[tuple[Any, ...]]] = {}
        for line in connection.execute(select(InvoiceLine).order_by(InvoiceLine.position)):
            lines.setdefault(line.invoice_id, []).append(
                (line.description, line.amount, line.amount_exact)
            )
            sources += [(line.customer_id, s["period"], s["line_key"]) for s in line.sources]
        for invoice in connection.execute(select(Invoice).where(Invoice.kind == "invoice")):
            key = (msp_index[invoice.msp_id], externals[invoice.customer_id])
            assert key not in invoices, f"two invoices for {key}"
            invoices[key] = {
                "total": invoice.total,
                "total_exact": invoice.total_exact,
                "line_count": invoice.line_count,
                "lines": lines.get(invoice.id, []),
            }
        events = []
        for msp_id, kind, body in connection.execute(
            select(WebhookEvent.msp_id, WebhookEvent.type, WebhookEvent.body)
        ):
            data = json.loads(body)["data"]
            events.append((msp_id, kind, str(data.get("id") or data.get("import_id"))))
        deliveries = [
            (status, attempts)
            for status, attempts in connection.execute(
                select(WebhookDelivery.status, WebhookDelivery.attempt_count)
            )
        ]
        jobs = {
            job_id: (kind, status)
            for job_id, kind, status in connection.execute(select(Job.id, Job.kind, Job.status))
        }
    return Stored(invoices, sources, events, deliveries, jobs)


def run(
    database_url: str, directory: Path, workers: int, workload: Workload, **settings: str
) -> Outcome:
    started = time.monotonic()
    with Receiver() as receiver, deployed(database_url, directory, workers, **settings) as d:
        msps = d.create_msps([m.name for m in workload.msps])
        keys = {m.index: msps[m.name][1] for m in workload.msps}
        ready = time.monotonic() - started
        month = run_month(d.url, keys, workload, receiver)
        month.steps = {"start": ready, **month.steps}
        result = stored(d.engine, {msps[m.name][0]: m.index for m in workload.msps})
    outcome = Outcome(month, result, d.api, d.workers)
    # Shown with -s or on failure: where the time goes (no test asserts it; bench/ times).
    print(
        directory.name,
        {k: round(v, 1) for k, v in month.steps.items()},
        "CPU s:",
        {p.name: round(p.cpu, 1) for p in [d.api, *d.workers]},
        "jobs logged:",
        {p.name: len(p.job_ids() & set(result.jobs)) for p in [d.api, *d.workers]},
        "of",
        Counter(kind for kind, _ in result.jobs.values()),
    )
    return outcome


@pytest.fixture(scope="module")
def workload(tmp_path_factory: pytest.TempPathFactory) -> Workload:
    return generate(tmp_path_factory.mktemp("usage"), MSPS, CUSTOMERS_PER_MSP)


@pytest.fixture(scope="module")
def embedded(workload: Workload, tmp_path_factory: pytest.TempPathFactory) -> Outcome:
    """``billbyte serve`` alone: SQLite, the usage store in var/usage, jobs in-process."""
    directory = tmp_path_factory.mktemp("embedded")
    return run(f"sqlite:///{directory / 'billbyte.sqlite3'}", directory, 0, workload)


@pytest.fixture
def postgres_url() -> Iterator[str]:
    error = _pg_reachable()
    if error:
        pytest.skip(f"PostgreSQL unreachable ({error}). {HOW_TO_START_PG}")
    schema = f"bbscale_{uuid.uuid4().hex[:16]}"
    admin = create_engine(PG_URL)
    with admin.begin() as connection:
        connection.execute(text(f"CREATE SCHEMA {schema}"))
    separator = "&" if "?" in PG_URL else "?"
    try:
        yield f"{PG_URL}{separator}options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as connection:
            connection.execute(text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
        admin.dispose()


@pytest.fixture
def broker_queue(broker_url: str) -> Iterator[str]:
    """A queue no other test run uses, removed afterwards (with its delay and dead-letter
    queues)."""
    queue = f"billbyte-scale-{uuid.uuid4().hex}"
    yield queue
    if broker_url.startswith("redis"):
        client = redis.Redis.from_url(broker_url)
        keys = list(client.scan_iter(f"dramatiq:*{queue}*"))
        if keys:
            client.delete(*keys)
        client.close()
    else:
        connection = pika.BlockingConnection(pika.URLParameters(broker_url))
        channel = connection.channel()
        for name in (queue, f"{queue}.DQ", f"{queue}.XQ"):
            channel.queue_delete(name)
        connection.close()


# One xdist worker runs the module (`make test` distributes with --dist loadgroup), so the
# embedded run, a module fixture, runs once.
pytestmark = pytest.mark.xdist_group("scale-out")


def test_the_embedded_run_invoices_the_independent_totals(
    embedded: Outcome, workload: Workload
) -> None:
    check_month(embedded, workload)


def test_scaled_out_over_two_workers_gives_the_embedded_invoices_to_the_last_digit(
    embedded: Outcome,
    workload: Workload,
    postgres_url: str,
    broker_url: str,
    broker_queue: str,
    s3_server: S3Server,
    tmp_path: Path,
) -> None:
    bucket = s3_server.bucket()
    scaled = run(
        postgres_url,
        tmp_path,
        WORKERS,
        workload,
        BILLBYTE_BROKER_URL=broker_url,
        BILLBYTE_BROKER_QUEUE=broker_queue,
        BILLBYTE_BROKER_WORKER_THREADS=WORKER_THREADS,
        BILLBYTE_USAGE_STORE_URL=f"s3://{bucket}/billbyte/usage",
        BILLBYTE_S3_ENDPOINT_URL=s3_server.endpoint,
        **FAKE_AWS,
    )
    check_month(scaled, workload)
    # The same invoices as the single process, to the last digit: totals, exact totals, lines.
    assert scaled.stored.invoices == embedded.stored.invoices
    assert _totals(scaled.month) == _totals(embedded.month)
    assert sum(_totals(scaled.month).values()) == sum(_totals(embedded.month).values())
    # The slices are in the bucket, not on the processes' disks.
    assert s3_server.keys(bucket)
    for process in [scaled.api, *scaled.workers]:
        assert not list((process.log.parent / "var" / "usage").rglob("*.parquet")), process.name
    check_workers(scaled)


def _totals(month: MonthResult) -> dict[tuple[int, str], Decimal]:
    return {key: Decimal(invoice["total"]) for key, invoice in month.invoices.items()}


def check_month(outcome: Outcome, workload: Workload) -> None:
    month, db = outcome.month, outcome.stored
    expected = workload.expected_totals()
    # Every customer invoiced once, at the total computed from the input.
    assert _totals(month) == expected
    assert sum(_totals(month).values()) == sum(expected.values())
    exact = workload.expected_exact()
    assert {k: Decimal(i["total_exact"]) for k, i in month.invoices.items()} == exact
    assert {k: i["total"] for k, i in db.invoices.items()} == expected
    for run in month.runs.values():
        assert (run["invoices_created"], run["failed"]) == (CUSTOMERS_PER_MSP, 0), run
    # No duplicate invoice line: each invoice's lines add up to it, and no charge line was
    # invoiced twice.
    for key, invoice in db.invoices.items():
        assert len(invoice["lines"]) == invoice["line_count"] > 0, key
        assert sum(line[1] for line in invoice["lines"]) == invoice["total"], key
    assert [s for s, n in Counter(db.line_sources).items() if n > 1] == []
    # Webhooks: one event per customer created and per invoice, one per import; each
    # delivered once, to its own MSP's endpoint.
    for index, events in month.events.items():
        assert by_type(events) == {
            **{kind: CUSTOMERS_PER_MSP for kind in EVENTS_PER_CUSTOMER},
            "usage.imported": 1,
        }, index
    assert [e for e, n in Counter(db.events).items() if n > 1] == []
    received = Counter(r.event_id for r in month.received)
    assert [e for e, n in received.items() if n > 1] == []
    assert set(received) == {e["id"] for events in month.events.values() for e in events}
    for item in month.received:
        assert item.path == f"/msp-{_index_of(month, item.body['msp_id'])}"
    assert set(db.deliveries) == {("succeeded", 1)}
    assert len(db.deliveries) == len(received)
    # Every job ran to its end; none is left pending or failed.
    assert {status for _, status in db.jobs.values()} <= {"done", "superseded"}, Counter(
        status for _, status in db.jobs.values()
    )
    for process in [outcome.api, *outcome.workers]:
        assert process.problems() == [], process.name


def _index_of(month: MonthResult, msp_id: str) -> int:
    for index, events in month.events.items():
        if any(e["payload"]["msp_id"] == msp_id for e in events):
            return index
    raise AssertionError(f"no events of {msp_id}")


def check_workers(outcome: Outcome) -> None:
    """Both workers ran jobs, and no job ran in two processes: the job ids in each process's
    log records (a record logged while a job runs carries its id)."""
    ran = {p.name: p.job_ids() & set(outcome.stored.jobs) for p in [outcome.api, *outcome.workers]}
    for worker in outcome.workers:
        assert ran[worker.name], f"{worker.name} ran no job: {ran}"
    seen = Counter(job for ids in ran.values() for job in ids)
    assert [job for job, n in seen.items() if n > 1] == []
    runs = {job for job, (kind, _) in outcome.stored.jobs.items() if kind == "invoice_run"}
    assert len(runs) == MSPS and runs <= set(seen), (runs, ran)
