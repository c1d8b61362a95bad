"""The console's Failed jobs page: the MSP's own dead letters with their error, a retry
button for an admin (CSRF-checked as every console form); another MSP's job is a 404 and
changes nothing; help desk and billing read but may not retry."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient

from billbyte.jobs.models import Job
from billbyte.runtime import Runtime
from tests.conftest import Tenant
from tests.console.admin_helpers import post, staff_client
from tests.tenant_jobs.helpers import Outcome, failed_jobs, outcome  # noqa: F401

ROW = re.compile(r'data-job="([^"]+)"')


def status_of(runtime: Runtime, job_id: str) -> str:
    with runtime.uow(read_only=True) as uow:
        job = uow.session.get(Job, job_id)
        assert job is not None
        return job.status


def test_the_page_lists_the_msps_failed_jobs_with_their_error(
    runtime: Runtime,
    tenant: Tenant,
    other_tenant: Tenant,
    outcome: Outcome,  # noqa: F811
) -> None:
    mine = failed_jobs(runtime, tenant.msp_id, "a", "b")
    failed_jobs(runtime, other_tenant.msp_id, "theirs")
    failed_jobs(runtime, None, "system")
    page = staff_client(runtime, tenant.msp_id).get("/console/jobs")
    assert page.status_code == 200
    assert ROW.findall(page.text) == mine
    assert "vendor said no to a" in page.text and "theirs" not in page.text
    assert page.text.count('action="/console/jobs/') == 2


def test_an_admin_retries_a_failed_job(
    runtime: Runtime,
    tenant: Tenant,
    outcome: Outcome,  # noqa: F811
) -> None:
    [job_id] = failed_jobs(runtime, tenant.msp_id, "a")
    admin = staff_client(runtime, tenant.msp_id)
    response = post(admin, f"/console/jobs/{job_id}/retry")
    assert response.status_code == 303
    assert response.headers["location"] == "/console/jobs?done=retried"
    assert status_of(runtime, job_id) == "pending"
    events = tenant.get("/v1/audit-events", params={"target_id": job_id}).json()["data"]
    assert [e["action"] for e in events] == ["job.retried"]
    assert ROW.findall(admin.get("/console/jobs?done=retried").text) == []


@pytest.mark.parametrize("role", ["billing", "helpdesk"])
def test_other_roles_read_the_page_but_may_not_retry(
    runtime: Runtime,
    tenant: Tenant,
    outcome: Outcome,  # noqa: F811
    role: str,
) -> None:
    [job_id] = failed_jobs(runtime, tenant.msp_id, "a")
    client = staff_client(runtime, tenant.msp_id, role)
    page = client.get("/console/jobs")
    assert ROW.findall(page.text) == [job_id] and "/retry" not in page.text
    assert post(client, f"/console/jobs/{job_id}/retry").status_code == 403
    assert status_of(runtime, job_id) == "failed"


def test_another_msps_job_is_a_404_and_stays_failed(
    runtime: Runtime,
    tenant: Tenant,
    other_tenant: Tenant,
    outcome: Outcome,  # noqa: F811
) -> None:
    [theirs] = failed_jobs(runtime, other_tenant.msp_id, "x")
    [system] = failed_jobs(runtime, None, "system")
    admin = staff_client(runtime, tenant.msp_id)
    for job_id in (theirs, system):
        response = post(admin, f"/console/jobs/{job_id}/retry")
        assert response.status_code == 404
        assert "text/html" in response.headers["content-type"]
        assert status_of(runtime, job_id) == "failed"


def test_no_retry_without_the_csrf_token(
    runtime: Runtime,
    tenant: Tenant,
    outcome: Outcome,  # noqa: F811
) -> None:
    [job_id] = failed_jobs(runtime, tenant.msp_id, "a")
    admin = staff_client(runtime, tenant.msp_id)
    for body in ({}, {"csrf_token": "forged-token-value-1234567890"}):
        response = admin.post(f"/console/jobs/{job_id}/retry", data=body, follow_redirects=False)
        assert response.status_code == 403
    assert status_of(runtime, job_id) == "failed"


@pytest.mark.parametrize("cursor", ["x' OR 1=1 --", "9" * 50, "job_"])
def test_a_bad_cursor_is_a_4xx_page(runtime: Runtime, tenant: Tenant, cursor: str) -> None:
    response = staff_client(runtime, tenant.msp_id).get("/console/jobs", params={"cursor": cursor})
    assert 400 <= response.status_code < 500
    assert "text/html" in response.headers["content-type"]


def test_signed_out_the_page_sends_to_sign_in(client: TestClient) -> None:
    response = client.get("/console/jobs", follow_redirects=False)
    assert response.status_code == 303
    assert "/console/sign-in" in response.headers["location"]
