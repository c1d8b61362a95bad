"""Issue #9 finding 5: a killed worker's job waited out a 600 s lease.

Running jobs now hold a short lease (30 s) that a heartbeat renews every 10 s. Time is the
queue's logical clock: ``run_pending(now=...)`` and a fake ``utcnow`` in the jobs module, so
nothing here depends on how fast the machine is.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest

from billbyte.jobs import service as jobs
from billbyte.jobs.models import Job
from billbyte.kit.clock import utcnow
from billbyte.runtime import Runtime

KIND = "test_lease"
PATIENCE = 20.0  # only stops a broken build from hanging the suite


class FakeClock:
    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    fake = FakeClock(utcnow())
    monkeypatch.setattr(jobs, "utcnow", fake)
    return fake


@pytest.fixture
def runs(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[dict[str, Any]]]:
    seen: list[dict[str, Any]] = []
    monkeypatch.setitem(jobs.HANDLERS, KIND, lambda _runtime, payload: seen.append(payload))
    yield seen


def _enqueue(runtime: Runtime, key: str) -> None:
    with runtime.uow() as uow:
        jobs.enqueue(uow.session, KIND, key, {"key": key})
        uow.commit()


def _job(runtime: Runtime) -> Job:
    with runtime.uow() as uow:
        return uow.session.query(Job).filter(Job.kind == KIND).one()


def test_a_dead_workers_job_runs_again_after_the_short_lease(
    runtime: Runtime, clock: FakeClock, runs: list[dict[str, Any]]
) -> None:
    _enqueue(runtime, "dead")
    start = clock.now
    # A worker claims the job and dies at once: no handler run, no heartbeat, no finish.
    claimed = jobs._claim(runtime, start)
    assert claimed is not None and claimed.status == "running"

    # Inside the lease nobody else touches it.
    assert jobs.run_pending(runtime, now=start + timedelta(seconds=29)) == 0
    assert runs == []
    # Within a minute of the death another worker recovers and runs it.
    assert jobs.run_pending(runtime, now=start + timedelta(seconds=45)) == 1
    assert runs == [{"key": "dead"}]
    job = _job(runtime)
    assert (job.status, job.attempts) == ("done", 2)


def test_a_live_long_job_keeps_its_lease(
    runtime: Runtime, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(jobs, "HEARTBEAT_SECONDS", 0.01)
    started, release = threading.Event(), threading.Event()
    calls: list[str] = []

    def long_job(_runtime: Runtime, payload: dict[str, Any]) -> None:
        calls.append(payload["key"])
        started.set()
        release.wait(PATIENCE)

    monkeypatch.setitem(jobs.HANDLERS, KIND, long_job)
    renewed_late = threading.Event()
    original_renew = jobs._renew

    def observed_renew(runtime: Runtime, job_id: str, attempt: int, now: datetime) -> bool:
        result = original_renew(runtime, job_id, attempt, now)
        if now >= start + timedelta(seconds=25):
            renewed_late.set()
        return result

    monkeypatch.setattr(jobs, "_renew", observed_renew)
    _enqueue(runtime, "long")
    start = clock.now
    worker = threading.Thread(target=jobs.run_pending, args=(runtime, start), daemon=True)
    worker.start()
    try:
        assert started.wait(PATIENCE)
        clock.now = start + timedelta(seconds=25)  # the handler is still running
        assert renewed_late.wait(PATIENCE)
        clock.now = start + timedelta(seconds=40)  # past the first lease: renewed, still ours
        job = _job(runtime)
        assert job.status == "running"
        assert job.locked_until is not None
        assert job.locked_until >= start + timedelta(seconds=55)
        # Another worker does not take the job from its live owner.
        assert jobs.run_pending(runtime, now=clock.now) == 0
        assert calls == ["long"]
    finally:
        release.set()
        worker.join(PATIENCE)
    job = _job(runtime)
    assert (job.status, job.attempts, calls) == ("done", 1, ["long"])


def test_a_worker_that_lost_its_lease_does_not_overwrite_the_new_owners_outcome(
    runtime: Runtime, clock: FakeClock, runs: list[dict[str, Any]]
) -> None:
    _enqueue(runtime, "stale")
    start = clock.now
    stale = jobs._claim(runtime, start)  # worker A, which then stalls past its lease
    assert stale is not None
    assert jobs.run_pending(runtime, now=start + timedelta(seconds=45)) == 1  # worker B
    jobs._finish(runtime, stale, error="A woke up and failed", now=start + timedelta(seconds=50))
    job = _job(runtime)
    assert (job.status, job.last_error) == ("done", None)
