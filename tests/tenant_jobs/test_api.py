"""GET /v1/jobs, GET /v1/jobs/{id}, POST /v1/jobs/{id}/retry (issue 13): an MSP sees its own
jobs only (another MSP's, or the installation's, is a 404), every role reads, an admin alone
retries, and a retry is idempotent and audited once."""

from __future__ import annotations

import pytest

from billbyte.jobs import service
from billbyte.runtime import Runtime
from tests.api.factories import assert_problem
from tests.conftest import Tenant
from tests.tenant_jobs.helpers import Outcome, enqueue, failed_jobs, outcome  # noqa: F401

pytestmark = pytest.mark.storage


def ids(response: object) -> list[str]:
    body = response.json()  # type: ignore[attr-defined]
    return [job["id"] for job in body["data"]]


def test_each_msp_lists_only_its_own_jobs_by_status(
    runtime: Runtime,
    tenant: Tenant,
    other_tenant: Tenant,
    outcome: Outcome,  # noqa: F811
) -> None:
    mine = failed_jobs(runtime, tenant.msp_id, "a", "b", "c")
    theirs = failed_jobs(runtime, other_tenant.msp_id, "x")
    failed_jobs(runtime, None, "system")
    pending = enqueue(runtime, tenant.msp_id, "later")
    assert ids(tenant.get("/v1/jobs")) == mine  # failed by default, oldest first
    assert ids(tenant.get("/v1/jobs", params={"status": "failed"})) == mine
    assert ids(other_tenant.get("/v1/jobs")) == theirs
    assert ids(tenant.get("/v1/jobs", params={"status": "pending"})) == [pending]
    assert ids(other_tenant.get("/v1/jobs", params={"status": "pending"})) == []
    [job] = tenant.get("/v1/jobs", params={"limit": 1}).json()["data"]
    assert (job["kind"], job["status"], job["attempts"]) == ("test_tenant_jobs", "failed", 1)
    assert job["last_error"] == "Refused: vendor said no to a"


def test_pages_follow_the_cursor_and_a_bad_cursor_or_status_is_a_422(
    runtime: Runtime,
    tenant: Tenant,
    outcome: Outcome,  # noqa: F811
) -> None:
    mine = failed_jobs(runtime, tenant.msp_id, "a", "b", "c")
    first = tenant.get("/v1/jobs", params={"limit": 2}).json()
    assert [j["id"] for j in first["data"]] == mine[:2] and first["has_more"] is True
    second = tenant.get("/v1/jobs", params={"limit": 2, "cursor": first["next_cursor"]}).json()
    assert [j["id"] for j in second["data"]] == mine[2:] and second["next_cursor"] is None
    for cursor in ["x' OR 1=1 --", "9" * 400, "job_", "\x00", "cus_01J0000000000000000000000"]:
        assert_problem(tenant.get("/v1/jobs", params={"cursor": cursor}), 422)
    for status in ["superseded", "retry", "FAILED", ""]:
        assert_problem(tenant.get("/v1/jobs", params={"status": status}), 422)


def test_another_msps_job_is_not_found_on_every_endpoint(
    runtime: Runtime,
    tenant: Tenant,
    other_tenant: Tenant,
    outcome: Outcome,  # noqa: F811
) -> None:
    [theirs] = failed_jobs(runtime, other_tenant.msp_id, "x")
    [system] = failed_jobs(runtime, None, "system")
    for job_id in (theirs, system, "job_01J00000000000000000000000"):
        assert_problem(tenant.get(f"/v1/jobs/{job_id}"), 404)
        assert_problem(tenant.post(f"/v1/jobs/{job_id}/retry"), 404)
    assert other_tenant.get(f"/v1/jobs/{theirs}").json()["status"] == "failed"  # unchanged


@pytest.mark.parametrize("role", ["billing", "helpdesk"])
def test_every_role_reads_and_only_an_admin_retries(
    runtime: Runtime,
    tenant: Tenant,
    outcome: Outcome,  # noqa: F811
    role: str,
) -> None:
    [job_id] = failed_jobs(runtime, tenant.msp_id, "a")
    reader = Tenant(tenant.msp_id, tenant.issue_key(role), tenant.client)
    assert ids(reader.get("/v1/jobs")) == [job_id]
    assert reader.get(f"/v1/jobs/{job_id}").json()["status"] == "failed"
    assert_problem(reader.post(f"/v1/jobs/{job_id}/retry"), 403)
    assert tenant.get(f"/v1/jobs/{job_id}").json()["status"] == "failed"


def retried_events(tenant: Tenant, job_id: str) -> list[dict[str, object]]:
    events = tenant.get("/v1/audit-events", params={"target_id": job_id}).json()["data"]
    return [e for e in events if e["action"] == "job.retried"]


def test_a_retry_queues_the_job_again_once_and_is_audited(
    runtime: Runtime,
    tenant: Tenant,
    outcome: Outcome,  # noqa: F811
) -> None:
    [job_id] = failed_jobs(runtime, tenant.msp_id, "a")
    retried = tenant.post(f"/v1/jobs/{job_id}/retry")
    assert retried.status_code == 200, retried.text
    assert (retried.json()["status"], retried.json()["attempts"]) == ("pending", 0)
    again = tenant.post(f"/v1/jobs/{job_id}/retry")  # idempotent: nothing changes
    assert (again.status_code, again.json()["status"]) == (200, "pending")
    [event] = retried_events(tenant, job_id)
    assert event["before"] == {
        "status": "failed",
        "attempts": 1,
        "last_error": "Refused: vendor said no to a",
    }
    assert event["after"] == {"status": "pending", "attempts": 0}
    outcome.fail = False
    assert service.run_pending(runtime) == 1
    assert outcome.ran == ["a", "a"]
    done = tenant.post(f"/v1/jobs/{job_id}/retry")
    assert (done.status_code, done.json()["status"], done.json()["attempts"]) == (200, "done", 1)
    assert len(retried_events(tenant, job_id)) == 1


def test_a_failed_job_whose_work_is_pending_again_is_a_conflict(
    runtime: Runtime,
    tenant: Tenant,
    outcome: Outcome,  # noqa: F811
) -> None:
    [job_id] = failed_jobs(runtime, tenant.msp_id, "a")
    pending = enqueue(runtime, tenant.msp_id, "a")  # the same work, requested anew
    assert pending != job_id
    assert_problem(tenant.post(f"/v1/jobs/{job_id}/retry"), 409, "job_pending_already")
    assert tenant.get(f"/v1/jobs/{job_id}").json()["status"] == "failed"


def test_an_invoice_run_requested_through_the_api_is_its_msps_job(
    tenant: Tenant, other_tenant: Tenant
) -> None:
    # Before, the run's job was enqueued without an MSP: in no MSP's lane (no cap) and in no
    # MSP's list.
    run = tenant.post("/v1/invoice-runs", json={"period": "2026-10", "force": True})
    assert run.status_code in (200, 201, 202), run.text
    listed = tenant.get("/v1/jobs", params={"status": "pending"}).json()["data"]
    assert [job["kind"] for job in listed] == ["invoice_run"]
    assert other_tenant.get("/v1/jobs", params={"status": "pending"}).json()["data"] == []
