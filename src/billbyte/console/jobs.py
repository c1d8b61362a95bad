"""Console page: the MSP's failed jobs (the dead letters) with their error, each with a
retry button for an admin — ``GET /v1/jobs`` and ``POST /v1/jobs/{id}/retry`` of the API,
through the same service."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from billbyte.api.deps import RuntimeDep
from billbyte.auth.roles import Role
from billbyte.console.admin_views import cursor_of, notices
from billbyte.console.common import PAGES, ConsoleForm, Staff, acting, brand
from billbyte.kit.pagination import DEFAULT_LIMIT
from billbyte.tenant_jobs import service

router = APIRouter(include_in_schema=False)
ACTIVE = "/console/jobs"
DONE = {"retried": "The job is queued again: a worker runs it shortly."}


@router.get("/console/jobs", response_class=HTMLResponse)
def failed_jobs(
    request: Request,
    runtime: RuntimeDep,
    subject: Staff,
    cursor: Annotated[str | None, Query(max_length=60)] = None,
    done: Annotated[str | None, Query(max_length=40)] = None,
) -> HTMLResponse:
    with runtime.uow(read_only=True) as uow:
        page_brand = brand(uow.session, subject)
        page = service.list_jobs(
            uow.session, acting(subject), "failed", cursor_of(cursor), DEFAULT_LIMIT
        )
    return PAGES.render(
        request,
        "jobs/failed.html",
        brand=page_brand,
        subject=subject,
        active=ACTIVE,
        jobs=page,
        can_retry=subject.role == Role.ADMIN,
        notices=notices(done, DONE),
    )


@router.post("/console/jobs/{job_id}/retry", response_class=HTMLResponse)
def retry(job_id: str, runtime: RuntimeDep, subject: Staff, form: ConsoleForm) -> Response:
    with runtime.uow() as uow:
        service.retry(uow.session, acting(subject), job_id)
        uow.commit()
    return RedirectResponse("/console/jobs?done=retried", status_code=303)
