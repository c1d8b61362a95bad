"""Per-MSP fairness of the job claim (issue 13): one MSP's thousands of pending jobs do not
starve another MSP's few, and no MSP runs more than ``BILLBYTE_JOBS_PER_MSP_MAX`` at once.

Orders are read from what the handler recorded, never from timestamps."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from sqlalchemy import func, select

from billbyte.jobs import broker as jobs_broker
from billbyte.jobs import follow_up, service
from billbyte.jobs.models import Job
from billbyte.runtime import Runtime
from tests.jobs.test_broker import (  # noqa: F401  (fixtures: the real brokers, a queue)
    broker_url,
    consuming,
    job_broker,
)

KIND = "test_fairness"
A, B = "msp_A", "msp_B"
WAIT_SECONDS = 30.0


@pytest.fixture
def ran(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str | None, int]]:
    """(msp, n) of every job of the test kind, in the order they ran."""
    order: list[tuple[str | None, int]] = []
    monkeypatch.setitem(service.HANDLERS, KIND, service.HANDLERS.get(KIND))

    @service.handler(KIND)
    def _record(_runtime: Runtime, payload: dict[str, Any]) -> None:
        order.append((payload.get("msp"), payload["n"]))

    return order


def enqueue_many(runtime: Runtime, msp_id: str | None, count: int, kind: str = KIND) -> None:
    with runtime.uow() as uow:
        for n in range(count):
            service.enqueue(
                uow.session, kind, f"{msp_id}:{n}", {"msp": msp_id, "n": n}, msp_id=msp_id
            )
        uow.commit()


def wait_for(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + WAIT_SECONDS
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.01)


def test_an_msp_enqueueing_after_another_msps_200_jobs_is_served_at_once(
    runtime: Runtime, ran: list[tuple[str | None, int]]
) -> None:
    enqueue_many(runtime, A, 200)
    enqueue_many(runtime, B, 2)
    enqueue_many(runtime, None, 1)  # the installation's own job: a lane of its own
    assert service.run_pending(runtime) == 203
    # Round-robin between the three lanes: each claim serves the one served least recently
    # (the oldest due job breaking the first tie), so B's two jobs are the 2nd and 5th run
    # rather than the 201st and 202nd (oldest due first, the claim before this).
    assert [msp for msp, _ in ran[:6]] == [A, B, None, A, B, A]
    assert [n for msp, n in ran if msp == A] == list(range(200))  # oldest first within an MSP
    assert Counter(msp for msp, _ in ran) == {A: 200, B: 2, None: 1}


def test_the_broker_consumer_serves_msps_in_turn_too(
    runtime: Runtime,
    job_broker: jobs_broker.JobBroker,  # noqa: F811
    ran: list[tuple[str | None, int]],
) -> None:
    enqueue_many(runtime, A, 30)  # 30 messages for A queued before B's two
    enqueue_many(runtime, B, 2)
    with consuming(job_broker):
        wait_for(lambda: len(ran) == 32, "every job to run")
    assert [msp for msp, _ in ran[:4]] == [A, B, A, B]
    assert Counter(msp for msp, _ in ran) == {A: 30, B: 2}


class Gate:
    """The handler of the test kind: A's jobs wait for ``release``; it records, for each MSP,
    how many of its jobs were running at once at most."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.lock = threading.Lock()
        self.running: Counter[str] = Counter()
        self.most: Counter[str] = Counter()
        self.started: Counter[str] = Counter()
        self.finished: Counter[str] = Counter()

    def __call__(self, _runtime: Runtime, payload: dict[str, Any]) -> None:
        msp = payload["msp"]
        with self.lock:
            self.running[msp] += 1
            self.started[msp] += 1
            self.most[msp] = max(self.most[msp], self.running[msp])
        try:
            if msp == A:
                assert self.release.wait(WAIT_SECONDS), "the test never released A's jobs"
        finally:
            with self.lock:
                self.running[msp] -= 1
                self.finished[msp] += 1


@pytest.fixture
def gate(monkeypatch: pytest.MonkeyPatch) -> Iterator[Gate]:
    gate = Gate()
    monkeypatch.setitem(service.HANDLERS, KIND, gate)
    yield gate
    gate.release.set()  # never leave a worker thread waiting


def running_in_db(runtime: Runtime, msp_id: str) -> int:
    with runtime.uow(read_only=True) as uow:
        return int(
            uow.session.scalar(
                select(func.count()).where(Job.msp_id == msp_id, Job.status == "running")
            )
            or 0
        )


def test_the_per_msp_cap_holds_with_several_workers_and_others_still_run(
    runtime: Runtime, gate: Gate
) -> None:
    runtime.settings.jobs_per_msp_max = 2
    enqueue_many(runtime, A, 10)
    enqueue_many(runtime, B, 3)
    workers = [
        threading.Thread(target=service.run_pending, args=(runtime,), daemon=True) for _ in range(4)
    ]
    for worker in workers:
        worker.start()
    # Two workers hold A's two jobs; the other two run B's and, finding A at its cap and
    # nothing else due, return.
    wait_for(lambda: sum(w.is_alive() for w in workers) == 2, "two workers to be done")
    assert gate.finished[B] == 3
    assert (gate.started[A], running_in_db(runtime, A)) == (2, 2)
    gate.release.set()
    # Each of the two goes on with A's next job once its own is done: A's ten all run, two
    # at a time at most.
    for worker in workers:
        worker.join(WAIT_SECONDS)
    assert gate.finished == {A: 10, B: 3}
    assert gate.most[A] == 2
    assert running_in_db(runtime, A) == 0


def test_enqueue_records_the_msp_of_each_kind_of_job(runtime: Runtime) -> None:
    with runtime.uow() as uow:
        follow_up.rate_later(uow.session, A, "2026-11")
        follow_up.provisioning_requested(uow.session, A, "cv_1")
        follow_up.suspension_requested(uow.session, B, "cus_1")
        service.enqueue(uow.session, KIND, "from-payload", {"msp_id": B})
        service.enqueue(uow.session, KIND, "system", {})
        uow.commit()
    with runtime.uow(read_only=True) as uow:
        rows = {key: msp for key, msp in uow.session.execute(select(Job.key, Job.msp_id))}
    assert rows == {
        f"rate:{A}:2026-11": A,
        "provision:cv_1": A,
        "suspension:cus_1": B,
        f"{KIND}:from-payload": B,
        f"{KIND}:system": None,
    }
