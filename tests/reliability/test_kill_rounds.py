"""kill -9 at random points of each pipeline, round after round, then recover and compare.

Each round starts the work, kills the process doing it with SIGKILL at a random moment
(seeded: the seed is printed), restarts or reruns it to the end, and then checks the whole
state against figures computed here from the generated rows: totals to the last digit,
nothing doubled (by natural key), nothing finalized changed. See docs/reliability.md.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from decimal import Decimal

from sqlalchemy import select, text, update

from billbyte.auth.roles import Role
from billbyte.auth.subject import AuthSubject
from billbyte.invoicing.models import Invoice, InvoiceLine, InvoiceRun
from billbyte.usage import service as usage
from billbyte.usage.models import UsageImport
from billbyte.webhooks import service as webhooks
from billbyte.webhooks.models import WebhookDelivery, WebhookDeliveryAttempt
from tests.reliability.harness import WAIT_SECONDS, Stack, Tally, periods, rounded, write_usage
from tests.webhooks.receiver import running_receiver

PERIOD = "2025-03"


def _subject(stack: Stack) -> AuthSubject:
    return AuthSubject(msp_id=stack.msp_id, actor="reliability", role=Role.ADMIN)


def _imports(stack: Stack) -> dict[str, str]:
    with stack.runtime.uow(read_only=True) as uow:
        return {
            item.id: item.status
            for item in uow.session.scalars(
                select(UsageImport).where(UsageImport.msp_id == stack.msp_id)
            )
        }


def test_usage_import_killed_at_random_points(
    stack: Stack, rng: random.Random, rounds: int, seed: int
) -> None:
    """``billbyte usage import`` killed while it reads, writes slices or commits; rerun.

    Every round imports a restatement of the same month (other rows, other costs): after
    the rerun the stored usage is exactly that file's, whatever the killed import left."""
    stack.set_up_customers()
    account = stack.partner_account_id
    tally = Tally("usage import", seed)

    # A clean import first: how long its work takes, from the moment its import row is
    # recorded (before that the process is starting up) to its exit.
    def started(before: dict[str, str]) -> Callable[[], bool]:
        return lambda: len(_imports(stack)) > len(before)

    first = write_usage(stack.tmp / "usage-0.csv", rng, PERIOD, 200, "k0")
    process = stack.start(
        "usage", "import", str(first.path), "--partner-account", account, role="import"
    )
    stack.wait_for("the import row", started({}))
    recorded = time.monotonic()
    assert process.popen.wait(timeout=WAIT_SECONDS) == 0, process.output()
    work = time.monotonic() - recorded

    for number in range(1, rounds + 1):
        generated = write_usage(
            stack.tmp / f"usage-{number}.csv", rng, PERIOD, rng.randint(120, 300), f"k{number}"
        )
        args = ("usage", "import", str(generated.path), "--partner-account", account)
        before = _imports(stack)
        victim = stack.start(*args, role="import")
        killed, _ = victim.kill_during(started(before), work * 1.1, rng)
        new = [status for key, status in _imports(stack).items() if key not in before]
        tally.kill(killed, f"import {new[0]}" if new else "before the import row")

        stack.run(*args, "--json", role="rerun")
        tally.recoveries += 1

        stored = stack.current_usage(PERIOD)
        # Exactly this file's rows and costs: nothing of the killed import, nothing twice.
        assert stored.by_sub_account == generated.cost_by_sub_account, (seed, number)
        assert sorted(stored.resource_ids) == sorted(generated.resource_ids), (seed, number)
        assert len(stored.slice_keys) == 1, stored.slice_keys
        assert stack.runtime.settings.usage_store_dir.joinpath(stored.slice_keys[0]).is_file()
        statuses = _imports(stack)
        completed = [key for key, status in statuses.items() if status == "completed"]
        # One usage.imported event per completed import, none for an interrupted one.
        events = stack.events("usage.imported")
        assert sorted(e["data"]["import_id"] for e in events) == sorted(completed)
        assert set(statuses.values()) <= {"completed", "processing"}, statuses
        tally.compared.append(
            f"round {number}: {generated.rows} lines, "
            f"total {sum(generated.cost_by_sub_account.values())} USD exact"
        )
    assert tally.recoveries == rounds
    # The rating the imports asked for, coalesced: at most one pending job per period.
    assert stack.jobs("rate").get("pending", 0) <= 1
    print(tally.report())


