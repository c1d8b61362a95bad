"""Jobs on Dramatiq whose messages are lost: a purged queue, a worker killed with messages in
flight, a broker that dies and comes back empty. The job table is the truth: the scheduler
(the worker's database poller, every ``BILLBYTE_BROKER_REDERIVE_SECONDS``, here 1 s)
re-derives every job whose message was lost, and the totals are exact.

The shared Redis on 127.0.0.1:6379 cannot be restarted by a test (other suites use it): it
is used for the purge and the kill, on a queue of this test's own. The restart is done on a
private ``redis-server`` started by the test on a free port, without persistence, killed
with SIGKILL and started again: what a broker restart without a persistent queue loses.
"""

from __future__ import annotations

import os
import random
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path

import pytest
import redis
from sqlalchemy import select

from billbyte.auth.roles import Role
from billbyte.auth.subject import AuthSubject
from billbyte.invoicing.models import Invoice
from billbyte.jobs import broker as jobs_broker
from billbyte.usage import service as usage
from tests.reliability.harness import Stack, Tally, rounded, write_usage

REDIS_URL = "redis://127.0.0.1:6379/0"
PERIOD = "2025-03"
StackFactory = Callable[..., Stack]


def _require_redis() -> None:
    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1).ping()
    except Exception as exc:
        if os.environ.get("BILLBYTE_REQUIRE_REDIS") == "1":
            pytest.fail(f"BILLBYTE_REQUIRE_REDIS=1 but Redis at {REDIS_URL} is unreachable: {exc}")
        pytest.skip(f"Redis at {REDIS_URL} unreachable ({exc})")


def _broker_stack(make_stack: StackFactory, url: str, queue: str) -> Stack:
    stack = make_stack(
        {
            "BILLBYTE_BROKER_URL": url,
            "BILLBYTE_BROKER_QUEUE": queue,
            "BILLBYTE_BROKER_REDERIVE_SECONDS": "1",
            "BILLBYTE_BROKER_WORKER_THREADS": "2",
        },
        broker_rederive_seconds=1.0,  # this side's publisher pauses that long after a failure
    )
    return stack


@pytest.fixture
def queue() -> Iterator[str]:
    name = f"bbrel-{uuid.uuid4().hex}"
    yield name
    client = redis.Redis.from_url(REDIS_URL)
    try:
        keys = list(client.scan_iter(f"dramatiq:*{name}*"))
        if keys:
            client.delete(*keys)
    except redis.ConnectionError:
        pass


def _restate(
    stack: Stack, rng: random.Random, customers: dict[str, str], tag: str
) -> dict[str, Decimal]:
    """A restated month, imported here (its rating job is published after the commit)."""
    generated = write_usage(stack.tmp / f"usage-{tag}.csv", rng, PERIOD, rng.randint(150, 250), tag)
    usage.import_files(
        stack.runtime,
        AuthSubject(msp_id=stack.msp_id, actor="reliability", role=Role.ADMIN),
        stack.partner_account_id,
        [(generated.path, generated.path.name)],
    )
    return generated.sell_by_customer(customers)


def _messages(url: str, queue: str) -> int:
    return int(redis.Redis.from_url(url).hlen(f"dramatiq:{queue}.msgs"))


