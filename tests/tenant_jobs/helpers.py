"""Failed jobs made the way any job fails: a handler raising an error that says it cannot
be cured by running again (one attempt), run by the poller."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import select

from billbyte.jobs import service
from billbyte.jobs.models import Job
from billbyte.runtime import Runtime

KIND = "test_tenant_jobs"


class Refused(Exception):
    retryable = False


class Outcome:
    """Whether the test kind's handler fails (``fail``) and what it ran."""

    def __init__(self) -> None:
        self.fail = True
        self.ran: list[str] = []


@pytest.fixture
def outcome(monkeypatch: pytest.MonkeyPatch) -> Iterator[Outcome]:
    state = Outcome()
    monkeypatch.setitem(service.HANDLERS, KIND, service.HANDLERS.get(KIND))

    @service.handler(KIND)
    def _handle(_runtime: Runtime, payload: dict[str, str]) -> None:
        state.ran.append(payload["name"])
        if state.fail:
            raise Refused(f"vendor said no to {payload['name']}")

    yield state


def enqueue(runtime: Runtime, msp_id: str | None, name: str) -> str:
    with runtime.uow() as uow:
        service.enqueue(uow.session, KIND, f"{msp_id}:{name}", {"name": name}, msp_id=msp_id)
        uow.commit()
    with runtime.uow(read_only=True) as uow:
        key = f"{KIND}:{msp_id}:{name}"
        return str(
            uow.session.scalar(select(Job.id).where(Job.key == key, Job.status == "pending"))
        )


def failed_jobs(runtime: Runtime, msp_id: str | None, *names: str) -> list[str]:
    ids = [enqueue(runtime, msp_id, name) for name in names]
    service.run_pending(runtime)
    with runtime.uow(read_only=True) as uow:
        statuses = [uow.session.get(Job, job_id).status for job_id in ids]  # type: ignore[union-attr]
    assert statuses == ["failed"] * len(ids)
    return ids