def test_rating_worker_killed_at_random_points(
    stack: Stack, rng: random.Random, rounds: int, seed: int
) -> None:
    """``billbyte worker`` killed while it rates; a new worker takes the job over.

    Each round restates the month's usage (imported here, which queues the rating job): the
    charges must then be exactly the new file's costs with the markup, and the change feed
    must replay to exactly the stored lines."""
    customers = stack.set_up_customers()
    tally = Tally("rating", seed)
    subject = _subject(stack)

    def restate(number: int) -> dict[str, Decimal]:
        generated = write_usage(
            stack.tmp / f"usage-{number}.csv", rng, PERIOD, rng.randint(150, 300), f"r{number}"
        )
        usage.import_files(
            stack.runtime,
            subject,
            stack.partner_account_id,
            [(generated.path, generated.path.name)],
        )
        return generated.sell_by_customer(customers)

    def claimed() -> bool:
        return not stack.jobs("rate").get("pending")

    worker = stack.start("worker", role="worker")
    worker.wait_ready()
    expected = restate(0)
    stack.wait_for("the first claim", claimed)
    began = time.monotonic()
    stack.wait_for("the first rating", lambda: stack.no_job_left("rate"))
    work = time.monotonic() - began
    assert stack.charges(PERIOD) == expected

    for number in range(1, rounds + 1):
        expected = restate(number)
        killed, _ = worker.kill_during(claimed, work * 1.2, rng)
        jobs = stack.jobs("rate")
        phase = (
            "rating running"
            if jobs.get("running")
            else ("job not yet claimed" if jobs.get("pending") else "rating done")
        )
        tally.kill(killed, phase)
        stack.expire_dead_leases()
        worker = stack.start("worker", role="worker")
        stack.wait_for("the rating", lambda: stack.no_job_left("rate"))
        tally.recoveries += 1

        assert stack.charges(PERIOD) == expected, (seed, number)
        entries = stack.check_change_feed()
        assert stack.jobs("rate").get("failed", 0) == 0
        tally.compared.append(
            f"round {number}: {sum(expected.values())} USD exact over {len(expected)} customers,"
            f" {entries} change-feed entries replayed"
        )
    worker.kill()
    print(tally.report())


def _invoice_state(stack: Stack, run_id: str) -> str:
    with stack.runtime.uow(read_only=True) as uow:
        run = uow.session.get(InvoiceRun, run_id)
        assert run is not None
        return f"{run.status} ({run.invoices_created} invoiced)"


