"""PostgreSQL drops the worker's connections in the middle of a rating and of an invoice run.

``pg_terminate_backend`` ends every backend of the ``billbyte worker`` process (found in
``pg_stat_activity`` by its ``application_name``) while one of them is inside the job's
transaction. The worker itself lives on: the job's attempt fails, it is retried after its
backoff, and the totals are exact.
"""

from __future__ import annotations

import random
import time

from sqlalchemy import select, text

from billbyte.auth.roles import Role
from billbyte.auth.subject import AuthSubject
from billbyte.invoicing.models import Invoice, InvoiceRun
from billbyte.jobs.models import Job
from billbyte.usage import service as usage
from tests.reliability.harness import (
    Process,
    Stack,
    admin_engine,
    rounded,
    terminate_backends,
    write_usage,
)

PERIOD = "2025-03"


def _in_transaction(process: Process) -> bool:
    admin = admin_engine()
    try:
        with admin.connect() as connection:
            return bool(
                connection.execute(
                    text(
                        "SELECT count(*) FROM pg_stat_activity WHERE application_name = :name "
                        "AND xact_start IS NOT NULL"
                    ),
                    {"name": process.name},
                ).scalar()
            )
    finally:
        admin.dispose()


def _drop_until_an_attempt_fails(stack: Stack, worker: Process, kind: str) -> tuple[int, str]:
    """While the job runs, end all the worker's backends whenever one of them is inside a
    transaction, until the attempt fails (the job is pending again, with its error).
    Returns (backends ended, the attempt's error)."""
    ended = 0
    deadline = time.monotonic() + 180
    stack.wait_for(f"the {kind} job to run", lambda: bool(stack.jobs(kind).get("running")))
    while time.monotonic() < deadline:
        with stack.runtime.uow(read_only=True) as uow:
            jobs = list(uow.session.scalars(select(Job).where(Job.kind == kind)))
        failed = [j for j in jobs if j.status == "pending" and j.attempts and j.last_error]
        if failed:
            return ended, str(failed[0].last_error)
        assert any(j.status == "running" for j in jobs), (
            f"the {kind} job ended before a dropped connection failed it: "
            f"{[(j.status, j.attempts) for j in jobs]}"
        )
        if _in_transaction(worker):
            ended += terminate_backends(worker.name)
            # Give the failed attempt time to record itself (on a new connection) before
            # looking again: ending that transaction too would only delay the retry.
            time.sleep(0.5)
        time.sleep(0.01)
    raise AssertionError(f"no attempt of the {kind} job failed")


def _attempts(stack: Stack, kind: str) -> list[tuple[str, int, str | None]]:
    with stack.runtime.uow(read_only=True) as uow:
        return [
            (job.status, job.attempts, job.last_error)
            for job in uow.session.scalars(select(Job).where(Job.kind == kind))
        ]


def test_connections_dropped_mid_rating_and_mid_invoice_run(
    stack: Stack, rng: random.Random, seed: int
) -> None:
    customers = stack.set_up_customers()
    subject = AuthSubject(msp_id=stack.msp_id, actor="reliability", role=Role.ADMIN)
    worker = stack.start("worker", role="worker")
    worker.wait_ready()

    # 1. A rating: the month's usage (a few hundred lines) is imported; the worker rates it.
    generated = write_usage(stack.tmp / "usage.csv", rng, PERIOD, 400, "pg")
    usage.import_files(
        stack.runtime, subject, stack.partner_account_id, [(generated.path, generated.path.name)]
    )
    ended, rating_error = _drop_until_an_attempt_fails(stack, worker, "rate")
    assert ended >= 1
    # Retried after its backoff (10 s for a first failure), by the same process.
    stack.wait_for("the rating", lambda: stack.no_job_left("rate"), timeout=240)
    assert worker.alive(), worker.output()
    assert stack.charges(PERIOD) == generated.sell_by_customer(customers), seed
    stack.check_change_feed()
    rating = _attempts(stack, "rate")
    assert [status for status, _, _ in rating].count("done") >= 1
    assert all(status == "done" for status, _, _ in rating), rating
    assert any(attempts > 1 for _, attempts, _ in rating), rating

    # 2. An invoice run of that month, asked for through the API: its job is dropped too.
    response = stack.tenant.post("/v1/invoice-runs", json={"period": PERIOD, "force": True})
    assert response.status_code in (201, 202), response.text
    run_id = response.json()["id"]
    dropped, run_error = _drop_until_an_attempt_fails(stack, worker, "invoice_run")
    started = time.monotonic()

    def completed() -> bool:
        with stack.runtime.uow(read_only=True) as uow:
            run = uow.session.get(InvoiceRun, run_id)
            return run is not None and run.status == "completed"

    stack.wait_for("the invoice run", completed, timeout=240)
    assert worker.alive(), worker.output()
    expected = generated.sell_by_customer(customers)
    with stack.runtime.uow(read_only=True) as uow:
        invoices = list(uow.session.scalars(select(Invoice).where(Invoice.period_end == PERIOD)))
    assert sorted(i.customer_id for i in invoices) == sorted(expected)
    for invoice in invoices:
        assert invoice.total_exact == expected[invoice.customer_id], seed
        assert invoice.total == rounded(expected[invoice.customer_id])
    assert len(stack.events("invoice.finalized")) == len(invoices)
    runs = _attempts(stack, "invoice_run")
    assert runs and all(status == "done" for status, _, _ in runs), runs
    assert any(attempts > 1 for _, attempts, _ in runs), runs
    print(
        f"reliability[postgres dropped] seed={seed}: rating: {ended} backends ended, attempt "
        f"failed with {rating_error[:80]!r}, jobs {rating}; invoice run: {dropped} ended, "
        f"{run_error[:80]!r}, jobs {runs}, completed {time.monotonic() - started:.1f}s later; "
        f"{len(invoices)} invoices, {sum(i.total for i in invoices)} USD exact"
    )
    worker.kill()