def test_purged_queue_and_a_worker_killed_with_messages_in_flight(
    make_stack: StackFactory, queue: str, rng: random.Random, seed: int
) -> None:
    _require_redis()
    stack = _broker_stack(make_stack, REDIS_URL, queue)
    customers = stack.set_up_customers()
    tally = Tally("broker messages lost", seed)
    # This side publishes too, as an API process does (after its commits).
    publisher = jobs_broker.install(stack.runtime, REDIS_URL, queue)
    try:
        # 1. Jobs committed and published while no worker runs; then the queue is purged.
        expected = _restate(stack, rng, customers, "purged")
        response = stack.tenant.post("/v1/invoice-runs", json={"period": PERIOD, "force": True})
        assert response.status_code in (201, 202), response.text
        assert _messages(REDIS_URL, queue) == 2  # the rating and the invoice run
        publisher.dramatiq.flush(queue)
        assert _messages(REDIS_URL, queue) == 0
        worker = stack.start("worker", role="worker")
        stack.wait_for(
            "the re-derived jobs",
            lambda: stack.no_job_left("rate") and stack.no_job_left("invoice_run"),
        )
        assert stack.charges(PERIOD) == expected
        with stack.runtime.uow(read_only=True) as uow:
            invoices = list(uow.session.scalars(select(Invoice)))
        assert {i.customer_id: i.total_exact for i in invoices} == expected
        assert all(i.total == rounded(i.total_exact) for i in invoices)
        tally.compared.append(f"purged: 2 jobs re-derived, {sum(expected.values())} USD exact")

        # 2. Workers killed while their message is being processed (taken from the queue,
        # not acknowledged): a new worker's scheduler re-derives the job.
        worker.wait_ready()
        month = "2025-04"
        for number in range(3):
            generated = write_usage(
                stack.tmp / f"usage-k{number}.csv", rng, month, rng.randint(150, 250), f"k{number}"
            )
            usage.import_files(
                stack.runtime,
                AuthSubject(msp_id=stack.msp_id, actor="reliability", role=Role.ADMIN),
                stack.partner_account_id,
                [(generated.path, generated.path.name)],
            )
            killed, _ = worker.kill_during(lambda: not stack.jobs("rate").get("pending"), 0.5, rng)
            tally.kill(killed, "running" if stack.jobs("rate").get("running") else "done")
            stack.expire_dead_leases()
            worker = stack.start("worker", role="worker")
            stack.wait_for("the rating", lambda: stack.no_job_left("rate"))
            tally.recoveries += 1
            want = generated.sell_by_customer(customers)
            assert stack.charges(month) == want, (seed, number)
            stack.check_change_feed()
            tally.compared.append(f"killed {number}: {sum(want.values())} USD exact")
        worker.kill()
    finally:
        publisher.close()
    print(tally.report())


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class PrivateRedis:
    """A ``redis-server`` of this test's own, without persistence: killed, it forgets."""

    def __init__(self, workdir: Path) -> None:
        self.port = _free_port()
        self.workdir = workdir
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.workdir),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 30
        while True:
            try:
                redis.Redis.from_url(self.url, socket_connect_timeout=0.5).ping()
                return
            except redis.ConnectionError:
                assert time.monotonic() < deadline, "the private redis-server did not start"
                time.sleep(0.05)

    def kill(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait()
            self.process = None


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[PrivateRedis]:
    if shutil.which("redis-server") is None:
        if os.environ.get("BILLBYTE_REQUIRE_REDIS") == "1":
            pytest.fail("BILLBYTE_REQUIRE_REDIS=1 but redis-server is not installed")
        pytest.skip("redis-server is not installed: the broker restart needs one of its own")
    server = PrivateRedis(tmp_path)
    server.start()
    try:
        yield server
    finally:
        server.kill()


def test_broker_killed_and_restarted_empty(
    make_stack: StackFactory, private_redis: PrivateRedis, rng: random.Random, seed: int
) -> None:
    queue = f"bbrel-{uuid.uuid4().hex}"
    stack = _broker_stack(make_stack, private_redis.url, queue)
    customers = stack.set_up_customers()
    publisher = jobs_broker.install(stack.runtime, private_redis.url, queue)
    try:
        worker = stack.start("worker", role="worker")
        worker.wait_ready()
        expected = _restate(stack, rng, customers, "up")
        stack.wait_for("the rating", lambda: stack.no_job_left("rate"))
        assert stack.charges(PERIOD) == expected

        # The broker dies: the next commit's publish fails (logged), its job is re-derived.
        private_redis.kill()
        expected = _restate(stack, rng, customers, "down")
        stack.wait_for("the re-derived rating", lambda: stack.no_job_left("rate"))
        assert stack.charges(PERIOD) == expected
        assert worker.alive(), worker.output()

        # It comes back empty; the worker's consumer reconnects (its heartbeat is in the new
        # server) and the jobs published from now on reach it again.
        private_redis.start()
        fresh = redis.Redis.from_url(private_redis.url)
        stack.wait_for(
            "the consumer to reconnect", lambda: fresh.zcard("dramatiq:__heartbeats__") > 0
        )
        time.sleep(1.1)  # this side's publisher resumes after its pause
        for number in range(2):
            expected = _restate(stack, rng, customers, f"back{number}")
            stack.wait_for("the rating", lambda: stack.no_job_left("rate"))
            assert stack.charges(PERIOD) == expected, (seed, number)
        assert fresh.hlen(f"dramatiq:{queue}.msgs") == 0  # consumed and acknowledged
        stack.check_change_feed()
        assert worker.alive(), worker.output()
        assert stack.jobs("rate").get("failed", 0) == 0
        print(
            f"reliability[broker restart] seed={seed}: 4 ratings (1 before, 1 while the broker "
            f"was down, 2 after its restart), last {sum(expected.values())} USD exact"
        )
        worker.kill()
    finally:
        publisher.close()