def test_invoice_run_killed_at_random_points(
    stack: Stack, rng: random.Random, rounds: int, seed: int
) -> None:
    """The invoice-run job killed while it re-rates and finalizes; a new worker finishes it.

    Round n closes month n. After the recovery each customer has exactly one invoice for
    it, of exactly its usage with the markup; no charge line is on two invoice lines; one
    ``invoice.finalized`` event per invoice; every invoice finalized before is unchanged."""
    customers = stack.set_up_customers()
    tally = Tally("invoice run", seed)
    months = periods(rounds + 1)
    files = [
        write_usage(stack.tmp / f"usage-{m}.csv", rng, m, rng.randint(20, 40), f"i{m}")
        for m in months
    ]
    usage.import_files(
        stack.runtime,
        _subject(stack),
        stack.partner_account_id,
        [(f.path, f.path.name) for f in files],
    )
    worker = stack.start("worker", role="worker")
    stack.wait_for("the ratings of the months", lambda: stack.no_job_left("rate"), timeout=600)

    def close(month: str) -> str:
        response = stack.tenant.post("/v1/invoice-runs", json={"period": month, "force": True})
        assert response.status_code in (201, 202), response.text
        return str(response.json()["id"])

    def run_completed(run_id: str) -> Callable[[], bool]:
        return lambda: _invoice_state(stack, run_id).startswith("completed")

    def run_started(run_id: str) -> Callable[[], bool]:
        return lambda: not _invoice_state(stack, run_id).startswith("pending")

    run_id = close(months[0])
    stack.wait_for("the first invoice run", run_started(run_id))
    began = time.monotonic()
    stack.wait_for("the first invoice run", run_completed(run_id))
    work = time.monotonic() - began

    for number, (month, generated) in enumerate(zip(months, files, strict=True)):
        if number:
            digests = stack.finalized_digest()
            run_id = close(month)
            killed, _ = worker.kill_during(run_started(run_id), work * 1.2, rng)
            tally.kill(killed, f"run {_invoice_state(stack, run_id)}")
            stack.expire_dead_leases()
            worker = stack.start("worker", role="worker")
            stack.wait_for("the invoice run", run_completed(run_id))
            tally.recoveries += 1
            after = stack.finalized_digest()
            assert {k: after[k] for k in digests} == digests, "a finalized invoice changed"

        expected = generated.sell_by_customer(customers)
        with stack.runtime.uow(read_only=True) as uow:
            invoices = list(
                uow.session.scalars(
                    select(Invoice).where(
                        Invoice.msp_id == stack.msp_id, Invoice.period_end == month
                    )
                )
            )
            lines = list(
                uow.session.scalars(
                    select(InvoiceLine).where(InvoiceLine.invoice_id.in_([i.id for i in invoices]))
                )
            )
        assert sorted(i.customer_id for i in invoices) == sorted(expected), (seed, month)
        for invoice in invoices:
            assert invoice.total_exact == expected[invoice.customer_id], (seed, month)
            assert invoice.total == rounded(expected[invoice.customer_id]), (seed, month)
            own = [line for line in lines if line.invoice_id == invoice.id]
            assert sum(line.amount for line in own) == invoice.total
            assert len(own) == invoice.line_count
        tally.compared.append(
            f"{month}: {len(invoices)} invoices, {sum(i.total for i in invoices)} USD"
        )

    with stack.runtime.uow(read_only=True) as uow:
        sources = [
            (source["period"], source["line_key"])
            for line in uow.session.scalars(select(InvoiceLine))
            for source in line.sources
        ]
        numbers = list(uow.session.scalars(select(Invoice.number)))
        invoice_ids = sorted(uow.session.scalars(select(Invoice.id)))
    assert len(sources) == len(set(sources)), "a charge line is on two invoice lines"
    assert len(numbers) == len(set(numbers))
    finalized = sorted(e["data"]["id"] for e in stack.events("invoice.finalized"))
    assert finalized == invoice_ids, "not exactly one invoice.finalized event per invoice"
    assert stack.jobs("invoice_run").get("failed", 0) == 0
    worker.kill()
    print(tally.report())


