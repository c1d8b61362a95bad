"""Issue 12: a non-retryable vendor error (an AWS partner account without ``cur_bucket``,
the README's own example) fails its job at once: one attempt, one log line without a
traceback, and the message in the partner account's ``/sync`` status."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from billbyte.connectors import service as connectors
from billbyte.jobs import service as jobs
from billbyte.jobs.models import Job
from billbyte.kit.clock import utcnow
from billbyte.runtime import Runtime
from tests.conftest import Tenant


def test_a_non_retryable_vendor_error_fails_the_collection_at_once(
    tenant: Tenant, runtime: Runtime, caplog: pytest.LogCaptureFixture
) -> None:
    created = tenant.post(
        "/v1/partner-accounts",
        json={
            "vendor": "aws",
            "display_name": "AWS payer",
            "credentials": {"access_key_id": "AKIAEXAMPLE", "secret_access_key": "secret"},
        },
    )
    assert created.status_code == 201, created.text
    pa = created.json()["id"]
    assert connectors.schedule_due_collections(runtime) == 1
    caplog.set_level(logging.DEBUG, logger="billbyte.jobs")
    # However long the worker keeps running, the job is not run again.
    for hours in range(0, 48, 2):
        jobs.run_pending(runtime, now=utcnow() + timedelta(hours=hours))
    with runtime.uow() as uow:
        job = uow.session.scalars(select(Job).where(Job.kind == connectors.COLLECT)).one()
        attempts, status, error = job.attempts, job.status, job.last_error
    assert (attempts, status) == (1, "failed")
    assert error is not None and "cur_bucket" in error
    records = [r for r in caplog.records if r.name == "billbyte.jobs.service"]
    assert len(records) == 1
    record: Any = records[0]
    assert record.levelno >= logging.WARNING and record.exc_info is None
    assert "cur_bucket" in record.getMessage() and "\n" not in record.getMessage()
    sync = tenant.get(f"/v1/partner-accounts/{pa}/sync").json()
    assert "has no cur_bucket" in sync["last_error"]
    assert sync["consecutive_failures"] == 1


def test_a_retryable_error_is_still_retried(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from billbyte.connectors.base import VendorError

    calls: list[int] = []

    def flaky(_runtime: Runtime, _payload: dict[str, Any]) -> None:
        calls.append(1)
        raise VendorError("throttled", retryable=True)

    monkeypatch.setitem(jobs.HANDLERS, "test-flaky", flaky)
    with runtime.uow() as uow:
        jobs.enqueue(uow.session, "test-flaky", "k", {})
        uow.commit()
    caplog.set_level(logging.DEBUG, logger="billbyte.jobs")
    for hours in range(0, 48, 2):
        jobs.run_pending(runtime, now=utcnow() + timedelta(hours=hours))
    assert len(calls) == jobs.MAX_ATTEMPTS
    records = [r for r in caplog.records if r.name == "billbyte.jobs.service"]
    assert len(records) == jobs.MAX_ATTEMPTS and all(r.exc_info is None for r in records)