def test_webhook_delivery_killed_at_random_points(
    stack: Stack, rng: random.Random, rounds: int, seed: int
) -> None:
    """``billbyte worker`` killed while it delivers webhooks; a new worker sends the rest.

    Delivery is at least once: an event whose attempt was killed after the receiver got it
    and before the worker recorded the answer is sent again, with the same event id and the
    same signed body. Every event arrives; none arrives that was not emitted."""
    stack.set_up_customers()
    tally = Tally("webhook delivery", seed)
    emitted: list[str] = []
    unfinished: list[tuple[object, ...]] = []  # what a failed wait for the deliveries shows
    with running_receiver() as receiver:
        receiver.delay = 0.02  # an answer takes a little while, as across a network
        response = stack.tenant.post(
            "/v1/webhook-endpoints",
            json={"url": receiver.url("main"), "event_types": ["test.ping"]},
        )
        assert response.status_code == 201, response.text
        receiver.secrets["/hooks/main"] = response.json()["secret"]

        def emit(number: int) -> None:
            with stack.runtime.uow() as uow:
                for index in range(8):
                    event = webhooks.emit(
                        uow.session, stack.msp_id, "test.ping", {"round": number, "n": index}
                    )
                    emitted.append(event.id)
                uow.commit()

        def sending() -> bool:
            with stack.runtime.uow(read_only=True) as uow:
                return bool(
                    uow.session.scalar(
                        select(WebhookDelivery.id)
                        .where(WebhookDelivery.event_id.in_(emitted[-8:]))
                        .where(WebhookDelivery.attempt_count > 0)
                        .limit(1)
                    )
                )

        def all_delivered() -> bool:
            with stack.runtime.uow() as uow:
                # An attempt that failed (e.g. timed out on a loaded machine) waits out its
                # backoff, up to minutes: what is under test is that nothing is lost or
                # doubled, not the backoff's schedule, so its wait is cut short here.
                uow.session.execute(
                    update(WebhookDelivery)
                    .where(WebhookDelivery.status == "pending")
                    .where(WebhookDelivery.attempt_count > 0)
                    .values(next_attempt_at=text("now() - interval '1 second'"))
                )
                uow.commit()
                rows = uow.session.execute(
                    select(
                        WebhookDelivery.status,
                        WebhookDelivery.attempt_count,
                        WebhookDelivery.last_error,
                    )
                ).all()
            unfinished[:] = [tuple(r) for r in rows if r[0] != "succeeded"]
            return len(rows) == len(emitted) and not unfinished

        worker = stack.start("worker", role="worker")
        worker.wait_ready()
        emit(0)
        stack.wait_for("the first delivery", sending)
        began = time.monotonic()
        stack.wait_for("the first deliveries", all_delivered)
        work = time.monotonic() - began

        for number in range(1, rounds + 1):
            emit(number)
            killed, _ = worker.kill_during(sending, work * 1.2, rng)
            arrived = {r.event_id for r in receiver.received}
            round_ids = emitted[-8:]
            got = sum(1 for event_id in round_ids if event_id in arrived)
            tally.kill(killed, f"{got} of 8 received")
            stack.expire_dead_leases()
            worker = stack.start("worker", role="worker")
            try:
                stack.wait_for("the deliveries", all_delivered)
            except AssertionError as timed_out:
                raise AssertionError(f"{timed_out}\nnot delivered: {unfinished}") from None
            tally.recoveries += 1

            received = [r for r in receiver.received]
            assert all(r.signature_valid and r.answered == 200 for r in received)
            by_event: dict[str, set[bytes]] = {}
            for item in received:
                by_event.setdefault(item.event_id, set()).add(item.body)
            assert sorted(by_event) == sorted(emitted), (seed, number)
            # A repeat is the same event: same id, same signed body.
            assert all(len(bodies) == 1 for bodies in by_event.values())
            tally.compared.append(
                f"round {number}: {len(emitted)} events, {len(received)} requests received"
            )
        worker.kill()

    repeats = len(receiver.received) - len(emitted)
    with stack.runtime.uow(read_only=True) as uow:
        deliveries = {d.event_id: d for d in uow.session.scalars(select(WebhookDelivery)).all()}
        logged: dict[str, list[WebhookDeliveryAttempt]] = {}
        for attempt in uow.session.scalars(select(WebhookDeliveryAttempt)):
            logged.setdefault(attempt.delivery_id, []).append(attempt)
    seen: dict[str, int] = {}
    for item in receiver.received:
        seen[item.event_id] = seen.get(item.event_id, 0) + 1
    for event_id, delivery in deliveries.items():
        # Every request the receiver got was an attempt claimed (and counted) first; an
        # attempt a killed worker claimed is counted but never logged.
        assert delivery.attempt_count >= seen[event_id]
        attempts = sorted(logged[delivery.id], key=lambda a: a.attempt_number)
        assert len(attempts) <= delivery.attempt_count
        assert attempts[-1].succeeded and all(not a.succeeded for a in attempts[:-1])
    tally.compared.append(f"{repeats} repeated deliveries (at least once), 0 lost")
    print(tally.report())
